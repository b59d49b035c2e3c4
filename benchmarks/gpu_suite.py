"""The GPU suite: MiniLM fine-tuning on SST-2 vs the HF Trainer, and the news word models' GPU use, in one run.

Run from the repository root (benchmarks/gpu_suite.sh wraps it in a hard time limit):
    python -m benchmarks.gpu_suite [--quick] [--cpu] [--data-dir DIR] [--budget-s 450] [--out PATH]

Sections, in this order (each prints its figures when it finishes and rewrites the results file, so a
run stopped by the time limit keeps what it measured; a section that no longer fits the budget is
skipped with the reason):
1. MiniLM on SST-2, bf16-mixed, one full epoch on each side (textclass, then the HF Trainer,
   hf_trainer.py): examples/s after the warm-up, epoch time, dev accuracy after the epoch;
2. the same in 32-true, timed windows (`--window` steps after `--warmup`);
3. textcnn and lstm on news (experiment=best/news_<model>, GloVe), one epoch each: the epoch time,
   the mean GPU utilisation sampled during training (nvidia-smi, else torch.cuda.utilization()) and
   the share of the step loop spent waiting for the data loader;
4. MiniLM bf16-mixed + torch.compile, timed windows (compilation and recompiles fall in the warm-up).
Both sides of a comparison train the same model, batch, padding policy and precision (hf_trainer.py's
docstring lists what is matched and what is not); the ratio row is textclass / HF Trainer.

Without a GPU nothing is measured: every GPU row prints "not measured: no GPU" and the script exits 0.
--cpu runs the same code on the CPU; --quick shrinks everything (a tiny random BERT with the MiniLM's
tokenizer, 48 SST-2 and 200 news examples, a few steps, random embeddings instead of GloVe, and
torch.compile with the `eager` backend: graph capture without code generation) so a test can run it.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import lightning as L
import torch

from benchmarks._common import RESULTS_DIR, Row, default_data_dir, quiet_training, require_data, row, write_results
from benchmarks.bert_throughput import (
    MINILM, TINY_BERT, TRAIN_EXAMPLES, LoopSettings, bert_sized, compare_with_hf_trainer, comparison_rows, read_texts,
    textclass_run,
)
from benchmarks.hf_trainer import BertSettings

NO_GPU = "not measured: no GPU"
NEWS_MODELS = ("textcnn", "lstm")
MINILM_SECTIONS = (("bf16-mixed", False, "epoch"), ("32-true", False, "window"), ("bf16-mixed", True, "window"))


@dataclass(frozen=True)
class SuitePlan:
    """Sizes of one suite run: the full GPU run, or the quick one for tests."""

    quick: bool
    accelerator: str  # gpu | cpu
    batch_size: int = 32
    warmup: int = 30  # untimed steps before each timed window (the compile warm-up gets `compile_warmup`)
    compile_warmup: int = 60
    window: int = 300  # timed steps in 32-true and compiled runs
    sst2_examples: int | None = None  # None: all of SST-2
    news_examples: int | None = None
    compile_backend: str = "inductor"
    news_precision: str = "32-true"
    # seconds a section needs at least to be started (its estimate on an H200; the quick plan: 0)
    minimum_s: dict[str, float] = field(default_factory=lambda: {"epoch": 150, "window": 60, "compile": 180, "news": 40})

    @staticmethod
    def build(quick: bool, accelerator: str, window: int | None, warmup: int | None) -> SuitePlan:
        if quick:
            plan = SuitePlan(True, accelerator, batch_size=8, warmup=1, compile_warmup=2, window=3, sst2_examples=48,
                             news_examples=200, compile_backend="eager", minimum_s={})
        else:
            plan = SuitePlan(False, accelerator)
        return SuitePlan(**{**plan.__dict__, "window": window or plan.window, "warmup": warmup or plan.warmup})


# --- GPU utilisation, sampled in the background while a model trains ------------------------------


class UtilisationSampler(L.Callback):
    """Samples the GPU's utilisation (percent of time a kernel ran) from training start to end."""

    def __init__(self, device_index: int = 0, interval_s: float = 0.1):
        self.device_index = device_index
        self.interval_s = interval_s
        self.samples: list[float] = []
        self.source = "none"
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._process: subprocess.Popen | None = None

    def on_train_start(self, trainer, module):
        if module.device.type != "cuda":
            return
        smi = shutil.which("nvidia-smi")
        if smi:
            self.source = "nvidia-smi"
            self._process = subprocess.Popen(
                [smi, "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits", f"--id={self.device_index}",
                 f"--loop-ms={int(self.interval_s * 1000)}"],
                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
            )
            self._threads.append(threading.Thread(target=self._read_smi, daemon=True))
        else:
            self.source = "torch.cuda.utilization"
            self._threads.append(threading.Thread(target=self._poll_torch, daemon=True))
        for thread in self._threads:
            thread.start()

    def on_train_end(self, trainer, module):
        self._stop.set()
        if self._process is not None:
            self._process.terminate()
            self._process.wait(timeout=5)
        for thread in self._threads:
            thread.join(timeout=5)

    def _read_smi(self) -> None:
        for line in self._process.stdout:
            if line.strip().isdigit():
                self.samples.append(float(line.strip()))

    def _poll_torch(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.samples.append(float(torch.cuda.utilization(self.device_index)))
            except Exception:  # no pynvml: nothing to sample with
                self.source = "none (no nvidia-smi, no pynvml)"
                return

    def mean(self) -> float | None:
        return sum(self.samples) / len(self.samples) if self.samples else None


# --- the suite ------------------------------------------------------------------------------------


@dataclass
class Suite:
    """The rows so far, written after every section; the skipped sections with their reasons."""

    out: Path
    settings: dict[str, object]
    deadline: float
    rows: list[Row] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def remaining_s(self) -> float:
        return self.deadline - time.monotonic()

    def section(self, name: str, minimum_s: float, run: Callable[[], list[Row]]) -> None:
        if self.remaining_s() < minimum_s:
            reason = f"{name}: skipped, {self.remaining_s():.0f} s of the budget left and it needs about {minimum_s:.0f} s"
            self.skipped.append(reason)
            print(reason, flush=True)
            return
        print(f"== {name}", flush=True)
        start = time.monotonic()
        self.rows += run()
        print(f"== {name}: {time.monotonic() - start:.0f} s", flush=True)
        self.write()

    def write(self) -> None:
        write_results(self.out, {**self.settings, "skipped": self.skipped}, self.rows)


def minilm_section(plan: SuitePlan, pretrained: str, encoder: str, texts, precision: str, compile: bool, length: str,
                   work: Path) -> list[Row]:
    """One precision: a full epoch with dev accuracy (`length` epoch), or a timed window, on both sides."""
    full_epoch = length == "epoch"
    warmup = plan.compile_warmup if compile else plan.warmup
    settings = BertSettings(pretrained=pretrained, batch_size=plan.batch_size, precision=precision, compile=compile,
                            compile_backend=plan.compile_backend, epochs=1, accelerator=plan.accelerator,
                            max_steps=None if full_epoch else warmup + plan.window)
    comparison = compare_with_hf_trainer(settings, "sst2", texts, plan.sst2_examples, 1, warmup, work,
                                         evaluate=full_epoch, report=lambda line: print(line, flush=True))
    rows = comparison_rows(f"{encoder} sst2", comparison, plan.batch_size, TRAIN_EXAMPLES["sst2"])
    if comparison.ratio is not None:
        print(f"{comparison.label}: textclass / hf_trainer {comparison.ratio:.2f}x", flush=True)
    return rows


def news_section(plan: SuitePlan, model: str, work: Path) -> list[Row]:
    """One epoch of experiment=best/news_<model>: epoch time, GPU utilisation, data-wait share."""
    overrides = [f"experiment=best/news_{model}", f"data.batch_size={plan.batch_size * 2}"]
    if plan.quick:
        overrides += ["embeddings=none", "embeddings.dim=16", f"data.max_examples={plan.news_examples}"]
    sampler = UtilisationSampler()
    loop = LoopSettings(accelerator=plan.accelerator, precision=plan.news_precision, epochs=1, timing_warmup=plan.warmup)
    result = textclass_run(overrides, loop, work / f"news_{model}", callbacks=[sampler])
    utilisation = sampler.mean()
    rows = [row(f"{model} news epoch s", TRAIN_EXAMPLES["news"] / result.examples_per_s, "s"),
            row(f"{model} news fit wall s", result.train_wall_s, "s"),
            row(f"{model} news data-wait share", result.data_wait_share, "fraction")]
    if utilisation is not None:
        rows.append(row(f"{model} news mean GPU utilisation", utilisation, "%"))
    shown = f"{utilisation:.0f}% ({sampler.source}, {len(sampler.samples)} samples)" if utilisation is not None else (
        f"not measured: {'no GPU (CPU run)' if plan.accelerator == 'cpu' else sampler.source}")
    print(f"{model:<8} news epoch {rows[0]['value']:.1f} s (fit {result.train_wall_s:.1f} s), "
          f"data wait {result.data_wait_share:.1%} of the loop, GPU utilisation {shown}", flush=True)
    return rows


def promised_rows(encoder: str, batch_size: int) -> list[str]:
    """The measurements the suite reports, by name (for the no-GPU table)."""
    names = []
    for precision, compile, length in MINILM_SECTIONS:
        label = precision + ("+compile" if compile else "")
        for side in ("textclass", "hf_trainer"):
            names += [f"{encoder} sst2 {label} {side} training examples/s bs{batch_size}", f"{encoder} sst2 {label} {side} epoch s"]
        names.append(f"{encoder} sst2 {label} textclass/hf_trainer speed ratio")
        if length == "epoch":
            names += [f"{encoder} sst2 {label} {side} dev acc after 1 epoch" for side in ("textclass", "hf_trainer")]
    for model in NEWS_MODELS:
        names += [f"{model} news epoch s", f"{model} news mean GPU utilisation", f"{model} news data-wait share"]
    return names


def markdown_tables(rows: list[Row], encoder: str, batch_size: int, no_gpu: bool) -> str:
    values = {r["name"]: r["value"] for r in rows}

    def cell(name: str, fmt: str) -> str:
        if no_gpu:
            return NO_GPU
        value = values.get(name)
        return "-" if value is None else format(value, fmt)

    lines = [f"| {encoder} on SST-2, batch {batch_size} | textclass examples/s | HF Trainer examples/s | textclass / HF "
             "| textclass epoch s | HF epoch s | textclass dev acc | HF dev acc |", "|---|---|---|---|---|---|---|---|"]
    for precision, compile, _ in MINILM_SECTIONS:
        label = precision + ("+compile" if compile else "")
        p = f"{encoder} sst2 {label}"
        lines.append(
            f"| {label} | {cell(f'{p} textclass training examples/s bs{batch_size}', '.1f')} "
            f"| {cell(f'{p} hf_trainer training examples/s bs{batch_size}', '.1f')} | {cell(f'{p} textclass/hf_trainer speed ratio', '.2f')} "
            f"| {cell(f'{p} textclass epoch s', '.1f')} | {cell(f'{p} hf_trainer epoch s', '.1f')} "
            f"| {cell(f'{p} textclass dev acc after 1 epoch', '.4f')} | {cell(f'{p} hf_trainer dev acc after 1 epoch', '.4f')} |"
        )
    lines += ["", "| news model | epoch s | fit wall s | mean GPU utilisation % | data-wait share |", "|---|---|---|---|---|"]
    for model in NEWS_MODELS:
        utilisation = cell(f"{model} news mean GPU utilisation", ".0f")
        if utilisation == "-" and f"{model} news epoch s" in values:
            utilisation = "not measured: no GPU (CPU run)"
        lines.append(f"| {model} | {cell(f'{model} news epoch s', '.1f')} | {cell(f'{model} news fit wall s', '.1f')} "
                     f"| {utilisation} | {cell(f'{model} news data-wait share', '.3f')} |")
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=default_data_dir(), help="folder holding sst2/ and news/")
    parser.add_argument("--quick", action="store_true", help="tiny slices, tiny models, a few steps (tests)")
    parser.add_argument("--cpu", action="store_true", help="run on the CPU (with --quick: the tested path)")
    parser.add_argument("--budget-s", type=float, default=450.0,
                        help="seconds for all sections; one that would not fit is skipped (gpu_suite.sh's hard limit is 480)")
    parser.add_argument("--window", type=int, default=None, help="timed steps of the windowed runs")
    parser.add_argument("--warmup", type=int, default=None, help="untimed steps before each timed window")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR / "gpu_suite.json")
    args = parser.parse_args(argv)
    if (args.window is not None and args.window < 1) or (args.warmup is not None and args.warmup < 1):
        parser.error("--window and --warmup must be >= 1")
    return args


class SuiteStopped(Exception):
    """SIGTERM (gpu_suite.sh's time limit) arrived: stop the section, keep the figures so far."""


STOPPED = "stopped: the time limit (SIGTERM) stopped the run"


def stop_on_term(signum, frame) -> None:
    raise SuiteStopped(STOPPED)


def stop_suite_on_term(suite: Suite) -> None:
    """From now on SIGTERM first records the stop in the results file (a slow unwind may be killed), then stops."""

    def handler(signum, frame) -> None:
        suite.skipped.append(STOPPED)
        suite.write()
        raise SuiteStopped(STOPPED)

    signal.signal(signal.SIGTERM, handler)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    start = time.monotonic()
    # first: a limit reached while loading or training still writes the figures so far (main's except)
    signal.signal(signal.SIGTERM, stop_on_term)
    require_data(args.data_dir, ["sst2/train.tsv", "sst2/dev.tsv", "news/train.tsv", "news/valid.tsv"])
    os.environ["TEXTCLASS_DATA_DIR"] = str(args.data_dir.resolve())
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    quiet_training()
    import transformers

    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    accelerator = "cpu" if args.cpu else ("gpu" if torch.cuda.is_available() else None)
    plan = SuitePlan.build(args.quick, accelerator or "cpu", args.window, args.warmup)
    encoder = "tiny-bert" if plan.quick else "minilm"
    device = torch.cuda.get_device_name(0) if accelerator == "gpu" else (f"CPU, {os.cpu_count()} cores" if accelerator else NO_GPU)
    settings = {"quick": plan.quick, "device": device, "measured": accelerator is not None, "accelerator": accelerator,
                "plan": {k: v for k, v in plan.__dict__.items() if k != "minimum_s"}, "budget_s": args.budget_s}
    suite = Suite(args.out, settings, start + args.budget_s)
    stop_suite_on_term(suite)
    if accelerator is None:
        suite.settings["not_measured"] = promised_rows(encoder, plan.batch_size)
        print(NO_GPU + " (pass --cpu for the same sections on the CPU)")
        print(markdown_tables([], encoder, plan.batch_size, no_gpu=True))
        suite.write()
        return 0
    if accelerator == "gpu" and not torch.cuda.is_bf16_supported():
        raise SystemExit(f"{device} has no bf16 support: this suite's MiniLM sections run bf16-mixed")
    torch.set_num_threads(os.cpu_count() or 1)
    status = 0
    with tempfile.TemporaryDirectory(prefix="textclass-gpu-suite-") as tmp:
        work = Path(tmp)
        try:
            pretrained = bert_sized(work / "tiny-bert", **TINY_BERT) if plan.quick else MINILM
            suite.settings["encoder"] = "tiny random BERT (MiniLM tokenizer)" if plan.quick else MINILM
            texts = read_texts("sst2", plan.sst2_examples, work / "read")
            minimum = plan.minimum_s
            suite.section("MiniLM bf16-mixed, one epoch", minimum.get("epoch", 0),
                          lambda: minilm_section(plan, pretrained, encoder, texts, "bf16-mixed", False, "epoch", work))
            suite.section("MiniLM 32-true, timed window", minimum.get("window", 0),
                          lambda: minilm_section(plan, pretrained, encoder, texts, "32-true", False, "window", work))
            for model in NEWS_MODELS:
                suite.section(f"{model} on news, one epoch", minimum.get("news", 0), lambda model=model: news_section(plan, model, work))
            if plan.quick and plan.accelerator == "cpu":
                print("torch.compile on the quick CPU path: backend=eager (graph capture and recompiles checked, "
                      "no inductor code generation, which takes minutes on a small CPU)", flush=True)
            suite.section("MiniLM bf16-mixed + torch.compile, timed window", minimum.get("compile", 0),
                          lambda: minilm_section(plan, pretrained, encoder, texts, "bf16-mixed", True, "window", work))
        except SuiteStopped:
            print(f"{STOPPED}; the figures so far follow", flush=True)
            status = 124
    suite.write()
    print(markdown_tables(suite.rows, encoder, plan.batch_size, no_gpu=False))
    for reason in suite.skipped:
        print(f"- {reason}")
    print(f"total {time.monotonic() - start:.0f} s")
    return status


if __name__ == "__main__":
    sys.exit(main())
