"""Bag of embeddings: the mean word vector of a sentence (logistic regression / single-layer net input)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from textclass.data.batching import Batch
from textclass.models.encoders.pooling import masked_mean


class BagOfEmbeddings(nn.Module):
    def __init__(self, embedding: nn.Module):
        super().__init__()
        self.embedding = embedding
        self.output_dim = embedding.embedding_dim

    def forward(self, batch: Batch) -> torch.Tensor:
        table = self.embedding
        if self.training and isinstance(table, nn.Embedding):
            # One fused gather-and-mean over the real tokens only (fastText's own layout): neither the
            # [B, T, dim] tensor of word vectors nor the padding is touched, forward or backward,
            # which made most of this model's step. Evaluation keeps the vectors themselves
            # (explanations read them through the embedding layer).
            mask = batch.attention_mask.bool()
            counts = mask.sum(1)
            offsets = torch.cumsum(counts, 0) - counts
            return F.embedding_bag(batch.input_ids[mask], table.weight, offsets, mode="mean", sparse=table.sparse)
        return masked_mean(table(batch.input_ids), batch.attention_mask)
