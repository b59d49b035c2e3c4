"""The one LightningDataModule: any dataset, word or BERT tokenization, padded batches."""

from __future__ import annotations

import logging
from functools import partial
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader

from textclass.data.base import TsvDataset
from textclass.data.batching import BucketBatchSampler, EncodedDataset, EpochShuffleSampler, collate, unlabeled_loader
from textclass.data.pipeline import PreparedData, Tokenizer, encode_new_texts, prepare_data, resolve_tokenizer
from textclass.embeddings import EmbeddingSpec
from textclass.errors import ConfigError
from textclass.tokenizers.word import VocabSpec, Vocabulary, WordTokenizer

log = logging.getLogger(__name__)


class TextClassificationDataModule(L.LightningDataModule):
    def __init__(
        self,
        dataset: TsvDataset,
        tokenizer: Tokenizer,
        embeddings: EmbeddingSpec | None = None,
        vocab: VocabSpec | dict[str, Any] | None = None,
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
    ):
        super().__init__()
        if batch_size < 1:
            raise ConfigError(f"data.batch_size={batch_size} must be >= 1")
        if max_examples is not None and max_examples < 1:
            raise ConfigError(f"data.max_examples={max_examples} must be >= 1 (or null for all)")
        self.dataset = dataset
        self.tokenizer = tokenizer
        # Vectors only matter to word tokenization; a BERT encoder brings its own embeddings.
        self.embeddings = embeddings if isinstance(tokenizer, WordTokenizer) else None
        self.vocab_spec = vocab if isinstance(vocab, VocabSpec) else _vocab_spec(vocab or {})
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
        self.data: PreparedData | None = None
        # texts for predict_dataloader; None: the dataset's own prediction file
        self.predict_texts: list[str] | None = None

    # --- what the model needs to know -------------------------------------------------------
    @property
    def num_classes(self) -> int:
        return self.dataset.num_classes

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.dataset.class_names

    @property
    def vocab(self) -> Vocabulary | None:
        return self._prepared().vocab

    @property
    def embedding_matrix(self) -> torch.Tensor | None:
        matrix = self._prepared().embedding_matrix
        return None if matrix is None else torch.from_numpy(matrix)

    @property
    def pad_id(self) -> int:
        return self._prepared().pad_id

    # --- Lightning hooks --------------------------------------------------------------------
    def prepare_data(self) -> None:
        self.dataset.prepare()

    def setup(self, stage: str | None = None) -> None:
        if self.data is None:
            self.data = prepare_data(
                self.dataset, self.tokenizer, self.embeddings, self.vocab_spec, self.cache_dir, self.seed, self.max_examples
            )
        if stage == "test":
            self._split("test")

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("valid", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False)

    def predict_dataloader(self) -> DataLoader:
        texts = self.predict_texts if self.predict_texts is not None else self.dataset.read_predict_texts()
        tokenizer = resolve_tokenizer(self.tokenizer, self.dataset)
        return unlabeled_loader(encode_new_texts(tokenizer, self.vocab, texts, self.pad_id), self.pad_id, self.eval_batch_size)

    # --- helpers ----------------------------------------------------------------------------
    def _prepared(self) -> PreparedData:
        if self.data is None:
            self.prepare_data()
            self.setup()
        return self.data

    def _split(self, split: str):
        splits = self._prepared().splits
        if split not in splits:
            if split == "test":
                # raises the dataset's own explanation of why there is no test split
                self.dataset.read("test")
            raise ConfigError(f"{self.dataset.name} has no {split} split (it has {sorted(splits)})")
        return splits[split]

    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        encoded = self._split(split)
        batch_size = self.batch_size if split == "train" else self.eval_batch_size
        collate_fn = partial(collate, pad_id=self.pad_id, sort_by_length=self.sort_within_batch)
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
        if self.bucket_by_length:
            sampler = BucketBatchSampler(encoded.lengths, batch_size, shuffle, self.bucket_pool_batches, self.seed, epoch)
            return DataLoader(EncodedDataset(encoded), batch_sampler=sampler, **common)
        sampler = EpochShuffleSampler(len(encoded), self.seed, epoch) if shuffle else None
        return DataLoader(EncodedDataset(encoded), batch_size=batch_size, sampler=sampler, **common)

    def train_labels(self) -> np.ndarray:
        return self._split("train").labels


def _vocab_spec(options: dict[str, Any]) -> VocabSpec:
    try:
        return VocabSpec(**options)
    except TypeError as err:
        raise ConfigError(f"data.vocab: {err} (allowed: source, min_freq, restrict_to_data, drop_unknown)") from None
