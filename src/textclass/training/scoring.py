"""Scoring a trained system: its metrics on labeled examples (accuracy, macro-F1, the confusion
matrix; subset accuracy, micro-F1, Hamming loss and per-label precision and recall for multi-label
runs), and the examples of a run's own splits as it trained on them."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from textclass.data.encoded import Resplit, read_splits
from textclass.data.dataset import Examples
from textclass.errors import DataError
from textclass.models.metrics import class_figures, confusion_matrix, multilabel_scores
from textclass.training.checkpoint import Predictor

log = logging.getLogger(__name__)


@dataclass
class EvalResult:
    examples: int
    acc: float  # multi-label: subset accuracy (every label right)
    f1: float  # macro over classes (labels)
    confusion: list[list[int]] | None = None  # single-label; rows: true class, columns: predicted
    f1_micro: float | None = None  # multi-label only, as the rest below
    hamming: float | None = None  # share of wrong (example, label) decisions
    precision: dict[str, float] | None = None  # per label
    recall: dict[str, float] | None = None


def evaluate(run: Predictor, data: Examples, batch_size: int = 256) -> EvalResult:
    return score(run, run.logits(data.texts, batch_size, data.pairs), data.labels)


def score(run: Predictor, logits: torch.Tensor, truth: np.ndarray) -> EvalResult:
    """The metrics of the run's `logits` against the true labels `truth`."""
    labels = torch.from_numpy(np.asarray(truth, dtype=np.int64))
    k = len(run.labels)
    if not run.model.multi_label:
        confusion = confusion_matrix(logits.argmax(-1), labels, k)
        figures = class_figures(confusion)
        return EvalResult(examples=len(labels), acc=float(figures["acc"]), f1=float(figures["f1"]), confusion=confusion.tolist())
    # the run's decisions (its per-label thresholds, when tuned)
    scores = multilabel_scores(run.model.decide(run.model.probabilities(logits)), labels)
    names = list(run.labels.names)
    return EvalResult(
        examples=len(labels),
        acc=float(scores["acc"]),
        f1=float(scores["f1"]),
        f1_micro=float(scores["f1_micro"]),
        hamming=float(scores["hamming"]),
        precision=dict(zip(names, scores["precision"].tolist())),
        recall=dict(zip(names, scores["recall"].tolist())),
    )


def sources(run: Predictor, splits: list[str], file: str | None, log_missing: bool = True) -> dict[str, Examples]:
    """What to evaluate: a labeled file in the dataset's columns, or the run's splits that exist, as
    it trained on them (its fold's for a cross-validation run, its held-out split's with data.holdout,
    the first data.max_examples of each)."""
    dataset = run.dataset
    if file:
        return {file: dataset.read_file(Path(file), run.labels)}
    dataset.prepare()
    data, _, _ = read_splits(dataset, Resplit.from_config(run.cfg.data), run.labels)
    chosen = [s for s in splits if s in data]
    if not chosen:
        raise DataError(f"none of splits={list(splits)} exists for {dataset.name} (it has {list(data)})")
    for missing in sorted(set(splits) - set(data)) if log_missing else ():
        reason = dataset.missing_test_reason if missing == "test" else None
        log.info("%s has no %s split%s: skipped", dataset.name, missing, f" ({reason})" if reason else "")
    first = slice(0, run.cfg.data.get("max_examples"))
    return {split: data[split].take(first) for split in chosen}


def format_table(results: dict[str, EvalResult]) -> str:
    multi = any(r.f1_micro is not None for r in results.values())
    if multi:
        lines = ["| data | examples | subset accuracy | macro-F1 | micro-F1 | Hamming loss |", "|---|---|---|---|---|---|"]
        lines += [f"| {n} | {r.examples} | {r.acc:.4f} | {r.f1:.4f} | {r.f1_micro:.4f} | {r.hamming:.4f} |" for n, r in results.items()]
        return "\n".join(lines)
    lines = ["| data | examples | accuracy | macro-F1 |", "|---|---|---|---|"]
    lines += [f"| {name} | {r.examples} | {r.acc:.4f} | {r.f1:.4f} |" for name, r in results.items()]
    return "\n".join(lines)
