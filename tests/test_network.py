"""textclass.network: a model and its featurizer built as training builds them (or loaded from a
run), checked against values computed by hand: ids and tokens, the embedding matrix, the padded
batch, the loss of a tiny model, its gradients (analytic and torch.autograd.gradcheck), and the
averaged word-vector features."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.func import functional_call

import textclass
from helpers.cli import TinyRun
from helpers.data import NEWS_ROWS
from textclass.errors import ConfigError, DataError

TINY = ["embeddings=none", "embeddings.dim=4", "model=bow", "data.vocab.min_freq=1"]


@pytest.fixture
def net(data_dir, monkeypatch, tmp_path):
    monkeypatch.setenv("TEXTCLASS_DATA_DIR", str(data_dir))
    monkeypatch.setenv("TEXTCLASS_CACHE_DIR", str(tmp_path / "cache"))
    return textclass.network(TINY)


def test_ids_tokens_and_vocabulary_agree(net):
    assert net.vocabulary[:2] == ["<pad>", "<unk>"]
    ids = net.ids(["Fed raises interest rates", "Stocks rally nowhereword"])
    assert net.tokens(ids) == [["fed", "raises", "interest", "rates"], ["stocks", "rally", "<unk>"]]
    assert [net.vocabulary[i] for i in ids[0]] == ["fed", "raises", "interest", "rates"]
    assert len(net.vocabulary) == net.embedding_matrix().shape[0]


def test_the_embedding_matrix_has_a_zero_pad_row_and_is_a_copy(net):
    matrix = net.embedding_matrix()
    assert matrix.shape == (len(net.vocabulary), 4)
    assert torch.count_nonzero(matrix[0]) == 0
    matrix[1] += 1.0
    assert not torch.equal(matrix[1], net.embedding_matrix()[1])


def test_the_batch_is_padded_with_zeros_after_each_sentence(net):
    batch = net.batch(["Fed raises interest rates", "Stocks rally"], ["b", "business"])
    assert batch.input_ids.shape == (2, 4)
    assert batch.input_ids[1, 2:].tolist() == [0, 0]
    assert batch.lengths.tolist() == [4, 2]
    assert batch.attention_mask.sum().item() == 6
    assert batch.labels.tolist() == [0, 0]


def _hand_logits(net, texts):
    """mean of the words' embedding rows, times the head's weights, plus its bias."""
    matrix = net.embedding_matrix().double().numpy()
    params = dict(net.model.named_parameters())
    w, b = params["head.weight"].detach().double().numpy(), params["head.bias"].detach().double().numpy()
    x = np.stack([matrix[ids].mean(axis=0) for ids in net.ids(texts)])
    return x, x @ w.T + b


def test_logits_and_loss_match_a_hand_computation(net):
    texts, labels = ["Fed raises interest rates", "Apple unveils new iPhone with faster chip"], ["b", "t"]
    x, logits = _hand_logits(net, texts)
    assert np.allclose(net.logits(texts).double().numpy(), logits, atol=1e-5)
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    assert np.allclose(net.probabilities(texts).double().numpy(), p, atol=1e-5)
    y = np.array([0, 1])  # b, t in the news label order [b, t, e, m]
    expected = -np.log(p[np.arange(2), y]).mean()
    assert net.loss(texts, labels).item() == pytest.approx(expected, abs=1e-5)


def test_gradients_match_the_analytic_ones_and_gradcheck(net):
    texts, labels = ["Fed raises interest rates", "Apple unveils new iPhone with faster chip"], [0, 1]
    x, logits = _hand_logits(net, texts)
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    delta = p - np.eye(4)[labels]  # d loss / d logits, per example, before the batch mean
    grads = net.gradients(texts, labels)
    assert set(grads) == {"encoder.embedding.weight", "head.weight", "head.bias"}
    assert np.allclose(grads["head.weight"].double().numpy(), delta.T @ x / 2, atol=1e-5)
    assert np.allclose(grads["head.bias"].double().numpy(), delta.mean(axis=0), atol=1e-5)
    assert net.gradients(texts, labels, ["head.bias"]).keys() == {"head.bias"}
    # the same loss in float64, differentiated numerically by gradcheck
    model = net.model.double()
    batch = net.batch(texts, labels)
    weight = dict(model.named_parameters())["head.weight"].detach().clone().requires_grad_(True)
    assert torch.autograd.gradcheck(
        lambda w: model.compute_loss(functional_call(model, {"head.weight": w}, (batch,)), batch.labels), (weight,)
    )


def test_features_are_mean_word_vectors_and_are_saved(net, tmp_path):
    x, y = net.features("valid")
    assert x.shape == (len(NEWS_ROWS), 4) and y.tolist() == [{"b": 0, "t": 1, "e": 2, "m": 3}[label] for label, _ in NEWS_ROWS]
    matrix = net.embedding_matrix()
    first = net.ids([NEWS_ROWS[0][1]])[0]
    assert torch.allclose(x[0], matrix[first].mean(dim=0), atol=1e-6)
    written = net.save_features(tmp_path / "features")
    assert sorted(p.name for p in written) == sorted(f"{n}_{s}.npy" for n in "XY" for s in ("train", "valid", "test"))
    assert np.allclose(np.load(tmp_path / "features" / "X_valid.npy"), x.numpy())
    pt = net.save_features(tmp_path / "pt", splits=["valid"], format="pt")
    assert torch.equal(torch.load(pt[1]), y)


def test_the_untrained_model_is_the_one_training_starts_from(data_dir, monkeypatch, tmp_path):
    """Same overrides, same seed: the same weights twice; another seed, others."""
    monkeypatch.setenv("TEXTCLASS_DATA_DIR", str(data_dir))
    monkeypatch.setenv("TEXTCLASS_CACHE_DIR", str(tmp_path / "cache"))
    a, b, c = textclass.network(TINY), textclass.network(TINY), textclass.network([*TINY, "seed=7"])
    assert torch.equal(a.embedding_matrix(), b.embedding_matrix())
    assert not torch.equal(a.embedding_matrix(), c.embedding_matrix())


def test_a_trained_run_is_inspected_the_same_way(tiny_run: TinyRun):
    net = textclass.network(tiny_run.run)
    clf = textclass.load(tiny_run.run)
    texts = ["Fed raises interest rates", "New Star Wars movie"]
    assert net.trained
    assert np.allclose(net.probabilities(texts).numpy(), clf.predict_proba(texts), atol=1e-6)
    assert net.embedding_matrix().shape[1] == 50  # the default run's GloVe 50d


def test_bad_input_is_one_error_naming_it(net, tmp_path):
    with pytest.raises(ConfigError, match="is not a textclass-train run directory"):
        textclass.network(tmp_path)
    with pytest.raises(ConfigError, match="checkpoint not found: .*missing"):
        textclass.network(tmp_path / "missing")
    with pytest.raises(DataError, match=r"texts\[1\] is 3 \(int\), not a string"):
        net.logits(["fine", 3])
    with pytest.raises(DataError, match="not one str"):
        net.ids("Fed raises rates")
    with pytest.raises(ConfigError, match="'head.weights' is not a parameter of this model; its parameters: encoder.embedding.weight, head.weight"):
        net.gradients(["Fed raises rates"], ["b"], ["head.weights"])
    with pytest.raises(DataError, match="label 'x' is not a class of this model: b, t, e, m"):
        net.loss(["Fed raises rates"], ["x"])
    with pytest.raises(DataError, match="give one label per text: 1 texts"):
        net.loss(["Fed raises rates"], ["b", "t"])
    with pytest.raises(DataError, match=r"ids\[0\] holds 99999, not a token id"):
        net.tokens([[1, 99999]])
    with pytest.raises(ConfigError, match=r"overrides\[0\] is 3"):
        textclass.network([3])


def test_examples_are_the_split_as_training_reads_it(net):
    texts, labels = net.examples("valid")
    assert texts == [title for _, title in NEWS_ROWS] and labels == [label for label, _ in NEWS_ROWS]
    assert net.loss(texts[:4], labels[:4]).item() > 0
    with pytest.raises(DataError, match="none of splits=\\['nosuch'\\] exists"):
        net.examples("nosuch")
