"""The model: any encoder + a linear classification head, with its loss and decision rule.

A plain `nn.Module` that knows nothing of training: the Lightning module that trains it
(`textclass.training.module.ClassifierModule`) adds the optimizer, metrics and training-only
regularisation, so eval, predict and export load a model without importing Lightning.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from textclass.data.batching import Batch
from textclass.errors import ConfigError

LOSSES = ("cross_entropy", "bce")
NOTES_KEY = "textclass"  # a checkpoint's entry for `checkpoint_notes`
HEAD_INITS = ("default", "normal")


class TextClassifier(nn.Module):
    """An encoder (``forward(batch) -> [B, output_dim]``), dropout and a linear head.

    loss: ``cross_entropy``, or ``bce`` for two classes: one logit, sigmoid + binary cross-entropy
    (logistic regression). Either way `forward` returns one logit per class.
    multi_label: any set of the classes per example: one sigmoid output per label, binary
    cross-entropy (`class_weights` are its per-label pos_weight), a label predicted when its
    probability reaches `threshold` (or the per-label `thresholds` a run tuned on valid).
    """

    def __init__(
        self,
        encoder: nn.Module,
        num_classes: int,
        class_names: Sequence[str] | None = None,
        dropout: float = 0.0,
        loss: str = "cross_entropy",
        label_smoothing: float = 0.0,
        class_weights: Sequence[float] | None = None,
        head_bias: bool = True,
        head_init: str = "default",
        multi_label: bool = False,
        threshold: float = 0.5,
    ):
        super().__init__()
        _check_options(num_classes, dropout, loss, label_smoothing, class_weights, head_init, multi_label, threshold)
        # the constructor's plain values: what a checkpoint records as the model's hyperparameters
        self.options: dict[str, Any] = dict(
            num_classes=num_classes, class_names=list(class_names or range(num_classes)), dropout=dropout, loss=loss,
            label_smoothing=label_smoothing, class_weights=None if class_weights is None else list(class_weights),
            head_bias=head_bias, head_init=head_init, multi_label=multi_label, threshold=threshold,
        )
        self.class_names = self.options["class_names"]
        self.encoder = encoder
        self.dropout = nn.Dropout(dropout)
        self.binary = loss == "bce" and not multi_label
        self.multi_label = multi_label
        self.threshold = threshold
        # plain values every checkpoint records beside the weights (the model builder sets them: the
        # digest of the vocabulary the ids mean), checked when the run is loaded again
        self.checkpoint_notes: dict[str, str] = {}
        # per label; not in checkpoints: tuned thresholds travel as the run's thresholds.json
        self.register_buffer("thresholds", torch.full((num_classes,), threshold), persistent=False)
        self.head = nn.Linear(encoder.output_dim, 1 if self.binary else num_classes, bias=head_bias)
        if head_init == "normal":  # NLP100-2020 ex.71: weights drawn from N(0, 1)
            nn.init.normal_(self.head.weight)
        weights = torch.tensor(class_weights, dtype=torch.float) if class_weights is not None else None
        if multi_label:
            self.loss_fn = nn.BCEWithLogitsLoss(pos_weight=weights)
        elif self.binary:
            # pos_weight: how much a positive example counts relative to a negative one
            pos_weight = None if weights is None else weights[1:] / weights[0]
            self.loss_fn = nn.BCEWithLogitsLoss(pos_weight=pos_weight)
        else:
            self.loss_fn = nn.CrossEntropyLoss(weight=weights, label_smoothing=label_smoothing)

    @property
    def device(self) -> torch.device:
        return self.head.weight.device

    def forward(self, batch: Batch) -> torch.Tensor:
        """Class logits [B, num_classes]."""
        logits = self.head(self.dropout(self.encoder(batch)))
        # one logit z for P(class 1): as two-class logits [0, z], softmax gives [1 - sigmoid(z), sigmoid(z)]
        return torch.cat([torch.zeros_like(logits), logits], dim=-1) if self.binary else logits

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        """Per class: softmax over the classes, or each label's own sigmoid (multi-label)."""
        return logits.sigmoid() if self.multi_label else logits.softmax(-1)

    def decide(self, probabilities: torch.Tensor) -> torch.Tensor:
        """Multi-label: which labels are predicted, [B, C] bool (each label's probability reaches its threshold)."""
        return probabilities >= self.thresholds.to(probabilities.device)  # logits may come back to the CPU for reports

    def compute_loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if self.multi_label:
            return self.loss_fn(logits, labels.float())
        if self.binary:
            return self.loss_fn(logits[:, 1], labels.float())
        return self.loss_fn(logits, labels)


def _check_options(num_classes, dropout, loss, label_smoothing, class_weights, head_init, multi_label, threshold) -> None:
    if not 0.0 <= dropout < 1.0:
        raise ConfigError(f"model.dropout={dropout} must be in [0, 1)")
    if loss not in LOSSES:
        raise ConfigError(f"model.loss={loss!r} is not one of {LOSSES}")
    if multi_label and label_smoothing:
        raise ConfigError("model.label_smoothing applies to single-label softmax outputs; set it to 0 with data.dataset.multi_label=true")
    if not 0.0 < threshold < 1.0:
        raise ConfigError(f"model.threshold={threshold} must be in (0, 1)")
    if loss == "bce" and num_classes != 2 and not multi_label:
        raise ConfigError(f"model.loss=bce is binary logistic regression, but the dataset has {num_classes} classes; use cross_entropy")
    if not 0.0 <= label_smoothing < 1.0:
        raise ConfigError(f"model.label_smoothing={label_smoothing} must be in [0, 1)")
    if class_weights is not None and (len(class_weights) != num_classes or min(class_weights) <= 0):
        raise ConfigError(f"model.class_weights={list(class_weights)} needs {num_classes} positive weights (or 'balanced')")
    if head_init not in HEAD_INITS:
        raise ConfigError(f"model.head_init={head_init!r} is not one of {HEAD_INITS}")
