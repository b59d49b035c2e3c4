"""The training recipe: from a composed config to a fitted, tested and reported run.

    config -> checks -> callbacks -> data module -> model -> trainer -> fit -> test
           -> the selected checkpoint's predictions and confusion matrices -> metrics.json -> summary

Every run directory file it writes is named in run_files.py. Nothing here knows a plug-in: they come
in as callbacks (conf/callbacks/, e.g. distillation's, a search's pruning) through the Lightning API.
"""

from __future__ import annotations

import json
import logging
import math
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import lightning as L
import numpy as np
import torch
from hydra.utils import instantiate
from lightning.fabric.utilities.exceptions import MisconfigurationException
from lightning.pytorch.callbacks import Callback, Checkpoint, ModelSummary, ProgressBar
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, OmegaConf

from textclass.config.trust import check_user_targets
from textclass.data.datamodule import TextClassificationDataModule
from textclass.console import RunSummary, quiet_third_party, shown_path, summary_lines
from textclass.errors import ConfigError, causes
from textclass.metric_names import TEST_ACC, TEST_F1, VAL_ACC_SELECTED, VAL_F1_MICRO_TUNED, VAL_F1_SELECTED, VAL_F1_TUNED
from textclass.models.build import balanced_class_weights, build_model
from textclass.models.classifier import TextClassifier
from textclass.models.metrics import multilabel_scores, tune_thresholds
from textclass.run_files import (
    CONFUSION_FILE,
    CONFUSION_PLOTS,
    LABELS_FILE,
    LAST_CHECKPOINT,
    METRICS_FILE,
    RUN_CONFIG,
    RUN_FILES,
    THRESHOLDS_FILE,
    predictions_file,
)
from textclass.training.accelerators import check_accelerator
from textclass.training.callbacks import EpochLog, model_checkpoint
from textclass.training.checkpoint import load_run, read_checkpoint, weights_mismatch
from textclass.training.launchers import check_torchrun
from textclass.training.loggers import finish_runs, make_loggers
from textclass.training.module import ClassifierModule, check_config, training_module
from textclass.training.plots import plot_confusion
from textclass.training.predictions import from_logits
from textclass.training.resume import epochs_done
from textclass.training.scoring import score, sources

log = logging.getLogger(__name__)

# (accuracy, macro-F1) of the selected checkpoint, by split
SELECTED_METRICS = {"valid": (VAL_ACC_SELECTED, VAL_F1_SELECTED), "test": (TEST_ACC, TEST_F1)}


def train(cfg: DictConfig) -> dict[str, float]:
    """Fit (and test) the configured model; returns the final metrics by name."""
    start = time.perf_counter()
    check_config(cfg)
    check_user_targets(cfg)
    quiet_third_party()
    check_epoch_limit(cfg.trainer)
    check_selection(cfg.get("callbacks") or {})
    check_torchrun(cfg.trainer, os.environ)  # also here for the Python API
    check_accelerator(cfg.trainer)
    if cfg.get("seed") is not None:
        L.seed_everything(cfg.seed, workers=True, verbose=False)
    output_dir = Path(cfg.paths.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    is_rank_zero = rank_zero_only.rank == 0  # DDP: the other ranks run this function too
    # built before the data: a callback's own settings (a plug-in's: distillation's teacher run) fail first
    callbacks = make_callbacks(cfg, progress_bar_wanted(cfg.trainer, sys.stdout.isatty() and sys.stderr.isatty()))
    datamodule, model = build_data_and_model(cfg)
    module = training_module(cfg, model, datamodule.features)
    if cfg.get("ckpt_path"):
        # a missing, truncated or foreign checkpoint is one clear error before the run dir is touched
        state = read_checkpoint(Path(cfg.ckpt_path))
        check_resumable(module, state, Path(cfg.ckpt_path))
        log.info("resuming from %s (after epoch %d)", shown_path(Path(cfg.ckpt_path)), epochs_done(state))
    if is_rank_zero:
        # what eval, predict and textclass.load need to encode and name classes as training did
        datamodule.features.save(output_dir)
        datamodule.labels.save(output_dir / LABELS_FILE)
        datamodule.save_split(output_dir)
        # resolved (after build_model has rejected inconsistent choices): eval and predict rebuild
        # the model and data from this file, from any directory
        (output_dir / RUN_CONFIG).write_text(OmegaConf.to_yaml(cfg, resolve=True))
    loggers = make_loggers(cfg)
    trainer = make_trainer(cfg, callbacks, loggers)
    check_sharding(cfg.trainer, trainer.world_size)
    trainer.fit(module, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"))
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
    if module.tune_thresholds:
        metrics.update(fit_thresholds(model, datamodule, output_dir / THRESHOLDS_FILE if is_rank_zero else None))
    selector = model_checkpoint(trainer)
    selected = Path(selector.best_model_path) if selector is not None and selector.best_model_path else None
    if cfg.get("test") and "test" in datamodule.splits():
        results = trainer.test(module, datamodule=datamodule, ckpt_path=str(selected) if selected else None, verbose=False)
        metrics.update({k: float(v) for k, v in results[0].items()})
    elif cfg.get("test"):
        log.info("no test split for %s: skipping the test stage", datamodule.dataset.name)
    if trainer.is_global_zero:
        if cfg.get("predictions", True):
            selected = selected or (output_dir / LAST_CHECKPOINT if (output_dir / LAST_CHECKPOINT).is_file() else None)
            metrics.update(save_predictions(selected, output_dir, datamodule.eval_batch_size, module.device))
        (output_dir / METRICS_FILE).write_text(json.dumps(metrics, indent=1, sort_keys=True))
        for line in summary_lines(run_summary(trainer, output_dir, metrics, time.perf_counter() - start)):
            log.info("%s", line)
    finish_runs(loggers)  # each job its own run: the next one (under -m) starts a new one
    return metrics


def check_resumable(module: ClassifierModule, state: dict, ckpt: Path) -> None:
    """The checkpoint's weights fit the model the (resumed) config builds: changed overrides that
    build another model are refused before config.yaml is rewritten."""
    if (mismatch := weights_mismatch(module.state_dict(), state["state_dict"])) is not None:
        raise ConfigError(
            f"{ckpt} does not fit the model these overrides build ({type(module.model.encoder).__name__}): {mismatch}; "
            "resume with the run's own model settings (drop the overrides that change it)"
        )


def make_trainer(cfg: DictConfig, callbacks: list[Callback], loggers: list):
    """The configured Trainer, with its callbacks and loggers (the progress bar when one is among them)."""
    bar = any(isinstance(c, ProgressBar) for c in callbacks)
    try:
        return instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False, enable_progress_bar=bar)
    except Exception as err:  # Lightning's refusal of a setting, wrapped by Hydra's instantiate
        cause = next((e for e in causes(err) if isinstance(e, (MisconfigurationException, ValueError))), None)
        if cause is None:
            raise
        raise ConfigError(f"trainer: {' '.join(str(cause).split())}") from None


def progress_bar_wanted(trainer: DictConfig, terminal: bool) -> bool:
    """The progress bar only on a terminal: it redraws itself, which a log file or a pipe shows as a
    column of fragments (the epoch lines say the same there); never with trainer.enable_progress_bar=false."""
    return bool(trainer.get("enable_progress_bar", True)) and terminal


def make_callbacks(cfg: DictConfig, progress_bar: bool) -> list[Callback]:
    callbacks = []
    for name, callback_cfg in (cfg.get("callbacks") or {}).items():
        if callback_cfg:
            callback = instantiate(callback_cfg)
            if not isinstance(callback, Callback):
                raise ConfigError(f"callbacks.{name}: {callback_cfg._target_} is not a Lightning callback (a subclass of lightning.pytorch.callbacks.Callback)")
            callbacks.append(callback)
    # one switch turns each off: Lightning refuses these callbacks while the trainer disables them
    if not cfg.trainer.get("enable_checkpointing", True):
        callbacks = [c for c in callbacks if not isinstance(c, Checkpoint)]
    if not progress_bar:
        callbacks = [c for c in callbacks if not isinstance(c, ProgressBar)]
    if not cfg.trainer.get("enable_model_summary", True):
        callbacks = [c for c in callbacks if not isinstance(c, ModelSummary)]
    return callbacks


def run_summary(trainer, output_dir: Path, metrics: dict[str, float], seconds: float) -> RunSummary:
    """What the last lines of a run say: where it is, which epoch it reports on, its figures, its files."""
    epoch_log = next((c for c in trainer.callbacks if isinstance(c, EpochLog)), None)
    selector = model_checkpoint(trainer)
    selected = Path(selector.best_model_path) if selector is not None and selector.best_model_path else None
    split = "test" if TEST_ACC in metrics else None
    valid_label = "valid (selected on it)" if split else "valid (selection split: report it as such)"
    splits = [(valid_label, VAL_ACC_SELECTED, VAL_F1_SELECTED)] + ([("test", TEST_ACC, TEST_F1)] if split else [])
    written = [f for f in RUN_FILES if (output_dir / f).is_file()] + sorted(p.name for p in output_dir.glob("predictions_*.npz"))
    return RunSummary(
        run_dir=shown_path(output_dir),
        seconds=seconds,
        epochs=trainer.current_epoch,
        selected_epoch=epoch_log.selected_epoch if epoch_log is not None and selected is not None else None,
        selected_file=str(selected.relative_to(output_dir)) if selected is not None and selected.is_relative_to(output_dir) else str(selected),
        monitor=selector.monitor if selector is not None and selector.monitor else "",
        metrics={**metrics, **({selector.monitor: float(selector.best_model_score)} if selector is not None and selector.best_model_score is not None else {})},
        splits=splits,
        files=written,
    )


def save_predictions(ckpt: Path | None, output_dir: Path, batch_size: int, device=None) -> dict[str, float]:
    """The `ckpt` model's predictions on valid and test, as predictions_<split>.npz in `output_dir`
    (textclass-compare reads them), its confusion matrices (confusion_matrix.json and .png), and its
    scores: val/acc_selected, val/f1_selected, and test/acc, test/f1 again, on every test example
    (the test stage leaves out those that have no known token). The model is loaded from its files
    as textclass-eval loads it, so the two agree, and runs on `device` (where it trained)."""
    if ckpt is None:
        log.warning("no checkpoint was saved (callbacks.model_checkpoint=null and callbacks.last_checkpoint=null): no predictions files written")
        return {}
    run = load_run(ckpt, run_dir=output_dir, log_level=logging.DEBUG)
    run.model.to(device or "cpu")
    metrics, confusion = {}, {}
    splits = sources(run, ["valid", "test"], None, log_missing=False)
    for split, examples in splits.items():
        logits = run.logits(examples.texts, batch_size, examples.pairs)
        from_logits(run, split, examples, logits).save(output_dir / predictions_file(split))
        result = score(run, logits, examples.labels)
        metrics.update(dict(zip(SELECTED_METRICS[split], (result.acc, result.f1))))
        if result.confusion is not None:
            confusion[split] = result.confusion
    if confusion:
        names = list(run.labels.names)
        (output_dir / CONFUSION_FILE).write_text(json.dumps({"class_names": names, "checkpoint": ckpt.name, **confusion}, indent=1))
        for split, matrix in confusion.items():
            title = f"{split} confusion matrix, {ckpt.name}" + (f" (epoch {run.epoch})" if run.epoch else "")
            plot_confusion(matrix, names, output_dir / CONFUSION_PLOTS[split], title=title)
    return metrics


def check_selection(callbacks: DictConfig) -> None:
    """The selecting checkpoint keeps one file, checkpoints/selected.ckpt: more would overwrite it."""
    node = callbacks.get("model_checkpoint")
    if node and node.get("save_top_k", 1) not in (0, 1) and "{" not in str(node.get("filename", "")):
        raise ConfigError(
            f"callbacks.model_checkpoint.save_top_k={node.save_top_k} with filename={node.get('filename')}: the selected "
            "checkpoint is one file; to keep every epoch's state, set callbacks.last_checkpoint.keep_epochs=true"
        )


def fit_thresholds(model: TextClassifier, datamodule, path: Path | None) -> dict[str, float]:
    """Per-label thresholds that maximise each label's F1 on valid, for the model as trained (its last
    epoch, checkpoints/last.ckpt); set on the model (so the test stage uses them) and written to `path`.
    Returns valid's macro and micro F1 under them (optimistic: chosen on that split)."""
    model.eval()
    probs, truth = [], []
    with torch.no_grad():
        for batch in datamodule.eval_loader("valid"):
            batch = batch.to(model.device)
            probs.append(model.probabilities(model(batch)).cpu().numpy())
            truth.append(batch.labels.cpu().numpy())
    probs_all, truth_all = np.concatenate(probs), np.concatenate(truth).astype(bool)
    thresholds = tune_thresholds(probs_all, truth_all)
    model.thresholds = torch.tensor(thresholds, dtype=model.thresholds.dtype, device=model.thresholds.device)
    if path is not None:
        path.write_text(json.dumps(dict(zip(model.class_names, thresholds.tolist())), indent=1))
    log.info("per-label thresholds tuned on valid: %s", dict(zip(model.class_names, thresholds.tolist())))
    # the F1 textclass-eval computes, on the decisions under the tuned thresholds
    scores = multilabel_scores(torch.from_numpy(probs_all >= thresholds), torch.from_numpy(truth_all))
    return {VAL_F1_TUNED: float(scores["f1"]), VAL_F1_MICRO_TUNED: float(scores["f1_micro"])}


def build_data_and_model(cfg: DictConfig) -> tuple[TextClassificationDataModule, TextClassifier]:
    """The data module of `cfg.data`, prepared and set up for fit, and the untrained model it feeds:
    what a training run builds before its first step, and what textclass.network shows."""
    datamodule = instantiate(cfg.data)
    datamodule.prepare_data()
    datamodule.setup("fit")
    labels = datamodule.labels
    weights = balanced_class_weights(datamodule.train_labels(), len(labels)) if cfg.model.get("class_weights") == "balanced" else None
    return datamodule, build_model(cfg, datamodule.features, labels, weights)


def check_epoch_limit(trainer_cfg: DictConfig) -> None:
    """Lightning takes max_epochs=0 (or -5) and trains nothing, and divides by the step counts below
    mid-run; say so instead of an empty run or a ZeroDivisionError."""
    max_epochs = trainer_cfg.get("max_epochs")
    if max_epochs is not None and max_epochs != -1 and max_epochs < 1:
        raise ConfigError(
            f"trainer.max_epochs={max_epochs} trains nothing: set it to 1 or more "
            "(or -1 for no epoch limit, with trainer.max_steps to stop)"
        )
    for key in ("check_val_every_n_epoch", "log_every_n_steps", "accumulate_grad_batches"):
        value = trainer_cfg.get(key)
        if isinstance(value, int) and value < 1:
            raise ConfigError(f"trainer.{key}={value} must be 1 or more")


def check_sharding(trainer_cfg: DictConfig, world_size: int) -> None:
    """The data module shards its own batches; Lightning's sampler would shard each shard again."""
    if world_size > 1 and trainer_cfg.get("use_distributed_sampler", True):
        raise ConfigError(
            f"trainer.use_distributed_sampler=true with {world_size} processes: textclass's data module gives each process "
            "its own part of the data, and Lightning would split that part again; set trainer.use_distributed_sampler=false"
        )


def optimized_value(metrics: dict[str, float], name: str | Sequence[str] | None) -> float | list[float] | None:
    """The metric a sweeper optimizes (a list of them for several objectives); NaN/inf pass through for the sweeper to judge."""
    if not name:
        return None
    if not isinstance(name, str):
        return [optimized_value(metrics, n) for n in name]
    if name not in metrics:
        raise ConfigError(f"optimized_metric={name!r} was not logged; available: {sorted(metrics)}")
    value = metrics[name]
    if not math.isfinite(value):
        log.warning("%s is %s", name, value)
    return value
