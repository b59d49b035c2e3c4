"""One table for a whole sweep: each job's overrides and final metrics, as summary.csv and summary.md.

`SweepSummary` is a Hydra callback (conf/hydra/default.yaml) that writes the table when a multirun
ends. Hydra calls `on_multirun_end` only when every job succeeded: with the basic launcher a job
that raises aborts the sweep, so for an aborted (or still running) sweep, write the table by hand:

    python -m textclass.sweep_summary outputs/train/multiruns/2025-01-01_12-00-00

A job directory without metrics.json is listed with status "failed". Jobs that differ only in
`data.fold` or `seed` (a cross-validation, repeated seeds) also get one row each in a second table
of summary.md: n, and each metric's mean ± sample std.

With `plot_x` (a swept key such as `data.batch_size`), it also draws `plot_y` (seconds per epoch by
default) against that key's values, as `<plot_y>_by_<plot_x>.png`: the batch-size study
(conf/experiment/news_batch_size_study.yaml) is one such sweep.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from textclass.run_files import HISTORY_FILE, METRICS_FILE
from textclass.plots import plot_metric_by_param
from textclass.metric_names import EPOCH_S_MEAN, TEST_ACC, VAL_ACC, VAL_ACC_BEST, VAL_F1, VAL_LOSS

log = logging.getLogger(__name__)

SUMMARY_CSV = "summary.csv"
SUMMARY_MD = "summary.md"
# metrics.json keys, in column order; test/acc only exists when the dataset has a test split
METRICS = (VAL_LOSS, VAL_ACC, VAL_ACC_BEST, VAL_F1, TEST_ACC)
# mean of history.csv's epoch_s (metrics.json holds only the last epoch's time/epoch_s)
# jobs that differ only in these overrides are repeats of one setup: summarised as mean ± std
REPEAT_KEYS = ("data.fold", "seed")
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

    def override(self, key: str) -> str | None:
        """The value this job was given for `key` on the command line, if any."""
        values = [o.split("=", 1)[1] for o in self.overrides if o.lstrip("+~").split("=", 1)[0] == key and "=" in o]
        return values[-1] if values else None

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
    return JobResult(num=int(num), dir=job_dir, overrides=overrides, metrics=metrics, epoch_s_mean=_epoch_s_mean(job_dir / HISTORY_FILE))


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
    optional = (EPOCH_S_MEAN, TEST_ACC)
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


def aggregate(jobs: list[JobResult]) -> list[dict[str, Any]]:
    """Jobs that differ only in `REPEAT_KEYS` (a cross-validation's folds, repeated seeds) as one
    row each: n and each metric's mean and sample std. Only groups of two or more jobs."""
    groups: dict[str, list[JobResult]] = {}
    for job in jobs:
        if job.metrics is None:
            continue
        rest = [o for o in job.overrides if o.lstrip("+~").split("=", 1)[0] not in REPEAT_KEYS]
        groups.setdefault(" ".join(rest), []).append(job)
    rows = []
    for overrides, members in groups.items():
        if len(members) < 2:
            continue
        row: dict[str, Any] = {"overrides": overrides, "n": len(members)}
        for name in METRICS:
            values = [m.metrics[name] for m in members if name in m.metrics]
            if len(values) == len(members):
                row[name] = (statistics.fmean(values), statistics.stdev(values))
        rows.append(row)
    return rows


def aggregate_markdown(rows: list[dict[str, Any]]) -> str:
    metrics = [m for m in METRICS if any(m in r for r in rows)]
    lines = [
        f"\n## Mean ± std (sample) over {' / '.join(REPEAT_KEYS)}\n",
        "| overrides | n | " + " | ".join(metrics) + " |",
        "|" + "---|" * (2 + len(metrics)),
    ]
    for row in rows:
        cells = [f"{row[m][0]:.4f} ± {row[m][1]:.4f}" if m in row else "" for m in metrics]
        lines.append(f"| {_cell(row['overrides'])} | {row['n']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot_points(jobs: list[JobResult], x: str, y: str) -> list[tuple[float, float]]:
    """(value of override `x`, table value `y`) of each job that has both as numbers."""
    points = []
    for job in jobs:
        x_value, y_value = job.override(x), job.row().get(y)
        try:
            points.append((float(x_value), float(y_value)))
        except (TypeError, ValueError):
            log.warning("job %d: no numeric %s and %s, left out of the plot", job.num, x, y)
    return points


def plot_name(x: str, y: str) -> str:
    """`time/epoch_s_mean` by `data.batch_size` -> epoch_s_mean_by_batch_size.png"""
    return f"{_last_part(y)}_by_{_last_part(x)}.png"


def _last_part(key: str) -> str:
    return key.replace("/", ".").rsplit(".", 1)[-1]


def write_summary(sweep_dir: Path | str, plot_x: str | None = None, plot_y: str = EPOCH_S_MEAN) -> str:
    """Writes summary.csv and summary.md (and the plot, given `plot_x`) into `sweep_dir`; returns the Markdown table."""
    sweep_dir = Path(sweep_dir)
    jobs = collect_jobs(sweep_dir)
    rows = [job.row() for job in jobs]
    write_csv(rows, sweep_dir / SUMMARY_CSV)
    table = to_markdown(rows)
    groups = aggregate(jobs)
    if groups:
        table += aggregate_markdown(groups)
    (sweep_dir / SUMMARY_MD).write_text(table)
    if plot_x:
        path = plot_metric_by_param(plot_points(jobs, plot_x, plot_y), sweep_dir / plot_name(plot_x, plot_y), x_label=plot_x, y_label=plot_y)
        log.info("%s by %s: %s", plot_y, plot_x, path)
    return table


class SweepSummary(Callback):
    """Hydra callback: the sweep's summary table (and plot) once all its jobs have returned."""

    def __init__(self, plot_x: str | None = None, plot_y: str = EPOCH_S_MEAN) -> None:
        self.plot_x = plot_x
        self.plot_y = plot_y

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        table = write_summary(sweep_dir, self.plot_x, self.plot_y)
        log.info("sweep summary (%s):\n%s", sweep_dir / SUMMARY_MD, table)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m textclass.sweep_summary", description=__doc__.splitlines()[0])
    parser.add_argument("sweep_dir", type=Path, help="the multirun directory (hydra.sweep.dir)")
    parser.add_argument("--plot-x", help="a swept key (e.g. data.batch_size): also plot --plot-y against it")
    parser.add_argument("--plot-y", default=EPOCH_S_MEAN, help=f"a summary column (default {EPOCH_S_MEAN})")
    args = parser.parse_args(argv)
    if not args.sweep_dir.is_dir():
        parser.error(f"{args.sweep_dir} is not a directory")
    if args.plot_y not in COLUMNS:
        parser.error(f"--plot-y {args.plot_y}: not a summary column; one of {', '.join(COLUMNS[3:])}")
    print(write_summary(args.sweep_dir, args.plot_x, args.plot_y), end="")


if __name__ == "__main__":
    main()
