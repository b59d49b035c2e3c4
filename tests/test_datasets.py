"""Datasets: real split counts, the raw UCI format, the stratified split."""

from __future__ import annotations

import zipfile
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from helpers.data import builtin_dataset, write_tsv
from helpers.paths import real_data, REAL_DATA
from textclass.data.splits import stratified_split
from textclass.data.news import RAW_COLUMNS


@real_data
@pytest.mark.slow
def test_real_sst2_counts():
    sst2 = builtin_dataset("sst2", REAL_DATA, "data.dataset.download=false")
    data, _, _ = sst2.read()
    train, dev = data["train"], data["valid"]
    assert (len(train), len(dev)) == (67_349, 872)
    assert Counter(dev.labels.tolist()) == {1: 444, 0: 428}
    assert train.texts[0] == "hide new secretions from the parental units"
    assert sst2.splits() == ["train", "valid"] and list(data) == ["train", "valid"]


@real_data
@pytest.mark.slow
def test_real_news_counts():
    news = builtin_dataset("news", REAL_DATA, "data.dataset.download=false")
    data, labels, _ = news.read()
    train, valid = data["train"], data["valid"]
    names = dict(enumerate(labels.values))
    assert len(train) == 10_684 and len(valid) == 1_336
    assert Counter(names[i] for i in train.labels.tolist()) == {"b": 4501, "e": 4235, "t": 1220, "m": 728}
    assert Counter(names[i] for i in valid.labels.tolist()) == {"b": 563, "e": 529, "t": 153, "m": 91}
    assert labels.names == ("business", "science/technology", "entertainment", "health")


def _raw_uci_rows(n_per_class: int) -> list[list[str]]:
    """newsCorpora.csv-shaped rows: 5 kept publishers and one dropped, unbalanced quotes in titles."""
    publishers = ["Reuters", "Huffington Post", "Businessweek", "Contactmusic.com", "Daily Mail", "Some Blog"]
    rows = []
    for cat in "betm":
        for i in range(n_per_class):
            publisher = publishers[i % len(publishers)]
            title = f'"{cat.upper()} headline {i} with an unbalanced quote' if i % 3 == 0 else f"{cat} headline {i}"
            rows.append([str(len(rows)), title, f"http://x/{len(rows)}", publisher, cat, "story", "x.com", "1394470370698"])
    return rows


def _write_raw(path: Path, rows: list[list[str]]) -> None:
    assert len(rows[0]) == len(RAW_COLUMNS)
    path.write_text("".join("\t".join(r) + "\n" for r in rows), encoding="utf-8")


@pytest.mark.parametrize("as_zip", [False, True])
def test_raw_uci_filter_and_stratified_split(tmp_path, as_zip):
    rows = _raw_uci_rows(60)  # 60 per class, 50 of them from the five kept publishers
    root = tmp_path / "news"
    root.mkdir()
    if as_zip:
        _write_raw(tmp_path / "newsCorpora.csv", rows)
        with zipfile.ZipFile(root / "NewsAggregatorDataset.zip", "w") as zf:
            zf.write(tmp_path / "newsCorpora.csv", "newsCorpora.csv")
    else:
        _write_raw(root / "newsCorpora.csv", rows)

    news = builtin_dataset("news", tmp_path, "data.dataset.download=false")
    news.prepare()

    splits, _, _ = news.read()
    assert list(splits) == ["train", "valid", "test"]
    assert {s: len(t) for s, t in splits.items()} == {"train": 160, "valid": 20, "test": 20}
    for split in splits.values():
        # every class keeps its 80/10/10 share: 50 kept rows per class
        counts = Counter(split.labels.tolist())
        assert len(set(counts.values())) == 1
    all_titles = [t for s in splits.values() for t in s.texts]
    assert len(set(all_titles)) == 200  # nothing lost, nothing duplicated across splits
    assert sum(t.startswith('"') for t in all_titles) > 0  # unbalanced quotes kept verbatim
    kept_titles = {r[1] for r in rows if r[3] != "Some Blog"}
    assert set(all_titles) == kept_titles


def test_raw_uci_split_is_reused_not_rebuilt(tmp_path):
    root = tmp_path / "news"
    root.mkdir()
    _write_raw(root / "newsCorpora.csv", _raw_uci_rows(20))
    news = builtin_dataset("news", tmp_path, "data.dataset.download=false")
    news.prepare()
    mtime = (root / "train.tsv").stat().st_mtime_ns
    builtin_dataset("news", tmp_path, "data.dataset.download=false").prepare()
    assert (root / "train.tsv").stat().st_mtime_ns == mtime


def test_stratified_split_keeps_class_proportions_and_is_seeded():
    labels = np.array([0] * 4501 + [1] * 1220 + [2] * 4235 + [3] * 728)
    parts = stratified_split(labels, [0.8, 0.1, 0.1], seed=123)
    assert sum(len(p) for p in parts.values()) == len(labels)
    assert len(np.unique(np.concatenate(list(parts.values())))) == len(labels)
    full = np.bincount(labels) / len(labels)
    for idx in parts.values():
        share = np.bincount(labels[idx], minlength=4) / len(idx)
        assert np.abs(share - full).max() < 0.005
    again = stratified_split(labels, [0.8, 0.1, 0.1], seed=123)
    other = stratified_split(labels, [0.8, 0.1, 0.1], seed=7)
    assert all(np.array_equal(parts[s], again[s]) for s in parts)
    assert not np.array_equal(parts["train"], other["train"])


def test_sst2_from_local_glue_zip(tmp_path):
    members = {
        "SST-2/train.tsv": "sentence\tlabel\na fine film \t1\na dull film \t0\n",
        "SST-2/dev.tsv": "sentence\tlabel\ngood \t1\n",
        "SST-2/test.tsv": "index\tsentence\n0\tunlabeled \n",
    }
    root = tmp_path / "sst2"
    root.mkdir()
    with zipfile.ZipFile(root / "SST-2.zip", "w") as zf:
        for name, text in members.items():
            zf.writestr(name, text)
    sst2 = builtin_dataset("sst2", tmp_path, "data.dataset.download=false")
    sst2.prepare()
    data, _, _ = sst2.read()
    train = data["train"]
    assert train.texts == ["a fine film", "a dull film"] and train.labels.tolist() == [1, 0]
    assert (root / "test.tsv").is_file()  # kept for prediction, never read as a labeled split
    assert sst2.splits() == ["train", "valid"] and list(data) == ["train", "valid"]


def test_presplit_fixture_reads_all_splits(data_dir):
    news = builtin_dataset("news", data_dir, "data.dataset.download=false")
    assert news.splits() == ["train", "valid", "test"]
    write_tsv(data_dir / "news" / "test.tsv", "category\ttitle", [("m", "Flu season ends")])
    data, _, _ = news.read()
    test = data["test"]
    assert test.texts == ["Flu season ends"] and test.labels.tolist() == [3]
