"""Run-directory figures: learning curves and confusion matrices, as pure functions of plain data.

No Lightning here: the callbacks in `textclass.callbacks` collect the numbers, these functions draw
them. Figures are built with `matplotlib.figure.Figure` on an Agg canvas rather than through
pyplot, so there is no global figure state and no GUI backend is ever selected (runs are headless).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from textclass.console import EpochRecord


def plot_curves(history: Sequence[EpochRecord], path: Path | str) -> Path:
    """Two panels, loss and accuracy per epoch, train vs valid; a series never logged is left out."""
    fig = Figure(figsize=(10, 4), layout="constrained")
    FigureCanvasAgg(fig)
    epochs = [r.epoch for r in history]
    panels = (("loss", "train_loss", "val_loss"), ("accuracy", "train_acc", "val_acc"))
    for ax, (title, train_key, val_key) in zip(fig.subplots(1, 2), panels):
        for key, label in ((train_key, "train"), (val_key, "valid")):
            values = [_nan_if_none(getattr(r, key)) for r in history]
            if not all(math.isnan(v) for v in values):
                # markers: a 1-epoch run is a single point, invisible as a bare line
                ax.plot(epochs, values, marker="o", label=label)
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend()
    return _save(fig, path)


def plot_confusion(matrix: Sequence[Sequence[int]] | np.ndarray, class_names: Sequence[str], path: Path | str, title: str) -> Path:
    """Counts per (true class, predicted class) cell; rows are true classes, as torchmetrics returns them."""
    counts = np.asarray(matrix)
    n = counts.shape[0]
    if counts.shape != (n, n) or len(class_names) != n:
        raise ValueError(f"confusion matrix of shape {counts.shape} does not match {len(class_names)} class names")
    size = max(4.0, 0.9 * n + 2.0)  # room for the cell labels as the number of classes grows
    fig = Figure(figsize=(size, size), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    image = ax.imshow(counts, cmap="Blues", vmin=0)
    fig.colorbar(image, ax=ax, shrink=0.8)
    names = [str(c) for c in class_names]
    ax.set_xticks(range(n), names, rotation=45, ha="right")
    ax.set_yticks(range(n), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    threshold = counts.max() / 2 if counts.size else 0
    for i in range(n):
        for j in range(n):
            # white text on dark cells, so every count stays readable
            color = "white" if counts[i, j] > threshold else "black"
            ax.text(j, i, f"{counts[i, j]:g}", ha="center", va="center", color=color)
    return _save(fig, path)


def plot_metric_by_param(points: Sequence[tuple[float, float]], path: Path | str, x_label: str, y_label: str, log_x: bool = True) -> Path:
    """One line of `y` against a swept parameter `x` (e.g. seconds per epoch by batch size), x sorted."""
    fig = Figure(figsize=(6, 4), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    xs, ys = zip(*sorted(points)) if points else ((), ())
    ax.plot(xs, ys, marker="o")
    if log_x and xs and min(xs) > 0:
        ax.set_xscale("log", base=2)
        ax.set_xticks(xs, [f"{x:g}" for x in xs])
    ax.set_xlabel(x_label)
    ax.set_ylabel(y_label)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def _nan_if_none(value: float | None) -> float:
    return float("nan") if value is None else float(value)


def _save(fig: Figure, path: Path | str) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    return path
