"""Featurizers: texts to token ids, and the input layer those ids feed.

`tokenizer=word` (tokenizers/word.py) and `tokenizer=bert` (tokenizers/bert.py) each give a
`Features` object through `tokenizer.features(...)`; the data module, the model builder and the
loader of a trained run use only this interface.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol

from torch import nn

from textclass.data.batching import Encoding


class Features(Protocol):
    pad_id: int
    unk_id: int | None  # the id unknown words get (model.word_dropout writes it); None: they are dropped

    def cache_key(self) -> dict:
        """Everything that decides the ids `encode` gives, for the encoded-data cache."""

    def fit(
        self, train: Sequence[str], splits: Mapping[str, Sequence[str]], seed: int, pairs: Mapping[str, Sequence[str]] | None = None
    ) -> dict:
        """Learn what encoding needs from the texts (a vocabulary, its vectors); returns figures to report."""

    def encode(self, texts: Sequence[str], pairs: Sequence[str] | None = None) -> Encoding:
        """Ids of each text (with its pair text when given)."""

    def save(self, directory: Path, with_vectors: bool = False) -> None:
        """Write what `load` needs to encode as training did (a run dir; a cache entry with vectors)."""

    def load(self, directory: Path) -> None: ...

    def input_layer(self) -> nn.Module | None:
        """The embedding layer the encoder takes, or None when the encoder brings its own (BERT)."""

    def token_strings(self, ids: Sequence[int]) -> list[str]: ...

    def digest(self) -> str | None:
        """A digest of what the ids mean once fitted (the vocabulary); None when nothing was fitted."""
