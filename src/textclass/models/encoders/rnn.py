"""Recurrent encoders: Elman RNN (tanh), LSTM, GRU; stacked, optionally bidirectional (NLP100-2020 ex.81-85).

Sequences are packed, so padding never enters the recurrence. The sentence vector (`pooling`) is
the final state at each sequence's last real token (forward and backward directions concatenated),
or the elementwise max or the mean of the top layer's states over the real tokens.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from textclass.data.batching import Batch
from textclass.models.encoders.checks import check_choice, check_dropout, check_positive
from textclass.models.encoders.pooling import masked_max, masked_mean

CELLS = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}
POOLINGS = ("last", "max", "mean")


class RNNEncoder(nn.Module):
    def __init__(
        self,
        embedding: nn.Embedding,
        cell: str = "lstm",
        hidden_size: int = 128,
        num_layers: int = 1,
        bidirectional: bool = False,
        dropout: float = 0.0,
        pooling: str = "last",
    ):
        super().__init__()
        check_choice("cell", cell, CELLS)
        check_choice("pooling", pooling, POOLINGS)
        check_positive(hidden_size=hidden_size, num_layers=num_layers)
        check_dropout(dropout=dropout)
        self.embedding = embedding
        extra = {"nonlinearity": "tanh"} if cell == "rnn" else {}
        self.rnn = CELLS[cell](
            embedding.embedding_dim,
            hidden_size,
            num_layers=num_layers,
            bidirectional=bidirectional,
            # PyTorch applies dropout between stacked layers only
            dropout=dropout if num_layers > 1 else 0.0,
            batch_first=True,
            **extra,
        )
        self.num_directions = 2 if bidirectional else 1
        self.pooling = pooling
        self.output_dim = hidden_size * self.num_directions

    def run(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """(states [B, T, output_dim] with zeros after each end, final hidden [layers*dirs, B, H])."""
        lengths = batch.lengths.clamp(min=1).cpu()  # pack_padded_sequence needs lengths on the CPU
        packed = pack_padded_sequence(self.embedding(batch.input_ids), lengths, batch_first=True, enforce_sorted=False)
        states, hidden = self.rnn(packed)
        states, _ = pad_packed_sequence(states, batch_first=True, total_length=batch.input_ids.shape[1])
        if isinstance(hidden, tuple):  # LSTM: (h_n, c_n)
            hidden = hidden[0]
        return states, hidden

    def forward(self, batch: Batch) -> torch.Tensor:
        states, hidden = self.run(batch)
        if self.pooling == "last":
            last_layer = hidden[-self.num_directions :]  # [dirs, B, H]
            return torch.cat(list(last_layer), dim=-1)
        # an empty sequence still ran one (padding) step, see run(): pool that one state
        mask = batch.attention_mask.clone()
        mask[:, 0] = True
        return masked_max(states, mask) if self.pooling == "max" else masked_mean(states, mask)
