"""A trained model back from its checkpoint, with the run's own config, tokenizer and vocabulary.

Eval and predict never use the current config for these: ids must mean what they meant in training.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from hydra.utils import get_class, instantiate
from omegaconf import DictConfig, OmegaConf

from textclass.data.base import TsvDataset
from textclass.data.batching import Batch, unlabeled_loader
from textclass.data.pipeline import Tokenizer, encode_new_texts, resolve_tokenizer
from textclass.errors import ConfigError
from textclass.models.classifier import TextClassifier
from textclass.models.embedding import build_embedding
from textclass.tokenizers.word import Vocabulary, WordTokenizer

# files of a textclass-train run directory that other commands read
RUN_CONFIG = "config.yaml"
VOCAB_FILE = "vocab.json"
METRICS_FILE = "metrics.json"


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
        raise ConfigError(f"cannot read checkpoint {ckpt} ({type(err).__name__}: {err}); the file is truncated or corrupt") from None
    if not isinstance(state, dict) or "state_dict" not in state or "hyper_parameters" not in state:
        raise ConfigError(f"{ckpt} is not a textclass-train checkpoint (no state_dict / hyper_parameters)")
    return state


def load_run(ckpt_path: str | Path) -> TrainedRun:
    ckpt = Path(ckpt_path).expanduser().resolve()
    state = read_checkpoint(ckpt)
    run_dir = find_run_dir(ckpt)
    cfg = OmegaConf.load(run_dir / RUN_CONFIG)
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


def _embedding_shape(state_dict: dict[str, torch.Tensor], ckpt: Path) -> tuple[int, int]:
    for name, tensor in state_dict.items():
        if name.endswith(("embedding.weight", "embedding.tuned.weight")):
            return tuple(tensor.shape)
    raise ConfigError(f"{ckpt} has no word embedding weights: it is not a word-level model checkpoint")
