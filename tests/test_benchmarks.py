"""The benchmark scripts run (quick mode) and write every row they promise."""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import REAL_DATA, REPO, real_data


@real_data
def test_data_pipeline_benchmark_quick(tmp_path):
    out = tmp_path / "bench.json"
    result = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "data_pipeline.py"), "--quick", "--data-dir", str(REAL_DATA), "--out", str(out)],
        capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    rows = {r["name"]: r["value"] for r in json.loads(out.read_text())["rows"]}
    for dataset in ("sst2", "news"):
        assert rows[f"{dataset} prepare cached"] < rows[f"{dataset} prepare cold"]
        assert 0 < rows[f"{dataset} train padding bucketed bs64"] < rows[f"{dataset} train padding shuffled bs64"] < 1
    assert rows["sst2 collate bs64"] > 0 and rows["glove_6b_50d load_vectors"] > 0
    assert "target sst2 prepare cached <= 1 s" in result.stdout


@real_data
def test_models_benchmark_quick(tmp_path):
    out = tmp_path / "models.json"
    result = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "models.py"), "--quick", "--models", "bow,cnn", "--accuracy", "bow",
         "--data-dir", str(REAL_DATA), "--out", str(out)],
        capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    rows = {r["name"]: r["value"] for r in json.loads(out.read_text())["rows"]}
    assert rows["bow trainable parameters"] < rows["cnn trainable parameters"]
    assert rows["bow training throughput bs64"] > 0 and rows["cnn training throughput bs64"] > 0
    assert 0.25 < rows["bow news valid acc after 1 epochs"] <= 1.0  # 4 classes: better than chance
