"""A dataset's splits as training reads them: re-cut (fold, held-out selection split), encoded by
the featurizer, and cached on disk under the digest of everything they depend on."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from textclass.data.batching import EncodedTexts
from textclass.data.cache import cached_dir, content_digest
from textclass.data.dataset import Examples, TextDataset
from textclass.data.labels import LabelSet
from textclass.data.splits import fold_ids, strata, stratified_split
from textclass.errors import ConfigError, DataError
from textclass.run_files import LABELS_FILE, SPLIT_FILE
from textclass.data.encoder import Encoder

log = logging.getLogger(__name__)

META_FILE = "meta.json"


@dataclass
class EncodedData:
    """Every split encoded, the label set, and the counts worth reporting; the cache stores this."""

    splits: dict[str, EncodedTexts]
    labels: LabelSet
    stats: dict = field(default_factory=dict)  # skipped rows, vector coverage, dropped tokens and examples
    # data.dataset.split_fractions: which rows of the file went to which split (split.json)
    split_record: dict | None = None

    def save(self, directory: Path) -> None:
        for split, encoded in self.splits.items():
            encoded.save(directory / f"{split}.npz")
        self.labels.save(directory / LABELS_FILE)
        (directory / META_FILE).write_text(json.dumps({"splits": list(self.splits), "stats": self.stats}, indent=1))
        if self.split_record is not None:
            (directory / SPLIT_FILE).write_text(json.dumps(self.split_record))

    @classmethod
    def load(cls, directory: Path) -> EncodedData:
        meta = json.loads((directory / META_FILE).read_text())
        splits = {s: EncodedTexts.load(directory / f"{s}.npz") for s in meta["splits"]}
        record = json.loads((directory / SPLIT_FILE).read_text()) if (directory / SPLIT_FILE).is_file() else None
        return cls(splits, LabelSet.load(directory / LABELS_FILE), meta["stats"], record)


@dataclass(frozen=True)
class Resplit:
    """How training re-cuts the dataset's splits, if at all.

    folds=K: k-fold cross-validation on train+valid, fold `fold` the valid split, the others train.
    holdout=F: a stratified, seeded share F of train becomes the valid split (it selects the epoch
    and, in a search, the hyperparameters) and the dataset's own valid split becomes the test split,
    untouched by any choice: for datasets without a test split (a pre-split copy, SST-2).
    """

    folds: int | None = None
    fold: int = 0
    holdout: float | None = None

    def __post_init__(self) -> None:
        if self.folds is None and self.fold != 0:
            raise ConfigError(f"data.fold={self.fold} picks a fold of a cross-validation, but data.folds is not set: add data.folds=K (K > {self.fold})")
        if self.folds is not None and (self.folds < 2 or not 0 <= self.fold < self.folds):
            raise ConfigError(f"data.folds={self.folds} data.fold={self.fold}: need folds >= 2 and 0 <= fold < folds")
        if self.holdout is not None and not 0 < self.holdout < 1:
            raise ConfigError(f"data.holdout={self.holdout} must be a fraction of train between 0 and 1, e.g. 0.1")
        if self.holdout is not None and self.folds is not None:
            raise ConfigError("data.holdout and data.folds both re-cut train and valid: use one of them")

    @classmethod
    def from_config(cls, data_cfg: Any) -> Resplit:
        """The re-cut a run's `data` config asks for (a run trained before a key existed lacks it)."""
        return cls(data_cfg.get("folds"), data_cfg.get("fold", 0), data_cfg.get("holdout"))

    def apply(self, data: dict[str, Examples], seed: int, dataset_name: str = "the dataset", class_names: Sequence[str] | None = None) -> dict[str, Examples]:
        if self.holdout is not None:
            if "test" in data:
                raise ConfigError(
                    f"data.holdout={self.holdout}: {dataset_name} has a test split already, which reports while valid "
                    "selects; drop data.holdout (it is for datasets without a test split)"
                )
            if "valid" not in data:
                raise ConfigError(f"data.holdout={self.holdout}: {dataset_name} has no valid split to keep for reporting")
            parts = stratified_split(strata(data["train"].labels), [1 - self.holdout, self.holdout], seed)
            return {"train": data["train"].take(parts["train"]), "valid": data["train"].take(parts["valid"]), "test": data["valid"]}
        if self.folds is None:
            return data
        pool = Examples.concat([data[s] for s in ("train", "valid") if s in data])
        fold = fold_ids(pool.labels, self.folds, seed, class_names)
        return {**data, "train": pool.take(np.flatnonzero(fold != self.fold)), "valid": pool.take(np.flatnonzero(fold == self.fold))}


def encode_dataset(
    dataset: TextDataset,
    features: Encoder,
    cache_dir: Path | None,
    seed: int,
    max_examples: int | None = None,
    resplit: Resplit = Resplit(),
) -> EncodedData:
    """Every split of `dataset` read and encoded by `features` (fitted on it), from the cache when
    everything that determines them matches. `features` ends up fitted either way."""
    start = time.perf_counter()
    if cache_dir is None:
        data, hit = _encode(dataset, features, seed, max_examples, resplit), False
    else:
        cache_dir = Path(cache_dir)
        parts = {
            "data": dataset.fingerprint(lambda path: content_digest(path, cache_dir)),
            "features": features.cache_key(),
            "seed": seed,  # random rows of words without a pretrained vector; the fold assignment
            "max_examples": max_examples,
            "resplit": [resplit.folds, resplit.fold, resplit.holdout],
        }

        def build(directory: Path) -> None:
            built = _encode(dataset, features, seed, max_examples, resplit)
            built.save(directory)
            features.save(directory, with_vectors=True)

        entry, hit = cached_dir(cache_dir, dataset.name, parts, build)
        data = EncodedData.load(entry)
        features.load(entry)
    log.info(
        "%s data %s in %.2fs: %s",
        dataset.name,
        "loaded from cache" if hit else "prepared",
        time.perf_counter() - start,
        {s: len(e) for s, e in data.splits.items()},
    )
    report(data.stats, from_cache=hit)
    return data


def _encode(dataset: TextDataset, features: Encoder, seed: int, max_examples: int | None, resplit: Resplit) -> EncodedData:
    raw, labels, skipped = read_splits(dataset, resplit)
    record = None
    if dataset.split_fractions is not None:
        rows = {s: e.rows.tolist() for s, e in raw.items()}
        record = {"source": str(dataset.file("train")), "split_fractions": list(dataset.split_fractions), "split_seed": dataset.split_seed, "rows": rows}
    if "valid" not in raw:
        raise ConfigError(
            f"{dataset.name}: no valid split to select the epoch on; give data.dataset.valid=PATH, or split the train "
            "file with data.dataset.split_fractions=[0.8,0.1,0.1], or use data.folds=K"
        )
    if max_examples is not None:
        raw = {s: e.take(slice(0, max_examples)) for s, e in raw.items()}
    stats: dict = {"skipped_rows": skipped} if skipped else {}
    pairs = {s: e.pairs for s, e in raw.items()} if raw["train"].pairs is not None else None
    stats.update(features.fit(raw["train"].texts, {s: e.texts for s, e in raw.items()}, seed, pairs))
    splits = {}
    for split, examples in raw.items():
        log.debug("%s: encoding %d %s texts", dataset.name, len(examples), split)
        encoding = features.encode(examples.texts, examples.pairs)
        keep = encoding.lengths > 0
        if not keep.all():
            stats.setdefault("emptied_examples", {})[split] = int((~keep).sum())
        if encoding.dropped_tokens:
            stats.setdefault("dropped_unknown_tokens", {})[split] = [encoding.dropped_tokens, encoding.total_tokens]
        splits[split] = EncodedTexts.from_encoding(encoding, examples.labels, keep)
        if len(splits[split]) == 0:
            raise DataError(f"{dataset.name} {split}: no example has a token in the vocabulary")
    return EncodedData(splits, labels, stats, record)


def read_splits(
    dataset: TextDataset, resplit: Resplit, labels: LabelSet | None = None
) -> tuple[dict[str, Examples], LabelSet, dict[str, dict[str, int]]]:
    """The dataset's splits as training uses them: read (mapped to `labels` when given, a trained
    run's), then re-cut (cross-validation fold, held-out selection split). Seeded by the dataset's
    split_seed, not the run's seed: every seed of a comparison sees the same splits."""
    raw, labels, skipped = dataset.read(labels)
    return resplit.apply(raw, dataset.split_seed, dataset.name, labels.names), labels, skipped


def report(stats: dict, from_cache: bool) -> None:
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
