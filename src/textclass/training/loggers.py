"""The loggers that `logger=...` configures (conf/logger/), built so that their mistakes show before training.

- A logger whose package is missing (mlflow, wandb) is one ConfigError naming the extra to install,
  not Lightning's ModuleNotFoundError.
- An MLflow server that does not answer is one ConfigError naming the URI, before training starts:
  MLflow's client would otherwise retry for minutes at the first metric, mid-run. A local store
  gets its folder made (SQLite creates no folders).
- MLflow and W&B runs are named after the run directory (`run_name: null` / `name: null`).
- W&B runs end with their job (`WandbLogger`, `finish_runs`): Lightning leaves a run open, and the
  next WandbLogger of the process, the next job of a multirun, would log into it.

mlflow and wandb are imported by their Lightning loggers only when one is configured; this module
itself is imported by `train()`, not at start-up.
"""

from __future__ import annotations

import importlib.util
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlsplit

from hydra.utils import instantiate
from lightning.pytorch.loggers import Logger
from lightning.pytorch.loggers import WandbLogger as LightningWandbLogger
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig

from textclass.errors import ConfigError
from textclass.files import writable_folder

LOGGERS_EXTRA = "pip install 'textclass[loggers]'"
# by logger class name: the package it needs, and its option that names the run
REQUIRED_PACKAGES = {"MLFlowLogger": "mlflow", "WandbLogger": "wandb"}
RUN_NAME_OPTIONS = {"MLFlowLogger": "run_name", "WandbLogger": "name"}
# seconds an MLflow server gets to answer before the run is refused
PROBE_TIMEOUT_S = 3.0


class WandbLogger(LightningWandbLogger):
    """Lightning's WandbLogger, except that a failed fit or test ends its W&B run, marked failed.

    A job that fails inside a sweep that goes on in the same process (an Optuna trial pruned
    mid-fit) would otherwise leave its run open for the next job to log into. A job that succeeds
    ends its run in `finish_runs`, after its last stage.
    """

    def finalize(self, status: str) -> None:
        super().finalize(status)
        if status != "success":
            finish_wandb_run(exit_code=1)


def make_loggers(cfg: DictConfig) -> list[Logger]:
    """The loggers under `cfg.logger`, checked (packages, tracking servers) before any is built."""
    nodes = {str(key): node for key, node in (cfg.get("logger") or {}).items() if node}
    for key, node in nodes.items():
        check_installed(key, node._target_)
    for key, node in nodes.items():
        if class_name(node._target_) == "MLFlowLogger" and node.get("tracking_uri"):
            check_tracking_uri(f"logger.{key}.tracking_uri", node.tracking_uri)
        if node.get("save_dir"):
            # W&B would write elsewhere without a word, CSV and TensorBoard fail mid-run
            writable_folder(Path(node.save_dir), f"logger.{key}.save_dir")
    name = run_name(Path(cfg.paths.output_dir), Path(cfg.paths.root_dir))
    return [instantiate(node, **run_name_default(node, name)) for node in nodes.values()]


def finish_runs(loggers: Sequence[Logger]) -> None:
    """End the W&B runs of a job that has logged its last metric, so the next job starts its own."""
    if any(isinstance(logger, LightningWandbLogger) for logger in loggers):
        finish_wandb_run()


@rank_zero_only
def finish_wandb_run(exit_code: int = 0) -> None:
    import wandb

    # the process's current run, the one the logger started, if it started one (not
    # `logger.experiment`, which would start one)
    if wandb.run is not None:
        wandb.finish(exit_code=exit_code)


def class_name(target: str) -> str:
    return str(target).rsplit(".", 1)[-1]


def check_installed(key: str, target: str) -> None:
    """The package a configured logger needs is importable, or a ConfigError saying how to get it."""
    package = REQUIRED_PACKAGES.get(class_name(target))
    if package and importlib.util.find_spec(package) is None:
        raise ConfigError(
            f"logger.{key} needs the {package} package, which is not installed: {LOGGERS_EXTRA} "
            f"(or choose another logger, e.g. logger=tensorboard)"
        )


def check_tracking_uri(option: str, uri: str, timeout_s: float = PROBE_TIMEOUT_S) -> None:
    """An http(s) tracking server must answer within `timeout_s`; a local store's folder is made."""
    scheme = urlsplit(uri).scheme
    if scheme in ("http", "https"):
        reason = unreachable_reason(uri, timeout_s)
        if reason is not None:
            raise ConfigError(
                f"{option}={uri}: no MLflow tracking server answers there ({reason}); start it "
                f"(mlflow server --host <host> --port <port>), or set {option}=<reachable URI>, "
                f"or leave it and MLFLOW_TRACKING_URI unset for the local store (mlruns/ in the start directory)"
            )
    elif folder := local_store_folder(uri):
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise ConfigError(f"{option}={uri}: cannot create the store's folder {folder} ({err.strerror or err}); set {option}=<writable store>") from None


def unreachable_reason(url: str, timeout_s: float) -> str | None:
    """Why nothing answers at `url` (refused, unknown host, timed out), or None if a server did."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s):
            return None
    except urllib.error.HTTPError as err:  # a server answered, if only with an error status (auth, 404)
        err.close()
        return None
    except (urllib.error.URLError, OSError, ValueError) as err:
        return str(getattr(err, "reason", None) or err)


def local_store_folder(uri: str) -> Path | None:
    """The folder a local MLflow store lives in (sqlite:///<folder>/mlflow.db, file:<folder>, a
    plain path); None for remote stores and in-memory SQLite."""
    parts = urlsplit(uri)
    if parts.scheme == "sqlite":
        database = uri[len("sqlite:///") :]
        return Path(database).parent if uri.startswith("sqlite:///") and database not in ("", ":memory:") else None
    if parts.scheme == "file":
        return Path(urllib.request.url2pathname(parts.path))
    return Path(uri) if parts.scheme == "" else None


def run_name(output_dir: Path, root_dir: Path) -> str:
    """The run directory as the trackers name the run: relative to the start directory when inside
    it (outputs/train/runs/<date>_<time>_<id>, <sweep dir>/<job> under -m), else absolute."""
    output_dir, root_dir = output_dir.resolve(), root_dir.resolve()
    return output_dir.relative_to(root_dir).as_posix() if output_dir.is_relative_to(root_dir) else str(output_dir)


def run_name_default(node: DictConfig, name: str) -> dict[str, str]:
    """`name` for the run-name option of a logger that has one, unless the config sets it."""
    option = RUN_NAME_OPTIONS.get(class_name(node._target_))
    return {option: name} if option and node.get(option) is None else {}
