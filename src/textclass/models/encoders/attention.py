"""Recurrent states pooled by additive (Bahdanau-style) attention, padding masked out.

`attend` also returns the attention weights per token, for prediction to show.
"""

from __future__ import annotations

import torch
from torch import nn

from textclass.data.batching import Batch
from textclass.models.encoders.checks import check_positive
from textclass.models.encoders.rnn import RNNEncoder


class AttentionEncoder(nn.Module):
    def __init__(
        self,
        embedding: nn.Embedding,
        cell: str = "lstm",
        hidden_size: int = 128,
        num_layers: int = 1,
        bidirectional: bool = True,
        dropout: float = 0.0,
        attention_size: int = 128,
    ):
        super().__init__()
        check_positive(attention_size=attention_size)
        self.rnn = RNNEncoder(embedding, cell, hidden_size, num_layers, bidirectional, dropout)
        self.project = nn.Linear(self.rnn.output_dim, attention_size)
        self.score = nn.Linear(attention_size, 1, bias=False)
        self.output_dim = self.rnn.output_dim

    def attend(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """(sentence vectors [B, output_dim], attention weights [B, T] summing to 1 over real tokens)."""
        states, _ = self.rnn.run(batch)
        scores = self.score(torch.tanh(self.project(states))).squeeze(-1)  # [B, T]
        weights = torch.softmax(scores.masked_fill(~batch.attention_mask, float("-inf")), dim=-1)
        return torch.einsum("bt,btd->bd", weights, states), weights

    def forward(self, batch: Batch) -> torch.Tensor:
        return self.attend(batch)[0]
