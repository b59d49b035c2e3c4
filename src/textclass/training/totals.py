"""An epoch's figures (training, validation or test) from one cheap update per step."""

from __future__ import annotations

import torch
from torchmetrics import Metric

from textclass.models.metrics import class_figures, confusion_matrix, multilabel_counts, multilabel_figures


class EpochTotals(Metric):
    """The epoch's loss sum and decision counts; compute() gives the loss per example, the examples,
    and the figures of models.metrics (acc, f1, per-class precision and recall; f1_micro and hamming
    for multi-label), the ones textclass eval reports.

    A torchmetrics object per figure costs ~0.6 ms a step in argument checks and bookkeeping, a fifth
    of the bag of embeddings' whole step (benchmarks/overhead.py). This update is one bincount and two
    adds. compute() sums the states over DDP ranks first, as every torchmetrics object does.
    """

    full_state_update = False

    def __init__(self, num_classes: int, multi_label: bool = False):
        super().__init__()
        self.num_classes = num_classes
        self.multi_label = multi_label
        self.add_state("confusion", torch.zeros(num_classes, num_classes, dtype=torch.long), dist_reduce_fx="sum")
        self.add_state("loss_sum", torch.tensor(0.0), dist_reduce_fx="sum")  # float32: MPS has no float64
        # multi-label: per label true positives, false positives, false negatives; exact-match rows, rows
        self.add_state("label_counts", torch.zeros(3, num_classes, dtype=torch.long), dist_reduce_fx="sum")
        self.add_state("rows", torch.zeros(2, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, decisions: torch.Tensor, labels: torch.Tensor, loss: torch.Tensor) -> None:
        """decisions: the predicted class of each example [N], or multi-label 0/1 [N, C]; `loss`: the
        batch's mean loss."""
        self.loss_sum += loss.detach().float() * len(labels)
        if self.multi_label:
            counts, rows = multilabel_counts(decisions, labels)
            self.label_counts += counts
            self.rows += rows
        else:
            self.confusion += confusion_matrix(decisions, labels, self.num_classes)

    def compute(self) -> dict[str, torch.Tensor]:
        if self.multi_label:
            examples, figures = self.rows[1], multilabel_figures(self.label_counts, self.rows)
        else:
            examples, figures = self.confusion.sum(), class_figures(self.confusion)
        figures = {name: value.float() for name, value in figures.items()}
        return {"loss": self.loss_sum / examples.clamp(min=1), "examples": examples.float(), **figures}
