"""Convolutions over word vectors with max-pooling over time (NLP100-2020 ex.86-88).

One width is the ex.86 CNN; several widths concatenated are TextCNN (Kim, 2014). Max-pooling sees
only windows that overlap real tokens, so a sentence scores the same alone or next to longer ones.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from textclass.data.batching import Batch
from textclass.errors import ConfigError
from textclass.models.encoders.checks import activation_layer, check_dropout, check_positive



class CNNEncoder(nn.Module):
    def __init__(
        self,
        embedding: nn.Embedding,
        widths: Sequence[int] = (3,),
        paddings: Sequence[int] | None = None,
        num_filters: int = 100,
        activation: str = "relu",
        dropout: float = 0.3,
    ):
        super().__init__()
        paddings = list(paddings) if paddings is not None else [w // 2 for w in widths]
        if not widths or len(paddings) != len(widths):
            raise ConfigError(f"model.encoder.widths={list(widths)} and paddings={paddings} must be non-empty and of equal length")
        check_positive(num_filters=num_filters, **{f"widths[{i}]": w for i, w in enumerate(widths)})
        if min(paddings) < 0:
            raise ConfigError(f"model.encoder.paddings={paddings} must be >= 0")
        check_dropout(dropout=dropout)
        self.embedding = embedding
        self.widths, self.paddings = list(widths), paddings
        self.convs = nn.ModuleList(
            nn.Conv1d(embedding.embedding_dim, num_filters, w, padding=p) for w, p in zip(self.widths, paddings)
        )
        self.activation = activation_layer(activation)
        self.dropout = nn.Dropout(dropout)
        self.output_dim = num_filters * len(self.widths)

    def forward(self, batch: Batch) -> torch.Tensor:
        # zero the padded positions explicitly: they then act exactly like the convolution's own padding
        x = self.embedding(batch.input_ids) * batch.attention_mask.unsqueeze(-1)
        x = x.transpose(1, 2)  # [B, d, T]
        # every sequence is at least one window long, padded with zeros (as a lone short sentence would be)
        x = F.pad(x, (0, max(0, max(self.widths) - x.shape[-1])))
        pooled = []
        for conv, width, padding in zip(self.convs, self.widths, self.paddings):
            h = self.activation(conv(x))  # [B, F, T_out]
            valid = (batch.lengths + 2 * padding - width + 1).clamp(min=1)
            mask = torch.arange(h.shape[-1], device=h.device).unsqueeze(0) < valid.unsqueeze(1)
            pooled.append(h.masked_fill(~mask.unsqueeze(1), float("-inf")).amax(dim=-1))
        return self.dropout(torch.cat(pooled, dim=-1))
