"""Architectures as plain nn.Modules: ``forward(batch) -> [B, output_dim]``; no Lightning here."""
