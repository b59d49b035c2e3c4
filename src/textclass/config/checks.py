"""Config values checked against the signature of what they build, before anything is built.

Hydra passes any value through to a constructor, which then fails deep inside (Lightning asserts
`isinstance(max_epochs, int)` mid-fit). Each `_target_` node's values are checked here against its
target's type hints (and the model's keys against its parameter names), so a wrong key or value is
one error naming it.
"""

from __future__ import annotations

import importlib
import inspect
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any, Literal

from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import InterpolationResolutionError

from textclass.errors import ConfigError

SCALAR_TYPES = (bool, int, float, str, type(None))


def check_known_options(node: DictConfig, target: Callable, prefix: str, also: Callable | None = None) -> None:
    """Every key of `node` is a parameter of `target` (e.g. no `bidirectional` for a CNN), or of
    `also` (what else reads the node: the training module reads cfg.model's training keys)."""
    params = dict(inspect.signature(target).parameters)
    if also is not None:
        params |= inspect.signature(also).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    unknown = [k for k in node if not str(k).startswith("_") and k not in params]
    if unknown:
        allowed = [p for p in params if p not in ("self", "embedding", "encoder", "model")]
        name = getattr(target, "__name__", str(target))
        raise ConfigError(f"{prefix}.{unknown[0]} is not an option of {name}; options: {allowed}")


def check_option_types(node: DictConfig, target: Callable, prefix: str, also: Callable | None = None) -> None:
    """Every scalar value of `node` fits the type hint of its parameter in `target` (or `also`)."""
    hints = parameter_hints(target) | (parameter_hints(also) if also is not None else {})
    for key in node:
        if str(key).startswith("_") or key not in hints:
            continue
        try:
            value = node[key]
        except InterpolationResolutionError as err:
            raw = OmegaConf.to_container(node, resolve=False)[key]
            raise ConfigError(f"{prefix}.{key}={raw}: {str(err).splitlines()[0]}; fix the value or what it refers to") from None
        if isinstance(value, (DictConfig, ListConfig)):
            value = OmegaConf.to_container(value)
        if fits(value, hints[key]) is False:
            raise ConfigError(f"{prefix}.{key}={value!r} is not valid: expected {describe(hints[key])}")


def check_config_types(cfg: DictConfig, also: Mapping[str, Callable] | None = None) -> None:
    """`check_known_options` and `check_option_types` for every node of `cfg` that has a `_target_`;
    `also`: by a node's path, a second callable that reads some of its keys."""
    for path, node in target_nodes(cfg, ""):
        target = locate_target(node._target_, target_key(path))
        second = (also or {}).get(path)
        check_known_options(node, target, path, second)
        check_option_types(node, target, path, second)


def locate(target: str) -> Any:
    """The object a dotted name names (`pkg.module.Class.attr`), as Hydra finds it, without the
    error Hydra's get_object logs: the caller decides what a missing one means."""
    parts = target.split(".")
    for split in range(len(parts), 0, -1):
        module_name = ".".join(parts[:split])
        try:
            obj = importlib.import_module(module_name)
        except ModuleNotFoundError as err:
            # only the name being tried is missing: try a shorter module; anything else is a real error
            if err.name is None or not module_name.startswith(err.name) or split == 1:
                raise
            continue
        for attr in parts[split:]:
            obj = getattr(obj, attr)
        return obj
    raise ImportError(f"empty target {target!r}")


def locate_target(target: str, key: str) -> Any:
    """The object a `_target_` names, or one ConfigError saying why it cannot be imported."""
    try:
        return locate(target)
    except Exception as err:
        fix = (
            "check the name" if isinstance(err, AttributeError)
            else "install the package that defines it, or put its folder on PYTHONPATH (textclass-* commands do not search the current directory)"
        )
        raise ConfigError(f"{key}={target} cannot be imported ({type(err).__name__}: {str(err).splitlines()[0]}): {fix}") from None


def target_key(path: str) -> str:
    """The `_target_` key of the node at dotted `path`, as a user writes it (model.encoder._target_)."""
    return f"{path + '.' if path else ''}_target_"


def target_nodes(node: Any, path: str):
    """(dotted path, node) of every DictConfig below `node` (itself included) that has a `_target_`."""
    if isinstance(node, DictConfig):
        if "_target_" in node:
            yield path, node
        children = [(key, f"{path}.{key}" if path else str(key)) for key in node]
    elif isinstance(node, ListConfig):
        children = [(i, f"{path}[{i}]") for i in range(len(node))]
    else:
        return
    for key, child_path in children:
        # an interpolation points at a node visited in its own place; a ??? value holds no node
        if OmegaConf.is_interpolation(node, key) or OmegaConf.is_missing(node, key):
            continue
        if isinstance(node[key], (DictConfig, ListConfig)):
            yield from target_nodes(node[key], child_path)


def parameter_hints(target: Callable) -> dict[str, Any]:
    try:
        return typing.get_type_hints(target.__init__ if inspect.isclass(target) else target)
    except Exception:  # unresolvable forward references: nothing to check against
        return {}


def fits(value: Any, hint: Any) -> bool | None:
    """Whether `value` fits `hint`; None when the hint is beyond plain scalars and literals."""
    origin = typing.get_origin(hint)
    if origin is Literal:
        return value in typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        answers = [fits(value, arm) for arm in typing.get_args(hint)]
        return True if True in answers else (None if None in answers else False)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint in SCALAR_TYPES:
        return isinstance(value, hint)
    return None


def describe(hint: Any) -> str:
    """`int or None`, `one of 'a', 'b' or None`: the literals of a union listed together."""
    arms = typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, types.UnionType) else (hint,)
    literals = [v for arm in arms if typing.get_origin(arm) is Literal for v in typing.get_args(arm)]
    others = ["None" if arm is type(None) else getattr(arm, "__name__", str(arm)) for arm in arms if typing.get_origin(arm) is not Literal]
    parts = ([f"one of {', '.join(map(repr, literals))}"] if literals else []) + others
    return " or ".join(parts)
