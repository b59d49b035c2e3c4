"""Command-line overrides as names: what sets runs apart, shown once for what they share.

A sweep's jobs, an ensemble's members and compare's systems are named by the overrides that differ
between them (`model=lstm seed=2`), not by job numbers or directory names; the overrides every one
of them shares are said once, above the table.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from omegaconf import ListConfig, OmegaConf

from textclass.run_files import HYDRA_FILE, OVERRIDES_FILE

# the config groups whose options make a different system (not where it logs or runs)
SYSTEM_GROUPS = ("experiment", "data", "model", "tokenizer", "embeddings", "optimizer", "scheduler")


def override_key(arg: str) -> str:
    """`+seed=3`, `++seed=3`, `~seed`, `seed=1,2` -> seed."""
    return arg.lstrip("+~").split("=", 1)[0]


@dataclass(frozen=True)
class Distinct:
    shared: list[str]  # the overrides every item has, in the first item's order
    own: list[list[str]]  # each item's other overrides, in its order


def distinct(overrides: Sequence[Sequence[str]]) -> Distinct:
    """The overrides all items share, and what each has beside them; one item shares nothing (its
    overrides are what it is)."""
    if len(overrides) < 2:
        return Distinct([], [list(o) for o in overrides])
    common = set.intersection(*(set(o) for o in overrides))
    return Distinct([o for o in overrides[0] if o in common], [[o for o in items if o not in common] for items in overrides])


def run_overrides(run_dir: Path) -> list[str] | None:
    """The command-line overrides a run directory was made with; None when it has no readable list."""
    path = Path(run_dir) / OVERRIDES_FILE
    try:
        loaded = OmegaConf.load(path)
    except Exception:  # noqa: BLE001 - missing, unreadable or invalid: the caller names the run otherwise
        return None
    return [str(o) for o in loaded] if isinstance(loaded, ListConfig) else None


def run_choices(run_dir: Path) -> dict[str, str]:
    """The config group options a run was made with (model: bow, optimizer: adam, ...), as Hydra saved them."""
    try:
        choices = OmegaConf.select(OmegaConf.load(Path(run_dir) / HYDRA_FILE), "hydra.runtime.choices")
    except Exception:  # noqa: BLE001 - missing or unreadable: no choices to name the run by
        return {}
    return {str(k): str(v) for k, v in choices.items() if str(k) in SYSTEM_GROUPS} if choices is not None else {}


def run_names(run_dirs: Sequence[Path]) -> list[str]:
    """A name per run: the overrides that set it apart from the others (`model=lstm seed=2`), led by
    the group options that differ even where a run kept the default (`model=bow`); else (and for a
    run alone) its directory's name (a sweep job's after its sweep's: `<sweep>/3`); names made unique."""
    if len(run_dirs) < 2:
        return [dir_name(Path(d)) for d in run_dirs]
    found = [run_overrides(d) for d in run_dirs]
    own = distinct([o or [] for o in found]).own if all(o is not None for o in found) else [[] for _ in run_dirs]
    choices = [run_choices(d) for d in run_dirs]
    differing = [g for g in dict.fromkeys(g for c in choices for g in c) if len({c.get(g) for c in choices}) > 1]
    names = []
    for overrides, chosen, run_dir in zip(own, choices, run_dirs):
        keys = {override_key(o) for o in overrides}
        parts = [f"{g}={chosen[g]}" for g in differing if g in chosen and g not in keys] + overrides
        names.append(" ".join(parts) if parts else dir_name(Path(run_dir)))
    return unique(names, [str(d) for d in run_dirs])


def dir_name(path: Path) -> str:
    """A directory's name; a sweep job's (its number) after its sweep's name: `2025-01-01_12-00-00_1a2b3c/3`."""
    path = path.resolve()
    return f"{path.parent.name}/{path.name}" if path.name.isdigit() else path.name


def unique(names: Sequence[str], fallbacks: Sequence[str]) -> list[str]:
    """`names`, each that occurs more than once replaced by `name (fallback)`."""
    return [n if names.count(n) == 1 else f"{n} ({f})" for n, f in zip(names, fallbacks)]
