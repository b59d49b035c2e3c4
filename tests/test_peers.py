"""benchmarks/peers.py: the peers train, select and report on textclass's own splits, and its quick mode
writes every row it promises (on tiny data written by the test)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers.cli import cli_env
from helpers.data import write_tiny_data
from helpers.paths import REPO

from benchmarks import peers

CPU_PEERS = ("fasttext", "fasttext_glove", "tfidf")


def datamodule_splits(data: str, data_dir: Path, cache_dir: Path, holdout: float):
    """The encoded splits of the data module `textclass-train data=<data> data.holdout=<holdout>` builds."""
    from hydra.utils import instantiate

    from textclass.config.compose import compose_config

    cfg = compose_config("train", [f"data={data}", f"paths.data_dir={data_dir}", f"paths.cache_dir={cache_dir}", f"data.holdout={holdout}"])
    datamodule = instantiate(cfg.data)
    datamodule.prepare_data()
    datamodule.setup("fit")
    return datamodule.data.splits


def test_peer_splits_are_the_data_modules_holdout_splits(tmp_path):
    data_dir = write_tiny_data(tmp_path / "data", news_test=False)
    splits = peers.load_splits("news", data_dir, 0.1)
    encoded = datamodule_splits("news", data_dir, tmp_path / "cache", 0.1)
    assert splits.sizes() == {s: len(e) for s, e in encoded.items()} == {"train": 26, "valid": 4, "test": 10}
    for name, examples in (("train", splits.train), ("valid", splits.valid), ("test", splits.test)):
        assert np.array_equal(examples.labels, encoded[name].labels)  # same examples in the same order
    # the valid split is a tenth of train, one row of each class; test is the valid file as it is
    assert sorted(splits.valid.labels.tolist()) == [0, 1, 2, 3]
    assert splits.test.rows.tolist() == list(range(2, 12)) and splits.holdout == 0.1
    assert splits.tokenizer.split == "punct" and splits.tokens(splits.test)[0] == "fed raises interest rates as inflation climbs".split()
    assert peers.load_splits("sst2", data_dir, 0.1).tokenizer.split == "whitespace"


def test_peer_splits_without_holdout_are_a_textclass_runs(tiny_run):
    """Tiny news with a test split of its own, no holdout: the valid and test predictions of a
    textclass-train run are on exactly the peers' examples."""
    splits = peers.load_splits("news", tiny_run.data, None)
    assert peers.same_examples(tiny_run.run, "valid", splits.valid) and peers.same_examples(tiny_run.run, "test", splits.test)
    assert not peers.same_examples(tiny_run.run, "valid", splits.test)


def test_unknown_peer_is_one_message(capsys):
    with pytest.raises(SystemExit) as exit_info:
        peers.parse_args(["--peers", "fasttext,xgboost"])
    assert exit_info.value.code == 2
    assert "--peers: unknown xgboost; choose from fasttext, fasttext_glove, tfidf, hf_trainer" in capsys.readouterr().err


def test_each_textclass_model_is_set_against_the_fasttext_that_is_the_same_model(tmp_path):
    """bow against fastText's wordNgrams=1 fit, model=fasttext against its wordNgrams=2 fit, both at the
    selected lr and epochs; an unknown model is one argparse error."""
    grid = [{"lr": 0.5, "epoch": 5, "wordNgrams": n, "tokens_per_s": speed} for n, speed in ((1, 4e6), (2, 3e6))]
    grid.append({"lr": 1.0, "epoch": 5, "wordNgrams": 2, "tokens_per_s": 9e6})  # another lr: not the comparison
    fasttext = peers.PeerResult("fasttext", {"lr": 0.5, "epoch": 5, "wordNgrams": 2}, 0.9, [0.9], [1.0], tokens_per_s=3e6, grid=grid)
    runs = [peers.TextclassRun(m, tmp_path / m, 0, test_acc=0.9, epochs=5, train_s=2.0, tokens_per_s=speed, splits_match=True)
            for m, speed in (("bow", 2e6), ("fasttext", 0.6e6))]
    splits = peers.load_splits("sst2", write_tiny_data(tmp_path / "data"), 0.1)
    rows = {r["name"]: r["value"] for r in peers.result_rows("sst2", [fasttext], runs, splits)}
    assert rows["sst2 bow/fasttext bow-like tokens/s"] == pytest.approx(0.5)
    assert rows["sst2 fasttext/fasttext fasttext-like tokens/s"] == pytest.approx(0.2)
    assert rows["sst2 fasttext fasttext-like tokens/s"] == 3e6
    assert rows["sst2 splits = textclass's"] == 1.0
    assert "fasttext/fastText 0.20 (target >= 0.5: missed)" in peers.speed_line("sst2", [fasttext], runs[1])
    assert "bow/fastText 0.50 (target >= 0.5: met)" in peers.speed_line("sst2", [fasttext], runs[0])


def test_unknown_textclass_model_is_refused(capsys):
    with pytest.raises(SystemExit) as exit_info:
        peers.parse_args(["--textclass-models", "bow,lstm"])
    assert exit_info.value.code == 2
    assert "--textclass-models: unknown lstm; choose from bow, fasttext" in capsys.readouterr().err


def run_quick(tmp_path: Path, data_dir: Path, *args: str) -> tuple[subprocess.CompletedProcess, dict]:
    out = tmp_path / "peers.json"
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.peers", "--quick", "--data-dir", str(data_dir), "--work-dir",
         str(tmp_path / "work"), "--out", str(out), *args],
        cwd=REPO, capture_output=True, text=True, timeout=600, env={**os.environ, **cli_env(data_dir, tmp_path)},
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result, json.loads(out.read_text())


def write_accuracy_results(path: Path) -> Path:
    """An accuracy.py results file holding two word rows of news (the better one is the reference)."""
    rows = [
        {"experiment": "best/news_bow", "data": "news", "value": 0.925, "n": 5, "status": "ok"},
        {"experiment": "best/news_lstm", "data": "news", "value": 0.95, "n": 5, "status": "ok"},
        {"experiment": "best/news_bert", "data": "news", "value": None, "n": 0, "status": "skipped"},
    ]
    path.write_text(json.dumps({"metadata": {}, "rows": rows}))
    return path


@pytest.mark.slow
def test_peers_quick_on_tiny_data_writes_every_row(tmp_path):
    data_dir = write_tiny_data(tmp_path / "data", news_test=False)
    reference = write_accuracy_results(tmp_path / "accuracy.json")
    result, record = run_quick(tmp_path, data_dir, "--textclass-results", str(reference))
    rows = {r["name"]: r["value"] for r in record["rows"]}
    for data in ("news", "sst2"):
        splits = peers.load_splits(data, data_dir, 0.1)
        assert {s: rows[f"{data} {s} examples"] for s in ("train", "valid", "test")} == splits.sizes()
        assert record["metadata"]["per_dataset"][data]["sizes"] == splits.sizes()
        assert rows[f"{data} train tokens"] == splits.train_tokens() > 0
        for peer in CPU_PEERS:
            assert 0 <= rows[f"{data} {peer} valid acc"] <= 1 and 0 <= rows[f"{data} {peer} test acc"] <= 1
            assert rows[f"{data} {peer} train s"] > 0
        assert rows[f"{data} fasttext tokens/s"] > 0 and rows[f"{data} fasttext_glove tokens/s"] > 0
        # the textclass bow run of the same benchmark: its splits are the peers' (rows, texts, labels)
        assert rows[f"{data} splits = textclass's"] == 1.0
        run_dir = tmp_path / "work" / f"{data}_bow"
        for split, examples in (("valid", splits.valid), ("test", splits.test)):
            assert np.load(run_dir / f"predictions_{split}.npz")["ids"].tolist() == examples.rows.tolist()
        assert 0 <= rows[f"{data} textclass bow test acc"] <= 1 and rows[f"{data} textclass bow tokens/s"] > 0
        assert rows[f"{data} bow/fasttext bow-like tokens/s"] == pytest.approx(
            rows[f"{data} textclass bow tokens/s"] / rows[f"{data} fasttext bow-like tokens/s"])
        grid = record["metadata"]["per_dataset"][data]["peers"]["fasttext"]["grid"]
        assert len(grid) == len(peers.QUICK_FASTTEXT_GRID.points()) and all(g["epoch"] == 1 for g in grid)
    assert "news tokens/s: textclass bow" in result.stdout and "target >= 0.5" in result.stdout
    table = (tmp_path / "peers.md").read_text()
    news_tfidf = next(line for line in table.splitlines() if line.startswith("| tfidf") and "best/news_lstm" in line)
    assert f"{0.95 - rows['news tfidf test acc']:+.3f}" in news_tfidf  # textclass − peer, against the best word row
    assert "no accuracy.py results" in table  # SST-2 has no reference rows in that file


@pytest.mark.slow
def test_peers_quick_hf_trainer_on_tiny_news(tmp_path):
    data_dir = write_tiny_data(tmp_path / "data", sst2=False, news_test=False)
    _, record = run_quick(tmp_path, data_dir, "--datasets", "news", "--peers", "hf_trainer", "--no-textclass-run")
    rows = {r["name"]: r["value"] for r in record["rows"]}
    assert 0 <= rows["news hf_trainer test acc"] <= 1 and rows["news hf_trainer train s"] > 0
    assert "news hf_trainer valid acc" not in rows  # it selects nothing on valid
    settings = record["metadata"]["per_dataset"]["news"]["peers"]["hf_trainer"]["settings"]
    assert settings["epochs"] == 1 and settings["batch_size"] == 32 and settings["lr"] == pytest.approx(5e-5)
