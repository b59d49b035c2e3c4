"""The training epoch's figures from one cheap update per step."""

from __future__ import annotations

import torch
from torchmetrics import Metric

from textclass.models.metrics import confusion_matrix, macro_f1


class TrainingTotals(Metric):
    """The epoch's loss sum and confusion counts; compute() gives loss_epoch, acc, macro f1 and examples.

    Four torchmetrics objects (accuracy, F1, mean loss, example count) cost ~0.6 ms a step in
    argument checks and bookkeeping, a fifth of the bag of embeddings' whole step
    (benchmarks/overhead.py). This update is one bincount and two adds. compute() sums the states
    over DDP ranks first, as every torchmetrics object does.
    """

    full_state_update = False

    def __init__(self, num_classes: int, multi_label: bool = False, threshold: float = 0.5):
        super().__init__()
        self.num_classes = num_classes
        self.multi_label = multi_label
        self.threshold = threshold
        self.add_state("confusion", torch.zeros(num_classes, num_classes, dtype=torch.long), dist_reduce_fx="sum")
        self.add_state("loss_sum", torch.tensor(0.0), dist_reduce_fx="sum")  # float32: MPS has no float64
        # multi-label: per label true positives, false positives, false negatives; exact-match rows, rows
        self.add_state("label_counts", torch.zeros(3, num_classes, dtype=torch.long), dist_reduce_fx="sum")
        self.add_state("rows", torch.zeros(2, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, logits: torch.Tensor, labels: torch.Tensor, loss: torch.Tensor) -> None:
        """`loss`: the batch's mean loss."""
        self.loss_sum += loss.detach().float() * len(labels)
        if self.multi_label:
            predicted = logits.sigmoid() >= self.threshold
            truth = labels.bool()
            self.label_counts += torch.stack([(predicted & truth).sum(0), (predicted & ~truth).sum(0), (~predicted & truth).sum(0)])
            self.rows += torch.stack([(predicted == truth).all(dim=1).sum(), torch.tensor(len(labels), device=labels.device)])
            return
        self.confusion += confusion_matrix(logits.argmax(dim=-1), labels, self.num_classes)

    def compute(self) -> dict[str, torch.Tensor]:
        if self.multi_label:
            tp, fp, fn = self.label_counts.float()
            exact, examples = self.rows
            return {
                "loss_epoch": self.loss_sum / examples,
                "acc": exact.float() / examples,
                "f1": (2 * tp / (2 * tp + fp + fn).clamp(min=1)).mean(),
                "examples": examples.float(),
            }
        examples = self.confusion.sum()
        return {
            "loss_epoch": self.loss_sum / examples,
            "acc": (self.confusion.diagonal().sum() / examples).float(),
            "f1": macro_f1(self.confusion),
            "examples": examples.float(),
        }
