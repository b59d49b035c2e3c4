"""Benchmark of a distillation teacher labelling sentences on CPU: sentences/s of a MiniLM run's logits,
batched in the sentences' order or shortest first, at 32-true and bf16-mixed, side by side.

Run from the repository root:
    python -m benchmarks.teacher_labels [--data-dir DIR] [--teacher RUN_DIR] [--sentences 5000]
                                        [--batch-size 256] [--repeats 1] [--threads N] [--quick] [--out PATH]

Without `--teacher`, a MiniLM run is first trained with `textclass-train data=sst2 model=bert` for one
epoch on 500 SST-2 training sentences (the rate does not depend on how well it was trained). The
sentences are a seeded sample of SST-2 train, the phrases an augmented transfer set is made from.
Four ways to compute their logits, in one process, passes alternating round by round (median of
`--repeats`), the same `--threads` for all:
- in order, 32-true: batches of consecutive sentences (`TrainedRun.batches`), as the teacher labelled
  before issue 28;
- shortest first, 32-true: `TrainedRun.logits`, which batches by length (less padding);
- each again under bfloat16 autocast (`distill.teacher_precision=bf16-mixed`), which is fast only on
  a CPU with AMX or AVX512-BF16.
Only the model calls and tokenization are timed. Rows: each way's sentences/s, its largest |logit
difference| from the first, and the fastest way's rate over the first's.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks._common import RESULTS_DIR, Row, default_data_dir, in_process_setup, row, write_results
from benchmarks.onnx_inference import train_run
from textclass.training.checkpoint import TrainedRun, load_run

TRAIN_SLICE = 500  # SST-2 training sentences for the one-epoch MiniLM run
QUICK = {"sentences": 200, "train_slice": 64}


def train_sentences(data_dir: Path, count: int) -> list[str]:
    """`count` SST-2 training sentences drawn without replacement (seed 0)."""
    lines = (data_dir / "sst2" / "train.tsv").read_text(encoding="utf-8").splitlines()[1:]
    sentences = [line.split("\t")[0] for line in lines if line.strip()]
    picked = np.random.default_rng(0).choice(len(sentences), min(count, len(sentences)), replace=False)
    return [sentences[i] for i in picked]


# way -> (batched shortest first, under bfloat16 autocast)
WAYS = {
    "in order 32-true": (False, False),
    "shortest first 32-true": (True, False),
    "in order bf16-mixed": (False, True),
    "shortest first bf16-mixed": (True, True),
}


def label(run: TrainedRun, texts: list[str], batch_size: int, shortest_first: bool, bf16: bool) -> torch.Tensor:
    """The run's logits of `texts`: by `TrainedRun.logits` (shortest first), or over consecutive
    batches (`TrainedRun.batches`, as the teacher labelled before)."""
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        if shortest_first:
            return run.logits(texts, batch_size).float()
        return torch.cat([run.model(b) for b in run.batches(texts, batch_size)]).float()


def measure(run: TrainedRun, sentences: list[str], batch_size: int, repeats: int) -> list[Row]:
    reference = label(run, sentences, batch_size, *WAYS["in order 32-true"])  # also the warm-up
    seconds: dict[str, list[float]] = {name: [] for name in WAYS}
    difference = {}
    for _ in range(repeats):
        for name, way in WAYS.items():
            start = time.perf_counter()
            logits = label(run, sentences, batch_size, *way)
            seconds[name].append(time.perf_counter() - start)
            difference[name] = float((logits - reference).abs().max())
    rates = {name: len(sentences) / statistics.median(s) for name, s in seconds.items()}
    print("| way | sentences/s | max logit difference |\n|---|---|---|")
    rows: list[Row] = []
    for name, rate in rates.items():
        print(f"| {name} | {rate:,.0f} | {difference[name]:.1e} |", flush=True)
        rows += [row(f"{name} sentences/s", rate, "sentences/s"), row(f"{name} max logit difference", difference[name], "logit")]
    best = max(rates, key=rates.get)
    ratio = rates[best] / rates["in order 32-true"]
    print(f"fastest: {best}, {ratio:.1f}x in order 32-true")
    return [*rows, row("fastest / in order 32-true", ratio, "x")]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=default_data_dir(), help="folder holding sst2/")
    parser.add_argument("--teacher", type=Path, help="a textclass-train run directory (default: a one-epoch MiniLM run)")
    parser.add_argument("--sentences", type=int, default=5000, help="SST-2 training sentences labelled")
    parser.add_argument("--batch-size", type=int, default=256, help="as data.eval_batch_size, which distillation labels with")
    parser.add_argument("--repeats", type=int, default=1, help="timed rounds (the median counts)")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--quick", action="store_true", help=f"{QUICK['sentences']} sentences, a MiniLM run on {QUICK['train_slice']}")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR / "teacher_labels.json")
    args = parser.parse_args(argv)
    args.train_slice = QUICK["train_slice"] if args.quick else TRAIN_SLICE
    if args.quick:
        args.sentences = QUICK["sentences"]
    if min(args.sentences, args.batch_size, args.repeats, args.threads) < 1:
        parser.error("--sentences, --batch-size, --repeats and --threads must be >= 1")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    in_process_setup(args.data_dir, ["sst2/train.tsv", "sst2/dev.tsv"], args.threads)
    with tempfile.TemporaryDirectory(prefix="textclass-teacher-") as tmp:
        run_dir = args.teacher or train_run("bert", Path(tmp), args.train_slice)
        if not (run_dir / "config.yaml").is_file():
            sys.exit(f"--teacher {run_dir}: not a textclass-train run directory (no config.yaml)")
        rows = measure(load_run(run_dir), train_sentences(args.data_dir, args.sentences), args.batch_size, args.repeats)
    settings = {k: getattr(args, k) for k in ("quick", "sentences", "batch_size", "repeats", "threads", "train_slice")}
    write_results(args.out, {**settings, "teacher": str(args.teacher), "data_dir": str(args.data_dir)}, rows)


if __name__ == "__main__":
    main()
