"""What every command-line entry point shares: one clear line for user errors, exit code 2."""

from __future__ import annotations

import functools
import logging
import os
import secrets
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from hydra import compose, initialize_config_dir
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException, OverrideParseException
import yaml
from omegaconf import DictConfig, OmegaConf, open_dict
from omegaconf.errors import OmegaConfBaseException

from hydra_plugins.textclass_searchpath.searchpath import CONFIG_DIR_ENV
from textclass.console import FILE_ONLY, quiet_third_party, take_verbose_flag
from textclass.errors import ConfigError, NothingToDo, TextclassError, find_user_error
from textclass.launchers import is_global_rank_zero
from textclass.overrides import override_key

log = logging.getLogger("textclass")

# the built-in config tree, shipped inside the package
CONFIG_DIR = str(Path(__file__).resolve().parent / "conf")

T = TypeVar("T")

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


def fail(err: TextclassError) -> None:
    """The one way a command ends on bad input: `error: ...` on stderr, exit code 2."""
    print(f"error: {err}", file=sys.stderr)
    raise SystemExit(2) from None


def exit_on_user_error(fn: Callable[..., T]) -> Callable[..., T]:
    """Bad input ends the run with its message on stderr, not a traceback; bugs still raise."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Exception as err:
            user_error = find_user_error(err)
            if user_error is None:
                raise
            log.error("%s", user_error, extra={FILE_ONLY: True})  # the console gets fail()'s line
            fail(user_error)

    return wrapper


CONFIG_DIR_FLAGS = ("--config-dir", "-cd")
MULTIRUN_FLAGS = ("-m", "--multirun")


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


def check_overrides(
    config_name: str,
    args: list[str],
    check: Callable[[DictConfig], None] | None = None,
    check_multirun: Callable[[DictConfig], None] | None = None,
) -> None:
    """Compose the config as Hydra will, so a mistyped override is one `error:` line, not Hydra's report;
    then `check` it (before the slow imports of the job).

    A multirun (-m, or sweep overrides) is composed without its sweep overrides, with the hydra node,
    for `check_multirun` (its launcher); other flags (--cfg, --help, ...) are left to Hydra.
    """
    flags = {a for a in args if a.startswith("-")}
    if flags - set(MULTIRUN_FLAGS):
        return
    overrides = [a for a in args if not a.startswith("-")]
    try:
        parsed = OverridesParser.create().parse_overrides(overrides)
    except OverrideParseException as err:
        raise parse_error(err) from None
    if flags or any(o.is_sweep_override() for o in parsed):
        if check_multirun is not None:
            fixed = [arg for arg, o in zip(overrides, parsed) if not o.is_sweep_override()]
            check_multirun(compose_config(config_name, fixed, with_hydra=True))
    elif check is not None:
        check(compose_config(config_name, overrides))
    else:
        compose_config(config_name, overrides)


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
        message += f"; available options{group}: {', '.join(n.strip() for n in names.split() if n.strip())}"
    return message


def run_command(
    hydra_main: Callable[[], object],
    config_name: str,
    rewrite: Callable[[list[str]], list[str]] | None = None,
    check: Callable[[DictConfig], None] | None = None,
    check_multirun: Callable[[DictConfig], None] | None = None,
) -> None:
    """Console entry: check (and optionally rewrite) the command line, then hand it to Hydra."""
    args = take_verbose_flag(sys.argv[1:])
    try:
        args = take_config_dirs(args)
        if rewrite is not None:
            args = rewrite(args)
        check_overrides(config_name, args, check, check_multirun)
    except TextclassError as err:
        fail(err)
    except NothingToDo as done:
        print(done, file=sys.stderr)
        raise SystemExit(0) from None
    sys.argv = [sys.argv[0], *args]
    quiet_third_party()
    hydra_main()


def seeds_arguments(args: list[str]) -> list[str]:
    """`seeds=N` becomes a multirun over seed=1,...,N (-m added when missing), so the sweep's
    summary aggregates the repeats of each setup (textclass.sweep_summary); other sweeps combine,
    `seeds=3 model=lstm,gru` being 6 jobs."""
    # `+seeds=3` too: Hydra's advice for a key it does not know is to add it with +
    given = [a for a in args if override_key(a) == "seeds" and "=" in a and not a.startswith("~")]
    if not given:
        return args
    value = given[-1].split("=", 1)[1]
    # isdecimal alone would take other scripts' digits, which int() reads too
    if not (value.isascii() and value.isdecimal() and int(value) > 0):
        raise ConfigError(
            f"seeds={value}: the number of seeds, a positive integer (seeds=5 trains with seed=1,2,3,4,5); "
            "for seeds of your own: -m seed=7,11,13"
        )
    rest = [a for a in args if a not in given]
    for arg in rest:
        key, chosen = override_key(arg), arg.partition("=")[2]
        if key == "seed":
            raise ConfigError(f"seeds={value} and {arg}: seeds=N sets seed=1,...,N itself; give one of the two")
        if key == "hparams_search" and chosen != "null":
            raise ConfigError(
                f"seeds={value} with {arg}: the Optuna sweeper would take seed for a parameter to search; "
                f"search without seeds=, then rerun the best config (best_params.yaml) with seeds={value}"
            )
        if key == "resume":
            raise ConfigError(f"seeds={value} with {arg}: resume continues one run; drop one of the two")
    multirun = [] if set(MULTIRUN_FLAGS) & set(rest) else ["-m"]
    return [*multirun, *rest, "seed=" + ",".join(str(s) for s in range(1, int(value) + 1))]


def split_arguments(items: list[str]) -> tuple[list[str], list[str]]:
    """(paths, key=value options) of a plain command (textclass-compare, -ensemble): an existing path
    is a path even when its name has a `=`."""
    options = [i for i in items if "=" in i and not Path(i).exists()]
    return [i for i in items if i not in options], options


def key_value_options(items: list[str], defaults: Path) -> dict:
    """`key=value` options over the defaults file's values; an unknown key is an error naming the known ones."""
    known = OmegaConf.load(defaults)
    try:
        given = OmegaConf.from_dotlist(items)
    except OmegaConfBaseException as err:
        raise ConfigError(f"cannot parse the options {' '.join(items)}: {str(err).splitlines()[0]}") from None
    unknown = [key for key in given if key not in known]
    if unknown:
        raise ConfigError(f"unknown option {unknown[0]}=...; the options are {', '.join(f'{k}=' for k in known)}")
    return OmegaConf.to_container(OmegaConf.merge(known, given))
