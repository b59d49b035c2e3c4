"""Which `_target_`s a run directory's saved config may name.

Eval, predict and resume rebuild objects from a run's config.yaml / overrides.yaml, and Hydra's
instantiate calls whatever `_target_` says: a shared run directory could otherwise run its author's
code. Only classes of the packages below (and functions of textclass's schedule module) are built,
plus the user's own classes that the run lists in `allowed_targets`, at an extension point (its
encoder, dataset, callbacks, loggers) and of that point's type.
"""

from __future__ import annotations

import fnmatch
import inspect
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from textclass.errors import ConfigError, UnsafeRunError
from textclass.config.checks import locate, locate_target, target_key, target_nodes

# packages whose classes may be built from a run directory
TRUSTED_PACKAGES = (
    "textclass",
    "hydra_plugins.textclass_optuna_sweeper",
    "torch.optim",
    "lightning.pytorch.callbacks",
    "lightning.pytorch.loggers",
    "lightning.pytorch.trainer",
)
# short public names of trusted classes that live deeper in their package
TRUSTED_ALIASES = ("lightning.Trainer", "lightning.pytorch.Trainer")
# modules whose functions (not only classes) are builders: schedule factories
TRUSTED_FUNCTION_MODULES = ("textclass.models.schedules",)
# extra packages a user trusts, comma-separated: their own encoders, datasets, callbacks
TRUST_ENV = "TEXTCLASS_TRUSTED_MODULES"


def trusted_packages() -> tuple[str, ...]:
    extra = [p.strip() for p in os.environ.get(TRUST_ENV, "").split(",") if p.strip()]
    return (*TRUSTED_PACKAGES, *extra)


def in_package(name: str, packages: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in packages)


def is_trusted(target: str, by_name: bool = False) -> bool:
    """Whether `target` names a class (or schedule function) defined in a trusted package.

    The name is checked before anything is imported, so an untrusted module is never loaded;
    `by_name`: the name alone (the user's own config, checked before the slow imports).
    """
    packages = trusted_packages()
    if not isinstance(target, str) or not (target in TRUSTED_ALIASES or in_package(target, packages)):
        return False
    if by_name:
        return True
    try:
        obj = locate(target)
    except Exception:
        return False
    # the object's own module, not the path: `textclass.cli.sys.exit` walks out of the package
    module = getattr(obj, "__module__", "") or ""
    if inspect.isclass(obj):
        return in_package(module, packages)
    return inspect.isfunction(obj) and module in TRUSTED_FUNCTION_MODULES


# Where a config may name a user's own class, listed in its `allowed_targets`, and what that class
# must be: a run directory can then rebuild the user's encoder, dataset or callback, and nothing else.
EXTENSION_POINTS = {
    "model.encoder": "torch.nn.Module",
    "model.optimizer": "torch.optim.Optimizer",
    "data.dataset": "textclass.data.dataset.TextDataset",
    "callbacks.*": "lightning.pytorch.callbacks.Callback",
    "logger.*": "lightning.pytorch.loggers.Logger",
}
ALLOWED_TARGETS_KEY = "allowed_targets"


def allowed_patterns(cfg: DictConfig) -> list[str]:
    """The config's `allowed_targets`: dotted names, `*` wildcards after a package name (mypkg.*)."""
    patterns = cfg.get(ALLOWED_TARGETS_KEY) or []
    if isinstance(patterns, str) or not all(isinstance(p, str) for p in patterns):
        raise ConfigError(f"{ALLOWED_TARGETS_KEY}={OmegaConf.to_container(patterns) if OmegaConf.is_config(patterns) else patterns!r} must be a list of names, e.g. [mypkg.*]")
    for pattern in patterns:
        package = pattern.split(".")[0]
        if not package.isidentifier():
            raise ConfigError(f"{ALLOWED_TARGETS_KEY}: {pattern!r} must start with a package name, e.g. mypkg.* or mypkg.encoders.MyEncoder")
        # importing a module runs it: a run directory must not pick standard-library modules to import
        if package in sys.stdlib_module_names:
            raise ConfigError(f"{ALLOWED_TARGETS_KEY}: {pattern!r} names the standard library ({package}); list your own package, e.g. mypkg.*")
    return list(patterns)


def extension_point(path: str) -> tuple[str, str] | None:
    """(extension point, the type its classes must be) that the key `path` falls under, if any."""
    return next(((point, base) for point, base in EXTENSION_POINTS.items() if fnmatch.fnmatchcase(path, point)), None)


def allowed_extension(path: str, target: str, patterns: list[str]) -> bool:
    """A class named in `allowed_targets`, at an extension point, of that point's type."""
    point = extension_point(path)
    if point is None or not any(fnmatch.fnmatchcase(target, p) for p in patterns):
        return False
    try:
        obj = locate(target)
    except Exception:
        return False
    if not inspect.isclass(obj):
        return False
    # by its own name too: `mypkg.encoders.subprocess.Popen` is not a class of mypkg
    real_name = f"{obj.__module__}.{obj.__qualname__}"
    return any(fnmatch.fnmatchcase(real_name, p) for p in patterns) and issubclass(obj, locate(point[1]))


def untrusted_target(cfg: DictConfig, by_name: bool = False, only: Sequence[str] | None = None) -> tuple[str, str, bool] | None:
    """(key path, target, listed in allowed_targets) of the first `_target_` that may not be built;
    `only`: the nodes at these key paths and below them, those a caller builds (None: every node)."""
    patterns = allowed_patterns(cfg)
    for path, node in target_nodes(cfg, ""):
        if only is not None and not any(path == key or path.startswith(key + ".") for key in only):
            continue
        # an interpolated _target_ is never resolved: resolvers could run code too
        target = OmegaConf.to_container(node, resolve=False)["_target_"]
        if OmegaConf.is_interpolation(node, "_target_"):
            return path, str(target), False
        if not is_trusted(target, by_name) and not allowed_extension(path, target, patterns):
            return path, str(target), any(fnmatch.fnmatchcase(str(target), p) for p in patterns)
    return None


def check_trusted(cfg: DictConfig, source: Path | str, only: Sequence[str] | None = None) -> None:
    """Raise UnsafeRunError for the first `_target_` of a run directory's config that is not trusted
    (of those at or below the key paths `only`, when given)."""
    if (found := untrusted_target(cfg, only=only)) is None:
        return
    path, target, listed = found
    key = target_key(path)
    top = target.split(".")[0]
    why = (
        f"it is listed in {ALLOWED_TARGETS_KEY} but is not a {EXTENSION_POINTS.get(path, 'class of an extension point')} at one of "
        f"the extension points ({', '.join(EXTENSION_POINTS)})"
        if listed
        else f"it is not a class textclass builds from a run directory (only {', '.join(TRUSTED_PACKAGES)} and the run's {ALLOWED_TARGETS_KEY})"
    )
    raise UnsafeRunError(
        f"{source}: {key}={target!r}: {why}, so the run is not loaded: a shared run directory could otherwise "
        f"run its author's code. If you trust this run and that code, allow its package: {TRUST_ENV}={top}"
    )


# keys a user opts into on their own command line: a run directory's replayed overrides never set them
OPT_IN_KEYS = ("embeddings.trust_pickle",)


def check_replayable(original: list[str], now: list[str], source: Path) -> None:
    """A run's saved overrides (resume=) may not grant what only the user may opt into (OPT_IN_KEYS):
    a shared run could otherwise load a pickle it ships and run the code inside."""
    given_now = {override.lstrip("+~").split("=", 1)[0] for override in now}
    for override in original:
        key, _, value = override.lstrip("+~").partition("=")
        if key in OPT_IN_KEYS and value.strip().lower() not in ("false", "null", "0", "") and key not in given_now:
            raise UnsafeRunError(
                f"{source}: the run's override {override} grants what only your own command line may ({key} runs the code "
                f"a pickle holds); if you trust this run and its files, resume with {key}=true yourself"
            )


def check_user_targets(cfg: DictConfig) -> None:
    """Before training: a class of the user's own must be in `allowed_targets`, or the run it makes
    could not be loaded again (eval, predict, resume and textclass.load refuse it)."""
    if (found := untrusted_target(cfg, by_name=True)) is None:
        return
    path, target, listed = found
    key = target_key(path)
    if listed:
        locate_target(target, key)  # one that cannot be imported says so
        if (found_point := extension_point(path)) is None:
            raise ConfigError(f"{key}={target!r}: your own classes go at the extension points only ({', '.join(EXTENSION_POINTS)})")
        point, base = found_point
        raise ConfigError(f"{key}={target!r} is not a {base}, which {point} takes (a class of your own, in {ALLOWED_TARGETS_KEY})")
    package = target.split(".")[0]
    if package in sys.stdlib_module_names:
        raise ConfigError(
            f"{key}={target!r} is in the standard library ({package}), which a run may not build (a shared run could run "
            f"any of it): put what you need in a class of your own package, at an extension point ({', '.join(EXTENSION_POINTS)})"
        )
    raise ConfigError(
        f"{key}={target!r} is not in {ALLOWED_TARGETS_KEY}: add it to your config ({ALLOWED_TARGETS_KEY}: [{package}.*], or "
        f"'{ALLOWED_TARGETS_KEY}=[{package}.*]' on the command line) so the run can be loaded again; eval, predict, "
        "resume and textclass.load build only the classes a run lists there"
    )
