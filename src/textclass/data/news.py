"""UCI News Aggregator headlines: 4 topics, the five-publisher subset, stratified 80/10/10 split."""

from __future__ import annotations

import logging
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np

from textclass.data.base import TsvDataset
from textclass.data.tsv import SkippedRows, decode_utf8, iter_rows, read_bytes, write_labeled_tsv
from textclass.errors import ConfigError, DataError

log = logging.getLogger(__name__)

RAW_MEMBER = "newsCorpora.csv"
RAW_COLUMNS = ("ID", "TITLE", "URL", "PUBLISHER", "CATEGORY", "STORY", "HOSTNAME", "TIMESTAMP")
CATEGORY_CODES = ("b", "t", "e", "m")
DEFAULT_PUBLISHERS = ("Reuters", "Huffington Post", "Businessweek", "Contactmusic.com", "Daily Mail")


@dataclass
class NewsAggregator(TsvDataset):
    publishers: list[str] = field(default_factory=lambda: list(DEFAULT_PUBLISHERS))
    split_seed: int = 123
    split_fractions: list[float] = field(default_factory=lambda: [0.8, 0.1, 0.1])

    name: ClassVar[str] = "news"
    url: ClassVar[str] = "https://archive.ics.uci.edu/ml/machine-learning-databases/00359/NewsAggregatorDataset.zip"
    header: ClassVar[tuple[str, str]] = ("category", "title")
    text_column: ClassVar[str] = "title"
    label_column: ClassVar[str] = "category"
    label_codes: ClassVar[tuple[str, ...]] = CATEGORY_CODES
    class_names: ClassVar[tuple[str, ...]] = ("business", "science/technology", "entertainment", "health")
    split_file_names: ClassVar[dict[str, str]] = {"train": "train.tsv", "valid": "valid.tsv", "test": "test.tsv"}
    archive_names: ClassVar[tuple[str, ...]] = (RAW_MEMBER, "NewsAggregatorDataset.zip")
    predict_file: ClassVar[tuple[str, tuple[str, ...], str]] = ("test.tsv", ("category", "title"), "title")
    missing_test_reason: ClassVar[str] = (
        "test.tsv is not in the data directory (a pre-split copy may hold train and valid only); "
        "build the split from the raw UCI archive to get one, or evaluate on valid"
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if len(self.split_fractions) != 3 or abs(sum(self.split_fractions) - 1) > 1e-6 or min(self.split_fractions) <= 0:
            raise ConfigError(
                f"data.dataset.split_fractions={list(self.split_fractions)} must be three positive "
                "fractions (train, valid, test) summing to 1"
            )
        if not self.publishers:
            raise ConfigError("data.dataset.publishers is empty: name at least one publisher")

    def build_splits(self, archive: Path) -> None:
        titles, categories, skipped = read_raw_news(archive, set(self.publishers), self.on_bad_row)
        if skipped.total:
            log.warning(skipped.summary())
        if not titles:
            raise DataError(f"{archive}: no headlines from publishers {list(self.publishers)}")
        labels = np.array([CATEGORY_CODES.index(c) for c in categories])
        parts = stratified_split(labels, self.split_fractions, self.split_seed)
        self.root_path.mkdir(parents=True, exist_ok=True)
        for split, idx in parts.items():
            rows = [(categories[i], titles[i]) for i in idx]
            write_labeled_tsv(self.split_path(split), self.header, rows)
        sizes = {s: len(i) for s, i in parts.items()}
        log.info("news: %d headlines from %d publishers split %s into %s", len(titles), len(self.publishers), sizes, self.root_path)


def read_raw_news(source: Path, publishers: set[str], on_bad_row: str) -> tuple[list[str], list[str], SkippedRows]:
    """Titles and category codes of the given publishers from `newsCorpora.csv` or the UCI zip.

    The file is tab-separated with unbalanced double quotes in titles, so no quoting is applied.
    """
    label = f"{source}!{RAW_MEMBER}" if source.suffix == ".zip" else str(source)
    try:
        if source.suffix == ".zip":
            with zipfile.ZipFile(source) as zf:
                data = zf.read(RAW_MEMBER)
        else:
            data = read_bytes(source)
    except (zipfile.BadZipFile, KeyError) as err:
        raise DataError(f"{source}: not a UCI News Aggregator zip with member {RAW_MEMBER} ({err}); delete it and download again") from None
    text = decode_utf8(data, label)
    titles: list[str] = []
    categories: list[str] = []
    skipped = SkippedRows(Path(label))
    publisher_col, title_col, category_col = RAW_COLUMNS.index("PUBLISHER"), RAW_COLUMNS.index("TITLE"), RAW_COLUMNS.index("CATEGORY")
    for lineno, fields in iter_rows(text, len(RAW_COLUMNS)):
        if isinstance(fields, str):
            reason = "wrong field count"
            detail = fields
        elif fields[publisher_col] not in publishers:
            continue
        elif fields[category_col] not in CATEGORY_CODES:
            reason, detail = "unknown label", f"unknown category {fields[category_col]!r} (expected one of {CATEGORY_CODES})"
        elif not fields[title_col].strip():
            reason = detail = "empty text"
        else:
            titles.append(fields[title_col].strip())
            categories.append(fields[category_col])
            continue
        skipped.record(lineno, reason, detail, on_bad_row)
    return titles, categories, skipped


def stratified_split(labels: np.ndarray, fractions: list[float], seed: int) -> dict[str, np.ndarray]:
    """Indices for train/valid/test, each class split by the same fractions; shuffled, seeded."""
    rng = np.random.default_rng(seed)
    parts: dict[str, list[np.ndarray]] = {"train": [], "valid": [], "test": []}
    for cls in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == cls))
        n_train = round(len(idx) * fractions[0])
        n_valid = round(len(idx) * fractions[1])
        parts["train"].append(idx[:n_train])
        parts["valid"].append(idx[n_train : n_train + n_valid])
        parts["test"].append(idx[n_train + n_valid :])
    return {split: rng.permutation(np.concatenate(chunks)) for split, chunks in parts.items()}
