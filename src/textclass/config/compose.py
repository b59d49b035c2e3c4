"""Composing the config tree as Hydra does: the built-in tree, the user's config folders, the
resolvers textclass adds, and one clear error for every way a composition can fail."""

from __future__ import annotations

import functools
import os
import secrets
from datetime import datetime
from collections.abc import Mapping
from pathlib import Path

import yaml
from hydra import compose, initialize_config_dir
from hydra.errors import HydraException, OverrideParseException
from omegaconf import DictConfig, OmegaConf, open_dict

from hydra_plugins.textclass_searchpath.searchpath import CONFIG_DIR_ENV
from textclass.errors import ConfigError

# the built-in config tree, shipped inside the package
CONFIG_DIR = str(Path(__file__).resolve().parent.parent / "conf")
CONFIG_DIR_FLAGS = ("--config-dir", "-cd")
# a DDP process's rank, as torchrun (RANK), Slurm (SLURM_PROCID) and Lightning's own children
# (LOCAL_RANK, NODE_RANK on nodes after the first) give it
RANK_ENV = ("RANK", "SLURM_PROCID", "LOCAL_RANK", "NODE_RANK")


def is_global_rank_zero(env: Mapping[str, str]) -> bool:
    """Whether this process is DDP's rank 0, or no DDP rank at all."""
    return all(env.get(name, "0") == "0" for name in RANK_ENV)


# ${tc.cwd:} in paths: the start directory, so a run's saved config holds absolute paths that work
# from anywhere (eval/predict), and multirun can resolve it before Hydra's own runtime values exist.
OmegaConf.register_new_resolver("tc.cwd", lambda: str(Path.cwd()), replace=True)

# ${tc.rank_zero_or:A,B}: A in DDP's rank 0 (or outside DDP), B in the other ranks, which share
# rank 0's run dir and must not write in it (conf/hydra/default.yaml)
OmegaConf.register_new_resolver(
    "tc.rank_zero_or", lambda on_rank_zero, elsewhere: on_rank_zero if is_global_rank_zero(os.environ) else elsewhere, replace=True
)


@functools.cache
def process_run_id() -> str:
    """A short id, fixed for this process: run directories named by the second alone collide when
    two runs start in the same second (one's config.yaml beside the other's last.ckpt)."""
    return secrets.token_hex(3)

OmegaConf.register_new_resolver("tc.run_id", process_run_id, replace=True)


def take_config_dirs(args: list[str], env: dict[str, str] | os._Environ = os.environ) -> list[str]:
    """`--config-dir DIR` (or `-cd DIR`, `--config-dir=DIR`) moved into TEXTCLASS_CONFIG_DIR, checked
    to exist, so every later composition searches the user's folders first (see
    hydra_plugins.textclass_searchpath); returns the other arguments."""
    rest, given = [], []
    args = list(args)
    while args:
        arg = args.pop(0)
        flag, eq, value = arg.partition("=")
        if arg in CONFIG_DIR_FLAGS:
            if not args:
                raise ConfigError(f"{arg} needs a folder: {arg} my_conf")
            given.append(args.pop(0))
        elif flag in CONFIG_DIR_FLAGS and eq:
            given.append(value)
        else:
            rest.append(arg)
    folders = [*given, *(f for f in env.get(CONFIG_DIR_ENV, "").split(os.pathsep) if f)]
    for folder in folders:
        if not Path(folder).is_dir():
            source = f"--config-dir {folder}" if folder in given else f"{CONFIG_DIR_ENV}={env[CONFIG_DIR_ENV]}"
            raise ConfigError(
                f"{source}: no such folder ({Path(folder).resolve()}); pass the folder that holds your own "
                "config groups (experiment/, model/, data/, ...)"
            )
    if given:
        env[CONFIG_DIR_ENV] = os.pathsep.join(str(Path(f).resolve()) for f in folders)
    return rest


def compose_config(config_name: str, overrides: list[str], with_hydra: bool = False) -> DictConfig:
    """The config Hydra would compose from `overrides` (`with_hydra`: with its hydra node); any
    composition error is one ConfigError."""
    try:
        with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3", job_name=config_name):
            cfg = compose(config_name, overrides=overrides, return_hydra_config=True)
    except OverrideParseException as err:
        raise parse_error(err) from None
    except HydraException as err:
        raise ConfigError(composition_message(str(err))) from None
    except yaml.YAMLError as err:  # a user's config file that is not YAML
        mark = getattr(err, "problem_mark", None)
        where = f"{mark.name}:{mark.line + 1}" if mark is not None else "a config file"
        raise ConfigError(f"{where}: not valid YAML ({getattr(err, 'problem', None) or str(err).splitlines()[0]}); fix the file") from None
    check_group_nodes(cfg)
    if not with_hydra:
        with open_dict(cfg):
            del cfg["hydra"]
    return cfg


def check_group_nodes(cfg: DictConfig) -> None:
    """Every chosen group option is a mapping: a YAML list (or a scalar) in a config folder would
    otherwise fail later, deep inside the job."""
    for group, choice in cfg.hydra.runtime.choices.items():
        if "/" in str(group) or choice is None or str(group) not in cfg:
            continue
        node = cfg[str(group)]
        if node is not None and not OmegaConf.is_dict(node):
            found = [str(p) for p in option_files(str(group), str(choice))]
            where = found[0] if found else f"{group}/{choice}.yaml"
            kind = "a list" if OmegaConf.is_list(node) else f"the value {node!r}"
            raise ConfigError(f"{where}: {group}={choice} holds {kind}, not a mapping of keys (key: value lines); fix the file")


def option_files(group: str, choice: str) -> list[Path]:
    """The YAML files that could define `group=choice`: the user's config folders first, then the built-in tree."""
    folders = [f for f in os.environ.get(CONFIG_DIR_ENV, "").split(os.pathsep) if f] + [CONFIG_DIR]
    return [Path(f) / group / f"{choice}.yaml" for f in folders if (Path(f) / group / f"{choice}.yaml").is_file()]


def parse_error(err: OverrideParseException) -> ConfigError:
    return ConfigError(f"cannot parse the override {err.override!r}: {err.message.splitlines()[0]}")


def composition_message(text: str) -> str:
    """Hydra's multi-line composition report as one line, without the config search path."""
    head, _, options = text.split("\nConfig search path:")[0].partition("\nAvailable options")
    message = " ".join(l.strip() for l in head.splitlines() if l.strip())
    if options:
        group, _, names = options.partition(":")
        # _base files are included by the others, never chosen
        chosen = [n.strip() for n in names.split() if n.strip() and not n.strip().startswith("_")]
        message += f"; available options{group}: {', '.join(chosen)}"
    return message


def output_folder(task: str, output: str | None) -> Path:
    """Where a command that is not a Hydra job writes (compare, ensemble): `output` when given, else a
    new folder <paths.log_dir>/<task>/<date>_<time>, paths.log_dir as the config tree sets it (and as
    a training run's outputs go: outputs/ in the start directory by default)."""
    if output is None:
        log_dir = compose_config("train", []).paths.log_dir
        return Path(log_dir) / task / datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    folder = Path(output).expanduser()
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"output={folder}: a file, not a folder; name a folder for the {task} files")
    return folder
