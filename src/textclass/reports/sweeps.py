"""One table for a whole sweep: each job's overrides and final metrics, as summary.csv and summary.md;
for repeats of one setup, their aggregates as aggregate.md, aggregate.csv and aggregate.json.

`SweepSummary` is a Hydra callback (conf/hydra/default.yaml) that writes them when a multirun
ends. Hydra calls `on_multirun_end` only when every job succeeded: with the basic launcher a job
that raises aborts the sweep, so for an aborted (or still running) sweep, write them by hand:

    textclass summary outputs/train/multiruns/2025-01-01_12-00-00

A job directory without metrics.json is listed with status "failed". Jobs that differ only in
`data.fold` or `seed` (a cross-validation, `textclass-train seeds=N`) are repeats of one setup: each
group of two or more gets, per final metric, n, mean, sample std, min, max and the 95% t-interval of
the mean (aggregate.*, and as a second table of summary.md); failed jobs are left out and listed.

With `plot_x` (a swept key such as `data.batch_size`), it also draws `plot_y` (seconds per epoch by
default) against that key's values, as `<plot_y>_by_<plot_x>.png`: the batch-size study
(conf/experiment/news_batch_size_study.yaml) is one such sweep.
"""

from __future__ import annotations

import csv
import json
import logging
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf
from scipy import stats

from textclass.overrides import distinct, override_key
from textclass.tables import markdown_table
from textclass.metric_names import (
    EPOCH_S_MEAN,
    TEST_ACC,
    TEST_F1,
    VAL_ACC,
    VAL_ACC_BEST,
    VAL_ACC_SELECTED,
    VAL_F1,
    VAL_F1_SELECTED,
    VAL_LOSS,
    headline,
)
from textclass.run_files import HISTORY_FILE, METRICS_FILE, OVERRIDES_FILE
from textclass.training.run_dir import read_overrides

log = logging.getLogger(__name__)

SUMMARY_CSV = "summary.csv"
SUMMARY_MD = "summary.md"
AGGREGATE_MD = "aggregate.md"
AGGREGATE_CSV = "aggregate.csv"
AGGREGATE_JSON = "aggregate.json"
# metrics.json keys, in column order: the headline figures first (test/acc where the dataset has a
# test split, else val/acc_selected); val/acc_best (the best epoch picked on the split it is scored on) last
METRICS = (TEST_ACC, VAL_ACC_SELECTED, TEST_F1, VAL_F1_SELECTED, VAL_LOSS, VAL_ACC, VAL_F1, VAL_ACC_BEST)
# the figures of the checkpoint a run reports (and its val/loss) that repeats are aggregated over
FINAL_METRICS = (TEST_ACC, TEST_F1, VAL_ACC_SELECTED, VAL_F1_SELECTED, VAL_LOSS)
# jobs that differ only in these overrides are repeats of one setup
REPEAT_KEYS = ("data.fold", "seed")
CONFIDENCE = 0.95
# EPOCH_S_MEAN: the mean of history.csv's epoch_s (metrics.json holds only the last epoch's time/epoch_s)
COLUMNS = ("job", "status", "overrides", *METRICS, EPOCH_S_MEAN)
AGGREGATE_COLUMNS = ("overrides", "n", "failed", "metric", "headline", "mean", "std", "min", "max", "ci_low", "ci_high")


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
        values = [o.split("=", 1)[1] for o in self.overrides if override_key(o) == key and "=" in o]
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
    overrides_file = job_dir / OVERRIDES_FILE
    overrides = read_overrides(overrides_file) if overrides_file.is_file() else []
    metrics_file = job_dir / METRICS_FILE
    metrics = json.loads(metrics_file.read_text()) if metrics_file.is_file() else None
    return JobResult(num=int(num), dir=job_dir, overrides=overrides, metrics=metrics, epoch_s_mean=_epoch_s_mean(job_dir / HISTORY_FILE))


def _epoch_s_mean(history_csv: Path) -> float | None:
    if not history_csv.is_file():
        return None
    with history_csv.open(newline="") as f:
        times = [float(r["epoch_s"]) for r in csv.DictReader(f) if r.get("epoch_s")]
    return sum(times) / len(times) if times else None


def write_csv(rows: list[dict[str, Any]], path: Path, columns: Sequence[str] = COLUMNS) -> Path:
    """All columns, full precision, empty cells for values not logged: for scripts."""
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows({k: ("" if v is None else v) for k, v in row.items()} for row in rows)
    return path


def to_markdown(jobs: list[JobResult]) -> str:
    """A Markdown table for people: each job's own overrides (those every job shares said once,
    above it), 4 decimals, without the metric columns no job has."""
    overrides = distinct([job.overrides for job in jobs])
    rows = [{**job.row(), "overrides": " ".join(own)} for job, own in zip(jobs, overrides.own)]
    optional = (*METRICS, EPOCH_S_MEAN)
    columns = [c for c in COLUMNS if c not in optional or any(r.get(c) is not None for r in rows)]
    return shared_line(overrides.shared, "job") + markdown_table(columns, [[row.get(c) for c in columns] for row in rows])


def shared_line(shared: Sequence[str], what: str) -> str:
    """`Every job: trainer.max_epochs=5 data=sst2` (and a blank line), or nothing when nothing is shared."""
    return f"Every {what}: `{' '.join(shared)}`\n\n" if shared else ""


def setup_name(job: JobResult) -> str:
    """The job's overrides other than `REPEAT_KEYS`: what all repeats of its setup share."""
    return " ".join(o for o in job.overrides if override_key(o) not in REPEAT_KEYS)


def group_repeats(jobs: list[JobResult]) -> dict[str, list[JobResult]]:
    """The finished jobs grouped by their overrides other than `REPEAT_KEYS` (the group's name): the
    repeats of one setup (seeds, folds) land in one group."""
    groups: dict[str, list[JobResult]] = {}
    for job in jobs:
        if job.metrics is not None:
            groups.setdefault(setup_name(job), []).append(job)
    return groups


@dataclass(frozen=True)
class Stats:
    """One metric over two or more repeats: the sample std (n - 1) and the t-interval of the mean."""

    mean: float
    std: float
    min: float
    max: float
    ci_low: float
    ci_high: float

    def cell(self) -> str:
        return f"{self.mean:.4f} ± {self.std:.4f} [{self.ci_low:.4f}, {self.ci_high:.4f}]"


def describe(values: Sequence[float], confidence: float = CONFIDENCE) -> Stats:
    x = np.asarray(values, dtype=float)
    mean, std = float(x.mean()), float(x.std(ddof=1))
    # scipy's interval is nan at scale 0; identical values (a deterministic setup) have a point interval
    low, high = (mean, mean) if std == 0 else stats.t.interval(confidence, len(x) - 1, loc=mean, scale=std / math.sqrt(len(x)))
    return Stats(mean, std, float(x.min()), float(x.max()), float(low), float(high))


@dataclass(frozen=True)
class RepeatGroup:
    """The finished repeats of one setup and their aggregates."""

    overrides: str  # the setup: the jobs' overrides other than REPEAT_KEYS
    jobs: list[int]
    failed_jobs: list[int]  # repeats of this setup that left no metrics.json, left out of `metrics`
    headline: str  # the metric to report first (metric_names.headline)
    headline_split: str  # "test", or "valid (selection split)" for a dataset without a test split
    metrics: dict[str, Stats]  # the FINAL_METRICS every job has: the headline, then in that order

    @property
    def n(self) -> int:
        return len(self.jobs)


@dataclass(frozen=True)
class Aggregates:
    groups: list[RepeatGroup]  # setups with two or more finished repeats
    failed_jobs: list[int]  # every failed job of the sweep


def aggregate(jobs: list[JobResult]) -> Aggregates:
    """Jobs that differ only in `REPEAT_KEYS` (a cross-validation's folds, repeated seeds) as one
    group each, with each final metric's statistics. Only groups of two or more finished jobs."""
    failed: dict[str, list[int]] = {}
    for job in jobs:
        if job.metrics is None:
            failed.setdefault(setup_name(job), []).append(job.num)
    groups = []
    for name, members in group_repeats(jobs).items():
        if len(members) < 2:
            continue
        metrics = {m: describe([j.metrics[m] for j in members]) for m in FINAL_METRICS if all(m in j.metrics for j in members)}
        key, split = headline({m: s.mean for m, s in metrics.items()})
        metrics = dict(sorted(metrics.items(), key=lambda item: item[0] != key))  # stable: the headline first
        groups.append(RepeatGroup(name, [j.num for j in members], failed.get(name, []), key, split, metrics))
    return Aggregates(groups, [j.num for j in jobs if j.metrics is None])


def aggregate_markdown(agg: Aggregates) -> str:
    """One table per headline metric (a sweep over datasets with and without a test split has two),
    the headline column first."""
    parts = [f"## Repeats over {' / '.join(REPEAT_KEYS)}: mean ± sample std [{CONFIDENCE:.0%} t-interval of the mean]\n"]
    if agg.failed_jobs:
        jobs = "job" + "s" * (len(agg.failed_jobs) > 1)
        parts.append(f"Left out: the failed {jobs} {', '.join(map(str, agg.failed_jobs))} (no {METRICS_FILE}).\n")
    for key, split in dict.fromkeys((g.headline, g.headline_split) for g in agg.groups):
        groups = [g for g in agg.groups if g.headline == key]
        metrics = [m for m in dict.fromkeys((key, *FINAL_METRICS)) if any(m in g.metrics for g in groups)]
        overrides = distinct([g.overrides.split() for g in groups])
        rows = [[" ".join(own) or "(no overrides)", g.n, *(g.metrics[m].cell() if m in g.metrics else "" for m in metrics)] for g, own in zip(groups, overrides.own)]
        parts.append(f"Headline: {key} on {split}\n\n" + shared_line(overrides.shared, "setup") + markdown_table(["overrides", "n", *metrics], rows))
    return "\n".join(parts)


def aggregate_rows(agg: Aggregates) -> list[dict[str, Any]]:
    """aggregate.csv: one row per group and metric, the headline's row (its split in `headline`) first."""
    return [
        {"overrides": g.overrides, "n": g.n, "failed": len(g.failed_jobs), "metric": m, "headline": g.headline_split if m == g.headline else None, **asdict(s)}
        for g in agg.groups
        for m, s in g.metrics.items()
    ]


def aggregate_json(agg: Aggregates) -> dict[str, Any]:
    return {
        "repeat_keys": list(REPEAT_KEYS),
        "confidence": CONFIDENCE,
        "failed_jobs": agg.failed_jobs,
        "groups": [{"n": g.n, **asdict(g)} for g in agg.groups],
    }


def write_aggregates(agg: Aggregates, sweep_dir: Path) -> str:
    """Writes aggregate.md, aggregate.csv and aggregate.json into `sweep_dir`; returns the Markdown."""
    text = aggregate_markdown(agg)
    (sweep_dir / AGGREGATE_MD).write_text(text)
    write_csv(aggregate_rows(agg), sweep_dir / AGGREGATE_CSV, AGGREGATE_COLUMNS)
    (sweep_dir / AGGREGATE_JSON).write_text(json.dumps(aggregate_json(agg), indent=1))
    return text


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
    """Writes summary.csv and summary.md, the aggregate.* files when the sweep has repeats, and the plot
    given `plot_x`, into `sweep_dir`; returns summary.md's text."""
    sweep_dir = Path(sweep_dir)
    jobs = collect_jobs(sweep_dir)
    write_csv([job.row() for job in jobs], sweep_dir / SUMMARY_CSV)
    table = to_markdown(jobs)
    agg = aggregate(jobs)
    if agg.groups:
        table += "\n" + write_aggregates(agg, sweep_dir)
    (sweep_dir / SUMMARY_MD).write_text(table)
    if plot_x:
        from textclass.training.plots import plot_metric_by_param  # matplotlib: for a sweep that plots

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
