"""The systems compare ranks: one per run directory, one per group of a sweep's jobs that differ only
in `seed` / `data.fold` (a seed group), named by the overrides that set them apart, each with the
predictions its runs saved, checked to be on the same examples and classes."""

from __future__ import annotations

import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from textclass.errors import ConfigError, DataError
from textclass.overrides import dir_name, distinct, override_key, run_names
from textclass.reports.sweeps import REPEAT_KEYS, collect_jobs, group_repeats
from textclass.run_files import RUN_CONFIG
from textclass.training.predictions import Predictions, load_predictions

MULTIRUN_CONFIG = "multirun.yaml"  # what Hydra writes into a sweep directory


@dataclass(frozen=True)
class Run:
    dir: Path
    predictions: Predictions


@dataclass(frozen=True)
class System:
    name: str
    source: str  # the command-line argument it came from
    runs: tuple[Run, ...]

    @property
    def kind(self) -> str:
        return "seeds" if len(self.runs) > 1 else "run"


def read_systems(sources: list[str], split: str) -> list[System]:
    """One system per run directory, and one per group of repeats in each sweep directory."""
    seen: dict[Path, str] = {}
    for source in sources:
        resolved = Path(source).resolve()
        if resolved in seen:
            raise ConfigError(f"{seen[resolved]} and {source} are the same directory: give each system once")
        seen[resolved] = source
    found = [(source, key, dirs) for source in sources for key, dirs in find_groups(source)]
    names = system_names([(source, key, dirs) for source, key, dirs in found])
    return [
        System(name, source, tuple(Run(d, load_predictions(d, split)) for d in dirs)) for name, (source, _, dirs) in zip(names, found)
    ]


def find_groups(source: str) -> list[tuple[str | None, list[Path]]]:
    """What one argument holds: [(None, [run])] for a run directory, [(overrides, job dirs), ...] for a
    sweep, one per group of repeats (overrides "" when the sweep only repeats one setup)."""
    path = Path(source)
    if not path.is_dir():
        raise DataError(f"{source}: no such directory; pass textclass-train run directories or multirun (sweep) directories")
    if (path / RUN_CONFIG).is_file():
        return [(None, [path])]
    # Hydra writes multirun.yaml into every sweep directory: no search through an arbitrary tree
    if not (path / MULTIRUN_CONFIG).is_file():
        raise DataError(
            f"{source}: neither a run directory (no {RUN_CONFIG}) nor a sweep directory (no {MULTIRUN_CONFIG}); "
            "pass textclass-train run directories or multirun (sweep) directories"
        )
    jobs = collect_jobs(path)
    groups = list(group_repeats(jobs).values())
    finished = sum(len(members) for members in groups)
    if finished < len(jobs):
        print(f"note: {source}: {len(jobs) - finished} job(s) without metrics.json (failed or unfinished) left out", file=sys.stderr)
    if not groups:
        raise DataError(f"{source}: no job of this sweep finished (none has metrics.json)")
    return list(zip(setup_differences([members[0].overrides for members in groups]), [[job.dir for job in members] for members in groups]))


def setup_differences(overrides: list[list[str]]) -> list[str]:
    """Each group's overrides (one job's, less `seed` / `data.fold`) without those every group
    shares: `model=cnn`, not `model=cnn trainer.max_epochs=5 data.batch_size=64`."""
    setups = [[o for o in given if override_key(o) not in REPEAT_KEYS] for given in overrides]
    if len(setups) == 1:
        return [""]  # a sweep that repeats one setup: its own name says it
    return [" ".join(own) for own in distinct(setups).own]


def system_names(found: list[tuple[str, str | None, list[Path]]]) -> list[str]:
    """Short names: a sweep group's distinguishing overrides (the sweep's name when it repeats one
    setup); single runs by the overrides that set them apart from the other single runs (else their
    directory's name); names that would clash are prefixed by their argument."""
    runs = [dirs[0] for _, key, dirs in found if key is None]
    run_name = dict(zip(runs, run_names(runs)))
    short = [key if key else run_name[dirs[0]] if key is None else dir_name(Path(source)) for source, key, dirs in found]
    counts = Counter(short)
    return [name if counts[name] == 1 else f"{source} {key}" if key else source for name, (source, key, _) in zip(short, found)]


def check_same_data(systems: list[System]) -> Predictions:
    """The first run's predictions, once every run's are on the same examples with the same classes."""
    first_system, first = systems[0], systems[0].runs[0]
    for system in systems:
        for run in system.runs:
            p, q = first.predictions, run.predictions
            names = f"{run_label(first_system, first)} and {run_label(system, run)}"
            if q.data != p.data:
                raise DataError(
                    f"{names} were scored on different examples: {p.describe()} vs {q.describe()}; compare runs on the same "
                    "split of the same data (another vocabulary, tokenizer or model is fine)"
                )
            if q.class_names != p.class_names:
                raise DataError(f"{names} have different classes: {p.class_names} vs {q.class_names}")
    return first.predictions


def run_label(system: System, run: Run) -> str:
    return system.name if len(system.runs) == 1 else f"{system.name} ({run.dir})"
