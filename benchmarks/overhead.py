"""Benchmark of the framework overhead: textclass-train vs. a bare PyTorch loop, seconds per epoch on SST-2.

Run from the repository root:
    python -m benchmarks.overhead [--data-dir DIR] [--models bow,lstm,textcnn] [--epochs N] [--repeats N]
                                  [--threads N] [--set KEY=VALUE] [--quick] [--out PATH]

Both sides get the same config (`data=sst2 model=<name> trainer.max_epochs=N trainer.accelerator=cpu`),
composed with Hydra's compose API from the project's conf/, and therefore the same data tensors,
batch size, nn.Module (same code, same seed, same initial weights) and optimizer:

- textclass: `textclass.training.recipe.train(cfg)`, the code path of `textclass train`, with its default
  trainer (progress bar, model summary), callbacks (checkpointing, early stopping, epoch timer,
  plots, hparams, lr monitor, ...) and TensorBoard logger. Seconds per epoch: `epoch_s` of the
  run's history.csv, i.e. `time/epoch_s` of the EpochTimer callback: training epoch start to end,
  the end-of-epoch validation included, but not the checkpoint saving (Lightning runs
  ModelCheckpoint after every other callback; it is in the `run wall` figures, with the trainer
  setup, sanity check and plots).
- bare: the same datamodule and `build_model` output, of which only the encoder, dropout and head
  modules are kept; then, per epoch: for each training batch, zero_grad, forward, cross-entropy,
  backward, optimizer step (Adam over the same parameter groups); then one pass over the validation
  loader under torch.no_grad() (loss and correct predictions). Seconds per epoch: the same span,
  timed around the loop.

Beside wall time, both sides record the process CPU time of the same spans (on the textclass side
the configured EpochTimer is swapped for a subclass that also reads the CPU clock: no extra
callback, whose per-step hook calls would add to the overhead measured). With one torch thread
(`--threads 1`) CPU time is the work done, nearly blind to other processes on a busy machine; wall
time is not.

The first epoch of every run is warm-up and left out. The two sides alternate in one process
(bare, textclass, bare, textclass, ...) so that machine noise hits both. The headline figure per
side is the fastest timed epoch over all repeats (as `timeit` does: noise only ever adds time);
medians are in the results file too. Target: textclass/bare <= 1.10 (wall time).
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import lightning as L
import torch
from hydra import compose, initialize_config_dir
from hydra.errors import HydraException
from hydra.utils import instantiate
from omegaconf import DictConfig

from benchmarks._common import RESULTS_DIR, Row, default_data_dir, epoch_seconds, require_data, row, write_results
from textclass.training.callbacks import EpochTimer
from textclass.run_files import HISTORY_FILE
from textclass.config.compose import CONFIG_DIR
from textclass.models.build import build_model
from textclass.training.module import parameter_groups
from textclass.training.recipe import train

MODELS = ("bow", "lstm", "textcnn")
TARGET_RATIO = 1.10
QUICK_MAX_EXAMPLES = 1000
QUICK_EPOCHS = 2
WARMUP_EPOCHS = 1


def compose_config(model: str, epochs: int, max_examples: int | None, extra: list[str], run_dir: Path, cache_dir: Path) -> DictConfig:
    """The config `textclass-train data=sst2 model=<model> trainer.max_epochs=<epochs> ...` would run with."""
    overrides = ["data=sst2", f"model={model}", f"trainer.max_epochs={epochs}", "trainer.accelerator=cpu"]
    if max_examples:
        overrides.append(f"data.max_examples={max_examples}")
    paths = [f"paths.output_dir={run_dir}", f"paths.log_dir={run_dir}", f"paths.cache_dir={cache_dir}"]
    with initialize_config_dir(CONFIG_DIR, version_base="1.3"):
        try:
            return compose("train", overrides=[*overrides, *extra, *paths])
        except HydraException as err:
            raise SystemExit(f"bad config override (--set): {err}") from None


class CpuEpochTimer(EpochTimer):
    """The EpochTimer (time/epoch_s), also recording the process CPU seconds of the same span (class-level list)."""

    epochs: list[float] = []

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_train_epoch_start(trainer, pl_module)
        self._cpu_start = time.process_time()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        CpuEpochTimer.epochs.append(time.process_time() - self._cpu_start)
        super().on_train_epoch_end(trainer, pl_module)


def bare_run(cfg: DictConfig) -> tuple[list[float], list[float]]:
    """(wall, CPU) seconds per epoch (training + one validation pass) of a minimal PyTorch loop on cfg's data and model."""
    if cfg.model.loss != "cross_entropy":
        raise SystemExit(f"the bare loop uses cross-entropy; model.loss={cfg.model.loss} is not supported here")
    L.seed_everything(cfg.seed, workers=True, verbose=False)  # as train(): same initial weights
    datamodule = instantiate(cfg.data)
    datamodule.prepare_data()
    datamodule.setup("fit")
    model = build_model(cfg, datamodule.features, datamodule.labels)  # a plain nn.Module: no Lightning in the loop
    loss_fn = model.loss_fn  # nn.CrossEntropyLoss with the config's weights and label smoothing
    optimizer = instantiate(cfg.model.optimizer)(params=parameter_groups(model))  # as configure_optimizers
    train_loader, val_loader = datamodule.train_dataloader(), datamodule.val_dataloader()
    wall, cpu = [], []
    for epoch in range(cfg.trainer.max_epochs):
        start, start_cpu = time.perf_counter(), time.process_time()
        sampler = train_loader.batch_sampler if datamodule.bucket_by_length else train_loader.sampler
        sampler.set_epoch(epoch)  # what Lightning does for the datamodule's samplers
        model.train()
        for batch in train_loader:
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(model(batch), batch.labels)
            loss.backward()
            optimizer.step()
        model.eval()
        val_loss, correct, total = 0.0, 0, 0
        with torch.no_grad():
            for batch in val_loader:
                logits = model(batch)
                val_loss += float(loss_fn(logits, batch.labels)) * len(batch)
                correct += int((logits.argmax(-1) == batch.labels).sum())
                total += len(batch)
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return wall, cpu


def textclass_run(cfg: DictConfig) -> tuple[list[float], list[float]]:
    """(wall, CPU) seconds per epoch of `train(cfg)`; wall as its history.csv reports it (time/epoch_s)."""
    CpuEpochTimer.epochs = []
    train(cfg)
    wall = epoch_seconds(Path(cfg.paths.output_dir))
    if len(wall) != cfg.trainer.max_epochs:
        raise SystemExit(f"{Path(cfg.paths.output_dir) / HISTORY_FILE} has {len(wall)} epochs, expected {cfg.trainer.max_epochs} (early stopping?)")
    return wall, list(CpuEpochTimer.epochs)


def bench_model(model: str, args: argparse.Namespace, workdir: Path) -> tuple[list[Row], dict]:
    # a callback of this script's own, listed in allowed_targets as a user's would be
    timer = [f"callbacks.epoch_timer._target_={__name__}.CpuEpochTimer", f"allowed_targets=[{__name__}.*]"]
    samples = {side: {"wall": [], "cpu": [], "run_wall": []} for side in ("bare", "textclass")}
    for repeat in range(args.repeats):
        for side, run in (("bare", bare_run), ("textclass", textclass_run)):
            run_dir = workdir / f"{model}_{side}_{repeat}"
            cfg = compose_config(model, args.epochs, args.max_examples, [*args.set, *timer], run_dir, workdir / "cache")
            start = time.perf_counter()
            wall, cpu = run(cfg)
            run_wall = time.perf_counter() - start
            samples[side]["wall"] += wall[WARMUP_EPOCHS:]
            samples[side]["cpu"] += cpu[WARMUP_EPOCHS:]
            samples[side]["run_wall"].append(run_wall)
            shown = " ".join(f"{w:.3f}/{c:.3f}" for w, c in zip(wall, cpu))
            print(f"  {model} {side:<9} run {repeat}: epochs wall/cpu [{shown}] s, whole run {run_wall:.1f} s", file=sys.stderr, flush=True)
    bare, framework = samples["bare"], samples["textclass"]
    rows = []
    for kind, suffix in (("wall", ""), ("cpu", " cpu")):
        b, f = min(bare[kind]), min(framework[kind])
        bm, fm = statistics.median(bare[kind]), statistics.median(framework[kind])
        rows += [
            row(f"{model} bare{suffix} s/epoch", b, "s"),
            row(f"{model} textclass{suffix} s/epoch", f, "s"),
            row(f"{model} textclass/bare{suffix}", f / b, "x"),
            row(f"{model} bare{suffix} s/epoch median", bm, "s"),
            row(f"{model} textclass{suffix} s/epoch median", fm, "s"),
            row(f"{model} textclass/bare{suffix} median", fm / bm, "x"),
        ]
    # the whole call: data (cached), model, and for textclass also trainer setup, sanity check, plots
    rows += [
        row(f"{model} bare run wall", statistics.median(bare["run_wall"]), "s"),
        row(f"{model} textclass run wall", statistics.median(framework["run_wall"]), "s"),
    ]
    return rows, samples


def print_table(rows: list[Row], models: list[str]) -> None:
    v = {r["name"]: r["value"] for r in rows}
    print(f"{'model':<8}  {'bare s/epoch':>12}  {'textclass s/epoch':>17}  {'textclass/bare':>14}  "
          f"{'bare cpu':>8}  {'textclass cpu':>13}  {'cpu ratio':>9}  target <= {TARGET_RATIO:.2f}")
    for m in models:
        ratio = v[f"{m} textclass/bare"]
        verdict = "met" if ratio <= TARGET_RATIO else "MISSED"
        print(f"{m:<8}  {v[f'{m} bare s/epoch']:>12.4f}  {v[f'{m} textclass s/epoch']:>17.4f}  {ratio:>14.3f}  "
              f"{v[f'{m} bare cpu s/epoch']:>8.4f}  {v[f'{m} textclass cpu s/epoch']:>13.4f}  "
              f"{v[f'{m} textclass/bare cpu']:>9.3f}  {verdict}")
    print("s/epoch: fastest of epochs 2.. over all runs. Wall: textclass = epoch_s of history.csv (time/epoch_s: validation")
    print("included, checkpoint saving not), bare = the same span of the plain loop (train batches + no_grad validation).")
    print("cpu: process CPU seconds of the same spans. Medians are in the results file.")


def metadata(args: argparse.Namespace, samples: dict) -> dict:
    return {
        "quick": args.quick,
        "data": "sst2",
        "max_examples": args.max_examples,
        "epochs": args.epochs,
        "warmup_epochs": WARMUP_EPOCHS,
        "repeats": args.repeats,
        "overrides": args.set,
        "timing": "min (and median) over the timed epochs of all repeats; textclass wall: history.csv epoch_s (time/epoch_s)",
        "epoch_seconds": samples,
        "data_dir": str(args.data_dir),
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=default_data_dir(), help="folder holding sst2/")
    parser.add_argument("--models", default=",".join(MODELS), help="models to compare")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per run; the first one is not timed")
    parser.add_argument("--repeats", type=int, default=2, help="runs per side and model, alternating bare/textclass")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch.set_num_threads for both sides (default: torch's own, 1 with --quick); "
                        "1 is much steadier on a busy machine")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="config override for both sides (repeatable), e.g. trainer.enable_progress_bar=false")
    parser.add_argument("--quick", action="store_true",
                        help=f"data.max_examples={QUICK_MAX_EXAMPLES}, {QUICK_EPOCHS} epochs, 1 repeat, 1 thread (smoke check)")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR / "overhead.json")
    args = parser.parse_args(argv)
    if args.quick:
        args.epochs, args.repeats = QUICK_EPOCHS, 1
        args.threads = args.threads or 1
    args.max_examples = QUICK_MAX_EXAMPLES if args.quick else None
    if args.epochs <= WARMUP_EPOCHS:
        parser.error(f"--epochs must be > {WARMUP_EPOCHS}: the first epoch is not timed")
    if args.repeats < 1:
        parser.error("--repeats must be >= 1")
    if args.threads is not None and args.threads < 1:
        parser.error("--threads must be >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    require_data(args.data_dir, ["sst2/train.tsv"])
    os.environ["TEXTCLASS_DATA_DIR"] = str(args.data_dir.resolve())
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    for name in ("lightning", "lightning.pytorch", "lightning.fabric", "textclass"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore")
    if args.threads:
        torch.set_num_threads(args.threads)
    models = [m for m in args.models.split(",") if m]

    rows: list[Row] = []
    samples = {}
    with tempfile.TemporaryDirectory(prefix="textclass-bench-") as tmp:
        for model in models:
            model_rows, samples[model] = bench_model(model, args, Path(tmp))
            rows += model_rows
    print_table(rows, models)
    write_results(args.out, metadata(args, samples), rows)
    bad = [r["name"] for r in rows if not (isinstance(r["value"], float) and math.isfinite(r["value"]) and r["value"] > 0)]
    if bad:
        print(f"not a positive finite figure: {', '.join(bad)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
