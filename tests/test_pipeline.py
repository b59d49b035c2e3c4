"""Tokenization, vocabulary, aligned embeddings, the on-disk cache, collate and bucketing."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

from helpers.data import builtin_dataset, write_tsv, SST2_ROWS
from helpers.paths import real_data, REAL_DATA
from textclass.data.batching import BucketBatchSampler, EncodedDataset, EncodedTexts, EpochShuffleSampler, Shard, ShardSampler, collate, padding_fraction
from textclass.data.cache import KEY_FILE
from textclass.data.encoded import encode_dataset
from textclass.embeddings import EmbeddingSpec, keyed_vectors, load_vectors
from textclass.tokenizers.word import PAD, UNK, VocabSpec, Vocabulary, WordTokenizer, align_vectors

GLOVE_WORDS = ["the", "movie", "film", "good", "fed", "rates", "new", "apple", "utterly", "charming"]


@pytest.fixture
def glove_file(tmp_path: Path) -> Path:
    """A 4-d GloVe-format text file (no header line)."""
    rng = np.random.default_rng(0)
    path = tmp_path / "tiny_glove.txt"
    path.write_text("".join(f"{w} " + " ".join(f"{v:.4f}" for v in rng.normal(size=4)) + "\n" for w in GLOVE_WORDS))
    return path


def test_word_tokenizer_modes():
    headline = "Fed's Yellen: Rates (Likely) to Rise, U.S. Says"
    assert WordTokenizer("punct").tokenize(headline) == ["fed", "s", "yellen", "rates", "likely", "to", "rise", "u", "s", "says"]
    sst = "it 's not a bad film , is n't it ? "
    assert WordTokenizer("whitespace").tokenize(sst) == ["it", "'s", "not", "a", "bad", "film", ",", "is", "n't", "it", "?"]
    assert WordTokenizer("whitespace", lowercase=False).tokenize("The Film") == ["The", "Film"]
    assert WordTokenizer("auto").resolved(pretokenized=True).split == "whitespace"
    assert WordTokenizer("auto").resolved(pretokenized=False).split == "punct"


def test_vocabulary_min_freq_orders_by_frequency():
    counts = Counter("a b b c c c d d d d e".split())
    vocab = Vocabulary.from_counts(counts, min_freq=2, with_unk=True)
    assert vocab.itos == [PAD, UNK, "d", "c", "b"]
    assert vocab.encode(["d", "a", "zzz", "b"]) == [2, 1, 1, 4]
    no_unk = Vocabulary.from_counts(counts, min_freq=2, with_unk=False)
    assert no_unk.itos == [PAD, "d", "c", "b"] and no_unk.encode(["d", "a", "b"]) == [1, 3]


def test_vocabulary_json_round_trip(tmp_path):
    vocab = Vocabulary([PAD, UNK, "naïve", "café"])
    vocab.save(tmp_path / "vocab.json")
    loaded, extra = Vocabulary.load(tmp_path / "vocab.json")
    assert loaded.stoi == vocab.stoi and extra == {}
    assert "naïve" in (tmp_path / "vocab.json").read_text(encoding="utf-8")


def test_aligned_matrix_pad_row_zero_and_coverage():
    kv = keyed_vectors(["good", "film", "Apple"], np.arange(12, dtype=np.float32).reshape(3, 4) + 1)
    vocab = Vocabulary([PAD, UNK, "film", "unseenword", "good", "apple"])
    aligned = align_vectors(vocab, kv, init_std=0.5, seed=0)
    m = aligned.matrix
    assert m.shape == (6, 4) and m.dtype == np.float32
    assert not m[0].any()  # PAD
    assert np.array_equal(m[2], kv["film"]) and np.array_equal(m[4], kv["good"])
    assert (aligned.found, aligned.total) == (2, 4)  # "apple" is not "Apple": only lowercase fallback
    assert m[3].std() > 0  # random init for missing words


def encode(dataset, tokenizer, embeddings, vocab, cache_dir, seed, max_examples=None):
    """Encode `dataset` as the data module does: returns (the encoded data, the fitted featurizer)."""
    features = tokenizer.features(embeddings, vocab, dataset.pretokenized)
    return encode_dataset(dataset, features, cache_dir, seed, max_examples), features


def _prepare(data_dir, cache, **overrides):
    args = dict(
        dataset=builtin_dataset("news", data_dir, "data.dataset.download=false"),
        tokenizer=WordTokenizer(),
        vocab=VocabSpec("data", min_freq=2),
        cache_dir=cache,
        seed=0,
    )
    args.update(overrides)
    return encode(**args)


def _entries(cache: Path) -> list[Path]:
    """The cache entries (not the file-digest memo, nor unfinished builds)."""
    return sorted(p for p in cache.iterdir() if (p / KEY_FILE).is_file())


def test_news_word_pipeline_with_file_embeddings(data_dir, glove_file, tmp_path):
    spec = EmbeddingSpec(name="file", path=str(glove_file), dim=4)
    data, features = _prepare(data_dir, tmp_path / "cache", embeddings=spec)
    vocab = features.vocab
    # every fixture headline occurs 3 times in train: min_freq=2 keeps them all
    assert vocab.itos[:2] == [PAD, UNK]
    assert features.vectors.shape == (len(vocab), 4)
    assert not features.vectors[0].any()
    found = [w for w in vocab.itos[2:] if w in GLOVE_WORDS]
    assert data.stats["coverage"] == {"found": len(found), "total": len(vocab) - 2}
    assert {s: len(e) for s, e in data.splits.items()} == {"train": 30, "valid": 10, "test": 5}
    first = data.splits["train"]
    ids = first.ids[first.offsets[0] : first.offsets[1]]
    assert [vocab.itos[i] for i in ids] == "fed raises interest rates as inflation climbs".split()


def test_cache_hit_returns_identical_data_without_rebuilding(data_dir, glove_file, tmp_path):
    cache = tmp_path / "cache"
    spec = EmbeddingSpec(name="file", path=str(glove_file), dim=4)
    first, first_features = _prepare(data_dir, cache, embeddings=spec)
    (entry,) = _entries(cache)
    built_at = (entry / "train.npz").stat().st_mtime_ns
    second, second_features = _prepare(data_dir, cache, embeddings=spec)
    assert _entries(cache) == [entry] and (entry / "train.npz").stat().st_mtime_ns == built_at
    assert second_features.vocab.itos == first_features.vocab.itos
    assert np.array_equal(second_features.vectors, first_features.vectors)
    assert all(np.array_equal(second.splits[s].ids, first.splits[s].ids) for s in first.splits)
    # freeze does not change the data: same entry
    _prepare(data_dir, cache, embeddings=EmbeddingSpec(name="file", path=str(glove_file), dim=4, freeze=True))
    assert _entries(cache) == [entry]


@pytest.mark.parametrize(
    "change",
    ["min_freq", "lowercase", "split", "init_std", "seed", "max_examples", "data_file", "embedding_file", "drop_unknown"],
)
def test_any_changed_option_misses_the_cache(data_dir, glove_file, tmp_path, change):
    cache = tmp_path / "cache"
    spec = EmbeddingSpec(name="file", path=str(glove_file), dim=4)
    _, before = _prepare(data_dir, cache, embeddings=spec)
    overrides: dict = {"embeddings": spec}
    if change == "min_freq":
        overrides["vocab"] = VocabSpec("data", min_freq=4)
    elif change == "lowercase":
        overrides["tokenizer"] = WordTokenizer(lowercase=False)
    elif change == "split":
        overrides["tokenizer"] = WordTokenizer("whitespace")
    elif change == "init_std":
        overrides["embeddings"] = EmbeddingSpec(name="file", path=str(glove_file), dim=4, init_std=0.3)
    elif change == "seed":
        overrides["seed"] = 1
    elif change == "max_examples":
        overrides["max_examples"] = 5
    elif change == "drop_unknown":
        overrides["vocab"] = VocabSpec("data", min_freq=2, drop_unknown=True)
    elif change == "data_file":
        write_tsv(data_dir / "news" / "train.tsv", "category\ttitle", [("b", "Fed cuts rates"), ("b", "Fed cuts rates")])
    elif change == "embedding_file":
        glove_file.write_text(glove_file.read_text().replace("the ", "thee ", 1))
        os.utime(glove_file, ns=(1, 1))
    _, after = _prepare(data_dir, cache, **overrides)
    assert len(_entries(cache)) == 2
    if change == "min_freq":
        assert len(after.vocab) < len(before.vocab)
    if change == "data_file":
        assert after.vocab.itos == [PAD, UNK, "fed", "cuts", "rates"]


def test_sst2_drops_unknown_tokens_and_emptied_examples(data_dir, glove_file, tmp_path):
    data, features = encode(
        builtin_dataset("sst2", data_dir, "data.dataset.download=false"),
        WordTokenizer(),
        EmbeddingSpec(name="file", path=str(glove_file), dim=4),
        VocabSpec("embeddings", min_freq=1, drop_unknown=True),
        tmp_path / "cache",
        seed=0,
    )
    vocab_words = set(features.vocab.itos[1:])
    assert UNK not in features.vocab.stoi
    assert vocab_words <= set(GLOVE_WORDS)
    # rows whose every token is missing from the tiny GloVe are removed, and counted
    empty = sum(not any(t in GLOVE_WORDS for t in s.split()) for s, _ in SST2_ROWS)
    assert data.stats["emptied_examples"] == {"train": 3 * empty, "valid": empty}
    assert len(data.splits["valid"]) == len(SST2_ROWS) - empty
    dropped, total = data.stats["dropped_unknown_tokens"]["valid"]
    assert total == sum(len(s.split()) for s, _ in SST2_ROWS)
    assert dropped == sum(t not in GLOVE_WORDS for s, _ in SST2_ROWS for t in s.split())


def test_offline_glove_package_loads_contiguous_vectors():
    kv = load_vectors(EmbeddingSpec())
    assert (len(kv), kv.vector_size) == (400_000, 50)
    assert kv.vectors.flags["C_CONTIGUOUS"]
    assert kv.index_to_key[:3] == ["the", ",", "."]
    assert kv.most_similar("king", topn=1)[0][0] == "prince"


@real_data
@pytest.mark.slow
def test_real_sst2_pipeline_coverage_and_cache(tmp_path):
    args = (
        builtin_dataset("sst2", REAL_DATA, "data.dataset.download=false"),
        WordTokenizer(),
        EmbeddingSpec(),
        VocabSpec("embeddings", min_freq=1, drop_unknown=True),
        tmp_path / "cache",
        42,
    )
    cold, cold_features = encode(*args)
    warm, _ = encode(*args)
    assert cold.stats["coverage"]["found"] == cold.stats["coverage"]["total"] == len(cold_features.vocab) - 1
    emptied = cold.stats["emptied_examples"]["train"]
    assert len(cold.splits["train"]) == 67_349 - emptied and 0 < emptied < 1000
    assert len(cold.splits["valid"]) == 872 - cold.stats.get("emptied_examples", {}).get("valid", 0)
    assert np.array_equal(warm.splits["train"].ids, cold.splits["train"].ids)
    assert not cold_features.vectors[0].any()


# --- collate and batching -----------------------------------------------------------------------

def test_collate_nlp100_exercise_example():
    """NLP100-2025 ex.76: four SST-2 examples padded with 0 and sorted by length, longest first."""
    examples = [
        (np.array([5785, 66, 113845, 18, 12, 15095, 1594]), 0),
        (np.array([3475, 87, 15888, 90, 27695, 42637]), 0),
        (np.array([4, 5053, 45, 3305, 31647, 348, 904, 2815, 47, 1276, 1964]), 1),
        (np.array([987, 14528, 4941, 873, 12, 208, 898]), 0),
    ]
    batch = collate(examples, pad_id=0, sort_by_length=True)
    expected = torch.tensor(
        [
            [4, 5053, 45, 3305, 31647, 348, 904, 2815, 47, 1276, 1964],
            [5785, 66, 113845, 18, 12, 15095, 1594, 0, 0, 0, 0],
            [987, 14528, 4941, 873, 12, 208, 898, 0, 0, 0, 0],
            [3475, 87, 15888, 90, 27695, 42637, 0, 0, 0, 0, 0],
        ]
    )
    assert torch.equal(batch.input_ids, expected)
    assert batch.labels.tolist() == [1, 0, 0, 0]
    assert batch.lengths.tolist() == [11, 7, 7, 6]
    assert torch.equal(batch.attention_mask, expected != 0)


def test_collate_keeps_order_without_sorting_and_uses_pad_id():
    batch = collate([(np.array([7]), 1), (np.array([8, 9, 10]), 0)], pad_id=3)
    assert batch.input_ids.tolist() == [[7, 3, 3], [8, 9, 10]]
    assert batch.attention_mask.tolist() == [[True, False, False], [True, True, True]]


@pytest.mark.parametrize("trial", range(12))
def test_a_batch_fetched_at_once_equals_the_batch_of_its_examples(trial):
    """The DataLoader's one-call fetch (EncodedDataset.__getitems__) pads with array operations: the
    same Batch as collating the examples one by one, sorted or not, multi-label, extras and
    empty sequences included."""
    rng = np.random.default_rng(trial)
    n = int(rng.integers(1, 30))
    lengths = rng.integers(0 if trial % 4 == 0 else 1, 12, size=n)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    labels = rng.integers(0, 2, size=(n, 3)).astype(np.uint8) if trial % 2 else rng.integers(0, 4, size=n)
    arrays = {"soft": rng.normal(size=(n, 3)).astype(np.float32)} if trial % 3 == 0 else None
    dataset = EncodedDataset(EncodedTexts(rng.integers(1, 100, size=offsets[-1]).astype(np.int32), offsets, labels), arrays)
    indices = rng.integers(0, n, size=int(rng.integers(1, n + 1))).tolist()
    for sort in (False, True):
        one_by_one = collate([dataset[i] for i in indices], pad_id=7, sort_by_length=sort)
        at_once = collate(dataset.__getitems__(indices), pad_id=7, sort_by_length=sort)
        for name in ("input_ids", "lengths", "attention_mask", "labels"):
            expected, got = getattr(one_by_one, name), getattr(at_once, name)
            assert got.dtype == expected.dtype and torch.equal(got, expected), name
        assert at_once.extras.keys() == one_by_one.extras.keys()
        assert all(torch.equal(at_once.extras[k], one_by_one.extras[k]) for k in at_once.extras)


def test_lightning_moves_a_batch_through_its_to_method_extras_included():
    """Lightning's move_data_to_device calls Batch.to (no field-by-field deep copy); "meta" is a real
    second device on a CPU-only machine."""
    from lightning.pytorch.utilities import move_data_to_device

    batch = collate([(np.array([7]), 1, {"soft": np.array([0.5, -0.5])}), (np.array([8, 9]), 0, {"soft": np.array([1.0, 2.0])})], pad_id=3)
    moved = move_data_to_device(batch, torch.device("meta"))
    assert type(moved).__name__ == "Batch"
    tensors = [moved.input_ids, moved.lengths, moved.attention_mask, moved.labels, moved.extras["soft"]]
    assert [t.device.type for t in tensors] == ["meta"] * 5
    assert [tuple(t.shape) for t in tensors] == [(2, 2), (2,), (2, 2), (2,), (2, 2)]
    assert batch.input_ids.device.type == "cpu"  # the original is untouched
    back = collate([(np.array([7]), 1)], pad_id=0).to("cpu")
    assert back.extras == {} and back.input_ids.tolist() == [[7]]


def test_bucket_sampler_covers_every_example_once_and_cuts_padding():
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 60, size=5000)
    sampler = BucketBatchSampler(lengths, batch_size=32, shuffle=True, seed=1)
    epoch1 = list(sampler)
    assert list(sampler) == epoch1  # same epoch, same batches (exact resume)
    sampler.set_epoch(1)
    epoch2 = list(sampler)
    assert len(epoch1) == len(epoch2) == len(sampler) == 157
    assert sorted(i for b in epoch1 for i in b) == list(range(5000))
    assert epoch1 != epoch2  # reshuffled per epoch
    shuffled = rng.permutation(5000)
    plain = [shuffled[i : i + 32] for i in range(0, 5000, 32)]
    assert padding_fraction(lengths, epoch1) < 0.1 < 0.4 < padding_fraction(lengths, plain)
    ordered = list(BucketBatchSampler(lengths, batch_size=32, shuffle=False))
    assert [lengths[b].max() for b in ordered] == sorted((lengths[b].max() for b in ordered), reverse=True)


def _rank_steps(per_rank: list[list[list[int]]]) -> list[list[int]]:
    """What all processes train on at each step: their batches of that step together, sorted."""
    assert len({len(batches) for batches in per_rank}) == 1  # every process takes as many steps
    return [sorted(i for batch in step for i in batch) for step in zip(*per_rank)]


def _batched(indices: list[int], size: int) -> list[list[int]]:
    return [indices[i : i + size] for i in range(0, len(indices), size)]


@pytest.mark.parametrize("world", [2, 3])
def test_ddp_shards_train_on_the_global_batches_of_one_process(world):
    lengths = np.random.default_rng(0).integers(1, 60, size=96)
    one = [sorted(b) for b in BucketBatchSampler(lengths, 4 * world, seed=1, epoch=2)]
    shards = [list(BucketBatchSampler(lengths, 4, seed=1, epoch=2, shard=Shard(r, world))) for r in range(world)]
    assert _rank_steps(shards) == one
    one = [sorted(b) for b in _batched(list(EpochShuffleSampler(96, seed=1, epoch=2)), 4 * world)]
    shards = [_batched(list(EpochShuffleSampler(96, seed=1, epoch=2, shard=Shard(r, world))), 4) for r in range(world)]
    assert _rank_steps(shards) == one


def test_ddp_shards_of_an_uneven_split():
    # training: the order repeated up to a multiple of the processes, so each takes as many steps
    shards = [list(EpochShuffleSampler(7, seed=3, shard=Shard(r, 2))) for r in range(2)]
    assert [len(s) for s in shards] == [4, 4] and set(shards[0] + shards[1]) == set(range(7))
    lengths = np.arange(1, 10)
    batches = [list(BucketBatchSampler(lengths, 2, seed=3, shard=Shard(r, 2))) for r in range(2)]
    assert [len(b) for b in batches] == [3, 3]  # 9 examples in global batches of 4: the last one padded
    assert set(i for b in batches[0] + batches[1] for i in b) == set(range(9))
    # evaluation: each example once, in no more than one process
    assert [list(ShardSampler(7, Shard(r, 2))) for r in range(2)] == [[0, 2, 4, 6], [1, 3, 5]]
    ordered = [list(BucketBatchSampler(lengths, 2, shuffle=False, shard=Shard(r, 2))) for r in range(2)]
    assert sorted(i for b in ordered[0] + ordered[1] for i in b) == list(range(9))


def test_cache_key_covers_the_producing_code(tmp_path, monkeypatch):
    from textclass.data import cache

    key = cache.cache_key({"a": 1})
    assert cache.cache_key({"a": 1}) == key != cache.cache_key({"a": 2})
    fake_package = tmp_path / "pkg"
    (fake_package / "data").mkdir(parents=True)
    (fake_package / "data" / "dataset.py").write_text("x = 1\n")
    monkeypatch.setattr(cache, "PACKAGE_DIR", fake_package)
    cache.code_fingerprint.cache_clear()
    before = cache.cache_key({"a": 1})
    (fake_package / "data" / "dataset.py").write_text("x = 2\n")
    cache.code_fingerprint.cache_clear()
    assert cache.cache_key({"a": 1}) != before
    cache.code_fingerprint.cache_clear()
