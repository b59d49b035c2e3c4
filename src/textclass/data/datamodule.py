"""The one LightningDataModule: any dataset, any featurizer, padded batches; encoded splits cached on disk."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from collections.abc import Sequence
from typing import Any

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader

from textclass.data.batching import BucketBatchSampler, EncodedDataset, EncodedTexts, EpochShuffleSampler, Shard, ShardSampler, collate
from textclass.data.cache import cached_dir, content_digest
from textclass.data.dataset import Examples, TextDataset
from textclass.data.labels import LabelSet
from textclass.data.splits import fold_ids, strata, stratified_split
from textclass.errors import ConfigError, DataError
from textclass.run_files import LABELS_FILE, SPLIT_FILE
from textclass.data.encoder import Encoder, Tokenizer

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


class TextClassificationDataModule(L.LightningDataModule):
    def __init__(
        self,
        dataset: TextDataset,
        tokenizer: Tokenizer,
        embeddings: Any = None,  # the word vectors (EmbeddingSpec), passed to the tokenizer
        vocab: Any = None,  # vocabulary options (VocabSpec or a mapping), passed to the tokenizer
        cache_dir: str | None = None,
        batch_size: int = 64,
        eval_batch_size: int | None = None,
        sort_within_batch: bool = False,
        bucket_by_length: bool = False,
        bucket_pool_batches: int = 50,
        num_workers: int = 0,
        pin_memory: bool = False,
        seed: int = 42,
        max_examples: int | None = None,
        folds: int | None = None,
        fold: int = 0,
        holdout: float | None = None,
    ):
        super().__init__()
        if batch_size < 1:
            raise ConfigError(f"data.batch_size={batch_size} must be >= 1")
        if max_examples is not None and max_examples < 1:
            raise ConfigError(f"data.max_examples={max_examples} must be >= 1 (or null for all)")
        if not isinstance(dataset, TextDataset):
            raise ConfigError(
                f"data.dataset: {type(dataset).__module__}.{type(dataset).__qualname__} is not a dataset reader: "
                "subclass textclass.data.dataset.TextDataset (override rows(split) to read your source)"
            )
        self.dataset = dataset
        self.features: Encoder = tokenizer.features(embeddings, vocab, dataset.pretokenized)
        self.resplit = Resplit(folds, fold, holdout)
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size or batch_size
        self.sort_within_batch = sort_within_batch
        self.bucket_by_length = bucket_by_length
        self.bucket_pool_batches = bucket_pool_batches
        self.num_workers = num_workers
        self.pin_memory = pin_memory
        self.seed = seed
        self.max_examples = max_examples
        self.data: EncodedData | None = None
        # per-example arrays of the train split that travel in its batches (Batch.extras), by name
        self.example_arrays: dict[str, np.ndarray] = {}

    @property
    def labels(self) -> LabelSet:
        return self._encoded().labels

    def splits(self) -> list[str]:
        return list(self._encoded().splits)

    # --- Lightning hooks --------------------------------------------------------------------
    def prepare_data(self) -> None:
        self.dataset.prepare()

    def setup(self, stage: str | None = None) -> None:
        if self.data is None:
            self.data = encode_dataset(self.dataset, self.features, self.cache_dir, self.seed, self.max_examples, self.resplit)
        if stage == "test":
            self._split("test")

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("valid", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False)

    # --- helpers ----------------------------------------------------------------------------
    def _encoded(self) -> EncodedData:
        if self.data is None:
            self.prepare_data()
            self.setup()
        return self.data

    def _split(self, split: str) -> EncodedTexts:
        splits = self._encoded().splits
        if split not in splits:
            reason = self.dataset.missing_test_reason if split == "test" else None
            raise ConfigError(f"{self.dataset.name} has no {split} split (it has {sorted(splits)})" + (f": {reason}" if reason else ""))
        return splits[split]

    def eval_loader(self, split: str) -> DataLoader:
        """All of `split` in every process (a pass outside the Trainer's loops, e.g. tuning thresholds)."""
        return self._loader(split, shuffle=False, shard=Shard())

    def _shard(self) -> Shard:
        """This process's part under DDP. The data module shards its own batches (the trainer configs
        set use_distributed_sampler=false): its samplers keep one order for all processes, so N
        processes train on the global batches of one process with N x the batch size."""
        if self.trainer is None:
            return Shard()
        return Shard(self.trainer.global_rank, self.trainer.world_size)

    def _loader(self, split: str, shuffle: bool, shard: Shard | None = None) -> DataLoader:
        encoded = self._split(split)
        shard = self._shard() if shard is None else shard
        batch_size = self.batch_size if split == "train" else self.eval_batch_size
        collate_fn = partial(collate, pad_id=self.features.pad_id, sort_by_length=self.sort_within_batch)
        common = dict(
            collate_fn=collate_fn,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            persistent_workers=self.num_workers > 0,
            # its own generator: creating an iterator then draws no seed from the global RNG, which
            # stays for dropout alone (a resumed run restores it and continues the same stream)
            generator=torch.Generator().manual_seed(self.seed),
        )
        # A resumed run creates its loader (and draws its first batch) at the restored epoch, before
        # Lightning's set_epoch: start the samplers at that epoch.
        epoch = self.trainer.current_epoch if self.trainer is not None else 0
        # what plug-ins attached is for training only: valid and test stay plain
        dataset = EncodedDataset(encoded, self.example_arrays if split == "train" else None)
        if self.bucket_by_length:
            sampler = BucketBatchSampler(encoded.lengths, batch_size, shuffle, self.bucket_pool_batches, self.seed, epoch, shard)
            return DataLoader(dataset, batch_sampler=sampler, **common)
        if shuffle:
            sampler = EpochShuffleSampler(len(encoded), self.seed, epoch, shard)
        else:
            sampler = ShardSampler(len(encoded), shard) if shard.world_size > 1 else None
        return DataLoader(dataset, batch_size=batch_size, sampler=sampler, **common)

    def save_split(self, directory: Path) -> None:
        """split.json in `directory` (a run's), for a dataset split from one file by split_fractions."""
        record = self._encoded().split_record
        if record is not None:
            (directory / SPLIT_FILE).write_text(json.dumps(record))
            log.info("%s: which rows of %s went to which split: %s", self.dataset.name, record["source"], directory / SPLIT_FILE)

    def add_example_array(self, name: str, values: np.ndarray) -> None:
        """Attach `values` (row i for training example i, in the order of `train_examples`) to the
        train split: each training batch carries its rows as `Batch.extras[name]` (a plug-in's way in,
        e.g. distillation's teacher logits)."""
        if len(values) != len(self._split("train")):
            raise ValueError(f"{name}: {len(values)} rows for {len(self._split('train'))} training examples")
        self.example_arrays[name] = values

    def train_labels(self) -> np.ndarray:
        return self._split("train").labels

    def train_examples(self) -> Examples:
        """The train split's texts (and pair texts) in the order of its encoded examples: read and
        re-cut again (the encoded cache keeps ids only), cut to max_examples, less the examples the
        features leave without a token (which encoding removed)."""
        raw, _, _ = read_splits(self.dataset, self.resplit, self.labels)
        examples = raw["train"]
        if self.max_examples is not None:
            examples = examples.take(slice(0, self.max_examples))
        keep = self.features.encode(examples.texts, examples.pairs).lengths > 0
        if not keep.all():
            examples = examples.take(np.flatnonzero(keep))
        if not np.array_equal(examples.labels, self.train_labels()):
            raise DataError(f"{self.dataset.name}: the train split read again differs from its encoded cache entry; clear paths.cache_dir")
        return examples
