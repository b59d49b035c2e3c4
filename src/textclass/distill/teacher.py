"""The teacher's side of distillation: which checkpoint, checked against the student's classes and
splits (a teacher that saw the student's valid or test examples would leak them) once, and its
logits of the training examples (and of an augmented transfer set), each set computed once and cached under
paths.cache_dir (keyed by the teacher checkpoint's content and the examples' data fingerprint, as
predictions files carry it), so a rerun, a resume or a seed sweep does not compute them again.
"""

from __future__ import annotations

import contextlib
import logging
import random
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig

from textclass.training.checkpoint import load_run, selected_checkpoint
from textclass.training.run_dir import find_run_dir, load_run_config
from textclass.data.cache import cached_dir, content_digest
from textclass.data.encoded import Resplit
from textclass.data.dataset import Examples, TextDataset
from textclass.data.labels import LabelSet
from textclass.errors import ConfigError, DataError
from textclass.training.predictions import fingerprint
from textclass.run_files import LABELS_FILE, LAST_CHECKPOINT

log = logging.getLogger(__name__)

LOGITS_FILE = "teacher_logits.npy"
CACHE_PREFIX = "teacher"
# bump when what the cached logits hold changes (distill.py is not part of the data cache's code key)
CACHE_VERSION = 1
TEACHER_PRECISIONS = ("32-true", "bf16-mixed")  # named as trainer.precision names them
# reading options that never move an example to another split: compared elsewhere (labels) or not at all
NOT_SPLIT_OPTIONS = ("labels", "label_names", "missing_test_reason", "pretokenized", "path", "format")


def teacher_checkpoint(teacher: str) -> Path:
    """The checkpoint to distil from: a .ckpt file as given; a run directory's selected checkpoint
    (the best by the checkpoint monitor, whose figures the run reports), else its last.ckpt."""
    path = Path(teacher).expanduser().resolve()
    if path.is_file():
        return path
    if not (path / LAST_CHECKPOINT).is_file():
        raise ConfigError(f"distill.teacher={teacher}: no textclass-train run there (no {LAST_CHECKPOINT}); pass a run directory or a .ckpt inside one")
    return selected_checkpoint(path)


def checked_precision(precision: str) -> str:
    if precision not in TEACHER_PRECISIONS:
        raise ConfigError(f"distill.teacher_precision={precision!r}: use one of {', '.join(TEACHER_PRECISIONS)}")
    return precision


def check_classes(teacher: str, teacher_labels: LabelSet, labels: LabelSet) -> None:
    """The teacher's logit columns must be the student's classes, in the same order."""
    if teacher_labels.values != labels.values or teacher_labels.multi_label != labels.multi_label:
        def shown(ls: LabelSet) -> str:
            return f"{list(ls.values)}{' (multi-label)' if ls.multi_label else ''}"

        raise ConfigError(
            f"distill.teacher={teacher}: the teacher predicts the classes {shown(teacher_labels)}, this run has "
            f"{shown(labels)}; distil from a teacher trained on the same dataset with the same data.dataset.labels order"
        )


def split_setup(dataset: TextDataset, resplit: Resplit, digest: Callable[[Path], str]) -> dict[str, Any]:
    """What decides which example lands in which split: the data's content (not where it lies), the
    reading and splitting options, and the re-cut (holdout, folds)."""
    fingerprint = dict(dataset.fingerprint(digest))
    files = fingerprint.pop("files", None)
    setup = {f"data.dataset.{k}": v for k, v in fingerprint.items() if k not in NOT_SPLIT_OPTIONS}
    if fingerprint.get("split_fractions") is None and resplit.holdout is None and resplit.folds is None:
        setup.pop("data.dataset.split_seed", None)  # the split files are used as they are: no seed cuts them
    if files is not None:
        setup.update({f"data.dataset.{split} (content)": content for split, (_path, content) in files.items()})
    return {**setup, "data.holdout": resplit.holdout, "data.folds": resplit.folds, "data.fold": resplit.fold if resplit.folds else None}


def check_splits(teacher: str, teacher_cfg: DictConfig, dataset: TextDataset, resplit: Resplit, digest: Callable[[Path], str]) -> None:
    """The leakage guard: the teacher must have been trained on the student's train split, never on
    its valid or test examples. Splits are the same exactly when the data and the split settings are."""
    theirs_resplit = Resplit.from_config(teacher_cfg.data)
    try:
        theirs = split_setup(instantiate(teacher_cfg.data.dataset, _convert_="all"), theirs_resplit, digest)
    except (DataError, ConfigError, OSError) as err:
        raise ConfigError(f"distill.teacher={teacher}: cannot read the teacher's data to compare its splits with this run's ({err})") from None
    ours = split_setup(dataset, resplit, digest)
    differing = sorted((k for k in set(ours) | set(theirs) if ours.get(k) != theirs.get(k)), key=telling_first)
    if differing:
        key = differing[0]
        also = f"; also {', '.join(differing[1:])}" if len(differing) > 1 else ""
        raise ConfigError(
            f"distill.teacher={teacher}: the teacher was trained on other splits than this run ({key}: teacher "
            f"{shorten(theirs.get(key))}, this run {shorten(ours.get(key))}{also}), "
            "so it may have trained on this run's valid or test examples; distil from a teacher trained on the same data "
            "files with the same data.holdout / data.folds / data.fold / data.dataset.split_seed settings"
        )


def telling_first(key: str) -> tuple[int, str]:
    """The re-cut settings first, then the data's content, then reading options (a seed that only
    matters once a re-cut is on)."""
    recut = ("data.holdout", "data.folds", "data.fold")
    return (recut.index(key) if key in recut else 3 if key.endswith("(content)") else 4, key)


def shorten(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 24 else text[:21] + "..."


@contextlib.contextmanager
def untouched_random_state() -> Iterator[None]:
    """Building the teacher draws from the global RNGs (weight init): the student's run must not notice,
    so that a distilled run starts from the same weights and dropout stream as a plain one."""
    python_state, numpy_state = random.getstate(), np.random.get_state()
    try:
        with torch.random.fork_rng(devices=[]):
            yield
    finally:
        random.setstate(python_state)
        np.random.set_state(numpy_state)


@dataclass(frozen=True)
class TeacherLogits:
    logits: np.ndarray  # float32 [N, C], row i for example i
    cache_entry: Path | None  # where they are cached (None: no paths.cache_dir)
    from_cache: bool
    seconds: float = 0.0  # computing them (0: from the cache)


class Teacher:
    """A teacher run resolved once for a student's data: its checkpoint found, its classes and splits
    checked against the student's, its checkpoint's digest taken; asked for the logits of any number
    of example sets, it loads its model at most once and caches each set's logits. With `precision`
    bf16-mixed it computes them under bfloat16 autocast: on a CPU with AMX or AVX512-BF16 (a GPU
    since Ampere) about twice as fast, logits within a few hundredths; elsewhere far slower."""

    def __init__(
        self, teacher: str, dataset: TextDataset, resplit: Resplit, labels: LabelSet, cache_dir: Path | None, precision: str = "32-true"
    ) -> None:
        self.precision = checked_precision(precision)
        self.checkpoint = teacher_checkpoint(teacher)
        self.run_dir = find_run_dir(self.checkpoint)
        self.config = load_run_config(self.run_dir)
        self.labels = labels
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        check_classes(teacher, LabelSet.load(self.run_dir / LABELS_FILE), labels)
        with contextlib.ExitStack() as stack:
            memo = self.cache_dir if self.cache_dir is not None else Path(stack.enter_context(tempfile.TemporaryDirectory()))
            digest = lambda path: content_digest(path, memo)  # noqa: E731
            check_splits(teacher, self.config, dataset, resplit, digest)
            self.checkpoint_digest = digest(self.checkpoint)
        self._run: Any = None

    def mask_text(self) -> str:
        """What the teacher reads where the student's augmented copy has <unk>: its tokenizer's mask
        token (BERT's [MASK]); nothing for a word model, which has none."""
        tokenizer = instantiate(self.config.tokenizer)
        return getattr(getattr(tokenizer, "hf_tokenizer", None), "mask_token", None) or ""

    def compute(self, examples: Examples, batch_size: int) -> np.ndarray:
        """The teacher's logits [N, C] of `examples` (with their pair texts), float32."""
        with untouched_random_state():
            if self._run is None:
                self._run = load_run(self.checkpoint, run_dir=self.run_dir)
                if torch.cuda.is_available():
                    self._run.model.to("cuda")
            with torch.autocast(self._run.model.device.type, dtype=torch.bfloat16, enabled=self.precision == "bf16-mixed"):
                logits = self._run.logits(examples.texts, batch_size, examples.pairs)
        return logits.float().numpy()

    def logits(self, examples: Examples, batch_size: int) -> TeacherLogits:
        """The teacher's logits of `examples`, from the cache when the same checkpoint has scored the
        same texts before."""
        timing = {"seconds": 0.0}

        def build(directory: Path) -> None:
            start = time.perf_counter()
            logits = self.compute(examples, batch_size)
            timing["seconds"] = time.perf_counter() - start
            log.info("teacher logits of %d examples computed from %s in %.1fs", len(logits), self.checkpoint, timing["seconds"])
            np.save(directory / LOGITS_FILE, logits)

        if self.cache_dir is None:
            with tempfile.TemporaryDirectory() as tmp:
                build(Path(tmp))
                result = TeacherLogits(np.load(Path(tmp) / LOGITS_FILE), None, False, timing["seconds"])
        else:
            parts = {
                "version": CACHE_VERSION, "checkpoint": self.checkpoint_digest, "examples": fingerprint(examples),
                "classes": list(self.labels.values), "precision": self.precision,
            }
            entry, hit = cached_dir(self.cache_dir, CACHE_PREFIX, parts, build)
            result = TeacherLogits(np.load(entry / LOGITS_FILE), entry, hit, timing["seconds"])
            if hit:
                log.info("teacher logits of %d examples loaded from the cache %s", len(result.logits), entry / LOGITS_FILE)
        if result.logits.shape != (len(examples), len(self.labels)):
            raise DataError(
                f"{result.cache_entry or self.checkpoint}: teacher logits of shape {result.logits.shape}, "
                f"expected {(len(examples), len(self.labels))}; delete the cache entry"
            )
        return result
