"""Metrics as plain functions of counts (a confusion matrix; per-label decision counts), and per-label
thresholds: one implementation for training, validation, test and textclass eval."""

from __future__ import annotations

import numpy as np
import torch

THRESHOLD_GRID = np.round(np.arange(0.05, 0.951, 0.05), 2)


def macro_f1(confusion: torch.Tensor) -> torch.Tensor:
    """Mean F1 over the classes (rows: true, columns: predicted), as torchmetrics' macro F1 computes it:
    a class neither present nor predicted is left out of the mean; one with no true positives scores 0."""
    true_positives = confusion.diagonal().float()
    errors = confusion.sum(dim=0) + confusion.sum(dim=1) - 2 * true_positives  # false positives + negatives
    seen = (true_positives + errors) > 0
    f1 = 2 * true_positives / (2 * true_positives + errors).clamp(min=1)
    return f1[seen].sum() / seen.sum().clamp(min=1)


def tune_thresholds(probabilities: np.ndarray, truth: np.ndarray, grid: np.ndarray = THRESHOLD_GRID) -> np.ndarray:
    """Per label (column), the threshold of `grid` with the best F1 of that label; ties: the lowest.

    probabilities, truth: [N, C]; a label with no positive example keeps 0.5.
    """
    truth = truth.astype(bool)
    predicted = probabilities[None, :, :] >= grid[:, None, None]  # [G, N, C]
    tp = (predicted & truth).sum(1)
    errors = (predicted & ~truth).sum(1) + (~predicted & truth).sum(1)
    f1 = 2 * tp / np.maximum(2 * tp + errors, 1)  # [G, C]
    best = grid[f1.argmax(0)]
    return np.where(truth.any(0), best, 0.5)


def confusion_matrix(predicted: torch.Tensor, truth: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Counts [C, C] of (true class, predicted class) pairs; rows are true classes."""
    cells = truth.long() * num_classes + predicted.long()
    return torch.bincount(cells, minlength=num_classes**2).view(num_classes, num_classes)


def class_figures(confusion: torch.Tensor) -> dict[str, torch.Tensor]:
    """Accuracy, macro-F1, and per-class precision and recall from a confusion matrix (rows: true),
    as torchmetrics' multiclass metrics compute them (a ratio with nothing to count is 0)."""
    true_positives = confusion.diagonal().double()
    examples = confusion.sum()
    return {
        "acc": true_positives.sum() / examples.clamp(min=1),
        "f1": macro_f1(confusion),
        "precision": _ratio(true_positives, confusion.sum(dim=0).double()),
        "recall": _ratio(true_positives, confusion.sum(dim=1).double()),
    }


def multilabel_counts(decisions: torch.Tensor, truth: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(per label [3, C]: true positives, false positives, false negatives; [2]: rows with every
    label right, rows) of 0/1 `decisions` [N, C] against `truth` [N, C]."""
    predicted, true = decisions.bool(), truth.bool()
    counts = torch.stack([(predicted & true).sum(0), (predicted & ~true).sum(0), (~predicted & true).sum(0)])
    rows = torch.stack([(predicted == true).all(dim=1).sum(), torch.tensor(len(predicted), device=predicted.device)])
    return counts, rows


def multilabel_figures(counts: torch.Tensor, rows: torch.Tensor) -> dict[str, torch.Tensor]:
    """Subset accuracy, macro- and micro-F1, Hamming loss, and per-label precision and recall from
    multilabel_counts' totals, as torchmetrics' multilabel functions compute them (a ratio with
    nothing to count is 0, and every label counts in the macro mean)."""
    tp, fp, fn = counts.double()
    exact, examples = rows.double()
    return {
        "acc": exact / examples.clamp(min=1),
        "f1": _ratio(2 * tp, 2 * tp + fp + fn).mean(),
        "f1_micro": _ratio(2 * tp.sum(), 2 * tp.sum() + fp.sum() + fn.sum()),
        "hamming": (fp.sum() + fn.sum()) / (examples * len(tp)).clamp(min=1),
        "precision": _ratio(tp, tp + fp),
        "recall": _ratio(tp, tp + fn),
    }


def multilabel_scores(decisions: torch.Tensor, truth: torch.Tensor) -> dict[str, torch.Tensor]:
    """multilabel_figures of 0/1 `decisions` [N, C] against `truth` [N, C]."""
    return multilabel_figures(*multilabel_counts(decisions, truth))


def _ratio(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.where(b > 0, a / b.clamp(min=1), torch.zeros_like(a))
