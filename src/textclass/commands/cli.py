"""What every command shares: the one way a command ends on bad input (`error: ...` on stderr, exit
code 2), the checks of a command line before any slow import, and the `key=value` options of the
commands that take paths (compare, ensemble)."""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import OverrideParseException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from textclass.config.compose import CONFIG_DIR, compose_config, parse_error, take_config_dirs
from textclass.console import FILE_ONLY, ConsoleFormatter, quiet_third_party, take_verbose_flag
from textclass.errors import ConfigError, NothingToDo, TextclassError, find_user_error

log = logging.getLogger("textclass")

T = TypeVar("T")
MULTIRUN_FLAGS = ("-m", "--multirun")


def fail(err: TextclassError) -> None:
    """The one way a command ends on bad input: `error: ...` on stderr, exit code 2."""
    # one write with its newline: DDP ranks share stderr, and print's two writes (text, then "\n")
    # could interleave with another rank's line
    sys.stderr.write(f"error: {err}\n")
    sys.stderr.flush()
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
        check_one_mode(args)
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


# Hydra's modes: a command line may name one of them
MODE_FLAGS = {"-m": "-m", "--multirun": "-m", "-r": "--run", "--run": "--run", "-c": "--cfg", "--cfg": "--cfg",
              "-i": "--info", "--info": "--info", "-sc": "--shell-completion", "--shell-completion": "--shell-completion"}


def check_one_mode(args: list[str]) -> None:
    modes = sorted({MODE_FLAGS[a] for a in args if a in MODE_FLAGS})
    if len(modes) > 1:
        raise ConfigError(
            f"{' and '.join(modes)}: Hydra does one of these at a time; to see a job's config, drop -m and give "
            "one value per key (e.g. --cfg job model=lstm)"
        )


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


@dataclass(frozen=True)
class PathsCommand:
    """A command that takes paths (runs, sweeps) and `key=value` options over a defaults file in
    conf/ (compare, ensemble, summary): the same flags, help and error path as the Hydra commands."""

    name: str
    summary: str  # one line, for `textclass --help` and its own
    paths: str  # what its positional arguments are, for the usage line
    defaults: str  # conf/<defaults>: its options with their defaults and comments


def run_paths_command(command: PathsCommand, body: Callable[[list[str], dict], str], argv: list[str] | None = None) -> None:
    """Console entry of a `PathsCommand`: `-v`, `--help` (its summary and options), then
    `body(paths, options)` prints what it returns on stdout; bad input is one `error:` line, exit 2."""
    args = take_verbose_flag(list(sys.argv[1:] if argv is None else argv))
    defaults = Path(CONFIG_DIR) / command.defaults
    if {"-h", "--help"} & set(args):
        print(f"usage: textclass {command.name} {command.paths} [key=value ...]\n\n{command.summary}\n\n"
              f"options (key=value), with their defaults ({defaults.name}):\n{defaults.read_text(encoding='utf-8')}", end="")
        return
    logging.basicConfig(level=logging.INFO, handlers=[console_handler()], force=True)
    quiet_third_party()
    try:
        paths, items = split_arguments(args)
        output = body(paths, key_value_options(items, defaults))
    except Exception as err:
        user_error = find_user_error(err)
        if user_error is None:
            raise
        fail(user_error)
    print(output, end="")


def console_handler() -> logging.Handler:
    """Log lines on stderr as the Hydra commands show them (time and message)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(ConsoleFormatter())
    return handler
