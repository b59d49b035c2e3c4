"""The one LightningModule: it trains a TextClassifier (optimizer, scheduler, metrics, training-only
regularisation, exact resume). Only training imports it: a trained model loads without Lightning."""

from __future__ import annotations

import dataclasses
import inspect
import random
from collections.abc import Callable
from typing import Any

import lightning as L
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig
from torch import nn
from torchmetrics import MaxMetric

from textclass.config.checks import check_config_types
from textclass.data.batching import Batch
from textclass.errors import ConfigError
from textclass.metric_names import TRAIN, TRAIN_LOSS_EPOCH, TRAIN_LOSS_STEP, VAL, VAL_ACC_BEST, metric
from textclass.models.classifier import NOTES_KEY, TextClassifier
from textclass.tokenizers import Features
from textclass.training.totals import EpochTotals

# the training loss a plug-in makes of the plain loss: objective(loss, logits, batch) -> loss
Objective = Callable[[torch.Tensor, torch.Tensor, Batch], torch.Tensor]


class ClassifierModule(L.LightningModule):
    """Trains `model` (a TextClassifier).

    optimizer: a partial taking the parameters (Hydra ``_partial_: true``).
    scheduler: a Lightning lr-scheduler config whose ``scheduler`` is a partial taking the
    optimizer (and ``num_training_steps`` when it asks for it), or None.
    objective: what the training loss becomes, given the plain loss (set by a plug-in, e.g. through a
    Lightning callback's setup; not a hyperparameter): `objective(loss, logits, batch)`, which may read
    per-example arrays the plug-in attached (`batch.extras`). Validation and test losses stay plain.
    word_dropout: the probability of replacing each training token by <unk> (`unk_id`, which
    `training_module` takes from the run's features); never at evaluation.
    max_norm: after each optimizer step, each row of the head's weight (one per class) is rescaled to
    an L2 norm of at most max_norm (Kim 2014); None: off.
    tune_thresholds: multi-label: after training, fit the per-label thresholds that maximise each
    label's F1 on valid (the recipe does, and saves them with the run as thresholds.json).
    """

    def __init__(
        self,
        model: TextClassifier,
        optimizer: Callable[..., torch.optim.Optimizer],
        scheduler: dict[str, Any] | None = None,
        word_dropout: float = 0.0,
        max_norm: float | None = None,
        unk_id: int | None = None,
        tune_thresholds: bool = False,
    ):
        super().__init__()
        check_regularisation(word_dropout, max_norm, unk_id)
        self.model = model  # its weights are `model.*` in checkpoints (training.checkpoint.MODEL_PREFIX)
        self.objective: Objective | None = None
        self.word_dropout = float(word_dropout)
        self.unk_id = unk_id
        self.max_norm = max_norm
        self.tune_thresholds = tune_thresholds and model.multi_label
        training = dict(word_dropout=word_dropout, max_norm=max_norm, unk_id=unk_id, tune_thresholds=tune_thresholds)
        self.save_hyperparameters(model.options | training)
        self.optimizer_factory = optimizer
        self.scheduler_config = scheduler
        # each stage's loss and decision counts, summed over DDP processes (their shards may differ in size by one)
        self.train_totals = EpochTotals(len(model.class_names), model.multi_label)
        self.val_totals = EpochTotals(len(model.class_names), model.multi_label)
        self.test_totals = EpochTotals(len(model.class_names), model.multi_label)
        self.val_acc_best = MaxMetric()
        # metric states stay out of checkpoints by default; the best so far must survive a resume
        self.val_acc_best.persistent(True)

    def forward(self, batch: Batch) -> torch.Tensor:
        return self.model(batch)

    def training_loss(self, logits: torch.Tensor, batch: Batch) -> torch.Tensor:
        """The loss on the labels, as the `objective` a plug-in set turns it (if any)."""
        loss = self.model.compute_loss(logits, batch.labels)
        return loss if self.objective is None else self.objective(loss, logits, batch)

    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        if self.word_dropout:
            batch = dataclasses.replace(batch, input_ids=drop_words(batch.input_ids, batch.attention_mask, self.word_dropout, self.unk_id))
        logits = self.model(batch)
        loss = self.training_loss(logits, batch)
        self.train_totals.update(self.decisions(logits.detach()), batch.labels, loss)
        # Each self.log call costs Lightning bookkeeping comparable to a small model's whole step
        # (benchmarks/overhead.py): the epoch figures are logged once, with the epoch's last batch
        # (before validation and every on_train_epoch_end hook, which read them), and the step loss
        # on the steps whose values Lightning writes (every log_every_n_steps).
        if self._ends_training_epoch(batch_idx):
            figures = self.train_totals.compute()  # summed over DDP ranks: the same on each
            epoch = {TRAIN_LOSS_EPOCH: figures["loss"], **{metric(TRAIN, name): figures[name] for name in ("acc", "f1", "examples")}}
            self.log_dict(epoch, on_step=False, on_epoch=True, batch_size=1)
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
            clip_row_norms_(self.model.head.weight, self.max_norm)

    def totals(self, stage: str) -> EpochTotals:
        return getattr(self, f"{stage}_totals")

    def decisions(self, logits: torch.Tensor) -> torch.Tensor:
        """What the model decides: the class of each example, or multi-label 0/1 per label (its thresholds)."""
        model = self.model
        return model.decide(model.probabilities(logits)) if model.multi_label else logits.argmax(dim=-1)

    def on_train_epoch_start(self) -> None:
        self.train_totals.reset()
        self._restore_rng_state()

    def _evaluation_step(self, batch: Batch, stage: str) -> None:
        logits = self.model(batch)
        self.totals(stage).update(self.decisions(logits), batch.labels, self.model.compute_loss(logits, batch.labels))
        # logged once, at the epoch's end: a self.log call a step costs more than a small model's step

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        self._evaluation_step(batch, "val")

    def test_step(self, batch: Batch, batch_idx: int) -> None:
        self._evaluation_step(batch, "test")

    def on_validation_epoch_end(self) -> None:
        figures = self._log_stage("val")
        # the sanity check before training scores the untrained model on a few batches: not an epoch
        if not self._sanity_checking():
            self.val_acc_best.update(figures[metric(VAL, "acc")])
            self.log(VAL_ACC_BEST, self.val_acc_best.compute(), prog_bar=True)

    def _sanity_checking(self) -> bool:
        """The trainer's sanity check is running (False outside a Trainer: a module scored by hand)."""
        try:
            return self.trainer.sanity_checking
        except RuntimeError:  # not attached to a Trainer
            return False

    def on_test_epoch_end(self) -> None:
        self._log_stage("test")

    def _log_stage(self, stage: str) -> dict[str, torch.Tensor]:
        """Log the epoch's loss and metrics of `stage` (their counts summed over DDP processes first),
        per class too, and reset them; returns the summary figures."""
        results = self.totals(stage).compute()
        self.totals(stage).reset()
        summary = ("loss", "acc", "f1", "f1_micro", "hamming") if self.model.multi_label else ("loss", "acc", "f1")
        figures = {metric(stage, name): results[name] for name in summary}
        by_class = {}
        for i, name in enumerate(self.model.class_names):
            key = str(name).replace("/", "-")
            by_class[metric(stage, f"precision/{key}")] = results["precision"][i]
            by_class[metric(stage, f"recall/{key}")] = results["recall"][i]
        self.log_dict(figures, prog_bar=True)
        self.log_dict(by_class)
        return figures

    # --- exact resume: the random state travels with the checkpoint ---------------------------
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["rng_state"] = {"torch": torch.get_rng_state(), "python": random.getstate()}
        checkpoint[NOTES_KEY] = dict(self.model.checkpoint_notes)

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
        optimizer = self.optimizer_factory(params=parameter_groups(self.model))
        if not self.scheduler_config or self.scheduler_config.get("scheduler") is None:
            return optimizer
        scheduler = dict(self.scheduler_config)
        factory = scheduler["scheduler"]
        extra = {}
        if "num_training_steps" in inspect.signature(factory).parameters:
            extra["num_training_steps"] = int(self.trainer.estimated_stepping_batches)
        scheduler["scheduler"] = factory(optimizer=optimizer, **extra)
        return {"optimizer": optimizer, "lr_scheduler": scheduler}


def training_module(cfg: DictConfig, model: TextClassifier, features: Features) -> ClassifierModule:
    """The module that trains `model` with the keys of `cfg.model` that are this module's options."""
    node = cfg.model
    word_dropout = node.get("word_dropout") or 0.0
    scheduler = node.get("scheduler")
    optimizer = instantiate(node.optimizer)
    check_optimizer(optimizer, has_sparse_gradients(model))
    return ClassifierModule(
        model,
        optimizer=optimizer,
        scheduler=None if scheduler is None else instantiate(scheduler, _convert_="all"),
        word_dropout=word_dropout,
        max_norm=node.get("max_norm"),
        # the id word dropout writes: the run's own vocabulary says which it is (None: it has no <unk>)
        unk_id=getattr(features, "unk_id", None) if word_dropout else None,
        tune_thresholds=bool(node.get("tune_thresholds")),
    )


def check_config(cfg: DictConfig) -> None:
    """Every option of the config's targets is known and of the right type; cfg.model's are the
    model's (TextClassifier) and the training module's."""
    check_config_types(cfg, also={"model": ClassifierModule})


def sparse_tables(module: nn.Module) -> list[nn.Module]:
    """The embedding tables of `module` with sparse gradients (word embeddings, fastText's n-gram table)."""
    return [m for m in module.modules() if isinstance(m, (nn.Embedding, nn.EmbeddingBag)) and m.sparse]


def has_sparse_gradients(module: nn.Module) -> bool:
    return bool(sparse_tables(module))


def check_optimizer(optimizer_factory, sparse: bool) -> None:
    """Build the optimizer and take one step on a dummy parameter: bad values fail now, not mid-run."""
    embedding = torch.nn.Embedding(3, 2, sparse=sparse)
    try:
        optimizer = optimizer_factory(params=[{"params": [embedding.weight], "weight_decay": 0.0}])
        # through forward, so a sparse embedding really produces a sparse gradient
        embedding(torch.tensor([0])).sum().backward()
        optimizer.step()
    except (ValueError, RuntimeError, TypeError) as err:
        name = getattr(optimizer_factory, "func", optimizer_factory)
        if sparse and "sparse" in str(err):
            hint = "embeddings.sparse=true or model.encoder.sparse=true needs an optimizer that supports sparse gradients: optimizer=sgd or adagrad"
        else:
            hint = "fix the optimizer.* values (e.g. optimizer.lr must be > 0)"
        raise ConfigError(f"optimizer {getattr(name, '__name__', name)}: {err}; {hint}") from None


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
    sparse_weights = {id(m.weight) for m in sparse_tables(module)}
    decay, no_decay = [], []
    for p in module.parameters():
        if p.requires_grad:
            (no_decay if p.ndim <= 1 or id(p) in sparse_weights else decay).append(p)
    return [{"params": decay}, {"params": no_decay, "weight_decay": 0.0}]


def check_regularisation(word_dropout: float, max_norm: float | None, unk_id: int | None) -> None:
    if not 0.0 <= word_dropout < 1.0:
        raise ConfigError(f"model.word_dropout={word_dropout} must be in [0, 1)")
    if word_dropout and unk_id is None:
        raise ConfigError(
            f"model.word_dropout={word_dropout} replaces training words with <unk>, but this vocabulary has no <unk> "
            "(data.vocab.drop_unknown=true drops unknown words instead); set data.vocab.drop_unknown=false, or model.word_dropout=0"
        )
    if max_norm is not None and not max_norm > 0:
        raise ConfigError(f"model.max_norm={max_norm} must be > 0 (Kim 2014 uses 3), or null for no constraint")
