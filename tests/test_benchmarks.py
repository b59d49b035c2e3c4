"""The benchmark scripts run (quick mode) and write every row they promise. Each test runs a benchmark
script in a subprocess, most on the real data: all are slow."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest
import torch
from helpers.paths import real_data, REAL_DATA, REPO

from benchmarks._postgres import unavailable as postgres_unavailable

pytestmark = pytest.mark.slow


def run_quick(script: str, tmp_path, *args: str, timeout: int = 600) -> tuple[subprocess.CompletedProcess, list[dict]]:
    """`python -m benchmarks.<script> --quick` on the real data; its result and the rows of the results file it wrote."""
    out = tmp_path / "results.json"
    result = subprocess.run(
        [sys.executable, "-m", f"benchmarks.{script}", "--quick", *args, "--data-dir", str(REAL_DATA), "--out", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=timeout,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    return result, json.loads(out.read_text())["rows"]


@real_data
def test_data_pipeline_benchmark_quick(tmp_path):
    result, rows = run_quick("data_pipeline", tmp_path)
    rows = {r["name"]: r["value"] for r in rows}
    for dataset in ("sst2", "news"):
        assert rows[f"{dataset} prepare cached"] < rows[f"{dataset} prepare cold"]
        assert 0 < rows[f"{dataset} train padding bucketed bs64"] < rows[f"{dataset} train padding shuffled bs64"] < 1
    assert rows["sst2 collate bs64"] > 0 and rows["glove_6b_50d load_vectors"] > 0
    assert "target sst2 prepare cached <= 1 s" in result.stdout


def test_data_pipeline_benchmark_rows(tmp_path):
    """--rows: a small synthetic CSV (some fields quoted) read and encoded, each step in its own process."""
    out = tmp_path / "rows.json"
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.data_pipeline", "--rows", "3000", "--out", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    record = json.loads(out.read_text())
    rows = {r["name"]: r["value"] for r in record["rows"]}
    meta = record["metadata"]
    assert meta["rows_with_commas"] > 0 and meta["rows_with_quotes"] > 0
    assert sum(meta["examples"].values()) == 3000 and abs(meta["examples"]["train"] - 2700) <= 4  # stratified 0.9/0.1
    assert rows["csv3000 file size"] > 0
    for step in ("read", "cold", "cache build", "cache hit"):
        assert rows[f"csv3000 {step}"] > 0
        assert rows[f"csv3000 {step} peak rss"] >= rows[f"csv3000 {step} rss before"] > 0
    assert "| step | time (s) |" in result.stdout and "target peak RSS - before <= 3x" in result.stdout
    assert "files data loaded from cache" in result.stderr  # the pipeline's INFO log reaches the user


@real_data
def test_models_benchmark_quick(tmp_path):
    _, rows = run_quick("models", tmp_path, "--models", "bow,cnn", "--accuracy", "bow")
    rows = {r["name"]: r["value"] for r in rows}
    assert rows["bow trainable parameters"] < rows["cnn trainable parameters"]
    assert rows["bow training throughput bs64"] > 0 and rows["cnn training throughput bs64"] > 0
    assert 0.25 < rows["bow news valid acc after 1 epochs"] <= 1.0  # 4 classes: better than chance


@real_data
def test_overhead_benchmark_quick(tmp_path):
    result, rows = run_quick("overhead", tmp_path)
    rows = {r["name"]: r["value"] for r in rows}
    for model in ("bow", "lstm", "textcnn"):
        bare, framework = rows[f"{model} bare s/epoch"], rows[f"{model} textclass s/epoch"]
        assert bare > 0 and framework > 0
        assert math.isfinite(rows[f"{model} textclass/bare"]) and rows[f"{model} textclass/bare"] > 0
        assert rows[f"{model} textclass/bare"] == pytest.approx(framework / bare)
    assert "target <= 1.10" in result.stdout


@real_data
def test_overhead_benchmark_bad_override_is_one_message(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.overhead", "--quick", "--set", "trainer.no_such_key=1",
         "--data-dir", str(REAL_DATA), "--out", str(tmp_path / "results.json")],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "bad config override (--set)" in result.stderr and "trainer.no_such_key" in result.stderr
    assert not (tmp_path / "results.json").exists()


@real_data
def test_bert_throughput_benchmark_quick(tmp_path):
    result, rows = run_quick("bert_throughput", tmp_path)
    rows = {r["name"]: r["value"] for r in rows}
    # MiniLM, and a BERT-base-sized model: BertModel (12 x 768, pooler) + the 4-class head
    assert rows["minilm trainable parameters"] == 22_714_756
    assert rows["bert-base trainable parameters"] == 109_482_240 + 768 * 4 + 4
    for name in ("minilm", "bert-base"):
        fp32, bf16 = rows[f"{name} 32-true training examples/s bs2"], rows[f"{name} bf16-mixed training examples/s bs2"]
        assert fp32 > 0 and bf16 > 0
        assert rows[f"{name} bf16/fp32 speed-up"] == pytest.approx(bf16 / fp32)
        assert rows[f"{name} 32-true news epoch s"] == pytest.approx(10_684 / fp32)
    assert "bf16-mixed / 32-true" in result.stdout


@real_data
def test_bert_throughput_against_the_hf_trainer_quick(tmp_path):
    result, rows = run_quick("bert_throughput", tmp_path, "--peer", "hf_trainer", "--encoders", "minilm",
                             "--precisions", "32-true", "--data", "sst2")
    rows = {r["name"]: r["value"] for r in rows}
    prefix = "minilm sst2 32-true"
    textclass, hf = rows[f"{prefix} textclass training examples/s bs2"], rows[f"{prefix} hf_trainer training examples/s bs2"]
    assert textclass > 0 and hf > 0
    assert rows[f"{prefix} textclass/hf_trainer speed ratio"] == pytest.approx(textclass / hf)
    assert rows[f"{prefix} hf_trainer epoch s"] == pytest.approx(67_349 / hf)
    # the same sentences, tokenizer and dynamic padding: the timed batches' lengths are SST-2-like on both sides
    for side in ("textclass", "hf_trainer"):
        assert 3 <= rows[f"{prefix} {side} padded tokens/example"] <= 66
    assert "textclass / hf_trainer:" in result.stdout


@real_data
@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU: the benchmark would measure it")
def test_bert_throughput_without_a_gpu_says_it_was_not_measured(tmp_path):
    out = tmp_path / "results.json"
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.bert_throughput", "--data-dir", str(REAL_DATA), "--out", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "not measured: no GPU" in result.stdout
    results = json.loads(out.read_text())
    assert results["metadata"]["measured"] is False and results["rows"] == []


@real_data
def test_inference_benchmark_quick(tmp_path):
    _, rows = run_quick("inference", tmp_path, "--models", "textcnn", timeout=900)
    rows = {r["name"]: r for r in rows}
    assert rows["textcnn predict sentences/s batched"]["value"] > 0 and rows["textcnn predict sentences/s batched"]["sentences"] == 2000
    # the batched rate leaves the start-up out, the end-to-end rate does not
    assert 0 < rows["textcnn predict sentences/s end-to-end"]["value"] < rows["textcnn predict sentences/s batched"]["value"]
    assert rows["textcnn predict start-up"]["value"] > 0
    # the Python API at one sentence a call and at 64
    assert rows["textcnn API predict sentences/s, batch 1"]["sentences"] == 2000
    assert 0 < rows["textcnn API predict sentences/s, batch 1"]["value"] < rows["textcnn API predict sentences/s, batch 64"]["value"]


@real_data
def test_teacher_labels_benchmark_quick(tmp_path):
    """A MiniLM labels the same sentences four ways: batched by length, its logits are the in-order
    ones (the encoder is padding-invariant); under bfloat16 close to them."""
    _, rows = run_quick("teacher_labels", tmp_path, timeout=900)
    rows = {r["name"]: r["value"] for r in rows}
    for way in ("in order 32-true", "shortest first 32-true", "in order bf16-mixed", "shortest first bf16-mixed"):
        assert rows[f"{way} sentences/s"] > 0
    assert rows["in order 32-true max logit difference"] == 0
    assert rows["shortest first 32-true max logit difference"] < 1e-4
    assert 0 < rows["shortest first bf16-mixed max logit difference"] < 0.2
    assert rows["fastest / in order 32-true"] >= 1


@real_data
@pytest.mark.skipif(postgres_unavailable() is not None, reason=str(postgres_unavailable()))
def test_scale_benchmark_quick(tmp_path):
    """Search workers on SQLite and PostgreSQL, and DDP against one process: every row, each figure a rate."""
    result, rows = run_quick("scale", tmp_path)
    rows = {r["name"]: r["value"] for r in rows}
    for storage in ("sqlite", "postgresql"):
        for workers in (1, 2):
            assert rows[f"search {storage} {workers} workers"] > 0
        assert rows[f"search throughput {storage} 2 workers/1"] > 0
    assert rows["search throughput postgresql/sqlite 2 workers"] > 0
    assert rows["ddp 1 process epoch"] > 0 and rows["ddp 2 processes epoch"] > 0
    assert rows["ddp speed-up 2 processes/1"] == pytest.approx(rows["ddp 1 process epoch"] / rows["ddp 2 processes epoch"])
    assert "| search sqlite 2 workers |" in result.stdout
