"""What a run leaves behind: plots, history.csv, TensorBoard scalars and hparams, per-epoch checkpoints,
and the sweep summary. Real `textclass-train` processes on the tiny news data (slow), plus unit tests
of the plotting and summary functions (quick)."""

from __future__ import annotations

import csv
import json
import logging
import math
import struct
from functools import partial
from pathlib import Path

import numpy as np
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import plugin_data_pb2

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from omegaconf import OmegaConf
from torch.utils.data import DataLoader

from helpers.answers import assert_answer
from helpers.cli import cli_env, run_cli, run_ok
from helpers.inprocess import run_main
from helpers.data import write_tiny_data, NEWS_ROWS
from helpers.paths import CONF
from textclass.commands.summary import main as summary_command
from textclass.reports import sweeps as sweep_summary
from textclass.training.callbacks import EpochLog, LastCheckpoint, ProgressLine, RunPlots, write_history
from textclass.console import EpochRecord, RunSummary, epoch_line, summary_lines
from textclass.data.batching import collate
from textclass.models.classifier import TextClassifier
from textclass.training.module import ClassifierModule
from textclass.training.plots import plot_confusion, plot_curves
from textclass.run_files import HISTORY_FILE, LAST_CHECKPOINT
from textclass.training.recipe import make_callbacks, progress_bar_wanted

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"



def _png_size(path: Path) -> tuple[int, int]:
    """(width, height) of a PNG file, after checking its signature."""
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE, path
    assert len(data) > 5_000, (path, len(data))  # a drawn figure, not an empty canvas
    return struct.unpack(">II", data[16:24])


def _read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def _scalars(acc: EventAccumulator, tag: str) -> dict[int, float]:
    """step -> value; a step written twice (see HparamsWithMetrics) must hold the same value."""
    by_step: dict[int, float] = {}
    for event in acc.Scalars(tag):
        assert by_step.get(event.step, event.value) == pytest.approx(event.value, abs=1e-6), (tag, event.step)
        by_step[event.step] = event.value
    return by_step


# ---------------------------------------------------------------------------------------------
# 1. one 3-epoch run: plots, history.csv, TensorBoard, one checkpoint per epoch
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def train_run(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("train_run")
    data_dir = write_tiny_data(tmp / "data", sst2=False)  # the news part of conftest's `data_dir`
    result = run_ok(
        [
            "textclass-train",
            "trainer.max_epochs=3",
            "callbacks.early_stopping=null",
            "callbacks.last_checkpoint.keep_epochs=true",
            # the tiny data is one batch per epoch: without this Lightning never logs train/loss_step
            "trainer.log_every_n_steps=1",
            "trainer.enable_progress_bar=false",
            "hydra.run.dir=run",
        ],
        cwd=tmp,
        env=cli_env(data_dir, tmp),
    )
    assert "Traceback" not in result.stderr
    return tmp / "run"


@pytest.mark.slow
def test_run_writes_plots_and_history(train_run):
    width, height = _png_size(train_run / "curves.png")
    assert width > height  # two panels side by side
    _png_size(train_run / "confusion_matrix.png")
    _png_size(train_run / "confusion_matrix_test.png")  # the tiny news data has a test split

    history = _read_csv(train_run / "history.csv")
    assert list(history[0]) == ["epoch", "train_loss", "train_acc", "val_loss", "val_acc", "epoch_s"]
    assert [r["epoch"] for r in history] == ["1", "2", "3"]  # counted from 1, as the console shows them
    for row in history:
        assert all(row[k] != "" for k in row), row
        assert 0.0 <= float(row["val_acc"]) <= 1.0 and float(row["epoch_s"]) > 0
    # the last row is the run's final state, as in metrics.json
    metrics = json.loads((train_run / "metrics.json").read_text())
    assert float(history[-1]["val_loss"]) == pytest.approx(metrics["val/loss"], abs=1e-6)
    assert float(history[-1]["train_acc"]) == pytest.approx(metrics["train/acc"], abs=1e-6)
    # the best over the epochs, not over the untrained model's sanity check before them
    assert metrics["val/acc_best"] == pytest.approx(max(float(r["val_acc"]) for r in history), abs=1e-6)


@pytest.mark.slow
def test_run_tensorboard_scalars_match_history_and_hparams_hold_metrics(train_run):
    acc = EventAccumulator(str(train_run / "tensorboard"), size_guidance={"scalars": 0})
    acc.Reload()
    tags = set(acc.Tags()["scalars"])
    # Adam over two parameter groups (weight decay / none): LearningRateMonitor names them /pg1, /pg2
    expected = {"train/loss_step", "train/loss_epoch", "train/acc", "train/f1", "val/loss", "val/acc", "val/f1",
                "val/acc_best", "time/epoch_s", "lr-Adam/pg1", "lr-Adam/pg2"}  # fmt: skip
    assert expected <= tags, sorted(expected - tags)

    history = _read_csv(train_run / "history.csv")
    # one value per epoch, at steps 0, 1, 2 (one optimizer step per epoch): the hparams metrics
    # written at the end of fit land on the last step instead of adding a fourth point
    for tag, column in (("val/loss", "val_loss"), ("val/acc", "val_acc"), ("train/loss_epoch", "train_loss"),
                        ("train/acc", "train_acc"), ("time/epoch_s", "epoch_s")):  # fmt: skip
        by_step = _scalars(acc, tag)
        assert sorted(by_step) == [0, 1, 2], (tag, by_step)
        assert [by_step[s] for s in sorted(by_step)] == pytest.approx([float(r[column]) for r in history], abs=1e-6), tag

    plugin = acc.PluginTagToContent("hparams")
    assert {"_hparams_/experiment", "_hparams_/session_start_info"} <= set(plugin)
    experiment = plugin_data_pb2.HParamsPluginData.FromString(plugin["_hparams_/experiment"]).experiment
    assert {"val/acc_best", "val/loss"} <= {m.name.tag for m in experiment.metric_infos}
    hparams = plugin_data_pb2.HParamsPluginData.FromString(plugin["_hparams_/session_start_info"]).session_start_info.hparams
    # the flattened resolved config, plus the Hydra group choices
    assert hparams["trainer/max_epochs"].number_value == 3
    assert hparams["choice/model"].string_value == "bow"
    assert hparams["choice/optimizer"].string_value == "adam"


@pytest.mark.slow
def test_keep_epochs_keeps_every_epoch_beside_the_selected_and_the_last(train_run):
    names = sorted(p.name for p in (train_run / "checkpoints").glob("*.ckpt"))
    assert names == ["epoch_001.ckpt", "epoch_002.ckpt", "epoch_003.ckpt", "last.ckpt", "selected.ckpt"]
    epochs = {name: torch.load(train_run / "checkpoints" / name, weights_only=True)["epoch"] for name in names}
    assert [epochs[f"epoch_00{i}.ckpt"] for i in (1, 2, 3)] == [0, 1, 2] and epochs["last.ckpt"] == 2  # Lightning counts from 0
    assert epochs["selected.ckpt"] + 1 == int(min(_read_csv(train_run / "history.csv"), key=lambda r: float(r["val_loss"]))["epoch"])


# ---------------------------------------------------------------------------------------------
# 2. multirun: summary.csv / summary.md in the sweep dir; a failing job aborts the sweep
# ---------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_multirun_writes_summary(data_dir, tmp_path):
    result = run_ok(
        ["textclass-train", "-m", "model=bow,cnn", "trainer.max_epochs=1", "trainer.enable_progress_bar=false", "hydra.sweep.dir=sweep"],
        cwd=tmp_path,
        env=cli_env(data_dir, tmp_path),
    )
    sweep = tmp_path / "sweep"
    rows = _read_csv(sweep / "summary.csv")
    assert [r["job"] for r in rows] == ["0", "1"]
    assert [r["status"] for r in rows] == ["ok", "ok"]
    for row, model in zip(rows, ["bow", "cnn"]):
        assert f"model={model}" in row["overrides"].split()
        metrics = json.loads((sweep / row["job"] / "metrics.json").read_text())
        for key in ("val/acc", "val/loss", "val/acc_best", "val/f1", "test/acc"):
            assert float(row[key]) == pytest.approx(metrics[key], abs=1e-9), (model, key)
        assert float(row["time/epoch_s_mean"]) > 0
    table = (sweep / "summary.md").read_text()
    lines = table.splitlines()
    assert lines[0] == "Every job: `trainer.max_epochs=1 trainer.enable_progress_bar=False`"  # said once (as Hydra saved it), not in each row
    assert lines[2].startswith("| job | status | overrides | test/acc | val/acc_selected |")  # the headline columns first
    assert lines[4].startswith("| 0 | ok | model=bow | ") and lines[5].startswith("| 1 | ok | model=cnn | ")
    assert table in result.stdout + result.stderr  # logged at the end of the sweep


@pytest.mark.slow
def test_failed_job_aborts_sweep_and_summary_marks_it(data_dir, tmp_path):
    """Hydra 1.3's basic launcher: a job's error ends the whole multirun, and `on_multirun_end` never
    runs (a user error exits with SystemExit, which run_job does not catch; any other exception is
    re-raised by the sweeper once the batch has run). So no summary is written; the command-line
    entry point makes one from what the aborted sweep left. Also: the default callbacks without a
    logger (`logger=[]`, where Lightning's own LearningRateMonitor would raise)."""
    result = run_cli(
        ["textclass-train", "-m", "optimizer.lr=0.001,-1,0.01", "trainer.max_epochs=1", "logger=[]", "trainer.enable_progress_bar=false", "hydra.sweep.dir=sweep"],
        cwd=tmp_path,
        env=cli_env(data_dir, tmp_path),
    )
    assert result.returncode == 2, result.stderr[-3000:]
    assert "optimizer.lr must be > 0" in result.stderr
    sweep = tmp_path / "sweep"
    assert sorted(p.name for p in sweep.iterdir() if p.is_dir()) == ["0", "1"]  # job 2 never started
    assert not (sweep / "summary.md").exists()
    assert (sweep / "0" / "curves.png").is_file() and not (sweep / "0" / "tensorboard").exists()

    summary_command([str(sweep)])
    rows = _read_csv(sweep / "summary.csv")
    assert [(r["job"], r["status"]) for r in rows] == [("0", "ok"), ("1", "failed")]
    assert "optimizer.lr=-1" in rows[1]["overrides"].split()
    assert rows[1]["val/acc"] == ""
    assert float(rows[0]["val/acc"]) == pytest.approx(json.loads((sweep / "0" / "metrics.json").read_text())["val/acc"])


# ---------------------------------------------------------------------------------------------
# 3. unit tests: plots, history, summary on hand-made sweep directories
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("enabled", [True, False])
@pytest.mark.parametrize("terminal", [True, False])
def test_progress_bar_redraws_every_ten_steps_on_a_terminal_and_follows_the_trainer_switch(enabled, terminal):
    default = OmegaConf.load(CONF / "callbacks" / "default.yaml")
    cfg = OmegaConf.create({"callbacks": {"progress_bar": default.progress_bar, "epoch_timer": default.epoch_timer}, "trainer": {"enable_progress_bar": enabled}})
    callbacks = make_callbacks(cfg, progress_bar_wanted(cfg.trainer, terminal))
    bars = [c for c in callbacks if isinstance(c, ProgressLine)]
    assert len(callbacks) == (2 if enabled and terminal else 1)
    assert [bar.refresh_rate for bar in bars] == ([10] if enabled and terminal else [])


def test_plot_curves_with_one_epoch_and_missing_values(tmp_path):
    history = [EpochRecord(epoch=0, train_loss=1.2, train_acc=None, val_loss=None, val_acc=None)]
    path = plot_curves(history, tmp_path / "sub" / "curves.png")
    assert path.is_file()
    _png_size(path)


def test_plot_confusion_checks_shape(tmp_path):
    path = plot_confusion(np.array([[3, 1], [0, 4]]), ["neg", "pos"], tmp_path / "cm.png", title="valid")
    _png_size(path)
    with pytest.raises(ValueError, match="3 class names"):
        plot_confusion(np.eye(2, dtype=int), ["a", "b", "c"], tmp_path / "bad.png", title="x")


def test_history_csv_and_run_plots_state_round_trip(tmp_path):
    history = [EpochRecord(0, 1.0, 0.5, 0.9, 0.6, 0.1), EpochRecord(1, 0.8, 0.7, None, None, 0.2)]
    rows = _read_csv(write_history(history, tmp_path / "history.csv"))
    assert rows[1] == {"epoch": "1", "train_loss": "0.8", "train_acc": "0.7", "val_loss": "", "val_acc": "", "epoch_s": "0.2"}
    # the history travels in checkpoints, so a resumed run plots its earlier epochs
    plots = RunPlots()
    plots.history = history
    restored = RunPlots()
    restored.load_state_dict(plots.state_dict())
    assert restored.history == history


def _fake_job(job_dir: Path, num: int, overrides: list[str], metrics: dict | None, epoch_s: list[float] | None = None) -> None:
    (job_dir / ".hydra").mkdir(parents=True)
    (job_dir / ".hydra" / "hydra.yaml").write_text(f"hydra:\n  job:\n    num: {num}\n    name: train\n")
    (job_dir / ".hydra" / "overrides.yaml").write_text("".join(f"- {o}\n" for o in overrides))
    if metrics is not None:
        (job_dir / "metrics.json").write_text(json.dumps(metrics))
    if epoch_s is not None:
        write_history([EpochRecord(i, epoch_s=s) for i, s in enumerate(epoch_s)], job_dir / "history.csv")


def test_summary_of_hand_made_sweep(tmp_path):
    metrics = {"val/loss": 0.5, "val/acc": 0.8, "val/acc_best": 0.85, "val/f1": 0.75}
    # subdirectories named by override (any hydra.sweep.subdir): the job number comes from hydra.yaml
    _fake_job(tmp_path / "lr=0.1", 10, ["optimizer.lr=0.1"], metrics, epoch_s=[1.0, 3.0])
    _fake_job(tmp_path / "lr=0.2", 2, ["optimizer.lr=0.2", "tag=a|b"], None)
    _fake_job(tmp_path / "nested" / "lr=0.3", 0, ["optimizer.lr=0.3"], {**metrics, "val/acc": 0.9})

    table = sweep_summary.write_summary(tmp_path)
    rows = _read_csv(tmp_path / "summary.csv")
    assert [(r["job"], r["status"]) for r in rows] == [("0", "ok"), ("2", "failed"), ("10", "ok")]
    assert rows[2]["time/epoch_s_mean"] == "2.0" and rows[0]["time/epoch_s_mean"] == ""
    assert rows[0]["val/acc"] == "0.9" and rows[1]["val/acc"] == ""
    assert list(rows[0]) == list(sweep_summary.COLUMNS)  # the CSV keeps every column

    lines = table.splitlines()
    assert (tmp_path / "summary.md").read_text() == table
    # Markdown: no test/acc or val/acc_selected column (no job has them), 4 decimals, a literal | escaped
    assert lines[0] == "| job | status | overrides | val/loss | val/acc | val/f1 | val/acc_best | time/epoch_s_mean |"
    assert lines[2] == "| 0 | ok | optimizer.lr=0.3 | 0.5000 | 0.9000 | 0.7500 | 0.8500 |  |"
    assert lines[3] == r"| 2 | failed | optimizer.lr=0.2 tag=a\|b |  |  |  |  |  |"
    assert lines[4].endswith("| 2.0000 |")


def test_summary_plot_of_a_swept_key(tmp_path):
    _fake_job(tmp_path / "0", 0, ["data.batch_size=4"], {}, epoch_s=[2.0])
    _fake_job(tmp_path / "1", 1, ["data.batch_size=1", "+tag=x"], {}, epoch_s=[6.0, 8.0])
    _fake_job(tmp_path / "2", 2, ["data.batch_size=16"], None)  # failed: no history, left out
    jobs = sweep_summary.collect_jobs(tmp_path)
    assert jobs[1].override("data.batch_size") == "1" and jobs[1].override("tag") == "x" and jobs[1].override("seed") is None
    assert sweep_summary.plot_points(jobs, "data.batch_size", sweep_summary.EPOCH_S_MEAN) == [(4.0, 2.0), (1.0, 7.0)]
    assert sweep_summary.plot_name("data.batch_size", "time/epoch_s_mean") == "epoch_s_mean_by_batch_size.png"
    summary_command([str(tmp_path), "plot_x=data.batch_size"])
    _png_size(tmp_path / "epoch_s_mean_by_batch_size.png")
    with pytest.raises(SystemExit) as exit_:
        summary_command([str(tmp_path), "plot_x=data.batch_size", "plot_y=val/accuracy"])
    assert exit_.value.code == 2


@pytest.mark.slow
def test_step_loss_reaches_tensorboard_every_log_every_n_steps(data_dir, tmp_path):
    """train/loss_step is logged only on the steps Lightning writes (step + 1 a multiple of
    log_every_n_steps); the epoch figures once per epoch, over every step."""
    run_ok(
        ["textclass-train", "data.batch_size=2", "trainer.max_epochs=2", "trainer.log_every_n_steps=3", "callbacks.early_stopping=null",
         "trainer.enable_progress_bar=false", "hydra.run.dir=run"],
        cwd=tmp_path,
        env=cli_env(data_dir, tmp_path),
    )
    steps_per_epoch = math.ceil(len(NEWS_ROWS) * 3 / 2)  # conftest's news train split, batches of 2
    acc = EventAccumulator(str(tmp_path / "run" / "tensorboard"), size_guidance={"scalars": 0})
    acc.Reload()
    assert sorted(_scalars(acc, "train/loss_step")) == [s for s in range(2 * steps_per_epoch) if (s + 1) % 3 == 0]
    assert sorted(_scalars(acc, "train/loss_epoch")) == [steps_per_epoch - 1, 2 * steps_per_epoch - 1]
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["train/examples"] == len(NEWS_ROWS) * 3


@pytest.mark.slow
def test_batch_size_study_experiment(data_dir, tmp_path):
    """experiment=news_batch_size_study is a multirun without -m: one 1-epoch job per batch size,
    training only (no validation, no checkpoints), and the seconds-per-epoch plot in the sweep dir."""
    run_ok(
        ["textclass-train", "experiment=news_batch_size_study", "data.batch_size=1,4", "trainer.enable_progress_bar=false", "hydra.sweep.dir=sweep"],
        cwd=tmp_path,
        env=cli_env(data_dir, tmp_path),
    )
    sweep = tmp_path / "sweep"
    rows = _read_csv(sweep / "summary.csv")
    assert [r["overrides"].split()[0] for r in rows] == ["data.batch_size=1", "data.batch_size=4"]
    for row in rows:
        metrics = json.loads((sweep / row["job"] / "metrics.json").read_text())
        assert metrics["train/examples"] == len(NEWS_ROWS) * 3  # conftest's news train split: one full epoch
        assert "val/loss" not in metrics and not (sweep / row["job"] / "checkpoints").exists()
        assert float(row["time/epoch_s_mean"]) == pytest.approx(metrics["time/epoch_s"])
    _png_size(sweep / "epoch_s_mean_by_batch_size.png")


class EpochScore(Callback):
    """Logs `score`, the epoch's number, at the end of validation: by mode=min epoch 1 is the best,
    so the selected checkpoint and the last one are different epochs."""

    def on_validation_epoch_end(self, trainer, pl_module):
        if not trainer.sanity_checking:
            pl_module.log("score", float(trainer.current_epoch + 1))


def test_last_checkpoint_holds_the_last_epoch_and_selected_the_best(tmp_path, caplog):
    """The bug this guards: Lightning's save_last rewrote last.ckpt only when the monitor improved,
    so a run whose best epoch was its first kept epoch 1 as its "last" state."""
    from textclass.models.encoders.bow import BagOfEmbeddings
    from textclass.models.embedding import build_embedding

    torch.manual_seed(0)
    model = ClassifierModule(TextClassifier(BagOfEmbeddings(build_embedding(20, 4, None, freeze=False)), num_classes=2), partial(torch.optim.Adam, lr=1e-3))
    batches = [collate([(np.array([1, 2, 3]), 0), (np.array([4, 5]), 1)], pad_id=0)] * 2
    checkpoints = tmp_path / "checkpoints"
    callbacks = [
        EpochScore(),
        EpochLog(),
        ModelCheckpoint(dirpath=checkpoints, filename="selected", enable_version_counter=False, monitor="score", mode="min", save_top_k=1),
        LastCheckpoint(str(checkpoints)),
    ]
    trainer = L.Trainer(max_epochs=3, accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False,
                        callbacks=callbacks, default_root_dir=tmp_path, num_sanity_val_steps=0)
    with caplog.at_level(logging.INFO, logger="textclass.training.callbacks"):
        trainer.fit(model, DataLoader(batches, batch_size=None), DataLoader(batches, batch_size=None))
    assert torch.load(checkpoints / "last.ckpt", weights_only=True)["epoch"] == 2  # the third epoch, counted from 0
    assert torch.load(checkpoints / "selected.ckpt", weights_only=True)["epoch"] == 0
    assert sorted(p.name for p in checkpoints.iterdir()) == ["last.ckpt", "selected.ckpt"]
    assert callbacks[1].selected_epoch == 1
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("epoch ")]
    assert [line.split("  ")[0] for line in lines] == ["epoch 1/3", "epoch 2/3", "epoch 3/3"]
    assert "the checkpoint is selected by score (lowest); * marks a new best" in caplog.text


def test_epoch_line_and_run_summary_read_as_sentences():
    line = epoch_line(EpochRecord(epoch=3, train_loss=0.41234, train_acc=0.87, val_loss=0.39812, val_acc=0.88, epoch_s=2.34), 10, new_best=True)
    assert line == "epoch  3/10  train loss 0.4123 acc 0.8700 | val loss 0.3981 acc 0.8800 *  2.3 s"
    unvalidated = epoch_line(EpochRecord(epoch=2, train_loss=1.0, epoch_s=75), -1, new_best=False)
    assert unvalidated == "epoch 2  train loss 1.0000  1 min 15 s"
    summary = RunSummary(run_dir="outputs/train/runs/x", seconds=3.0, epochs=4, selected_epoch=2, selected_file="checkpoints/selected.ckpt",
                         monitor="val/loss", metrics={"val/loss": 0.5, "test/acc": 0.9, "test/f1": 0.8},
                         splits=[("test", "test/acc", "test/f1")], files=["metrics.json"])
    assert summary_lines(summary) == [
        "done in 3.0 s: outputs/train/runs/x",
        "  selected: epoch 2 of 4 (best val/loss 0.5000): checkpoints/selected.ckpt",
        "  test: acc 0.9000, macro-F1 0.8000",
        "  files: metrics.json",
    ]


def test_a_diverging_run_stops_with_one_error_and_keeps_its_directory(data_dir, tmp_path):
    """A learning rate that turns the loss into nan: exit 2 after the epoch it happened in, one error
    naming that epoch and the keys to change; the run directory stays with that epoch's history."""
    result = run_main(
        ["textclass-train", "model=mlp", "optimizer=sgd", "optimizer.lr=1e30", "trainer.max_epochs=3", "hydra.run.dir=run"],
        cwd=tmp_path, env=cli_env(data_dir, tmp_path),
    )
    # one step an epoch on the tiny data: the training loss is measured before the update breaks the weights
    assert_answer(result, ("the validation loss of epoch 1 is nan", "optimizer.lr (now 1e+30)", "data.batch_size (now 64)"))
    with (tmp_path / "run" / HISTORY_FILE).open() as f:
        history = list(csv.DictReader(f))
    assert [row["epoch"] for row in history] == ["1"] and history[0]["val_loss"] == "nan"
    assert not (tmp_path / "run" / LAST_CHECKPOINT).exists()  # no epoch ended with finite weights
