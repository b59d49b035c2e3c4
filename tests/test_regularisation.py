"""Regularisation: word dropout (model.word_dropout: training tokens replaced by <unk>, never at
evaluation) and Kim 2014's max-norm on the head (model.max_norm), through the real Trainer."""

from __future__ import annotations

import json

import lightning as L
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from helpers.cli import cli_env, run_cli, run_ok
from helpers.data import write_tiny_data
from textclass.config.compose import compose_config
from textclass.data.batching import Batch, collate
from textclass.data.labels import LabelSet
from textclass.errors import ConfigError
from textclass.models.build import build_model
from textclass.models.classifier import TextClassifier
from textclass.training.module import ClassifierModule, clip_row_norms_, drop_words
from textclass.models.embedding import build_embedding
from textclass.models.encoders.bow import BagOfEmbeddings
from textclass.tokenizers.bert import PretrainedTokenizer

UNK, VOCAB, CLASSES = 1, 30, 3


def padded_batch() -> Batch:
    return collate([(np.array([5, 6, 7, 8]), 0), (np.array([9, 10]), 1), (np.array([11]), 2)], pad_id=0)


def test_word_dropout_at_zero_leaves_the_batch_as_it_is():
    batch = padded_batch()
    assert torch.equal(drop_words(batch.input_ids, batch.attention_mask, 0.0, UNK), batch.input_ids)


def test_word_dropout_at_one_replaces_every_real_token_and_no_padding():
    batch = padded_batch()
    dropped = drop_words(batch.input_ids, batch.attention_mask, 1.0, UNK)
    assert dropped.tolist() == [[1, 1, 1, 1], [1, 1, 0, 0], [1, 0, 0, 0]]


def test_word_dropout_rate_on_a_large_batch_is_near_p():
    lengths = torch.randint(5, 60, (400,), generator=torch.Generator().manual_seed(0))
    mask = torch.arange(60).unsqueeze(0) < lengths.unsqueeze(1)
    ids = torch.where(mask, 7, 0)
    dropped = drop_words(ids, mask, 0.2, UNK, generator=torch.Generator().manual_seed(1))
    rate = (dropped[mask] == UNK).float().mean().item()
    assert abs(rate - 0.2) < 0.01, rate  # ~13k tokens: a standard error of 0.0035
    assert (dropped[~mask] == 0).all()


class RecordingBag(BagOfEmbeddings):
    """A bag of embeddings that keeps the ids of every batch it sees, by mode."""

    def __init__(self, embedding):
        super().__init__(embedding)
        self.seen: dict[bool, list[torch.Tensor]] = {True: [], False: []}

    def forward(self, batch: Batch) -> torch.Tensor:
        self.seen[self.training].append(batch.input_ids.clone())
        return super().forward(batch)


def examples(n: int = 16) -> list[tuple[np.ndarray, int]]:
    rng = np.random.default_rng(0)
    return [(rng.integers(2, VOCAB, size=int(rng.integers(3, 9))), i % CLASSES) for i in range(n)]


def fit(model: ClassifierModule, tmp_path, steps: int = 1) -> L.Trainer:
    loader = DataLoader(examples(), batch_size=8, collate_fn=collate)
    trainer = L.Trainer(
        max_steps=steps, accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, num_sanity_val_steps=0, default_root_dir=tmp_path,
    )
    trainer.fit(model, loader, loader)
    return trainer


def bag_classifier(encoder_class=BagOfEmbeddings, optimizer=None, **kwargs) -> ClassifierModule:
    torch.manual_seed(0)
    encoder = encoder_class(build_embedding(VOCAB, 4, None, freeze=False))
    return ClassifierModule(TextClassifier(encoder, num_classes=CLASSES), optimizer or torch.optim.Adam, **kwargs)


def test_word_dropout_applies_to_training_batches_only(tmp_path):
    model = bag_classifier(RecordingBag, word_dropout=0.5, unk_id=UNK)
    fit(model, tmp_path, steps=2)
    originals = collate(examples()[:8]).input_ids, collate(examples()[8:]).input_ids
    training, evaluation = model.model.encoder.seen[True], model.model.encoder.seen[False]
    assert len(training) == 2 and len(evaluation) == 2
    # training: about half the real tokens are <unk> (no id 1 in the data itself), padding stays 0
    for seen, original in zip(training, originals):
        replaced = (seen == UNK) & (original != 0)
        assert 0 < replaced.sum() < (original != 0).sum()
        assert torch.equal(seen[~replaced], original[~replaced])
    # validation: the batches exactly as collated
    for seen, original in zip(evaluation, originals):
        assert torch.equal(seen, original)


def test_word_dropout_needs_an_unk_token():
    with pytest.raises(ConfigError, match=r"model\.word_dropout=0\.1 .* no <unk> .* set data\.vocab\.drop_unknown=false"):
        bag_classifier(word_dropout=0.1, unk_id=None)
    with pytest.raises(ConfigError, match=r"model\.word_dropout=1\.0 must be in \[0, 1\)"):
        bag_classifier(word_dropout=1.0, unk_id=UNK)


def test_word_dropout_is_refused_for_bert_tokenization():
    cfg = compose_config("train", ["model=bert", "model.word_dropout=0.1"])
    with pytest.raises(ConfigError, match=r"model\.word_dropout=0\.1 replaces training words by <unk>, for word tokenization only"):
        build_model(cfg, PretrainedTokenizer(), LabelSet(("0", "1"), ("0", "1")))


def test_clip_row_norms_rescales_long_rows_and_leaves_short_ones_exactly():
    weight = torch.tensor([[3.0, 4.0], [0.3, 0.4], [0.0, 10.0]])  # norms 5, 0.5, 10
    before = weight.clone()
    clip_row_norms_(weight, 2.0)
    assert torch.equal(weight[1], before[1])
    assert weight.norm(dim=1)[[0, 2]].tolist() == pytest.approx([2.0, 2.0], rel=1e-5)
    assert torch.allclose(weight[0] / weight[0].norm(), before[0] / before[0].norm())


@pytest.mark.parametrize("max_norm", [0.0, -3.0])
def test_max_norm_must_be_positive(max_norm):
    with pytest.raises(ConfigError, match=r"model\.max_norm=.* must be > 0"):
        bag_classifier(max_norm=max_norm)


def two_long_rows(model: ClassifierModule) -> ClassifierModule:
    with torch.no_grad():
        model.model.head.weight.copy_(torch.tensor([[0.1, 0.0, 0.0, 0.1], [3.0, 4.0, 0.0, 0.0], [0.0, 0.0, 6.0, 8.0]]))
    return model


def test_max_norm_after_a_training_step(tmp_path):
    sgd = lambda params: torch.optim.SGD(params, lr=0.1)  # noqa: E731
    free = two_long_rows(bag_classifier(optimizer=sgd))
    fit(free, tmp_path / "free")
    constrained = two_long_rows(bag_classifier(optimizer=sgd, max_norm=1.0))
    fit(constrained, tmp_path / "constrained")
    free_norms = free.model.head.weight.norm(dim=1)
    assert free_norms[0] < 1.0 < free_norms[1:].min()  # the step left one row short and two long
    w = constrained.model.head.weight
    assert (w.norm(dim=1) <= 1.0 + 1e-6).all()
    assert torch.equal(w[0], free.model.head.weight[0])  # the short row: exactly the unconstrained step
    assert torch.allclose(w[1:], free.model.head.weight[1:] / free_norms[1:, None], atol=1e-6)  # long rows: rescaled only


@pytest.mark.slow
def test_word_dropout_and_max_norm_through_the_cli(tmp_path):
    data = write_tiny_data(tmp_path / "data")
    env = cli_env(data, tmp_path)
    common = ("textclass-train", "trainer.max_epochs=2", "data.batch_size=4", "trainer.accelerator=cpu", "trainer.enable_progress_bar=false")
    run_ok([*common, "hydra.run.dir=run", "model.word_dropout=0.3", "model.max_norm=0.05"], cwd=tmp_path, env=env)
    state = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert (state["state_dict"]["model.head.weight"].norm(dim=1) <= 0.05 + 1e-6).all()
    assert state["hyper_parameters"]["unk_id"] == 1  # news keeps unknown words as <unk>, id 1
    assert "test/acc" in json.loads((tmp_path / "run" / "metrics.json").read_text())
    # SST-2's vocabulary drops unknown words: there is no <unk> to write
    result = run_cli([*common, "hydra.run.dir=sst2", "data=sst2", "model.word_dropout=0.3"], cwd=tmp_path, env=env)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-3000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "set data.vocab.drop_unknown=false" in errors[0], result.stderr[-3000:]
