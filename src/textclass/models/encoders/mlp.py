"""MLP on the mean word vector: N x (Linear -> BatchNorm -> activation -> dropout) (NLP100-2020 ex.79)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from textclass.data.batching import Batch
from textclass.errors import ConfigError
from textclass.models.encoders.bow import BagOfEmbeddings
from textclass.models.encoders.checks import activation_layer, check_dropout, check_positive



class MLPEncoder(nn.Module):
    def __init__(
        self,
        embedding: nn.Embedding,
        hidden_sizes: Sequence[int] = (200,),
        activation: str = "relu",
        dropout: float = 0.2,
        batch_norm: bool = True,
    ):
        super().__init__()
        if not hidden_sizes:
            raise ConfigError("model.encoder.hidden_sizes is empty: give at least one layer size (or use model=bow)")
        check_positive(**{f"hidden_sizes[{i}]": h for i, h in enumerate(hidden_sizes)})
        check_dropout(dropout=dropout)
        self.mean = BagOfEmbeddings(embedding)
        layers: list[nn.Module] = []
        size = embedding.embedding_dim
        for hidden in hidden_sizes:
            layers.append(nn.Linear(size, hidden))
            if batch_norm:
                layers.append(nn.BatchNorm1d(hidden))
            layers += [activation_layer(activation), nn.Dropout(dropout)]
            size = hidden
        self.layers = nn.Sequential(*layers)
        self.output_dim = size

    def forward(self, batch: Batch) -> torch.Tensor:
        return self.layers(self.mean(batch))
