"""UCI News Aggregator: the archive step that builds news/train, valid, test.tsv from the raw download.

The dataset itself is read like any other (conf/data/news.yaml): this module only turns
newsCorpora.csv (or the UCI zip around it) into the NLP100 split files: the five-publisher subset,
stratified 80/10/10, seeded.
"""

from __future__ import annotations

import logging
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np

from textclass.data.splits import stratified_split
from textclass.data.formats import SkippedRows, decode_utf8, read_bytes
from textclass.errors import ConfigError, DataError

log = logging.getLogger(__name__)

RAW_MEMBER = "newsCorpora.csv"
RAW_COLUMNS = ("ID", "TITLE", "URL", "PUBLISHER", "CATEGORY", "STORY", "HOSTNAME", "TIMESTAMP")
CATEGORY_CODES = ("b", "t", "e", "m")
DEFAULT_PUBLISHERS = ("Reuters", "Huffington Post", "Businessweek", "Contactmusic.com", "Daily Mail")
SPLIT_FILES = {"train": "train.tsv", "valid": "valid.tsv", "test": "test.tsv"}
HEADER = ("category", "title")


@dataclass
class NewsArchive:
    publishers: list[str] = field(default_factory=lambda: list(DEFAULT_PUBLISHERS))
    split_seed: int = 123
    split_fractions: list[float] = field(default_factory=lambda: [0.8, 0.1, 0.1])

    url: ClassVar[str] = "https://archive.ics.uci.edu/ml/machine-learning-databases/00359/NewsAggregatorDataset.zip"
    archive_names: ClassVar[tuple[str, ...]] = (RAW_MEMBER, "NewsAggregatorDataset.zip")

    def __post_init__(self) -> None:
        if len(self.split_fractions) != 3 or abs(sum(self.split_fractions) - 1) > 1e-6 or min(self.split_fractions) <= 0:
            raise ConfigError(
                f"data.dataset.archive.split_fractions={list(self.split_fractions)} must be three positive "
                "fractions (train, valid, test) summing to 1"
            )
        if not self.publishers:
            raise ConfigError("data.dataset.archive.publishers is empty: name at least one publisher")

    def build(self, archive: Path, root: Path, on_bad_row: str) -> None:
        titles, categories, skipped = read_raw_news(archive, set(self.publishers), on_bad_row)
        if skipped.total:
            log.warning(skipped.summary())
        if not titles:
            raise DataError(f"{archive}: no headlines from publishers {list(self.publishers)}")
        labels = np.array([CATEGORY_CODES.index(c) for c in categories])
        parts = stratified_split(labels, self.split_fractions, self.split_seed)
        root.mkdir(parents=True, exist_ok=True)
        for split, idx in parts.items():
            write_tsv(root / SPLIT_FILES[split], HEADER, [(categories[i], titles[i]) for i in idx])
        sizes = {s: len(i) for s, i in parts.items()}
        log.info("news: %d headlines from %d publishers split %s into %s", len(titles), len(self.publishers), sizes, root)


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
    skipped = SkippedRows(label)
    publisher_col, title_col, category_col = RAW_COLUMNS.index("PUBLISHER"), RAW_COLUMNS.index("TITLE"), RAW_COLUMNS.index("CATEGORY")
    for lineno, line in enumerate(text.split("\n"), start=1):
        line = line.rstrip("\r")
        if not line:
            continue
        fields = line.split("\t")
        if len(fields) != len(RAW_COLUMNS):
            reason, detail = "wrong field count", f"{len(fields)} fields instead of {len(RAW_COLUMNS)} in {line[:80]!r}"
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
        skipped.record(f"{label}:{lineno}", reason, detail, on_bad_row)
    return titles, categories, skipped


def write_tsv(path: Path, header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    """Write rows atomically, so a crash never leaves a half-written split behind."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    with tmp.open("w", encoding="utf-8", newline="\n") as f:
        f.write("\t".join(header) + "\n")
        for row in rows:
            f.write("\t".join(row) + "\n")
    tmp.replace(path)
