"""What every command-line entry point shares: one clear line for user errors, exit code 2."""

from __future__ import annotations

import functools
import logging
import secrets
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from hydra import compose, initialize_config_dir
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException, OverrideParseException
from omegaconf import DictConfig, OmegaConf

from textclass.errors import ConfigError, NothingToDo, TextclassError, find_user_error

log = logging.getLogger("textclass")

# the built-in config tree, shipped inside the package
CONFIG_DIR = str(Path(__file__).resolve().parent / "conf")

T = TypeVar("T")

# ${tc.cwd:} in paths: the start directory, so a run's saved config holds absolute paths that work
# from anywhere (eval/predict), and multirun can resolve it before Hydra's own runtime values exist.
OmegaConf.register_new_resolver("tc.cwd", lambda: str(Path.cwd()), replace=True)


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
            log.error("%s", user_error)
            fail(user_error)

    return wrapper


def check_overrides(config_name: str, args: list[str]) -> None:
    """Compose the config as Hydra will, so a mistyped override is one `error:` line, not Hydra's report.

    Only plain single runs: with flags (-m, --cfg, --help, ...) or sweeps (a config that is a multirun
    by itself), Hydra's own handling is left as is.
    """
    if any(a.startswith("-") for a in args):
        return
    try:
        sweeps = any(o.is_sweep_override() for o in OverridesParser.create().parse_overrides(args))
    except OverrideParseException as err:
        raise parse_error(err) from None
    if not sweeps:
        compose_config(config_name, args)


def compose_config(config_name: str, overrides: list[str]) -> DictConfig:
    """The config Hydra would compose from `overrides`; any composition error is one ConfigError."""
    try:
        with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3", job_name=config_name):
            return compose(config_name, overrides=overrides)
    except OverrideParseException as err:
        raise parse_error(err) from None
    except HydraException as err:
        raise ConfigError(composition_message(str(err))) from None


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


def run_command(hydra_main: Callable[[], object], config_name: str, rewrite: Callable[[list[str]], list[str]] | None = None) -> None:
    """Console entry: check (and optionally rewrite) the command line, then hand it to Hydra."""
    args = sys.argv[1:]
    try:
        if rewrite is not None:
            args = rewrite(args)
        check_overrides(config_name, args)
    except TextclassError as err:
        fail(err)
    except NothingToDo as done:
        print(done, file=sys.stderr)
        raise SystemExit(0) from None
    sys.argv = [sys.argv[0], *args]
    hydra_main()
