"""The augmented transfer set of Tang et al. 2019 ("Distilling Task-Specific Knowledge from BERT into
Simple Neural Networks"): new sentences made from the training sentences, which the teacher labels
and the student then learns from, beside the training set itself.

Each copy of a training sentence goes word by word: with probability `mask` the word becomes
<unk> (the teacher reads its mask token there, when it has one, else nothing; where the student has
<unk> for a word its vocabulary lacks, the teacher still reads the word itself); else with
probability `replace` it becomes one of its `neighbours` nearest words in the pretrained vectors
(cosine; Tang et al. replace within the word's part of speech, which needs a tagger: the vectors'
neighbours stand in); then, with probability `ngram`, the copy is cut to a random n-gram of 1 to 5
of its words. Copies left without a known word, or the same as their sentence, are dropped.

It works on the student's word ids (a student with word tokenization and <unk> in its vocabulary),
drawn with `seed`. Only words with a pretrained vector are replaced or used as replacements: the
others have rows the run's seed draws, so the transfer set depends on the data and `seed` alone, and
every seed of a sweep shares it (and the teacher's cached labels of it).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from textclass.data.batching import EncodedTexts
from textclass.errors import ConfigError

MAX_NGRAM = 5
NEIGHBOUR_CHUNK = 1024  # rows of the similarity matrix computed at once


@dataclass(frozen=True)
class AugmentSpec:
    """`distill.augment`: copies per training sentence (0: no augmentation) and the three operations' rates."""

    copies: int = 0
    mask: float = 0.1
    replace: float = 0.1
    ngram: float = 0.25
    neighbours: int = 10
    seed: int = 0

    def __post_init__(self) -> None:
        if isinstance(self.copies, bool) or not isinstance(self.copies, int) or self.copies < 0:
            raise ConfigError(f"distill.augment.copies={self.copies!r} must be an integer >= 0 (Tang et al. use 20; 0: no augmentation)")
        for key in ("mask", "replace", "ngram"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
                raise ConfigError(f"distill.augment.{key}={value!r} must be a probability in [0, 1]")
        if self.mask + self.replace > 1.0:
            raise ConfigError(f"distill.augment.mask + replace = {self.mask + self.replace} must be <= 1 (each word is masked, replaced or kept)")
        if isinstance(self.neighbours, bool) or not isinstance(self.neighbours, int) or self.neighbours < 1:
            raise ConfigError(f"distill.augment.neighbours={self.neighbours!r} must be an integer >= 1")


def nearest_neighbours(vectors: np.ndarray, candidates: np.ndarray, k: int) -> np.ndarray:
    """For each id in `candidates`, its `k` nearest other ids among `candidates` by cosine similarity
    of their rows of `vectors`: [len(candidates), k] (fewer columns when there are fewer candidates)."""
    k = min(k, len(candidates) - 1)
    if k < 1:
        return np.zeros((len(candidates), 0), dtype=np.int64)
    rows = vectors[candidates].astype(np.float32)
    rows /= np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12)
    found = np.empty((len(candidates), k), dtype=np.int64)
    for start in range(0, len(candidates), NEIGHBOUR_CHUNK):
        similarity = rows[start : start + NEIGHBOUR_CHUNK] @ rows.T
        np.fill_diagonal(similarity[:, start:], -np.inf)  # a word is not its own neighbour
        best = np.argpartition(-similarity, k, axis=1)[:, :k]
        found[start : start + len(best)] = candidates[best]
    return found


@dataclass
class Copy:
    """One augmented sentence: the student's word ids, and the words the teacher reads (None where
    the copy masks a word; the training sentence's own word where the student has <unk> for it)."""

    ids: np.ndarray
    words: list[str | None]


def augment(
    train: EncodedTexts, words: list[list[str]], spec: AugmentSpec, unk_id: int, vectors: np.ndarray | None, vocabulary: list[str],
    special: tuple[int, ...] = (), pretrained: np.ndarray | None = None,
) -> list[Copy]:
    """`spec.copies` augmented copies per training sentence, the unusable ones dropped.

    words: each training sentence's words as the tokenizer gave them (one per id); vectors: the
    student's embedding rows (neighbours for `replace`; None: no replacement); vocabulary: the word
    of each id; special: ids never replaced nor used as a replacement (padding, <unk>, separators);
    pretrained: the ids whose rows are pretrained vectors, the only ones replaced or used as a
    replacement (None: every row).
    """
    rng = np.random.default_rng(spec.seed)
    known = np.setdiff1d(np.unique(train.ids), np.array([unk_id, *special]))
    if pretrained is not None:
        known = np.intersect1d(known, pretrained)
    table = {}
    if spec.replace and vectors is not None and len(known) > 1:
        table = dict(zip(known.tolist(), nearest_neighbours(vectors, known, spec.neighbours)))
    made = []
    for i in range(len(train)):
        sentence = train.ids[train.offsets[i] : train.offsets[i + 1]].astype(np.int64)
        for _ in range(spec.copies):
            ids, positions, masked = transform(sentence, spec, unk_id, table, rng)
            if len(ids) and (ids != unk_id).any() and not np.array_equal(ids, sentence):
                teacher = [None if m else words[i][p] if ids[k] == sentence[p] else vocabulary[ids[k]] for k, (p, m) in enumerate(zip(positions, masked))]
                made.append(Copy(ids, teacher))
    return made


def transform(
    sentence: np.ndarray, spec: AugmentSpec, unk_id: int, table: dict[int, np.ndarray], rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One augmented copy of `sentence` (word ids): masking, neighbour replacement, n-gram sampling.
    Returns (ids, the sentence position each comes from, whether the copy masked it)."""
    ids = sentence.copy()
    draw = rng.random(len(ids))
    masked = draw < spec.mask
    ids[masked] = unk_id
    for position in np.flatnonzero(~masked & (draw < spec.mask + spec.replace)):
        options = table.get(int(ids[position]))
        if options is not None and len(options):
            ids[position] = options[rng.integers(len(options))]
    positions = np.arange(len(ids))
    if len(ids) > 1 and rng.random() < spec.ngram:
        n = int(rng.integers(1, min(MAX_NGRAM, len(ids)) + 1))
        start = int(rng.integers(0, len(ids) - n + 1))
        positions = positions[start : start + n]
    return ids[positions], positions, masked[positions]
