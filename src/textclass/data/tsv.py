"""Strict reading of tab-separated text files: exact field counts, UTF-8, no quoting.

Rows that are malformed raise a `DataError` naming file:line, or are skipped and counted when the
caller asks for ``on_bad_row="skip"``.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from textclass.errors import ConfigError, DataError

log = logging.getLogger(__name__)

BAD_ROW_POLICIES = ("error", "skip")


@dataclass
class LabeledTexts:
    """One split: texts and their integer labels, aligned."""

    texts: list[str]
    labels: np.ndarray  # int64, one per text

    def __len__(self) -> int:
        return len(self.texts)


@dataclass
class SkippedRows:
    """What `on_bad_row=skip` left out of one file, by reason."""

    path: Path
    by_reason: Counter = field(default_factory=Counter)

    @property
    def total(self) -> int:
        return sum(self.by_reason.values())

    def record(self, lineno: int, reason: str, detail: str, on_bad_row: str) -> None:
        """Count a bad row under `reason`, or stop with file:line when `on_bad_row` is "error"."""
        if on_bad_row == "error":
            raise DataError(
                f"{self.path}:{lineno}: {detail}; fix the row, or set data.dataset.on_bad_row=skip "
                "to skip bad rows and report them"
            )
        self.by_reason[reason] += 1

    def summary(self) -> str:
        reasons = ", ".join(f"{n} {reason}" for reason, n in sorted(self.by_reason.items()))
        return f"skipped {self.total} bad rows in {self.path} ({reasons})"


def check_bad_row_policy(on_bad_row: str) -> None:
    if on_bad_row not in BAD_ROW_POLICIES:
        raise ConfigError(f"data.dataset.on_bad_row={on_bad_row!r} is not one of {BAD_ROW_POLICIES}")


def decode_utf8(data: bytes, source: Path | str) -> str:
    """`data` as text (a leading UTF-8 byte-order mark dropped); non-UTF-8 bytes are an error
    naming `source` and the line."""
    try:
        return data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        bad = data[err.start : err.start + 1]
        raise DataError(
            f"{source}:{line}: not valid UTF-8 (byte {bad!r} at offset {err.start}); re-save the file as UTF-8"
        ) from None


def check_data_file(path: Path) -> None:
    """A missing directory, dangling or looping link in place of a data file is one clear error."""
    if problem := file_problem(path):
        raise DataError(f"data file {path} {problem}")


def read_bytes(path: Path) -> bytes:
    """The bytes of a data file; a missing, unreadable or non-regular file is one clear error."""
    check_data_file(path)
    try:
        return path.read_bytes()
    except OSError as err:
        raise DataError(f"cannot read data file {path} ({err.strerror or err}); check its permissions") from None


def file_problem(path: Path) -> str | None:
    """Why `path` cannot be read as a data file (missing, a directory, a dangling or looping link), or None."""
    try:
        if path.is_file():
            return None
        if path.is_dir():
            return "is a directory, not a TSV file"
        if path.is_symlink():
            return "is a symbolic link that leads nowhere (broken, or a loop); point it at the file or replace it"
    except OSError as err:  # ELOOP, ENAMETOOLONG, EACCES on a parent folder
        return f"cannot be opened ({err.strerror or err})"
    return "does not exist" if not path.exists() else "is not a regular file"


def decode_lines(data: bytes, path: Path, skipped: SkippedRows | None, on_bad_row: str) -> str:
    """`data` as text; with on_bad_row=skip, lines that are not UTF-8 are blanked and counted in `skipped`."""
    try:
        return decode_utf8(data, path)
    except DataError:
        if on_bad_row != "skip":
            raise
    lines = data.split(b"\n")
    for lineno, raw in enumerate(lines, start=1):
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError:
            if lineno == 1:  # the header: no row to skip, the file is wrong
                decode_utf8(raw, path)
            skipped.record(lineno, "bad UTF-8", "not valid UTF-8", on_bad_row)
            lines[lineno - 1] = b""
    return decode_utf8(b"\n".join(lines), path)


def read_body(path: Path, header: tuple[str, ...], skipped: SkippedRows | None = None, on_bad_row: str = "error") -> str:
    """The file's text after its header line, which must be exactly `header`."""
    first, _, body = decode_lines(read_bytes(path), path, skipped, on_bad_row).partition("\n")
    found_header = tuple(first.rstrip("\r").split("\t"))
    if found_header != header:
        raise DataError(f"{path}:1: header is {'<TAB>'.join(found_header)!r}, expected {'<TAB>'.join(header)!r}")
    return body


def iter_rows(text: str, n_fields: int, first_line: int = 1) -> Iterator[tuple[int, list[str] | str]]:
    """(line number, fields) per non-empty line; a wrong field count yields a reason string instead."""
    for lineno, line in enumerate(text.split("\n"), start=first_line):
        line = line.rstrip("\r")
        if not line:
            continue
        fields = line.split("\t")
        if len(fields) != n_fields:
            yield lineno, f"{len(fields)} fields instead of {n_fields} in {line[:80]!r}"
        else:
            yield lineno, fields


def read_labeled_tsv(
    path: Path,
    header: tuple[str, str],
    text_column: str,
    label_column: str,
    label_ids: Mapping[str, int],
    on_bad_row: str = "error",
) -> tuple[LabeledTexts, SkippedRows]:
    """Read a two-column TSV with a header into texts and label ids.

    Texts keep their characters exactly (SST-2's trailing space is stripped only at the ends).
    """
    check_bad_row_policy(on_bad_row)
    skipped = SkippedRows(path)
    body = read_body(path, header, skipped, on_bad_row)
    text_idx, label_idx = header.index(text_column), header.index(label_column)
    texts: list[str] = []
    labels: list[int] = []
    for lineno, fields in iter_rows(body, len(header), first_line=2):
        reason = detail = None
        if isinstance(fields, str):
            reason, detail = "wrong field count", fields
        else:
            label = label_ids.get(fields[label_idx].strip())
            sentence = fields[text_idx].strip()
            if label is None:
                reason = "unknown label"
                detail = f"unknown label {fields[label_idx]!r} (expected one of {sorted(label_ids)})"
            elif not sentence:
                reason = detail = "empty text"
        if reason is not None:
            skipped.record(lineno, reason, detail, on_bad_row)
            continue
        texts.append(sentence)
        labels.append(label)
    if skipped.total:
        log.warning(skipped.summary())
    if not texts:
        raise DataError(f"{path}: no usable rows" + (f" ({skipped.summary()})" if skipped.total else ""))
    return LabeledTexts(texts, np.asarray(labels, dtype=np.int64)), skipped


def read_texts_tsv(path: Path, header: tuple[str, ...], text_column: str) -> list[str]:
    """The text column of a TSV with a header (e.g. GLUE's unlabeled test.tsv); bad rows are errors."""
    texts = []
    for lineno, fields in iter_rows(read_body(path, header), len(header), first_line=2):
        if isinstance(fields, str):
            raise DataError(f"{path}:{lineno}: {fields}")
        texts.append(fields[header.index(text_column)].strip())
    return texts


def write_labeled_tsv(path: Path, header: tuple[str, str], rows: list[tuple[str, str]]) -> None:
    """Write rows atomically, so a crash never leaves a half-written split behind."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    with tmp.open("w", encoding="utf-8", newline="\n") as f:
        f.write("\t".join(header) + "\n")
        for row in rows:
            f.write("\t".join(row) + "\n")
    tmp.replace(path)
