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
        if self.training and isinstance(table, nn.Embedding) and table.padding_idx is not None:
            # One fused gather-and-mean (fastText's own layout): the [B, T, dim] tensor of word vectors
            # is never built, which made most of this model's step. The padding id is left out of
            # the mean, as the mask leaves it out below. Evaluation keeps the vectors themselves
            # (explanations read them through the embedding layer).
            return F.embedding_bag(batch.input_ids, table.weight, mode="mean", padding_idx=table.padding_idx, sparse=table.sparse)
        return masked_mean(table(batch.input_ids), batch.attention_mask)
