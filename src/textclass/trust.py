"""Which `_target_`s a run directory's saved config may name.

Eval, predict and resume rebuild objects from a run's config.yaml / overrides.yaml, and Hydra's
instantiate calls whatever `_target_` says: a shared run directory could otherwise run its author's
code. Only classes of the packages below (and functions of textclass's schedule module) are built.
"""

from __future__ import annotations

import inspect
import os
from pathlib import Path

from hydra.utils import get_object
from omegaconf import DictConfig, OmegaConf

from textclass.errors import UnsafeRunError
from textclass.options import target_nodes

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


def is_trusted(target: str) -> bool:
    """Whether `target` names a class (or schedule function) defined in a trusted package.

    The name is checked before anything is imported, so an untrusted module is never loaded.
    """
    packages = trusted_packages()
    if not isinstance(target, str) or not (target in TRUSTED_ALIASES or in_package(target, packages)):
        return False
    try:
        obj = get_object(target)
    except Exception:
        return False
    # the object's own module, not the path: `textclass.cli.sys.exit` walks out of the package
    module = getattr(obj, "__module__", "") or ""
    if inspect.isclass(obj):
        return in_package(module, packages)
    return inspect.isfunction(obj) and module in TRUSTED_FUNCTION_MODULES


def check_trusted(cfg: DictConfig, source: Path | str) -> None:
    """Raise UnsafeRunError for the first `_target_` in `cfg` that is not trusted."""
    for path, node in target_nodes(cfg, ""):
        # an interpolated _target_ is never resolved: resolvers could run code too
        target = OmegaConf.to_container(node, resolve=False)["_target_"]
        if OmegaConf.is_interpolation(node, "_target_") or not is_trusted(target):
            top = str(target).split(".")[0]
            raise UnsafeRunError(
                f"{source}: {path + '.' if path else ''}_target_={target!r} is not a class textclass builds from a "
                f"run directory (only {', '.join(TRUSTED_PACKAGES)}), so the run is not loaded: a shared run "
                f"directory could otherwise run its author's code. If you trust this run and that code, "
                f"allow its package: {TRUST_ENV}={top}"
            )
