"""Models: every encoder is padding-invariant, trains every parameter it should (and none it
should not), has the closed-form parameter count of its NLP100 exercise, and rejects bad
hyperparameters by key. Real modules, the real lightning Trainer; no mocks."""

from __future__ import annotations

import copy
import functools

import lightning as L
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

from textclass.data.batching import Batch, collate
from textclass.errors import ConfigError
from textclass.models.build import balanced_class_weights
from textclass.training.module import check_optimizer
from textclass.models.classifier import TextClassifier
from textclass.models.embedding import build_embedding
from textclass.training.module import ClassifierModule, parameter_groups
from textclass.models.metrics import confusion_matrix, macro_f1, multilabel_scores
from textclass.training.totals import EpochTotals
from textclass.models.encoders.attention import AttentionEncoder
from textclass.models.encoders.bow import BagOfEmbeddings
from textclass.models.encoders.cnn import CNNEncoder
from textclass.models.encoders.fasttext import FastTextEncoder
from textclass.models.encoders.mlp import MLPEncoder
from textclass.models.encoders.rnn import RNNEncoder

VOCAB, DIM, CLASSES = 50, 8, 4
ADAM = functools.partial(torch.optim.Adam, lr=1e-3)

# Every word-level encoder, as built by its conf/model/*.yaml (RNNs also bidirectional, 2 layers).
WORD_ENCODERS = {
    "bow": BagOfEmbeddings,
    "mlp": MLPEncoder,
    **{
        f"{cell}{'-bi2' if bi else ''}": functools.partial(
            RNNEncoder, cell=cell, bidirectional=bi, num_layers=2 if bi else 1, hidden_size=16
        )
        for cell in ("rnn", "lstm", "gru")
        for bi in (False, True)
    },
    # the other poolings, on the bidirectional GRU
    **{f"gru-bi-{pooling}": functools.partial(RNNEncoder, cell="gru", bidirectional=True, hidden_size=16, pooling=pooling) for pooling in ("max", "mean")},
    "cnn": functools.partial(CNNEncoder, widths=[3], paddings=[1]),
    "textcnn": functools.partial(CNNEncoder, widths=[2, 3, 4], paddings=[0, 1, 2]),
    "attention": AttentionEncoder,
    "fasttext": functools.partial(FastTextEncoder, buckets=64),
}
word_encoders = pytest.mark.parametrize("name", list(WORD_ENCODERS))


# --- helpers ------------------------------------------------------------------------------------


def make_batch(*sentences: list[int], labels: list[int] | None = None) -> Batch:
    labels = labels if labels is not None else [i % CLASSES for i in range(len(sentences))]
    return collate([(np.array(ids, dtype=np.int64), y) for ids, y in zip(sentences, labels)], pad_id=0)


def sentence(length: int, seed: int) -> list[int]:
    """`length` random non-PAD word ids."""
    return torch.randint(1, VOCAB, (length,), generator=torch.Generator().manual_seed(seed)).tolist()


def classifier(name: str, embedding: nn.Embedding | None = None, optimizer=ADAM, **kwargs) -> ClassifierModule:
    """The training module of a `name` model (its TextClassifier is `.model`)."""
    torch.manual_seed(0)
    embedding = embedding if embedding is not None else build_embedding(VOCAB, DIM, None, freeze=False)
    return ClassifierModule(TextClassifier(WORD_ENCODERS[name](embedding), num_classes=CLASSES, **kwargs), optimizer)


def num_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def trainer(tmp_path, max_steps: int) -> L.Trainer:
    return L.Trainer(
        max_steps=max_steps,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        default_root_dir=tmp_path,
    )


def loader(batches: list[Batch]) -> DataLoader:
    """Ready-made Batch objects, one per step (batch_size=None: no re-collation)."""
    return DataLoader(batches, batch_size=None, shuffle=False)


def one_step(model: ClassifierModule, batch: Batch) -> None:
    """One training step through the model's own configure_optimizers and loss."""
    model.train()
    optimizer = model.configure_optimizers()
    optimizer.zero_grad()
    model.model.compute_loss(model(batch), batch.labels).backward()
    optimizer.step()


# --- 1, 2: padding ------------------------------------------------------------------------------


@word_encoders
@pytest.mark.parametrize("short_len", [1, 3])
def test_logits_do_not_depend_on_padding(name, short_len):
    model = classifier(name).eval()
    short, long = sentence(short_len, seed=1), sentence(40, seed=2)
    with torch.no_grad():
        alone = model(make_batch(short))[0]
        short_first = model(make_batch(short, long))
        short_second = model(make_batch(long, short))
        long_alone = model(make_batch(long))[0]
    assert alone.shape == (CLASSES,)
    torch.testing.assert_close(short_first[0], alone, atol=1e-5, rtol=0)
    torch.testing.assert_close(short_second[1], alone, atol=1e-5, rtol=0)
    torch.testing.assert_close(short_first[1], long_alone, atol=1e-5, rtol=0)
    assert not torch.allclose(alone, long_alone, atol=1e-3)  # the two sentences are told apart


@pytest.mark.parametrize("pooling", ["max", "mean"])
def test_rnn_pooling_over_real_tokens(pooling):
    """max/mean pool the top layer's states over the real tokens; an empty sentence pools its one
    padding step instead of giving -inf or NaN."""
    torch.manual_seed(0)
    encoder = RNNEncoder(_embedding(), cell="gru", bidirectional=True, hidden_size=8, pooling=pooling).eval()
    batch = make_batch(sentence(5, seed=1), [])
    with torch.no_grad():
        pooled = encoder(batch)
        states, _ = encoder.run(batch)
    real = states[0, :5]
    torch.testing.assert_close(pooled[0], real.amax(0) if pooling == "max" else real.mean(0))
    torch.testing.assert_close(pooled[1], states[1, 0])
    assert pooled.shape == (2, 16) and torch.isfinite(pooled).all()


def test_attention_weights_are_a_distribution_over_real_tokens_only():
    torch.manual_seed(0)
    encoder = AttentionEncoder(build_embedding(VOCAB, DIM, None, freeze=False), hidden_size=16, attention_size=8).eval()
    batch = make_batch(sentence(3, 1), sentence(40, 2), sentence(1, 3))
    with torch.no_grad():
        vectors, weights = encoder.attend(batch)
    assert vectors.shape == (3, 32) and weights.shape == (3, 40)
    torch.testing.assert_close(weights.sum(-1), torch.ones(3), atol=1e-6, rtol=0)
    assert torch.all(weights[~batch.attention_mask] == 0)
    assert torch.all(weights[batch.attention_mask] > 0)
    assert weights[2, 0] == 1.0  # a one-word sentence attends only to its word


# --- 3, 4: what trains --------------------------------------------------------------------------


@word_encoders
def test_one_step_changes_every_trainable_parameter_but_the_pad_row(name):
    model = classifier(name, optimizer=functools.partial(torch.optim.Adam, lr=1e-2))
    batch = make_batch(sentence(3, 1), sentence(7, 2), sentence(2, 3), sentence(5, 4))  # padded rows
    before = {k: p.detach().clone() for k, p in model.named_parameters()}
    one_step(model, batch)
    after = dict(model.named_parameters())
    unchanged = [k for k in before if torch.equal(before[k], after[k])]
    assert unchanged == []
    (embedding_key,) = [k for k in before if k.endswith("embedding.weight")]
    assert torch.equal(after[embedding_key][0], torch.zeros(DIM))  # PAD row: still exactly zero
    unused = sorted(set(range(1, VOCAB)) - set(batch.input_ids.flatten().tolist()))
    assert torch.equal(after[embedding_key][unused], before[embedding_key][unused])


@pytest.mark.parametrize("freeze", [True, False])
def test_frozen_embeddings_stay_bit_identical_through_the_trainer(tmp_path, freeze):
    torch.manual_seed(0)
    pretrained = torch.randn(VOCAB, DIM)
    pretrained[0] = 0
    original = pretrained.clone()  # build_embedding may share storage with `pretrained`
    embedding = build_embedding(VOCAB, DIM, pretrained, freeze=freeze)
    model = classifier("bow", embedding=embedding, optimizer=functools.partial(torch.optim.Adam, lr=1e-2))
    head_before = model.model.head.weight.detach().clone()
    batches = [make_batch(sentence(3, s), sentence(6, s + 10), sentence(2, s + 20), labels=[0, 1, 2]) for s in range(2)]
    trainer(tmp_path, max_steps=3).fit(model, train_dataloaders=loader(batches))
    weight = model.model.encoder.embedding.weight
    assert not torch.equal(model.model.head.weight, head_before)  # training did happen
    assert torch.equal(weight[0], torch.zeros(DIM))
    if freeze:
        assert not weight.requires_grad and weight.grad is None
        assert torch.equal(weight, original)
    else:
        assert not torch.equal(weight, original)


def test_multichannel_embedding_trains_the_tuned_channel_only(tmp_path):
    """Kim's CNN-multichannel through the real Trainer: the static copy stays bit-identical, the
    tuned copy moves, both PAD rows stay zero, and the CNN reads both channels."""
    torch.manual_seed(0)
    pretrained = torch.randn(VOCAB, DIM)
    pretrained[0] = 0
    original = pretrained.clone()
    embedding = build_embedding(VOCAB, DIM, pretrained, freeze=False, multichannel=True)
    model = classifier("textcnn", embedding=embedding, optimizer=functools.partial(torch.optim.Adam, lr=1e-2))
    assert embedding.embedding_dim == 2 * DIM and model.model.encoder.convs[0].in_channels == 2 * DIM
    ids = torch.tensor([[3, 7, 0]])
    torch.testing.assert_close(embedding(ids), torch.cat([original[ids], original[ids]], dim=-1))
    # trainable: the tuned channel (VOCAB x DIM), not the static one
    assert sum(p.numel() for p in embedding.parameters() if p.requires_grad) == VOCAB * DIM
    batches = [make_batch(sentence(3, s), sentence(6, s + 10), sentence(2, s + 20), labels=[0, 1, 2]) for s in range(2)]
    trainer(tmp_path, max_steps=3).fit(model, train_dataloaders=loader(batches))
    static, tuned = embedding.static.weight, embedding.tuned.weight
    assert not static.requires_grad and torch.equal(static, original)
    assert not torch.equal(tuned, original)
    assert torch.equal(tuned[0], torch.zeros(DIM)) and torch.equal(static[0], torch.zeros(DIM))


@pytest.mark.parametrize(
    "pretrained, freeze, message",
    [(None, False, "multichannel=true needs pretrained vectors"), (torch.zeros(VOCAB, DIM), True, "set embeddings.freeze=false")],
)
def test_multichannel_needs_pretrained_fine_tuned_vectors(pretrained, freeze, message):
    with pytest.raises(ConfigError, match=message):
        build_embedding(VOCAB, DIM, pretrained, freeze=freeze, multichannel=True)


# --- 5: parameter counts ------------------------------------------------------------------------

V, D, H, C = 1000, 300, 50, 4


def recurrent(gates: int, inp: int, hidden: int) -> int:
    """One direction of one layer: W_ih, W_hh and two bias vectors per gate block."""
    return gates * (inp * hidden + hidden * hidden + 2 * hidden)


PARAM_COUNTS = {
    # NLP100-2020 ex.81: embedding, Elman RNN, linear head
    "rnn": (functools.partial(RNNEncoder, cell="rnn", hidden_size=H), {}, V * D + D * H + H * H + 2 * H + H * C + C),
    "rnn-bi2": (
        functools.partial(RNNEncoder, cell="rnn", hidden_size=H, bidirectional=True, num_layers=2),
        {},
        V * D + 2 * (D * H + H * H + 2 * H) + 2 * (2 * H * H + H * H + 2 * H) + 2 * H * C + C,
    ),
    "lstm": (functools.partial(RNNEncoder, cell="lstm", hidden_size=H), {}, V * D + 4 * (D * H + H * H + 2 * H) + H * C + C),
    "gru": (functools.partial(RNNEncoder, cell="gru", hidden_size=H), {}, V * D + 3 * (D * H + H * H + 2 * H) + H * C + C),
    "bow": (BagOfEmbeddings, {}, V * D + D * C + C),
    "single-layer-no-bias": (BagOfEmbeddings, {"head_bias": False}, V * D + D * C),
    # Linear(300, 200) + BatchNorm(200) (scale and shift) + head
    "mlp": (MLPEncoder, {}, V * D + D * 200 + 200 + 2 * 200 + 200 * C + C),
    "cnn-ex86": (functools.partial(CNNEncoder, widths=[3], paddings=[1]), {}, V * D + D * 3 * 100 + 100 + 100 * C + C),
    "textcnn-ex88": (
        functools.partial(CNNEncoder, widths=[2, 3, 4], paddings=[0, 1, 2]),
        {},
        V * D + D * (2 + 3 + 4) * 100 + 3 * 100 + 300 * C + C,
    ),
    # BiLSTM (hidden 128) + projection 256 -> 128 with bias + score vector 128 + head
    "attention": (AttentionEncoder, {}, V * D + 2 * recurrent(4, D, 128) + 256 * 128 + 128 + 128 + 256 * C + C),
}


@pytest.mark.parametrize("name", list(PARAM_COUNTS))
def test_parameter_count_matches_closed_form(name):
    encoder_factory, options, expected = PARAM_COUNTS[name]
    encoder = encoder_factory(build_embedding(V, D, None, freeze=False))
    model = ClassifierModule(TextClassifier(encoder, num_classes=C, **options), ADAM)
    assert num_params(model) == expected


# --- 6, 7: heads --------------------------------------------------------------------------------


@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize("bag", [BagOfEmbeddings, functools.partial(FastTextEncoder, buckets=64, sparse=True)], ids=["bow", "fasttext"])
def test_bags_train_through_one_fused_bag_with_the_same_values_and_gradients(bag, sparse):
    """In training the bag of embeddings (mean) and fastText (sum) reduce the word vectors in one
    embedding_bag call (no [B, T, dim] tensor); it gives what the masked mean or sum of the word
    vectors gives in evaluation, in value and gradient, an empty sentence included, and the PAD row
    gets no gradient."""
    torch.manual_seed(0)
    embedding = build_embedding(VOCAB, DIM, torch.randn(VOCAB, DIM), freeze=False, sparse=sparse)
    encoder = bag(embedding)
    batch = make_batch(sentence(3, 1), sentence(1, 2), [], sentence(6, 3))
    outputs, gradients = {}, {}
    for training in (True, False):
        encoder.train(training)
        outputs[training] = encoder(batch)
        outputs[training].pow(2).sum().backward()
        gradients[training] = embedding.weight.grad.to_dense()
        embedding.weight.grad = None
    torch.testing.assert_close(outputs[True], outputs[False])
    torch.testing.assert_close(gradients[True], gradients[False])
    assert torch.equal(outputs[True][2], torch.zeros(DIM)) and torch.equal(gradients[True][0], torch.zeros(DIM))
    assert gradients[True].abs().sum() > 0


@pytest.mark.parametrize("labels_seen", [4, 3])  # 3: class 3 neither true nor predicted in any batch
def test_epoch_totals_match_torchmetrics(labels_seen):
    """The figures training, validation and test log, from counts: torchmetrics' values over the same batches."""
    from torchmetrics.classification import MulticlassAccuracy, MulticlassF1Score, MulticlassPrecision, MulticlassRecall

    generator = torch.Generator().manual_seed(0)
    totals = EpochTotals(4)
    reference = {"acc": MulticlassAccuracy(4, average="micro"), "f1": MulticlassF1Score(4, average="macro"),
                 "precision": MulticlassPrecision(4, average=None), "recall": MulticlassRecall(4, average=None)}
    losses, sizes = [], []
    for size in (5, 8, 3):
        labels = torch.randint(0, labels_seen, (size,), generator=generator)
        logits = torch.randn(size, 4, generator=generator)
        logits[:, labels_seen:] = -10.0  # never predicted
        loss = torch.rand((), generator=generator)
        totals.update(logits.argmax(-1), labels, loss)
        for m in reference.values():
            m.update(logits, labels)
        losses.append(float(loss))
        sizes.append(size)
    figures = totals.compute()
    assert figures["examples"].item() == 16
    assert figures["loss"].item() == pytest.approx(sum(l * n for l, n in zip(losses, sizes)) / 16)
    for name, m in reference.items():
        torch.testing.assert_close(figures[name], m.compute().float())
    assert 0.0 < figures["f1"].item() < 1.0
    totals.reset()
    assert totals.confusion.sum().item() == 0 and totals.loss_sum.item() == 0.0


def test_epoch_totals_multi_label_match_torchmetrics():
    from torchmetrics.classification import (MultilabelExactMatch, MultilabelF1Score, MultilabelHammingDistance,
                                             MultilabelPrecision, MultilabelRecall)

    generator = torch.Generator().manual_seed(1)
    totals = EpochTotals(3, multi_label=True)
    k = dict(num_labels=3)
    reference = {"acc": MultilabelExactMatch(**k), "f1": MultilabelF1Score(**k, average="macro"),
                 "f1_micro": MultilabelF1Score(**k, average="micro"), "hamming": MultilabelHammingDistance(**k, average="micro"),
                 "precision": MultilabelPrecision(**k, average=None), "recall": MultilabelRecall(**k, average=None)}
    for size in (6, 2, 9):
        truth = torch.randint(0, 2, (size, 3), generator=generator)
        truth[:, 2] = 0  # a label never true
        decisions = torch.randint(0, 2, (size, 3), generator=generator)
        totals.update(decisions, truth, torch.tensor(0.5))
        for m in reference.values():
            m.update(decisions.float(), truth)
    figures = totals.compute()
    assert figures["examples"].item() == 17 and figures["loss"].item() == pytest.approx(0.5)
    for name, m in reference.items():
        torch.testing.assert_close(figures[name], m.compute().float())


@pytest.mark.parametrize("trial", range(6))
def test_eval_scores_match_torchmetrics(trial):
    """textclass eval scores without torchmetrics (which loading a run does not import): the same
    figures as its functional metrics, an absent class, an all-empty label and one-example inputs included."""
    from torchmetrics.functional import classification as tm

    generator = torch.Generator().manual_seed(trial)
    n, c = (1, 3) if trial == 0 else (int(torch.randint(2, 40, (1,), generator=generator)), 2 + trial % 4)
    logits, labels = torch.randn(n, c, generator=generator), torch.randint(0, c - (trial % 2), (n,), generator=generator)
    confusion = confusion_matrix(logits.argmax(-1), labels, c)
    assert torch.equal(confusion, tm.multiclass_confusion_matrix(logits, labels, c))
    assert float(confusion.diagonal().sum() / n) == pytest.approx(float(tm.multiclass_accuracy(logits, labels, c, average="micro")))
    assert float(macro_f1(confusion)) == pytest.approx(float(tm.multiclass_f1_score(logits, labels, c, average="macro")))
    decisions = torch.rand(n, c, generator=generator) > 0.6
    truth = (torch.rand(n, c, generator=generator) > 0.5).long()
    truth[:, 0] = 0  # a label no example has
    k = dict(num_labels=c, threshold=0.5)
    expected = {
        "acc": tm.multilabel_exact_match(decisions.float(), truth, **k),
        "f1": tm.multilabel_f1_score(decisions.float(), truth, **k, average="macro"),
        "f1_micro": tm.multilabel_f1_score(decisions.float(), truth, **k, average="micro"),
        "hamming": tm.multilabel_hamming_distance(decisions.float(), truth, **k, average="micro"),
        "precision": tm.multilabel_precision(decisions.float(), truth, **k, average=None),
        "recall": tm.multilabel_recall(decisions.float(), truth, **k, average=None),
    }
    scores = multilabel_scores(decisions, truth)
    for name, value in expected.items():
        torch.testing.assert_close(scores[name].float(), value.float(), msg=name)


def test_training_figures_of_a_run_stopped_by_max_steps_mid_epoch(tmp_path):
    model = classifier("bow")
    batches = [make_batch(sentence(3, s), sentence(6, s + 10), sentence(2, s + 20), labels=[0, 1, 2]) for s in range(5)]
    run = trainer(tmp_path, max_steps=3)
    run.fit(model, train_dataloaders=loader(batches))
    assert run.callback_metrics["train/examples"].item() == 9  # 3 steps of 3 sentences, not the epoch's 5
    assert 0.0 <= run.callback_metrics["train/acc"].item() <= 1.0


def test_bce_is_logistic_regression_with_one_logit():
    torch.manual_seed(0)
    model = TextClassifier(BagOfEmbeddings(build_embedding(VOCAB, DIM, None, freeze=False)), 2, loss="bce").eval()
    batch = make_batch(sentence(3, 1), sentence(5, 2), sentence(2, 3), labels=[1, 0, 1])
    assert model.head.out_features == 1
    with torch.no_grad():
        logits = model(batch)
        raw = model.head(model.encoder(batch)).squeeze(-1)
        loss = model.compute_loss(logits, batch.labels)
    assert logits.shape == (3, 2)
    torch.testing.assert_close(logits.softmax(-1)[:, 1], torch.sigmoid(raw), atol=1e-6, rtol=0)
    torch.testing.assert_close(loss, F.binary_cross_entropy_with_logits(raw, batch.labels.float()), atol=1e-6, rtol=0)


def test_bce_needs_two_classes():
    with pytest.raises(ConfigError, match="cross_entropy"):
        TextClassifier(BagOfEmbeddings(build_embedding(VOCAB, DIM, None, freeze=False)), 4, loss="bce")


@pytest.mark.parametrize("head_init, low, high", [("normal", 0.9, 1.1), ("default", 0.0, 0.1)])
def test_head_init_normal_draws_unit_variance_weights(head_init, low, high):
    torch.manual_seed(0)
    model = TextClassifier(BagOfEmbeddings(build_embedding(VOCAB, 300, None, freeze=False)), 4, head_init=head_init)
    assert model.head.weight.shape == (4, 300)
    assert low < model.head.weight.std().item() < high


# --- 8, 9, 10: optimisation -----------------------------------------------------------------------


def group_ids(module: nn.Module) -> tuple[dict, set[int], set[int]]:
    decay, no_decay = parameter_groups(module)
    assert "weight_decay" not in decay and no_decay["weight_decay"] == 0.0
    return dict(module.named_parameters()), {id(p) for p in decay["params"]}, {id(p) for p in no_decay["params"]}


@pytest.mark.parametrize("sparse", [True, False])
def test_parameter_groups_decay_weight_matrices_only(sparse):
    embedding = build_embedding(VOCAB, DIM, None, freeze=False, sparse=sparse)
    named, decay, no_decay = group_ids(TextClassifier(MLPEncoder(embedding, hidden_sizes=[6]), CLASSES))
    expect_decay = {"encoder.layers.0.weight", "head.weight"} | (set() if sparse else {"encoder.mean.embedding.weight"})
    assert {k for k, p in named.items() if id(p) in decay} == expect_decay
    assert {k for k, p in named.items() if id(p) in no_decay} == set(named) - expect_decay
    assert not decay & no_decay


def test_parameter_groups_leave_out_frozen_parameters():
    pretrained = torch.randn(VOCAB, DIM)
    encoder = BagOfEmbeddings(build_embedding(VOCAB, DIM, pretrained, freeze=True))
    named, decay, no_decay = group_ids(TextClassifier(encoder, CLASSES))
    frozen = id(named["encoder.embedding.weight"])
    assert frozen not in decay | no_decay
    assert decay == {id(named["head.weight"])} and no_decay == {id(named["head.bias"])}


def test_linear_warmup_decay_multipliers():
    from textclass.models.schedules import linear_warmup_decay

    optimizer = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0)
    schedule = linear_warmup_decay(optimizer, num_training_steps=100, warmup_fraction=0.1)
    lrs = []
    for _ in range(101):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        schedule.step()
    # as transformers' get_linear_schedule_with_warmup: 0 at step 0, peak 1 at step 10, 0 at step 100
    for step, value in {0: 0.0, 5: 0.5, 9: 0.9, 10: 1.0, 55: 0.5, 99: 1 / 90, 100: 0.0}.items():
        assert lrs[step] == pytest.approx(value, abs=1e-12), step
    assert np.all(np.diff(lrs[:10]) > 0) and np.all(np.diff(lrs[10:]) < 0)
    with pytest.raises(ConfigError, match="warmup_fraction"):
        linear_warmup_decay(optimizer, 100, warmup_fraction=1.0)


@pytest.mark.parametrize(
    "optimizer",
    [
        functools.partial(torch.optim.SGD, lr=0.1, momentum=0.9, weight_decay=0.01),
        functools.partial(torch.optim.Adagrad, lr=0.1, weight_decay=0.01),
    ],
    ids=["sgd-momentum-decay", "adagrad-decay"],
)
def test_sparse_embeddings_train_with_sgd_and_adagrad(optimizer):
    check_optimizer(optimizer, sparse=True)  # the build-time check lets them through
    model = classifier("bow", embedding=build_embedding(VOCAB, DIM, None, freeze=False, sparse=True), optimizer=optimizer)
    weight = model.model.encoder.embedding.weight
    before = weight.detach().clone()
    batch = make_batch([1, 2, 3], [4, 5])
    for _ in range(2):  # the second step goes through the momentum / accumulator state
        one_step(model, batch)
    assert weight.grad.is_sparse
    assert not torch.equal(weight[1:6], before[1:6])
    assert torch.equal(weight[6:], before[6:])  # rows outside the batch: untouched, no decay
    assert torch.equal(weight[0], torch.zeros(DIM))


def test_check_optimizer_rejects_an_optimizer_without_sparse_support():
    adam = functools.partial(torch.optim.Adam, lr=1e-3)
    model = classifier("bow", embedding=build_embedding(VOCAB, DIM, None, freeze=False, sparse=True), optimizer=adam)
    with pytest.raises(RuntimeError, match="does not support sparse gradients"):
        one_step(model, make_batch([1, 2, 3]))  # what training would hit
    with pytest.raises(ConfigError, match="sgd or adagrad"):
        check_optimizer(adam, sparse=True)


def test_check_optimizer_rejects_a_bad_learning_rate():
    with pytest.raises(ConfigError, match="Invalid learning rate: -1"):
        check_optimizer(functools.partial(torch.optim.SGD, lr=-1), sparse=False)


# --- 11: bad hyperparameters ----------------------------------------------------------------------


def _embedding() -> nn.Embedding:
    return build_embedding(VOCAB, DIM, None, freeze=False)


BAD_OPTIONS = {
    "rnn hidden_size=0": (lambda: RNNEncoder(_embedding(), hidden_size=0), "model.encoder.hidden_size=0"),
    "rnn num_layers=0": (lambda: RNNEncoder(_embedding(), num_layers=0), "model.encoder.num_layers=0"),
    "rnn dropout=-0.1": (lambda: RNNEncoder(_embedding(), dropout=-0.1), "model.encoder.dropout=-0.1"),
    "rnn cell=lstmx": (lambda: RNNEncoder(_embedding(), cell="lstmx"), "model.encoder.cell='lstmx'"),
    "rnn pooling=sum": (lambda: RNNEncoder(_embedding(), pooling="sum"), "model.encoder.pooling='sum'"),
    "cnn widths/paddings": (
        lambda: CNNEncoder(_embedding(), widths=[2, 3], paddings=[1]),
        r"model.encoder.widths=\[2, 3\] and paddings=\[1\]",
    ),
    "mlp hidden_sizes=[]": (lambda: MLPEncoder(_embedding(), hidden_sizes=[]), "model.encoder.hidden_sizes"),
    "dropout=1.5": (lambda: TextClassifier(BagOfEmbeddings(_embedding()), CLASSES, dropout=1.5), "model.dropout=1.5"),
    "class_weights length": (
        lambda: TextClassifier(BagOfEmbeddings(_embedding()), CLASSES, class_weights=[1.0, 2.0]),
        "model.class_weights.*needs 4",
    ),
}


@pytest.mark.parametrize("case", list(BAD_OPTIONS))
def test_bad_hyperparameters_raise_config_error_naming_the_key(case):
    build, message = BAD_OPTIONS[case]
    with pytest.raises(ConfigError, match=message):
        build()


# --- 12: BERT -----------------------------------------------------------------------------------

SENTENCES = ["a gorgeous , witty film .", "the movie is n't good", "dull", "an utterly charming and hilarious film"]


@pytest.fixture(scope="module")
def minilm():
    from textclass.models.encoders.bert import BertEncoder

    return BertEncoder()


@pytest.fixture(scope="module")
def bert_batch() -> Batch:
    from textclass.tokenizers.bert import PretrainedTokenizer

    encoding = PretrainedTokenizer().encode(SENTENCES)
    ids = [encoding.ids[a:b] for a, b in zip(encoding.offsets[:-1], encoding.offsets[1:])]
    return collate([(i, np.int64(y)) for i, y in zip(ids, [1, 0, 0, 1])], pad_id=0)


def trainable(module: nn.Module) -> bool:
    return any(p.requires_grad for p in module.parameters())


def test_bert_output_dim(minilm):
    assert minilm.output_dim == 384 == minilm.model.config.hidden_size


def test_bert_freeze_layers_freezes_embeddings_and_lowest_layers():
    from textclass.models.encoders.bert import BertEncoder

    model = BertEncoder(freeze_layers=2).model
    assert not trainable(model.embeddings)
    assert [trainable(layer) for layer in model.encoder.layer] == [False, False] + [True] * (len(model.encoder.layer) - 2)
    assert all(p.requires_grad for layer in model.encoder.layer[2:] for p in layer.parameters())


def test_bert_freeze_trains_no_encoder_weight():
    from textclass.models.encoders.bert import BertEncoder

    encoder = BertEncoder(freeze=True)
    assert not trainable(encoder)
    model = TextClassifier(encoder, 2)
    assert {id(p) for group in parameter_groups(model) for p in group["params"]} == {id(model.head.weight), id(model.head.bias)}


def test_bert_mean_pooling_is_the_masked_mean(minilm, bert_batch):
    assert bert_batch.input_ids.shape[1] > int(bert_batch.lengths.min())  # the batch has padding
    encoder = copy.deepcopy(minilm).eval()  # the module fixture stays as constructed
    encoder.pooling = "mean"
    with torch.no_grad():
        pooled = encoder(bert_batch)
        states = encoder.model(input_ids=bert_batch.input_ids, attention_mask=bert_batch.attention_mask.long()).last_hidden_state
    expected = torch.stack([states[i, : int(n)].mean(0) for i, n in enumerate(bert_batch.lengths)])
    assert pooled.shape == (4, 384)
    torch.testing.assert_close(pooled, expected, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(pooled, states[:, 0], atol=1e-3)  # not the cls vector


def test_bert_one_training_step_updates_the_head(tmp_path, minilm, bert_batch):
    torch.manual_seed(0)
    model = ClassifierModule(TextClassifier(copy.deepcopy(minilm), 2, dropout=0.1), functools.partial(torch.optim.AdamW, lr=1e-3))
    head_before = model.model.head.weight.detach().clone()
    trainer(tmp_path, max_steps=1).fit(model, train_dataloaders=loader([bert_batch]))
    assert model.global_step == 1
    assert not torch.equal(model.model.head.weight, head_before)


# --- 13 -----------------------------------------------------------------------------------------


def test_balanced_class_weights():
    assert balanced_class_weights(np.array([0, 0, 0, 1]), 2) == pytest.approx([4 / 6, 4 / 2])
    with pytest.raises(ConfigError, match=r"class\(es\) \[2\]"):
        balanced_class_weights(np.array([0, 1]), 3)


class RecordDropoutModes(L.Callback):
    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.eval_dropouts = [n for n, m in pl_module.model.encoder.named_modules() if isinstance(m, nn.Dropout) and not m.training]


def test_bert_dropout_is_active_while_training(tmp_path, minilm, bert_batch):
    encoder = copy.deepcopy(minilm).requires_grad_(False)  # head-only step: the mode is what is checked
    model = ClassifierModule(TextClassifier(encoder, 2), ADAM)
    recorder = RecordDropoutModes()
    run = trainer(tmp_path, max_steps=1)
    run.callbacks.append(recorder)
    run.fit(model, train_dataloaders=loader([bert_batch]))
    assert recorder.eval_dropouts == []
