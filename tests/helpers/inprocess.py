"""A console command run in this process, as its entry point runs in a terminal: argv, working
directory, environment and stdin set for the call, stdout and stderr captured, exit code kept.

What a subprocess adds (a new interpreter, about 8 s of imports here) proves nothing for a command's
answer to bad input: its exit code and its lines are the same. Tests that need the process itself
(a kill, DDP, the installed script) start one (helpers.cli.run_cli).
"""

from __future__ import annotations

import io
import multiprocessing
import os
import subprocess
import sys
import traceback
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from importlib.metadata import entry_points
from pathlib import Path


def entry_point(program: str) -> Callable[[], object]:
    """The function a console script (textclass-train, ...) calls."""
    (found,) = entry_points(group="console_scripts", name=program)
    return found.load()


@contextmanager
def process_state(cwd: Path, env: dict[str, str], argv: list[str], stdin: bytes) -> Iterator[None]:
    """Working directory, environment, argv, stdin and PYTHONPATH's folders on sys.path as a new process
    would have them; restored after, and the modules imported from those folders forgotten."""
    saved = (os.getcwd(), dict(os.environ), sys.argv, sys.stdin, list(sys.path))
    added = [str(Path(cwd, p).resolve()) for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    os.chdir(cwd)
    os.environ.update(env)
    sys.argv = argv
    sys.stdin = io.TextIOWrapper(io.BytesIO(stdin), encoding="utf-8")
    sys.path[:0] = added
    try:
        yield
    finally:
        cwd_before, env_before, sys.argv, sys.stdin, sys.path[:] = saved
        os.chdir(cwd_before)
        os.environ.clear()
        os.environ.update(env_before)
        for name, module in list(sys.modules.items()):
            if any(str(getattr(module, "__file__", None) or "").startswith(folder + os.sep) for folder in added):
                del sys.modules[name]


def run_main(args: list[str], cwd: Path, env: dict[str, str] | None = None, stdin: str | bytes | None = None) -> subprocess.CompletedProcess:
    """`args` (["textclass-train", ...]) through the command's entry point: a CompletedProcess with the
    exit code (1 and the traceback on stderr for an exception, as the interpreter prints it)."""
    data = stdin if isinstance(stdin, bytes) else (stdin or "").encode()
    out, err = io.StringIO(), io.StringIO()
    code = 0
    with process_state(Path(cwd), env or {}, [args[0], *args[1:]], data), redirect_stdout(out), redirect_stderr(err):
        try:
            entry_point(args[0])()
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else 0 if exit_.code is None else 1
            if not isinstance(exit_.code, int) and exit_.code is not None:
                print(exit_.code, file=sys.stderr)
        except BaseException:  # noqa: BLE001 - what the interpreter would print and exit 1 on
            traceback.print_exc()
            code = 1
    return subprocess.CompletedProcess(args, code, out.getvalue(), err.getvalue())


# what the commands import on their first run (torch, Lightning, the recipe, scoring, export, reports)
WARM_MODULES = (
    "textclass.commands.main",
    "textclass.training.recipe",
    "textclass.training.scoring",
    "textclass.training.inference",
    "textclass.ensemble",
    "textclass.export.graph",
    "textclass.reports.compare",
    "textclass.search.sweeper",
)


def _one_thread() -> None:
    import torch

    torch.set_num_threads(1)  # two workers on two cores


@contextmanager
def warm_workers(workers: int = 2) -> Iterator[ProcessPoolExecutor]:
    """Worker processes that run commands with run_main, one at a time each: forked from a server that
    imported textclass's commands once, so a command costs its work and not its imports, and
    `workers` of them run at once. A forkserver, not a fork of pytest: the test process may hold
    torch's thread pools, which a forked child must not inherit."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(list(WARM_MODULES))
    with ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_one_thread) as pool:
        yield pool
