"""The one Markdown table writer: eval, ensemble, compare, sweep summaries and aggregates all print
their tables through it, so every table a person reads is made alike."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub-flavoured Markdown table, each value through `cell`; ends with a newline."""
    lines = ["| " + " | ".join(map(cell, header)) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(map(cell, values)) + " |" for values in rows]
    return "\n".join(lines) + "\n"


def cell(value: Any) -> str:
    """A value as a table cell: floats with 4 decimals, None empty, a literal | escaped (it would
    split the cell)."""
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4f}" if math.isfinite(value) else str(value)
    return str(value).replace("|", r"\|")
