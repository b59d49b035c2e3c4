"""Encoded splits: token ids stored flat with offsets, cheap to cache and to slice."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass
class EncodedTexts:
    """Token-id sequences stored flat: sequence i is ids[offsets[i]:offsets[i + 1]]."""

    ids: np.ndarray  # int32 (or int64 for very large vocabularies)
    offsets: np.ndarray  # int64, len = n + 1
    labels: np.ndarray  # int64

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    @classmethod
    def from_lists(cls, sequences: Sequence[Sequence[int]], labels: np.ndarray) -> EncodedTexts:
        lengths = np.fromiter((len(s) for s in sequences), dtype=np.int64, count=len(sequences))
        offsets = np.zeros(len(sequences) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        ids = np.fromiter((i for s in sequences for i in s), dtype=np.int64, count=int(offsets[-1]))
        dtype = np.int32 if ids.size == 0 or ids.max() < 2**31 else np.int64
        return cls(ids.astype(dtype), offsets, np.asarray(labels, dtype=np.int64))

    def save(self, path: Path) -> None:
        np.savez(path, ids=self.ids, offsets=self.offsets, labels=self.labels)

    @classmethod
    def load(cls, path: Path) -> EncodedTexts:
        with np.load(path) as f:
            return cls(f["ids"], f["offsets"], f["labels"])
