"""Featurizers: texts to token ids, and what the input layer those ids feed is made of.

`tokenizer=word` (tokenizers/word.py) and `tokenizer=bert` (tokenizers/bert.py) each give a
`Features` object through `tokenizer.features(...)`; the data module (as its `Encoder`), the model
builder and the loader of a trained run use only this interface.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from textclass.data.encoder import Encoder


@dataclass(frozen=True)
class EmbeddingInit:
    """What the word embedding layer is built from (models/embedding.py builds it): one row per
    vocabulary id, initialised from `vectors` (the pretrained vectors aligned to the vocabulary, or
    zeros in their layout for a run being loaded, whose checkpoint holds the weights) or at random."""

    vocab_size: int
    dim: int | None
    vectors: np.ndarray | None
    freeze: bool
    sparse: bool
    multichannel: bool
    padding_idx: int = 0


class Features(Encoder, Protocol):
    unk_id: int | None  # the id unknown words get (model.word_dropout writes it); None: they are dropped

    def embedding_init(self) -> EmbeddingInit | None:
        """What the encoder's embedding layer is made of, or None when the encoder brings its own (BERT)."""

    def token_strings(self, ids: Sequence[int]) -> list[str]: ...

    def digest(self) -> str | None:
        """A digest of what the ids mean once fitted (the vocabulary); None when nothing was fitted."""
