"""Pooling over time with the padding masked out, shared by the encoders."""

from __future__ import annotations

import torch


def masked_mean(states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of states [B, T, D] over the positions where mask [B, T] is True; zeros for an empty row."""
    weights = mask.unsqueeze(-1).to(states.dtype)
    return (states * weights).sum(1) / weights.sum(1).clamp(min=1)


def masked_max(states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Elementwise max of states [B, T, D] over the positions where mask [B, T] is True (-inf for an empty row)."""
    return states.masked_fill(~mask.unsqueeze(-1), float("-inf")).amax(dim=1)
