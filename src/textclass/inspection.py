"""A model and its featurizer to look inside, untrained or trained.

    import textclass
    net = textclass.network(["model=mlp", "embeddings.freeze=true"])   # built as `textclass train` builds it, not trained
    net = textclass.network("outputs/train/runs/<run>")                 # a trained run (its selected checkpoint)
    texts, labels = net.examples("train")  # a split as training reads it
    net.ids(["Fed raises rates"])          # [[id, id, id]]; net.tokens(ids) goes back
    net.vocabulary                         # the tokens in id order, "<pad>" (id 0) first
    net.embedding_matrix()                 # [vocabulary, dim], row 0 is <pad>'s
    net.batch(["a b", "c"], ["b", "t"])    # the padded Batch the data module's collate makes
    net.logits(texts), net.probabilities(texts)
    net.loss(texts, labels)                # the training loss of those examples
    net.gradients(texts, labels)           # {parameter name: its gradient for that loss}
    net.features("train")                  # (X, Y): mean word vector of each example, class ids
    net.save_features("features/")         # X_<split>.npy, Y_<split>.npy for every split

The model is in evaluation mode (no dropout): the same input gives the same logits, loss and
gradients every time. Labels are given as the dataset writes them ("b"), by their names
("business") or as class ids.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import lightning as L
import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn

from textclass.config.compose import compose_config
from textclass.config.trust import check_user_targets
from textclass.data.batching import Batch, EncodedDataset, EncodedTexts, collate
from textclass.data.dataset import Examples, TextDataset
from textclass.data.labels import LabelSet
from textclass.errors import ConfigError, DataError
from textclass.models.classifier import TextClassifier
from textclass.run_files import SELECTED
from textclass.tokenizers import Features
from textclass.training.checkpoint import load_run, text_batches
from textclass.training.inference import checked_texts
from textclass.training.module import check_config
from textclass.training.recipe import build_data_and_model
from textclass.training.resume import plugin_arguments
from textclass.training.scoring import sources

FORMATS = ("npy", "pt")
BUILT_FROM = ("paths", "seed", "allowed_targets", "data", "tokenizer", "embeddings", "model", "optimizer", "scheduler")


@dataclass
class Network:
    """A model with the featurizer, labels and dataset it was built for."""

    cfg: DictConfig
    dataset: TextDataset
    featurizer: Features
    labels: LabelSet
    model: TextClassifier
    trained: bool

    def __repr__(self) -> str:
        return f"Network({type(self.model.encoder).__name__}, {'trained' if self.trained else 'untrained'}, labels={list(self.labels.values)})"

    # --- the data ---------------------------------------------------------------------------

    def examples(self, split: str) -> tuple[list[str], list]:
        """(texts, labels) of one split as training reads it (its fold, its held-out share, the first
        data.max_examples); labels as the dataset writes them (multi-label: a list per example)."""
        examples = sources(self, [split], None, log_missing=False)[split]
        values = self.labels.values
        if self.labels.multi_label:
            return examples.texts, [[values[i] for i in np.flatnonzero(row)] for row in examples.labels]
        return examples.texts, [values[i] for i in examples.labels]

    # --- text <-> ids ---------------------------------------------------------------------

    @property
    def vocabulary(self) -> list[str]:
        """The tokens in id order (`<pad>` is id 0)."""
        vocab = getattr(self.featurizer, "vocab", None)
        if vocab is not None:
            return list(vocab.itos)
        return self.featurizer.token_strings(range(self.embedding_matrix().shape[0]))

    def ids(self, texts: Sequence[str]) -> list[list[int]]:
        """Each text's token ids, as training encodes it (a word missing from a vocabulary without
        `<unk>` is left out)."""
        encoding = self.featurizer.encode(checked_texts(texts))
        return [encoding.ids[a:b].tolist() for a, b in zip(encoding.offsets[:-1], encoding.offsets[1:])]

    def tokens(self, ids: Sequence[Sequence[int]]) -> list[list[str]]:
        """The tokens of id sequences (each a list of ids, as `ids` returns them)."""
        size = len(self.vocabulary)
        for row, sequence in enumerate(ids):
            bad = [i for i in sequence if not isinstance(i, (int, np.integer)) or not 0 <= int(i) < size]
            if bad:
                raise DataError(f"ids[{row}] holds {bad[0]!r}, not a token id (0 to {size - 1})")
        return [self.featurizer.token_strings([int(i) for i in sequence]) for sequence in ids]

    def embedding_matrix(self) -> torch.Tensor:
        """The input embedding weights [vocabulary size, dim] (a copy); row i is id i's vector."""
        return self.embedding_layer().weight.detach().clone()

    def embedding_layer(self) -> nn.Embedding | nn.EmbeddingBag:
        for module in self.model.encoder.modules():
            if isinstance(module, (nn.Embedding, nn.EmbeddingBag)):
                return module
        raise ConfigError(f"{type(self.model.encoder).__name__} has no embedding layer")

    # --- batches, forward, loss, gradients ------------------------------------------------

    def batch(self, texts: Sequence[str], labels: Sequence | None = None) -> Batch:
        """The padded batch the data module's collate makes of these examples (ordered longest first
        when the config sets data.sort_within_batch)."""
        encoded = self.featurizer.encode(checked_texts(texts))
        ids = self.label_ids(labels, len(encoded)) if labels is not None else np.full(len(encoded), -1)
        dataset = EncodedDataset(EncodedTexts.from_encoding(encoded, ids))
        return collate([dataset[i] for i in range(len(dataset))], self.featurizer.pad_id, bool(self.cfg.data.get("sort_within_batch")))

    @torch.no_grad()
    def logits(self, texts: Sequence[str], batch_size: int = 256) -> torch.Tensor:
        """Class logits [N, classes] (one column for a BCE model of two classes, as trained)."""
        return torch.cat([self.model(b) for b in text_batches(self.featurizer, checked_texts(texts), batch_size)])

    def probabilities(self, texts: Sequence[str], batch_size: int = 256) -> torch.Tensor:
        """Class probabilities [N, classes], columns in the order of `labels`."""
        return self.model.probabilities(self.logits(texts, batch_size))

    def loss(self, texts: Sequence[str], labels: Sequence) -> torch.Tensor:
        """The training objective's loss of these examples (a scalar), with the autograd graph."""
        batch = self.batch(texts, labels)
        if (batch.lengths == 0).any():
            empty = int((batch.lengths == 0).nonzero()[0, 0])
            raise DataError(f"texts[{empty}] has no token in the vocabulary: nothing to compute a loss from")
        return self.model.compute_loss(self.model(batch), batch.labels)

    def gradients(self, texts: Sequence[str], labels: Sequence, names: Sequence[str] | None = None) -> dict[str, torch.Tensor]:
        """d loss / d parameter for `names` (every trainable parameter by default), by name."""
        parameters = dict(self.model.named_parameters())
        wanted = list(names) if names is not None else [n for n, p in parameters.items() if p.requires_grad]
        for name in wanted:
            if name not in parameters:
                raise ConfigError(f"{name!r} is not a parameter of this model; its parameters: {', '.join(parameters)}")
            if not parameters[name].requires_grad:
                raise ConfigError(f"{name!r} is frozen (embeddings.freeze=true or an encoder setting): it has no gradient")
        self.model.zero_grad(set_to_none=True)
        self.loss(texts, labels).backward()
        grads = {name: parameters[name].grad.detach().clone() for name in wanted}
        self.model.zero_grad(set_to_none=True)
        return grads

    def label_ids(self, labels: Sequence, count: int) -> np.ndarray:
        """Class ids of labels given as values, names or ids (multi-label: a list of them per example)."""
        if isinstance(labels, (str, bytes)) or len(labels) != count:
            raise DataError(f"give one label per text: {count} texts, labels={labels!r}")
        ids = [[self.label_id(one) for one in label] if self.labels.multi_label else self.label_id(label) for label in labels]
        if not self.labels.multi_label:
            return np.asarray(ids, dtype=np.int64)
        hot = np.zeros((count, len(self.labels)), dtype=np.uint8)
        for row, chosen in enumerate(ids):
            hot[row, chosen] = 1
        return hot

    def label_id(self, label) -> int:
        if isinstance(label, (int, np.integer)) and not isinstance(label, bool) and 0 <= int(label) < len(self.labels):
            return int(label)
        for names in (self.labels.values, self.labels.names):
            if label in names:
                return names.index(label)
        raise DataError(f"label {label!r} is not a class of this model: {', '.join(self.labels.values)} (or ids 0 to {len(self.labels) - 1})")

    # --- averaged word-vector features ----------------------------------------------------

    @torch.no_grad()
    def features_of(self, texts: Sequence[str], batch_size: int = 256) -> torch.Tensor:
        """The mean embedding vector of each text's tokens [N, dim] (`<unk>` left out; a text with
        no known token gets zeros)."""
        matrix = self.embedding_matrix()
        unk = self.featurizer.unk_id
        rows = []
        for b in text_batches(self.featurizer, checked_texts(texts), batch_size, fill_empty=False):
            keep = b.attention_mask & (b.input_ids != unk) if unk is not None else b.attention_mask
            summed = (matrix[b.input_ids] * keep.unsqueeze(-1)).sum(dim=1)
            rows.append(summed / keep.sum(dim=1, keepdim=True).clamp(min=1))
        return torch.cat(rows) if rows else torch.zeros(0, matrix.shape[1])

    def features(self, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        """(X, Y) of one split as the run reads it: X [N, dim] the mean word vectors, Y [N] the class ids."""
        return self.xy(sources(self, [split], None, log_missing=False)[split])

    def xy(self, examples: Examples) -> tuple[torch.Tensor, torch.Tensor]:
        return self.features_of(examples.texts), torch.from_numpy(np.asarray(examples.labels))

    def save_features(self, folder: str | Path, splits: Sequence[str] = ("train", "valid", "test"), format: str = "npy") -> list[Path]:
        """X_<split> and Y_<split> files (.npy or .pt) of the splits the dataset has; the paths written."""
        if format not in FORMATS:
            raise ConfigError(f"format={format!r}: one of {', '.join(FORMATS)}")
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        have = sources(self, list(splits), None, log_missing=False)
        written = []
        for split, examples in have.items():
            for name, tensor in zip("XY", self.xy(examples)):
                path = folder / f"{name}_{split}.{format}"
                np.save(path, tensor.numpy()) if format == "npy" else torch.save(tensor, path)
                written.append(path)
        return written


def network(source: str | Path | Sequence[str] = (), checkpoint: str = SELECTED) -> Network:
    """A trained run's model (`source` a run directory or a checkpoint file in one; `checkpoint` as
    for textclass.load), or an untrained one built from `source` as overrides, exactly as `textclass
    train` with those overrides builds it before its first step (same data, vocabulary, vectors, seed)."""
    if isinstance(source, (str, Path)):
        return trained_network(Path(source), checkpoint)
    overrides = list(source)
    for i, item in enumerate(overrides):
        if not isinstance(item, str):
            raise ConfigError(f"overrides[{i}] is {item!r}, not a string such as 'model=lstm'")
    # what builds the data and the model: no trainer, callbacks or run directory
    cfg = OmegaConf.masked_copy(compose_config("train", plugin_arguments(overrides)), list(BUILT_FROM))
    check_config(cfg)
    check_user_targets(cfg)
    if cfg.get("seed") is not None:
        L.seed_everything(cfg.seed, workers=True, verbose=False)
    datamodule, model = build_data_and_model(cfg)
    return Network(cfg, datamodule.dataset, datamodule.features, datamodule.labels, model.eval(), trained=False)


def trained_network(path: Path, checkpoint: str) -> Network:
    run = load_run(path.expanduser(), checkpoint)
    return Network(run.cfg, run.dataset, run.features, run.labels, run.model, trained=True)

