"""Benchmark of exported models on CPU: ONNX Runtime vs PyTorch sentences/s, side by side, on SST-2 dev.

Run from the repository root:
    python -m benchmarks.onnx_inference [--data-dir DIR] [--models lstm,textcnn,bert] [--run MODEL=RUN_DIR ...]
                                        [--batch-sizes 1,64] [--sentences 872] [--repeats 3] [--threads N]
                                        [--quick] [--out PATH]

Each model without a `--run` is first trained with `textclass-train data=sst2 model=<model>` for one
epoch on a slice of SST-2 train (5,000 sentences; 500 for bert, the offline MiniLM; throughput does
not depend on how well it was trained). The real `textclass-export format=onnx` writes its ONNX file.
Then, in this one process, the SST-2 dev sentences are encoded once by the run's own tokenizer into
padded batches (`TrainedRun.batches`), and each batch goes through both runtimes in turn: the PyTorch
model as `textclass-predict` runs it (`load_run`, eval mode, no_grad; RNNs over packed sequences) and
an `onnxruntime.InferenceSession` of the exported file (CPUExecutionProvider, default graph
optimizations). Both get `--threads` intra-op threads (default: every core). The rate is the
sentences over the seconds of the model calls alone (tokenization is the same for both and left
out), the median of `--repeats` timed passes after one warm-up pass; the two runtimes alternate
pass by pass, so that other load on the machine hits both alike. The largest |logit difference|
between the two is reported too.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnxruntime
import torch

from benchmarks._common import RESULTS_DIR, Row, default_data_dir, in_process_setup, row, write_results
from textclass.training.checkpoint import TrainedRun, load_run

BIN = Path(sys.executable).parent
MODELS = ("lstm", "textcnn", "bert")
TRAIN_SLICE = {"word": 5000, "bert": 500}  # SST-2 training sentences for the one-epoch run
QUICK = {"sentences": 200, "repeats": 1, "train_slice": {"word": 1000, "bert": 64}}


def cli(command: list[str], cwd: Path) -> None:
    """Run a textclass console command; exit with its error output when it fails."""
    result = subprocess.run([str(BIN / command[0]), *command[1:]], cwd=cwd, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"{' '.join(command)} failed:\n{result.stderr[-3000:]}")


def train_run(model: str, work: Path, train_slice: int) -> Path:
    run_dir = work / f"{model}_run"
    cli(["textclass-train", "data=sst2", f"model={model}", f"data.max_examples={train_slice}", "trainer.max_epochs=1", "test=false",
         "logger=[]", "trainer.enable_progress_bar=false", f"hydra.run.dir={run_dir}"], cwd=work)
    return run_dir


def export_onnx(run_dir: Path, work: Path, model: str) -> Path:
    path = work / f"{model}_onnx" / "model.onnx"
    cli(["textclass-export", f"ckpt_path={run_dir / 'checkpoints' / 'last.ckpt'}", "format=onnx", f"output={path}"], cwd=work)
    return path


def dev_sentences(data_dir: Path, count: int) -> list[str]:
    """The first `count` SST-2 dev sentences (the dev set repeated if more are asked for)."""
    lines = (data_dir / "sst2" / "dev.tsv").read_text(encoding="utf-8").splitlines()[1:]
    sentences = [line.split("\t")[0] for line in lines if line.strip()]
    return [sentences[i % len(sentences)] for i in range(count)]


def timed_pass(step: Callable[[object], object], batches: list) -> float:
    start = time.perf_counter()
    for batch in batches:
        step(batch)
    return time.perf_counter() - start


def session_of(onnx_path: Path, threads: int) -> onnxruntime.InferenceSession:
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    return onnxruntime.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])


def compare(model: str, run: TrainedRun, session: onnxruntime.InferenceSession, sentences: list[str], batch_size: int, repeats: int) -> list[Row]:
    """Sentences/s of PyTorch (the TrainedRun's model) and ONNX Runtime on the same encoded batches, passes alternating."""
    batches = list(run.batches(sentences, batch_size))

    def pytorch(batch):
        with torch.no_grad():
            return run.model(batch).numpy()

    def onnx(batch):
        feeds = {"input_ids": batch.input_ids.numpy(), "attention_mask": batch.attention_mask.long().numpy()}
        return session.run(["logits"], feeds)[0]

    difference = max(float(np.abs(pytorch(b) - onnx(b)).max()) for b in batches)  # also the warm-up pass
    seconds: dict[str, list[float]] = {"pytorch": [], "onnxruntime": []}
    for _ in range(repeats):
        seconds["pytorch"].append(timed_pass(pytorch, batches))
        seconds["onnxruntime"].append(timed_pass(onnx, batches))
    rates = {name: len(sentences) / statistics.median(s) for name, s in seconds.items()}
    ratio = rates["onnxruntime"] / rates["pytorch"]
    print(f"| {model} | {batch_size} | {rates['pytorch']:,.0f} | {rates['onnxruntime']:,.0f} | {ratio:.2f}x | {difference:.1e} |", flush=True)
    extra = {"sentences": len(sentences), "batch_size": batch_size}
    return [
        {**row(f"{model} pytorch sentences/s bs{batch_size}", rates["pytorch"], "sentences/s"), **extra},
        {**row(f"{model} onnxruntime sentences/s bs{batch_size}", rates["onnxruntime"], "sentences/s"), **extra},
        {**row(f"{model} onnxruntime/pytorch bs{batch_size}", ratio, "x"), **extra},
        {**row(f"{model} max logit difference bs{batch_size}", difference, "logit"), **extra},
    ]


def parse_runs(values: list[str], parser: argparse.ArgumentParser) -> dict[str, Path]:
    runs = {}
    for value in values:
        model, sep, directory = value.partition("=")
        if not sep or not (Path(directory) / "checkpoints" / "last.ckpt").is_file():
            parser.error(f"--run {value}: give MODEL=RUN_DIR, a textclass-train run directory holding checkpoints/last.ckpt")
        runs[model] = Path(directory).resolve()
    return runs


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=default_data_dir(), help="folder holding sst2/")
    parser.add_argument("--models", default=",".join(MODELS), help="textclass models (model=...) to compare; bert is the offline MiniLM")
    parser.add_argument("--run", action="append", default=[], metavar="MODEL=RUN_DIR",
                        help="use this trained SST-2 run for MODEL instead of a one-epoch one (repeatable)")
    parser.add_argument("--batch-sizes", default="1,64")
    parser.add_argument("--sentences", type=int, default=872, help="SST-2 dev sentences timed (872: the whole dev set)")
    parser.add_argument("--repeats", type=int, default=3, help="timed passes per runtime (the median counts)")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="intra-op threads for both runtimes")
    parser.add_argument("--quick", action="store_true",
                        help=f"{QUICK['sentences']} sentences, {QUICK['repeats']} pass, small training slices (smoke check)")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR / "onnx_inference.json")
    args = parser.parse_args(argv)
    args.models = [m.strip() for m in args.models.split(",") if m.strip()]
    args.batch_sizes = [int(b) for b in args.batch_sizes.split(",") if b.strip()]
    args.runs = parse_runs(args.run, parser)
    args.train_slice = dict(TRAIN_SLICE)
    if args.quick:
        args.sentences, args.repeats, args.train_slice = QUICK["sentences"], QUICK["repeats"], QUICK["train_slice"]
    if not args.models or min(args.batch_sizes, default=0) < 1 or args.sentences < 1 or args.repeats < 1 or args.threads < 1:
        parser.error("--models must name a model; --batch-sizes, --sentences, --repeats and --threads must be >= 1")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    in_process_setup(args.data_dir, ["sst2/train.tsv", "sst2/dev.tsv"], args.threads)
    sentences = dev_sentences(args.data_dir, args.sentences)
    rows: list[Row] = []
    print("| model | batch | PyTorch sentences/s | ONNX Runtime sentences/s | ONNX Runtime / PyTorch | max logit difference |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory(prefix="textclass-onnx-") as tmp:
        work = Path(tmp)
        for model in args.models:
            slice_ = args.train_slice["bert" if model == "bert" else "word"]
            run_dir = args.runs.get(model) or train_run(model, work, slice_)
            session = session_of(export_onnx(run_dir, work, model), args.threads)
            run = load_run(run_dir)
            for batch_size in args.batch_sizes:
                rows += compare(model, run, session, sentences, batch_size, args.repeats)
    settings = {
        "quick": args.quick,
        "sentences": args.sentences,
        "batch_sizes": args.batch_sizes,
        "repeats": args.repeats,
        "threads": args.threads,
        "train_slice": args.train_slice,
        "runs": {m: str(p) for m, p in args.runs.items()},
        "onnxruntime": onnxruntime.__version__,
        "data_dir": str(args.data_dir),
    }
    write_results(args.out, settings, rows)


if __name__ == "__main__":
    main()
