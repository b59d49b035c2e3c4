"""Bring-your-own data: data=files (CSV, TSV, JSONL, Parquet) and data=hf, pairs, multi-label, k-fold,
the content-keyed cache, the Python API, and the bad input of each."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

import textclass
from helpers.cli import cli_env, run_cli, run_ok
from helpers.data import write_table, NEWS_ROWS, SST2_ROWS
from helpers.paths import real_data, REAL_DATA
from textclass.data.dataset import TextDataset
from textclass.data.splits import fold_ids
from textclass.data.encoded import Resplit, encode_dataset
from textclass.embeddings import EmbeddingSpec
from textclass.errors import ConfigError, DataError
from textclass.models.metrics import tune_thresholds
from textclass.tokenizers.bert import PretrainedTokenizer
from textclass.tokenizers.word import SEP, VocabSpec, WordTokenizer

TOPICS = {"b": "business", "t": "tech", "e": "entertainment", "m": "health"}
ROWS = [(title, TOPICS[code]) for code, title in NEWS_ROWS]
# a tiny model that learns the tiny data in a few seconds
FAST = ["trainer.max_epochs=3", "trainer.enable_progress_bar=false", "embeddings=none", "embeddings.dim=16", "data.vocab.min_freq=1"]


def write_rows(path: Path, rows: list[tuple[str, str]], header: tuple[str, str] = ("text", "label")) -> Path:
    """`rows` as (text, label) in the format `path`'s extension names (a directory: a saved HF dataset,
    the label a ClassLabel); a CSV gets a third column whose values need quoting."""
    note = {"note": 'has "quotes", and commas'} if path.suffix == ".csv" else {}
    return write_table(path, [{header[0]: t, header[1]: l, **note} for t, l in rows], class_label=header[1])


def files_dataset(**kwargs) -> TextDataset:
    return TextDataset(**{"name": "files", **kwargs})


def word_features(source: str = "data"):
    return WordTokenizer().features(EmbeddingSpec(name="none", dim=8), VocabSpec(source=source, min_freq=1), False)


# --- every format through the real CLI -----------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("name", ["train.csv", "train.tsv", "train.jsonl", "train.parquet", "hfdir"])
def test_each_format_trains_evaluates_and_predicts_label_names(tmp_path, name):
    data = write_rows(tmp_path / name, ROWS * 3)
    if name == "hfdir":
        args = ["data=hf", f"data.dataset.path={data}"]
    else:
        args = ["data=files", f"data.dataset.train={data}", f"data.dataset.valid={write_rows(tmp_path / ('valid' + data.suffix), ROWS)}"]
    env = cli_env(tmp_path, tmp_path)
    run_ok(["textclass-train", *args, *FAST, "test=false"], tmp_path, env)
    (run_dir,) = (tmp_path / "outputs" / "train" / "runs").iterdir()
    labels = json.loads((run_dir / "labels.json").read_text())
    assert labels["values"] == ["business", "entertainment", "health", "tech"]  # sorted, from train
    texts = ["Fed raises rates", "Ebola spreads"]
    if name == "train.csv":  # the CLI once; for the other formats the same code through the Python API
        predicted = run_ok(["textclass-predict", f"ckpt_path={run_dir}/checkpoints/last.ckpt", f"text={json.dumps(texts)}"], tmp_path, env)
        rows = [json.loads(line) for line in predicted.stdout.splitlines()]
    else:
        rows = [p.record() for p in textclass.load(run_dir).predict(texts)]
    assert [r["text"] for r in rows] == texts and all(r["label"] in labels["values"] for r in rows)
    assert all(sorted(r["probs"]) == labels["values"] and abs(sum(r["probs"].values()) - 1) < 1e-5 for r in rows)
    # eval reads the run's own splits again, in their format
    own_splits = run_ok(["textclass-eval", f"ckpt_path={run_dir}/checkpoints/last.ckpt", "splits=[train,valid]"], tmp_path, env)
    table = [line for line in own_splits.stdout.splitlines() if line.startswith("| train |") or line.startswith("| valid |")]
    assert [line.split("|")[2].strip() for line in table] == [str(len(ROWS) * 3), str(len(ROWS) * (3 if name == "hfdir" else 1))]
    if name == "train.csv":
        # the CLI's eval and the Python API give the same numbers on the same file
        run_ok(["textclass-eval", f"ckpt_path={run_dir}/checkpoints/last.ckpt", f"file={data}"], tmp_path, env)
        (cli_result,) = [r for p in (tmp_path / "outputs" / "eval" / "runs").glob("*/eval.json")
                         for name_, r in json.loads(p.read_text())["results"].items() if name_ == str(data)]
        api_result = textclass.load(run_dir).evaluate(data)
        assert cli_result["examples"] == api_result.examples == len(ROWS) * 3
        assert cli_result["acc"] == pytest.approx(api_result.acc) and cli_result["f1"] == pytest.approx(api_result.f1)
        assert cli_result["confusion"] == api_result.confusion


# --- the Python API --------------------------------------------------------------------------------
def test_python_api_trains_loads_predicts_and_evaluates(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TEXTCLASS_CACHE_DIR", str(tmp_path / "cache"))
    data = write_rows(tmp_path / "train.csv", ROWS * 3)
    metrics = textclass.train(["data=files", f"data.dataset.train={data}", "data.dataset.split_fractions=[0.5,0.5]", *FAST])
    run_dir = Path(metrics["run_dir"])
    assert run_dir.parent == tmp_path / "outputs" / "train" / "runs" and (run_dir / "checkpoints" / "last.ckpt").is_file()
    assert json.loads((run_dir / "metrics.json").read_text())["val/acc"] == pytest.approx(metrics["val/acc"])
    clf = textclass.load(run_dir)
    texts = [t for t, _ in ROWS]
    probs = clf.predict_proba(texts)
    assert probs.shape == (len(texts), 4) and np.allclose(probs.sum(1), 1, atol=1e-5)
    predictions = clf.predict(texts)
    assert [p.label for p in predictions] == [clf.labels[i] for i in probs.argmax(1)]
    # the run's own valid split: the same accuracy training logged for its last epoch
    assert clf.evaluate()["valid"].acc == pytest.approx(metrics["val/acc"], abs=1e-6)
    assert textclass.load(run_dir / "checkpoints" / "last.ckpt").predict_proba(texts) == pytest.approx(probs)
    with pytest.raises(ConfigError, match="trainer.max_epochs='abc'"):
        textclass.train(["trainer.max_epochs=abc"])


# --- splits, folds, labels ----------------------------------------------------------------------
def test_single_file_split_is_stratified_seeded_and_disjoint(tmp_path):
    rows = [(f"text {i}", "rare" if i % 10 == 0 else "common") for i in range(200)]
    ds = files_dataset(train=str(write_rows(tmp_path / "all.tsv", rows)), split_fractions=[0.8, 0.1, 0.1], split_seed=5)
    data, labels, _ = ds.read()
    assert labels.values == ("common", "rare")
    sizes = {s: len(e) for s, e in data.items()}
    assert sizes == {"train": 160, "valid": 20, "test": 20}
    for split, examples in data.items():
        assert (examples.labels == labels.index["rare"]).mean() == pytest.approx(0.1)  # proportions kept
    rows_seen = np.concatenate([e.rows for e in data.values()])
    assert len(set(rows_seen.tolist())) == 200  # disjoint and complete
    again, _, _ = ds.read()
    assert all((again[s].rows == data[s].rows).all() for s in data)


def test_split_is_written_beside_the_cache_and_reused(tmp_path):
    rows = [(f"word{i % 7} text", "ab"[i % 2]) for i in range(60)]
    ds = files_dataset(train=str(write_rows(tmp_path / "all.csv", rows)), split_fractions=[0.5, 0.5])
    first = encode_dataset(ds, word_features(), tmp_path / "cache", seed=1)
    (split_file,) = (tmp_path / "cache").glob("files-*/split.json")
    record = json.loads(split_file.read_text())
    assert sorted(record["rows"]["train"] + record["rows"]["valid"]) == list(range(2, 62))  # csv lines 2..61
    second = encode_dataset(ds, word_features(), tmp_path / "cache", seed=1)
    assert (second.splits["valid"].labels == first.splits["valid"].labels).all()
    assert len(list((tmp_path / "cache").glob("files-*"))) == 1


def test_folds_are_disjoint_stratified_and_cover_every_example():
    labels = np.array([0] * 50 + [1] * 25 + [2] * 10)
    folds = fold_ids(labels, 5, seed=3)
    assert sorted(np.bincount(folds).tolist()) == [17] * 5
    for k in range(5):
        assert np.bincount(labels[folds == k], minlength=3).tolist() == [10, 5, 2]
    with pytest.raises(DataError, match="class id 2 has only 10 examples"):
        fold_ids(labels, 11, seed=3)


def test_fold_splits_of_train_and_valid_cover_both_once(tmp_path):
    train = write_rows(tmp_path / "train.tsv", [(f"t{i}", "ab"[i % 2]) for i in range(40)])
    valid = write_rows(tmp_path / "valid.tsv", [(f"v{i}", "ab"[i % 2]) for i in range(10)])
    ds = files_dataset(train=str(train), valid=str(valid))
    data, _, _ = ds.read()
    seen = []
    for fold in range(5):
        split = Resplit(5, fold).apply(data, seed=123)
        assert not set(split["valid"].texts) & set(split["train"].texts)
        assert len(split["train"]) + len(split["valid"]) == 50
        seen += split["valid"].texts
    assert sorted(seen) == sorted(data["train"].texts + data["valid"].texts)


@pytest.mark.slow
def test_kfold_sweep_summary_reports_mean_and_std_over_folds(tmp_path):
    data = write_rows(tmp_path / "train.csv", ROWS * 3)
    args = ["-m", "data=files", f"data.dataset.train={data}", "data.folds=3", "data.fold=0,1,2", *FAST, "trainer.max_epochs=1"]
    run_ok(["textclass-train", *args], tmp_path, cli_env(tmp_path, tmp_path))
    (summary,) = (tmp_path / "outputs" / "train" / "multiruns").glob("*/summary.md")
    text = summary.read_text()
    # no test split: the headline is the selected checkpoint's accuracy on valid
    jobs = sorted(json.loads(p.read_text())["val/acc_selected"] for p in summary.parent.glob("*/metrics.json"))
    assert len(jobs) == 3
    (row,) = [line for line in text.splitlines() if line.startswith("| data=files") and "| 3 |" in line]
    assert f"{np.mean(jobs):.4f} ± {np.std(jobs, ddof=1):.4f}" in row


def test_labels_sort_numerically_or_follow_the_given_order(tmp_path):
    path = write_rows(tmp_path / "t.jsonl", [("a", "10"), ("b", "9"), ("c", "2")])
    _, labels, _ = files_dataset(train=str(path), valid=str(path)).read()
    assert labels.values == ("2", "9", "10")
    data, labels, _ = files_dataset(train=str(path), valid=str(path), labels=[10, 2, 9]).read()
    assert labels.values == ("10", "2", "9") and data["train"].labels.tolist() == [0, 2, 1]


def test_sentence_pairs_are_encoded_as_pairs(tmp_path):
    path = tmp_path / "pairs.tsv"
    path.write_text("premise\thypothesis\tlabel\nA man sleeps\tA person rests\tyes\nA dog runs\tA cat sleeps\tno\n")
    ds = files_dataset(train=str(path), valid=str(path), text_column="premise", text_pair_column="hypothesis")
    data, _, _ = ds.read()
    assert data["train"].pairs == ["A person rests", "A cat sleeps"]
    words = word_features()
    words.fit(data["train"].texts, {"train": data["train"].texts}, seed=0, pairs={"train": data["train"].pairs})
    encoding = words.encode(data["train"].texts[:1], data["train"].pairs[:1])
    assert words.token_strings(encoding.ids.tolist()) == ["a", "man", "sleeps", SEP, "a", "person", "rests"]
    bert = PretrainedTokenizer()
    ids = bert.encode(["A man sleeps"], ["A person rests"]).ids.tolist()
    assert bert.token_strings(ids) == ["[CLS]", "a", "man", "sleeps", "[SEP]", "a", "person", "rests", "[SEP]"]


def test_a_rewritten_file_of_the_same_size_and_mtime_is_never_a_stale_cache_hit(tmp_path):
    path = write_rows(tmp_path / "train.tsv", [("good film", "pos"), ("bad film", "neg")] * 5)
    ds = files_dataset(train=str(path), valid=str(path))
    first = encode_dataset(ds, word_features(), tmp_path / "cache", seed=0)
    stat = path.stat()
    # the same size, the same mtime (cp -p, rsync -t), another content and inode
    replacement = tmp_path / "new.tsv"
    write_rows(replacement, [("good film", "neg"), ("bad film", "pos")] * 5)
    assert replacement.stat().st_size == stat.st_size
    os.utime(replacement, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    replacement.replace(path)
    second = encode_dataset(ds, word_features(), tmp_path / "cache", seed=0)
    assert (second.splits["train"].labels == 1 - first.splits["train"].labels).all()
    assert len(list((tmp_path / "cache").glob("files-*"))) == 2
    third = encode_dataset(ds, word_features(), tmp_path / "cache", seed=0)  # unchanged: a hit on the memo
    assert (third.splits["train"].labels == second.splits["train"].labels).all()


# --- multi-label ----------------------------------------------------------------------------------
def multi_label_rows() -> list[dict]:
    rows = []
    for (code, title), (sentence, polarity) in zip(NEWS_ROWS * 4, SST2_ROWS * 5):
        rows.append({"text": f"{title} {sentence}", "label": [TOPICS[code], "positive" if polarity == "1" else "negative"]})
    return rows


def test_multi_label_formats_give_the_same_label_sets(tmp_path):
    rows = multi_label_rows()[:6]
    as_list = tmp_path / "list.jsonl"
    write_table(as_list, rows)
    joined = tmp_path / "joined.csv"
    write_rows(joined, [(r["text"], "|".join(r["label"])) for r in rows])
    names = sorted({label for r in rows for label in r["label"]})
    columns = tmp_path / "columns.parquet"
    write_table(columns, [{"text": r["text"], **{n: int(n in r["label"]) for n in names}} for r in rows])
    found = []
    for path, extra in [(as_list, {}), (joined, {}), (columns, {"label_columns": names})]:
        data, labels, _ = files_dataset(train=str(path), valid=str(path), multi_label=True, **extra).read()
        found.append((labels.values, data["train"].labels.tolist()))
    assert found[0] == found[1] == found[2]
    assert found[0][0] == tuple(names) and [sum(r) for r in found[0][1]] == [2] * 6


def test_thresholds_are_tuned_per_label_for_f1():
    probs = np.array([[0.9, 0.2], [0.6, 0.3], [0.4, 0.35], [0.1, 0.8]])
    truth = np.array([[1, 0], [1, 0], [0, 1], [0, 0]])
    # label 0: 0.45 ... 0.6 keep both positives and drop 0.4 (F1 1); the lowest such grid point is 0.45.
    # label 1: its one positive (0.35) is below a negative (0.8): at 0.35 one false positive (F1 2/3),
    # at 0.30 two (F1 1/2), above 0.35 none found (F1 0)
    assert tune_thresholds(probs, truth).tolist() == [0.45, 0.35]
    assert tune_thresholds(probs, np.zeros_like(truth)).tolist() == [0.5, 0.5]  # no positive: the default


def test_multi_label_metrics_match_a_hand_computation(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TEXTCLASS_CACHE_DIR", str(tmp_path / "cache"))
    path = tmp_path / "ml.jsonl"
    write_table(path, multi_label_rows())
    metrics = textclass.train([
        "data=files", f"data.dataset.train={path}", f"data.dataset.valid={path}", "data.dataset.multi_label=true",
        "model.tune_thresholds=true", *FAST,
    ])
    run_dir = Path(metrics["run_dir"])
    clf = textclass.load(run_dir)
    result = clf.evaluate(path)
    data, labels, _ = clf.run.dataset.read(clf.run.labels)
    truth = data["train"].labels.astype(bool)
    thresholds = json.loads((run_dir / "thresholds.json").read_text())
    assert list(thresholds) == list(labels.names)
    probs = clf.predict_proba(data["train"].texts)
    predicted = probs >= np.array([thresholds[n] for n in labels.names])
    tp, fp, fn = (predicted & truth).sum(0), (predicted & ~truth).sum(0), (~predicted & truth).sum(0)
    assert result.acc == pytest.approx((predicted == truth).all(1).mean())
    assert result.hamming == pytest.approx((predicted != truth).mean())
    assert result.f1_micro == pytest.approx(2 * tp.sum() / (2 * tp.sum() + fp.sum() + fn.sum()))
    assert result.f1 == pytest.approx(np.mean(2 * tp / np.maximum(2 * tp + fp + fn, 1)))
    assert result.precision[labels.names[0]] == pytest.approx(tp[0] / max(tp[0] + fp[0], 1))
    # training reported the same tuned F1 on the same (valid = train) file
    assert metrics["val/f1_tuned"] == pytest.approx(result.f1, abs=1e-6)
    assert metrics["val/f1_micro_tuned"] == pytest.approx(result.f1_micro, abs=1e-6)
    (prediction,) = clf.predict([data["train"].texts[0]])
    assert prediction.labels == [n for n, keep in zip(labels.names, predicted[0]) if keep]
    assert prediction.label == "|".join(prediction.labels)


@pytest.mark.slow
@real_data
def test_multi_label_learns_topic_and_sentiment_from_real_text(tmp_path, monkeypatch):
    """A headline joined with an SST-2 sentence, labeled {topic, sentiment}: micro-F1 far above the
    best constant prediction (the labels present in at least half of train)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TEXTCLASS_CACHE_DIR", str(tmp_path / "cache"))
    rng = np.random.default_rng(0)
    news = [line.split("\t") for line in (REAL_DATA / "news" / "train.tsv").read_text().splitlines()[1:]]
    sst2 = [line.split("\t") for line in (REAL_DATA / "sst2" / "train.tsv").read_text().splitlines()[1:]]
    names = {"b": "business", "t": "tech", "e": "entertainment", "m": "health"}
    split_rows = {}
    for split, n in (("train", 6000), ("valid", 1000)):
        picks = zip(rng.choice(len(news), n), rng.choice(len(sst2), n))
        split_rows[split] = [
            {"text": f"{news[i][1]} . {sst2[j][0]}", "label": [names[news[i][0]], "positive" if sst2[j][1].strip() == "1" else "negative"]}
            for i, j in picks
        ]
        write_table(tmp_path / f"{split}.jsonl", split_rows[split])
    metrics = textclass.train([
        "data=files", f"data.dataset.train={tmp_path / 'train.jsonl'}", f"data.dataset.valid={tmp_path / 'valid.jsonl'}",
        "data.dataset.multi_label=true", "model=bow", "trainer.max_epochs=5", "trainer.enable_progress_bar=false",
        "optimizer.lr=0.01",
    ])
    result = textclass.load(metrics["run_dir"]).evaluate(tmp_path / "valid.jsonl")
    all_labels = sorted({label for r in split_rows["train"] for label in r["label"]})
    freq = {label: np.mean([label in r["label"] for r in split_rows["train"]]) for label in all_labels}
    constant = {label for label, f in freq.items() if f >= 0.5}
    tp = sum(len(constant & set(r["label"])) for r in split_rows["valid"])
    fp = sum(len(constant - set(r["label"])) for r in split_rows["valid"])
    fn = sum(len(set(r["label"]) - constant) for r in split_rows["valid"])
    baseline = 2 * tp / (2 * tp + fp + fn)
    assert result.f1_micro > baseline + 0.2, (result, baseline)


# --- bad input: one error naming file, line, column or key ----------------------------------------
BAD = [
    ("missing column", "train.csv", "text,topic\nhello,a\n", {}, DataError, ["train.csv:1", "'label'", "columns found: 'text', 'topic'"]),
    ("empty text", "train.tsv", "text\tlabel\nhello\ta\n \tb\n", {}, DataError, ["train.tsv:3", "empty text"]),
    ("unknown label in valid", "train.tsv", "text\tlabel\nhello\ta\n", {"valid_text": "text\tlabel\nbye\tz\n"}, DataError,
     ["valid.tsv:2", "unknown label 'z'", "seen in train"]),
    ("mixed lists and strings", "train.jsonl", '{"text": "a", "label": ["x"]}\n{"text": "b", "label": "y"}\n', {"multi_label": True},
     DataError, ["train.jsonl:2", "mixes lists and", "joined strings"]),
    ("multi-label row without label", "train.jsonl", '{"text": "a", "label": ["x"]}\n{"text": "b", "label": []}\n', {"multi_label": True},
     DataError, ["train.jsonl:2", "no label"]),
    ("list label without multi_label", "train.jsonl", '{"text": "a", "label": ["x", "y"]}\n', {}, DataError,
     ["train.jsonl:1", "multi_label=true"]),
    ("bad csv quoting", "train.csv", 'text,label\n"unclosed,a\n', {}, DataError, ["train.csv", "CSV"]),
    ("unknown extension", "train.txt", "text\tlabel\n", {}, ConfigError, ["train.txt", ".txt", "data.dataset.format"]),
]


@pytest.mark.parametrize("case", BAD, ids=[c[0] for c in BAD])
def test_bad_own_data_is_one_clear_error(tmp_path, case):
    _, name, content, options, error, fragments = case
    train = tmp_path / name
    train.write_text(content)
    options = dict(options)
    valid = tmp_path / ("valid" + train.suffix)
    valid.write_text(options.pop("valid_text", content))
    with pytest.raises(error) as raised:
        files_dataset(train=str(train), valid=str(valid), **options).read()
    for fragment in fragments:
        assert fragment in str(raised.value)


def test_bad_split_and_fold_options_name_the_key(tmp_path):
    with pytest.raises(ConfigError, match=r"split_fractions=\[0.5, 0.2\] must be 2 or 3 positive fractions"):
        files_dataset(train="x.csv", split_fractions=[0.5, 0.2])
    with pytest.raises(ConfigError, match="data.dataset.train is required"):
        files_dataset()
    with pytest.raises(ConfigError, match="data.folds=3 data.fold=3"):
        Resplit(3, 3)
    train = write_rows(tmp_path / "t.tsv", [("a", "x"), ("b", "x"), ("c", "y")])
    with pytest.raises(DataError, match="data.folds=2: the class 'y' has only 1 examples"):
        encode_dataset(files_dataset(train=str(train)), word_features(), None, seed=0, resplit=Resplit(2, 0))
    with pytest.raises(ConfigError, match="no valid split"):
        encode_dataset(files_dataset(train=str(train)), word_features(), None, seed=0)


def test_hf_bad_path_is_a_clear_error(tmp_path):
    from textclass.data.dataset import HubDataset

    (tmp_path / "not_hf").mkdir()
    with pytest.raises(DataError, match="is not a directory written by save_to_disk"):
        HubDataset(path=str(tmp_path / "not_hf")).read()


@pytest.mark.slow  # offline, `datasets` retries the hub for ~25 s before giving up
def test_hf_offline_name_is_a_clear_error():
    from textclass.data.dataset import HubDataset

    with pytest.raises(DataError, match="cannot load the Hugging Face dataset 'no-such/dataset-xyz'.*save_to_disk"):
        HubDataset(name="no-such/dataset-xyz").read()


@pytest.mark.slow
def test_missing_train_path_is_one_cli_error_line(tmp_path):
    result = run_cli(["textclass-train", "data=files"], tmp_path, cli_env(tmp_path, tmp_path))
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "data.dataset.train" in errors[0] and "Traceback" not in result.stderr


@pytest.mark.slow
@real_data
def test_sst2_as_own_files_matches_data_sst2(tmp_path, monkeypatch):
    """The shared SST-2 TSVs through data=files give data=sst2's dev accuracy for the same config."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TEXTCLASS_DATA_DIR", str(REAL_DATA))
    monkeypatch.setenv("TEXTCLASS_CACHE_DIR", str(tmp_path / "cache"))
    common = ["model=bow", "trainer.max_epochs=1", "data.max_examples=5000", "trainer.enable_progress_bar=false", "data.vocab.source=embeddings",
              "data.vocab.drop_unknown=true"]
    builtin = textclass.train(["data=sst2", *common])
    own = textclass.train([
        "data=files", f"data.dataset.train={REAL_DATA / 'sst2' / 'train.tsv'}", f"data.dataset.valid={REAL_DATA / 'sst2' / 'dev.tsv'}",
        "data.dataset.text_column=sentence", "data.dataset.labels=[0,1]", "data.dataset.pretokenized=true", *common,
    ])
    assert own["val/acc"] == pytest.approx(builtin["val/acc"], abs=1e-6)
    assert json.loads((Path(own["run_dir"]) / "labels.json").read_text())["values"] == ["0", "1"]
