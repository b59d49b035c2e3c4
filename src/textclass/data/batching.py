"""From encoded examples to padded batches: dataset view, collate, length-bucketed batches."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import partial

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from textclass.data.encoded import EncodedTexts

Example = tuple[np.ndarray, int]


@dataclass
class Batch:
    """Token ids padded to the longest sequence of the batch."""

    input_ids: torch.Tensor  # [B, T] int64, pad id after each sequence's end
    lengths: torch.Tensor  # [B] int64, real tokens per sequence
    attention_mask: torch.Tensor  # [B, T] bool, True on real tokens
    labels: torch.Tensor  # [B] int64

    def __len__(self) -> int:
        return self.labels.shape[0]

    def pin_memory(self) -> Batch:
        return Batch(*(t.pin_memory() for t in (self.input_ids, self.lengths, self.attention_mask, self.labels)))


class EncodedDataset(Dataset):
    """Map-style view of one encoded split; item i is (token ids, label)."""

    def __init__(self, encoded: EncodedTexts):
        self.encoded = encoded

    def __len__(self) -> int:
        return len(self.encoded)

    def __getitem__(self, i: int) -> Example:
        e = self.encoded
        return e.ids[e.offsets[i] : e.offsets[i + 1]], int(e.labels[i])


def collate(examples: Sequence[Example], pad_id: int = 0, sort_by_length: bool = False) -> Batch:
    """Pad to the longest sequence with `pad_id`; optionally order the batch by length, longest first."""
    if sort_by_length:
        # stable, so equal lengths keep their input order
        examples = sorted(examples, key=lambda ex: -len(ex[0]))
    lengths = np.fromiter((len(ids) for ids, _ in examples), dtype=np.int64, count=len(examples))
    padded = np.full((len(examples), int(lengths.max(initial=0))), pad_id, dtype=np.int64)
    for row, (ids, _) in enumerate(examples):
        padded[row, : len(ids)] = ids
    input_ids = torch.from_numpy(padded)
    lengths_t = torch.from_numpy(lengths)
    mask = torch.arange(padded.shape[1]).unsqueeze(0) < lengths_t.unsqueeze(1)
    labels = torch.tensor([label for _, label in examples], dtype=torch.int64)
    return Batch(input_ids, lengths_t, mask, labels)


def unlabeled_loader(ids: Sequence[Sequence[int]], pad_id: int, batch_size: int) -> DataLoader:
    """Padded batches of new texts' ids, in their order, labeled -1 (none): for prediction."""
    encoded = EncodedTexts.from_lists(ids, np.full(len(ids), -1))
    return DataLoader(EncodedDataset(encoded), batch_size=batch_size, shuffle=False, collate_fn=partial(collate, pad_id=pad_id))


class EpochShuffleSampler(Sampler[int]):
    """A shuffle seeded by (seed, epoch), not the global RNG: a resumed run sees the same order.

    Lightning calls `set_epoch` each epoch, as for DistributedSampler.
    """

    def __init__(self, size: int, seed: int = 0, epoch: int = 0):
        self.size = size
        self.seed = seed
        self.epoch = epoch

    def __len__(self) -> int:
        return self.size

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        return iter(np.random.default_rng((self.seed, self.epoch)).permutation(self.size).tolist())


class BucketBatchSampler(Sampler[list[int]]):
    """Batches of similar length, to cut padding.

    Each epoch (set by `set_epoch`, which Lightning calls, as for DistributedSampler): shuffle, cut
    into pools of `batch_size * pool_batches`, sort each pool by length, slice it into batches,
    shuffle the batches. Without `shuffle` the batches come sorted by length
    (for evaluation, where order does not matter).
    """

    def __init__(
        self, lengths: np.ndarray, batch_size: int, shuffle: bool = True, pool_batches: int = 50, seed: int = 0, epoch: int = 0
    ):
        self.lengths = np.asarray(lengths)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.pool_size = batch_size * pool_batches
        self.seed = seed
        self.epoch = epoch

    def __len__(self) -> int:
        return -(-len(self.lengths) // self.batch_size)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[list[int]]:
        if not self.shuffle:
            order = np.argsort(-self.lengths, kind="stable")
            yield from (order[i : i + self.batch_size].tolist() for i in range(0, len(order), self.batch_size))
            return
        rng = np.random.default_rng((self.seed, self.epoch))
        order = rng.permutation(len(self.lengths))
        batches = []
        for start in range(0, len(order), self.pool_size):
            pool = order[start : start + self.pool_size]
            pool = pool[np.argsort(-self.lengths[pool], kind="stable")]
            batches.extend(pool[i : i + self.batch_size] for i in range(0, len(pool), self.batch_size))
        for i in rng.permutation(len(batches)):
            yield batches[i].tolist()


def padding_fraction(lengths: np.ndarray, batches: Sequence[Sequence[int]]) -> float:
    """Share of padded positions over all positions of `batches` (each padded to its longest)."""
    real = padded = 0
    for batch in batches:
        batch_lengths = lengths[np.asarray(batch)]
        real += int(batch_lengths.sum())
        padded += int(batch_lengths.max()) * len(batch)
    return 1.0 - real / padded if padded else 0.0
