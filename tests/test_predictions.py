"""Held-out reporting: `data.holdout` re-cuts the splits, and every run saves its selected checkpoint's
predictions (predictions_<split>.npz), which agree with textclass-eval and metrics.json."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from helpers.cli import cli_env, in_parallel, run_cli, run_ok, TinyRun
from helpers.data import builtin_dataset, write_tiny_data, NEWS_ROWS, SST2_ROWS
from textclass.data.encoded import Resplit, read_splits
from textclass.data.dataset import Examples
from textclass.errors import ConfigError
from textclass.training.predictions import Predictions, fingerprint, load_predictions


def _examples(labels: list[int]) -> Examples:
    return Examples([f"text {i}" for i in range(len(labels))], np.array(labels), np.arange(len(labels)) + 2)


def test_holdout_takes_a_stratified_share_of_train_and_reports_on_valid():
    train, valid = _examples([0] * 80 + [1] * 20), _examples([0, 1, 1])
    split = Resplit(holdout=0.1).apply({"train": train, "valid": valid}, seed=123)
    assert {s: len(e) for s, e in split.items()} == {"train": 90, "valid": 10, "test": 3}
    assert np.bincount(split["valid"].labels).tolist() == [8, 2]  # each class in proportion
    assert split["test"] is valid  # the reporting split is the dataset's valid split, untouched
    assert sorted(split["train"].texts + split["valid"].texts) == sorted(train.texts)
    again = Resplit(holdout=0.1).apply({"train": train, "valid": valid}, seed=123)
    assert again["valid"].texts == split["valid"].texts  # seeded: the same selection split every time
    other = Resplit(holdout=0.1).apply({"train": train, "valid": valid}, seed=7)
    assert other["valid"].texts != split["valid"].texts


def test_holdout_uses_the_split_seed_so_every_run_seed_sees_the_same_splits(tmp_path):
    data = write_tiny_data(tmp_path / "data")
    splits = [read_splits(builtin_dataset("sst2", data, f"seed={seed}"), Resplit(holdout=0.25))[0] for seed in (1, 2)]
    assert [e.texts for e in splits[0].values()] == [e.texts for e in splits[1].values()]
    assert splits[0]["test"].texts == [t.strip() for t, _ in SST2_ROWS]  # dev.tsv, as read


def test_bad_holdout_options_are_one_clear_error():
    with pytest.raises(ConfigError, match=r"data.holdout=1.5 must be a fraction of train between 0 and 1"):
        Resplit(holdout=1.5)
    with pytest.raises(ConfigError, match="data.holdout and data.folds both re-cut"):
        Resplit(folds=5, holdout=0.1)
    with pytest.raises(ConfigError, match="news has a test split already"):
        Resplit(holdout=0.1).apply({"train": _examples([0, 1] * 5), "valid": _examples([0]), "test": _examples([1])}, 0, "news")


def test_fingerprint_follows_the_examples_not_how_they_are_encoded():
    a = _examples([0, 1, 1])
    assert fingerprint(a) == fingerprint(Examples(list(a.texts), a.labels.copy(), a.rows.copy()))
    assert fingerprint(a) != fingerprint(a.take(np.array([0, 1])))
    assert fingerprint(a) != fingerprint(Examples(a.texts, np.array([0, 1, 0]), a.rows))
    assert fingerprint(a) != fingerprint(Examples(["other", *a.texts[1:]], a.labels, a.rows))


def test_predictions_round_trip(tmp_path):
    p = Predictions("test", np.array([2, 3]), np.array([0, 1]), np.array([[0.9, 0.1], [0.6, 0.4]], np.float32), np.array([0, 0]), ["neg", "pos"], "ab" * 32, "sst2")
    back = Predictions.load(p.save(tmp_path / "p.npz"))
    assert back.class_names == ["neg", "pos"] and back.data == p.data and back.split == "test"
    np.testing.assert_array_equal(back.probabilities, p.probabilities)
    assert back.accuracy() == 0.5 and back.correct().tolist() == [True, False]


def test_predictions_agree_with_eval_and_metrics(tiny_run: TinyRun):
    """The shared tiny run (news with a test split): predictions of the selected checkpoint on valid and
    test, equal to textclass-eval of that checkpoint and to metrics.json."""
    run = tiny_run.run
    run_ok(["textclass-eval", f"ckpt_path={run}", "splits=[valid,test]", "hydra.run.dir=eval_selected"], tiny_run.work, cli_env(tiny_run.data, tiny_run.work))
    report = json.loads((tiny_run.work / "eval_selected" / "eval.json").read_text())["results"]
    metrics = json.loads((run / "metrics.json").read_text())
    valid, test = load_predictions(run, "valid"), load_predictions(run, "test")
    assert (len(valid), len(test)) == (len(NEWS_ROWS), len(NEWS_ROWS[::2]))
    assert valid.accuracy() == pytest.approx(report["valid"]["acc"]) == pytest.approx(metrics["val/acc_selected"])
    assert test.accuracy() == pytest.approx(report["test"]["acc"]) == pytest.approx(metrics["test/acc"])
    assert metrics["val/f1_selected"] == pytest.approx(report["valid"]["f1"])
    assert valid.class_names == ["business", "science/technology", "entertainment", "health"]
    assert valid.ids.tolist() == list(range(2, len(NEWS_ROWS) + 2))  # file lines, after the header
    np.testing.assert_allclose(test.probabilities.sum(axis=1), 1, atol=1e-5)
    assert test.data != valid.data


@pytest.mark.slow
def test_holdout_run_reports_on_valid_file_as_test_and_seeds_share_the_test_set(tmp_path):
    data = write_tiny_data(tmp_path / "data")
    env = cli_env(data, tmp_path)
    common = ["textclass-train", "data=sst2", "data.holdout=0.25", "trainer.max_epochs=2", "data.batch_size=4", "logger=[]"]
    in_parallel(*(lambda s=s: run_ok([*common, f"seed={s}", f"hydra.run.dir=run{s}"], tmp_path, env) for s in (1, 2)))
    first, second = (load_predictions(tmp_path / f"run{s}", "test") for s in (1, 2))
    assert len(first) == len(SST2_ROWS) and first.data == second.data  # dev.tsv, the same for every seed
    assert len(load_predictions(tmp_path / "run1", "valid")) == 6  # a quarter of train (24 rows), stratified
    metrics = json.loads((tmp_path / "run1" / "metrics.json").read_text())
    assert metrics["test/acc"] == pytest.approx(first.accuracy())
    # the one dev sentence without a GloVe word is predicted (from an empty input) and counted
    assert metrics["test/acc"] * len(SST2_ROWS) == pytest.approx(round(metrics["test/acc"] * len(SST2_ROWS)))
    no_test = run_cli([*common[:2], "data.holdout=0.1", "data=news", "trainer.max_epochs=1", "hydra.run.dir=bad"], tmp_path, env)
    assert no_test.returncode == 2 and "news has a test split already" in no_test.stderr and "Traceback" not in no_test.stderr


def test_a_run_without_predictions_is_a_clear_error(tmp_path: Path):
    from textclass.errors import DataError

    with pytest.raises(DataError, match=r"no predictions_test.npz"):
        load_predictions(tmp_path, "test")
