"""Labels: the classes of a dataset in id order (`LabelSet`), and the coding of each row's label
value(s) to ids as rows are read (`LabelCoder`), for single-label, multi-label (a JSON list, joined
strings, or one 0/1 column per label) and a trained run's known classes alike."""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from textclass.errors import DataError


class LabelOptions(Protocol):
    """The reader's label settings the coder follows (a TextDataset's)."""

    label_column: str
    label_columns: list[str] | None
    labels: list[str | int] | None
    multi_label: bool
    label_separator: str

log = logging.getLogger(__name__)


HIDDEN_LABELS = ("-1", "?", "None", "null")  # what a file with withheld labels holds in their place

TRUE_VALUES = {"1", "1.0", "true", "yes"}

FALSE_VALUES = {"0", "0.0", "false", "no", ""}


@dataclass(frozen=True)
class LabelSet:
    """The classes in id order: `values` as written in the data, `names` as shown to users."""

    values: tuple[str, ...]
    names: tuple[str, ...]
    multi_label: bool = False

    def __len__(self) -> int:
        return len(self.values)

    @property
    def index(self) -> dict[str, int]:
        return {v: i for i, v in enumerate(self.values)}

    def save(self, path: Path) -> None:
        record = {"values": list(self.values), "names": list(self.names), "multi_label": self.multi_label}
        path.write_text(json.dumps(record, indent=1, ensure_ascii=False), encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> LabelSet:
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
            return cls(tuple(record["values"]), tuple(record["names"]), bool(record.get("multi_label", False)))
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise DataError(f"cannot read the label set {path} ({err}); the run directory is damaged: restore it or train again") from None


class LabelCoder:
    """Label values to ids as rows are read: against a known label set, or collecting train's labels."""

    def __init__(self, labels: LabelSet | None, dataset: LabelOptions, source: str):
        self.known = labels
        self.dataset = dataset
        self.source = source
        self.codes: dict[str, int] = dict(labels.index) if labels is not None else {}
        self.ids: list = []  # per row: a code, or a tuple of codes (multi-label)
        self.shape: str | None = None  # multi-label: "list" or "string", whichever the first row used

    def add(self, values: list[Any], where_: str) -> tuple[str, str] | None:
        """Code one row's label(s); returns (reason, detail) of a bad row instead."""
        ds = self.dataset
        if ds.label_columns:
            names = [ds.label_columns[i] for i, v in enumerate(values) if self._flag(v, ds.label_columns[i], where_)]
        else:
            value = values[0]
            if ds.multi_label:
                names = self._label_list(value, where_)
            elif isinstance(value, (list, tuple)):
                raise DataError(
                    f"{where_}: the label {value!r} is a list; for several labels per example set data.dataset.multi_label=true"
                )
            elif value is None or str(value).strip() == "":
                return "no label", f"no label in column {ds.label_column!r}"
            elif (problem := not_text(value, ds.label_column, "a label")) is not None:
                return "not a label", problem
            else:
                names = [label_text(value)]
        if not names:
            return "no label", "no label (a multi-label row needs at least one)"
        codes = []
        for name in names:
            code = self.codes.get(name)
            if code is None:
                if self.known is not None:
                    hidden = f"; if this file's labels are hidden ({name}, as in GLUE's test files) it cannot be scored: leave it out, e.g. data.dataset.test=null" if name in HIDDEN_LABELS else ""
                    return "unknown label", f"unknown label {name!r} (not among {list(self.known.values)}; {self._origin()}){hidden}"
                code = self.codes[name] = len(self.codes)
            codes.append(code)
        self.ids.append(tuple(codes) if ds.multi_label else codes[0])
        return None

    def _origin(self) -> str:
        if self.dataset.labels is not None or self.dataset.label_columns:
            return "the labels of data.dataset.labels"
        return "the labels seen in train"

    def _flag(self, value: Any, column: str, where_: str) -> bool:
        text = label_text(value).lower() if value is not None else ""
        if text in TRUE_VALUES:
            return True
        if text in FALSE_VALUES:
            return False
        raise DataError(f"{where_}: label column {column!r} holds {value!r}; each of data.dataset.label_columns must be 0 or 1")

    def _label_list(self, value: Any, where_: str) -> list[str]:
        if isinstance(value, str) and value.strip().startswith("["):
            try:
                value = json.loads(value)
            except json.JSONDecodeError:
                pass
        shape = "list" if isinstance(value, (list, tuple)) else "string"
        if self.shape is None:
            self.shape = shape
        elif shape != self.shape:
            raise DataError(
                f"{where_}: the label column {self.dataset.label_column!r} mixes lists and {self.dataset.label_separator!r}-joined "
                f"strings (this row has a {shape}, earlier rows a {self.shape}); write every row's labels the same way"
            )
        if shape == "list":
            nested = next((p for p in (not_text(v, self.dataset.label_column, "a label") for v in value) if p), None)
            if nested is not None:
                raise DataError(f"{where_}: {nested}")
            names = [label_text(v) for v in value if v is not None and str(v).strip()]
        elif value is None:
            names = []
        else:
            names = [p.strip() for p in str(value).split(self.dataset.label_separator) if p.strip()]
        return list(dict.fromkeys(names))

    def finish(self) -> tuple[LabelSet, np.ndarray]:
        if self.known is not None:
            labels = self.known
            remap = np.arange(len(labels))
        else:
            values = sort_labels(list(self.codes))
            warn_case_twins(values, self.source)
            labels = LabelSet(tuple(values), tuple(values), self.dataset.multi_label)
            order = {v: i for i, v in enumerate(values)}
            remap = np.array([order[v] for v in self.codes], dtype=np.int64)
        if not self.dataset.multi_label:
            return labels, remap[np.asarray(self.ids, dtype=np.int64)] if self.ids else np.zeros(0, np.int64)
        hot = np.zeros((len(self.ids), len(labels)), dtype=np.uint8)
        for row, codes in enumerate(self.ids):
            hot[row, remap[list(codes)]] = 1
        return labels, hot


def not_text(value: Any, column: str | None, what: str = "text") -> str | None:
    """Why a cell cannot be read as `what` (a nested value: a JSON object or list, a Parquet struct;
    bytes: a binary column), or None: strings, numbers and empty cells can."""
    if isinstance(value, dict):
        kind = "a JSON object (or a Parquet struct)"
    elif isinstance(value, (list, tuple, set)) and what == "text":
        kind = "a list"
    elif isinstance(value, (bytes, bytearray, memoryview)):
        kind = "bytes (a binary column)"
    else:
        return None
    shown = repr(value)[:60]
    return f"column {column!r} holds {kind}, not {what}: {shown}; store it as a string"


def warn_case_twins(values: list[str], source: str) -> None:
    """Labels that differ only by case are two classes; say so, since they are usually one."""
    seen: dict[str, str] = {}
    for value in values:
        twin = seen.setdefault(value.casefold(), value)
        if twin != value:
            log.warning("%s: the labels %r and %r differ only by case, so they are two classes; if they mean one, write them alike "
                        "(or list the classes in data.dataset.labels)", source, twin, value)


def label_text(value: Any) -> str:
    """A label as text: ints and integral floats (Parquet ints with gaps read as floats) without '.0'."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def sort_labels(values: list[str]) -> list[str]:
    """Numerically when every label is an integer (2 before 10), else as strings."""
    if all(re.fullmatch(r"-?\d+", v) for v in values):
        return sorted(values, key=int)
    return sorted(values)
