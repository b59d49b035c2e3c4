"""What every command-line entry point shares: one clear line for user errors, exit code 2."""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from omegaconf import OmegaConf

from textclass.errors import find_user_error

log = logging.getLogger("textclass")

# conf/ sits at the project top level, beside src/ (editable install or a source checkout).
CONFIG_DIR = str(Path(__file__).resolve().parents[2] / "conf")

T = TypeVar("T")

# ${tc.cwd:} in paths: the start directory, so a run's saved config holds absolute paths that work
# from anywhere (eval/predict), and multirun can resolve it before Hydra's own runtime values exist.
OmegaConf.register_new_resolver("tc.cwd", lambda: str(Path.cwd()), replace=True)


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
            print(f"error: {user_error}", file=sys.stderr)
            raise SystemExit(2) from None

    return wrapper
