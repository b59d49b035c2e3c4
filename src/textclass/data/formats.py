"""Rows of a data file: CSV, TSV, JSON lines, Parquet or a saved Hugging Face dataset.

Every reader yields (row number, values of the requested columns). Text formats number rows by
their line in the file; Parquet and Hugging Face datasets by their position, from 1. A malformed
row raises a `DataError` naming file:line, or is skipped and counted with ``on_bad_row="skip"``.
Files are streamed, never read whole: a 1M-row CSV holds only the requested columns in memory.
"""

from __future__ import annotations

import csv
import json
import logging
import sys
from collections import Counter, deque
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from textclass.errors import ConfigError, DataError

log = logging.getLogger(__name__)

BAD_ROW_POLICIES = ("error", "skip")
FORMATS = ("csv", "tsv", "jsonl", "parquet", "hf")
EXTENSIONS = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".json": "jsonl", ".parquet": "parquet"}
PROGRESS_ROWS = 250_000  # log progress every this many rows
# a CSV field may be far longer than the csv module's 128 KiB default (a whole document)
csv.field_size_limit(sys.maxsize)

Row = tuple[int, list[Any]]


@dataclass
class SkippedRows:
    """What `on_bad_row=skip` left out of one file, by reason."""

    path: Path | str
    by_reason: Counter = field(default_factory=Counter)

    @property
    def total(self) -> int:
        return sum(self.by_reason.values())

    def record(self, where: str, reason: str, detail: str, on_bad_row: str) -> None:
        """Count a bad row under `reason`, or stop naming `where` (file:line) when `on_bad_row` is "error"."""
        if on_bad_row == "error":
            raise DataError(
                f"{where}: {detail}; fix the row, or set data.dataset.on_bad_row=skip to skip bad rows and report them"
            )
        self.by_reason[reason] += 1

    def summary(self) -> str:
        reasons = ", ".join(f"{n} {reason}" for reason, n in sorted(self.by_reason.items()))
        return f"skipped {self.total} bad rows in {self.path} ({reasons})"


def check_bad_row_policy(on_bad_row: str) -> None:
    if on_bad_row not in BAD_ROW_POLICIES:
        raise ConfigError(f"data.dataset.on_bad_row={on_bad_row!r} is not one of {BAD_ROW_POLICIES}")


def detect_format(path: Path, fmt: str | None) -> str:
    """`fmt` when given, else the format its extension names; an unknown one is an error saying what to set."""
    if fmt is not None:
        if fmt not in FORMATS:
            raise ConfigError(f"data.dataset.format={fmt!r} is not one of {FORMATS}")
        return fmt
    if path.is_dir():
        return "hf"
    found = EXTENSIONS.get(path.suffix.lower())
    if found is None:
        raise ConfigError(
            f"{path}: cannot tell the format from the extension {path.suffix or '(none)'!r}; "
            f"name the file .csv, .tsv, .jsonl, .json or .parquet, or set data.dataset.format to one of {FORMATS[:4]}"
        )
    return found


def where(path: Path | str, fmt: str, row: int) -> str:
    """`file:line` for text formats, `file row N` for columnar ones."""
    return f"{path}:{row}" if fmt in ("csv", "tsv", "jsonl") else f"{path} row {row}"


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


def file_problem(path: Path) -> str | None:
    """Why `path` cannot be read as a data file (missing, a directory, a dangling or looping link), or None."""
    try:
        if path.is_file():
            return None
        if path.is_dir():
            return "is a directory, not a data file"
        if path.is_symlink():
            return "is a symbolic link that leads nowhere (broken, or a loop); point it at the file or replace it"
    except OSError as err:  # ELOOP, ENAMETOOLONG, EACCES on a parent folder
        return f"cannot be opened ({err.strerror or err})"
    return "does not exist" if not path.exists() else "is not a regular file"


def open_data_file(path: Path) -> BinaryIO:
    check_data_file(path)
    try:
        return path.open("rb")
    except OSError as err:
        raise DataError(f"cannot read data file {path} ({err.strerror or err}); check its permissions") from None


def read_bytes(path: Path) -> bytes:
    """The bytes of a data file; a missing, unreadable or non-regular file is one clear error."""
    with open_data_file(path) as f:
        return f.read()


def text_lines(f: BinaryIO, path: Path, skipped: SkippedRows, on_bad_row: str) -> Iterator[str]:
    """The file's lines decoded (BOM dropped, line ends kept); a line that is not UTF-8 is a bad row
    (blanked when skipped); in the header it is always an error."""
    size = max(path.stat().st_size, 1)
    lines = enumerate(f, start=1)
    while True:
        try:
            lineno, raw = next(lines)
        except StopIteration:
            return
        except OSError as err:  # EIO and the like, mid-file
            raise DataError(f"cannot read data file {path} ({err.strerror or err}); check the file and its permissions") from None
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as err:
            if lineno == 1:
                decode_utf8(raw, path)
            detail = f"not valid UTF-8 (byte {raw[err.start : err.start + 1]!r} at offset {f.tell() - len(raw) + err.start}); re-save the file as UTF-8"
            skipped.record(f"{path}:{lineno}", "bad UTF-8", detail, on_bad_row)
            line = "\n"
        if lineno == 1:
            line = line.removeprefix("\ufeff")
        elif lineno % PROGRESS_ROWS == 0:
            log.info("%s: read %d lines (%.0f%%)", path, lineno, 100 * f.tell() / size)
        yield line


def column_indices(found: Sequence[str], columns: Sequence[str], source: str) -> list[int]:
    """Positions of `columns` among the `found` header names; a missing one lists what the file has,
    one named twice is an error (which of the two is meant?)."""
    missing = [c for c in columns if c not in found]
    if missing:
        raise DataError(
            f"{source}: header has no column {missing[0]!r} (columns found: {', '.join(map(repr, found))}); "
            "set data.dataset.text_column / label_column (or text_pair_column, label_columns) to the file's names"
        )
    twice = [c for c in columns if list(found).count(c) > 1]
    if twice:
        raise DataError(f"{source}: the header names the column {twice[0]!r} {list(found).count(twice[0])} times; rename all but one of them")
    return [list(found).index(c) for c in columns]


def read_rows(path: Path, fmt: str, columns: Sequence[str], skipped: SkippedRows, on_bad_row: str) -> Iterator[Row]:
    """(row number, [value of each of `columns`]) for every row of a data file in format `fmt`."""
    readers = {"tsv": _tsv_rows, "csv": _csv_rows, "jsonl": _jsonl_rows, "parquet": _parquet_rows}
    if fmt == "hf":
        raise ConfigError(f"{path}: a Hugging Face dataset is read with data=hf, not as a file")
    yield from readers[fmt](path, columns, skipped, on_bad_row)


def _tsv_rows(path: Path, columns: Sequence[str], skipped: SkippedRows, on_bad_row: str) -> Iterator[Row]:
    """Tab-separated, no quoting (GLUE's convention: quotes are text), exact field count per header."""
    with open_data_file(path) as f:
        lines = text_lines(f, path, skipped, on_bad_row)
        header = next(lines, "").rstrip("\r\n")
        if not header:
            raise DataError(f"{path}:1: no header line (the file is empty); the first line must name the columns")
        found = header.split("\t")
        indices = column_indices(found, columns, f"{path}:1")
        for lineno, line in enumerate(lines, start=2):
            line = line.rstrip("\r\n")
            if not line:
                continue
            fields = line.split("\t")
            if len(fields) != len(found):
                skipped.record(f"{path}:{lineno}", "wrong field count", f"{len(fields)} fields instead of {len(found)} in {line[:80]!r}", on_bad_row)
                continue
            yield lineno, [fields[i] for i in indices]


class LineFeed:
    """The lines a csv.reader reads, numbered; those of a record it rejects can be fed to it again.

    A quote that is never closed makes the reader take every line up to the next quote (or the end of
    the file) as one field: skipping that "row" would drop the good rows inside it, and reporting it
    where it ends would name the wrong line. The reader reads no further than the record it returns,
    so the lines taken since the last record are exactly that record's.
    """

    def __init__(self, lines: Iterator[str]) -> None:
        self.lines = enumerate(lines, start=1)
        self.pending: deque[tuple[int, str]] = deque()
        self.taken: list[tuple[int, str]] = []

    def __iter__(self) -> LineFeed:
        return self

    def __next__(self) -> str:
        item = self.pending.popleft() if self.pending else next(self.lines)
        self.taken.append(item)
        return item[1]

    def record(self) -> list[tuple[int, str]]:
        """The (line number, line) pairs of the record just read."""
        taken, self.taken = self.taken, []
        return taken

    def again(self, items: list[tuple[int, str]]) -> None:
        self.pending.extendleft(reversed(items))


def _csv_rows(path: Path, columns: Sequence[str], skipped: SkippedRows, on_bad_row: str) -> Iterator[Row]:
    """Comma-separated with standard quoting (a quoted field may hold commas, quotes and newlines).
    A bad record that spans several lines (an unclosed quote, most likely) is reported at the line
    where it starts, and only that line is skipped: the lines after it are read again as rows."""
    with open_data_file(path) as f:
        feed = LineFeed(text_lines(f, path, skipped, on_bad_row))
        reader = csv.reader(feed, strict=True)
        try:
            found = next(reader, None)
        except csv.Error as err:
            raise DataError(f"{path}:1: malformed CSV header ({err})") from None
        if not found:
            raise DataError(f"{path}:1: no header line (the file is empty); the first line must name the columns")
        feed.record()
        indices = column_indices(found, columns, f"{path}:1")
        while True:
            try:
                fields = next(reader)
            except StopIteration:
                return
            except csv.Error as err:
                bad_record(feed, path, f"malformed CSV ({err})", "bad quoting", skipped, on_bad_row)
                continue
            if not fields:
                feed.record()
                continue
            if len(fields) != len(found):
                bad_record(feed, path, f"{len(fields)} fields instead of {len(found)}", "wrong field count", skipped, on_bad_row)
                continue
            yield feed.record()[0][0], [fields[i] for i in indices]


def bad_record(feed: LineFeed, path: Path, problem: str, reason: str, skipped: SkippedRows, on_bad_row: str) -> None:
    """Report (or skip) the record the reader just rejected, at its first line; a record of several
    lines gives back all but its first to the reader."""
    lines = feed.record()
    first, last = lines[0][0], lines[-1][0]
    if len(lines) > 1:
        problem = f"a quote opened on this line is not closed where the row ends: the field runs on to line {last} ({problem})"
    skipped.record(f"{path}:{first}", reason, problem, on_bad_row)
    feed.again(lines[1:])


def _jsonl_rows(path: Path, columns: Sequence[str], skipped: SkippedRows, on_bad_row: str) -> Iterator[Row]:
    """One JSON object a line (a file holding one JSON array of objects is read too)."""
    with open_data_file(path) as f:
        first = f.read(64).lstrip(b"\xef\xbb\xbf \t\r\n")
        f.seek(0)
        if first.startswith(b"["):
            yield from _json_array_rows(path, f, columns, skipped, on_bad_row)
            return
        seen_columns = False
        for lineno, line in enumerate(text_lines(f, path, skipped, on_bad_row), start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                skipped.record(f"{path}:{lineno}", "bad JSON", f"not a JSON object ({err.msg}, column {err.colno})", on_bad_row)
                continue
            values = _record_values(record, columns, f"{path}:{lineno}", skipped, on_bad_row, first=not seen_columns)
            seen_columns = True
            if values is not None:
                yield lineno, values


def _json_array_rows(path: Path, f: BinaryIO, columns: Sequence[str], skipped: SkippedRows, on_bad_row: str) -> Iterator[Row]:
    try:
        records = json.loads(decode_utf8(f.read(), path))
    except json.JSONDecodeError as err:
        raise DataError(f"{path}:{err.lineno}: not valid JSON ({err.msg}); write one JSON object a line (.jsonl)") from None
    if not isinstance(records, list):
        raise DataError(f"{path}: a JSON array of objects or one object a line was expected, not a {type(records).__name__}")
    for i, record in enumerate(records, start=1):
        values = _record_values(record, columns, f"{path} item {i}", skipped, on_bad_row, first=i == 1)
        if values is not None:
            yield i, values


def _record_values(record: Any, columns: Sequence[str], source: str, skipped: SkippedRows, on_bad_row: str, first: bool) -> list | None:
    if not isinstance(record, dict):
        skipped.record(source, "bad JSON", f"a JSON object was expected, not {type(record).__name__}", on_bad_row)
        return None
    missing = [c for c in columns if c not in record]
    if missing:
        if first:  # the first object tells the file's columns: name them all
            column_indices(list(record), columns, source)
        skipped.record(source, "missing column", f"no {missing[0]!r} key (keys: {', '.join(map(repr, record))})", on_bad_row)
        return None
    return [record[c] for c in columns]


def _parquet_rows(path: Path, columns: Sequence[str], skipped: SkippedRows, on_bad_row: str) -> Iterator[Row]:
    import pyarrow.parquet as pq

    check_data_file(path)
    try:
        file = pq.ParquetFile(path)
    except Exception as err:  # pyarrow raises ArrowInvalid, OSError...
        raise DataError(f"{path}: not a readable Parquet file ({type(err).__name__}: {err})") from None
    column_indices(file.schema_arrow.names, columns, str(path))
    try:
        yield from table_rows(file.iter_batches(batch_size=65_536, columns=list(columns)), columns, str(path), file.metadata.num_rows)
    except OSError as err:  # pyarrow's ArrowInvalid / IOError on a damaged file
        raise DataError(f"{path}: cannot read the Parquet data ({type(err).__name__}: {err})") from None


def table_rows(batches: Iterable[Any], columns: Sequence[str], source: str, total: int) -> Iterator[Row]:
    """Rows of Arrow record batches (Parquet, Hugging Face datasets), numbered from 1."""
    row = 0
    for batch in batches:
        data = batch.to_pydict() if hasattr(batch, "to_pydict") else batch
        for values in zip(*(data[c] for c in columns)):
            row += 1
            yield row, list(values)
        if total > PROGRESS_ROWS:
            log.info("%s: read %d of %d rows (%.0f%%)", source, row, total, 100 * row / total)
