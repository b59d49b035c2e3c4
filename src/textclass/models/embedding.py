"""The embedding layer shared by every word-level encoder."""

from __future__ import annotations

import torch
from torch import nn

from textclass.errors import ConfigError
from textclass.tokenizers import EmbeddingInit


class MultichannelEmbedding(nn.Module):
    """Kim (2014)'s two channels: a frozen and a fine-tuned copy of the pretrained vectors, side by side.

    Fine-tuning moves only the words the training data has; the frozen channel keeps every word's
    pretrained meaning, so words seen rarely or only at test time still read as they were trained.
    Each word vector is the two copies concatenated (`embedding_dim` twice the vectors' size), which
    lets any encoder take it in place of an nn.Embedding.
    """

    def __init__(self, pretrained: torch.Tensor, padding_idx: int = 0, sparse: bool = False):
        super().__init__()
        self.static = nn.Embedding.from_pretrained(pretrained.float().clone(), freeze=True, padding_idx=padding_idx)
        self.tuned = nn.Embedding.from_pretrained(pretrained.float().clone(), freeze=False, padding_idx=padding_idx, sparse=sparse)
        self.embedding_dim = 2 * pretrained.shape[1]
        self.padding_idx = padding_idx

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.static(input_ids), self.tuned(input_ids)], dim=-1)


def embedding_layer(init: EmbeddingInit) -> nn.Embedding | MultichannelEmbedding:
    """The word embedding layer a featurizer's `EmbeddingInit` describes."""
    return build_embedding(
        vocab_size=init.vocab_size,
        dim=init.dim,
        pretrained=torch.from_numpy(init.vectors) if init.vectors is not None else None,
        freeze=init.freeze,
        padding_idx=init.padding_idx,
        sparse=init.sparse,
        multichannel=init.multichannel,
    )


def build_embedding(
    vocab_size: int,
    dim: int | None,
    pretrained: torch.Tensor | None,
    freeze: bool,
    padding_idx: int = 0,
    sparse: bool = False,
    multichannel: bool = False,
) -> nn.Embedding | MultichannelEmbedding:
    """Pretrained rows when given (frozen or fine-tuned), else N(0, 1) init; the PAD row is zero.

    sparse: sparse gradients, so a step touches only the rows of the batch's words (large vocabularies).
    multichannel: a frozen and a fine-tuned copy of the pretrained rows, concatenated (needs `pretrained`).
    """
    if pretrained is not None:
        if dim is not None and pretrained.shape[1] != dim:
            raise ConfigError(f"embeddings.dim={dim} but the pretrained matrix has {pretrained.shape[1]} columns")
        if multichannel:
            if freeze:
                raise ConfigError("embeddings.multichannel=true already keeps a frozen copy; set embeddings.freeze=false")
            return MultichannelEmbedding(pretrained, padding_idx, sparse)
        # clone: fine-tuning must not write into the caller's (datamodule's) matrix
        return nn.Embedding.from_pretrained(pretrained.float().clone(), freeze=freeze, padding_idx=padding_idx, sparse=sparse)
    if multichannel:
        raise ConfigError("embeddings.multichannel=true needs pretrained vectors (e.g. embeddings=glove_6b_50d), not embeddings=none")
    if dim is None or dim < 1:
        raise ConfigError(f"random embeddings need a positive embeddings.dim, got {dim}")
    if freeze:
        raise ConfigError("freezing randomly initialised embeddings trains nothing useful; set embeddings.freeze=false")
    return nn.Embedding(vocab_size, dim, padding_idx=padding_idx, sparse=sparse)
