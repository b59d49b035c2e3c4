"""Fixtures and hooks: tiny datasets written per test, one shared tiny training run, and skipping the
real-data tests where the data is absent. The helpers themselves live in tests/helpers/.

Quick loop vs full suite: `pytest -m "not slow"` leaves out what trains in subprocesses beyond the one
shared tiny run, runs the benchmark scripts or reads the real data; `pytest` (CI) runs everything.
A test that needs the real data carries `@real_data` (the `real_data` marker): it is skipped, with
the reason, where the data is not found (point TEXTCLASS_DATA_DIR at a missing folder to see that).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers.cli import TINY_RUN_ARGS, TinyRun, cli_env, run_ok
from helpers.data import write_tiny_data
from helpers.paths import HAVE_REAL_DATA, REAL_DATA_MISSING


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if HAVE_REAL_DATA:
        return
    skip = pytest.mark.skip(reason=REAL_DATA_MISSING)
    for item in items:
        if item.get_closest_marker("real_data") is not None:
            item.add_marker(skip)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A data root with tiny news (train/valid/test) and SST-2 (train/dev) splits."""
    return write_tiny_data(tmp_path / "data")


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> TinyRun:
    """One 2-epoch run of the default job (news, bow, GloVe, TensorBoard) on tiny news with a test
    split: the quick loop's one real training process, shared by every test that needs a run."""
    work = tmp_path_factory.mktemp("tiny_run")
    data = write_tiny_data(work / "data")
    run_ok(list(TINY_RUN_ARGS), cwd=work, env=cli_env(data, work))
    return TinyRun(work, data, work / "run")
