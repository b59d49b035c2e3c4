"""From the composed config and a prepared datamodule to a TextClassifier."""

from __future__ import annotations

from hydra.utils import instantiate
from omegaconf import DictConfig

from textclass.data.datamodule import TextClassificationDataModule
from textclass.models.classifier import TextClassifier
from textclass.models.embedding import build_embedding
from textclass.tokenizers.word import WordTokenizer


def build_model(cfg: DictConfig, datamodule: TextClassificationDataModule) -> TextClassifier:
    """Word encoders get an embedding layer sized and initialised from the datamodule's vocabulary."""
    encoder_factory = instantiate(cfg.model.encoder)
    if isinstance(datamodule.tokenizer, WordTokenizer):
        spec = datamodule.embeddings
        embedding = build_embedding(
            vocab_size=len(datamodule.vocab),
            dim=spec.dim,
            pretrained=datamodule.embedding_matrix,
            freeze=spec.freeze,
            padding_idx=datamodule.pad_id,
        )
        encoder = encoder_factory(embedding=embedding)
    else:
        encoder = encoder_factory()
    # _convert_: plain containers in hparams, so checkpoints load with torch's weights_only
    return instantiate(
        cfg.model,
        encoder=encoder,
        num_classes=datamodule.num_classes,
        class_names=list(datamodule.class_names),
        _convert_="all",
    )
