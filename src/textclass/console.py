"""What a person reads while a command runs: one line per epoch, a run summary, and nothing else.

Third-party libraries print hints and notes a user can do nothing about (Lightning's `srun` hint and
log-interval note, onnxscript's INFO lines, gensim's traceback before our own one-line error).
`quiet_third_party` drops them unless the command runs with `-v` (TEXTCLASS_VERBOSE=1), which brings
every one of them back. Pure functions and logging set-up only: no Lightning here.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

VERBOSE_ENV = "TEXTCLASS_VERBOSE"
VERBOSE_FLAGS = ("-v", "--verbose")

# Lightning's log lines and warnings that say nothing a user can act on (matched at their start)
LIGHTNING_NOISE = (
    "💡 Tip:",
    "Trainer already configured with model summary callbacks",
    "`Trainer.fit` stopped:",  # the run summary says why training ended
    "GPU available:",
    "TPU available:",
    "HPU available:",
    "Restoring states from the checkpoint path",  # the test stage loading the selected checkpoint
    "Loaded model weights from the checkpoint",
)
WARNING_NOISE = (
    r"The `srun` command is available on your system but is not used",
    r"The number of training batches \(\d+\) is smaller than the logging interval",
    r"`isinstance\(treespec, LeafSpec\)` is deprecated",
    r"The '(train|val|test)_dataloader' does not have many workers",
    r"You're resuming from a checkpoint that ended before the epoch ended",
    r"Checkpoint directory .* exists and is not empty",
    r"Encountered `nan` values in tensor",  # torchmetrics; the divergence check's error says it plainly
)
# libraries whose INFO lines are their own progress notes (onnxscript: 9 of export's 14 lines)
CHATTY_LOGGERS = ("onnxscript", "onnx_ir", "gensim", "torch.onnx", "torch._dynamo", "torch.export", "wandb")


@contextmanager
def silenced(logger: str) -> Iterator[None]:
    """No record of `logger` (and below) while the block runs, unless verbose: for a library that logs
    a traceback of its own before raising the error we turn into one clear line."""
    target = logging.getLogger(logger)
    level = target.level
    if not verbose():
        target.setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        target.setLevel(level)


def shown_path(path: Path) -> str:
    """`path` relative to the working directory when it lies below it (as a user would type it)."""
    resolved = path.resolve()
    return str(resolved.relative_to(Path.cwd())) if resolved.is_relative_to(Path.cwd()) else str(resolved)


def verbose() -> bool:
    return os.environ.get(VERBOSE_ENV, "") not in ("", "0", "false")


def take_verbose_flag(args: list[str]) -> list[str]:
    """`-v` / `--verbose` anywhere on a command line: set TEXTCLASS_VERBOSE=1 (DDP's other processes
    inherit it) and return the other arguments."""
    if any(a in VERBOSE_FLAGS for a in args):
        os.environ[VERBOSE_ENV] = "1"
    return [a for a in args if a not in VERBOSE_FLAGS]


class DropNoise(logging.Filter):
    def __init__(self, prefixes: Sequence[str]) -> None:
        super().__init__()
        self.prefixes = tuple(prefixes)

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(self.prefixes)


def quiet_third_party() -> None:
    """Drop the noise above (nothing with -v), and Lightning's own second copy of each of its lines:
    imported after Hydra has set up logging, Lightning's records reach Hydra's handlers (console and
    train.log) and also the console handler `lightning` adds for itself."""
    if logging.getLogger().hasHandlers():
        own = logging.getLogger("lightning")
        for handler in [h for h in own.handlers if type(h) is logging.StreamHandler]:
            own.removeHandler(handler)
    if verbose():
        return
    os.environ.setdefault("WANDB_QUIET", "true")  # W&B's banner lines; its warnings still show
    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero"):
        target = logging.getLogger(name)
        if not any(isinstance(f, DropNoise) for f in target.filters):
            target.addFilter(DropNoise(LIGHTNING_NOISE))
    for message in WARNING_NOISE:
        warnings.filterwarnings("ignore", message=message)
    for name in CHATTY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


# --- the console handler (conf/hydra/default.yaml, hydra/job_logging/stderr.yaml) ---------------------
FILE_ONLY = "file_only"  # a record with this attribute set goes to the log file, not the console


class ConsoleFormatter(logging.Formatter):
    """`10:02:00 epoch 1/3 ...`; `10:02:00 warning: ...` from WARNING up. The log file keeps the long
    form (date, logger, level) for whoever debugs a run later."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(message)s", datefmt="%H:%M:%S")

    def formatMessage(self, record: logging.LogRecord) -> str:
        if record.levelno >= logging.WARNING:
            return f"{record.asctime} {record.levelname.lower()}: {record.message}"
        return super().formatMessage(record)


class NotFileOnly(logging.Filter):
    """Keeps off the console what the command prints there itself (its one `error:` line)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not getattr(record, FILE_ONLY, False)


# --- the lines --------------------------------------------------------------------------------------


@dataclass
class EpochRecord:
    """One finished training epoch's figures, as the console, history.csv and curves.png show them
    (epochs count from 1; None where a value was not logged that epoch)."""

    epoch: int
    train_loss: float | None = None
    train_acc: float | None = None
    val_loss: float | None = None
    val_acc: float | None = None
    epoch_s: float | None = None


def epoch_line(e: EpochRecord, max_epochs: int | None, new_best: bool) -> str:
    """`epoch 3/10  train loss 0.4123 acc 0.8712 | val loss 0.3981 acc 0.8801 *  2.3 s`"""
    of = f"/{max_epochs}" if max_epochs and max_epochs > 0 else ""
    width = len(str(max_epochs)) if of else 1
    line = f"epoch {e.epoch:>{width}}{of}  train {figures(e.train_loss, e.train_acc)}"
    if e.val_loss is not None or e.val_acc is not None:
        line += f" | val {figures(e.val_loss, e.val_acc)}{' *' if new_best else '  '}"
    return line + (f"  {duration(e.epoch_s)}" if e.epoch_s is not None else "")


def figures(loss: float | None, acc: float | None) -> str:
    return " ".join(f"{name} {value:.4f}" for name, value in (("loss", loss), ("acc", acc)) if value is not None)


def duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest:02d} s" if minutes < 60 else f"{minutes // 60} h {minutes % 60:02d} min"


def selection_line(monitor: str, mode: str) -> str:
    return f"the checkpoint is selected by {monitor} ({'lowest' if mode == 'min' else 'highest'}); * marks a new best"


def early_stop_line(monitor: str, patience: int, stopped_after: int, selected: int | None) -> str:
    chosen = f"; epoch {selected} is selected" if selected is not None else ""
    return f"early stopping after epoch {stopped_after}: {monitor} did not improve for {patience} epoch{'s' * (patience != 1)}{chosen}"


@dataclass(frozen=True)
class RunSummary:
    run_dir: str
    seconds: float
    epochs: int  # trained, in this run and any it resumed
    selected_epoch: int | None
    selected_file: str | None
    monitor: str
    metrics: Mapping[str, float]
    splits: Sequence[tuple[str, str, str]]  # (label, acc key, f1 key) of the figures to show
    files: Sequence[str]


def summary_lines(s: RunSummary) -> list[str]:
    lines = [f"done in {duration(s.seconds)}: {s.run_dir}"]
    if s.selected_epoch is not None:
        value = f" {s.metrics[s.monitor]:.4f}" if s.monitor in s.metrics else ""
        lines.append(f"  selected: epoch {s.selected_epoch} of {s.epochs} (best {s.monitor}{value}): {s.selected_file}")
    for label, acc, f1 in s.splits:
        if acc in s.metrics:
            f1_part = f", macro-F1 {s.metrics[f1]:.4f}" if f1 in s.metrics else ""
            lines.append(f"  {label}: acc {s.metrics[acc]:.4f}{f1_part}")
    if s.files:
        lines.append(f"  files: {', '.join(s.files)}")
    return lines
