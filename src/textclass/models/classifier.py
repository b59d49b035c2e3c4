"""The one LightningModule: any encoder + a linear classification head, loss, metrics, optimizer."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import lightning as L
import torch
from torch import nn
from torchmetrics import MaxMetric, MetricCollection
from torchmetrics.classification import MulticlassAccuracy, MulticlassF1Score

from textclass.data.batching import Batch
from textclass.errors import ConfigError


class TextClassifier(L.LightningModule):
    """Wraps an encoder (``forward(batch) -> [B, output_dim]``) with a head and the training logic.

    optimizer: a partial taking the parameters (Hydra ``_partial_: true``).
    scheduler: a Lightning lr-scheduler config whose ``scheduler`` is a partial taking the
    optimizer, or None.
    """

    def __init__(
        self,
        encoder: nn.Module,
        num_classes: int,
        optimizer: Callable[..., torch.optim.Optimizer],
        scheduler: dict[str, Any] | None = None,
        class_names: Sequence[str] | None = None,
        dropout: float = 0.0,
        label_smoothing: float = 0.0,
    ):
        super().__init__()
        if not 0.0 <= dropout < 1.0:
            raise ConfigError(f"model.dropout={dropout} must be in [0, 1)")
        self.save_hyperparameters(ignore=["encoder", "optimizer", "scheduler"])
        self.encoder = encoder
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(encoder.output_dim, num_classes)
        self.optimizer_factory = optimizer
        self.scheduler_config = scheduler
        self.loss = nn.CrossEntropyLoss(label_smoothing=label_smoothing)
        metrics = MetricCollection(
            {"acc": MulticlassAccuracy(num_classes, average="micro"), "f1": MulticlassF1Score(num_classes, average="macro")}
        )
        self.train_metrics = metrics.clone(prefix="train/")
        self.val_metrics = metrics.clone(prefix="val/")
        self.test_metrics = metrics.clone(prefix="test/")
        self.val_acc_best = MaxMetric()

    def forward(self, batch: Batch) -> torch.Tensor:
        return self.head(self.dropout(self.encoder(batch)))

    def _step(self, batch: Batch, stage: str, metrics: MetricCollection) -> torch.Tensor:
        logits = self(batch)
        loss = self.loss(logits, batch.labels)
        metrics.update(logits, batch.labels)
        on_step = stage == "train"
        self.log(f"{stage}/loss", loss, on_step=on_step, on_epoch=True, prog_bar=True, batch_size=len(batch))
        self.log_dict(metrics, on_step=False, on_epoch=True, prog_bar=stage != "train", batch_size=len(batch))
        return loss

    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        return self._step(batch, "train", self.train_metrics)

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        self._step(batch, "val", self.val_metrics)

    def on_validation_epoch_end(self) -> None:
        # compute() before Lightning resets the collection at epoch end
        self.val_acc_best.update(self.val_metrics["acc"].compute())
        self.log("val/acc_best", self.val_acc_best.compute(), prog_bar=True)

    def test_step(self, batch: Batch, batch_idx: int) -> None:
        self._step(batch, "test", self.test_metrics)

    def configure_optimizers(self) -> Any:
        params = [p for p in self.parameters() if p.requires_grad]
        optimizer = self.optimizer_factory(params=params)
        if not self.scheduler_config or self.scheduler_config.get("scheduler") is None:
            return optimizer
        scheduler = dict(self.scheduler_config)
        scheduler["scheduler"] = scheduler["scheduler"](optimizer=optimizer)
        return {"optimizer": optimizer, "lr_scheduler": scheduler}
