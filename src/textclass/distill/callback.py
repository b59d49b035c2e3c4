"""The Lightning callback that plugs distillation into a training run."""

from __future__ import annotations

import logging
import time
from typing import Any

import lightning as L
import numpy as np
from lightning.pytorch.callbacks import Callback

from textclass.data.batching import EncodedTexts, Encoding
from textclass.data.dataset import Examples
from textclass.distill.augment import AugmentSpec, augment
from textclass.distill.loss import LOGITS_KEY, DistillationObjective, DistillSpec
from textclass.distill.teacher import Teacher, checked_precision, teacher_checkpoint
from textclass.errors import ConfigError

log = logging.getLogger(__name__)


class Distillation(Callback):
    """At the start of fit: the teacher run's logits of every training example, checked (same classes,
    same splits) and cached, travel in the training batches, and the model's training loss becomes
    alpha * its loss + (1 - alpha) * T^2 * KL(teacher || student) (distill/loss.py). Validation and
    test stay plain. With `augment.copies` > 0 the teacher also labels an augmented transfer set
    (distill/augment.py), which joins the training examples with the teacher's label as theirs."""

    def __init__(
        self, teacher: str, alpha: float = 0.5, temperature: float = 2.0, augment: dict[str, Any] | None = None, teacher_precision: str = "32-true"
    ) -> None:
        self.spec = DistillSpec(teacher, alpha, temperature)
        self.teacher_precision = checked_precision(teacher_precision)
        self.augment = AugmentSpec(**(augment or {}))
        teacher_checkpoint(teacher)  # a teacher that is not a run: one error, before any data is read

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if stage != "fit":
            return
        data = trainer.datamodule
        if LOGITS_KEY not in data.example_arrays:
            if self.augment.copies:
                check_augmentable(data)  # before the teacher spends minutes on the training set
            examples = data.train_examples()
            teacher = Teacher(self.spec.teacher, data.dataset, data.resplit, data.labels, data.cache_dir, self.teacher_precision)
            logits = teacher.logits(examples, data.eval_batch_size).logits
            log.info("distilling from %s: its logits of the %d training examples travel in the training batches", teacher.checkpoint, len(logits))
            if self.augment.copies:
                logits = np.concatenate([logits, self.add_transfer_set(data, teacher, examples.texts, pl_module.model.multi_label)])
            data.add_example_array(LOGITS_KEY, logits)
        pl_module.objective = DistillationObjective(float(self.spec.alpha), float(self.spec.temperature), pl_module.model.multi_label)

    def add_transfer_set(self, data: Any, teacher: Teacher, texts: list[str], multi_label: bool) -> np.ndarray:
        """Augmented copies of the training sentences, labelled by the teacher (its logits, and its
        decision as their label), added to the train split; returns their logits."""
        features, spec = data.features, self.augment
        unk_id = features.unk_id
        train = data.train_split()
        start = time.perf_counter()
        words = [sentence_words(features, text, train.ids[train.offsets[i] : train.offsets[i + 1]]) for i, text in enumerate(texts)]
        copies = augment(
            train, words, spec, unk_id, features.embedding_init().vectors, features.vocab.itos, special=(features.pad_id,),
            pretrained=features.pretrained_ids,
        )
        if not copies:
            raise ConfigError(
                f"distill.augment: copies={spec.copies} with mask={spec.mask}, replace={spec.replace}, ngram={spec.ngram} made no usable "
                f"sentence from the {len(train)} training sentences (every copy came out empty, all <unk> or unchanged); "
                "lower distill.augment.mask, or raise distill.augment.replace or ngram"
            )
        mask = teacher.mask_text()
        made = time.perf_counter() - start
        transfer = Examples([teacher_text(copy.words, mask) for copy in copies], np.zeros(len(copies), dtype=np.int64), np.arange(len(copies)))
        found = teacher.logits(transfer, data.eval_batch_size)
        labels = (found.logits > 0).astype(np.uint8) if multi_label else found.logits.argmax(1).astype(np.int64)
        data.add_train_examples(EncodedTexts.from_encoding(Encoding.from_lists([copy.ids for copy in copies]), labels))
        log.info(
            "augmented transfer set: %d sentences from %d training sentences (%.1f s), labelled by the teacher (%s); "
            "the student trains on %d examples", len(copies), len(train), made,
            "from the cache" if found.from_cache else f"{found.seconds:.1f} s", len(train) + len(copies),
        )
        return found.logits


def check_augmentable(data: Any) -> None:
    """The student's data must allow augmented copies: word ids with <unk>, single sentences."""
    features = data.features
    if getattr(features, "unk_id", None) is None or not hasattr(features, "vocab"):
        raise ConfigError(
            "distill.augment works on word ids and masks words as <unk>: it needs a student with word tokenization "
            "and <unk> in its vocabulary (data.vocab.drop_unknown=false); or set distill.augment.copies=0"
        )
    if data.dataset.text_pair_column:
        raise ConfigError("distill.augment makes new single sentences; this dataset has sentence pairs: set distill.augment.copies=0")


def sentence_words(features: Any, text: str, ids: np.ndarray) -> list[str]:
    """A training sentence's words, one per id: the tokenizer's (so the teacher reads a word the
    student's vocabulary lacks), or the vocabulary's when they do not line up."""
    words = features.tokenizer.tokenize(text)
    return words if len(words) == len(ids) else features.token_strings(ids.tolist())


def teacher_text(words: list[str | None], mask: str) -> str:
    """A copy as the teacher reads it: `mask` (nothing, when empty) where the copy masked a word."""
    return " ".join(word for word in (mask if w is None else w for w in words) if word)
