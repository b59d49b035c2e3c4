"""The DataModule on both tokenizations, and the real `textclass-train` CLI on tiny data."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from helpers.cli import cli_env, run_ok, TinyRun
from helpers.data import builtin_dataset, NEWS_ROWS
from helpers.paths import real_data, REAL_DATA
from textclass.data.datamodule import TextClassificationDataModule
from textclass.embeddings import EmbeddingSpec
from textclass.tokenizers.bert import PretrainedTokenizer
from textclass.tokenizers.word import WordTokenizer


def test_bert_tokenization_of_a_batch_offline(data_dir, tmp_path):
    dm = TextClassificationDataModule(
        builtin_dataset("sst2", data_dir, "data.dataset.download=false"),
        PretrainedTokenizer(max_length=8),
        embeddings=EmbeddingSpec(),  # ignored: BERT brings its own embeddings
        cache_dir=str(tmp_path / "cache"),
        batch_size=4,
    )
    dm.prepare_data()
    dm.setup("fit")
    # the tokenizer is its own featurizer: no word vocabulary, no embedding matrix, pad id 0
    assert isinstance(dm.features, PretrainedTokenizer)
    assert not hasattr(dm.features, "vocab") and dm.features.embedding_init() is None and dm.features.pad_id == 0
    batch = next(iter(dm.val_dataloader()))
    cls, sep = 101, 102  # uncased BERT vocabulary
    assert batch.input_ids.shape[0] == 4 and batch.input_ids.shape[1] <= 8
    assert (batch.input_ids[:, 0] == cls).all()
    for row, length in zip(batch.input_ids, batch.lengths):
        assert row[length - 1] == sep and (row[length:] == 0).all()
    assert batch.lengths[:2].tolist() == [8, 8]  # both truncated to max_length, [SEP] kept
    tok = dm.features.hf_tokenizer
    # "contains no wit , only labored gags" is 8 word pieces; 6 fit between [CLS] and [SEP]
    assert tok.decode(batch.input_ids[1, 1:7]) == "contains no wit, only labor"
    assert batch.attention_mask.sum().item() == batch.lengths.sum().item()


def test_word_datamodule_loaders_and_bucketing(data_dir, tmp_path):
    dm = TextClassificationDataModule(
        builtin_dataset("news", data_dir, "data.dataset.download=false"),
        WordTokenizer(),
        embeddings=EmbeddingSpec(),
        vocab={"source": "data", "min_freq": 2},
        cache_dir=str(tmp_path / "cache"),
        batch_size=8,
        bucket_by_length=True,
        sort_within_batch=True,
    )
    assert len(dm.labels) == 4
    assert dm.features.vectors.shape == (len(dm.features.vocab), 50)
    train_batches = list(dm.train_dataloader())
    assert sum(len(b) for b in train_batches) == 3 * len(NEWS_ROWS)
    for b in train_batches:
        assert b.lengths.tolist() == sorted(b.lengths.tolist(), reverse=True)
    assert sum(len(b) for b in dm.test_dataloader()) == len(NEWS_ROWS[::2])
    labels = np.concatenate([b.labels.numpy() for b in dm.val_dataloader()])
    assert sorted(labels.tolist()) == sorted("btem".index(c) for c, _ in NEWS_ROWS)


def test_train_cli_on_tiny_news_writes_run_dir(tiny_run: TinyRun):
    """conftest's shared run: `textclass-train trainer.max_epochs=2 data.batch_size=4 trainer.accelerator=cpu`."""
    run = tiny_run.run
    metrics = json.loads((run / "metrics.json").read_text())
    assert {"val/loss", "val/acc", "val/f1", "test/acc", "test/f1"} <= metrics.keys()
    assert 0.0 <= metrics["test/acc"] <= 1.0
    assert {"val/precision/business", "test/recall/science-technology"} <= metrics.keys()
    confusion = json.loads((run / "confusion_matrix.json").read_text())
    assert confusion["class_names"] == ["business", "science/technology", "entertainment", "health"]
    # the selected checkpoint's, as its predictions files and metrics.json report it
    assert confusion["checkpoint"] == "selected.ckpt"
    assert sum(map(sum, confusion["valid"])) == len(NEWS_ROWS) and sum(map(sum, confusion["test"])) == len(NEWS_ROWS[::2])
    # the diagonal of the test matrix is what test/acc counted
    assert sum(confusion["test"][i][i] for i in range(4)) / len(NEWS_ROWS[::2]) == pytest.approx(metrics["test/acc"])
    checkpoints = sorted(p.name for p in (run / "checkpoints").iterdir())
    # the best epoch by val/loss, and the last epoch
    assert checkpoints == ["last.ckpt", "selected.ckpt"]
    assert torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["epoch"] == 1
    vocab = json.loads((run / "vocab.json").read_text())["itos"]
    assert vocab[:2] == ["<pad>", "<unk>"] and "fed" in vocab
    assert list((run / "tensorboard").glob("events.out.tfevents.*"))
    assert (run / ".hydra" / "config.yaml").is_file()


@real_data
@pytest.mark.slow
def test_default_main_job_learns_news(tmp_path):
    """README's main job (news, bow, GloVe) on the real data reaches a sensible accuracy."""
    run_ok(["textclass-train", "hydra.run.dir=run", "trainer.accelerator=cpu"], cwd=tmp_path, env=cli_env(REAL_DATA, tmp_path))
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["val/acc"] > 0.85
    assert "test/acc" not in metrics  # the shared news copy has no test split

