"""From the composed config and a run's features to a TextClassifier, checked before training."""

from __future__ import annotations

import inspect

import numpy as np
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from textclass.data.labels import LabelSet
from textclass.errors import ConfigError
from textclass.models.classifier import TextClassifier
from textclass.config.checks import check_known_options, locate_target
from textclass.models.embedding import embedding_layer
from textclass.tokenizers import Features


def build_model(cfg: DictConfig, features: Features, labels: LabelSet, class_weights: list[float] | None = None) -> TextClassifier:
    """The model of `cfg` on top of `features`' input layer: the only constructor, for training and for loading.

    class_weights: the computed weights when `cfg.model.class_weights` is `balanced` (a run being
    loaded passes its checkpoint's).
    """
    encoder_class = locate_target(cfg.model.encoder._target_, "model.encoder._target_")
    check_known_options(cfg.model.encoder, encoder_class, "model.encoder")
    init = features.embedding_init()
    input_layer = embedding_layer(init) if init is not None else None
    # the encoder contract: a word-level encoder takes the embedding layer, a pretrained one nothing
    takes_embedding = "embedding" in inspect.signature(encoder_class).parameters
    if takes_embedding and input_layer is None:
        raise ConfigError(f"{encoder_class.__name__} reads word ids: use tokenizer=word (got BERT tokenization)")
    if input_layer is not None and not takes_embedding:
        raise ConfigError(
            f"{encoder_class.__name__} needs its own subword tokenization: drop tokenizer=word "
            "(model=bert selects tokenizer=bert itself)"
        )
    overrides = {"class_weights": class_weights} if class_weights is not None else {}
    if cfg.model.get("word_dropout") and input_layer is None:
        raise ConfigError(
            f"model.word_dropout={cfg.model.word_dropout} replaces training words by <unk>, for word tokenization only "
            "(tokenizer=bert has subwords and special tokens); use model.dropout, or set model.word_dropout=0"
        )
    encoder_factory = instantiate(cfg.model.encoder)
    encoder = encoder_factory() if input_layer is None else encoder_factory(embedding=input_layer)
    check_encoder(encoder, cfg.model.encoder._target_)
    # cfg.model's other keys are the training recipe's (training.module.training_module); plain
    # containers, so checkpoints record them in a form torch's weights_only loads
    params = inspect.signature(locate_target(cfg.model._target_, "model._target_")).parameters
    options = {k: plain(cfg.model[k]) for k in cfg.model if k in params and k != "encoder"}
    model = instantiate(
        {"_target_": cfg.model._target_, **options},
        encoder=encoder,
        num_classes=len(labels),
        class_names=list(labels.names),
        multi_label=labels.multi_label,
        _convert_="all",
        **overrides,
    )
    digest = features.digest()
    if digest is not None:
        model.checkpoint_notes["features"] = digest
    return model


def plain(value: object) -> object:
    """A config value as plain Python (lists and dicts, interpolations resolved)."""
    return OmegaConf.to_container(value, resolve=True) if OmegaConf.is_config(value) else value


def check_encoder(encoder: object, target: str) -> None:
    """The encoder contract (README "Your own encoder"): an nn.Module whose forward takes the batch
    and returns [B, output_dim] features; its constructor takes `embedding` (word ids) or nothing."""
    contract = "an encoder is a torch.nn.Module with forward(batch) -> [batch, output_dim] and an int output_dim"
    if not isinstance(encoder, torch.nn.Module):
        raise ConfigError(f"model.encoder._target_={target}: built a {type(encoder).__name__}, not a torch.nn.Module; {contract}")
    output_dim = getattr(encoder, "output_dim", None)
    if isinstance(output_dim, bool) or not isinstance(output_dim, int) or output_dim < 1:
        found = "has no output_dim" if output_dim is None else f"has output_dim={output_dim!r}"
        raise ConfigError(f"model.encoder._target_={target} {found}: set self.output_dim (the size of the features forward returns) in its __init__; {contract}")
    required = [
        p for p in inspect.signature(encoder.forward).parameters.values()
        if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    if len(required) != 1:
        raise ConfigError(
            f"model.encoder._target_={target}: forward takes {len(required)} required arguments "
            f"({', '.join(p.name for p in required) or 'none'}), the contract is one, the batch; {contract}"
        )


def balanced_class_weights(labels: np.ndarray, num_classes: int) -> list[float]:
    """n / (k * count_c): every class weighs the same in total (sklearn's 'balanced'); multi-label
    (labels [N, C] 0/1): each label's negatives over its positives, BCE's pos_weight."""
    if labels.ndim == 2:
        positives = labels.sum(axis=0).astype(float)
        if (positives == 0).any():
            raise ConfigError(f"class_weights=balanced: label(s) {np.flatnonzero(positives == 0).tolist()} have no training example")
        return ((len(labels) - positives) / positives).tolist()
    counts = np.bincount(labels, minlength=num_classes).astype(float)
    if (counts == 0).any():
        raise ConfigError(f"class_weights=balanced: class(es) {np.flatnonzero(counts == 0).tolist()} have no training example")
    return (len(labels) / (num_classes * counts)).tolist()
