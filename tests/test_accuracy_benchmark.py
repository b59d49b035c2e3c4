"""benchmarks.accuracy --quick writes a row per (data, arch) and benchmarks.batch_size --quick a row per size;
benchmarks.nlp100 --fill-docs puts each recipe's figure where the tutorials and notebooks show it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from benchmarks.nlp100 import NOTEBOOK_FIGURE, NOTEBOOKS, RECIPES, TABLE_ROW, TUTORIALS, fill_sentence, fill_table
from helpers.paths import real_data, REAL_DATA, REPO

DATASETS = ("news", "sst2")
QUICK_ARCHS = ("bow", "lstm", "textcnn")  # accuracy.py --quick's default
# better than chance after 1 epoch on 200 examples: 4 classes (news), 2 classes (SST-2)
MIN_ACC = {"news": 0.25, "sst2": 0.4}


@real_data
@pytest.mark.slow
def test_accuracy_and_batch_size_quick(tmp_path):
    results_dir = tmp_path / "results"
    work_dir = tmp_path / "work"
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.accuracy", "--quick", "--quiet", "--jobs", "2", "--data-dir", str(REAL_DATA),
         "--work-dir", str(work_dir), "--out", str(results_dir / "accuracy.json")],
        cwd=REPO, capture_output=True, text=True, timeout=800,
        env={**os.environ, "TEXTCLASS_CACHE_DIR": str(tmp_path / "cache")},
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    assert "| `experiment=` | split | n |" in result.stdout

    written = json.loads((results_dir / "accuracy.json").read_text())
    meta, rows = written["metadata"], written["rows"]
    assert meta["quick"] is True and meta["seeds"] == 1
    # two jobs at a time through the joblib launcher, each sweep's wall time printed and kept
    assert meta["jobs"] == 2 and all("hydra/launcher=joblib hydra.launcher.n_jobs=2" in c for c in meta["commands"].values())
    for data in DATASETS:
        assert f"{data}: {len(QUICK_ARCHS)} jobs, 2 at a time, wall " in result.stdout and meta["sweep_wall_s"][data] > 0
    assert meta["sweep_dir"] == str((work_dir / "multirun").resolve())
    assert meta["holdout"] == {"news": 0.1, "sst2": 0.1}  # the shared copy has no test split of its own
    by_pair = {(r["data"], r["arch"]): r for r in rows}
    assert set(by_pair) == {(d, a) for d in DATASETS for a in QUICK_ARCHS}
    for (data, arch), row in by_pair.items():
        assert row["status"] == "ok", row
        assert row["name"] == f"{data} {arch} acc" and row["experiment"] == f"best/{data}_{arch}"
        # the held-out figure: the selected checkpoint on the valid file, which selected nothing here
        assert row["split"] == "test" and row["n"] == 1 and row["values"] == [row["value"]], row
        job = Path(row["job_dirs"][0])
        assert row["value"] == json.loads((job / "metrics.json").read_text())["test/acc"]
        assert MIN_ACC[data] < row["value"] <= 1.0, row
        assert row["moved"] == pytest.approx(row["value"] - row["acc_best"]) and 0 <= row["f1"] <= 1
        assert row["std"] is None and row["ci95"] is None  # one seed
        assert row["epochs"] == 1 and row["time_s"] > 0
        assert row["target"] is not None and row["met"] is False  # 1 epoch on 200 examples: far from the targets
        assert (job / "predictions_test.npz").is_file() and (job / "predictions_valid.npz").is_file()
        assert any((job / "tensorboard").glob("events.out.tfevents.*")), job
    # textclass-compare ranked each dataset's three configs: one leader each
    assert sum(bool(r.get("leader")) for r in rows) == len(DATASETS)
    assert (results_dir / "accuracy.md").read_text().count("| `best/") == len(rows)

    # the batch-size study: seconds per epoch by batch size
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.batch_size", "--quick", "--quiet", "--data-dir", str(REAL_DATA),
         "--work-dir", str(tmp_path / "bs_work"), "--out", str(results_dir / "batch_size.json")],
        cwd=REPO, capture_output=True, text=True, timeout=300,
        env={**os.environ, "TEXTCLASS_CACHE_DIR": str(tmp_path / "cache")},
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    sizes = json.loads((results_dir / "batch_size.json").read_text())["rows"]
    assert [r["batch_size"] for r in sizes if "batch_size" in r] == [16, 256]
    assert all(r["value"] > 0 for r in sizes)
    assert (tmp_path / "bs_work" / "multirun" / "epoch_s_mean_by_batch_size.png").is_file()


def test_every_nlp100_recipe_has_a_row_in_a_tutorial_and_a_sentence_in_a_notebook():
    """benchmarks.nlp100 --fill-docs finds where each recipe's figure goes, and fills it in."""
    pages = "".join(p.read_text() for p in TUTORIALS.glob("nlp100-*.md"))
    notebooks = "".join("".join(c["source"]) for p in NOTEBOOKS.glob("nlp100_*.ipynb") for c in json.loads(p.read_text())["cells"])
    assert sorted({m["recipe"] for m in TABLE_ROW.finditer(pages)}) == sorted(RECIPES)
    assert sorted({m["recipe"] for m in NOTEBOOK_FIGURE.finditer(notebooks)}) == sorted(RECIPES)

    figures = {"nlp100_2020/73": (0.8912, 125.0)}
    row = "| 73-74 | `nlp100_2020/73` | FIGURE | TIME | 0.891 (train 0.920) |"
    assert fill_table(row, figures) == "| 73-74 | `nlp100_2020/73` | 0.891 | 2 min | 0.891 (train 0.920) |"
    assert fill_table(fill_table(row, figures), {"nlp100_2020/73": (0.9, 42.0)}).endswith("| 0.900 | 42 s | 0.891 (train 0.920) |")
    sentence = "Full run of `experiment=nlp100_2020/73 data.holdout=0.1` (how): (not measured yet). Published figure for 74."
    assert fill_sentence(sentence, figures) == (
        "Full run of `experiment=nlp100_2020/73 data.holdout=0.1` (how): test accuracy 0.891, 2 min on a 2-core CPU. Published figure for 74."
    )
