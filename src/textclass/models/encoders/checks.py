"""Validation shared by encoders: bad hyperparameters fail at construction with the key named."""

from __future__ import annotations

from textclass.errors import ConfigError


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
