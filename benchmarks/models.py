"""Benchmark of the model zoo on news: parameters, training throughput, and 5-epoch valid accuracy.

Run from the repository root:
    python -m benchmarks.models [--data-dir DIR] [--models bow,lstm] [--accuracy lstm,textcnn] [--set KEY=VALUE] [--quick] [--out PATH]

Every model is built exactly as `textclass-train model=<name>` builds it (same config and code path);
throughput is examples/s of training steps with batch size 64 on the CPU, timed after warm-up
batches; accuracy runs the full training (fine-tuned GloVe, 5 epochs, no early stopping).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import lightning as L
import torch
from hydra import compose, initialize_config_dir

from benchmarks._common import CONF, RESULTS_DIR, default_data_dir, quiet_training, require_data, row, write_results
from textclass.training.module import training_module
from textclass.training.recipe import build_data_and_model, train

MODELS = ("bow", "mlp", "rnn", "lstm", "gru", "cnn", "textcnn", "attention", "bert")
BATCH_SIZE = 64
WARMUP_BATCHES = 5


class StepTimer(L.Callback):
    """Wall time of the training batches after the first `warmup` ones."""

    def __init__(self, warmup: int):
        self.warmup = warmup
        self.examples = 0
        self.seconds = 0.0

    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        _synchronize(module.device)
        self._start = time.perf_counter()

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        _synchronize(module.device)  # CUDA runs asynchronously: wait for the step's kernels
        if batch_idx >= self.warmup:
            self.seconds += time.perf_counter() - self._start
            self.examples += len(batch)


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def compose_config(overrides: list[str], output_dir: Path):
    with initialize_config_dir(str(CONF), version_base="1.3"):
        return compose("train", overrides=[*overrides, f"paths.output_dir={output_dir}", "paths.log_dir=" + str(output_dir)])


def throughput(
    model_name: str,
    batches: int | None,
    output_dir: Path,
    extra: list[str],
    batch_size: int = BATCH_SIZE,
    accelerator: str = "cpu",
    precision: str = "32-true",
    warmup: int = WARMUP_BATCHES,
) -> tuple[int, float]:
    """(trainable parameters, training examples/s) for `model=<model_name>` (news unless `extra` says
    otherwise), timed over `batches` training steps after `warmup` untimed ones (None: the rest of the epoch)."""
    dataset = [] if any(o.startswith("data=") for o in extra) else ["data=news"]
    cfg = compose_config([f"model={model_name}", *dataset, f"data.batch_size={batch_size}", *extra], output_dir)
    L.seed_everything(0, verbose=False)
    datamodule, network = build_data_and_model(cfg)
    model = training_module(cfg, network, datamodule.features)
    params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    timer = StepTimer(warmup)
    trainer = L.Trainer(
        accelerator=accelerator,
        devices=1,
        precision=precision,
        max_epochs=1,
        limit_train_batches=None if batches is None else batches + warmup,
        limit_val_batches=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[timer],
    )
    trainer.fit(model, datamodule=datamodule)
    return params, timer.examples / timer.seconds


def accuracy(model_name: str, epochs: int, output_dir: Path, max_examples: int | None) -> tuple[float, float]:
    """(valid accuracy, wall seconds) after `epochs` epochs of `model=<model_name>` on news, fine-tuned GloVe."""
    overrides = [
        f"model={model_name}",
        "data=news",
        "embeddings.freeze=false",
        f"trainer.max_epochs={epochs}",
        "callbacks.early_stopping=null",
        "trainer.enable_progress_bar=false",
        "trainer.enable_model_summary=false",
        "logger=[]",
    ]
    if max_examples:
        overrides.append(f"data.max_examples={max_examples}")
    cfg = compose_config(overrides, output_dir)
    start = time.perf_counter()
    metrics = train(cfg)
    return metrics["val/acc"], time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=default_data_dir())
    parser.add_argument("--models", default=",".join(MODELS), help="models to time")
    parser.add_argument("--accuracy", default="lstm,textcnn", help="models to train for the accuracy figure ('' for none)")
    parser.add_argument("--batches", type=int, default=60, help="timed training batches per model")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="5 timed batches, 1 epoch on 500 examples (smoke check)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override for the timed runs (repeatable)")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR / "models.json")
    args = parser.parse_args(argv)
    require_data(args.data_dir, ["news/train.tsv"])
    os.environ["TEXTCLASS_DATA_DIR"] = str(args.data_dir.resolve())
    quiet_training()
    torch.set_num_threads(os.cpu_count() or 1)
    batches = 5 if args.quick else args.batches
    epochs = 1 if args.quick else args.epochs

    rows = []
    with tempfile.TemporaryDirectory(prefix="textclass-bench-") as tmp:
        for name in [m for m in args.models.split(",") if m]:
            params, examples_per_s = throughput(name, batches, Path(tmp) / f"speed_{name}", args.set)
            rows += [
                row(f"{name} trainable parameters", params, "count"),
                row(f"{name} training throughput bs{BATCH_SIZE}", examples_per_s, "examples/s"),
            ]
            print(f"{name:<10} {params:>12,d} params  {examples_per_s:>10.0f} examples/s", flush=True)
        for name in [m for m in args.accuracy.split(",") if m]:
            acc, seconds = accuracy(name, epochs, Path(tmp) / f"acc_{name}", 500 if args.quick else None)
            rows += [
                row(f"{name} news valid acc after {epochs} epochs", acc, "accuracy"),
                row(f"{name} news {epochs}-epoch wall time", seconds, "s"),
            ]
            print(f"{name:<10} valid acc {acc:.4f} after {epochs} epochs ({seconds:.0f} s)", flush=True)

    meta = {
        "quick": args.quick,
        "batch_size": BATCH_SIZE,
        "timed_batches": batches,
        "epochs": epochs,
        "overrides": args.set,
    }
    write_results(args.out, meta, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
