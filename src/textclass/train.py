"""`textclass-train`: compose the config, fit, test when a test split exists, return the metric."""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import sys
import time
import types
from contextlib import contextmanager
from dataclasses import dataclass
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from textclass.cli import CONFIG_DIR, compose_config, exit_on_user_error, run_command, seeds_arguments
from textclass.overrides import override_key
from textclass.console import RunSummary, quiet_third_party, summary_lines
from textclass.errors import ConfigError, NothingToDo, causes, find_user_error
from textclass.metric_names import TEST_ACC, TEST_F1, VAL_ACC_SELECTED, VAL_F1_MICRO_TUNED, VAL_F1_SELECTED, VAL_F1_TUNED
from textclass.run_files import (
    CONFUSION_FILE,
    CONFUSION_PLOTS,
    HYDRA_DIR,
    HYDRA_FILES,
    LABELS_FILE,
    LAST_CHECKPOINT,
    METRICS_FILE,
    OVERRIDES_FILE,
    RUN_CONFIG,
    RUN_FILES,
    THRESHOLDS_FILE,
    TRAIN_LOG,
    predictions_file,
)

if TYPE_CHECKING:
    from lightning.pytorch.callbacks import Callback

    from textclass.models.classifier import TextClassifier

# Lightning, torch and the models are imported inside the functions that use them: `--help`,
# `--cfg job` and bad overrides are answered without them (most of the start-up time).

log = logging.getLogger(__name__)

DDP_JOB_ENV = "TEXTCLASS_DDP_JOB_ARGS"
# (accuracy, macro-F1) of the selected checkpoint, by split
SELECTED_METRICS = {"valid": (VAL_ACC_SELECTED, VAL_F1_SELECTED), "test": (TEST_ACC, TEST_F1)}


def train(cfg: DictConfig) -> dict[str, float]:
    """Fit (and test) the configured model; returns the final metrics by name."""
    import lightning as L
    from lightning.pytorch.utilities import rank_zero_only

    from textclass.accelerators import check_accelerator
    from textclass.callbacks import model_checkpoint
    from textclass.checkpoint import read_checkpoint
    from textclass.launchers import check_torchrun
    from textclass.models.build import balanced_class_weights, build_model
    from textclass.options import check_config_types
    from textclass.trust import check_user_targets

    start = time.perf_counter()
    check_config_types(cfg)
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
    datamodule = instantiate(cfg.data)
    datamodule.prepare_data()
    datamodule.setup("fit")
    labels = datamodule.labels
    weights = balanced_class_weights(datamodule.train_labels(), len(labels)) if cfg.model.get("class_weights") == "balanced" else None
    model = build_model(cfg, datamodule.features, labels, weights)
    if cfg.get("ckpt_path"):
        # a missing, truncated or foreign checkpoint is one clear error before the run dir is touched
        state = read_checkpoint(Path(cfg.ckpt_path))
        check_resumable(model, state, Path(cfg.ckpt_path))
        log.info("resuming from %s (after epoch %d)", shown_path(Path(cfg.ckpt_path)), epochs_done(state))
    if is_rank_zero:
        # what eval, predict and textclass.load need to encode and name classes as training did
        datamodule.features.save(output_dir)
        datamodule.labels.save(output_dir / LABELS_FILE)
        datamodule.save_split(output_dir)
        # resolved (after build_model has rejected inconsistent choices): eval and predict rebuild
        # the model and data from this file, from any directory
        (output_dir / RUN_CONFIG).write_text(OmegaConf.to_yaml(cfg, resolve=True))
    from textclass.loggers import finish_runs, make_loggers  # here, not at start-up

    loggers = make_loggers(cfg)
    trainer = make_trainer(cfg, callbacks, loggers)
    check_sharding(cfg.trainer, trainer.world_size)
    trainer.fit(model, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"))
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
    if model.multi_label and cfg.model.get("tune_thresholds"):
        metrics.update(fit_thresholds(model, datamodule, output_dir / THRESHOLDS_FILE if is_rank_zero else None))
    selector = model_checkpoint(trainer)
    selected = Path(selector.best_model_path) if selector is not None and selector.best_model_path else None
    if cfg.get("test") and "test" in datamodule.splits():
        results = trainer.test(model, datamodule=datamodule, ckpt_path=str(selected) if selected else None, verbose=False)
        metrics.update({k: float(v) for k, v in results[0].items()})
    elif cfg.get("test"):
        log.info("no test split for %s: skipping the test stage", datamodule.dataset.name)
    if trainer.is_global_zero:
        if cfg.get("predictions", True):
            selected = selected or (output_dir / LAST_CHECKPOINT if (output_dir / LAST_CHECKPOINT).is_file() else None)
            metrics.update(save_predictions(selected, output_dir, datamodule.eval_batch_size, model.device))
        (output_dir / METRICS_FILE).write_text(json.dumps(metrics, indent=1, sort_keys=True))
        for line in summary_lines(run_summary(trainer, output_dir, metrics, time.perf_counter() - start)):
            log.info("%s", line)
    finish_runs(loggers)  # each job its own run: the next one (under -m) starts a new one
    return metrics


def check_resumable(model, state: dict, ckpt: Path) -> None:
    """The checkpoint's weights fit the model the (resumed) config builds: changed overrides that
    build another model are refused before config.yaml is rewritten."""
    from textclass.checkpoint import weights_mismatch

    if (mismatch := weights_mismatch(model.state_dict(), state["state_dict"])) is not None:
        raise ConfigError(
            f"{ckpt} does not fit the model these overrides build ({type(model.encoder).__name__}): {mismatch}; "
            "resume with the run's own model settings (drop the overrides that change it)"
        )


def epochs_done(checkpoint: dict) -> int:
    """The epochs a checkpoint's run has finished."""
    progress = checkpoint.get("loops", {}).get("fit_loop", {}).get("epoch_progress", {}).get("current", {})
    return int(progress.get("processed", checkpoint.get("epoch", -1) + 1))


def make_trainer(cfg: DictConfig, callbacks: list[Callback], loggers: list):
    """The configured Trainer, with its callbacks and loggers (the progress bar when one is among them)."""
    from lightning.fabric.utilities.exceptions import MisconfigurationException
    from lightning.pytorch.callbacks import ProgressBar

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


def run_summary(trainer, output_dir: Path, metrics: dict[str, float], seconds: float) -> RunSummary:
    """What the last lines of a run say: where it is, which epoch it reports on, its figures, its files."""
    from textclass.callbacks import EpochLog, model_checkpoint

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


def shown_path(path: Path) -> str:
    """`path` relative to the working directory when it lies below it (as a user would type it)."""
    resolved = path.resolve()
    return str(resolved.relative_to(Path.cwd())) if resolved.is_relative_to(Path.cwd()) else str(resolved)


def save_predictions(ckpt: Path | None, output_dir: Path, batch_size: int, device=None) -> dict[str, float]:
    """The `ckpt` model's predictions on valid and test, as predictions_<split>.npz in `output_dir`
    (textclass-compare reads them), its confusion matrices (confusion_matrix.json and .png), and its
    scores: val/acc_selected, val/f1_selected, and test/acc, test/f1 again, on every test example
    (the test stage leaves out those that have no known token). The model is loaded from its files
    as textclass-eval loads it, so the two agree, and runs on `device` (where it trained)."""
    from textclass.checkpoint import load_run
    from textclass.evaluate import score, sources
    from textclass.plots import plot_confusion
    from textclass.predictions import from_logits

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
    import numpy as np
    import torch
    from torchmetrics.functional.classification import multilabel_f1_score

    from textclass.models.metrics import tune_thresholds

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
    decisions = torch.from_numpy(probs_all >= thresholds).float()
    targets = torch.from_numpy(truth_all).long()
    common = dict(num_labels=len(thresholds), threshold=0.5)
    return {
        VAL_F1_TUNED: float(multilabel_f1_score(decisions, targets, **common, average="macro")),
        VAL_F1_MICRO_TUNED: float(multilabel_f1_score(decisions, targets, **common, average="micro")),
    }


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


def make_callbacks(cfg: DictConfig, progress_bar: bool) -> list[Callback]:
    from lightning.pytorch.callbacks import Callback, Checkpoint, ModelSummary, ProgressBar

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


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="train")
@exit_on_user_error
def hydra_main(cfg: DictConfig) -> float | list[float] | None:
    hydra_cfg = HydraConfig.get()
    log.info("run dir: %s", shown_path(Path(hydra_cfg.runtime.output_dir)))
    log.debug("config:\n%s", OmegaConf.to_yaml(cfg))
    if hydra_cfg.mode != RunMode.MULTIRUN:
        with removed_when_refused(Path(hydra_cfg.runtime.output_dir)):
            return train_job(cfg)
    env_before = dict(os.environ)
    # Lightning's DDP re-launches this script with its argv for the other ranks: under -m that
    # would be the whole sweep. Tell them exactly this job (read back in `main`).
    os.environ[DDP_JOB_ENV] = json.dumps([*hydra_cfg.overrides.task, f"hydra.run.dir={hydra_cfg.runtime.output_dir}"])
    try:
        return train_job(cfg)
    finally:
        # Lightning leaves LOCAL_RANK & co. set after a DDP job; the next job would then take its
        # ranks for externally launched ones and never start them.
        restore_environment(env_before)
        import torch

        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


@contextmanager
def removed_when_refused(run_dir: Path) -> Iterator[None]:
    """A run that bad input stops before it trains leaves nothing behind (its error is on the
    console): a new run directory is removed; a resumed one gets back the .hydra/ files and train.log
    Hydra rewrote and extended for the job (`Snapshot` took them first). A directory that held
    anything else, or a run a bug (not bad input) stopped, is kept as it is."""
    fresh = run_dir.is_dir() and all(p.name in HYDRA_FILES for p in run_dir.iterdir())
    before = RESUMED.get(run_dir.resolve())
    started = {p: p.stat().st_mtime_ns for p in run_dir.glob("checkpoints/*.ckpt")}
    try:
        yield
    except Exception as err:
        refused = find_user_error(err) is not None
        wrote_checkpoints = {p: p.stat().st_mtime_ns for p in run_dir.glob("checkpoints/*.ckpt")} != started
        if refused and not wrote_checkpoints and (fresh or before is not None):
            close_log_file(run_dir / TRAIN_LOG)  # the error line must not go back into it
            if fresh:
                shutil.rmtree(run_dir, ignore_errors=True)
            else:
                before.restore(run_dir)
        raise


def close_log_file(path: Path) -> None:
    """Close and drop the logging handler that writes `path` (Hydra's job log file)."""
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, logging.FileHandler) and Path(h.baseFilename) == path.resolve()]:
        handler.close()
        root.removeHandler(handler)


@dataclass(frozen=True)
class Snapshot:
    """What Hydra changes in a resumed run's directory as the job starts: its .hydra/ files and the
    length of train.log."""

    hydra_files: dict[str, bytes]
    log_size: int | None

    @classmethod
    def of(cls, run_dir: Path) -> Snapshot:
        files = {p.name: p.read_bytes() for p in (run_dir / HYDRA_DIR).glob("*") if p.is_file()}
        log_file = run_dir / TRAIN_LOG
        return cls(files, log_file.stat().st_size if log_file.is_file() else None)

    def restore(self, run_dir: Path) -> None:
        for path in (run_dir / HYDRA_DIR).glob("*"):
            if path.is_file() and path.name not in self.hydra_files:
                path.unlink()
        for name, data in self.hydra_files.items():
            (run_dir / HYDRA_DIR / name).write_bytes(data)
        log_file = run_dir / TRAIN_LOG
        if self.log_size is None:
            log_file.unlink(missing_ok=True)
        elif log_file.is_file():
            os.truncate(log_file, self.log_size)


# run directories this process resumes, as they were before Hydra touched them (resume_arguments)
RESUMED: dict[Path, Snapshot] = {}


def restore_environment(before: Mapping[str, str]) -> None:
    """Remove the variables a job added and restore those it changed; the rest stays untouched."""
    for name in set(os.environ) - set(before):
        del os.environ[name]
    for name, value in before.items():
        if os.environ.get(name) != value:
            os.environ[name] = value


def main() -> None:
    """Console entry: `seeds=N` becomes a multirun over seed=1..N, and `resume=<run dir>|last` that
    run's own overrides plus its last checkpoint."""
    from textclass.launchers import check_launcher

    run_command(hydra_main, "train", rewrite=rewrite_arguments, check=check_run, check_multirun=check_launcher)


def check_run(cfg: DictConfig) -> None:
    """A single run's checks before Hydra makes its run dir: user classes, torchrun's world size,
    the trainer's hardware."""
    from textclass.accelerators import check_accelerator
    from textclass.launchers import check_torchrun
    from textclass.trust import check_user_targets

    check_user_targets(cfg)
    check_torchrun(cfg.trainer, os.environ)
    check_accelerator(cfg.trainer)


def train_job(cfg: DictConfig) -> float | list[float] | None:
    """Train; the value the sweeper optimizes. A DDP rank other than 0 (Lightning's child, a Slurm
    task) whose search trial is pruned ends with exit code 0: rank 0's sweeper records the PRUNED
    trial, and Lightning kills the whole sweep as soon as one of its ranks exits non-zero."""
    import optuna

    from textclass.launchers import is_global_rank_zero

    try:
        return optimized_value(train(cfg), cfg.get("optimized_metric"))
    except optuna.TrialPruned as pruned:
        if is_global_rank_zero(os.environ):
            raise
        log.info("trial pruned %s: this process ends", pruned)
        return None


def rewrite_arguments(args: list[str]) -> list[str]:
    """The command line Hydra gets: a DDP rank's job, seeds=N and resume= rewritten (see each)."""
    from textclass.launchers import check_torchrun_run_dir

    args = plugin_arguments(resume_arguments(seeds_arguments(ddp_rank_arguments(args, os.environ))))
    check_torchrun_run_dir(args, os.environ)
    return args


# keys that moved, as users may have typed them (and runs' overrides hold them): old prefix -> new
MOVED_KEYS = {"model.distill.": "distill."}


def plugin_arguments(args: list[str]) -> list[str]:
    """`distill.teacher=<run>` without `distill=kd` chooses it; `model.distill.*` (the key before
    distillation became a plug-in) still works, with a note saying what it is now."""
    args, moved = list(args), []
    for i, arg in enumerate(args):
        rest = arg.lstrip("+~")
        prefix = arg[: len(arg) - len(rest)]
        for old, new in MOVED_KEYS.items():
            if rest.startswith(old):
                args[i] = prefix + new + rest[len(old):]
                moved.append((arg, args[i]))
    for old, new in moved:
        print(f"note: {old} is {new} now (distill=kd is the distillation plug-in's config group)", file=sys.stderr)
    if any(override_key(a).startswith("distill.") for a in args) and not any(override_key(a) == "distill" for a in args):
        args = [*args, "distill=kd"]
    return args


def ddp_rank_arguments(args: list[str], env: Mapping[str, str]) -> list[str]:
    """For a DDP rank that Lightning launched from inside a multirun job: that job's overrides only.

    Lightning's own additions (hydra.job.name, hydra.output_subdir=null) are kept; its
    hydra.run.dir (the sweep's run-mode dir) is replaced by the job's directory.
    """
    if DDP_JOB_ENV not in env or "LOCAL_RANK" not in env or not ({"-m", "--multirun"} & set(args)):
        return args
    lightning_added = [a for a in args if a.startswith(("hydra.job.name=", "hydra.output_subdir="))]
    return [*json.loads(env[DDP_JOB_ENV]), *lightning_added]


def resume_arguments(args: list[str]) -> list[str]:
    """Rewrite `resume=...` into the resumed run's overrides, its run dir and its last checkpoint.

    Overrides given now come after the original ones, so they win (e.g. a larger trainer.max_epochs).
    A run with nothing left to train ends the command (NothingToDo) before anything in it is touched.
    """
    resume = [a for a in args if a.startswith("resume=")]
    if not resume:
        return args
    from textclass.checkpoint import load_run_overrides, read_checkpoint
    from textclass.trust import check_replayable, check_trusted

    target = resume[-1].split("=", 1)[1]
    now = [a for a in args if not a.startswith("resume=")]
    run_dir = latest_run(runs_dir(compose_config("train", now))) if target == "last" else Path(target).expanduser()
    ckpt = run_dir / LAST_CHECKPOINT
    if not ckpt.is_file() or not (run_dir / OVERRIDES_FILE).is_file():
        raise ConfigError(f"resume={target}: {run_dir} is not a textclass-train run with {LAST_CHECKPOINT} and {OVERRIDES_FILE}")
    original = load_run_overrides(run_dir)
    check_replayable(original, now, run_dir / OVERRIDES_FILE)
    cfg = compose_config("train", [*original, *now])
    check_trusted(cfg, run_dir / OVERRIDES_FILE)
    if finished := finished_reason(read_checkpoint(ckpt), cfg):
        reason, how_to_go_on = finished
        raise NothingToDo(
            f"resume={target}: nothing to do, the run is finished ({reason}); its checkpoints and metrics are "
            f"left as they are. To train on: textclass-train resume={target} {how_to_go_on}"
        )
    RESUMED[run_dir.resolve()] = Snapshot.of(run_dir)
    return [*original, *now, f"ckpt_path={ckpt.resolve()}", f"hydra.run.dir={run_dir.resolve()}"]


def finished_reason(checkpoint: dict, cfg: DictConfig) -> tuple[str, str] | None:
    """Why a run saved as `checkpoint` would train no further under `cfg` and the overrides that
    would let it, or None if it would."""
    epochs = epochs_done(checkpoint)
    max_epochs = cfg.trainer.get("max_epochs")
    if max_epochs is not None and max_epochs != -1 and epochs >= max_epochs:
        return f"it trained {epochs} of trainer.max_epochs={max_epochs} epochs", "trainer.max_epochs=<more epochs>"
    if (cfg.get("callbacks") or {}).get("early_stopping"):
        states = [v for k, v in checkpoint.get("callbacks", {}).items() if k.startswith("EarlyStopping")]
        if states and states[0].get("stopped_epoch", 0) > 0:
            return f"early stopping ended it after {epochs} epochs", "callbacks.early_stopping=null"
    return None


def runs_dir(cfg: DictConfig) -> Path:
    """Where single runs go (hydra.run.dir's parent under the default layout): paths.log_dir/<task>/runs."""
    return Path(cfg.paths.log_dir) / cfg.task_name / "runs"


def latest_run(runs_dir: Path) -> Path:
    """The most recently started run under `runs_dir` that has a last checkpoint."""
    runs = sorted(p.parent.parent for p in runs_dir.glob(f"*/{LAST_CHECKPOINT}"))
    if not runs:
        raise ConfigError(f"resume=last: no run with checkpoints/last.ckpt under {runs_dir.resolve()}; pass resume=<run dir>")
    return runs[-1]



class _CallableModule(types.ModuleType):
    """`textclass.train` is this module: calling it trains (textclass.api.train), so the Python API
    reads `textclass.train([...])` whichever of the two was imported first."""

    def __call__(self, overrides: Sequence[str] = ()) -> dict[str, float | str]:
        from textclass.api import train as train_from_python

        return train_from_python(overrides)


sys.modules[__name__].__class__ = _CallableModule


if __name__ == "__main__":
    main()
