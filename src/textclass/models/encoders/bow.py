"""Bag of embeddings: the mean word vector of a sentence (logistic regression / single-layer net input)."""

from __future__ import annotations

import torch
from torch import nn

from textclass.data.batching import Batch
from textclass.models.encoders.pooling import masked_mean, token_bag


class BagOfEmbeddings(nn.Module):
    def __init__(self, embedding: nn.Module):
        super().__init__()
        self.embedding = embedding
        self.output_dim = embedding.embedding_dim

    def forward(self, batch: Batch) -> torch.Tensor:
        if self.training and isinstance(self.embedding, nn.Embedding):
            # Evaluation keeps the vectors themselves: explanations read them through the embedding layer.
            return token_bag(self.embedding, batch.input_ids, batch.attention_mask, "mean")
        return masked_mean(self.embedding(batch.input_ids), batch.attention_mask)
