"""`textclass-train`: compose the config, fit, test when a test split exists, return the metric."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import hydra
import lightning as L
from lightning.pytorch.callbacks import LearningRateMonitor
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from textclass.checkpoint import RUN_CONFIG
from textclass.cli import CONFIG_DIR, exit_on_user_error
from textclass.errors import ConfigError
from textclass.models.build import build_model
from textclass.models.classifier import TextClassifier

log = logging.getLogger(__name__)


def train(cfg: DictConfig) -> dict[str, float]:
    """Fit (and test) the configured model; returns the final metrics by name."""
    if cfg.get("seed") is not None:
        L.seed_everything(cfg.seed, workers=True)
    output_dir = Path(cfg.paths.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    # resolved: eval and predict rebuild the model and data from this file, from any directory
    (output_dir / RUN_CONFIG).write_text(OmegaConf.to_yaml(cfg, resolve=True))
    datamodule = instantiate(cfg.data)
    datamodule.prepare_data()
    datamodule.setup("fit")
    if datamodule.vocab is not None:
        datamodule.vocab.save(output_dir / "vocab.json")
    model = build_model(cfg, datamodule)
    callbacks = [instantiate(c) for c in (cfg.get("callbacks") or {}).values() if c]
    loggers = [instantiate(c) for c in (cfg.get("logger") or {}).values() if c]
    if not loggers:  # logger=[]: LearningRateMonitor refuses to run without a logger
        callbacks = [c for c in callbacks if not isinstance(c, LearningRateMonitor)]
    trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)
    trainer.fit(model, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"))
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
    if cfg.get("test") and "test" in datamodule.dataset.available_splits():
        best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
        results = trainer.test(model, datamodule=datamodule, ckpt_path=best or None)
        metrics.update({k: float(v) for k, v in results[0].items()})
    elif cfg.get("test"):
        log.info("no test split for %s: skipping the test stage", datamodule.dataset.name)
    if trainer.is_global_zero:
        (output_dir / "metrics.json").write_text(json.dumps(metrics, indent=1, sort_keys=True))
        write_confusion_matrices(model, output_dir / "confusion_matrix.json")
    return metrics


def write_confusion_matrices(model: TextClassifier, path: Path) -> None:
    """The last validation (and test) confusion matrices: rows are true classes, columns predictions."""
    matrices = {stage: m.tolist() for stage, m in model.confusion_matrices.items()}
    path.write_text(json.dumps({"class_names": model.class_names, **matrices}, indent=1))


def optimized_value(metrics: dict[str, float], name: str | None) -> float | None:
    """The metric a sweeper optimizes; NaN/inf pass through for the sweeper to judge."""
    if not name:
        return None
    if name not in metrics:
        raise ConfigError(f"optimized_metric={name!r} was not logged; available: {sorted(metrics)}")
    value = metrics[name]
    if not math.isfinite(value):
        log.warning("%s is %s", name, value)
    return value


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="train")
@exit_on_user_error
def main(cfg: DictConfig) -> float | None:
    log.info("output dir: %s", HydraConfig.get().runtime.output_dir)
    log.debug("config:\n%s", OmegaConf.to_yaml(cfg))
    return optimized_value(train(cfg), cfg.get("optimized_metric"))


if __name__ == "__main__":
    main()
