"""Lightning callbacks that leave inspectable traces of a run in its run directory and TensorBoard.

- `EpochTimer`: `time/epoch_s`, the wall-clock seconds of each training epoch.
- `EpochLog`: one line per epoch on the console and in train.log, and a line when early stopping ends the run.
- `LastCheckpoint`: `checkpoints/last.ckpt`, the state after the latest finished epoch (resume=).
- `RunPlots`: `history.csv` and `curves.png`.
- `HparamsWithMetrics`: the run's configuration with its final metrics in TensorBoard's HPARAMS tab,
  and as the parameters of every other logger (CSV, MLflow, W&B).
- `LearningRateMonitor`: Lightning's, but a no-op instead of an error when the run has no logger.
- `ModelSummary`: Lightning's rich parameter table, without the FLOPs column (all zeros: Lightning
  counts FLOPs only for a model with an example input, which a text batch is not).

All are configured in conf/callbacks/default.yaml; list `epoch_timer` before `run_plots` and
`epoch_log` there (they read its time). Epochs count from 1 in everything a person reads (the
console, history.csv, curves.png); Lightning's own counter, in checkpoints, counts from 0.
"""

from __future__ import annotations

import csv
import logging
import math
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

import lightning as L
from hydra.core.hydra_config import HydraConfig
from lightning.pytorch.callbacks import Callback, Checkpoint, EarlyStopping, ModelCheckpoint, ProgressBar
from lightning.pytorch.callbacks import LearningRateMonitor as _LearningRateMonitor
from lightning.pytorch.callbacks import RichModelSummary
from lightning.pytorch.loggers import TensorBoardLogger
from omegaconf import OmegaConf

from textclass.console import EpochRecord, early_stop_line, epoch_line, selection_line
from textclass.training.plots import plot_curves
from textclass.run_files import CURVES_FILE, HISTORY_FILE, LAST_CHECKPOINT, RUN_CONFIG
from textclass.metric_names import EPOCH_S, TRAIN_ACC, TRAIN_LOSS_EPOCH, VAL_ACC, VAL_ACC_BEST, VAL_LOSS

log = logging.getLogger(__name__)


class EpochTimer(Callback):
    """Logs `time/epoch_s`: wall-clock seconds from the start to the end of each training epoch.

    Lightning runs the end-of-epoch validation inside the training epoch (before
    `on_train_epoch_end`), so the figure includes validation time.
    """

    def __init__(self) -> None:
        self._start: float | None = None

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._start = time.perf_counter()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._start is not None:
            # through pl_module.log: TensorBoard (per epoch) and trainer.callback_metrics alike
            pl_module.log(EPOCH_S, time.perf_counter() - self._start, on_step=False, on_epoch=True)


def model_checkpoint(trainer: L.Trainer) -> ModelCheckpoint | None:
    """The callback that selects the checkpoint a run reports on (callbacks.model_checkpoint)."""
    return next((c for c in trainer.callbacks if isinstance(c, ModelCheckpoint)), None)


class EpochRecorder(Callback):
    """Each finished training epoch as an `EpochRecord`, built at its end, when its train figures
    and `time/epoch_s` (EpochTimer, earlier in the callback list) are current: Lightning validates
    before the training epoch ends, so at the end of validation the epoch-level train metrics are
    still the previous epoch's. An epoch without a validation run (`check_val_every_n_epoch` > 1)
    gets no valid figures, not the previous epoch's."""

    def __init__(self) -> None:
        self._validated = False

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._validated = False

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.sanity_checking:
            self._validated = True

    def record(self, trainer: L.Trainer) -> EpochRecord:
        metrics, val = trainer.callback_metrics, self._validated
        return EpochRecord(
            epoch=trainer.current_epoch + 1,
            train_loss=_metric(metrics, TRAIN_LOSS_EPOCH),
            train_acc=_metric(metrics, TRAIN_ACC),
            val_loss=_metric(metrics, VAL_LOSS) if val else None,
            val_acc=_metric(metrics, VAL_ACC) if val else None,
            epoch_s=_metric(metrics, EPOCH_S),
        )


class EpochLog(EpochRecorder):
    """One plain line per epoch (epoch i/N, train and val loss and accuracy, * on a new best of the
    selection monitor, seconds), and when early stopping ends the run, a line saying why and which
    epoch is selected. The selected epoch (counted from 1) is kept for the run summary and resumes."""

    def __init__(self) -> None:
        super().__init__()
        self.selected_epoch: int | None = None

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        selector = model_checkpoint(trainer)
        if selector is not None and selector.monitor and trainer.is_global_zero:
            log.info("%s", selection_line(selector.monitor, selector.mode))

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        record = self.record(trainer)
        new_best = self._validated and self._is_new_best(trainer)
        if new_best:
            self.selected_epoch = record.epoch
        if trainer.is_global_zero:
            log.info("%s", epoch_line(record, trainer.max_epochs, new_best))

    @staticmethod
    def _is_new_best(trainer: L.Trainer) -> bool:
        """This epoch's value of the selection monitor beats the selected one so far (ModelCheckpoint,
        which runs after this callback, is about to select this epoch)."""
        selector = model_checkpoint(trainer)
        current = trainer.callback_metrics.get(selector.monitor) if selector is not None and selector.monitor else None
        if current is None or not math.isfinite(float(current)):
            return False
        best = selector.best_model_score
        if best is None:
            return True
        return float(current) < float(best) if selector.mode == "min" else float(current) > float(best)

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        stopper = next((c for c in trainer.callbacks if isinstance(c, EarlyStopping)), None)
        if stopper is not None and stopper.stopped_epoch > 0 and trainer.is_global_zero:
            log.info("%s", early_stop_line(stopper.monitor, stopper.patience, stopper.stopped_epoch + 1, self.selected_epoch))

    def state_dict(self) -> dict[str, Any]:
        return {"selected_epoch": self.selected_epoch}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.selected_epoch = state_dict.get("selected_epoch")


class ProgressLine(ProgressBar):
    """On a terminal: one line, redrawn in place every `refresh_rate` batches (`epoch 3/10  train
    41/47  10.8 batches/s`, then `validate 3/6`), erased when the epoch ends so that its epoch line
    takes its place. The figures are in the epoch lines; Lightning's own bars repeat them in a column
    and count epochs from 0."""

    def __init__(self, refresh_rate: int = 10) -> None:
        super().__init__()
        if refresh_rate < 1:
            raise ValueError(f"callbacks.progress_bar.refresh_rate={refresh_rate} must be >= 1")
        self.refresh_rate = refresh_rate
        self._enabled = True
        self._start = 0.0

    def disable(self) -> None:
        self._enabled = False

    def enable(self) -> None:
        self._enabled = True

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._start = time.perf_counter()

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int) -> None:
        done = batch_idx + 1
        if done % self.refresh_rate == 0 or done == self.total_train_batches:
            rate = done / max(time.perf_counter() - self._start, 1e-9)
            self._draw(trainer, f"train {done}/{self._total(self.total_train_batches)}  {rate:.1f} batches/s")

    def on_validation_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any, **kwargs: Any) -> None:
        batch_idx = args[2] if len(args) > 2 else kwargs.get("batch_idx", 0)
        if not trainer.sanity_checking and (batch_idx + 1) % self.refresh_rate == 0:
            self._draw(trainer, f"validate {batch_idx + 1}/{self._total(self.total_val_batches_current_dataloader)}")

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._erase()

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        self._erase()

    @staticmethod
    def _total(total: float) -> str:
        return "?" if math.isinf(total) else str(int(total))

    def _draw(self, trainer: L.Trainer, text: str) -> None:
        if self._enabled and trainer.is_global_zero:
            of = f"/{trainer.max_epochs}" if trainer.max_epochs and trainer.max_epochs > 0 else ""
            sys.stderr.write(f"\r\x1b[Kepoch {trainer.current_epoch + 1}{of}  {text}")
            sys.stderr.flush()

    def _erase(self) -> None:
        if self._enabled:
            sys.stderr.write("\r\x1b[K")
            sys.stderr.flush()


class LastCheckpoint(Checkpoint):
    """`checkpoints/last.ckpt`: the state after the latest finished epoch, written at the end of every
    epoch, so `resume=` continues exactly where training stopped (an early stop, a kill, a crash).

    A Lightning `Checkpoint`, so Lightning runs it after the other callbacks (the selection,
    early stopping and the history have recorded the epoch by then, and their state is saved with
    it). An interrupt (Ctrl-C) inside an epoch leaves last.ckpt at the last finished epoch: a
    checkpoint from inside an epoch cannot be resumed exactly (the epoch's data order would start
    over), so the run says where it will continue from instead. `keep_epochs`: also keep a copy of
    every epoch's state as epoch_NNN.ckpt (counted from 1).
    """

    def __init__(self, dirpath: str, keep_epochs: bool = False) -> None:
        self.dirpath = Path(dirpath)
        self.keep_epochs = keep_epochs

    @property
    def path(self) -> Path:
        return self.dirpath / Path(LAST_CHECKPOINT).name

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        trainer.save_checkpoint(self.path, weights_only=False)
        if self.keep_epochs:
            trainer.save_checkpoint(self.dirpath / epoch_checkpoint_name(trainer.current_epoch + 1), weights_only=False)

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        if isinstance(exception, KeyboardInterrupt) and trainer.is_global_zero:
            done = trainer.current_epoch  # finished epochs
            held = f"{self.path} holds epoch {done}, the last finished one" if self.path.is_file() else "no epoch finished, so no checkpoint was written"
            log.warning("interrupted during epoch %d: %s; resume=%s continues from there", done + 1, held, Path(trainer.default_root_dir))


def epoch_checkpoint_name(epoch: int) -> str:
    """The file of an epoch's state (counted from 1) with callbacks.last_checkpoint.keep_epochs=true."""
    return f"epoch_{epoch:03d}.ckpt"


class RunPlots(EpochRecorder):
    """Records per-epoch train/valid loss and accuracy in history.csv (after every epoch), and plots
    them in curves.png at the end of fit."""

    def __init__(self) -> None:
        super().__init__()
        self.history: list[EpochRecord] = []

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.history.append(self.record(trainer))
        if trainer.is_global_zero:  # every epoch: a killed run keeps the figures of its finished epochs
            write_history(self.history, Path(trainer.default_root_dir) / HISTORY_FILE)

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.is_global_zero and self.history:
            plot_curves(self.history, Path(trainer.default_root_dir) / CURVES_FILE)

    # saved in checkpoints, so a resumed run (ckpt_path=...) plots its earlier epochs too
    def state_dict(self) -> dict[str, Any]:
        return {"history": [asdict(r) for r in self.history]}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.history = [EpochRecord(**r) for r in state_dict.get("history", [])]


class HparamsWithMetrics(Callback):
    """At the end of fit, logs the run's configuration with its final metrics to every TensorBoardLogger.

    Lightning logs the LightningModule's hparams at fit start, but with `default_hp_metric: false`
    and no metrics the TensorBoardLogger writes only hparams.yaml, nothing for the HPARAMS tab. This
    logs the hparams plugin data once the metrics are known. The parameters are the run's resolved
    config (`config_file` in the run directory, written by textclass-train; the module's hparams
    when it is absent), flattened to `model/encoder/hidden_size`-style keys, plus the Hydra group
    choices as `choice/<group>` (model=bow, optimizer=adam, ...).

    `TensorBoardLogger.log_hyperparams(params, metrics)` also writes each metric as a scalar. It is
    written at the step where Lightning logged the last epoch's metrics (global_step - 1), so it
    coincides with the last point of the same tag instead of adding a new one.

    The other loggers (CSV, MLflow, W&B) take parameters without metrics, and they get every metric
    as it is logged (the final values included): they get the same parameters at fit start.
    """

    def __init__(self, metrics: Sequence[str] = (VAL_ACC_BEST, VAL_LOSS), config_file: str = RUN_CONFIG) -> None:
        self.metrics = list(metrics)
        self.config_file = config_file

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        others = [lg for lg in trainer.loggers if not isinstance(lg, TensorBoardLogger)]
        if others:
            params = self.run_params(trainer, pl_module)
            for logger in others:
                logger.log_hyperparams(params)

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        loggers = [lg for lg in trainer.loggers if isinstance(lg, TensorBoardLogger)]
        if not loggers:
            return
        final = {name: _metric(trainer.callback_metrics, name) for name in self.metrics}
        final = {name: value for name, value in final.items() if value is not None}
        if not final:
            log.warning("none of %s was logged: no hparams with metrics for TensorBoard", self.metrics)
            return
        params = self.run_params(trainer, pl_module)
        # Lightning logs epoch-end metrics at the number of optimizer steps taken, minus one
        step = max(trainer.global_step - 1, 0)
        for logger in loggers:
            logger.log_hyperparams(params, metrics=final, step=step)

    def run_params(self, trainer: L.Trainer, pl_module: L.LightningModule) -> dict[str, Any]:
        """Nested parameters; the logger flattens them and turns lists and None into strings."""
        config_path = Path(trainer.default_root_dir) / self.config_file
        if config_path.is_file():
            params = OmegaConf.to_container(OmegaConf.load(config_path), resolve=True)
        else:
            params = dict(pl_module.hparams)
        if HydraConfig.initialized():
            choices = HydraConfig.get().runtime.choices
            params["choice"] = {g: str(c) for g, c in choices.items() if not str(g).startswith("hydra/")}
        return params


class LearningRateMonitor(_LearningRateMonitor):
    """Lightning's LearningRateMonitor (`lr-<Optimizer>`, `/pg1`, `/pg2`... per parameter group).

    Lightning's raises at train start when the trainer has no logger; here it does nothing instead,
    so `logger=[]` (quick trials, tests, benchmarks) still works with the default callbacks.
    """

    def on_train_start(self, trainer: L.Trainer, *args: Any, **kwargs: Any) -> None:
        if trainer.loggers:
            super().on_train_start(trainer, *args, **kwargs)

    def on_train_batch_start(self, trainer: L.Trainer, *args: Any, **kwargs: Any) -> None:
        if trainer.loggers:
            super().on_train_batch_start(trainer, *args, **kwargs)

    def on_train_epoch_start(self, trainer: L.Trainer, *args: Any, **kwargs: Any) -> None:
        if trainer.loggers:
            super().on_train_epoch_start(trainer, *args, **kwargs)


class ModelSummary(RichModelSummary):
    """The layers that hold weights (name, type, parameter count), then the totals; no FLOPs."""

    @staticmethod
    def summarize(
        summary_data: list[tuple[str, list[str]]],
        total_parameters: int,
        trainable_parameters: int,
        model_size: float,
        total_training_modes: dict[str, int],
        total_flops: int = 0,
        **summarize_kwargs: Any,
    ) -> None:
        from lightning.pytorch.utilities.model_summary import get_formatted_model_size, get_human_readable_count
        from rich import get_console
        from rich.table import Table

        columns = [(name, values) for name, values in summary_data if name not in ("FLOPs", "Mode", " ")]
        table = Table(header_style=summarize_kwargs.get("header_style", "bold magenta"))
        for name, _ in columns:
            table.add_column(name, justify="left" if name in ("Name", "Type") else "right")
        params = dict(columns).get("Params")
        for i, row in enumerate(zip(*(values for _, values in columns))):
            if params is None or params[i].strip() != "0":  # the metric collections and the loss hold no weights
                table.add_row(*row)
        console = get_console()
        console.print(table)
        console.print(
            f"Trainable params: {get_human_readable_count(trainable_parameters).strip()}, non-trainable: "
            f"{get_human_readable_count(total_parameters - trainable_parameters).strip()}, size: {get_formatted_model_size(model_size)} MB"
        )


def write_history(history: Sequence[EpochRecord], path: Path) -> Path:
    """One row per epoch; empty cells where a value was not logged."""
    columns = [f.name for f in fields(EpochRecord)]
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        for record in history:
            writer.writerow({k: ("" if v is None else v) for k, v in asdict(record).items()})
    return path


def _metric(metrics: Mapping[str, Any], name: str) -> float | None:
    """`metrics[name]` as a float, or None when it was not logged."""
    return float(metrics[name]) if name in metrics else None
