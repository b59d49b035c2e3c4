"""The embedding layer shared by every word-level encoder."""

from __future__ import annotations

import torch
from torch import nn

from textclass.errors import ConfigError


def build_embedding(
    vocab_size: int,
    dim: int | None,
    pretrained: torch.Tensor | None,
    freeze: bool,
    padding_idx: int = 0,
    sparse: bool = False,
) -> nn.Embedding:
    """Pretrained rows when given (frozen or fine-tuned), else N(0, 1) init; the PAD row is zero.

    sparse: sparse gradients, so a step touches only the rows of the batch's words (large vocabularies).
    """
    if pretrained is not None:
        if dim is not None and pretrained.shape[1] != dim:
            raise ConfigError(f"embeddings.dim={dim} but the pretrained matrix has {pretrained.shape[1]} columns")
        # clone: fine-tuning must not write into the caller's (datamodule's) matrix
        return nn.Embedding.from_pretrained(pretrained.float().clone(), freeze=freeze, padding_idx=padding_idx, sparse=sparse)
    if dim is None or dim < 1:
        raise ConfigError(f"random embeddings need a positive embeddings.dim, got {dim}")
    if freeze:
        raise ConfigError("freezing randomly initialised embeddings trains nothing useful; set embeddings.freeze=false")
    return nn.Embedding(vocab_size, dim, padding_idx=padding_idx, sparse=sparse)
