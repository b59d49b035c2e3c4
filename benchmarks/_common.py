"""What every benchmark script shares: where the data is, what a result row is, how results are written.

A results file is JSON: {"metadata": {machine and library versions, then the script's own settings},
"rows": [{"name", "value", "unit"}, ...]}.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import platform
import sys
import warnings
from collections.abc import Iterable
from datetime import datetime, timezone
from pathlib import Path

import lightning as L
import torch
from omegaconf import DictConfig

from textclass.config.compose import CONFIG_DIR
from textclass.run_files import HISTORY_FILE

REPO = Path(__file__).resolve().parents[1]
CONF = Path(CONFIG_DIR)  # the config tree textclass ships (src/textclass/conf)
RESULTS_DIR = REPO / "benchmarks" / "results"

Row = dict[str, object]


def default_data_dir() -> Path:
    """$TEXTCLASS_DATA_DIR, else ../shared/data beside the checkout."""
    return Path(os.environ.get("TEXTCLASS_DATA_DIR") or REPO.parent / "shared" / "data")


def require_data(data_dir: Path, files: Iterable[str]) -> None:
    """Exits with status 2 and one line naming the missing files unless every one of `files` is under `data_dir`."""
    missing = [f for f in files if not (data_dir / f).is_file()]
    if missing:
        print(f"data not found in {data_dir}: missing {', '.join(missing)}; "
              "pass --data-dir or set TEXTCLASS_DATA_DIR to the folder holding sst2/ and news/", file=sys.stderr)
        raise SystemExit(2)


def quiet_training() -> None:
    """Warnings only from Lightning and textclass, no Python warnings: the figures stay readable."""
    logging.basicConfig(level=logging.WARNING)
    for name in ("lightning", "lightning.pytorch", "textclass"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore")


def in_process_setup(data_dir: Path, files: Iterable[str], threads: int) -> None:
    """For a script that loads runs in its own process: the data there (else exit 2), textclass and
    Hugging Face reading it offline, quiet logs, `threads` torch threads."""
    require_data(data_dir, files)
    os.environ["TEXTCLASS_DATA_DIR"] = str(data_dir.resolve())
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    quiet_training()
    torch.set_num_threads(threads)


def hydra_string(value: object) -> str:
    """`value` as a quoted Hydra override value (a path with spaces or '=' stays one value)."""
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"


def builtin_data_config(name: str, data_dir: Path, *overrides: str) -> DictConfig:
    """textclass-train's composed config for `data=<name>` read from `data_dir` (downloads off), with `overrides`."""
    from textclass.config.compose import compose_config

    return compose_config("train", [f"data={name}", f"paths.data_dir={hydra_string(data_dir.resolve())}", "data.dataset.download=false", *overrides])


def epoch_seconds(run_dir: Path) -> list[float]:
    """Each epoch's `time/epoch_s` (training and its validation) from a run's history.csv."""
    history = run_dir / HISTORY_FILE
    if not history.is_file():
        raise SystemExit(f"{history} is missing: keep callbacks.epoch_timer and callbacks.run_plots, they time the epochs")
    with history.open(newline="") as f:
        return [float(r["epoch_s"]) for r in csv.DictReader(f)]


def row(name: str, value: float, unit: str) -> Row:
    return {"name": name, "value": value, "unit": unit}


def environment() -> dict[str, object]:
    """When and on what the figures were measured."""
    return {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "lightning": L.__version__,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.is_available(),
        # other work on the machine slows the figures down: the load says how busy it was
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }


def write_results(path: Path, settings: dict[str, object], rows: list[Row]) -> None:
    """Writes the results file: environment() and the script's settings as metadata, then the rows."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"metadata": {**environment(), **settings}, "rows": rows}, indent=1))
    print(f"wrote {path}")
