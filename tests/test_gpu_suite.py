"""benchmarks/gpu_suite.sh: its CPU path (--quick --cpu) on the tiny data writes every row it promises,
without a GPU it says the GPU rows were not measured, and its time limit still leaves the figures."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from helpers.data import write_tiny_data
from helpers.paths import REPO

SUITE = REPO / "benchmarks" / "gpu_suite.sh"
SST2_TRAIN_EXAMPLES = 67_349  # the suite's epoch time is the full SST-2 train split over the measured rate
NEWS_TRAIN_EXAMPLES = 10_684
LABELS = ("bf16-mixed", "32-true", "bf16-mixed+compile")



def run_suite(tmp_path: Path, *args: str, limit_s: int | None = None, timeout: int = 900) -> tuple[subprocess.CompletedProcess, dict]:
    """gpu_suite.sh on the tiny data with a private cache; its result and the results file it wrote."""
    data = write_tiny_data(tmp_path / "data")
    out = tmp_path / "results.json"
    env = {**os.environ, "TEXTCLASS_CACHE_DIR": str(tmp_path / "cache"), "PYTHON": sys.executable}
    if limit_s is not None:
        env["GPU_SUITE_LIMIT_S"] = str(limit_s)
    result = subprocess.run(["bash", str(SUITE), *args, "--data-dir", str(data), "--out", str(out)],
                            capture_output=True, text=True, timeout=timeout, env=env)
    return result, json.loads(out.read_text()) if out.is_file() else {}


@pytest.mark.slow
def test_quick_cpu_path_writes_every_row(tmp_path):
    result, results = run_suite(tmp_path, "--quick", "--cpu")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    rows = {r["name"]: r["value"] for r in results["rows"]}
    assert results["metadata"]["measured"] is True and results["metadata"]["skipped"] == []
    for label in LABELS:
        prefix = f"tiny-bert sst2 {label}"
        textclass = rows[f"{prefix} textclass training examples/s bs8"]
        hf = rows[f"{prefix} hf_trainer training examples/s bs8"]
        assert textclass > 0 and hf > 0
        assert rows[f"{prefix} textclass/hf_trainer speed ratio"] == pytest.approx(textclass / hf)
        assert rows[f"{prefix} textclass epoch s"] == pytest.approx(SST2_TRAIN_EXAMPLES / textclass)
        assert rows[f"{prefix} hf_trainer epoch s"] == pytest.approx(SST2_TRAIN_EXAMPLES / hf)
        # both sides pad each batch to its longest sequence: [CLS] + the tiny sentences' pieces + [SEP]
        assert 3 <= rows[f"{prefix} textclass padded tokens/example"] <= 40
        assert 3 <= rows[f"{prefix} hf_trainer padded tokens/example"] <= 40
    # the one-epoch section scores the 8 tiny dev sentences on each side
    for side in ("textclass", "hf_trainer"):
        accuracy = rows[f"tiny-bert sst2 bf16-mixed {side} dev acc after 1 epoch"]
        assert accuracy * 8 == pytest.approx(round(accuracy * 8))
    for model in ("textcnn", "lstm"):
        assert rows[f"{model} news epoch s"] > 0 and rows[f"{model} news fit wall s"] > 0
        assert 0 <= rows[f"{model} news data-wait share"] < 1
        assert f"{model} news mean GPU utilisation" not in rows  # a CPU run has no GPU to sample
        assert f"| {model} | " in result.stdout
    assert result.stdout.count("not measured: no GPU (CPU run)") >= 2  # the utilisation column
    assert "| bf16-mixed+compile | " in result.stdout and "backend=eager" in result.stdout


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU: the suite would measure it")
def test_without_a_gpu_every_gpu_row_says_not_measured(tmp_path):
    result, results = run_suite(tmp_path, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert results["metadata"]["measured"] is False and results["rows"] == []
    promised = results["metadata"]["not_measured"]
    assert "minilm sst2 bf16-mixed+compile textclass/hf_trainer speed ratio" in promised
    assert "minilm sst2 bf16-mixed hf_trainer dev acc after 1 epoch" in promised
    assert "lstm news mean GPU utilisation" in promised and len(promised) == 23
    # the two tables: 3 MiniLM rows of 7 figures and 2 news rows of 4, every one not measured
    assert result.stdout.count("not measured: no GPU") == 1 + 3 * 7 + 2 * 4  # the first: the line saying so


@pytest.mark.slow
def test_the_time_limit_stops_the_run_and_keeps_the_results(tmp_path):
    # a window far too long for the limit: the SIGTERM of gpu_suite.sh's `timeout` must land inside a section
    result, results = run_suite(tmp_path, "--quick", "--cpu", "--window", "100000", limit_s=60, timeout=300)
    assert result.returncode == 124, result.stdout[-3000:] + result.stderr[-3000:]
    assert any(reason.startswith("stopped: the time limit") for reason in results["metadata"]["skipped"])
    assert "stopped: the time limit" in result.stdout and "| 32-true | " in result.stdout


def test_step_clock_rate_counts_the_steps_after_the_warm_up():
    from benchmarks.hf_trainer import StepClock

    # steps end at 1, 2, 4 and 7 s; each waited 0.5 s for its batch; 8 examples of 10 padded tokens each
    clock = StepClock(warmup=2, starts=[0.5, 1.5, 2.5, 4.5], ends=[1.0, 2.0, 4.0, 7.0], examples=[8, 8, 8, 6],
                      padded_tokens=[80, 80, 80, 60])
    assert clock.timed_steps == 2
    assert clock.examples_per_s() == pytest.approx((8 + 6) / (7.0 - 2.0))
    assert clock.padded_tokens_per_example() == pytest.approx(10.0)
    assert clock.data_wait_share() == pytest.approx((0.5 + 0.5) / 5.0)
    with pytest.raises(ValueError, match="need more than warmup=4"):
        StepClock(warmup=4, ends=[1.0, 2.0]).examples_per_s()
