"""A labeled text dataset: the user's files (or a Hugging Face dataset), read by one generic reader.

Built-in datasets are configurations of it (conf/data/news.yaml, sst2.yaml) plus the `archive`
step that builds their split files from the raw download.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from textclass.data.download import download
from textclass.data.formats import Row, SkippedRows, check_bad_row_policy, check_data_file, detect_format, read_rows, table_rows, where
from textclass.data.labels import LabelCoder, LabelSet, not_text
from textclass.data.splits import SPLITS, strata, stratified_split
from textclass.errors import ConfigError, DataError

log = logging.getLogger(__name__)


@dataclass
class Examples:
    """One split: texts (and their pair texts), label ids, and the source row of each."""

    texts: list[str]
    labels: np.ndarray  # int64 [N] class ids, or uint8 [N, C] 0/1 per label when multi-label
    rows: np.ndarray  # int64 [N] row (line) number of each example in its file
    pairs: list[str] | None = None

    def __len__(self) -> int:
        return len(self.texts)

    def take(self, index: np.ndarray | slice) -> Examples:
        idx = np.arange(len(self))[index] if isinstance(index, slice) else index
        pairs = None if self.pairs is None else [self.pairs[i] for i in idx]
        return Examples([self.texts[i] for i in idx], self.labels[idx], self.rows[idx], pairs)

    @staticmethod
    def concat(parts: Sequence[Examples]) -> Examples:
        pairs = None if parts[0].pairs is None else [p for part in parts for p in part.pairs]
        return Examples(
            [t for part in parts for t in part.texts],
            np.concatenate([p.labels for p in parts]),
            np.concatenate([p.rows for p in parts]),
            pairs,
        )


class Archive(Protocol):
    """Builds a built-in dataset's split files from its raw download (news, SST-2)."""

    url: str
    archive_names: tuple[str, ...]  # local files accepted, in order of preference; the last is downloaded

    def build(self, archive: Path, root: Path, on_bad_row: str) -> None: ...


@dataclass
class TextDataset:
    """Labeled texts from files: one per split, or one file split by `split_fractions`.

    train / valid / test: file paths (relative to `root` when it is set); format from the
    extension (.csv, .tsv, .jsonl/.json, .parquet) unless `format` is given. Labels may be strings
    or ints; the classes are train's labels sorted, or `labels` in the order given, and
    `label_names` (aligned with `labels`) are the names predictions show.
    """

    train: str | None = None
    valid: str | None = None
    test: str | None = None
    root: str | None = None
    name: str = "files"
    format: str | None = None
    text_column: str = "text"
    text_pair_column: str | None = None
    label_column: str = "label"
    labels: list[str | int] | None = None
    label_names: list[str] | None = None
    multi_label: bool = False
    label_separator: str = "|"  # multi-label: labels joined in one string (a JSON list works too)
    label_columns: list[str] | None = None  # multi-label: one 0/1 column per label instead of label_column
    split_fractions: list[float] | None = None  # one file (train) split into train, valid[, test]
    split_seed: int = 123
    pretokenized: bool = False  # texts are space-separated tokens already (tokenizer.split=auto)
    on_bad_row: str = "error"  # error | skip (skipped rows are counted and reported)
    download: bool = True  # a built-in dataset may download its archive when its files are missing
    archive: Archive | None = None  # builds missing split files (built-in datasets)
    missing_test_reason: str | None = None  # set: a missing test file is allowed, and this says why

    def __post_init__(self) -> None:
        check_bad_row_policy(self.on_bad_row)
        if not self.train:
            raise ConfigError("data.dataset.train is required: data.dataset.train=path/to/train.csv (or .tsv, .jsonl, .parquet)")
        if self.multi_label and not self.label_columns and not self.label_separator:
            raise ConfigError("data.dataset.label_separator='' splits nothing: give the character that joins a row's labels, e.g. '|' (or write them as a JSON list)")
        if self.split_fractions is not None:
            if not isinstance(self.split_fractions, (list, tuple)) or not all(isinstance(f, (int, float)) and not isinstance(f, bool) for f in self.split_fractions):
                raise ConfigError(
                    f"data.dataset.split_fractions={self.split_fractions!r} must be a list of 2 or 3 fractions (train, valid[, test]), "
                    "e.g. data.dataset.split_fractions=[0.8,0.1,0.1]"
                )
            fractions = list(self.split_fractions)
            if len(fractions) not in (2, 3) or min(fractions) <= 0 or abs(sum(fractions) - 1) > 1e-6:
                raise ConfigError(
                    f"data.dataset.split_fractions={fractions} must be 2 or 3 positive fractions "
                    "(train, valid[, test]) summing to 1"
                )
            if self.valid or self.test:
                raise ConfigError("data.dataset.split_fractions splits the train file alone: drop data.dataset.valid/test, or the fractions")
        if self.label_names is not None and (self.labels is None or len(self.label_names) != len(self.labels)):
            raise ConfigError("data.dataset.label_names needs data.dataset.labels, one name per label")
        if self.label_columns and not self.multi_label:
            raise ConfigError("data.dataset.label_columns (one 0/1 column per label) needs data.dataset.multi_label=true")

    # --- files ------------------------------------------------------------------------------
    def file(self, split: str) -> Path | None:
        name = getattr(self, split)
        if not name:
            return None
        return (Path(self.root).expanduser() / name) if self.root else Path(name).expanduser()

    def file_splits(self) -> list[str]:
        """The splits read from their own file, as configured (before any split of one file)."""
        found = [s for s in SPLITS if self.file(s) is not None]
        if "test" in found and self.missing_test_reason and not os.path.lexists(self.file("test")):
            found.remove("test")
        return found

    def splits(self) -> list[str]:
        """The splits this dataset has once read: its files', or those of `split_fractions`."""
        if self.split_fractions is not None:
            return list(SPLITS[: len(self.split_fractions)])
        return self.file_splits()

    def prepare(self) -> None:
        """Make sure the split files exist: built from a local archive (or a download) where the dataset has one."""
        required = [self.file(s) for s in ("train", "valid") if self.file(s) is not None]
        for path in required:
            if os.path.lexists(path):
                check_data_file(path)
        if all(p.is_file() for p in required):
            return
        if self.archive is None:
            missing = next(p for p in required if not p.is_file())
            check_data_file(missing)
        root = Path(self.root).expanduser()
        archive = next((root / n for n in self.archive.archive_names if (root / n).exists()), None)
        if archive is None:
            if not self.download:
                raise DataError(self._missing_message(required) + " (download is off: data.dataset.download=false)")
            archive = download(self.archive.url, root / self.archive.archive_names[-1], self._manual_hint(required))
        self.archive.build(archive, root, self.on_bad_row)
        if not all(p.is_file() for p in required):
            raise DataError(f"building {self.name} from {archive} did not produce {', '.join(map(str, required))}")

    def _manual_hint(self, required: list[Path]) -> str:
        root = Path(self.root).expanduser()
        return (
            f"Download {self.archive.url} on a machine with internet and put it at {root / self.archive.archive_names[-1]}, "
            f"or point TEXTCLASS_DATA_DIR (or paths.data_dir) at a directory whose {root.name}/ holds "
            f"{' and '.join(p.name for p in required)}."
        )

    def _missing_message(self, required: list[Path]) -> str:
        root = Path(self.root).expanduser()
        return (
            f"{self.name} data not found: expected {' and '.join(map(str, required))}, or one of "
            f"{', '.join(self.archive.archive_names)} in {root}. Either run online with data.dataset.download=true "
            f"to fetch {self.archive.url}, or set TEXTCLASS_DATA_DIR (or paths.data_dir) to a directory that "
            f"contains {root.name}/{required[0].name}"
        )

    # --- reading ----------------------------------------------------------------------------
    def columns(self) -> list[str]:
        label_columns = list(self.label_columns) if self.label_columns else [self.label_column]
        return [self.text_column, *([self.text_pair_column] if self.text_pair_column else []), *label_columns]

    def rows(self, split: str) -> tuple[str, str, Iterator[Row], SkippedRows]:
        """(source name, format, rows, skipped-row counter) of one configured split."""
        return self.file_rows(self.file(split))

    def file_rows(self, path: Path) -> tuple[str, str, Iterator[Row], SkippedRows]:
        """(source name, format, rows, skipped-row counter) of a data file in this dataset's columns."""
        fmt = detect_format(path, self.format)
        skipped = SkippedRows(path)
        return str(path), fmt, read_rows(path, fmt, self.columns(), skipped, self.on_bad_row), skipped

    def read(self, labels: LabelSet | None = None) -> tuple[dict[str, Examples], LabelSet, dict[str, dict[str, int]]]:
        """Every split (one file split by `split_fractions`), the label set, and skipped rows per split.

        labels: the classes to map to (a trained run's); default: `labels` if given, else train's.
        """
        labels = labels or self.given_labels()
        data, skipped = {}, {}
        for split in self.file_splits():
            examples, labels, skipped_rows = self.read_split(split, labels)
            data[split] = examples
            if skipped_rows.total:
                skipped[split] = dict(skipped_rows.by_reason)
        if self.split_fractions is not None:
            parts = stratified_split(strata(data["train"].labels), list(self.split_fractions), self.split_seed)
            data = {split: data["train"].take(idx) for split, idx in parts.items()}
            empty = [split for split, examples in data.items() if len(examples) == 0]
            if empty:
                raise DataError(
                    f"data.dataset.split_fractions={list(self.split_fractions)} leaves the {empty[0]} split of {self.file('train')} empty "
                    f"({sum(map(len, data.values()))} rows in all): give it a larger fraction, or use more data"
                )
        return data, labels, skipped

    def given_labels(self) -> LabelSet | None:
        if self.label_columns:
            return LabelSet(tuple(self.label_columns), tuple(self.label_names or self.label_columns), True)
        if self.labels is None:
            return None
        values = tuple(str(v) for v in self.labels)
        if len(set(values)) != len(values):
            raise ConfigError(f"data.dataset.labels={list(values)} lists a label twice")
        return LabelSet(values, tuple(self.label_names or values), self.multi_label)

    def read_split(self, split: str, labels: LabelSet | None) -> tuple[Examples, LabelSet, SkippedRows]:
        """One split's examples; `labels` None (train, no `labels` given): the sorted labels found."""
        source, fmt, rows, skipped = self.rows(split)
        examples, labels = read_examples(self, source, fmt, rows, skipped, labels)
        if skipped.total:
            log.warning(skipped.summary())
        return examples, labels, skipped

    def read_file(self, path: Path, labels: LabelSet) -> Examples:
        """A labeled file in this dataset's columns (e.g. for textclass-eval file=...)."""
        examples, _ = read_examples(self, *self.file_rows(path), labels)
        return examples

    def fingerprint(self, digest) -> dict:
        """What decides what `read` returns, for cache keys: file contents (by `digest(path)`) and reading options."""
        options = {k: v for k, v in vars(self).items() if k not in ("train", "valid", "test", "root", "archive", "download")}
        return {"files": {s: [str(self.file(s).resolve()), digest(self.file(s))] for s in self.file_splits()}, **options}


def read_examples(
    dataset: TextDataset, source: str, fmt: str, rows: Iterator[Row], skipped: SkippedRows, labels: LabelSet | None
) -> tuple[Examples, LabelSet]:
    """Texts, pair texts and label ids from `rows` ([text, (pair,) label or label columns...])."""
    has_pair = dataset.text_pair_column is not None
    coder = LabelCoder(labels, dataset, source)
    texts: list[str] = []
    pairs: list[str] = []
    numbers: list[int] = []
    for row, values in rows:
        problem = not_text(values[0], dataset.text_column) or (not_text(values[1], dataset.text_pair_column) if has_pair else None)
        if problem is not None:
            skipped.record(where(source, fmt, row), "not text", problem, dataset.on_bad_row)
            continue
        text = "" if values[0] is None else str(values[0]).strip()
        if not text:
            skipped.record(where(source, fmt, row), "empty text", f"empty text in column {dataset.text_column!r}", dataset.on_bad_row)
            continue
        label_values = values[2:] if has_pair else values[1:]
        problem = coder.add(label_values, where(source, fmt, row))
        if problem is not None:
            skipped.record(where(source, fmt, row), *problem, dataset.on_bad_row)
            continue
        texts.append(text)
        if has_pair:
            pairs.append("" if values[1] is None else str(values[1]).strip())
        numbers.append(row)
    if not texts:
        raise DataError(f"{source}: no usable rows" + (f" ({skipped.summary()})" if skipped.total else ""))
    label_set, ids = coder.finish()
    return Examples(texts, ids, np.asarray(numbers, dtype=np.int64), pairs if has_pair else None), label_set


@dataclass
class HubDataset(TextDataset):
    """A Hugging Face `datasets` dataset: a `save_to_disk` directory (`path`), or `name` (+ `config`) loaded online.

    train / valid / test name the dataset's splits (a directory holding one Dataset is its train).
    """

    path: str | None = None
    config: str | None = None
    train: str | None = "train"
    valid: str | None = "validation"
    test: str | None = "test"
    name: str = "hf"
    format: str | None = "hf"
    _loaded: Any = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.split_fractions is not None:  # one split (train) of the dataset is split instead
            self.valid = self.test = None
        super().__post_init__()
        if not self.path and self.name == "hf":
            raise ConfigError("data=hf needs data.dataset.path=<a directory written by save_to_disk> or data.dataset.name=<hub name>")

    def hf(self) -> Any:
        if self._loaded is None:
            self._loaded = load_hf(self.path, self.name, self.config, self.download)
        return self._loaded

    def file_splits(self) -> list[str]:
        loaded = self.hf()
        names = list(loaded.keys()) if hasattr(loaded, "keys") else [self.train]
        if self.train not in names:
            raise DataError(f"{self.source()}: no split {self.train!r} (it has {names}); set data.dataset.train to one of them")
        return [s for s in SPLITS if getattr(self, s) in names]

    def source(self) -> str:
        return self.path or self.name

    def prepare(self) -> None:
        self.hf()

    def rows(self, split: str) -> tuple[str, str, Iterator[Row], SkippedRows]:
        loaded = self.hf()
        table = loaded[getattr(self, split)] if hasattr(loaded, "keys") else loaded
        source = f"{self.source()}[{getattr(self, split)}]"
        missing = [c for c in self.columns() if c not in table.column_names]
        if missing:
            raise DataError(
                f"{source}: no column {missing[0]!r} (columns found: {', '.join(map(repr, table.column_names))}); "
                "set data.dataset.text_column / label_column to the dataset's names"
            )
        # ClassLabel columns hold ints: read their names, so labels are the dataset's own
        feature = table.features.get(self.label_column) if not self.label_columns else None
        names = getattr(feature, "names", None)
        batches = table.select_columns(self.columns()).iter(batch_size=65_536)
        if names:
            batches = ({**b, self.label_column: [names[i] if i is not None and i >= 0 else None for i in b[self.label_column]]} for b in batches)
        skipped = SkippedRows(source)
        return source, "hf", table_rows(batches, self.columns(), source, len(table)), skipped

    def fingerprint(self, digest) -> dict:
        loaded = self.hf()
        parts = [loaded[n] for n in loaded] if hasattr(loaded, "keys") else [loaded]
        options = {k: v for k, v in vars(self).items() if k not in ("_loaded", "archive", "download")}
        return {"fingerprints": [p._fingerprint for p in parts], **options}


def load_hf(path: str | None, name: str, config: str | None, allow_download: bool) -> Any:
    import datasets

    if path:
        if not (Path(path) / "dataset_dict.json").is_file() and not (Path(path) / "dataset_info.json").is_file():
            raise DataError(
                f"data.dataset.path={path} is not a directory written by save_to_disk (no dataset_dict.json or "
                "dataset_info.json in it); save one with datasets.load_dataset(...).save_to_disk(path)"
            )
        try:
            return datasets.load_from_disk(path)
        except Exception as err:  # datasets raises FileNotFoundError, ValueError...
            raise DataError(f"cannot load the Hugging Face dataset at {path} ({type(err).__name__}: {err})") from None
    if not allow_download:
        raise DataError(f"data.dataset.name={name} would load from the Hugging Face hub, but data.dataset.download=false")
    try:
        return datasets.load_dataset(name, config)
    except Exception as err:  # offline: ConnectionError, or datasets' own errors about the missing cache
        raise DataError(
            f"cannot load the Hugging Face dataset {name!r} ({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}); "
            "offline, save it on a machine with internet (datasets.load_dataset(name).save_to_disk(dir)), copy the "
            "directory here and set data.dataset.path=dir"
        ) from None
