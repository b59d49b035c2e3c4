"""Benchmark of the data side: encode_dataset (cold and cached), GloVe loading, collate, padding.

Run from the repository root:
  python -m benchmarks.data_pipeline [--data-dir DIR] [--repeats N] [--quick] [--out PATH]
  python -m benchmarks.data_pipeline --rows N [--out PATH]
The first prints a table (name, value, unit) of the real news and SST-2 data. The second writes a
synthetic N-row CSV and measures reading and encoding it (time, peak resident memory, memory over
file size) as a Markdown table. Both write the same rows, with metadata, to a JSON file.
"""

from __future__ import annotations

import argparse
import csv
import functools
import gc
import json
import logging
import resource
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch
from torch.utils.data import DataLoader

from benchmarks._common import REPO, RESULTS_DIR, Row, builtin_data_config, default_data_dir, require_data, row, write_results
from textclass.data.batching import BucketBatchSampler, EncodedDataset, collate, padding_fraction
from textclass.data.encoded import EncodedData, encode_dataset
from textclass.data.dataset import TextDataset
from textclass.embeddings import EmbeddingSpec, load_vectors
from textclass.tokenizers.word import VocabSpec, WordFeatures, WordTokenizer

REQUIRED_FILES = ("sst2/train.tsv", "sst2/dev.tsv", "news/train.tsv", "news/valid.tsv")
BATCH_SIZE = 64
SEED = 42
QUICK_MAX_EXAMPLES = 2000
SST2_CACHED_TARGET_S = 1.0

# --rows: the synthetic CSV and how it is read (data=files semantics, no vectors loaded)
ROWS_SEED = 1234
ROW_TEXT_BYTES = (150, 250)  # each row's text is about this long (uniform; mean 200 bytes)
SYNTHETIC_LABELS = ("business", "science", "entertainment", "health")
COMMA_SHARE = 0.05  # rows whose text holds ", " (a quoted CSV field)
QUOTE_SHARE = 0.01  # rows whose text holds a quoted word (a field with doubled quotes)
ROWS_SPLIT = [0.9, 0.1]
ROWS_VOCAB = VocabSpec(source="data", min_freq=2)
ROWS_EMBEDDINGS = EmbeddingSpec(name="none", dim=50)
ROWS_MEMORY_TARGET = 3.0  # memory needed to read and encode the CSV, as a multiple of its size
ROWS_STEPS = {
    "read": "`TextDataset.read()` alone: the rows parsed, the 0.9/0.1 split",
    "cold": "`encode_dataset(cache_dir=None)`: read, split, vocabulary, encode",
    "cache build": "`encode_dataset` into an empty cache dir (a miss: all of cold, plus saving the entry and loading it back)",
    "cache hit": "`encode_dataset` again on that cache dir, in a new process",
}

T = TypeVar("T")


def timed(fn: Callable[[], T]) -> tuple[float, T]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def median_seconds(fn: Callable[[], object], repeats: int) -> float:
    return statistics.median(timed(fn)[0] for _ in range(repeats))


# --- the real data ------------------------------------------------------------------------------
def builtin_dataset(name: str, data_dir: Path) -> tuple[TextDataset, VocabSpec]:
    """The dataset conf/data/<name>.yaml builds for `data_dir` (composed and instantiated as
    textclass-train does, downloads off) and that config's vocabulary defaults."""
    import hydra
    from omegaconf import OmegaConf

    cfg = builtin_data_config(name, data_dir)
    dataset = hydra.utils.instantiate(cfg.data.dataset, _convert_="all")
    return dataset, VocabSpec(**OmegaConf.to_container(cfg.data.vocab, resolve=True))


def word_features(dataset: TextDataset, vocab: VocabSpec, embeddings: EmbeddingSpec | None = None) -> WordFeatures:
    """Fresh (unfitted) word features: encode_dataset fits them, so every call needs its own."""
    return WordTokenizer().features(embeddings or EmbeddingSpec(), vocab, dataset.pretokenized)


def prepare(dataset: TextDataset, vocab: VocabSpec, cache_dir: Path, max_examples: int | None) -> tuple[EncodedData, WordFeatures]:
    features = word_features(dataset, vocab)
    return encode_dataset(dataset, features, cache_dir, SEED, max_examples), features


def bench_prepare(
    dataset: TextDataset, vocab: VocabSpec, repeats: int, max_examples: int | None
) -> tuple[list[Row], EncodedData, WordFeatures]:
    """Cold (empty cache dir) and cached (same dir again) encode_dataset, median over `repeats` fresh dirs."""
    cold, cached = [], []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory(prefix="textclass-bench-") as tmp:
            cold.append(timed(lambda: prepare(dataset, vocab, Path(tmp), max_examples))[0])
            seconds, (data, features) = timed(lambda: prepare(dataset, vocab, Path(tmp), max_examples))
            cached.append(seconds)
    cold_s, cached_s = statistics.median(cold), statistics.median(cached)
    name = dataset.name
    rows = [
        row(f"{name} prepare cold", cold_s, "s"),
        row(f"{name} prepare cached", cached_s, "s"),
        row(f"{name} cold/cached", cold_s / cached_s, "x"),
    ]
    return rows, data, features


def bench_glove(repeats: int) -> list[Row]:
    return [row("glove_6b_50d load_vectors", median_seconds(lambda: load_vectors(EmbeddingSpec()), repeats), "s")]


def bench_collate(data: EncodedData, pad_id: int, repeats: int) -> list[Row]:
    """Examples/s of one shuffled epoch of the train split through DataLoader + collate."""
    dataset = EncodedDataset(data.splits["train"])
    loader = DataLoader(
        dataset,
        batch_size=BATCH_SIZE,
        shuffle=True,
        num_workers=0,
        collate_fn=functools.partial(collate, pad_id=pad_id),
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
    sst2, sst2_vocab = builtin_dataset("sst2", data_dir)
    news, news_vocab = builtin_dataset("news", data_dir)
    sst2_rows, sst2_data, sst2_features = bench_prepare(sst2, sst2_vocab, repeats, max_examples)
    news_rows, news_data, _ = bench_prepare(news, news_vocab, repeats, max_examples)
    return (
        sst2_rows
        + news_rows
        + bench_glove(repeats)
        + bench_collate(sst2_data, sst2_features.pad_id, repeats)
        + bench_padding("sst2 train", sst2_data.splits["train"].lengths)
        + bench_padding("news train", news_data.splits["train"].lengths)
    )


def print_table(rows: list[Row]) -> None:
    width = max(len(str(r["name"])) for r in rows)
    print(f"{'name':<{width}}  {'value':>12}  unit")
    for r in rows:
        print(f"{r['name']:<{width}}  {r['value']:>12.6g}  {r['unit']}")


# --- --rows: a synthetic CSV --------------------------------------------------------------------
def synthetic_words() -> list[str]:
    """A fixed list of 10,000 pronounceable words: every 2-syllable word, then 3-syllable ones."""
    syllables = [c + v for c in "bdfgklmnprstvz" for v in "aeiou"]
    two = [a + b for a in syllables for b in syllables]
    three = [a + b + c for a in syllables[::7] for b in syllables for c in syllables[::3]]
    return (two + three)[:10_000]


def write_synthetic_csv(path: Path, rows: int, seed: int = ROWS_SEED, chunk: int = 50_000) -> dict[str, int]:
    """`rows` rows of (text, label): words drawn Zipf-like from `synthetic_words()` until the text is
    150-250 bytes, one of 4 string labels; some texts hold commas or quotes, so csv quotes them.
    Returns how many rows hold a comma and how many a quote."""
    words = np.array(synthetic_words(), dtype=object)
    sizes = np.array([len(w) + 1 for w in words])  # with the space after it
    weights = 1.0 / np.arange(1, len(words) + 1)
    rng = np.random.default_rng(seed)
    counts_of = {"rows_with_commas": 0, "rows_with_quotes": 0}
    width = ROW_TEXT_BYTES[1] // 3 + 2  # more words than any text needs (the shortest words have 4 bytes + space)
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["text", "label"])
        for start in range(0, rows, chunk):
            n = min(chunk, rows - start)
            picks = rng.choice(len(words), size=(n, width), p=weights / weights.sum())
            targets = rng.integers(ROW_TEXT_BYTES[0], ROW_TEXT_BYTES[1] + 1, size=n)
            counts = (np.cumsum(sizes[picks], axis=1) < targets[:, None]).sum(axis=1) + 1
            labels = rng.integers(0, len(SYNTHETIC_LABELS), size=n)
            marks = rng.random(n)
            out = []
            for i in range(n):
                text = list(words[picks[i, : counts[i]]])
                if marks[i] < COMMA_SHARE:
                    text[len(text) // 2] += ","
                    counts_of["rows_with_commas"] += 1
                elif marks[i] < COMMA_SHARE + QUOTE_SHARE:
                    text[-1] = f'"{text[-1]}"'
                    counts_of["rows_with_quotes"] += 1
                out.append((" ".join(text), SYNTHETIC_LABELS[labels[i]]))
            writer.writerows(out)
    return counts_of


def max_rss_bytes() -> int:
    """This process's resident set high-water mark since it started (ru_maxrss: KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def proc_status(key: str) -> int | None:
    """A size (VmRSS, VmHWM) from /proc/self/status in bytes; None where there is no /proc."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def reset_peak_rss() -> bool:
    """Set the resident high-water mark (VmHWM) back to the current RSS (Linux >= 4.0); False where it cannot."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return proc_status("VmHWM") is not None


def child_measure(step: str, csv_path: Path, cache_dir: Path | None) -> dict:
    """One step of the --rows benchmark, run alone in this (fresh) process: its time, the RSS before
    it, and the resident high-water mark during it.

    The imports (torch, lightning) reach a high-water mark of their own above the RSS they leave,
    which would hide a smaller step: on Linux the mark is reset to the current RSS just before the
    step, so the peak is the step's own; elsewhere it is ru_maxrss, the whole process's."""
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    logging.getLogger("textclass").setLevel(logging.INFO)  # the reader's progress every 250k rows
    dataset = TextDataset(train=str(csv_path), split_fractions=ROWS_SPLIT)
    features = word_features(dataset, ROWS_VOCAB, ROWS_EMBEDDINGS)
    entries_before = len(list(cache_dir.glob("files-*"))) if cache_dir else None
    gc.collect()
    startup_peak = max_rss_bytes()
    reset = reset_peak_rss()
    before = proc_status("VmRSS") if reset else startup_peak
    if step == "read":
        seconds, (examples, _, _) = timed(dataset.read)
        sizes = {s: len(e) for s, e in examples.items()}
    else:
        seconds, data = timed(lambda: encode_dataset(dataset, features, cache_dir, SEED))
        sizes = {s: len(e) for s, e in data.splits.items()}
    peak = proc_status("VmHWM") if reset else max_rss_bytes()
    result = {
        "step": step,
        "seconds": seconds,
        "rss_before_bytes": before,
        "peak_bytes": peak,
        "startup_peak_bytes": startup_peak,
        "peak_method": "VmHWM reset before the step" if reset else "ru_maxrss",
        "examples": sizes,
    }
    if step != "read":
        result["vocab_size"] = len(features.vocab)
    if cache_dir is not None:
        result["cache_entries_before"] = entries_before
    return result


def run_child(step: str, csv_path: Path, cache_dir: Path | None) -> dict:
    """`child_measure(step)` in a fresh Python process; its log goes to our stderr as it runs."""
    command = [sys.executable, "-m", "benchmarks.data_pipeline", "--child-step", step, "--child-csv", str(csv_path)]
    if cache_dir is not None:
        command += ["--child-cache-dir", str(cache_dir)]
    print(f"--- {step}", file=sys.stderr, flush=True)
    result = subprocess.run(command, stdout=subprocess.PIPE, text=True, cwd=REPO)
    if result.returncode != 0:
        raise SystemExit(f"the {step} measurement failed (exit status {result.returncode}): {shlex.join(command)}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def run_rows(rows: int) -> tuple[list[Row], dict, dict[str, dict]]:
    """Write the synthetic CSV to a temporary dir, then measure each step in its own process."""
    with tempfile.TemporaryDirectory(prefix="textclass-bench-rows-") as tmp:
        csv_path = Path(tmp) / f"synthetic_{rows}.csv"
        generate_s, quoting = timed(lambda: write_synthetic_csv(csv_path, rows))
        size = csv_path.stat().st_size
        print(f"wrote {csv_path}: {rows:,} rows, {size / 2**20:.1f} MiB in {generate_s:.1f} s", file=sys.stderr, flush=True)
        cache_dir = Path(tmp) / "cache"
        results = {
            "read": run_child("read", csv_path, None),
            "cold": run_child("cold", csv_path, None),
            "cache build": run_child("cache build", csv_path, cache_dir),
            "cache hit": run_child("cache hit", csv_path, cache_dir),
        }
    if results["cache build"]["cache_entries_before"] != 0 or results["cache hit"]["cache_entries_before"] != 1:
        raise SystemExit(f"the cache steps did not see an empty, then a filled cache dir: {results}")
    out = [
        row(f"csv{rows} file size", size / 2**20, "MiB"),
        row(f"csv{rows} generate", generate_s, "s"),
    ]
    for step, r in results.items():
        needed = r["peak_bytes"] - r["rss_before_bytes"]
        out += [
            row(f"csv{rows} {step}", r["seconds"], "s"),
            row(f"csv{rows} {step} rows/s", rows / r["seconds"], "rows/s"),
            row(f"csv{rows} {step} rss before", r["rss_before_bytes"] / 2**20, "MiB"),
            row(f"csv{rows} {step} peak rss", r["peak_bytes"] / 2**20, "MiB"),
            row(f"csv{rows} {step} peak rss - before", needed / 2**20, "MiB"),
            row(f"csv{rows} {step} peak rss/file", r["peak_bytes"] / size, "x"),
            row(f"csv{rows} {step} (peak rss - before)/file", needed / size, "x"),
        ]
    settings = {
        "file_bytes": size,
        "generate_s": generate_s,
        **quoting,
        "peak_method": results["cold"]["peak_method"],
        "examples": results["cold"]["examples"],
        "vocab_size": results["cold"]["vocab_size"],
        "steps": results,
    }
    return out, settings, results


def print_rows_table(rows: int, command: str, settings: dict, results: dict[str, dict]) -> bool:
    """The Markdown table of the --rows figures; returns whether every step stayed within the target."""
    mib, size = 2**20, settings["file_bytes"]
    print(f"\nCommand: `{command}`\n")
    print(
        f"Synthetic CSV: {rows:,} rows (text,label; {ROW_TEXT_BYTES[0]}-{ROW_TEXT_BYTES[1]} bytes of text a row, "
        f"4 labels; {settings['rows_with_commas']:,} texts with a comma and {settings['rows_with_quotes']:,} with quotes, "
        f"so quoted), {size / mib:.1f} MiB ({size:,} bytes). Read as data=files: TextDataset(train=csv, "
        f"split_fractions={ROWS_SPLIT}), word features with vocab source=data min_freq=2, embeddings=none dim=50.\n"
    )
    print("| step | time (s) | rows/s | RSS before (MiB) | peak RSS (MiB) | peak - before (MiB) | peak / file | (peak - before) / file |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    within = True
    for step, r in results.items():
        needed = r["peak_bytes"] - r["rss_before_bytes"]
        within &= needed <= ROWS_MEMORY_TARGET * size
        print(
            f"| {step} | {r['seconds']:.2f} | {rows / r['seconds']:,.0f} | {r['rss_before_bytes'] / mib:,.0f} | "
            f"{r['peak_bytes'] / mib:,.0f} | {needed / mib:,.0f} | {r['peak_bytes'] / size:.2f}x | {needed / size:.2f}x |"
        )
    print()
    for step, what in ROWS_STEPS.items():
        print(f"- {step}: {what}")
    method = results["cold"]["peak_method"]
    if method == "ru_maxrss":
        how = "`ru_maxrss` after the step (the whole process's high-water mark, imports included)"
    else:
        how = "the resident high-water mark (VmHWM) during the step, reset to the current RSS just before it"
    print(
        f"- each step runs alone in a fresh Python process; RSS before: after imports and set-up (torch, "
        f"lightning; empty data); peak RSS: {how}"
    )
    print(f"- examples: {results['cold']['examples']}; vocabulary: {results['cold']['vocab_size']:,} words\n")
    verdict = "met" if within else "MISSED"
    print(f"target peak RSS - before <= {ROWS_MEMORY_TARGET:g}x the file size, every step: {verdict}", flush=True)
    return within


# --- command line -------------------------------------------------------------------------------
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
    parser.add_argument(
        "--rows", type=int, default=None, metavar="N",
        help="instead: write a synthetic N-row CSV and measure reading and encoding it (time, peak memory)",
    )
    parser.add_argument("--out", type=Path, default=None, help="results file (default: benchmarks/results/data_pipeline[_rows].json)")
    # one step of --rows, in the fresh process the parent starts
    parser.add_argument("--child-step", choices=list(ROWS_STEPS), help=argparse.SUPPRESS)
    parser.add_argument("--child-csv", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--child-cache-dir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be >= 1")
    if args.rows is not None:
        if args.rows < 10:
            parser.error("--rows must be >= 10")
        if args.quick:
            parser.error("--rows runs its own measurements, once each: drop --quick")
    if args.out is None:
        args.out = RESULTS_DIR / ("data_pipeline_rows.json" if args.rows is not None else "data_pipeline.json")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child_step is not None:
        print(json.dumps(child_measure(args.child_step, args.child_csv, args.child_cache_dir)))
        return 0
    if args.rows is not None:
        command = shlex.join(["python", "-m", "benchmarks.data_pipeline", *(sys.argv[1:] if argv is None else argv)])
        rows, settings, results = run_rows(args.rows)
        print_rows_table(args.rows, command, settings, results)
        meta = {"numpy": np.__version__, "rows": args.rows, "seed": ROWS_SEED, **settings}
        write_results(args.out, meta, rows)
        return 0
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
