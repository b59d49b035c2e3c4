"""The sweep summary's aggregates over repeats (seeds, folds) on hand-made sweep directories: mean, sample
std, min, max and the 95% t-interval of the mean, in aggregate.md / .csv / .json (quick)."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest

from textclass.commands.summary import main as summary_command
from textclass.reports import sweeps as sweep_summary

T_975_DF2 = 4.302653  # the t distribution's 97.5% quantile at 2 degrees of freedom


def fake_job(sweep: Path, num: int, overrides: list[str], metrics: dict[str, float] | None) -> None:
    """A job directory as Hydra and textclass-train leave it; `metrics` None: a failed job."""
    job_dir = sweep / str(num)
    (job_dir / ".hydra").mkdir(parents=True)
    (job_dir / ".hydra" / "hydra.yaml").write_text(f"hydra:\n  job:\n    num: {num}\n    name: train\n")
    (job_dir / ".hydra" / "overrides.yaml").write_text("".join(f"- {o}\n" for o in overrides))
    if metrics is not None:
        (job_dir / "metrics.json").write_text(json.dumps(metrics))


def with_test(acc: float) -> dict[str, float]:
    return {"test/acc": acc, "test/f1": acc - 0.1, "val/acc_selected": acc + 0.01, "val/f1_selected": 0.5, "val/loss": 0.3, "val/acc_best": 0.99}


@pytest.fixture
def seeds_sweep(tmp_path: Path) -> Path:
    """model=lstm over 3 seeds (test/acc 0.90, 0.92, 0.94) and a 4th that failed; model=gru: one
    finished seed, one failed."""
    for num, acc in enumerate([0.90, 0.92, 0.94]):
        fake_job(tmp_path, num, ["model=lstm", f"seed={num + 1}"], with_test(acc))
    fake_job(tmp_path, 3, ["model=lstm", "seed=4"], None)
    fake_job(tmp_path, 4, ["model=gru", "seed=1"], with_test(0.8))
    fake_job(tmp_path, 5, ["model=gru", "seed=2"], None)
    return tmp_path


def test_aggregate_json_holds_mean_std_min_max_and_t_interval(seeds_sweep):
    sweep_summary.write_summary(seeds_sweep)
    report = json.loads((seeds_sweep / "aggregate.json").read_text())
    assert report["confidence"] == 0.95 and report["repeat_keys"] == ["data.fold", "seed"]
    assert report["failed_jobs"] == [3, 5]
    (group,) = report["groups"]  # model=gru has one finished job: no aggregate
    assert (group["overrides"], group["n"], group["jobs"], group["failed_jobs"]) == ("model=lstm", 3, [0, 1, 2], [3])
    assert (group["headline"], group["headline_split"]) == ("test/acc", "test")
    assert list(group["metrics"]) == ["test/acc", "test/f1", "val/acc_selected", "val/f1_selected", "val/loss"]  # never val/acc_best
    half = T_975_DF2 * 0.02 / math.sqrt(3)
    expected = {"mean": 0.92, "std": 0.02, "min": 0.90, "max": 0.94, "ci_low": 0.92 - half, "ci_high": 0.92 + half}
    assert group["metrics"]["test/acc"] == pytest.approx(expected, abs=1e-6)
    # identical values: a zero-width interval, not scipy's nan
    assert group["metrics"]["val/loss"] == pytest.approx({"mean": 0.3, "std": 0.0, "min": 0.3, "max": 0.3, "ci_low": 0.3, "ci_high": 0.3})


def test_aggregate_csv_has_one_row_per_group_and_metric_headline_first(seeds_sweep):
    summary_command([str(seeds_sweep)])  # the command line writes the aggregates too
    with (seeds_sweep / "aggregate.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == list(sweep_summary.AGGREGATE_COLUMNS)
    assert [(r["overrides"], r["n"], r["failed"], r["metric"], r["headline"]) for r in rows[:2]] == [
        ("model=lstm", "3", "1", "test/acc", "test"),
        ("model=lstm", "3", "1", "test/f1", ""),
    ]
    assert len(rows) == 5
    assert float(rows[0]["ci_high"]) == pytest.approx(0.92 + T_975_DF2 * 0.02 / math.sqrt(3), abs=1e-6)


def test_aggregate_markdown_cells_and_summary_md_carries_it(seeds_sweep):
    text = sweep_summary.write_summary(seeds_sweep)
    aggregate_md = (seeds_sweep / "aggregate.md").read_text()
    assert text.endswith("\n" + aggregate_md)  # summary.md: the job table, then the same aggregates
    lines = aggregate_md.splitlines()
    assert lines[0] == "## Repeats over data.fold / seed: mean ± sample std [95% t-interval of the mean]"
    assert "Left out: the failed jobs 3, 5 (no metrics.json)." in lines
    assert "Headline: test/acc on test" in lines
    header = "| overrides | n | test/acc | test/f1 | val/acc_selected | val/f1_selected | val/loss |"
    assert lines[lines.index(header) + 2].startswith("| model=lstm | 3 | 0.9200 ± 0.0200 [0.8703, 0.9697] | 0.8200 ± 0.0200 [")
    assert "model=gru" not in aggregate_md


def test_per_job_table_puts_the_headline_columns_first(seeds_sweep):
    text = sweep_summary.write_summary(seeds_sweep)
    assert text.splitlines()[0] == (
        "| job | status | overrides | test/acc | val/acc_selected | test/f1 | val/f1_selected | val/loss | val/acc_best |"
    )
    assert text.splitlines()[2] == "| 0 | ok | model=lstm seed=1 | 0.9000 | 0.9100 | 0.8000 | 0.5000 | 0.3000 | 0.9900 |"


def test_without_a_test_split_the_headline_is_the_selection_split(tmp_path):
    for num, acc in enumerate([0.7, 0.8]):
        fake_job(tmp_path, num, ["data=sst2", f"data.fold={num}"], {"val/acc_selected": acc, "val/loss": 0.5, "val/acc_best": 0.9})
    for num, acc in enumerate([0.6, 0.9], start=2):
        fake_job(tmp_path, num, ["data=news", f"data.fold={num - 2}"], with_test(acc))
    agg = sweep_summary.aggregate(sweep_summary.collect_jobs(tmp_path))
    assert [(g.overrides, g.headline, g.headline_split, list(g.metrics)) for g in agg.groups] == [
        ("data=sst2", "val/acc_selected", "valid (selection split)", ["val/acc_selected", "val/loss"]),
        ("data=news", "test/acc", "test", ["test/acc", "test/f1", "val/acc_selected", "val/f1_selected", "val/loss"]),
    ]
    # one table per headline, each with its headline column first
    lines = sweep_summary.aggregate_markdown(agg).splitlines()
    sst2 = lines.index("Headline: val/acc_selected on valid (selection split)")
    assert lines[sst2 + 2] == "| overrides | n | val/acc_selected | val/loss |"
    assert lines[sst2 + 4].startswith("| data=sst2 | 2 | 0.7500 ± 0.0707 [")
    news = lines.index("Headline: test/acc on test")
    assert lines[news + 2].startswith("| overrides | n | test/acc | ")
    assert lines[news + 4].startswith("| data=news | 2 | 0.7500 ± 0.2121 [")


def test_no_repeats_no_aggregate_files(tmp_path):
    fake_job(tmp_path, 0, ["model=lstm", "seed=1"], with_test(0.9))
    fake_job(tmp_path, 1, ["model=gru", "seed=1"], with_test(0.8))
    fake_job(tmp_path, 2, ["model=gru", "seed=2"], None)
    text = sweep_summary.write_summary(tmp_path)
    assert "Repeats" not in text
    assert not any((tmp_path / name).exists() for name in ("aggregate.md", "aggregate.csv", "aggregate.json"))


def test_group_repeats_ignores_seed_and_fold_overrides_and_failed_jobs(seeds_sweep):
    groups = sweep_summary.group_repeats(sweep_summary.collect_jobs(seeds_sweep))
    assert {name: [j.num for j in jobs] for name, jobs in groups.items()} == {"model=lstm": [0, 1, 2], "model=gru": [4]}


def test_repeats_of_the_defaults_and_one_failed_job(tmp_path):
    fake_job(tmp_path, 0, ["seed=1"], with_test(0.9))
    fake_job(tmp_path, 1, ["seed=2"], with_test(0.8))
    fake_job(tmp_path, 2, ["seed=3"], None)
    lines = sweep_summary.write_summary(tmp_path).splitlines()
    assert "Left out: the failed job 2 (no metrics.json)." in lines
    assert any(line.startswith("| (no overrides) | 2 | 0.8500 ± 0.0707 [") for line in lines)
