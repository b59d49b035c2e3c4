"""Pooling over time with the padding masked out, shared by the encoders."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def masked_mean(states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of states [B, T, D] over the positions where mask [B, T] is True; zeros for an empty row."""
    weights = mask.unsqueeze(-1).to(states.dtype)
    return (states * weights).sum(1) / weights.sum(1).clamp(min=1)


def masked_max(states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Elementwise max of states [B, T, D] over the positions where mask [B, T] is True (-inf for an empty row)."""
    return states.masked_fill(~mask.unsqueeze(-1), float("-inf")).amax(dim=1)


def token_bag(table: nn.Embedding, input_ids: torch.Tensor, mask: torch.Tensor, mode: str) -> torch.Tensor:
    """The sum or mean of each row's word vectors over its real tokens, [B, dim], in one fused
    gather-and-reduce over the unpadded ids (fastText's own layout): neither the [B, T, dim] tensor of
    word vectors nor the padding is touched, forward or backward, which made most of a bag model's
    step. Equal to masked_mean / the masked sum of ``table(input_ids)``, sparse gradients included."""
    mask = mask.bool()
    counts = mask.sum(1)
    offsets = torch.cumsum(counts, 0) - counts
    return F.embedding_bag(input_ids[mask], table.weight, offsets, mode=mode, sparse=table.sparse)
