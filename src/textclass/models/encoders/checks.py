"""What encoders share: checks that make bad hyperparameters fail at construction with the key
named, and the one table of activations (`activation=relu|tanh|gelu`)."""

from __future__ import annotations

from torch import nn

from textclass.errors import ConfigError

ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "gelu": nn.GELU}


def activation_layer(name: str) -> nn.Module:
    """The activation `model.encoder.activation` names, as a layer."""
    check_choice("activation", name, ACTIVATIONS)
    return ACTIVATIONS[name]()


def check_positive(**values: int) -> None:
    for key, value in values.items():
        if value is None or value < 1:
            raise ConfigError(f"model.encoder.{key}={value} must be a positive integer")


def check_dropout(**values: float) -> None:
    for key, value in values.items():
        if not 0.0 <= value < 1.0:
            raise ConfigError(f"model.encoder.{key}={value} must be in [0, 1)")


def check_choice(key: str, value: str, choices) -> None:
    if value not in choices:
        raise ConfigError(f"model.encoder.{key}={value!r} is not one of {sorted(choices)}")
