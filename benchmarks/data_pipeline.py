"""Benchmark of the data side: prepare_data (cold and cached), GloVe loading, collate, padding.

Run from the repository root:  python benchmarks/data_pipeline.py [--data-dir DIR] [--repeats N] [--quick] [--out PATH]
Prints a table (name, value, unit) and writes the same rows, with metadata, to a JSON file.
"""

from __future__ import annotations

import argparse
import functools
import logging
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch
from torch.utils.data import DataLoader

from _common import RESULTS_DIR, Row, default_data_dir, require_data, row, write_results
from textclass.data.base import TsvDataset
from textclass.data.batching import BucketBatchSampler, EncodedDataset, collate, padding_fraction
from textclass.data.news import NewsAggregator
from textclass.data.pipeline import PreparedData, prepare_data
from textclass.data.sst2 import SST2
from textclass.embeddings import EmbeddingSpec, load_vectors
from textclass.tokenizers.word import VocabSpec, WordTokenizer

REQUIRED_FILES = ("sst2/train.tsv", "sst2/dev.tsv", "news/train.tsv", "news/valid.tsv")
BATCH_SIZE = 64
SEED = 42
QUICK_MAX_EXAMPLES = 2000
SST2_CACHED_TARGET_S = 1.0
# the defaults of conf/data/sst2.yaml and conf/data/news.yaml
SST2_VOCAB = VocabSpec(source="embeddings", min_freq=1, restrict_to_data=True, drop_unknown=True)
NEWS_VOCAB = VocabSpec(source="data", min_freq=2, restrict_to_data=True, drop_unknown=False)

T = TypeVar("T")


def timed(fn: Callable[[], T]) -> tuple[float, T]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def median_seconds(fn: Callable[[], object], repeats: int) -> float:
    return statistics.median(timed(fn)[0] for _ in range(repeats))


def prepare(dataset: TsvDataset, vocab: VocabSpec, cache_dir: Path, max_examples: int | None) -> PreparedData:
    return prepare_data(dataset, WordTokenizer(), EmbeddingSpec(), vocab, cache_dir, SEED, max_examples)


def bench_prepare(
    dataset: TsvDataset, vocab: VocabSpec, repeats: int, max_examples: int | None
) -> tuple[list[Row], PreparedData]:
    """Cold (empty cache dir) and cached (same dir again) prepare_data, median over `repeats` fresh dirs."""
    cold, cached = [], []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory(prefix="textclass-bench-") as tmp:
            cold.append(timed(lambda: prepare(dataset, vocab, Path(tmp), max_examples))[0])
            seconds, prepared = timed(lambda: prepare(dataset, vocab, Path(tmp), max_examples))
            cached.append(seconds)
    cold_s, cached_s = statistics.median(cold), statistics.median(cached)
    name = dataset.name
    rows = [
        row(f"{name} prepare cold", cold_s, "s"),
        row(f"{name} prepare cached", cached_s, "s"),
        row(f"{name} cold/cached", cold_s / cached_s, "x"),
    ]
    return rows, prepared


def bench_glove(repeats: int) -> list[Row]:
    return [row("glove_6b_50d load_vectors", median_seconds(lambda: load_vectors(EmbeddingSpec()), repeats), "s")]


def bench_collate(prepared: PreparedData, repeats: int) -> list[Row]:
    """Examples/s of one shuffled epoch of the train split through DataLoader + collate."""
    dataset = EncodedDataset(prepared.splits["train"])
    loader = DataLoader(
        dataset,
        batch_size=BATCH_SIZE,
        shuffle=True,
        num_workers=0,
        collate_fn=functools.partial(collate, pad_id=prepared.pad_id),
        generator=torch.Generator().manual_seed(SEED),
    )
    seconds = median_seconds(lambda: sum(1 for _ in loader), repeats)
    return [row(f"sst2 collate bs{BATCH_SIZE}", len(dataset) / seconds, "examples/s")]


def bench_padding(name: str, lengths: np.ndarray) -> list[Row]:
    """Padded share of one epoch: random batches vs. length-bucketed batches."""
    order = np.random.default_rng(SEED).permutation(len(lengths))
    shuffled = [order[i : i + BATCH_SIZE] for i in range(0, len(order), BATCH_SIZE)]
    bucketed = list(BucketBatchSampler(lengths, BATCH_SIZE, shuffle=True, seed=SEED))
    plain, bucket = padding_fraction(lengths, shuffled), padding_fraction(lengths, bucketed)
    return [
        row(f"{name} padding shuffled bs{BATCH_SIZE}", plain, "fraction"),
        row(f"{name} padding bucketed bs{BATCH_SIZE}", bucket, "fraction"),
        row(f"{name} padding shuffled/bucketed", plain / bucket if bucket else float("inf"), "x"),
    ]


def run(data_dir: Path, repeats: int, max_examples: int | None) -> list[Row]:
    sst2 = SST2(root=str(data_dir / "sst2"), download=False)
    news = NewsAggregator(root=str(data_dir / "news"), download=False)
    sst2_rows, sst2_data = bench_prepare(sst2, SST2_VOCAB, repeats, max_examples)
    news_rows, news_data = bench_prepare(news, NEWS_VOCAB, repeats, max_examples)
    return (
        sst2_rows
        + news_rows
        + bench_glove(repeats)
        + bench_collate(sst2_data, repeats)
        + bench_padding("sst2 train", sst2_data.splits["train"].lengths)
        + bench_padding("news train", news_data.splits["train"].lengths)
    )


def print_table(rows: list[Row]) -> None:
    width = max(len(str(r["name"])) for r in rows)
    print(f"{'name':<{width}}  {'value':>12}  unit")
    for r in rows:
        print(f"{r['name']:<{width}}  {r['value']:>12.6g}  {r['unit']}")


def metadata(quick: bool, repeats: int, data_dir: Path) -> dict:
    return {
        "numpy": np.__version__,
        "quick": quick,
        "repeats": repeats,
        "max_examples": QUICK_MAX_EXAMPLES if quick else None,
        "batch_size": BATCH_SIZE,
        "data_dir": str(data_dir),
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=default_data_dir(), help="folder holding sst2/ and news/")
    parser.add_argument("--repeats", type=int, default=3, help="timings are the median of this many runs")
    parser.add_argument("--quick", action="store_true", help=f"max_examples={QUICK_MAX_EXAMPLES}, repeats=1 (smoke check)")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR / "data_pipeline.json")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    require_data(args.data_dir, REQUIRED_FILES)
    repeats = 1 if args.quick else args.repeats
    rows = run(args.data_dir, repeats, QUICK_MAX_EXAMPLES if args.quick else None)
    print_table(rows)
    sst2_cached = next(r["value"] for r in rows if r["name"] == "sst2 prepare cached")
    verdict = "met" if sst2_cached <= SST2_CACHED_TARGET_S else "MISSED"
    print(f"target sst2 prepare cached <= {SST2_CACHED_TARGET_S:g} s: {verdict}")
    write_results(args.out, metadata(args.quick, repeats, args.data_dir), rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
