"""The search space: Hydra override syntax (as in the official hydra-optuna-sweeper) to Optuna distributions.

    interval(a, b)              float in [a, b]
    int(interval(a, b))         int in [a, b]
    tag(log, interval(a, b))    log scale (also with int(...))
    range(a, b, step)           a, a+step, ... below b, as Python's range (int or float)
    choice(x, y, ...) / x,y     one of the values (numbers, strings, group options, lists such as [3,4,5])
    anything else               a fixed value, the same override for every trial
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import ChoiceSweep, IntervalSweep, Override, RangeSweep
from hydra.errors import HydraException
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution

from textclass.errors import ConfigError

SYNTAX = "interval(a, b), int(interval(a, b)), tag(log, interval(a, b)), range(a, b, step), choice(x, y, ...)"


@dataclass
class SearchSpace:
    distributions: dict[str, BaseDistribution] = field(default_factory=dict)
    fixed: list[str] = field(default_factory=list)  # overrides given to every trial unchanged
    # list and dict choices by key: Optuna's categoricals hold scalars, so the study stores their override text
    structured_choices: dict[str, dict[str, Any]] = field(default_factory=dict)

    def fixed_values(self) -> dict[str, Any]:
        """The fixed overrides as key -> value."""
        return {o.get_key_element(): o.value() for o in map(parse_override, self.fixed)}

    def values(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """A trial's params as config values: list and dict choices back from their stored text."""
        return {key: self.structured_choices.get(key, {}).get(value, value) if isinstance(value, str) else value for key, value in params.items()}

    def overrides(self, params: Mapping[str, Any]) -> list[str]:
        """A trial's overrides: its sampled values, then the fixed ones."""
        return [*(f"{key}={format_value(value)}" for key, value in self.values(params).items()), *self.fixed]


def parse_search_space(params: Mapping[str, Any] | None, arguments: Sequence[str] = ()) -> SearchSpace:
    """`params` from the sweeper config, then the command-line `arguments`: a key given in both takes the command line's."""
    lines = {key: f"{key}={value}" for key, value in (params or {}).items()}
    for argument in arguments:
        lines[parse_override(argument).get_key_element()] = argument
    space = SearchSpace()
    for line in lines.values():
        override = parse_override(line)
        if override.is_sweep_override():
            key = override.get_key_element()
            space.distributions[key] = to_distribution(override)
            if isinstance(override.value(), ChoiceSweep):
                structured = {format_value(c): c for c in choice_values(override.value()) if isinstance(c, (list, dict))}
                if structured:
                    space.structured_choices[key] = structured
        else:
            space.fixed.append(line)
    return space


def parse_override(line: str) -> Override:
    try:
        return OverridesParser.create().parse_override(line)
    except HydraException as err:  # a syntax error, an unknown function, an empty choice()
        first_line = str(err).strip().splitlines()[0]
        raise ConfigError(f"search space: cannot parse {line!r}: {first_line}; use {SYNTAX}") from None


def to_distribution(override: Override) -> BaseDistribution:
    key, value = override.get_key_element(), override.value()
    log = "log" in getattr(value, "tags", set())
    if isinstance(value, ChoiceSweep):
        choices = [format_value(c) if isinstance(c, (list, dict)) else c for c in choice_values(value)]
        if len(set(map(repr, choices))) < len(choices):
            raise ConfigError(f"search space: {key}: choice() lists a value twice; got {choices}")
        return CategoricalDistribution(choices)
    if isinstance(value, IntervalSweep):
        low, high = value.start, value.end
        if not low < high:
            raise ConfigError(f"search space: {key}: interval({low}, {high}) is empty; the lower bound must be below the upper")
        if log and low <= 0:
            raise ConfigError(f"search space: {key}: a log-scale interval must be positive; got interval({low}, {high})")
        if isinstance(low, int) and isinstance(high, int):
            return IntDistribution(low, high, log=log)
        return FloatDistribution(float(low), float(high), log=log)
    if isinstance(value, RangeSweep):
        return range_distribution(key, value, log)
    raise ConfigError(f"search space: {key}: {type(value).__name__.lower()} sweeps are not supported; use {SYNTAX}")


def choice_values(value: ChoiceSweep) -> list[Any]:
    return [v.text if hasattr(v, "text") else v for v in value.list]  # quoted strings come as QuotedString


def range_distribution(key: str, value: RangeSweep, log: bool) -> BaseDistribution:
    """range(a, b, step) excludes b, as Hydra's basic sweeper and Python do: the upper bound is the last value."""
    start, stop, step = value.start, value.stop, value.step
    if step <= 0 or not start < stop:
        raise ConfigError(f"search space: {key}: range({start}, {stop}, {step}) is empty; it needs start < stop and step > 0")
    if log:
        raise ConfigError(f"search space: {key}: tag(log, ...) applies to interval(), not range()")
    count = math.ceil(round((stop - start) / step, 9))  # 0.6 / 0.1 is 5.999...: 6 values, not 7
    last = start + (count - 1) * step
    if all(isinstance(v, int) for v in (start, stop, step)):
        return IntDistribution(start, last, step=step)
    return FloatDistribution(float(start), float(round(last, 12)), step=float(step))


def format_value(value: Any) -> str:
    """A sampled value as override text: numbers as Python writes them, strings quoted when Hydra would misread them."""
    if isinstance(value, bool) or value is None:
        return str(value).lower() if value is not None else "null"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, list):
        return "[" + ",".join(map(format_value, value)) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(f"{k}:{format_value(v)}" for k, v in value.items()) + "}"
    text = str(value)
    plain = text.replace("_", "").replace("-", "").replace(".", "").replace("/", "").isalnum()
    return text if plain else "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"
