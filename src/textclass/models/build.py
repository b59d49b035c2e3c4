"""From the composed config and a prepared datamodule to a TextClassifier, checked before training."""

from __future__ import annotations

import inspect

import numpy as np
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig

from textclass.data.datamodule import TextClassificationDataModule
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
    check_known_options(cfg.model, TextClassifier, "model")
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
    if cfg.model.get("word_dropout"):
        if input_layer is None:
            raise ConfigError(
                f"model.word_dropout={cfg.model.word_dropout} replaces training words by <unk>, for word tokenization only "
                "(tokenizer=bert has subwords and special tokens); use model.dropout, or set model.word_dropout=0"
            )
        # the id word dropout writes: the run's own vocabulary says which it is (None: it has no <unk>)
        overrides["unk_id"] = getattr(features, "unk_id", None)
    encoder_factory = instantiate(cfg.model.encoder)
    encoder = encoder_factory() if input_layer is None else encoder_factory(embedding=input_layer)
    check_encoder(encoder, cfg.model.encoder._target_)
    check_optimizer(instantiate(cfg.model.optimizer), has_sparse_gradients(encoder))
    # _convert_: plain containers in hparams, so checkpoints load with torch's weights_only
    model = instantiate(
        cfg.model,
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


def has_sparse_gradients(module: torch.nn.Module) -> bool:
    """Some embedding table of `module` (the word embeddings, fastText's n-gram table) has sparse gradients."""
    return any(isinstance(m, (torch.nn.Embedding, torch.nn.EmbeddingBag)) and m.sparse for m in module.modules())


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
            hint = "embeddings.sparse=true or model.encoder.sparse=true needs an optimizer that supports sparse gradients: optimizer=sgd or adagrad"
        else:
            hint = "fix the optimizer.* values (e.g. optimizer.lr must be > 0)"
        raise ConfigError(f"optimizer {getattr(name, '__name__', name)}: {err}; {hint}") from None


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


def build_data_and_model(cfg: DictConfig) -> tuple[TextClassificationDataModule, TextClassifier]:
    """The data module of `cfg.data`, prepared and set up for fit, and the untrained model it feeds:
    what a training run builds before its first step, and what textclass.network shows."""
    datamodule = instantiate(cfg.data)
    datamodule.prepare_data()
    datamodule.setup("fit")
    labels = datamodule.labels
    weights = balanced_class_weights(datamodule.train_labels(), len(labels)) if cfg.model.get("class_weights") == "balanced" else None
    return datamodule, build_model(cfg, datamodule.features, labels, weights)
