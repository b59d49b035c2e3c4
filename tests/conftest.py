"""Shared fixtures and helpers: tiny datasets written per test, one shared tiny training run, running
the CLIs, and the location of the real data.

Quick loop vs full suite: `pytest -m "not slow"` leaves out what trains in subprocesses beyond the one
shared tiny run, runs the benchmark scripts or reads the real data; `pytest` (CI) runs everything.
A test that needs the real data carries `@real_data` (the `real_data` marker): it is skipped, with
the reason, where the data is not found (point TEXTCLASS_DATA_DIR at a missing folder to see that).
"""

from __future__ import annotations

import csv
import json
import os
import shlex
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import pytest

from textclass.config.compose import CONFIG_DIR

REPO = Path(__file__).resolve().parents[1]
CONF = Path(CONFIG_DIR)  # the config tree textclass ships (src/textclass/conf)
# The real data: TEXTCLASS_DATA_DIR when set, else ../shared/data beside the checkout.
REAL_DATA = Path(os.environ.get("TEXTCLASS_DATA_DIR") or REPO.parent / "shared" / "data").resolve()
HAVE_REAL_DATA = (REAL_DATA / "sst2" / "train.tsv").is_file() and (REAL_DATA / "news" / "train.tsv").is_file()
REAL_DATA_MISSING = f"real data not found at {REAL_DATA} (set TEXTCLASS_DATA_DIR to the folder holding sst2/ and news/)"

# The marker (select with -m real_data); pytest_collection_modifyitems skips its tests when the data is absent.
real_data = pytest.mark.real_data


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if HAVE_REAL_DATA:
        return
    skip = pytest.mark.skip(reason=REAL_DATA_MISSING)
    for item in items:
        if item.get_closest_marker("real_data") is not None:
            item.add_marker(skip)


# --- tiny data ------------------------------------------------------------------------------------

NEWS_ROWS = [
    ("b", "Fed raises interest rates as inflation climbs"),
    ("b", "Stocks rally after strong earnings reports"),
    ("b", "Oil prices fall on weak demand, Fed warns"),
    ("t", "Apple unveils new iPhone with faster chip"),
    ("t", "Google tests self-driving cars in California"),
    ("e", "Kim Kardashian shows off new look at the Oscars"),
    ("e", "New Star Wars movie breaks box office records"),
    ("e", "Justin Bieber cancels concert tour"),
    ("m", "Ebola outbreak spreads in West Africa, WHO says"),
    ("m", "New study links sugar to heart disease"),
]
SST2_ROWS = [
    ("hide new secretions from the parental units ", "0"),
    ("contains no wit , only labored gags ", "0"),
    ("that loves its characters and communicates something rather beautiful about human nature ", "1"),
    ("remains utterly satisfied to remain the same throughout ", "0"),
    ("a gorgeous , witty , seductive movie . ", "1"),
    ("the movie is n't good ", "0"),
    ("an utterly charming and hilarious film ", "1"),
    ("xyzzyq plugh ", "1"),  # no word in GloVe: dropped when unknown words are dropped
]


def write_tsv(path: Path, header: str, rows: list[tuple[str, str]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(header + "\n" + "".join("\t".join(r) + "\n" for r in rows), encoding="utf-8")
    return path


def write_tiny_data(root: Path, *, sst2: bool = True, news_test: bool = True) -> Path:
    """`root` as a data root in the built-in datasets' layout: tiny news (train: NEWS_ROWS 3 times,
    valid: NEWS_ROWS, test: every other row, unless `news_test` is false, like the shared copy) and,
    unless `sst2` is false, SST-2 (train: SST2_ROWS 3 times, dev: SST2_ROWS)."""
    write_tsv(root / "news" / "train.tsv", "category\ttitle", NEWS_ROWS * 3)
    write_tsv(root / "news" / "valid.tsv", "category\ttitle", NEWS_ROWS)
    if news_test:
        write_tsv(root / "news" / "test.tsv", "category\ttitle", NEWS_ROWS[::2])
    if sst2:
        write_tsv(root / "sst2" / "train.tsv", "sentence\tlabel", SST2_ROWS * 3)
        write_tsv(root / "sst2" / "dev.tsv", "sentence\tlabel", SST2_ROWS)
    return root


def write_table(path: Path, records: list[dict], *, class_label: str | None = None) -> Path:
    """`records` (dicts with the same keys, in column order) as the own-data format `path`'s extension
    names: .csv (csv module quoting), .tsv and .jsonl (one record a line), .parquet; any other name is a
    directory written by `save_to_disk` holding a DatasetDict whose train and validation splits are both
    `records` (`class_label`: the column to store as a ClassLabel)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    columns = list(records[0]) if records else []
    if path.suffix == ".csv":
        with path.open("w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(columns)
            writer.writerows([r[c] for c in columns] for r in records)
    elif path.suffix == ".tsv":
        lines = ["\t".join(columns), *("\t".join(str(r[c]) for c in columns) for r in records)]
        path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    elif path.suffix == ".jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    elif path.suffix == ".parquet":
        import pandas as pd

        pd.DataFrame(records, columns=columns).to_parquet(path)
    else:
        import datasets

        split = datasets.Dataset.from_dict({c: [r[c] for r in records] for c in columns})
        if class_label is not None:
            split = split.class_encode_column(class_label)
        datasets.DatasetDict({"train": split, "validation": split}).save_to_disk(str(path))
    return path


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A data root with tiny news (train/valid/test) and SST-2 (train/dev) splits."""
    return write_tiny_data(tmp_path / "data")


def builtin_dataset(name: str, data_dir: Path | str, *overrides: str):
    """The TextDataset that conf/data/<name>.yaml builds for the data root `data_dir` (the folder
    holding news/ and sst2/), composed and instantiated as textclass-train does; `overrides` as on
    the command line (e.g. "data.dataset.download=false"). A user error raised while instantiating
    comes out as itself, not wrapped in Hydra's InstantiationException."""
    from hydra.utils import instantiate

    from textclass.config.compose import compose_config
    from textclass.errors import find_user_error

    cfg = compose_config("train", [f"data={name}", f"paths.data_dir={data_dir}", *overrides])
    try:
        return instantiate(cfg.data.dataset, _convert_="all")
    except Exception as err:
        user_error = find_user_error(err)
        if user_error is None:
            raise
        raise user_error from None


# --- the CLIs -------------------------------------------------------------------------------------


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


# --- one tiny training run, shared -----------------------------------------------------------------


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


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> TinyRun:
    """One 2-epoch run of the default job (news, bow, GloVe, TensorBoard) on tiny news with a test
    split: the quick loop's one real training process, shared by every test that needs a run."""
    work = tmp_path_factory.mktemp("tiny_run")
    data = write_tiny_data(work / "data")
    run_ok(list(TINY_RUN_ARGS), cwd=work, env=cli_env(data, work))
    return TinyRun(work, data, work / "run")
