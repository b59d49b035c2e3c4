"""textclass: neural text classification on PyTorch Lightning + Hydra."""

__version__ = "0.1.0"
