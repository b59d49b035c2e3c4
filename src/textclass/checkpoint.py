"""A trained model back from its checkpoint, with the run's own config, tokenizer and vocabulary.

Eval and predict never use the current config for these: ids must mean what they meant in training.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
import yaml
from hydra.utils import get_class, instantiate
from omegaconf import DictConfig, ListConfig, OmegaConf

from textclass.data.base import TsvDataset
from textclass.data.batching import Batch, unlabeled_loader
from textclass.data.pipeline import Tokenizer, encode_new_texts, resolve_tokenizer
from textclass.errors import ConfigError, UnsafeRunError
from textclass.models.classifier import TextClassifier
from textclass.models.embedding import build_embedding
from textclass.tokenizers.word import Vocabulary, WordTokenizer
from textclass.trust import check_trusted

# files of a textclass-train run directory that other commands read
RUN_CONFIG = "config.yaml"
VOCAB_FILE = "vocab.json"
METRICS_FILE = "metrics.json"
OVERRIDES_FILE = ".hydra/overrides.yaml"
LAST_CHECKPOINT = "checkpoints/last.ckpt"
# what every run config has, and eval/predict read
RUN_CONFIG_KEYS = ("data", "tokenizer", "model")


@dataclass
class TrainedRun:
    run_dir: Path
    cfg: DictConfig  # the run's resolved config
    model: TextClassifier  # in eval mode, on the CPU
    dataset: TsvDataset
    tokenizer: Tokenizer
    vocab: Vocabulary | None  # word tokenization only
    pad_id: int

    def encode(self, texts: list[str]) -> list[list[int]]:
        return encode_new_texts(self.tokenizer, self.vocab, texts, self.pad_id)

    def batches(self, texts: list[str], batch_size: int) -> Iterator[Batch]:
        """Padded batches of `texts`, in order."""
        return iter(unlabeled_loader(self.encode(texts), self.pad_id, batch_size))

    @torch.no_grad()
    def logits(self, texts: list[str], batch_size: int = 256) -> torch.Tensor:
        """Class logits [N, num_classes] of `texts`."""
        return torch.cat([self.model(batch) for batch in self.batches(texts, batch_size)])


def find_run_dir(ckpt: Path) -> Path:
    """The run directory of a checkpoint: `<run>/checkpoints/x.ckpt`, or a checkpoint beside config.yaml."""
    for candidate in (ckpt.parent.parent, ckpt.parent):
        if (candidate / RUN_CONFIG).is_file():
            return candidate
    raise ConfigError(
        f"{ckpt}: no {RUN_CONFIG} of the run that made it (looked in {ckpt.parent.parent} and {ckpt.parent}); "
        "pass a checkpoint inside a textclass-train run directory, e.g. <run>/checkpoints/last.ckpt"
    )


def read_checkpoint(ckpt: Path) -> dict:
    if not ckpt.is_file():
        raise ConfigError(f"checkpoint not found: {ckpt}; pass ckpt_path=<run dir>/checkpoints/last.ckpt")
    try:
        state = torch.load(ckpt, map_location="cpu", weights_only=True)
    except Exception as err:  # truncated zip, bad pickle, not a checkpoint at all
        # torch's own text advises weights_only=False, i.e. running the file's code: never pass that on
        reason = type(err).__name__ if "weights_only" in str(err) else f"{type(err).__name__}: {str(err).splitlines()[0]}"
        raise ConfigError(
            f"cannot read checkpoint {ckpt} ({reason}): the file is truncated or corrupt, or not a checkpoint "
            "textclass can load safely (tensors and plain values only); use the run's checkpoints/last.ckpt"
        ) from None
    if not isinstance(state, dict) or "state_dict" not in state or "hyper_parameters" not in state:
        raise ConfigError(f"{ckpt} is not a textclass-train checkpoint (no state_dict / hyper_parameters)")
    return state


def load_run(ckpt_path: str | Path) -> TrainedRun:
    ckpt = Path(ckpt_path).expanduser().resolve()
    state = read_checkpoint(ckpt)
    run_dir = find_run_dir(ckpt)
    cfg = load_run_config(run_dir)
    dataset = instantiate(cfg.data.dataset, _convert_="all")
    tokenizer = resolve_tokenizer(instantiate(cfg.tokenizer), dataset)
    hparams = state["hyper_parameters"]
    if hparams.get("num_classes") != dataset.num_classes:
        raise ConfigError(
            f"{ckpt} predicts {hparams.get('num_classes')} classes but its run's dataset {dataset.name} has "
            f"{dataset.num_classes}: the checkpoint does not belong to {run_dir}"
        )
    vocab = None
    encoder_factory = instantiate(cfg.model.encoder)
    if isinstance(tokenizer, WordTokenizer):
        vocab = Vocabulary.load(run_dir / VOCAB_FILE)
        rows, dim = _embedding_shape(state["state_dict"], ckpt)
        if rows != len(vocab):
            raise ConfigError(
                f"{run_dir / VOCAB_FILE} has {len(vocab)} words but {ckpt} has {rows} embedding rows: "
                "the checkpoint comes from another vocabulary (another run)"
            )
        # the layer build_model made, zero-filled: the weights come from the checkpoint, not pretrained vectors
        embedding = build_embedding(rows, dim, torch.zeros(rows, dim), freeze=False, multichannel=cfg.embeddings.get("multichannel", False))
        encoder = encoder_factory(embedding=embedding)
        pad_id = 0
    else:
        encoder = encoder_factory()
        pad_id = tokenizer.pad_id
    model = TextClassifier(encoder=encoder, optimizer=None, **hparams)
    try:
        model.load_state_dict(state["state_dict"])
    except RuntimeError as err:
        raise ConfigError(f"{ckpt} does not fit the model of its run config ({get_class(cfg.model.encoder._target_).__name__}): {err}") from None
    return TrainedRun(run_dir, cfg, model.eval(), dataset, tokenizer, vocab, pad_id)


def load_yaml(path: Path) -> DictConfig | ListConfig:
    """A YAML file of a run directory; unreadable or invalid YAML is one error naming file and line."""
    try:
        return OmegaConf.load(path)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise ConfigError(f"{where}: not valid YAML ({problem}); the run directory is damaged: restore the file or train again") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"cannot read {path} ({err}); the run directory is damaged: restore the file or train again") from None


def load_run_config(run_dir: Path) -> DictConfig:
    """A run's saved config.yaml, checked to build only trusted classes (see textclass.trust)."""
    path = run_dir / RUN_CONFIG
    cfg = load_yaml(path)
    missing = [k for k in RUN_CONFIG_KEYS if not isinstance(cfg, DictConfig) or k not in cfg]
    if missing:
        raise ConfigError(f"{path} is not a textclass-train run config: it has no {', '.join(missing)}")
    check_trusted(cfg, path)
    return cfg


def load_run_overrides(run_dir: Path) -> list[str]:
    """The command-line overrides a run was started with (.hydra/overrides.yaml), without ckpt_path.

    Overrides of Hydra itself never come from a run directory: they could add search paths and callbacks.
    """
    path = run_dir / OVERRIDES_FILE
    overrides = load_yaml(path)
    if not isinstance(overrides, ListConfig) or not all(isinstance(o, str) for o in overrides):
        raise ConfigError(f"{path} is not a list of overrides (key=value strings); the run directory is damaged")
    for override in overrides:
        if override.lstrip("+~").startswith(("hydra.", "hydra/", "hydra=")):
            raise UnsafeRunError(f"{path}: the override {override!r} changes Hydra itself, which a run directory may not do; the run is not resumed")
    return [o for o in overrides if not o.startswith("ckpt_path=")]


def _embedding_shape(state_dict: dict[str, torch.Tensor], ckpt: Path) -> tuple[int, int]:
    for name, tensor in state_dict.items():
        if name.endswith(("embedding.weight", "embedding.tuned.weight")):
            return tuple(tensor.shape)
    raise ConfigError(f"{ckpt} has no word embedding weights: it is not a word-level model checkpoint")
