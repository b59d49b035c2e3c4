"""A run directory's plain files, read without any model code (no torch): its config (checked to
build only trusted classes), its command-line overrides, its thresholds; and where a checkpoint's
run directory is."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from omegaconf import DictConfig, ListConfig, OmegaConf, open_dict

from textclass.config.trust import check_trusted
from textclass.errors import ConfigError, UnsafeRunError
from textclass.run_files import OVERRIDES_FILE, RUN_CONFIG


# what every run config has, and eval/predict read
RUN_CONFIG_KEYS = ("data", "tokenizer", "model")
# what loading a trained run builds from its config (the model, its features and the dataset that
# reads its splits): only these nodes' targets are checked and imported then. The rest (trainer,
# callbacks, loggers, the data module) is built only by a resumed run, which checks all of it.
BUILT_ON_LOAD = ("data.dataset", "tokenizer", "embeddings", "model")

# keys that runs made by earlier versions hold where nothing reads them now: (parent, key)
LEGACY_KEYS = (("model", "distill"),)  # distillation is a plug-in now, configured under `distill`


def find_run_dir(ckpt: Path) -> Path:
    """The run directory of a checkpoint: `<run>/checkpoints/x.ckpt`, or a checkpoint beside config.yaml."""
    for candidate in (ckpt.parent.parent, ckpt.parent):
        if (candidate / RUN_CONFIG).is_file():
            return candidate
    raise ConfigError(
        f"{ckpt}: no {RUN_CONFIG} of the run that made it (looked in {ckpt.parent.parent} and {ckpt.parent}); "
        "pass a checkpoint inside a textclass-train run directory, e.g. <run>/checkpoints/last.ckpt"
    )


def load_thresholds(path: Path) -> dict[str, float]:
    try:
        record = json.loads(path.read_text())
        return {str(k): float(v) for k, v in record.items()}
    except (OSError, ValueError, AttributeError, TypeError) as err:
        raise ConfigError(f"cannot read {path} ({err}); the run directory is damaged: restore the file or train again") from None


def thresholds_of(found: dict[str, float], names: tuple[str, ...], path: Path) -> list[float]:
    """A run's per-label thresholds in label order; a missing label or a value outside [0, 1] is an error."""
    missing = [n for n in names if n not in found]
    if missing:
        raise ConfigError(f"{path} has no threshold for the label {missing[0]!r} (it has {', '.join(map(repr, found))}); the run directory is damaged: restore the file or train again")
    bad = next((n for n in names if not 0.0 <= found[n] <= 1.0), None)
    if bad is not None:
        raise ConfigError(f"{path}: the threshold of {bad!r} is {found[bad]}, not a probability in [0, 1]; the run directory is damaged: restore the file or train again")
    return [found[n] for n in names]


def load_yaml(path: Path) -> DictConfig | ListConfig:
    """A YAML file of a run directory; unreadable or invalid YAML is one error naming file and line."""
    try:
        return OmegaConf.load(path)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise ConfigError(f"{where}: not valid YAML ({problem}); the run directory is damaged: restore the file or train again") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"cannot read {path} ({err}); the run directory is damaged: restore the file or train again") from None


def load_run_config(run_dir: Path) -> DictConfig:
    """A run's saved config.yaml, checked to build only trusted classes where loading the run builds
    any (BUILT_ON_LOAD; see textclass.config.trust)."""
    path = run_dir / RUN_CONFIG
    cfg = load_yaml(path)
    missing = [k for k in RUN_CONFIG_KEYS if not isinstance(cfg, DictConfig) or k not in cfg]
    if missing:
        raise ConfigError(f"{path} is not a textclass-train run config: it has no {', '.join(missing)}")
    check_trusted(cfg, path, only=BUILT_ON_LOAD)
    with open_dict(cfg):
        for parent, key in LEGACY_KEYS:
            cfg[parent].pop(key, None)
    return cfg


def read_overrides(path: Path) -> list[str]:
    """A job's .hydra/overrides.yaml as written: an override like `monitor=${optimized_metric}` (a
    search's pruning callback) stays text; resolving it inside a bare list would fail."""
    overrides = load_yaml(path)
    items = OmegaConf.to_container(overrides, resolve=False) if isinstance(overrides, ListConfig) else None
    if items is None or not all(isinstance(o, str) for o in items):
        raise ConfigError(f"{path} is not a list of overrides (key=value strings); the run directory is damaged")
    return items


def load_run_overrides(run_dir: Path) -> list[str]:
    """The command-line overrides a run was started with (.hydra/overrides.yaml), without ckpt_path.

    Overrides of Hydra itself never come from a run directory: they could add search paths and callbacks.
    """
    path = run_dir / OVERRIDES_FILE
    overrides = read_overrides(path)
    for override in overrides:
        if override.lstrip("+~").startswith(("hydra.", "hydra/", "hydra=")):
            raise UnsafeRunError(f"{path}: the override {override!r} changes Hydra itself, which a run directory may not do; the run is not resumed")
    return [o for o in overrides if not o.startswith("ckpt_path=")]
