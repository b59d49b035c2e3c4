"""benchmarks/accuracy.py --quick writes a row per (data, arch), batch_size.py --quick a row per size, and
notebooks/results.ipynb runs on their results."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.paths import real_data, REAL_DATA, REPO

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

NOTEBOOK = REPO / "notebooks" / "results.ipynb"
DATASETS = ("news", "sst2")
QUICK_ARCHS = ("bow", "lstm", "textcnn")  # accuracy.py --quick's default
# better than chance after 1 epoch on 200 examples: 4 classes (news), 2 classes (SST-2)
MIN_ACC = {"news": 0.25, "sst2": 0.4}


def test_committed_notebook_is_valid_and_has_no_outputs():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(not c.outputs and c.execution_count is None for c in code)
    assert "TEXTCLASS_RESULTS_DIR" in code[0].source


@real_data
@pytest.mark.slow
def test_accuracy_quick_and_results_notebook(tmp_path, monkeypatch):
    results_dir = tmp_path / "results"
    work_dir = tmp_path / "work"
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.accuracy", "--quick", "--quiet", "--data-dir", str(REAL_DATA),
         "--work-dir", str(work_dir), "--out", str(results_dir / "accuracy.json")],
        cwd=REPO, capture_output=True, text=True, timeout=800,
        env={**os.environ, "TEXTCLASS_CACHE_DIR": str(tmp_path / "cache")},
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    assert "| `experiment=` | split | n |" in result.stdout

    written = json.loads((results_dir / "accuracy.json").read_text())
    meta, rows = written["metadata"], written["rows"]
    assert meta["quick"] is True and meta["seeds"] == 1
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

    # the batch-size study, whose rows the notebook plots against the batch size
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

    monkeypatch.setenv("TEXTCLASS_RESULTS_DIR", str(results_dir))
    monkeypatch.delenv("MPLBACKEND", raising=False)
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(
        nb, timeout=300, kernel_name="python3", allow_errors=True, resources={"metadata": {"path": str(NOTEBOOK.parent)}}
    )
    client.execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    errors = [f"{o.ename}: {o.evalue}" for o in outputs if o.output_type == "error"]
    assert not errors, errors
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) >= 3, "expected the accuracy bars, the training curves and the batch-size plot"
    batch_cell = next(c for c in nb.cells if c.cell_type == "code" and "batch_size.json" in c.source)
    assert any("image/png" in o.get("data", {}) for o in batch_cell.outputs)
