"""textclass from Python: train with the CLI's config tree, load a trained run, predict and evaluate.

    import textclass
    metrics = textclass.train(["data=sst2", "model=lstm", "trainer.max_epochs=1"])
    clf = textclass.load(metrics["run_dir"])      # a run directory (its selected checkpoint), a .ckpt inside one, or an ensemble directory
    clf.predict(["a fine film"])                   # [Prediction(label="positive", probs={...})]
    clf.predict_proba(texts)                       # np.ndarray [N, C]
    clf.evaluate("my_test.csv")                    # the numbers textclass-eval prints
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig

from textclass.checkpoint import Predictor
from textclass.ensemble import load_system
from textclass.cli import CONFIG_DIR, compose_config
from textclass.errors import ConfigError, DataError, find_user_error
from textclass.overrides import override_key
from textclass.run_files import SELECTED

RUN_DIR_KEY = "run_dir"


def train(overrides: Sequence[str] = ()) -> dict[str, float | str]:
    """Train as `textclass-train <overrides>` does (same config tree, same run directory, same files);
    returns the final metrics, and the run directory under "run_dir". Bad input raises the error
    the CLI would print."""
    from hydra import initialize_config_dir

    from textclass.train import plugin_arguments, removed_when_refused, resume_arguments
    from textclass.train import train as train_job

    overrides = list(overrides)
    seeds = [o for o in overrides if override_key(o) == "seeds"]
    if seeds:
        raise ConfigError(
            f"{seeds[-1]}: textclass.train runs one training and returns its metrics; for several seeds call it once per "
            "seed: [textclass.train([*overrides, f'seed={s}']) for s in range(1, N + 1)] (or run textclass train seeds=N)"
        )
    overrides = plugin_arguments(resume_arguments(overrides))
    compose_config("train", overrides)  # a wrong override: one ConfigError, before Hydra's report

    def task(cfg: DictConfig) -> dict[str, float | str]:
        with removed_when_refused(Path(cfg.paths.output_dir)):
            return {**train_job(cfg), RUN_DIR_KEY: str(Path(cfg.paths.output_dir))}

    try:
        with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3", job_name="train"):
            # the Hydra instance initialize_config_dir sets up runs a job exactly as @hydra.main does
            return GlobalHydra.instance().hydra.run("train", task, overrides).return_value
    except Exception as err:
        user_error = find_user_error(err)
        if user_error is None:
            raise
        raise user_error from None


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
        from textclass.predict import predict

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
        from textclass.evaluate import evaluate, sources

        data = sources(self.run, list(splits), str(file) if file is not None else None)
        results = {name: evaluate(self.run, examples, batch_size) for name, examples in data.items()}
        return results[str(file)] if file is not None else results


def load(path: str | Path, checkpoint: str = SELECTED) -> Classifier:
    """A trained run from its directory (its `checkpoint`: "selected", the epoch its metrics.json
    reports; "last", the latest epoch; or a file name in its checkpoints/), or from a checkpoint file
    inside it; or an ensemble from its directory (textclass-ensemble: the mean of its members'
    probabilities)."""
    return Classifier(load_system(path, checkpoint))


def checked_texts(texts: Sequence[str]) -> list[str]:
    """`texts` as a list of strings; one string (which would be predicted character by character) or
    an item that is not a string is an error naming it."""
    if isinstance(texts, (str, bytes)):
        raise DataError(f"texts must be a list of strings, not one {type(texts).__name__}: predict([{texts[:40]!r}])")
    texts = list(texts)
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise DataError(f"texts[{i}] is {text!r} ({type(text).__name__}), not a string: pass sentences as str")
    return texts
