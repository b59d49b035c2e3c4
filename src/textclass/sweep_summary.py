"""One table for a whole sweep: each job's overrides and final metrics, as summary.csv and summary.md.

`SweepSummary` is a Hydra callback (conf/hydra/default.yaml) that writes the table when a multirun
ends. Hydra calls `on_multirun_end` only when every job succeeded: with the basic launcher a job
that raises aborts the sweep, so for an aborted (or still running) sweep, write the table by hand:

    python -m textclass.sweep_summary outputs/train/multiruns/2025-01-01_12-00-00

A job directory without metrics.json is listed with status "failed".
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from textclass.checkpoint import METRICS_FILE

log = logging.getLogger(__name__)

SUMMARY_CSV = "summary.csv"
SUMMARY_MD = "summary.md"
# metrics.json keys, in column order; test/acc only exists when the dataset has a test split
METRICS = ("val/loss", "val/acc", "val/acc_best", "val/f1", "test/acc")
# mean of history.csv's epoch_s (metrics.json holds only the last epoch's time/epoch_s)
EPOCH_S_MEAN = "time/epoch_s_mean"
COLUMNS = ("job", "status", "overrides", *METRICS[:4], EPOCH_S_MEAN, METRICS[4])


@dataclass
class JobResult:
    num: int
    dir: Path
    overrides: list[str] = field(default_factory=list)
    metrics: dict[str, float] | None = None  # None: the job left no metrics.json
    epoch_s_mean: float | None = None

    @property
    def status(self) -> str:
        return "ok" if self.metrics is not None else "failed"

    def row(self) -> dict[str, Any]:
        """The table row: metrics that were not logged are None."""
        metrics = self.metrics or {}
        values = {name: metrics.get(name) for name in METRICS}
        return {"job": self.num, "status": self.status, "overrides": " ".join(self.overrides), **values, EPOCH_S_MEAN: self.epoch_s_mean}


def collect_jobs(sweep_dir: Path) -> list[JobResult]:
    """Every job directory under `sweep_dir` (found by its .hydra/, whatever hydra.sweep.subdir is), by job number."""
    jobs = [read_job(hydra_dir.parent) for hydra_dir in Path(sweep_dir).glob("**/.hydra")]
    return sorted(jobs, key=lambda j: j.num)


def read_job(job_dir: Path) -> JobResult:
    hydra_dir = job_dir / ".hydra"
    num = OmegaConf.select(OmegaConf.load(hydra_dir / "hydra.yaml"), "hydra.job.num")
    overrides_file = hydra_dir / "overrides.yaml"
    overrides = [str(o) for o in OmegaConf.load(overrides_file)] if overrides_file.is_file() else []
    metrics_file = job_dir / METRICS_FILE
    metrics = json.loads(metrics_file.read_text()) if metrics_file.is_file() else None
    return JobResult(num=int(num), dir=job_dir, overrides=overrides, metrics=metrics, epoch_s_mean=_epoch_s_mean(job_dir / "history.csv"))


def _epoch_s_mean(history_csv: Path) -> float | None:
    if not history_csv.is_file():
        return None
    with history_csv.open(newline="") as f:
        times = [float(r["epoch_s"]) for r in csv.DictReader(f) if r.get("epoch_s")]
    return sum(times) / len(times) if times else None


def write_csv(rows: list[dict[str, Any]], path: Path) -> Path:
    """All columns, full precision, empty cells for values not logged: for scripts."""
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows({k: ("" if v is None else v) for k, v in row.items()} for row in rows)
    return path


def to_markdown(rows: list[dict[str, Any]]) -> str:
    """A Markdown table for people: 4 decimals, without the optional columns no job has."""
    optional = (EPOCH_S_MEAN, "test/acc")
    columns = [c for c in COLUMNS if c not in optional or any(r.get(c) is not None for r in rows)]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        lines.append("| " + " | ".join(_cell(row.get(c)) for c in columns) + " |")
    return "\n".join(lines) + "\n"


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4f}" if math.isfinite(value) else str(value)
    return str(value).replace("|", r"\|")  # a literal | would split the cell


def write_summary(sweep_dir: Path | str) -> str:
    """Writes summary.csv and summary.md into `sweep_dir`; returns the Markdown table."""
    sweep_dir = Path(sweep_dir)
    rows = [job.row() for job in collect_jobs(sweep_dir)]
    write_csv(rows, sweep_dir / SUMMARY_CSV)
    table = to_markdown(rows)
    (sweep_dir / SUMMARY_MD).write_text(table)
    return table


class SweepSummary(Callback):
    """Hydra callback: the sweep's summary table once all its jobs have returned."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        table = write_summary(sweep_dir)
        log.info("sweep summary (%s):\n%s", sweep_dir / SUMMARY_MD, table)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m textclass.sweep_summary", description=__doc__.splitlines()[0])
    parser.add_argument("sweep_dir", type=Path, help="the multirun directory (hydra.sweep.dir)")
    args = parser.parse_args(argv)
    if not args.sweep_dir.is_dir():
        parser.error(f"{args.sweep_dir} is not a directory")
    print(write_summary(args.sweep_dir), end="")


if __name__ == "__main__":
    main()
