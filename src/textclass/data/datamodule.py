"""The one LightningDataModule: any dataset, any featurizer, padded batches; encoded splits cached on disk."""

from __future__ import annotations

import json
import logging
from functools import partial
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader

from textclass.data.batching import BucketBatchSampler, EncodedDataset, EncodedTexts, Encoding, EpochShuffleSampler, Shard, ShardSampler, collate
from textclass.data.dataset import Examples, TextDataset
from textclass.data.labels import LabelSet
from textclass.errors import ConfigError, DataError
from textclass.run_files import SPLIT_FILE
from textclass.data.encoded import EncodedData, Resplit, encode_dataset, read_splits
from textclass.data.encoder import Encoder, Tokenizer

log = logging.getLogger(__name__)

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

    def add_train_examples(self, extra: EncodedTexts) -> None:
        """Append `extra` (ids in this run's vocabulary, with labels) to the train split: a plug-in's
        way in, e.g. distillation's augmented transfer set. Before any `add_example_array`, whose
        rows then cover these examples too, after the train split's own."""
        if self.example_arrays:
            raise ValueError(f"add training examples before the per-example arrays ({sorted(self.example_arrays)} are attached)")
        splits = self._encoded().splits
        train = splits["train"]
        joined = Encoding.concat([Encoding(train.ids, train.offsets), Encoding(extra.ids, extra.offsets)])
        splits["train"] = EncodedTexts.from_encoding(joined, np.concatenate([train.labels, extra.labels]))

    def add_example_array(self, name: str, values: np.ndarray) -> None:
        """Attach `values` (row i for training example i, in the order of `train_examples`) to the
        train split: each training batch carries its rows as `Batch.extras[name]` (a plug-in's way in,
        e.g. distillation's teacher logits)."""
        if len(values) != len(self._split("train")):
            raise ValueError(f"{name}: {len(values)} rows for {len(self._split('train'))} training examples")
        self.example_arrays[name] = values

    def train_split(self) -> EncodedTexts:
        return self._split("train")

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
