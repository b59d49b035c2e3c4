"""The one LightningModule: any encoder + a linear classification head, loss, metrics, optimizer."""

from __future__ import annotations

import dataclasses
import inspect
import random
from collections.abc import Callable, Sequence
from typing import Any

import lightning as L
import torch
from torch import nn
from torchmetrics import MaxMetric, MeanMetric, MetricCollection
from torchmetrics.classification import (
    MulticlassAccuracy,
    MulticlassF1Score,
    MulticlassPrecision,
    MulticlassRecall,
    MultilabelExactMatch,
    MultilabelF1Score,
    MultilabelHammingDistance,
    MultilabelPrecision,
    MultilabelRecall,
)

from textclass.data.batching import Batch
from textclass.errors import ConfigError
from textclass.models.metrics import TrainingTotals
from textclass.metric_names import TEST, TRAIN, TRAIN_LOSS_STEP, VAL, VAL_ACC_BEST, metric

# the training loss a plug-in makes of the plain loss: objective(loss, logits, batch) -> loss
Objective = Callable[[torch.Tensor, torch.Tensor, Batch], torch.Tensor]
LOSSES = ("cross_entropy", "bce")
NOTES_KEY = "textclass"  # a checkpoint's entry for `checkpoint_notes`
HEAD_INITS = ("default", "normal")


class TextClassifier(L.LightningModule):
    """Wraps an encoder (``forward(batch) -> [B, output_dim]``) with a head and the training logic.

    optimizer: a partial taking the parameters (Hydra ``_partial_: true``).
    scheduler: a Lightning lr-scheduler config whose ``scheduler`` is a partial taking the
    optimizer (and ``num_training_steps`` when it asks for it), or None.
    loss: ``cross_entropy``, or ``bce`` for two classes: one logit, sigmoid + binary cross-entropy
    (logistic regression). Either way `forward` returns one logit per class.
    multi_label: any set of the classes per example: one sigmoid output per label, binary
    cross-entropy (`class_weights` are its per-label pos_weight), a label predicted when its
    probability reaches `threshold` (or, with `tune_thresholds`, the per-label thresholds that
    textclass-train fits on valid after training); acc is then subset accuracy, f1 macro-F1 over labels.
    objective: what the training loss becomes, given the plain loss (set by a plug-in, e.g. through a
    Lightning callback's setup; not a hyperparameter): `objective(loss, logits, batch)`, which may read
    per-example arrays the plug-in attached (`batch.extras`). Validation and test losses stay plain.
    word_dropout: the probability of replacing each training token by <unk> (`unk_id`, which the
    model builder takes from the run's features); never at evaluation.
    max_norm: after each optimizer step, each row of the head's weight (one per class) is rescaled to
    an L2 norm of at most max_norm (Kim 2014); None: off.
    """

    def __init__(
        self,
        encoder: nn.Module,
        num_classes: int,
        optimizer: Callable[..., torch.optim.Optimizer],
        scheduler: dict[str, Any] | None = None,
        class_names: Sequence[str] | None = None,
        dropout: float = 0.0,
        loss: str = "cross_entropy",
        label_smoothing: float = 0.0,
        class_weights: Sequence[float] | None = None,
        head_bias: bool = True,
        head_init: str = "default",
        multi_label: bool = False,
        threshold: float = 0.5,
        tune_thresholds: bool = False,
        word_dropout: float = 0.0,
        max_norm: float | None = None,
        unk_id: int | None = None,
    ):
        super().__init__()
        _check_options(num_classes, dropout, loss, label_smoothing, class_weights, head_init, multi_label, threshold)
        _check_regularisation(word_dropout, max_norm, unk_id)
        self.objective: Objective | None = None
        self.word_dropout = float(word_dropout)
        self.unk_id = unk_id
        self.max_norm = max_norm
        self.save_hyperparameters(ignore=["encoder", "optimizer", "scheduler"])
        self.class_names = list(class_names or range(num_classes))
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
        self.optimizer_factory = optimizer
        self.scheduler_config = scheduler
        summary, per_class = _metrics(num_classes, multi_label, threshold)
        self.val_metrics = summary.clone(prefix=metric(VAL, ""))
        self.test_metrics = summary.clone(prefix=metric(TEST, ""))
        self.val_per_class = per_class.clone()
        self.test_per_class = per_class.clone()
        # the loss per example, summed over DDP processes (their shards may differ in size by one)
        self.val_loss = MeanMetric()
        self.test_loss = MeanMetric()
        self.train_totals = TrainingTotals(num_classes, multi_label, threshold)
        self.val_acc_best = MaxMetric()
        # metric states stay out of checkpoints by default; the best so far must survive a resume
        self.val_acc_best.persistent(True)

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

    def training_loss(self, logits: torch.Tensor, batch: Batch) -> torch.Tensor:
        """The loss on the labels, as the `objective` a plug-in set turns it (if any)."""
        loss = self.compute_loss(logits, batch.labels)
        return loss if self.objective is None else self.objective(loss, logits, batch)

    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        if self.word_dropout:
            batch = dataclasses.replace(batch, input_ids=drop_words(batch.input_ids, batch.attention_mask, self.word_dropout, self.unk_id))
        logits = self(batch)
        loss = self.training_loss(logits, batch)
        self.train_totals.update(logits.detach(), batch.labels, loss)
        # Each self.log call costs ~0.5 ms of Lightning bookkeeping, a sixth of the bag of
        # embeddings' whole step (benchmarks/overhead.py): the epoch figures are logged once, with
        # the epoch's last batch (before validation and every on_train_epoch_end hook, which read
        # them), and the step loss on the steps whose values Lightning writes (every log_every_n_steps).
        if self._ends_training_epoch(batch_idx):
            figures = self.train_totals.compute()  # summed over DDP ranks: the same on each
            self.log_dict({metric(TRAIN, name): value for name, value in figures.items()}, on_step=False, on_epoch=True, batch_size=1)
        if (self.global_step + 1) % self.trainer.log_every_n_steps == 0:
            self.log(TRAIN_LOSS_STEP, loss, on_step=True, on_epoch=False, prog_bar=True)
        return loss

    def _ends_training_epoch(self, batch_idx: int) -> bool:
        """The epoch's data run out with this batch, or its optimizer step reaches trainer.max_steps."""
        steps_optimizer = (batch_idx + 1) % self.trainer.accumulate_grad_batches == 0
        return self.trainer.is_last_batch or (steps_optimizer and self.global_step + 1 == self.trainer.max_steps)

    def optimizer_step(self, *args: Any, **kwargs: Any) -> None:
        super().optimizer_step(*args, **kwargs)
        if self.max_norm is not None:
            clip_row_norms_(self.head.weight, self.max_norm)

    def on_train_epoch_start(self) -> None:
        self.train_totals.reset()
        self._restore_rng_state()

    def _evaluation_step(self, batch: Batch, stage: str) -> None:
        logits = self(batch)
        loss = self.compute_loss(logits, batch.labels)
        metrics: MetricCollection = getattr(self, f"{stage}_metrics")
        # multi-label: the decisions (0/1, which the metrics' 0.5 threshold keeps), so per-label thresholds apply
        scores = self.decide(self.probabilities(logits)).float() if self.multi_label else logits
        targets = batch.labels.long()
        metrics.update(scores, targets)
        getattr(self, f"{stage}_per_class").update(scores, targets)
        loss_mean: MeanMetric = getattr(self, f"{stage}_loss")
        loss_mean.update(loss.detach(), len(batch))
        # torchmetrics sync their states over DDP processes themselves
        self.log(metric(stage, "loss"), loss_mean, on_step=False, on_epoch=True, prog_bar=True)
        self.log_dict(metrics, on_step=False, on_epoch=True, prog_bar=True, batch_size=len(batch))

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        self._evaluation_step(batch, "val")

    def test_step(self, batch: Batch, batch_idx: int) -> None:
        self._evaluation_step(batch, "test")

    def on_validation_epoch_end(self) -> None:
        # the sanity check before training scores the untrained model on a few batches: not an epoch
        if not self._sanity_checking():
            # compute() before Lightning resets the collection at epoch end
            self.val_acc_best.update(self.val_metrics["acc"].compute())
            self.log(VAL_ACC_BEST, self.val_acc_best.compute(), prog_bar=True)
        self._log_per_class("val")

    def _sanity_checking(self) -> bool:
        """The trainer's sanity check is running (False outside a Trainer: a module scored by hand)."""
        try:
            return self.trainer.sanity_checking
        except RuntimeError:  # not attached to a Trainer
            return False

    def on_test_epoch_end(self) -> None:
        self._log_per_class("test")

    def _log_per_class(self, stage: str) -> None:
        per_class: MetricCollection = getattr(self, f"{stage}_per_class")
        results = per_class.compute()
        per_class.reset()
        for i, name in enumerate(self.class_names):
            key = str(name).replace("/", "-")
            self.log(metric(stage, f"precision/{key}"), results["precision"][i])
            self.log(metric(stage, f"recall/{key}"), results["recall"][i])

    # --- exact resume: the random state travels with the checkpoint ---------------------------
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["rng_state"] = {"torch": torch.get_rng_state(), "python": random.getstate()}
        checkpoint[NOTES_KEY] = dict(self.checkpoint_notes)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self._rng_state_to_restore = checkpoint.get("rng_state")

    def _restore_rng_state(self) -> None:
        # Restored at epoch start, not on load: every DataLoader iterator (the resumed run's sanity-check
        # validation too) draws a seed from the global RNG, and the uninterrupted run's next draw
        # is this epoch's training iterator, created right after on_train_epoch_start.
        state = getattr(self, "_rng_state_to_restore", None)
        if state is not None:
            torch.set_rng_state(state["torch"])
            random.setstate(state["python"])
            self._rng_state_to_restore = None

    def configure_optimizers(self) -> Any:
        optimizer = self.optimizer_factory(params=parameter_groups(self))
        if not self.scheduler_config or self.scheduler_config.get("scheduler") is None:
            return optimizer
        scheduler = dict(self.scheduler_config)
        factory = scheduler["scheduler"]
        extra = {}
        if "num_training_steps" in inspect.signature(factory).parameters:
            extra["num_training_steps"] = int(self.trainer.estimated_stepping_batches)
        scheduler["scheduler"] = factory(optimizer=optimizer, **extra)
        return {"optimizer": optimizer, "lr_scheduler": scheduler}


def drop_words(input_ids: torch.Tensor, mask: torch.Tensor, p: float, unk_id: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Word dropout: each real token (`mask` True) replaced by `unk_id` with probability `p`; padding
    untouched. Replacing by <unk> (Bowman et al. 2016's word dropout) rather than deleting the word
    (Iyyer et al. 2015's DAN): positions stay, so CNN and RNN windows keep their shape, and the <unk>
    row learns to stand for a word the model cannot see, as unknown words at test time are."""
    drop = torch.rand(input_ids.shape, device=input_ids.device, generator=generator) < p
    return input_ids.masked_fill(drop & mask.bool(), unk_id)


@torch.no_grad()
def clip_row_norms_(weight: torch.Tensor, max_norm: float) -> None:
    """In place: every row of `weight` with an L2 norm above `max_norm` rescaled to that norm, the others
    left exactly as they are (Kim 2014's max-norm constraint on the softmax layer's weight vectors)."""
    weight.copy_(torch.renorm(weight, p=2, dim=0, maxnorm=max_norm))


def parameter_groups(module: nn.Module) -> list[dict[str, Any]]:
    """Trainable parameters, with weight decay off for biases, norm weights and sparse embeddings.

    Decaying a bias or a norm scale only pulls it toward zero for no regularising benefit; sparse
    gradients do not support weight decay at all.
    """
    sparse_weights = {id(m.weight) for m in module.modules() if isinstance(m, (nn.Embedding, nn.EmbeddingBag)) and m.sparse}
    decay, no_decay = [], []
    for p in module.parameters():
        if p.requires_grad:
            (no_decay if p.ndim <= 1 or id(p) in sparse_weights else decay).append(p)
    return [{"params": decay}, {"params": no_decay, "weight_decay": 0.0}]


def _metrics(num_classes: int, multi_label: bool, threshold: float) -> tuple[MetricCollection, MetricCollection]:
    """(summary metrics, per-class metrics): acc and macro f1 either way; subset accuracy, micro F1
    and Hamming loss for multi-label (which has no confusion matrix)."""
    if multi_label:
        k = dict(num_labels=num_classes, threshold=threshold)
        summary = {
            "acc": MultilabelExactMatch(**k),
            "f1": MultilabelF1Score(**k, average="macro"),
            "f1_micro": MultilabelF1Score(**k, average="micro"),
            "hamming": MultilabelHammingDistance(**k, average="micro"),
        }
        per_class = {"precision": MultilabelPrecision(**k, average=None), "recall": MultilabelRecall(**k, average=None)}
    else:
        summary = {"acc": MulticlassAccuracy(num_classes, average="micro"), "f1": MulticlassF1Score(num_classes, average="macro")}
        per_class = {
            "precision": MulticlassPrecision(num_classes, average=None),
            "recall": MulticlassRecall(num_classes, average=None),
        }
    return MetricCollection(summary), MetricCollection(per_class)


def _check_regularisation(word_dropout: float, max_norm: float | None, unk_id: int | None) -> None:
    if not 0.0 <= word_dropout < 1.0:
        raise ConfigError(f"model.word_dropout={word_dropout} must be in [0, 1)")
    if word_dropout and unk_id is None:
        raise ConfigError(
            f"model.word_dropout={word_dropout} replaces training words with <unk>, but this vocabulary has no <unk> "
            "(data.vocab.drop_unknown=true drops unknown words instead); set data.vocab.drop_unknown=false, or model.word_dropout=0"
        )
    if max_norm is not None and not max_norm > 0:
        raise ConfigError(f"model.max_norm={max_norm} must be > 0 (Kim 2014 uses 3), or null for no constraint")


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
