"""From encoded examples to padded batches: dataset view, collate, length-bucketed batches."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

# (token ids, label, per-example arrays by name: what a plug-in attaches to each training example)
Example = tuple[np.ndarray, np.ndarray | int, dict[str, np.ndarray]]


@dataclass
class Encoding:
    """Token-id sequences stored flat: sequence i is ids[offsets[i]:offsets[i + 1]]."""

    ids: np.ndarray  # int32 (or int64 for very large vocabularies)
    offsets: np.ndarray  # int64, len = n + 1
    dropped_tokens: int = 0  # tokens left out (words missing from a vocabulary without <unk>)
    total_tokens: int = 0  # tokens before any was left out

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    @classmethod
    def from_lists(cls, sequences: Sequence[Sequence[int]]) -> Encoding:
        lengths = np.fromiter((len(s) for s in sequences), dtype=np.int64, count=len(sequences))
        offsets = np.zeros(len(sequences) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        ids = np.fromiter((i for s in sequences for i in s), dtype=np.int64, count=int(offsets[-1]))
        return cls(narrow(ids), offsets)

    def filled(self, token: int) -> Encoding:
        """Every empty sequence replaced by the one token `token` (so it still gets a prediction)."""
        lengths = self.lengths
        offsets = np.zeros(len(self) + 1, dtype=np.int64)
        np.cumsum(np.maximum(lengths, 1), out=offsets[1:])
        ids = np.full(int(offsets[-1]), token, dtype=self.ids.dtype)
        ids[np.repeat(offsets[:-1] - self.offsets[:-1], lengths) + np.arange(len(self.ids))] = self.ids
        return Encoding(ids, offsets, self.dropped_tokens, self.total_tokens)

    @staticmethod
    def concat(parts: Sequence[Encoding]) -> Encoding:
        if not parts:
            return Encoding(np.zeros(0, np.int32), np.zeros(1, np.int64))
        starts = np.cumsum([0] + [int(p.offsets[-1]) for p in parts[:-1]])
        offsets = np.concatenate([parts[0].offsets[:1]] + [p.offsets[1:] + s for p, s in zip(parts, starts)])
        return Encoding(
            narrow(np.concatenate([p.ids.astype(np.int64) for p in parts])),
            offsets,
            sum(p.dropped_tokens for p in parts),
            sum(p.total_tokens for p in parts),
        )


def narrow(ids: np.ndarray) -> np.ndarray:
    return ids.astype(np.int32) if ids.size == 0 or ids.max() < 2**31 else ids.astype(np.int64)


@dataclass
class EncodedTexts:
    """One encoded split: token ids (flat, with offsets) and labels, cheap to cache and to slice."""

    ids: np.ndarray
    offsets: np.ndarray  # int64, len = n + 1
    labels: np.ndarray  # int64 [N] class ids, or uint8 [N, C] 0/1 per label (multi-label)

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    @classmethod
    def from_encoding(cls, encoding: Encoding, labels: np.ndarray, keep: np.ndarray | None = None) -> EncodedTexts:
        """`encoding` with `labels`; with `keep` (a mask), only those sequences."""
        if keep is None or keep.all():
            return cls(encoding.ids, encoding.offsets, labels)
        lengths = encoding.lengths
        starts = encoding.offsets[:-1][keep]
        ids = np.concatenate([encoding.ids[s : s + n] for s, n in zip(starts, lengths[keep])]) if keep.any() else encoding.ids[:0]
        offsets = np.zeros(int(keep.sum()) + 1, dtype=np.int64)
        np.cumsum(lengths[keep], out=offsets[1:])
        return cls(ids, offsets, labels[keep])

    def save(self, path: Path) -> None:
        np.savez(path, ids=self.ids, offsets=self.offsets, labels=self.labels)

    @classmethod
    def load(cls, path: Path) -> EncodedTexts:
        with np.load(path) as f:
            return cls(f["ids"], f["offsets"], f["labels"])


@dataclass
class Batch:
    """Token ids padded to the longest sequence of the batch."""

    input_ids: torch.Tensor  # [B, T] int64, pad id after each sequence's end
    lengths: torch.Tensor  # [B] int64, real tokens per sequence
    attention_mask: torch.Tensor  # [B, T] bool, True on real tokens
    labels: torch.Tensor  # [B] int64 class ids, or [B, C] float 0/1 per label (multi-label)
    # per-example arrays a plug-in attached to the training examples (distillation: a teacher's
    # logits, [B, C]), by name; empty in evaluation
    extras: dict[str, torch.Tensor] = field(default_factory=dict)

    def __len__(self) -> int:
        return self.labels.shape[0]

    def to(self, device: torch.device | str, non_blocking: bool | None = None) -> Batch:
        """The batch on `device`; by default non-blocking except to the CPU and MPS, as Lightning moves
        tensors. Lightning moves any object with a `to` method by calling it, instead of walking and
        deep-copying a dataclass field by field, which costs more than the move itself on the CPU."""
        device = torch.device(device)
        if non_blocking is None:
            non_blocking = device.type not in ("cpu", "mps")
        return self._map(lambda t: t.to(device, non_blocking=non_blocking))

    def pin_memory(self) -> Batch:
        return self._map(torch.Tensor.pin_memory)

    def _map(self, fn: Callable[[torch.Tensor], torch.Tensor]) -> Batch:
        tensors = (fn(t) for t in (self.input_ids, self.lengths, self.attention_mask, self.labels))
        return Batch(*tensors, {name: fn(t) for name, t in self.extras.items()})


class EncodedDataset(Dataset):
    """Map-style view of one encoded split; item i is (token ids, label, {name: row i of each of
    `arrays`}): the per-example arrays travel with their examples."""

    def __init__(self, encoded: EncodedTexts, arrays: dict[str, np.ndarray] | None = None):
        arrays = dict(arrays or {})
        for name, values in arrays.items():
            if len(values) != len(encoded):
                raise ValueError(f"{len(values)} rows of {name} for {len(encoded)} examples")
        self.encoded = encoded
        self.arrays = arrays

    def __len__(self) -> int:
        return len(self.encoded)

    def __getitem__(self, i: int) -> Example:
        e = self.encoded
        return e.ids[e.offsets[i] : e.offsets[i + 1]], e.labels[i], {name: values[i] for name, values in self.arrays.items()}

    def __getitems__(self, indices: Sequence[int]) -> Rows:
        """A batch's examples at once (the DataLoader asks for them so): collate pads them with array
        operations instead of a Python step per example, which cost a small model a third of its epoch."""
        return Rows(self, np.asarray(indices, dtype=np.int64))


@dataclass
class Rows:
    """Some examples of an EncodedDataset, by index: what `collate` turns into a Batch in one go."""

    dataset: EncodedDataset
    indices: np.ndarray

    def __len__(self) -> int:
        return len(self.indices)

    def collate(self, pad_id: int, sort_by_length: bool) -> Batch:
        encoded, indices = self.dataset.encoded, self.indices
        starts, lengths = encoded.offsets[indices], encoded.offsets[indices + 1] - encoded.offsets[indices]
        if sort_by_length:  # stable, so equal lengths keep their input order
            order = np.argsort(-lengths, kind="stable")
            indices, starts, lengths = indices[order], starts[order], lengths[order]
        steps = np.arange(int(lengths.max(initial=0)))
        real = steps[None, :] < lengths[:, None]
        positions = np.where(real, starts[:, None] + steps[None, :], 0)
        padded = np.where(real, encoded.ids[positions] if len(encoded.ids) else 0, pad_id).astype(np.int64)
        labels = torch.from_numpy(np.asarray(encoded.labels[indices]))
        extras = {name: torch.from_numpy(np.asarray(values[indices])) for name, values in self.dataset.arrays.items()}
        return Batch(
            torch.from_numpy(padded), torch.from_numpy(lengths.astype(np.int64)), torch.from_numpy(real),
            labels.float() if labels.ndim == 2 else labels.long(), extras,
        )


def collate(examples: Sequence[Example] | Rows, pad_id: int = 0, sort_by_length: bool = False) -> Batch:
    """Pad to the longest sequence with `pad_id`; optionally order the batch by length, longest first.
    The examples' per-example arrays are stacked into the batch's `extras`."""
    if isinstance(examples, Rows):
        return examples.collate(pad_id, sort_by_length)
    if sort_by_length:
        # stable, so equal lengths keep their input order
        examples = sorted(examples, key=lambda ex: -len(ex[0]))
    lengths = np.fromiter((len(ex[0]) for ex in examples), dtype=np.int64, count=len(examples))
    padded = np.full((len(examples), int(lengths.max(initial=0))), pad_id, dtype=np.int64)
    for row, ex in enumerate(examples):
        padded[row, : len(ex[0])] = ex[0]
    input_ids = torch.from_numpy(padded)
    lengths_t = torch.from_numpy(lengths)
    mask = torch.arange(padded.shape[1]).unsqueeze(0) < lengths_t.unsqueeze(1)
    labels = torch.from_numpy(np.array([ex[1] for ex in examples]))
    labels = labels.float() if labels.ndim == 2 else labels.long()
    names = examples[0][2] if examples and len(examples[0]) > 2 else {}
    extras = {name: torch.from_numpy(np.stack([ex[2][name] for ex in examples])) for name in names}
    return Batch(input_ids, lengths_t, mask, labels, extras)


def unlabeled_loader(encoding: Encoding, pad_id: int, batch_size: int, order: np.ndarray | None = None) -> DataLoader:
    """Padded batches of new texts' ids, labeled -1 (none): for prediction. In their order, or in
    `order` (the indices to batch, one after the other)."""
    encoded = EncodedTexts.from_encoding(encoding, np.full(len(encoding), -1))
    sampler = None if order is None else order.tolist()
    return DataLoader(EncodedDataset(encoded), batch_size=batch_size, sampler=sampler, collate_fn=partial(collate, pad_id=pad_id))


@dataclass(frozen=True)
class Shard:
    """This process's part of the data under DDP: rank `rank` of `world_size` processes."""

    rank: int = 0
    world_size: int = 1

    def take(self, order: np.ndarray, pad: bool) -> np.ndarray:
        """Every world_size-th item of `order` from `rank` on; with `pad`, `order` first repeated up to
        a multiple of world_size, so every process gets as many items (its steps stay in step).

        Step k of each rank then holds the k-th slice of the order a single process would batch
        (world_size x the batch size): the same global batches as one process with that batch size.
        """
        if pad and len(order) % self.world_size:
            order = np.resize(order, -(-len(order) // self.world_size) * self.world_size)
        return order[self.rank :: self.world_size]


class EpochShuffleSampler(Sampler[int]):
    """A shuffle seeded by (seed, epoch), not the global RNG: a resumed run sees the same order, and
    every DDP process the same order, of which it takes its `shard`.

    Lightning calls `set_epoch` each epoch, as for DistributedSampler.
    """

    def __init__(self, size: int, seed: int = 0, epoch: int = 0, shard: Shard = Shard()):
        self.size = size
        self.seed = seed
        self.epoch = epoch
        self.shard = shard

    def __len__(self) -> int:
        return -(-self.size // self.shard.world_size)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        order = np.random.default_rng((self.seed, self.epoch)).permutation(self.size)
        return iter(self.shard.take(order, pad=True).tolist())


class ShardSampler(Sampler[int]):
    """Evaluation under DDP: this process's shard of the examples in order, none repeated (the
    metrics sum their states over processes, so each example counts once)."""

    def __init__(self, size: int, shard: Shard):
        self.indices = shard.take(np.arange(size), pad=False)

    def __len__(self) -> int:
        return len(self.indices)

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices.tolist())


class BucketBatchSampler(Sampler[list[int]]):
    """Batches of similar length, to cut padding.

    Each epoch (set by `set_epoch`, which Lightning calls, as for DistributedSampler): shuffle, cut
    into pools of `batch_size * pool_batches`, sort each pool by length, slice it into batches,
    shuffle the batches. Without `shuffle` the batches come sorted by length
    (for evaluation, where order does not matter). Under DDP every process builds the batches of
    world_size x `batch_size` and takes its `shard` of each (training pads one short of a process).
    """

    def __init__(
        self, lengths: np.ndarray, batch_size: int, shuffle: bool = True, pool_batches: int = 50, seed: int = 0, epoch: int = 0,
        shard: Shard = Shard(),
    ):
        self.lengths = np.asarray(lengths)
        self.batch_size = batch_size * shard.world_size
        self.shuffle = shuffle
        self.pool_size = self.batch_size * pool_batches
        self.seed = seed
        self.epoch = epoch
        self.shard = shard

    def __len__(self) -> int:
        return -(-len(self.lengths) // self.batch_size)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[list[int]]:
        for batch in self._global_batches():
            part = self.shard.take(batch, pad=self.shuffle)
            if len(part):
                yield part.tolist()

    def _global_batches(self) -> Iterator[np.ndarray]:
        if not self.shuffle:
            order = np.argsort(-self.lengths, kind="stable")
            yield from (order[i : i + self.batch_size] for i in range(0, len(order), self.batch_size))
            return
        rng = np.random.default_rng((self.seed, self.epoch))
        order = rng.permutation(len(self.lengths))
        batches = []
        for start in range(0, len(order), self.pool_size):
            pool = order[start : start + self.pool_size]
            pool = pool[np.argsort(-self.lengths[pool], kind="stable")]
            batches.extend(pool[i : i + self.batch_size] for i in range(0, len(pool), self.batch_size))
        for i in rng.permutation(len(batches)):
            yield batches[i]


def padding_fraction(lengths: np.ndarray, batches: Sequence[Sequence[int]]) -> float:
    """Share of padded positions over all positions of `batches` (each padded to its longest)."""
    real = padded = 0
    for batch in batches:
        batch_lengths = lengths[np.asarray(batch)]
        real += int(batch_lengths.sum())
        padded += int(batch_lengths.max()) * len(batch)
    return 1.0 - real / padded if padded else 0.0
