"""A run whose training loss becomes nan or infinite stops at the end of that epoch with one error
naming the epoch and the keys to change, instead of training on and reporting a broken model's figures."""

from __future__ import annotations

import math

import lightning as L
from lightning.pytorch.callbacks import Callback

from textclass.errors import TrainingDiverged
from textclass.metric_names import TRAIN_LOSS_EPOCH, VAL_LOSS


class DivergenceCheck(Callback):
    """Raises TrainingDiverged when an epoch's mean training loss or its validation loss is not finite. It runs after the
    epoch line and history.csv have recorded that epoch, and before last.ckpt would be overwritten by
    its broken weights (Lightning runs checkpoint callbacks last), so last.ckpt keeps the epoch before."""

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # the validation loss too: the update of an epoch's last step can break the weights after
        # the training loss was measured
        for which, key in (("training", TRAIN_LOSS_EPOCH), ("validation", VAL_LOSS)):
            loss = trainer.callback_metrics.get(key)
            if loss is not None and not math.isfinite(float(loss)):
                lr = trainer.optimizers[0].param_groups[0]["lr"] if trainer.optimizers else None
                batch_size = getattr(trainer.datamodule, "batch_size", None)
                raise TrainingDiverged(diverged_message(which, trainer.current_epoch + 1, float(loss), lr, batch_size))


def diverged_message(which: str, epoch: int, loss: float, lr: float | None, batch_size: int | None) -> str:
    lower = f"lower optimizer.lr (now {lr:g})" if lr is not None else "lower optimizer.lr"
    batch = f"data.batch_size (now {batch_size})" if batch_size is not None else "data.batch_size"
    return (
        f"the {which} loss of epoch {epoch} is {loss} (training diverged): {lower}, set trainer.gradient_clip_val "
        f"(e.g. 1.0), or change {batch} with the learning rate; the run directory keeps the epochs before it"
    )
