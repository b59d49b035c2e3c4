"""A run's predictions on its splits, saved beside it (predictions_<split>.npz) so comparisons never retrain.

Each file holds, per example in the split's order: its row in the source file (`ids`), the true
label(s), the class probabilities and the run's decision, plus a fingerprint of the split's examples
(texts, pair texts, labels and rows). Two runs were scored on the same examples exactly when their
fingerprints are equal: another vocabulary or tokenizer keeps it, another test set changes it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from textclass.errors import DataError
from textclass.run_files import predictions_file

if TYPE_CHECKING:
    import torch

    from textclass.training.checkpoint import TrainedRun
    from textclass.data.dataset import Examples


@dataclass
class Predictions:
    split: str
    ids: np.ndarray  # int64 [N]: each example's row (line) in its source file
    labels: np.ndarray  # int64 [N] class ids, or uint8 [N, C] 0/1 per label (multi-label)
    probabilities: np.ndarray  # float32 [N, C]
    predicted: np.ndarray  # the run's decisions, shaped like labels (multi-label: under its thresholds)
    class_names: list[str]
    data: str  # fingerprint of the split's examples (see `fingerprint`)
    dataset: str  # the dataset's name, for messages

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def multi_label(self) -> bool:
        return self.labels.ndim == 2

    def correct(self) -> np.ndarray:
        """bool [N]: the decision is right (multi-label: every label right)."""
        hit = self.predicted == self.labels
        return hit.all(axis=1) if self.multi_label else hit

    def accuracy(self) -> float:
        return float(self.correct().mean())

    def describe(self) -> str:
        return f"{self.dataset} {self.split} ({len(self)} examples, data {self.data[:12]})"

    def save(self, path: Path) -> Path:
        meta = {"split": self.split, "class_names": self.class_names, "data": self.data, "dataset": self.dataset}
        np.savez_compressed(
            path, ids=self.ids, labels=self.labels, probabilities=self.probabilities, predicted=self.predicted, meta=np.array(json.dumps(meta))
        )
        return path

    @classmethod
    def load(cls, path: Path) -> Predictions:
        try:
            with np.load(path, allow_pickle=False) as f:
                meta = json.loads(str(f["meta"]))
                arrays = {k: f[k] for k in ("ids", "labels", "probabilities", "predicted")}
            found = cls(meta["split"], **arrays, class_names=list(meta["class_names"]), data=meta["data"], dataset=meta["dataset"])
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise DataError(f"cannot read predictions {path} ({type(err).__name__}: {err}); the run directory is damaged: train again") from None
        if problem := found.shape_problem():
            raise DataError(f"{path}: {problem}; the run directory is damaged: train again")
        return found

    def shape_problem(self) -> str | None:
        """Why the arrays cannot be one split's predictions (lengths or class columns that disagree), or None."""
        n, classes = len(self.ids), len(self.class_names)
        lengths = {name: len(getattr(self, name)) for name in ("labels", "probabilities", "predicted")}
        if any(length != n for length in lengths.values()):
            return f"its arrays have different lengths (ids {n}, " + ", ".join(f"{k} {v}" for k, v in lengths.items()) + ")"
        if self.probabilities.ndim != 2 or self.probabilities.shape[1] != classes:
            return f"its probabilities have shape {self.probabilities.shape}, not [{n}, {classes}] for its {classes} classes"
        return None


def fingerprint(examples: Examples) -> str:
    """A digest of what the examples are (rows, texts, pair texts, labels), in order."""
    digest = hashlib.sha256()
    digest.update(np.ascontiguousarray(examples.rows, dtype=np.int64).tobytes())
    digest.update(np.ascontiguousarray(examples.labels).astype(np.int64).tobytes())
    for texts in (examples.texts, examples.pairs or []):
        digest.update(b"\x00".join(t.encode("utf-8") for t in texts))
        digest.update(b"\x01")
    return digest.hexdigest()


def from_logits(run: TrainedRun, split: str, examples: Examples, logits: torch.Tensor) -> Predictions:
    """The run's predictions on one split's examples, from its logits on them (`run.logits`: every
    example gets one, a text left without a known token from an empty input, as in textclass-eval)."""
    probabilities = run.model.probabilities(logits)
    predicted = run.model.decide(probabilities) if run.model.multi_label else probabilities.argmax(-1)
    return Predictions(
        split=split,
        ids=np.asarray(examples.rows, dtype=np.int64),
        labels=np.asarray(examples.labels),
        probabilities=probabilities.numpy().astype(np.float32),
        predicted=predicted.numpy().astype(np.uint8 if run.model.multi_label else np.int64),
        class_names=list(run.labels.names),
        data=fingerprint(examples),
        dataset=run.dataset.name,
    )


def load_predictions(run_dir: Path, split: str) -> Predictions:
    path = Path(run_dir) / predictions_file(split)
    if not path.is_file():
        raise DataError(
            f"{run_dir}: no {predictions_file(split)} (the run has no {split} split, or it was trained before "
            "textclass saved predictions, or with predictions=false); train it again or choose another split"
        )
    return Predictions.load(path)
