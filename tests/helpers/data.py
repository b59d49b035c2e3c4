"""Tiny datasets written per test: the built-in datasets' layout, and own-data files in every format."""

from __future__ import annotations

import csv
import json
from pathlib import Path

NEWS_ROWS = [
    ("b", "Fed raises interest rates as inflation climbs"),
    ("b", "Stocks rally after strong earnings reports"),
    ("b", "Oil prices fall on weak demand, Fed warns"),
    ("t", "Apple unveils new iPhone with faster chip"),
    ("t", "Google tests self-driving cars in California"),
    ("e", "Kim Kardashian shows off new look at the Oscars"),
    ("e", "New Star Wars movie breaks box office records"),
    ("e", "Justin Bieber cancels concert tour"),
    ("m", "Ebola outbreak spreads in West Africa, WHO says"),
    ("m", "New study links sugar to heart disease"),
]
SST2_ROWS = [
    ("hide new secretions from the parental units ", "0"),
    ("contains no wit , only labored gags ", "0"),
    ("that loves its characters and communicates something rather beautiful about human nature ", "1"),
    ("remains utterly satisfied to remain the same throughout ", "0"),
    ("a gorgeous , witty , seductive movie . ", "1"),
    ("the movie is n't good ", "0"),
    ("an utterly charming and hilarious film ", "1"),
    ("xyzzyq plugh ", "1"),  # no word in GloVe: dropped when unknown words are dropped
]


def write_tsv(path: Path, header: str, rows: list[tuple[str, str]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(header + "\n" + "".join("\t".join(r) + "\n" for r in rows), encoding="utf-8")
    return path


def write_tiny_data(root: Path, *, sst2: bool = True, news_test: bool = True) -> Path:
    """`root` as a data root in the built-in datasets' layout: tiny news (train: NEWS_ROWS 3 times,
    valid: NEWS_ROWS, test: every other row, unless `news_test` is false, like the shared copy) and,
    unless `sst2` is false, SST-2 (train: SST2_ROWS 3 times, dev: SST2_ROWS)."""
    write_tsv(root / "news" / "train.tsv", "category\ttitle", NEWS_ROWS * 3)
    write_tsv(root / "news" / "valid.tsv", "category\ttitle", NEWS_ROWS)
    if news_test:
        write_tsv(root / "news" / "test.tsv", "category\ttitle", NEWS_ROWS[::2])
    if sst2:
        write_tsv(root / "sst2" / "train.tsv", "sentence\tlabel", SST2_ROWS * 3)
        write_tsv(root / "sst2" / "dev.tsv", "sentence\tlabel", SST2_ROWS)
    return root


def write_table(path: Path, records: list[dict], *, class_label: str | None = None) -> Path:
    """`records` (dicts with the same keys, in column order) as the own-data format `path`'s extension
    names: .csv (csv module quoting), .tsv and .jsonl (one record a line), .parquet; any other name is a
    directory written by `save_to_disk` holding a DatasetDict whose train and validation splits are both
    `records` (`class_label`: the column to store as a ClassLabel)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    columns = list(records[0]) if records else []
    if path.suffix == ".csv":
        with path.open("w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(columns)
            writer.writerows([r[c] for c in columns] for r in records)
    elif path.suffix == ".tsv":
        lines = ["\t".join(columns), *("\t".join(str(r[c]) for c in columns) for r in records)]
        path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    elif path.suffix == ".jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    elif path.suffix == ".parquet":
        import pandas as pd

        pd.DataFrame(records, columns=columns).to_parquet(path)
    else:
        import datasets

        split = datasets.Dataset.from_dict({c: [r[c] for r in records] for c in columns})
        if class_label is not None:
            split = split.class_encode_column(class_label)
        datasets.DatasetDict({"train": split, "validation": split}).save_to_disk(str(path))
    return path


def builtin_dataset(name: str, data_dir: Path | str, *overrides: str):
    """The TextDataset that conf/data/<name>.yaml builds for the data root `data_dir` (the folder
    holding news/ and sst2/), composed and instantiated as textclass-train does; `overrides` as on
    the command line (e.g. "data.dataset.download=false"). A user error raised while instantiating
    comes out as itself, not wrapped in Hydra's InstantiationException."""
    from hydra.utils import instantiate

    from textclass.config.compose import compose_config
    from textclass.errors import find_user_error

    cfg = compose_config("train", [f"data={name}", f"paths.data_dir={data_dir}", *overrides])
    try:
        return instantiate(cfg.data.dataset, _convert_="all")
    except Exception as err:
        user_error = find_user_error(err)
        if user_error is None:
            raise
        raise user_error from None
