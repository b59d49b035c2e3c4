"""What the data module asks of whatever turns texts into ids (textclass.tokenizers implements it):
the data layer knows this interface, not the featurizers behind it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from textclass.data.batching import Encoding


class Encoder(Protocol):
    pad_id: int

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


class Tokenizer(Protocol):
    """The `tokenizer` config node: it makes the encoder for a dataset, given the word vectors and
    vocabulary options (which a subword tokenizer ignores)."""

    def features(self, embeddings: Any, vocab: Any, pretokenized: bool) -> Encoder: ...
