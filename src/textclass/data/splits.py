"""Cutting examples into splits and folds: stratified by class (a multi-label row by its first
label), shuffled with a seed, so every run of a comparison sees the same cut."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from textclass.errors import DataError

SPLITS = ("train", "valid", "test")


def strata(labels: np.ndarray) -> np.ndarray:
    """What a stratified split keeps in proportion: the class, or a multi-label row's first label."""
    return labels if labels.ndim == 1 else labels.argmax(axis=1)


def stratified_split(labels: np.ndarray, fractions: list[float], seed: int) -> dict[str, np.ndarray]:
    """Indices for train/valid(/test), each class split by the same fractions; shuffled, seeded."""
    rng = np.random.default_rng(seed)
    names = SPLITS[: len(fractions)]
    parts: dict[str, list[np.ndarray]] = {s: [] for s in names}
    for cls in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == cls))
        bounds = np.round(np.cumsum(fractions[:-1]) * len(idx)).astype(int)
        for split, chunk in zip(names, np.split(idx, bounds)):
            parts[split].append(chunk)
    return {split: rng.permutation(np.concatenate(chunks)) for split, chunks in parts.items()}


def fold_ids(labels: np.ndarray, folds: int, seed: int, class_names: Sequence[str] | None = None) -> np.ndarray:
    """The fold (0..folds-1) of each example: classes shuffled (seeded) one after another, then dealt
    round-robin, so every fold holds each class in proportion and fold sizes differ by at most one."""
    rng = np.random.default_rng(seed)
    keys = strata(labels)
    classes, counts = np.unique(keys, return_counts=True)
    if labels.ndim == 1 and counts.min() < folds:
        rare = int(classes[counts.argmin()])
        name = repr(class_names[rare]) if class_names is not None else f"id {rare}"
        raise DataError(
            f"data.folds={folds}: the class {name} has only {int(counts.min())} examples "
            "in train+valid, fewer than the folds; use fewer folds (data.folds)"
        )
    order = np.concatenate([rng.permutation(np.flatnonzero(keys == cls)) for cls in classes])
    assignment = np.empty(len(keys), dtype=np.int64)
    assignment[order] = np.arange(len(order)) % folds
    return assignment
