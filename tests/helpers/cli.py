"""The console commands in a process of their own, as a user runs them, and what their runs leave."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

def cli_env(data_dir: Path, tmp_path: Path) -> dict[str, str]:
    """Environment for a CLI run on `data_dir`, with a cache private to the test."""
    return {"TEXTCLASS_DATA_DIR": str(data_dir), "TEXTCLASS_CACHE_DIR": str(tmp_path / "cache")}


def run_cli(
    args: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: int = 600, stdin: str | bytes | None = None
) -> subprocess.CompletedProcess:
    """Run a textclass console entry point (e.g. ["textclass-train", ...]) as a user would.

    `stdin` may be bytes (e.g. not UTF-8); stdout and stderr always come back as text.
    """
    script = Path(sys.executable).parent / args[0]
    full_env = {**os.environ, **(env or {})}
    data = (stdin or "").encode() if not isinstance(stdin, bytes) else stdin
    result = subprocess.run([str(script), *args[1:]], cwd=cwd, env=full_env, capture_output=True, timeout=timeout, input=data)
    return subprocess.CompletedProcess(
        result.args, result.returncode, result.stdout.decode("utf-8", "replace"), result.stderr.decode("utf-8", "replace")
    )


def failed_run(result: subprocess.CompletedProcess, tail: int = 3000) -> str:
    """A failure message for a CLI run: the command, its exit code and the tail of its stderr."""
    command = shlex.join([Path(str(result.args[0])).name, *map(str, result.args[1:])])
    return f"`{command}` exited {result.returncode}; stderr tail:\n{(result.stderr or '')[-tail:]}"


def run_ok(
    args: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: int = 600, stdin: str | bytes | None = None
) -> subprocess.CompletedProcess:
    """`run_cli` that asserts the command exited 0 (the message ends with its stderr tail)."""
    result = run_cli(args, cwd, env, timeout=timeout, stdin=stdin)
    assert result.returncode == 0, failed_run(result)
    return result


def tensorboard_writers(run_dir: Path) -> set[str]:
    """The pids of the processes that wrote TensorBoard event files in `run_dir` (a file's name ends in
    <pid>.<n>): one for a DDP run whose rank 0 alone logs."""
    return {e.name.split(".")[-2] for e in (run_dir / "tensorboard").glob("events.out.tfevents.*")}


T = TypeVar("T")


def in_parallel(*calls: Callable[[], T], workers: int = 2) -> list[T]:
    """Run independent calls (e.g. CLI processes that write different files) `workers` at a time, as
    on the 2-core CI machine; their results in order. Most of a CLI process is its start-up, which
    overlaps well."""
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(call) for call in calls]
        return [future.result() for future in futures]


@dataclass(frozen=True)
class TinyRun:
    """A finished `textclass-train` run on `write_tiny_data` data: read it, never change it (copy it
    to tmp_path first); `work` is the directory it ran in, where eval and predict run too."""

    work: Path
    data: Path
    run: Path

    @property
    def last_ckpt(self) -> Path:
        return self.run / "checkpoints" / "last.ckpt"


TINY_RUN_ARGS = ("textclass-train", "trainer.max_epochs=2", "data.batch_size=4", "trainer.accelerator=cpu", "hydra.run.dir=run")
