"""textclass from Python: train with the CLI's config tree, load a trained run, predict and evaluate.

    import textclass
    metrics = textclass.train(["data=sst2", "model=lstm", "trainer.max_epochs=1"])
    clf = textclass.load(metrics["run_dir"])      # a run directory (its selected checkpoint), a .ckpt inside one, or an ensemble directory
    clf.predict(["a fine film"])                   # [Prediction(label="positive", probs={...})]
    clf.predict_proba(texts)                       # np.ndarray [N, C]
    clf.evaluate("my_test.csv")                    # the numbers textclass-eval prints
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf, open_dict

from textclass.config.compose import compose_config
from textclass.ensemble import load_system
from textclass.errors import ConfigError, find_user_error
from textclass.overrides import override_key
from textclass.run_files import HYDRA_DIR, SELECTED
from textclass.training.checkpoint import Predictor
from textclass.training.inference import checked_texts, predict
from textclass.training.resume import plugin_arguments, removed_when_refused, resume_arguments
from textclass.training.scoring import evaluate, sources

RUN_DIR_KEY = "run_dir"


def train(overrides: Sequence[str] = ()) -> dict[str, float | str]:
    """Train as `textclass train <overrides>` does (the same config tree, run directory and files);
    returns the final metrics, and the run directory under "run_dir". Bad input raises the error the
    command would print (a textclass error), and leaves no run directory behind."""
    # Lightning and the models: loaded by the first training, not by `import textclass`
    from textclass.training.recipe import train as train_recipe

    overrides = list(overrides)
    seeds = [o for o in overrides if override_key(o) == "seeds"]
    if seeds:
        raise ConfigError(
            f"{seeds[-1]}: textclass.train runs one training and returns its metrics; for several seeds call it once per "
            "seed: [textclass.train([*overrides, f'seed={s}']) for s in range(1, N + 1)] (or run textclass train seeds=N)"
        )
    overrides = plugin_arguments(resume_arguments(overrides))
    cfg = compose_config("train", overrides, with_hydra=True)
    run_dir = start_job(cfg, overrides)
    log_file = job_log(run_dir, cfg)
    try:
        with removed_when_refused(run_dir):
            metrics = train_recipe(without_hydra(cfg))
    except Exception as err:
        user_error = find_user_error(err)
        if user_error is None:
            raise
        raise user_error from None
    finally:
        logging.getLogger().removeHandler(log_file)
        log_file.close()
    return {**metrics, RUN_DIR_KEY: str(run_dir)}


def start_job(cfg: DictConfig, overrides: list[str]) -> Path:
    """What Hydra does as a job starts, through its public API: the run directory (a new one, even for
    two runs started in the same second by one process), `hydra.runtime.output_dir`, the job's
    HydraConfig (so ${hydra:...} values resolve), and .hydra/ with the config, Hydra's settings and
    the overrides (resume= replays those)."""
    run_dir = Path(cfg.hydra.run.dir).resolve()
    resumed = any(o.startswith("hydra.run.dir=") for o in overrides)
    base, n = run_dir, 1
    while not resumed and run_dir.exists():
        n += 1
        run_dir = base.with_name(f"{base.name}_{n}")
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = str(run_dir)
        cfg.hydra.job.name = cfg.task_name
    HydraConfig.instance().set_config(cfg)
    hydra_dir = run_dir / HYDRA_DIR
    hydra_dir.mkdir(parents=True, exist_ok=True)
    OmegaConf.save(without_hydra(cfg), hydra_dir / "config.yaml")
    OmegaConf.save(OmegaConf.create({"hydra": cfg.hydra}), hydra_dir / "hydra.yaml")
    OmegaConf.save(OmegaConf.create([o for o in overrides if not override_key(o).startswith("hydra.")]), hydra_dir / "overrides.yaml")
    return run_dir


def job_log(run_dir: Path, cfg: DictConfig) -> logging.Handler:
    """train.log in the run directory, in the long form Hydra's job logging writes it."""
    handler = logging.FileHandler(run_dir / f"{cfg.task_name}.log")
    handler.setFormatter(logging.Formatter("[%(asctime)s][%(name)s][%(levelname)s] - %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(min(root.level or logging.INFO, logging.INFO))
    return handler


def without_hydra(cfg: DictConfig) -> DictConfig:
    task = OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"])
    OmegaConf.set_struct(task, True)
    return task


@dataclass
class Classifier:
    """A trained run (or an ensemble of runs), ready to predict and evaluate (on the CPU)."""

    run: Predictor

    def __repr__(self) -> str:
        source = getattr(self.run, "checkpoint", None) or self.run.run_dir
        return f"Classifier({str(source)!r}, labels={self.labels})"

    @property
    def labels(self) -> list[str]:
        return list(self.run.labels.names)

    def predict(self, texts: Sequence[str], batch_size: int = 256, explain: bool = False) -> list:
        """One `Prediction` (label, probs; labels for multi-label) per text."""
        texts = checked_texts(texts)
        return list(predict(self.run, texts, batch_size, explain)) if texts else []

    def predict_proba(self, texts: Sequence[str], batch_size: int = 256) -> np.ndarray:
        """Class probabilities [N, C], columns in the order of `labels`."""
        texts = checked_texts(texts)
        if not texts:
            return np.zeros((0, len(self.labels)), dtype=np.float32)
        logits = self.run.logits(texts, batch_size)
        return self.run.model.probabilities(logits).numpy()

    def evaluate(self, file: str | Path | None = None, splits: Sequence[str] = ("valid",), batch_size: int = 256):
        """The `EvalResult` of a labeled file (in the run's dataset columns), or a dict of them for
        the run's own `splits` when no file is given: the numbers textclass-eval reports."""
        data = sources(self.run, list(splits), str(file) if file is not None else None)
        results = {name: evaluate(self.run, examples, batch_size) for name, examples in data.items()}
        return results[str(file)] if file is not None else results


def load(path: str | Path, checkpoint: str = SELECTED) -> Classifier:
    """A trained run from its directory (its `checkpoint`: "selected", the epoch its metrics.json
    reports; "last", the latest epoch; or a file name in its checkpoints/), or from a checkpoint file
    inside it; or an ensemble from its directory (textclass-ensemble: the mean of its members'
    probabilities)."""
    return Classifier(load_system(path, checkpoint))

