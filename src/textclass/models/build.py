"""From the composed config and a prepared datamodule to a TextClassifier, checked before training."""

from __future__ import annotations

import inspect

import numpy as np
import torch
from hydra.utils import get_class, instantiate
from omegaconf import DictConfig

from textclass.data.datamodule import TextClassificationDataModule
from textclass.errors import ConfigError
from textclass.options import check_known_options
from textclass.models.classifier import TextClassifier
from textclass.models.embedding import build_embedding
from textclass.tokenizers.word import WordTokenizer


def build_model(cfg: DictConfig, datamodule: TextClassificationDataModule) -> TextClassifier:
    """Word encoders get an embedding layer sized and initialised from the datamodule's vocabulary."""
    encoder_class = get_class(cfg.model.encoder._target_)
    check_known_options(cfg.model.encoder, encoder_class, "model.encoder")
    check_known_options(cfg.model, TextClassifier, "model")
    needs_words = "embedding" in inspect.signature(encoder_class).parameters
    has_words = isinstance(datamodule.tokenizer, WordTokenizer)
    if needs_words and not has_words:
        raise ConfigError(f"{encoder_class.__name__} reads word ids: use tokenizer=word (got BERT tokenization)")
    if has_words and not needs_words:
        raise ConfigError(
            f"{encoder_class.__name__} needs its own subword tokenization: drop tokenizer=word "
            "(model=bert selects tokenizer=bert itself)"
        )
    sparse = has_words and datamodule.embeddings.sparse
    optimizer = instantiate(cfg.model.optimizer)
    check_optimizer(optimizer, sparse)

    encoder_factory = instantiate(cfg.model.encoder)
    if has_words:
        spec = datamodule.embeddings
        embedding = build_embedding(
            vocab_size=len(datamodule.vocab),
            dim=spec.dim,
            pretrained=datamodule.embedding_matrix,
            freeze=spec.freeze,
            padding_idx=datamodule.pad_id,
            sparse=sparse,
            multichannel=spec.multichannel,
        )
        encoder = encoder_factory(embedding=embedding)
    else:
        encoder = encoder_factory()
    overrides = {}
    if cfg.model.get("class_weights") == "balanced":
        overrides["class_weights"] = balanced_class_weights(datamodule.train_labels(), datamodule.num_classes)
    # _convert_: plain containers in hparams, so checkpoints load with torch's weights_only
    return instantiate(
        cfg.model,
        encoder=encoder,
        num_classes=datamodule.num_classes,
        class_names=list(datamodule.class_names),
        _convert_="all",
        **overrides,
    )


def check_optimizer(optimizer_factory, sparse: bool) -> None:
    """Build the optimizer and take one step on a dummy parameter: bad values fail now, not mid-run."""
    embedding = torch.nn.Embedding(3, 2, sparse=sparse)
    try:
        optimizer = optimizer_factory(params=[{"params": [embedding.weight], "weight_decay": 0.0}])
        # through forward, so a sparse embedding really produces a sparse gradient
        embedding(torch.tensor([0])).sum().backward()
        optimizer.step()
    except (ValueError, RuntimeError, TypeError) as err:
        name = getattr(optimizer_factory, "func", optimizer_factory)
        if sparse and "sparse" in str(err):
            hint = "embeddings.sparse=true needs an optimizer that supports sparse gradients: optimizer=sgd or adagrad"
        else:
            hint = "fix the optimizer.* values (e.g. optimizer.lr must be > 0)"
        raise ConfigError(f"optimizer {getattr(name, '__name__', name)}: {err}; {hint}") from None


def balanced_class_weights(labels: np.ndarray, num_classes: int) -> list[float]:
    """n / (k * count_c): every class weighs the same in total (sklearn's 'balanced')."""
    counts = np.bincount(labels, minlength=num_classes).astype(float)
    if (counts == 0).any():
        raise ConfigError(f"class_weights=balanced: class(es) {np.flatnonzero(counts == 0).tolist()} have no training example")
    return (len(labels) / (num_classes * counts)).tolist()
