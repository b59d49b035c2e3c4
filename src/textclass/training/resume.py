"""Going on with a run, and leaving no trace of one that bad input stopped.

- `resume=<run dir>|last`: that run's own overrides (those given now after them), its directory and
  its last checkpoint; a finished run is NothingToDo, and the run's overrides may not grant what
  only the user may (config/trust.py's opt-in keys).
- `removed_when_refused`: a new run directory that bad input stops before it trains is removed; a
  refused resume gets back what Hydra rewrote as the job started.
- `plugin_arguments`: keys that moved (model.distill.* is distill.* now) still work.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig

from textclass.config.compose import compose_config
from textclass.config.trust import check_replayable, check_trusted
from textclass.errors import ConfigError, NothingToDo, TrainingDiverged, find_user_error
from textclass.overrides import override_key
from textclass.run_files import HYDRA_DIR, HYDRA_FILES, LAST_CHECKPOINT, OVERRIDES_FILE, TRAIN_LOG
from textclass.training.run_dir import load_run_overrides

log = logging.getLogger(__name__)


def resume_arguments(args: list[str]) -> list[str]:
    """Rewrite `resume=...` into the resumed run's overrides, its run dir and its last checkpoint.

    Overrides given now come after the original ones, so they win (e.g. a larger trainer.max_epochs).
    A run with nothing left to train ends the command (NothingToDo) before anything in it is touched.
    """
    resume = [a for a in args if a.startswith("resume=")]
    if not resume:
        return args
    # torch: loaded only when a run is resumed, not for every command line
    from textclass.training.checkpoint import read_checkpoint

    target = resume[-1].split("=", 1)[1]
    now = [a for a in args if not a.startswith("resume=")]
    run_dir = latest_run(runs_dir(compose_config("train", now))) if target == "last" else Path(target).expanduser()
    ckpt = run_dir / LAST_CHECKPOINT
    if not ckpt.is_file() or not (run_dir / OVERRIDES_FILE).is_file():
        raise ConfigError(f"resume={target}: {run_dir} is not a textclass-train run with {LAST_CHECKPOINT} and {OVERRIDES_FILE}")
    original = load_run_overrides(run_dir)
    check_replayable(original, now, run_dir / OVERRIDES_FILE)
    cfg = compose_config("train", [*original, *now])
    check_trusted(cfg, run_dir / OVERRIDES_FILE)
    if finished := finished_reason(read_checkpoint(ckpt), cfg):
        reason, how_to_go_on = finished
        raise NothingToDo(
            f"resume={target}: nothing to do, the run is finished ({reason}); its checkpoints and metrics are "
            f"left as they are. To train on: textclass-train resume={target} {how_to_go_on}"
        )
    RESUMED[run_dir.resolve()] = Snapshot.of(run_dir)
    return [*original, *now, f"ckpt_path={ckpt.resolve()}", f"hydra.run.dir={run_dir.resolve()}"]


def epochs_done(checkpoint: dict) -> int:
    """The epochs a checkpoint's run has finished."""
    progress = checkpoint.get("loops", {}).get("fit_loop", {}).get("epoch_progress", {}).get("current", {})
    return int(progress.get("processed", checkpoint.get("epoch", -1) + 1))


def finished_reason(checkpoint: dict, cfg: DictConfig) -> tuple[str, str] | None:
    """Why a run saved as `checkpoint` would train no further under `cfg` and the overrides that
    would let it, or None if it would."""
    epochs = epochs_done(checkpoint)
    max_epochs = cfg.trainer.get("max_epochs")
    if max_epochs is not None and max_epochs != -1 and epochs >= max_epochs:
        return f"it trained {epochs} of trainer.max_epochs={max_epochs} epochs", "trainer.max_epochs=<more epochs>"
    if (cfg.get("callbacks") or {}).get("early_stopping"):
        states = [v for k, v in checkpoint.get("callbacks", {}).items() if k.startswith("EarlyStopping")]
        if states and states[0].get("stopped_epoch", 0) > 0:
            return f"early stopping ended it after {epochs} epochs", "callbacks.early_stopping=null"
    return None


def runs_dir(cfg: DictConfig) -> Path:
    """Where single runs go (hydra.run.dir's parent under the default layout): paths.log_dir/<task>/runs."""
    return Path(cfg.paths.log_dir) / cfg.task_name / "runs"


def latest_run(runs_dir: Path) -> Path:
    """The most recently started run under `runs_dir` that has a last checkpoint."""
    runs = sorted(p.parent.parent for p in runs_dir.glob(f"*/{LAST_CHECKPOINT}"))
    if not runs:
        raise ConfigError(f"resume=last: no run with checkpoints/last.ckpt under {runs_dir.resolve()}; pass resume=<run dir>")
    return runs[-1]


@contextmanager
def removed_when_refused(run_dir: Path) -> Iterator[None]:
    """A run that bad input stops before it trains leaves nothing behind (its error is on the
    console): a new run directory is removed; a resumed one gets back the .hydra/ files and train.log
    Hydra rewrote and extended for the job (`Snapshot` took them first). A directory that held
    anything else, or a run a bug (not bad input) stopped, is kept as it is."""
    fresh = run_dir.is_dir() and all(p.name in HYDRA_FILES for p in run_dir.iterdir())
    before = RESUMED.get(run_dir.resolve())
    started = {p: p.stat().st_mtime_ns for p in run_dir.glob("checkpoints/*.ckpt")}
    try:
        yield
    except Exception as err:
        user_error = find_user_error(err)
        refused = user_error is not None and not isinstance(user_error, TrainingDiverged)
        wrote_checkpoints = {p: p.stat().st_mtime_ns for p in run_dir.glob("checkpoints/*.ckpt")} != started
        if refused and not wrote_checkpoints and (fresh or before is not None):
            close_log_file(run_dir / TRAIN_LOG)  # the error line must not go back into it
            if fresh:
                shutil.rmtree(run_dir, ignore_errors=True)
            else:
                before.restore(run_dir)
        raise


def close_log_file(path: Path) -> None:
    """Close and drop the logging handler that writes `path` (Hydra's job log file)."""
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, logging.FileHandler) and Path(h.baseFilename) == path.resolve()]:
        handler.close()
        root.removeHandler(handler)


@dataclass(frozen=True)
class Snapshot:
    """What Hydra changes in a resumed run's directory as the job starts: its .hydra/ files and the
    length of train.log."""

    hydra_files: dict[str, bytes]
    log_size: int | None

    @classmethod
    def of(cls, run_dir: Path) -> Snapshot:
        files = {p.name: p.read_bytes() for p in (run_dir / HYDRA_DIR).glob("*") if p.is_file()}
        log_file = run_dir / TRAIN_LOG
        return cls(files, log_file.stat().st_size if log_file.is_file() else None)

    def restore(self, run_dir: Path) -> None:
        for path in (run_dir / HYDRA_DIR).glob("*"):
            if path.is_file() and path.name not in self.hydra_files:
                path.unlink()
        for name, data in self.hydra_files.items():
            (run_dir / HYDRA_DIR / name).write_bytes(data)
        log_file = run_dir / TRAIN_LOG
        if self.log_size is None:
            log_file.unlink(missing_ok=True)
        elif log_file.is_file():
            os.truncate(log_file, self.log_size)

# run directories this process resumes, as they were before Hydra touched them (resume_arguments)
RESUMED: dict[Path, Snapshot] = {}

# keys that moved, as users may have typed them (and runs' overrides hold them): old prefix -> new
MOVED_KEYS = {"model.distill.": "distill."}


def plugin_arguments(args: list[str]) -> list[str]:
    """`distill.teacher=<run>` without `distill=kd` chooses it; `model.distill.*` (the key before
    distillation became a plug-in) still works, with a note saying what it is now."""
    args, moved = list(args), []
    for i, arg in enumerate(args):
        rest = arg.lstrip("+~")
        prefix = arg[: len(arg) - len(rest)]
        for old, new in MOVED_KEYS.items():
            if rest.startswith(old):
                args[i] = prefix + new + rest[len(old):]
                moved.append((arg, args[i]))
    for old, new in moved:
        print(f"note: {old} is {new} now (distill=kd is the distillation plug-in's config group)", file=sys.stderr)
    if any(override_key(a).startswith("distill.") for a in args) and not any(override_key(a) == "distill" for a in args):
        args = ["distill=kd", *args]  # first: after a flag such as --cfg it would be read as its value
    return args
