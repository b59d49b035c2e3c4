"""A trained model back from its checkpoint, with the run's own config, tokenizer and vocabulary.

Eval and predict never use the current config for these: ids must mean what they meant in training.
They take any `Predictor`, the interface of a trained system: one run (`TrainedRun`, `load_run`) is
one; plug-ins may build others on top of runs (ensembles).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from hydra.utils import get_class, instantiate
from omegaconf import DictConfig, OmegaConf

from textclass.data.batching import Batch, Encoding, unlabeled_loader
from textclass.data.dataset import TextDataset
from textclass.data.labels import LabelSet
from textclass.errors import ConfigError
from textclass.models.build import build_model
from textclass.models.classifier import NOTES_KEY, TextClassifier
from textclass.run_files import (
    CHECKPOINT_DIR,
    LABELS_FILE,
    LAST,
    LAST_CHECKPOINT,
    RUN_CONFIG,
    SELECTED,
    SELECTED_CHECKPOINT,
    THRESHOLDS_FILE,
    VOCAB_FILE,
)
from textclass.tokenizers import Features
from textclass.training.run_dir import find_run_dir, load_run_config, load_thresholds, thresholds_of

log = logging.getLogger(__name__)
MODEL_PREFIX = "model."  # the training module's attribute holding the TextClassifier
METRIC_STATES = ("val_", "test_", "train_")  # the training module's metric attributes


class DecisionRule(Protocol):
    """What turns a predictor's logits into class probabilities and (multi-label) decisions."""

    multi_label: bool

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor: ...

    def decide(self, probabilities: torch.Tensor) -> torch.Tensor: ...


class Predictor(Protocol):
    """What eval, predict and `textclass.load` use of a trained system: one run or an ensemble."""

    run_dir: Path
    cfg: DictConfig  # its data config is the one its splits are read with
    dataset: TextDataset
    labels: LabelSet

    @property
    def model(self) -> DecisionRule: ...

    def logits(self, texts: list[str], batch_size: int = 256, pairs: list[str] | None = None) -> torch.Tensor: ...

    def single_model(self, purpose: str) -> TrainedRun:
        """The one model behind it, for what only one model can do (`purpose`, e.g. "explain=true")."""
        ...


@dataclass
class TrainedRun:
    run_dir: Path
    cfg: DictConfig  # the run's resolved config
    model: TextClassifier  # in eval mode, on the CPU
    dataset: TextDataset
    features: Features  # as fitted in training (its vocabulary)
    labels: LabelSet
    checkpoint: Path  # the file the weights came from
    epoch: int | None  # the epoch they are the state after, counted from 1 (None: not recorded)

    def batches(self, texts: list[str], batch_size: int, pairs: list[str] | None = None) -> Iterator[Batch]:
        return text_batches(self.features, texts, batch_size, pairs)

    @torch.no_grad()
    def logits(self, texts: list[str], batch_size: int = 256, pairs: list[str] | None = None) -> torch.Tensor:
        """Class logits [N, num_classes] of `texts`, in their order, on the CPU (computed where the
        model is). Batched shortest first, so that a batch pads little: the encoders are
        padding-invariant, and a transformer's cost grows with the padded length."""
        device = self.model.device
        encoding = encode_texts(self.features, texts, pairs)
        order = np.argsort(encoding.lengths, kind="stable")
        logits = torch.cat([self.model(b.to(device)).cpu() for b in unlabeled_loader(encoding, self.features.pad_id, batch_size, order)])
        return logits[torch.from_numpy(np.argsort(order))]

    def single_model(self, purpose: str) -> TrainedRun:
        return self


def text_batches(features: Features, texts: list[str], batch_size: int, pairs: list[str] | None = None, fill_empty: bool = True) -> Iterator[Batch]:
    """Padded batches of `texts`, in order; with `fill_empty`, a text with no known token becomes one
    PAD token, so it still gets a prediction."""
    return iter(unlabeled_loader(encode_texts(features, texts, pairs, fill_empty), features.pad_id, batch_size))


def encode_texts(features: Features, texts: list[str], pairs: list[str] | None = None, fill_empty: bool = True) -> Encoding:
    """`texts` as ids; with `fill_empty`, a text with no known token becomes one PAD token (and the
    count is logged), so it still gets a prediction."""
    encoding = features.encode(texts, pairs)
    empty = encoding.lengths == 0
    if fill_empty and empty.any():
        log.warning("%d of %d texts have no token in the vocabulary: predicted from an empty input", int(empty.sum()), len(texts))
        encoding = encoding.filled(features.pad_id)
    return encoding


def read_checkpoint(ckpt: Path) -> dict:
    if not ckpt.is_file():
        raise ConfigError(f"checkpoint not found: {ckpt}; pass a run directory (its selected checkpoint) or a .ckpt file inside one")
    if ckpt.stat().st_size == 0:
        raise ConfigError(f"cannot read checkpoint {ckpt}: the file is empty (a copy or a save that never finished); use another checkpoint of the run (checkpoint=last or selected)")
    try:
        state = torch.load(ckpt, map_location="cpu", weights_only=True)
    except Exception as err:  # truncated zip, bad pickle, not a checkpoint at all
        # torch's own text advises weights_only=False, i.e. running the file's code: never pass that on
        reason = type(err).__name__ if "weights_only" in str(err) or not str(err) else f"{type(err).__name__}: {str(err).splitlines()[0]}"
        raise ConfigError(
            f"cannot read checkpoint {ckpt} ({reason}): the file is truncated or corrupt, or not a checkpoint "
            "textclass can load safely (tensors and plain values only); use another checkpoint of the run (checkpoint=last or selected)"
        ) from None
    if not isinstance(state, dict) or "state_dict" not in state or "hyper_parameters" not in state:
        raise ConfigError(f"{ckpt} is not a textclass-train checkpoint (no state_dict / hyper_parameters)")
    return state


def load_run(path: str | Path, checkpoint: str = SELECTED, run_dir: Path | None = None, log_level: int = logging.INFO) -> TrainedRun:
    """A trained run: a run directory (its `checkpoint`: selected, last or a file, see
    `run_checkpoint`) or a checkpoint file inside one; or, given the `run_dir` it belongs to, a
    checkpoint file anywhere. Logs which file it loaded (at `log_level`)."""
    path = Path(path).expanduser().resolve()
    found = {RUN_CONFIG: (path / RUN_CONFIG).is_file(), f"{CHECKPOINT_DIR}/": (path / CHECKPOINT_DIR).is_dir()}
    if path.is_dir() and not all(found.values()):
        missing = " and ".join(name for name, ok in found.items() if not ok)
        raise ConfigError(f"{path} is not a textclass-train run directory (no {missing}); pass a run directory or a .ckpt file inside one")
    ckpt = run_checkpoint(path, checkpoint)
    state = read_checkpoint(ckpt)
    run_dir = run_dir or find_run_dir(ckpt)
    cfg = load_run_config(run_dir)
    dataset = instantiate(cfg.data.dataset, _convert_="all")
    labels = LabelSet.load(run_dir / LABELS_FILE)
    hparams = state["hyper_parameters"]
    if hparams.get("num_classes") != len(labels):
        raise ConfigError(
            f"{ckpt} predicts {hparams.get('num_classes')} classes but its run's {run_dir / LABELS_FILE} has "
            f"{len(labels)}: the checkpoint does not belong to {run_dir}"
        )
    features = instantiate(cfg.tokenizer).features(instantiate(cfg.embeddings), OmegaConf.to_container(cfg.data.vocab), dataset.pretokenized)
    features.load(run_dir)
    model = build_model(cfg, features, labels, class_weights=hparams.get("class_weights"))
    recorded = (state.get(NOTES_KEY) or {}).get("features")
    if recorded is not None and recorded != model.checkpoint_notes.get("features"):
        raise ConfigError(
            f"{run_dir / VOCAB_FILE} is not the vocabulary {ckpt} was trained with (edited, or copied from another run): "
            "the model would read its ids as other words; restore the run's own file or train again"
        )
    weights = model_weights(state["state_dict"])
    if (mismatch := weights_mismatch(model.state_dict(), weights)) is not None:
        raise ConfigError(
            f"{ckpt} does not fit the model of its run config ({get_class(cfg.model.encoder._target_).__name__}): {mismatch}; "
            f"it comes from another run (another vocabulary or model settings than {run_dir})"
        )
    model.load_state_dict(weights)
    if (run_dir / THRESHOLDS_FILE).is_file():
        model.thresholds = torch.tensor(thresholds_of(load_thresholds(run_dir / THRESHOLDS_FILE), labels.names, run_dir / THRESHOLDS_FILE))
    epoch = state["epoch"] + 1 if isinstance(state.get("epoch"), int) else None
    log.log(log_level, "loaded %s%s", ckpt, f" (epoch {epoch})" if epoch is not None else "")
    return TrainedRun(run_dir, cfg, model.eval(), dataset, features, labels, ckpt, epoch)


def model_weights(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The TextClassifier's weights in a checkpoint's state_dict, which the training module holds
    under `model.` beside its metrics' states (a run trained before that layout: at the top)."""
    if not any(k.startswith(MODEL_PREFIX) for k in state_dict):
        return {k: v for k, v in state_dict.items() if not k.startswith(METRIC_STATES)}
    return {k.removeprefix(MODEL_PREFIX): v for k, v in state_dict.items() if k.startswith(MODEL_PREFIX)}


def weights_mismatch(expected: dict[str, torch.Tensor], saved: dict[str, torch.Tensor]) -> str | None:
    """How a checkpoint's weights differ from those a model has (a tensor of another shape, one
    missing, one too many), or None when they fit."""
    for key, tensor in expected.items():
        if key in saved and tuple(saved[key].shape) != tuple(tensor.shape):
            return f"{key} is {list(saved[key].shape)} in the checkpoint, {list(tensor.shape)} in this model"
    missing = [k for k in expected if k not in saved]
    if missing:
        return f"the checkpoint has no {missing[0]}" + (f" (nor {len(missing) - 1} more of this model's weights)" if len(missing) > 1 else "")
    extra = [k for k in saved if k not in expected]
    if extra:
        return f"the checkpoint holds {extra[0]}, which this model has not" + (f" (and {len(extra) - 1} more)" if len(extra) > 1 else "")
    return None


def run_checkpoint(path: Path, checkpoint: str = SELECTED) -> Path:
    """The checkpoint file that `path` and `checkpoint` name: a .ckpt file is itself (with the
    default `checkpoint`); a run directory's `checkpoint` is `selected` (the epoch the run reports
    on: its metrics.json and predictions), `last` (the latest finished epoch), or a file, by its
    name in the run's checkpoints/ or its own path."""
    checkpoint = str(checkpoint)
    if not path.is_dir():
        if checkpoint != SELECTED and path.exists():
            raise ConfigError(f"{path} is a checkpoint file already; checkpoint={checkpoint} chooses among a run directory's checkpoints: pass the run directory")
        return path
    if checkpoint == LAST:
        return path / LAST_CHECKPOINT
    if checkpoint == SELECTED:
        return selected_checkpoint(path)
    named = path / CHECKPOINT_DIR / checkpoint
    if named.is_file():
        return named
    given = Path(checkpoint).expanduser()
    if given.is_file():
        return given.resolve()
    found = sorted(p.name for p in (path / CHECKPOINT_DIR).glob("*.ckpt"))
    raise ConfigError(
        f"checkpoint={checkpoint}: not {SELECTED}, {LAST}, a file in {path / CHECKPOINT_DIR} ({', '.join(found) or 'none there'}) "
        "nor a checkpoint file's path"
    )


def selected_checkpoint(run_dir: Path) -> Path:
    """The checkpoint a run reports on (its metrics and predictions files): checkpoints/selected.ckpt.
    A run made before that file existed: the best by the checkpoint monitor, as its last.ckpt records
    it; last.ckpt itself when it records none (callbacks.model_checkpoint=null) or that file is gone."""
    if (run_dir / SELECTED_CHECKPOINT).is_file():
        return run_dir / SELECTED_CHECKPOINT
    last = run_dir / LAST_CHECKPOINT
    state = read_checkpoint(last)
    for name, callback_state in (state.get("callbacks") or {}).items():
        best = callback_state.get("best_model_path") if name.startswith("ModelCheckpoint") and isinstance(callback_state, dict) else None
        # by name in this run's checkpoints folder: the run directory may have moved since
        if best and (last.parent / Path(best).name).is_file():
            return last.parent / Path(best).name
    log.info("%s has no selected checkpoint (trained with callbacks.model_checkpoint=null?): using %s", run_dir, LAST_CHECKPOINT)
    return last
