"""The Lightning callback that plugs distillation into a training run."""

from __future__ import annotations

import logging

import lightning as L
from lightning.pytorch.callbacks import Callback

from textclass.distill.loss import LOGITS_KEY, DistillationObjective, DistillSpec
from textclass.distill.teacher import teacher_checkpoint, teacher_logits

log = logging.getLogger(__name__)


class Distillation(Callback):
    """At the start of fit: the teacher run's logits of every training example, checked (same classes,
    same splits) and cached, travel in the training batches, and the model's training loss becomes
    alpha * its loss + (1 - alpha) * T^2 * KL(teacher || student) (distill/loss.py). Validation and
    test stay plain."""

    def __init__(self, teacher: str, alpha: float = 0.5, temperature: float = 2.0) -> None:
        self.spec = DistillSpec(teacher, alpha, temperature)
        teacher_checkpoint(teacher)  # a teacher that is not a run: one error, before any data is read

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if stage != "fit":
            return
        data = trainer.datamodule
        if LOGITS_KEY not in data.example_arrays:
            found = teacher_logits(self.spec.teacher, data.train_examples(), data.dataset, data.resplit, data.labels, data.cache_dir, data.eval_batch_size)
            log.info("distilling from %s: its logits of the %d training examples travel in the training batches", found.checkpoint, len(found.logits))
            data.add_example_array(LOGITS_KEY, found.logits)
        pl_module.objective = DistillationObjective(float(self.spec.alpha), float(self.spec.temperature), pl_module.model.multi_label)
