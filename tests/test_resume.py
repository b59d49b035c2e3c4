"""Exact resume: a run killed with SIGKILL after epoch 2 and resumed ends where an uninterrupted run does."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from helpers.cli import cli_env, in_parallel, run_cli, run_ok
from helpers.data import write_tsv, NEWS_ROWS

EPOCHS = 5
TRAIN_ARGS = [
    "model=lstm",
    "model.dropout=0.3",  # draws random numbers every step: resume must restore the RNG state
    f"trainer.max_epochs={EPOCHS}",
    "trainer.deterministic=true",
    "trainer.enable_progress_bar=false",
    "callbacks.early_stopping=null",
    "callbacks.last_checkpoint.keep_epochs=true",
    "data.batch_size=16",
    "logger=[]",
]


@pytest.fixture
def slow_enough_data(data_dir: Path) -> Path:
    """6,000 training headlines: an epoch lasts long enough (a second or more) to kill the run inside the next one."""
    write_tsv(data_dir / "news" / "train.tsv", "category\ttitle", NEWS_ROWS * 600)
    return data_dir



def _saved_epoch(ckpt: Path) -> int | None:
    """The epoch in a checkpoint, None while it is missing or half written."""
    try:
        return torch.load(ckpt, map_location="cpu", weights_only=True)["epoch"]
    except Exception:  # noqa: BLE001 - any failure to read a file being written means "not yet"
        return None


def _weights(ckpt: Path) -> dict[str, torch.Tensor]:
    return torch.load(ckpt, map_location="cpu", weights_only=True)["state_dict"]


@pytest.mark.slow
def test_sigkill_after_epoch_2_then_resume_matches_uninterrupted_run(slow_enough_data, tmp_path):
    # one torch thread per run: the uninterrupted reference runs beside the resumed run, on 2 cores
    env = {**cli_env(slow_enough_data, tmp_path), "OMP_NUM_THREADS": "1"}
    script = Path(sys.executable).parent / "textclass-train"
    process = subprocess.Popen([str(script), *TRAIN_ARGS, "hydra.run.dir=killed"], cwd=tmp_path, env={**os.environ, **env},
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    second_epoch = tmp_path / "killed" / "checkpoints" / "epoch_002.ckpt"
    deadline = time.monotonic() + 300
    while not second_epoch.exists():
        assert process.poll() is None, "the run ended before its second checkpoint"
        assert time.monotonic() < deadline
        time.sleep(0.02)
    while _saved_epoch(tmp_path / "killed" / "checkpoints" / "last.ckpt") != 1:  # last.ckpt of epoch 2 is written
        assert process.poll() is None and time.monotonic() < deadline
        time.sleep(0.02)
    assert process.poll() is None, "the run finished before it could be killed: make epochs longer"
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not (tmp_path / "killed" / "metrics.json").exists()
    assert torch.load(tmp_path / "killed" / "checkpoints" / "last.ckpt", weights_only=True)["epoch"] == 1

    in_parallel(
        lambda: run_ok(["textclass-train", *TRAIN_ARGS, "hydra.run.dir=reference"], cwd=tmp_path, env=env),
        lambda: run_ok(["textclass-train", "resume=killed"], cwd=tmp_path, env=env),
    )
    assert not any(p.name != "reference" and p.name != "killed" and p.is_dir() and (p / "metrics.json").exists()
                   for p in tmp_path.iterdir()), "resume wrote a new run dir"
    expected = json.loads((tmp_path / "reference" / "metrics.json").read_text())
    actual = json.loads((tmp_path / "killed" / "metrics.json").read_text())
    for key in ("val/loss", "val/acc", "val/acc_best", "val/f1", "train/loss_epoch"):
        assert actual[key] == pytest.approx(expected[key], abs=1e-6), key
    reference_weights = _weights(tmp_path / "reference" / "checkpoints" / "last.ckpt")
    resumed_weights = _weights(tmp_path / "killed" / "checkpoints" / "last.ckpt")
    assert reference_weights.keys() == resumed_weights.keys()
    for name, tensor in reference_weights.items():
        assert torch.allclose(tensor, resumed_weights[name], atol=1e-6), name
    assert sorted(p.name for p in (tmp_path / "killed" / "checkpoints").glob("epoch_*.ckpt")) == [f"epoch_{e:03d}.ckpt" for e in range(1, EPOCHS + 1)]
    history = (tmp_path / "killed" / "history.csv").read_text().splitlines()
    assert [line.split(",")[0] for line in history[1:]] == [str(e) for e in range(1, EPOCHS + 1)]  # appended, once each


@pytest.mark.slow
def test_resume_last_and_bad_targets(data_dir, tmp_path):
    env = cli_env(data_dir, tmp_path)
    missing = run_cli(["textclass-train", "resume=last"], cwd=tmp_path, env=env)
    assert missing.returncode == 2 and "no run with checkpoints/last.ckpt" in missing.stderr
    run_ok(["textclass-train", "trainer.max_epochs=1", "logger=[]", "trainer.enable_progress_bar=false"], cwd=tmp_path, env=env)
    (run_dir,) = list((tmp_path / "outputs" / "train" / "runs").iterdir())
    resumed = run_ok(["textclass-train", "resume=last", "trainer.max_epochs=2"], cwd=tmp_path, env=env)
    assert "resuming from " in resumed.stdout and "checkpoints/last.ckpt (after epoch 1)" in resumed.stdout
    assert list((tmp_path / "outputs" / "train" / "runs").iterdir()) == [run_dir]  # continued in place
    assert torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)["epoch"] == 1
    corrupt = run_dir / "checkpoints" / "last.ckpt"
    corrupt.write_bytes(corrupt.read_bytes()[:500])
    broken = run_cli(["textclass-train", f"resume={run_dir}", "trainer.max_epochs=3"], cwd=tmp_path, env=env)
    assert broken.returncode == 2 and str(corrupt) in broken.stderr and "Traceback" not in broken.stderr


@pytest.mark.slow
def test_resume_last_looks_under_paths_log_dir(data_dir, tmp_path):
    env = cli_env(data_dir, tmp_path)
    quiet = ["embeddings=none", "data.vocab.min_freq=1", "trainer.enable_progress_bar=false", "logger=[]", "paths.log_dir=elsewhere"]
    run_ok(["textclass-train", *quiet, "trainer.max_epochs=1"], cwd=tmp_path, env=env)
    (run,) = (tmp_path / "elsewhere" / "train" / "runs").iterdir()
    run_ok(["textclass-train", "resume=last", *quiet, "trainer.max_epochs=2"], cwd=tmp_path, env=env)
    # the same run went on to its second epoch, found under paths.log_dir, not outputs/
    assert [line.split(",")[0] for line in (run / "history.csv").read_text().splitlines()[1:]] == ["1", "2"]
    assert not (tmp_path / "outputs").exists()
