"""What a command answers: one `error:` line for bad input, nothing of the sort for good input."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def assert_answer(result: subprocess.CompletedProcess, fragments: Sequence[str]) -> None:
    """With `fragments`: exit code 2 and exactly one `error:` line that holds each of them; without:
    exit code 0 and no `error:` line. Never a traceback."""
    tail = f"\nstdout:\n{result.stdout[-1500:]}\nstderr:\n{result.stderr[-3000:]}"
    assert "Traceback" not in result.stderr + result.stdout, tail
    lines = error_lines(result.stderr)
    if fragments:
        assert result.returncode == 2, tail
        assert len(lines) == 1, tail
        for fragment in fragments:
            assert fragment in lines[0], f"{fragment!r} not in {lines[0]!r}"
    else:
        assert result.returncode == 0, tail
        assert not lines, tail
