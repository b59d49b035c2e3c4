"""Word tokenization and the token <-> id vocabulary (PAD = 0)."""

from __future__ import annotations

import hashlib
import json
import logging
import string
from array import array
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from itertools import chain
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from textclass.data.batching import Encoding
from textclass.embeddings import EmbeddingSpec, load_vectors
from textclass.errors import ConfigError, DataError
from textclass.run_files import VOCAB_FILE
from textclass.tokenizers import EmbeddingInit

if TYPE_CHECKING:
    from gensim.models import KeyedVectors

log = logging.getLogger(__name__)

PAD, UNK, SEP = "<pad>", "<unk>", "<sep>"
VECTORS_FILE = "vectors.npy"
PRETRAINED_IDS_FILE = "pretrained_ids.npy"
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

    def __post_init__(self) -> None:
        if self.split not in SPLIT_MODES:
            raise ConfigError(f"tokenizer.split={self.split!r} is not one of {SPLIT_MODES}")

    def resolved(self, pretokenized: bool) -> WordTokenizer:
        if self.split != "auto":
            return self
        return WordTokenizer("whitespace" if pretokenized else "punct", self.lowercase)

    def features(self, embeddings: EmbeddingSpec | None, vocab: VocabSpec | Mapping[str, Any] | None, pretokenized: bool) -> WordFeatures:
        spec = vocab if isinstance(vocab, VocabSpec) else vocab_spec(vocab or {})
        return WordFeatures(self.resolved(pretokenized), spec, embeddings)

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
    def from_counts(cls, counts: Counter, min_freq: int, with_unk: bool, specials: Sequence[str] = ()) -> Vocabulary:
        # most_common orders ties by first occurrence, so ids are deterministic.
        words = [w for w, n in counts.most_common() if n >= min_freq and w not in specials]
        return cls.from_words([*specials, *words], with_unk)

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

    def save(self, path: Path, **extra: Any) -> None:
        path.write_text(json.dumps({"itos": self.itos, **extra}, ensure_ascii=False), encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> tuple[Vocabulary, dict]:
        """The vocabulary and the other entries saved with it."""
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
            return cls(record.pop("itos")), record
        except (OSError, ValueError, KeyError, AttributeError) as err:
            raise DataError(f"cannot read vocabulary {path}: {err}") from None


def vocab_spec(options: Mapping[str, Any]) -> VocabSpec:
    try:
        return VocabSpec(**options)
    except TypeError as err:
        raise ConfigError(f"data.vocab: {err} (allowed: source, min_freq, restrict_to_data, drop_unknown)") from None


@dataclass
class WordFeatures:
    """Word tokens, a vocabulary fitted on the data, and the pretrained vectors aligned to it."""

    tokenizer: WordTokenizer  # resolved: split is never auto
    vocab_spec: VocabSpec
    embeddings: EmbeddingSpec | None  # None: no pretrained vectors (as embeddings=none)
    vocab: Vocabulary | None = None
    vectors: np.ndarray | None = None  # |V| x d, row i the vector of word i (pretrained embeddings only)
    pretrained_ids: np.ndarray | None = None  # the words whose rows are pretrained vectors, not random ones
    dim: int | None = None
    pad_id: int = field(default=0, init=False)

    @property
    def unk_id(self) -> int | None:
        """The id of <unk>, or None when unknown words are dropped (the vocabulary has no <unk>)."""
        return self.vocab.unk_id if self.vocab is not None else None

    @property
    def pretrained(self) -> bool:
        return self.embeddings is not None and self.embeddings.pretrained

    def cache_key(self) -> dict:
        embeddings = self.embeddings.fingerprint() if self.embeddings is not None else None
        return {"kind": "word", "tokenizer": asdict(self.tokenizer), "vocab": asdict(self.vocab_spec), "embeddings": embeddings}

    def tokens(self, text: str, pair: str | None = None) -> list[str]:
        words = self.tokenizer.tokenize(text)
        return words if pair is None else [*words, SEP, *self.tokenizer.tokenize(pair)]

    def _token_lists(self, texts: Sequence[str], pairs: Sequence[str] | None) -> Iterator[list[str]]:
        return map(self.tokens, texts) if pairs is None else map(self.tokens, texts, pairs)

    def fit(self, train: Sequence[str], splits: Mapping[str, Sequence[str]], seed: int, pairs: Mapping[str, Sequence[str]] | None = None) -> dict:
        """The vocabulary (from train's words, or the embeddings' restricted to the data) and its vectors."""
        spec = self.vocab_spec
        pretrained = self.pretrained
        if spec.source == "embeddings" and not pretrained:
            raise ConfigError(
                "data.vocab.source=embeddings needs pretrained vectors, but embeddings=none; "
                "choose embeddings (e.g. embeddings=glove_6b_50d) or set data.vocab.source=data"
            )
        pairs = pairs or {}
        kv = load_vectors(self.embeddings) if pretrained else None
        with_unk = not spec.drop_unknown
        specials = [SEP] if pairs else []
        if spec.source == "data":
            # C-level counting over one stream of tokens: no list of every sentence's tokens is kept
            counts = Counter(chain.from_iterable(self._token_lists(train, pairs.get("train"))))
            self.vocab = Vocabulary.from_counts(counts, spec.min_freq, with_unk, specials)
        elif not spec.restrict_to_data:
            self.vocab = Vocabulary.from_words([*specials, *kv.index_to_key], with_unk)
        else:
            seen = set(chain.from_iterable(chain.from_iterable(self._token_lists(t, pairs.get(s)) for s, t in splits.items())))
            index = kv.key_to_index
            # keep the embeddings' own order (by corpus frequency), restricted to words in the data
            self.vocab = Vocabulary.from_words([*specials, *sorted((w for w in seen if w in index), key=index.__getitem__)], with_unk)
        if kv is None:
            self.dim = self.embeddings.dim if self.embeddings is not None else None
            return {}
        aligned = align_vectors(self.vocab, kv, self.embeddings.init_std, seed)
        self.vectors, self.dim, self.pretrained_ids = aligned.matrix, aligned.matrix.shape[1], aligned.found_ids
        return {"coverage": {"found": aligned.found, "total": aligned.total}}

    def encode(self, texts: Sequence[str], pairs: Sequence[str] | None = None) -> Encoding:
        """Ids per text; unknown words map to <unk>, or are dropped (and counted) when there is no <unk>."""
        get, unk = self.vocab.stoi.get, self.vocab.unk_id
        # int32 from the start, viewed (not copied) by numpy: one buffer of the final size
        ids, offsets = array("i"), array("q", [0])
        total = 0
        for tokens in self._token_lists(texts, pairs):
            total += len(tokens)
            ids.extend([get(t, unk) for t in tokens] if unk is not None else [i for i in map(get, tokens) if i is not None])
            offsets.append(len(ids))
        flat = np.frombuffer(ids, dtype=np.int32) if len(ids) else np.zeros(0, np.int32)
        return Encoding(flat, np.frombuffer(offsets, dtype=np.int64), total - len(ids), total)

    def save(self, directory: Path, with_vectors: bool = False) -> None:
        self.vocab.save(directory / VOCAB_FILE, dim=self.dim)
        if with_vectors and self.vectors is not None:
            np.save(directory / VECTORS_FILE, self.vectors)
            np.save(directory / PRETRAINED_IDS_FILE, self.pretrained_ids)

    def load(self, directory: Path) -> None:
        self.vocab, extra = Vocabulary.load(directory / VOCAB_FILE)
        self.dim = extra.get("dim")
        vectors = directory / VECTORS_FILE
        self.vectors = np.load(vectors) if vectors.is_file() else None
        found = directory / PRETRAINED_IDS_FILE
        self.pretrained_ids = np.load(found) if found.is_file() else None

    def embedding_init(self) -> EmbeddingInit:
        """An embedding row per vocabulary word: the aligned vectors, or (a trained run being loaded,
        whose checkpoint holds the weights) zeros in the same layout."""
        spec = self.embeddings or EmbeddingSpec(name="none", dim=self.dim)
        vectors = self.vectors
        if vectors is None and self.pretrained and self.dim:
            vectors = np.zeros((len(self.vocab), self.dim), dtype=np.float32)
        return EmbeddingInit(
            vocab_size=len(self.vocab),
            dim=self.dim if vectors is None else None,
            vectors=vectors,
            freeze=spec.freeze and self.vectors is not None,
            sparse=spec.sparse,
            multichannel=spec.multichannel,
            padding_idx=self.pad_id,
        )

    def token_strings(self, ids: Sequence[int]) -> list[str]:
        return [self.vocab.itos[i] for i in ids]

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(self.vocab.itos, ensure_ascii=False).encode("utf-8")).hexdigest()


@dataclass
class AlignedEmbeddings:
    matrix: np.ndarray  # |V| x d float32; row 0 (PAD) is zero
    found_ids: np.ndarray  # the vocabulary words with a pretrained vector
    total: int  # vocabulary words, <pad> and <unk> excluded

    @property
    def found(self) -> int:
        return len(self.found_ids)


def align_vectors(vocab: Vocabulary, kv: KeyedVectors, init_std: float, seed: int) -> AlignedEmbeddings:
    """Row i holds the vector of vocabulary word i; words without one get N(0, init_std) rows."""
    rng = np.random.default_rng(seed)
    matrix = rng.normal(0.0, init_std, size=(len(vocab), kv.vector_size)).astype(np.float32)
    matrix[0] = 0.0
    lookup = kv.key_to_index
    rows, sources = [], []
    first_word = 1 if vocab.unk_id is None else 2
    for row, word in enumerate(vocab.itos[first_word:], start=first_word):
        src = lookup.get(word)
        if src is None:
            src = lookup.get(word.lower())
        if src is not None:
            rows.append(row)
            sources.append(src)
    matrix[rows] = kv.vectors[sources]
    return AlignedEmbeddings(matrix, np.array(rows, dtype=np.int64), len(vocab) - first_word)
