"""Bag of embeddings: the mean word vector of a sentence (logistic regression / single-layer net input)."""

from __future__ import annotations

import torch
from torch import nn

from textclass.data.batching import Batch


class BagOfEmbeddings(nn.Module):
    def __init__(self, embedding: nn.Embedding):
        super().__init__()
        self.embedding = embedding
        self.output_dim = embedding.embedding_dim

    def forward(self, batch: Batch) -> torch.Tensor:
        vectors = self.embedding(batch.input_ids)  # [B, T, d]
        mask = batch.attention_mask.unsqueeze(-1).to(vectors.dtype)
        # clamp: an empty sequence averages to zero instead of NaN
        return (vectors * mask).sum(1) / batch.lengths.clamp(min=1).unsqueeze(-1).to(vectors.dtype)
