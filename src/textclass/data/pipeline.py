"""Raw splits -> token ids (+ vocabulary and aligned embedding matrix), cached on disk."""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from gensim.models import KeyedVectors

from textclass.data.base import TsvDataset
from textclass.data.cache import cached_dir
from textclass.data.encoded import EncodedTexts
from textclass.data.tsv import LabeledTexts
from textclass.embeddings import EmbeddingSpec, align_vectors, load_vectors
from textclass.errors import ConfigError, DataError
from textclass.tokenizers.bert import PretrainedTokenizer
from textclass.tokenizers.word import VocabSpec, Vocabulary, WordTokenizer

log = logging.getLogger(__name__)

Tokenizer = WordTokenizer | PretrainedTokenizer


@dataclass
class PreparedData:
    """Everything training needs from the data side, in the form the cache stores."""

    splits: dict[str, EncodedTexts]
    pad_id: int
    vocab: Vocabulary | None = None  # word tokenization only
    embedding_matrix: np.ndarray | None = None  # word tokenization with pretrained vectors only
    stats: dict = field(default_factory=dict)  # counts worth reporting: skipped rows, coverage, drops

    def save(self, directory: Path) -> None:
        for split, encoded in self.splits.items():
            encoded.save(directory / f"{split}.npz")
        if self.vocab is not None:
            self.vocab.save(directory / "vocab.json")
        if self.embedding_matrix is not None:
            np.save(directory / "embeddings.npy", self.embedding_matrix)
        meta = {"splits": list(self.splits), "pad_id": self.pad_id, "stats": self.stats}
        (directory / "meta.json").write_text(json.dumps(meta, indent=1))

    @classmethod
    def load(cls, directory: Path) -> PreparedData:
        meta = json.loads((directory / "meta.json").read_text())
        vocab_file, matrix_file = directory / "vocab.json", directory / "embeddings.npy"
        return cls(
            splits={s: EncodedTexts.load(directory / f"{s}.npz") for s in meta["splits"]},
            pad_id=meta["pad_id"],
            vocab=Vocabulary.load(vocab_file) if vocab_file.exists() else None,
            embedding_matrix=np.load(matrix_file) if matrix_file.exists() else None,
            stats=meta["stats"],
        )


def prepare_data(
    dataset: TsvDataset,
    tokenizer: Tokenizer,
    embeddings: EmbeddingSpec | None,
    vocab: VocabSpec,
    cache_dir: Path | None,
    seed: int,
    max_examples: int | None = None,
) -> PreparedData:
    """Encoded splits for `dataset`, from the cache when everything that determines them matches."""
    tokenizer = resolve_tokenizer(tokenizer, dataset)
    if isinstance(tokenizer, WordTokenizer):
        if vocab.source == "embeddings" and (embeddings is None or not embeddings.pretrained):
            raise ConfigError(
                "data.vocab.source=embeddings needs pretrained vectors, but embeddings=none; "
                "choose embeddings (e.g. embeddings=glove_6b_50d) or set data.vocab.source=data"
            )
    parts = _cache_key_parts(dataset, tokenizer, embeddings, vocab, seed, max_examples)

    def build(directory: Path) -> None:
        _build(dataset, tokenizer, embeddings, vocab, seed, max_examples).save(directory)

    start = time.perf_counter()
    if cache_dir is None:
        prepared = _build(dataset, tokenizer, embeddings, vocab, seed, max_examples)
        hit = False
    else:
        entry, hit = cached_dir(Path(cache_dir), dataset.name, parts, build)
        prepared = PreparedData.load(entry)
    log.info(
        "%s data %s in %.2fs: %s",
        dataset.name,
        "loaded from cache" if hit else "prepared",
        time.perf_counter() - start,
        {s: len(e) for s, e in prepared.splits.items()},
    )
    _report(prepared.stats, from_cache=hit)
    return prepared


def resolve_tokenizer(tokenizer: Tokenizer, dataset: TsvDataset) -> Tokenizer:
    """The tokenizer with dataset-dependent choices (split=auto) made."""
    return tokenizer.resolved(dataset.pretokenized) if isinstance(tokenizer, WordTokenizer) else tokenizer


def encode_new_texts(tokenizer: Tokenizer, vocab: Vocabulary | None, texts: list[str], pad_id: int) -> list[list[int]]:
    """Ids for texts outside the prepared splits (prediction): every text yields a sequence.

    A text with no known word becomes a single PAD token, so it still gets a prediction.
    """
    if isinstance(tokenizer, PretrainedTokenizer):
        return tokenizer.encode(texts)
    encoded = [vocab.encode(tokenizer.tokenize(t)) for t in texts]
    empty = sum(not ids for ids in encoded)
    if empty:
        log.warning("%d of %d texts have no word in the vocabulary: predicted from an empty input", empty, len(texts))
    return [ids or [pad_id] for ids in encoded]


def _cache_key_parts(
    dataset: TsvDataset, tokenizer: Tokenizer, embeddings: EmbeddingSpec | None, vocab: VocabSpec, seed: int, max_examples: int | None
) -> dict:
    parts = {"data": dataset.fingerprint(), "max_examples": max_examples, "tokenizer": {"kind": tokenizer.kind}}
    if isinstance(tokenizer, WordTokenizer):
        parts["tokenizer"].update(asdict(tokenizer))
        parts["vocab"] = asdict(vocab)
        parts["embeddings"] = embeddings.fingerprint() if embeddings is not None else None
        parts["seed"] = seed  # random rows of words without a pretrained vector
    else:
        import transformers

        parts["tokenizer"].update(
            pretrained=tokenizer.resolved_pretrained, max_length=tokenizer.max_length, transformers=transformers.__version__
        )
    return parts


def read_splits(dataset: TsvDataset, max_examples: int | None) -> tuple[dict[str, LabeledTexts], dict]:
    splits, skipped = {}, {}
    for split in dataset.available_splits():
        texts, skipped_rows = dataset.read(split)
        if max_examples is not None:
            texts = LabeledTexts(texts.texts[:max_examples], texts.labels[:max_examples])
        splits[split] = texts
        if skipped_rows.total:
            skipped[split] = dict(skipped_rows.by_reason)
    return splits, skipped


def _build(
    dataset: TsvDataset, tokenizer: Tokenizer, embeddings: EmbeddingSpec | None, vocab_spec: VocabSpec, seed: int, max_examples: int | None
) -> PreparedData:
    raw, skipped = read_splits(dataset, max_examples)
    stats: dict = {"skipped_rows": skipped} if skipped else {}
    if isinstance(tokenizer, PretrainedTokenizer):
        splits = {s: EncodedTexts.from_lists(tokenizer.encode(t.texts), t.labels) for s, t in raw.items()}
        return PreparedData(splits, tokenizer.pad_id, stats=stats)

    tokens = {s: [tokenizer.tokenize(text) for text in t.texts] for s, t in raw.items()}
    kv = load_vectors(embeddings) if embeddings is not None and embeddings.pretrained else None
    vocab = build_vocabulary(vocab_spec, tokens, kv)
    splits = {}
    for split, texts in raw.items():
        ids = [vocab.encode(t) for t in tokens[split]]
        keep = np.fromiter((len(i) > 0 for i in ids), dtype=bool, count=len(ids))
        if not keep.all():
            stats.setdefault("emptied_examples", {})[split] = int((~keep).sum())
        if vocab.unk_id is None:
            n_tokens = sum(map(len, tokens[split]))
            stats.setdefault("dropped_unknown_tokens", {})[split] = [n_tokens - sum(map(len, ids)), n_tokens]
        splits[split] = EncodedTexts.from_lists([i for i, k in zip(ids, keep) if k], texts.labels[keep])
        if len(splits[split]) == 0:
            raise DataError(f"{dataset.name} {split}: no example has a token in the vocabulary")
    matrix = None
    if kv is not None:
        aligned = align_vectors(vocab, kv, embeddings.init_std, seed)
        matrix = aligned.matrix
        stats["coverage"] = {"found": aligned.found, "total": aligned.total}
    return PreparedData(splits, pad_id=0, vocab=vocab, embedding_matrix=matrix, stats=stats)


def build_vocabulary(spec: VocabSpec, tokens: dict[str, list[list[str]]], kv: KeyedVectors | None) -> Vocabulary:
    with_unk = not spec.drop_unknown
    if spec.source == "data":
        counts = Counter(t for sentence in tokens["train"] for t in sentence)
        return Vocabulary.from_counts(counts, spec.min_freq, with_unk)
    if not spec.restrict_to_data:
        return Vocabulary.from_words(kv.index_to_key, with_unk)
    seen = {t for split in tokens.values() for sentence in split for t in sentence}
    # keep the embeddings' own order (by corpus frequency), restricted to words in the data
    index = kv.key_to_index
    return Vocabulary.from_words(sorted((w for w in seen if w in index), key=index.__getitem__), with_unk)


def _report(stats: dict, from_cache: bool) -> None:
    # on a fresh build the reader has already reported the rows it skipped, as it read them
    for split, reasons in stats.get("skipped_rows", {}).items() if from_cache else ():
        log.warning("%s: skipped %d bad rows (%s)", split, sum(reasons.values()), reasons)
    if "coverage" in stats:
        c = stats["coverage"]
        log.info(
            "embeddings: found %d of %d vocabulary words in the pretrained vectors (%.1f%%)",
            c["found"], c["total"], 100 * c["found"] / max(c["total"], 1),
        )
    for split, (dropped, total) in stats.get("dropped_unknown_tokens", {}).items():
        log.info("%s: dropped %d of %d tokens missing from the vocabulary", split, dropped, total)
    for split, n in stats.get("emptied_examples", {}).items():
        log.warning("%s: removed %d examples left without any known token", split, n)
