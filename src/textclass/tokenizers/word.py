"""Word tokenization and the token <-> id vocabulary (PAD = 0)."""

from __future__ import annotations

import json
import string
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from textclass.errors import ConfigError, DataError

PAD, UNK = "<pad>", "<unk>"
SPLIT_MODES = ("auto", "punct", "whitespace")
VOCAB_SOURCES = ("data", "embeddings")
_PUNCT_TO_SPACE = str.maketrans({c: " " for c in string.punctuation})


@dataclass(frozen=True)
class WordTokenizer:
    """Splits text into words.

    split: ``punct`` turns punctuation into spaces then splits on whitespace (raw headlines);
    ``whitespace`` only splits (SST-2 is already tokenized); ``auto`` picks whitespace for
    pre-tokenized datasets and punct otherwise.
    """

    split: str = "auto"
    lowercase: bool = True

    kind = "word"

    def __post_init__(self) -> None:
        if self.split not in SPLIT_MODES:
            raise ConfigError(f"tokenizer.split={self.split!r} is not one of {SPLIT_MODES}")

    def resolved(self, pretokenized: bool) -> WordTokenizer:
        if self.split != "auto":
            return self
        return WordTokenizer("whitespace" if pretokenized else "punct", self.lowercase)

    def tokenize(self, text: str) -> list[str]:
        if self.lowercase:
            text = text.lower()
        if self.split == "punct":
            text = text.translate(_PUNCT_TO_SPACE)
        elif self.split == "auto":
            raise ValueError("resolve split='auto' against the dataset first (WordTokenizer.resolved)")
        return text.split()


@dataclass(frozen=True)
class VocabSpec:
    """How the vocabulary is chosen.

    source: ``data`` keeps training words seen at least `min_freq` times, ids by descending
    frequency; ``embeddings`` keeps the pretrained vocabulary, restricted to words that occur in
    the data when `restrict_to_data` (same results, far less memory).
    drop_unknown: drop out-of-vocabulary tokens (and then emptied examples) instead of mapping
    them to <unk>.
    """

    source: str = "data"
    min_freq: int = 2
    restrict_to_data: bool = True
    drop_unknown: bool = False

    def __post_init__(self) -> None:
        if self.source not in VOCAB_SOURCES:
            raise ConfigError(f"data.vocab.source={self.source!r} is not one of {VOCAB_SOURCES}")
        if self.min_freq < 1:
            raise ConfigError(f"data.vocab.min_freq={self.min_freq} must be >= 1")


@dataclass
class Vocabulary:
    """Token strings by id: id 0 is always <pad>; <unk> is id 1 when unknown words are kept."""

    itos: list[str]

    def __post_init__(self) -> None:
        if not self.itos or self.itos[0] != PAD:
            raise DataError(f"a vocabulary must start with {PAD!r} at id 0, got {self.itos[:1]}")
        self.stoi = {word: i for i, word in enumerate(self.itos)}
        self.unk_id = self.stoi.get(UNK)

    def __len__(self) -> int:
        return len(self.itos)

    @classmethod
    def from_counts(cls, counts: Counter, min_freq: int, with_unk: bool) -> Vocabulary:
        # most_common orders ties by first occurrence, so ids are deterministic.
        words = [w for w, n in counts.most_common() if n >= min_freq]
        return cls([PAD] + ([UNK] if with_unk else []) + words)

    @classmethod
    def from_words(cls, words: Iterable[str], with_unk: bool) -> Vocabulary:
        return cls([PAD] + ([UNK] if with_unk else []) + [w for w in words if w not in (PAD, UNK)])

    def encode(self, tokens: Sequence[str]) -> list[int]:
        """Ids of `tokens`; unknown ones map to <unk>, or are dropped when there is no <unk>."""
        get = self.stoi.get
        if self.unk_id is None:
            return [i for i in map(get, tokens) if i is not None]
        unk = self.unk_id
        return [get(t, unk) for t in tokens]

    def save(self, path: Path) -> None:
        path.write_text(json.dumps({"itos": self.itos}, ensure_ascii=False), encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> Vocabulary:
        try:
            return cls(json.loads(path.read_text(encoding="utf-8"))["itos"])
        except (OSError, ValueError, KeyError) as err:
            raise DataError(f"cannot read vocabulary {path}: {err}") from None
