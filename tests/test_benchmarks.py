"""The benchmark scripts run (quick mode) and write every row they promise."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest
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


@real_data
def test_overhead_benchmark_quick(tmp_path):
    out = tmp_path / "overhead.json"
    result = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "overhead.py"), "--quick", "--data-dir", str(REAL_DATA), "--out", str(out)],
        capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    rows = {r["name"]: r["value"] for r in json.loads(out.read_text())["rows"]}
    for model in ("bow", "lstm", "textcnn"):
        bare, framework = rows[f"{model} bare s/epoch"], rows[f"{model} textclass s/epoch"]
        assert bare > 0 and framework > 0
        assert math.isfinite(rows[f"{model} textclass/bare"]) and rows[f"{model} textclass/bare"] > 0
        assert rows[f"{model} textclass/bare"] == pytest.approx(framework / bare)
    assert "target <= 1.10" in result.stdout


@real_data
@pytest.mark.slow
def test_inference_benchmark_quick(tmp_path):
    out = tmp_path / "inference.json"
    result = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "inference.py"), "--quick", "--models", "textcnn", "--data-dir", str(REAL_DATA), "--out", str(out)],
        capture_output=True, text=True, timeout=900,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    rows = {r["name"]: r for r in json.loads(out.read_text())["rows"]}
    assert rows["textcnn predict sentences/s batched"]["value"] > 0 and rows["textcnn predict sentences/s batched"]["sentences"] == 2000
    assert 0 < rows["textcnn predict sentences/s end-to-end"]["value"]
