"""model=fasttext: the hashed word n-gram buckets by hand, the mean over words and n-grams by hand,
unknown words, one-token and empty examples, padding, the same buckets in every process (whatever
PYTHONHASHSEED), sparse gradients, bad options by key, and real training runs through the CLI."""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from helpers.cli import cli_env, run_ok
from helpers.data import NEWS_ROWS
from textclass.data.batching import Batch, collate
from textclass.errors import ConfigError
from textclass.training.module import ClassifierModule, check_optimizer, has_sparse_gradients, parameter_groups
from textclass.models.classifier import TextClassifier
from textclass.models.embedding import build_embedding
from textclass.models.encoders.bow import BagOfEmbeddings
from textclass.models.encoders.fasttext import HASH_MULTIPLIER, MAX_BUCKETS, FastTextEncoder, ngram_buckets
from textclass.tokenizers.word import Vocabulary, WordTokenizer

VOCAB, DIM = 20, 4


def make_batch(*sentences: list[int]) -> Batch:
    return collate([(np.array(ids, dtype=np.int64), 0) for ids in sentences], pad_id=0)


def encoder(word_ngrams: int = 3, buckets: int = 16, **options) -> FastTextEncoder:
    torch.manual_seed(0)
    return FastTextEncoder(build_embedding(VOCAB, DIM, None, freeze=False), word_ngrams=word_ngrams, buckets=buckets, **options)


# --- the buckets ----------------------------------------------------------------------------------


def test_bucket_ids_by_hand():
    """HASH_MULTIPLIER = 16 * 7253085 + 11, so mod 16 a bigram (a, b) is 11a + b and a trigram
    (a, b, c) is 11(11a + b) + c. Columns: the bigram at each start, then the trigram at each start;
    -1 where the n-gram would touch padding or run past the end."""
    assert HASH_MULTIPLIER % 16 == 11
    batch = make_batch([3, 4, 5], [7], [2, 2])
    buckets = ngram_buckets(batch.input_ids, batch.attention_mask, max_n=3, buckets=16)
    assert buckets.tolist() == [
        # (3,4): 37 % 16 = 5; (4,5): 49 % 16 = 1; (3,4,5): (11 * 5 + 5) % 16 = 12
        [5, 1, -1, 12, -1, -1],
        [-1, -1, -1, -1, -1, -1],  # one word: no n-gram
        [8, -1, -1, -1, -1, -1],  # (2,2): 24 % 16 = 8; the trigram would need the padding
    ]


def test_buckets_for_a_power_of_two_equal_fasttext_uint64_hash():
    """Reducing at each step gives, for a power-of-two table, fastText's hash computed with uint64
    wrap-around and reduced once, for every n-gram; large ids and many buckets never overflow int64."""
    ids, buckets = [123_456_789, 987_654_321, 555_555_555, 42], 2**30
    expected = []
    for n in (2, 3, 4):
        for start in range(len(ids)):
            window = ids[start : start + n]
            h = window[0]
            for i in window[1:]:
                h = (h * HASH_MULTIPLIER + i) % 2**64  # uint64 arithmetic
            expected.append(h % buckets if len(window) == n else -1)
    found = ngram_buckets(torch.tensor([ids]), torch.ones(1, 4, dtype=torch.bool), max_n=4, buckets=buckets)
    assert found[0].tolist() == expected


# Run in fresh processes: the vocabulary from the tiny news train titles (argv[1], JSON), then the
# ids, n-gram buckets and encoder output of headlines with words that vocabulary lacks.
BUCKETS_SCRIPT = """
import json, sys
from collections import Counter
from itertools import chain
import numpy as np, torch
from textclass.data.batching import collate
from textclass.models.embedding import build_embedding
from textclass.models.encoders.fasttext import FastTextEncoder, ngram_buckets
from textclass.tokenizers.word import Vocabulary, WordTokenizer

tokenizer = WordTokenizer(split="punct")
counts = Counter(chain.from_iterable(tokenizer.tokenize(title) for title in json.loads(sys.argv[1])))
vocab = Vocabulary.from_counts(counts, min_freq=2, with_unk=True)
texts = ["Fed raises interest rates", "Quantum zebras rally on Mars", "Ebola"]
batch = collate([(np.array(vocab.encode(tokenizer.tokenize(t))), 0) for t in texts], pad_id=0)
torch.manual_seed(0)
model = FastTextEncoder(build_embedding(len(vocab), 4, None, freeze=False), word_ngrams=2, buckets=2**20)
with torch.no_grad():
    output = model(batch)
buckets = ngram_buckets(batch.input_ids, batch.attention_mask, max_n=2, buckets=2**20)
print(json.dumps({"ids": batch.input_ids.tolist(), "buckets": buckets.tolist(), "output": output.tolist()}))
"""


def test_same_text_same_buckets_in_every_process():
    """Vocabulary ids, buckets and outputs of the same headlines in two fresh processes with
    different string-hash salts (what Python's hash() would change): identical."""
    titles = json.dumps([title for _, title in NEWS_ROWS * 3])
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", BUCKETS_SCRIPT, titles],
            env={**os.environ, "PYTHONHASHSEED": salt, "OMP_NUM_THREADS": "1"},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for salt in ("1", "2")
    ]
    runs = []
    for process in processes:
        stdout, stderr = process.communicate(timeout=300)
        assert process.returncode == 0, stderr[-2000:]
        runs.append(json.loads(stdout.strip().splitlines()[-1]))
    assert runs[0] == runs[1]
    ids = torch.tensor(runs[0]["ids"])
    assert (ids == 1).any()  # <unk> (id 1) is among them: n-grams of unseen words hash too
    mask = torch.tensor([[True] * 4 + [False], [True] * 5, [True] + [False] * 4])  # 4, 5 and 1 words
    assert ngram_buckets(ids, mask, max_n=2, buckets=2**20).tolist() == runs[0]["buckets"]


# --- the mean -------------------------------------------------------------------------------------


def test_output_is_the_mean_of_word_and_ngram_rows_by_hand():
    model = encoder().eval()
    words, grams = model.embedding.weight, model.ngrams.weight  # bucket k is row k + 1
    batch = make_batch([3, 4, 5], [7], [2, 2], [])
    with torch.no_grad():
        output = model(batch)
        expected = [
            (words[3] + words[4] + words[5] + grams[5 + 1] + grams[1 + 1] + grams[12 + 1]) / 6,
            words[7],  # one token: its word vector, no n-gram
            (words[2] + words[2] + grams[8 + 1]) / 3,
            torch.zeros(DIM),  # no token at all: zeros, not NaN
        ]
    torch.testing.assert_close(output, torch.stack(expected))
    assert model.output_dim == DIM and output.shape == (4, DIM)


def test_unknown_words_share_unk_and_their_ngrams_hash_through_its_id():
    """Two different unseen words both encode as <unk> (id 1): the same output, and the bigrams
    around them are (1, next) and (prev, 1) like any other word's."""
    tokenizer = WordTokenizer(split="punct")
    vocab = Vocabulary.from_words(["fed", "raises", "rates"], with_unk=True)
    first, second = (vocab.encode(tokenizer.tokenize(t)) for t in ("Fed hikes rates", "Fed lifts rates"))
    assert first == second == [vocab.stoi["fed"], 1, vocab.stoi["rates"]]
    fed, rates = vocab.stoi["fed"], vocab.stoi["rates"]
    batch = make_batch(first, second)
    buckets = ngram_buckets(batch.input_ids, batch.attention_mask, max_n=2, buckets=16)
    assert buckets[0].tolist() == [(fed * 11 + 1) % 16, (1 * 11 + rates) % 16, -1]
    model = encoder(word_ngrams=2).eval()
    with torch.no_grad():
        output = model(batch)
    assert torch.isfinite(output).all()
    torch.testing.assert_close(output[0], output[1])


def test_padding_does_not_change_an_example():
    model = encoder().eval()
    short, long = [5, 9], [3, 1, 4, 1, 5, 9, 2, 6, 5, 3]
    with torch.no_grad():
        alone = model(make_batch(short))[0]
        beside_long = model(make_batch(long, short))[1]
        one_token_batch = model(make_batch([7]))  # a batch whose longest example has no n-gram
    torch.testing.assert_close(beside_long, alone)
    torch.testing.assert_close(one_token_batch[0], model.embedding.weight[7].detach())


def test_one_gram_is_the_bag_of_embeddings_and_has_no_table():
    model = encoder(word_ngrams=1).eval()
    batch = make_batch([3, 4, 5], [7], [])
    with torch.no_grad():
        torch.testing.assert_close(model(batch), BagOfEmbeddings(model.embedding)(batch))
    assert model.ngrams is None


def test_ngram_rows_start_like_fasttext_or_at_zero():
    uniform = encoder(buckets=1000).ngrams.weight
    assert uniform[0].abs().max() == 0  # the padding row
    assert uniform[1:].abs().max() <= 1 / DIM and uniform[1:].std() > 0.5 / DIM / 3**0.5
    assert encoder(buckets=1000, ngram_init="zeros").ngrams.weight.abs().max() == 0


def test_multichannel_embedding_sets_the_width():
    pretrained = torch.randn(VOCAB, DIM)
    model = FastTextEncoder(build_embedding(VOCAB, None, pretrained, freeze=False, multichannel=True), buckets=16)
    assert model.output_dim == 2 * DIM and model(make_batch([3, 4])).shape == (1, 2 * DIM)


# --- training -------------------------------------------------------------------------------------


@pytest.mark.parametrize("sparse", [False, True])
def test_a_step_trains_only_the_batch_ngrams(sparse):
    """Adagrad through TextClassifier's own parameter groups: the batch's n-gram rows move, the
    others and the padding row stay bit-identical; with sparse the gradient is sparse."""
    model = ClassifierModule(TextClassifier(encoder(sparse=sparse), num_classes=2), functools.partial(torch.optim.Adagrad, lr=0.1))
    batch = make_batch([3, 4, 5], [2, 2])
    table = model.model.encoder.ngrams.weight
    before = table.detach().clone()
    optimizer = model.configure_optimizers()
    model.model.compute_loss(model(batch), torch.tensor([0, 1])).backward()
    assert table.grad.is_sparse == sparse
    optimizer.step()
    used = {5 + 1, 1 + 1, 12 + 1, 8 + 1}
    moved = {i for i in range(len(table)) if not torch.equal(table[i], before[i])}
    assert moved == used


@pytest.mark.parametrize(
    ("options", "key"),
    [
        ({"word_ngrams": 0}, "model.encoder.word_ngrams=0"),
        ({"buckets": 0}, "model.encoder.buckets=0"),
        ({"buckets": MAX_BUCKETS + 1}, f"model.encoder.buckets={MAX_BUCKETS + 1}"),
        ({"ngram_init": "normal"}, "model.encoder.ngram_init='normal'"),
    ],
)
def test_bad_options_name_the_key(options, key):
    with pytest.raises(ConfigError, match=key.replace("[", r"\[")):
        FastTextEncoder(build_embedding(VOCAB, DIM, None, freeze=False), **options)


def test_sparse_ngrams_need_a_sparse_optimizer_and_skip_weight_decay():
    encoder = FastTextEncoder(build_embedding(10, 4, None, False), buckets=64, sparse=True)
    assert has_sparse_gradients(encoder) and not has_sparse_gradients(FastTextEncoder(build_embedding(10, 4, None, False), buckets=64))
    with pytest.raises(ConfigError, match="model.encoder.sparse=true needs an optimizer that supports sparse gradients"):
        check_optimizer(functools.partial(torch.optim.Adam, lr=1e-3), has_sparse_gradients(encoder))
    table = next(m for m in encoder.modules() if isinstance(m, torch.nn.EmbeddingBag)).weight
    decayed, not_decayed = parameter_groups(encoder)
    assert any(p is table for p in not_decayed["params"]) and not any(p is table for p in decayed["params"])


@pytest.mark.slow
def test_train_eval_predict_through_the_cli(data_dir, tmp_path):
    """Two real runs on tiny news (dense n-grams with the default Adam; sparse with Adagrad): each
    writes test figures; predict on the first reads headlines of unseen words."""
    env = cli_env(data_dir, tmp_path)
    common = ["trainer.max_epochs=2", "data.batch_size=4", "trainer.accelerator=cpu", "logger=[]", "model.encoder.buckets=4096"]
    sparse = ["model.encoder.sparse=true", "optimizer=adagrad", "optimizer.lr=0.1"]
    for name, extra in (("dense", []), ("sparse", sparse)):
        run_ok(["textclass-train", "model=fasttext", *common, *extra, f"hydra.run.dir={name}"], cwd=tmp_path, env=env)
        metrics = json.loads((tmp_path / name / "metrics.json").read_text())
        for key in ("test/acc", "test/f1", "val/acc_selected", "train/loss_epoch"):
            assert np.isfinite(metrics[key]), (name, key, metrics)
        assert 0.0 <= metrics["test/acc"] <= 1.0
        assert (tmp_path / name / "predictions_test.npz").is_file()
    texts = "Fed raises interest rates\nZorblax quuxes the flibbertigibbet\nEbola\n"
    result = run_ok(["textclass-predict", f"ckpt_path={tmp_path / 'dense' / 'checkpoints' / 'last.ckpt'}"], cwd=tmp_path, env=env, stdin=texts)
    rows = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert len(rows) == 3 and all(row["label"] in ("business", "science/technology", "entertainment", "health") for row in rows)
    assert all(abs(sum(row["probs"].values()) - 1) < 1e-4 for row in rows)
