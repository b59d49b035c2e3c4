"""`textclass-eval` and `textclass-predict` on checkpoints of real training runs (tiny data).

The quick loop keeps eval and predict on conftest's shared `tiny_run` and the in-process checkpoint
checks; the other CLI runs (more eval and predict processes, other trainings) are `slow`."""

from __future__ import annotations

import json
import math
import re
import shutil
from pathlib import Path

import pytest

from helpers.cli import cli_env, in_parallel, run_cli, run_ok, TinyRun
from helpers.data import write_tsv, NEWS_ROWS
from textclass.training.checkpoint import load_run
from textclass.errors import ConfigError



def _train(data_dir: Path, tmp_path: Path, name: str, *overrides: str) -> Path:
    run_ok(
        ["textclass-train", "trainer.max_epochs=2", "data.batch_size=4", "logger=[]", f"hydra.run.dir={name}", *overrides],
        cwd=tmp_path,
        env=cli_env(data_dir, tmp_path),
    )
    return tmp_path / name


@pytest.fixture
def trained(tiny_run: TinyRun) -> tuple[Path, Path, Path]:
    """(work dir, data dir, run dir) of conftest's shared 2-epoch bow run on tiny news with a test split."""
    return tiny_run.work, tiny_run.data, tiny_run.run


def _eval(work: Path, data: Path, *args: str, ok: bool = True, out: str = "eval_out"):
    """textclass-eval in `work`, its report in work/`out`; `ok`: assert it exits 0."""
    return (run_ok if ok else run_cli)(["textclass-eval", *args, f"hydra.run.dir={out}"], cwd=work, env=cli_env(data, work))


def _predict(work: Path, data: Path, *args: str, stdin: str | None = None, ok: bool = True):
    """textclass-predict in `work`; `ok`: assert it exits 0."""
    return (run_ok if ok else run_cli)(["textclass-predict", *args], cwd=work, env=cli_env(data, work), stdin=stdin)


def test_eval_of_a_run_dir_reproduces_its_metrics_exactly(trained):
    """A run directory means its selected checkpoint, in eval as in metrics.json; checkpoint=last is
    the last epoch, whose validation figures the last epoch logged."""
    work, data, run = trained
    result, last = in_parallel(
        lambda: _eval(work, data, f"ckpt_path={run}"),
        lambda: _eval(work, data, f"ckpt_path={run}", "checkpoint=last", "splits=[valid]", out="eval_last"),
    )
    logged = json.loads((run / "metrics.json").read_text())
    saved = json.loads((work / "eval_out" / "eval.json").read_text())
    report = saved["results"]
    assert set(report) == {"train", "valid", "test"}
    assert saved["checkpoint"] == str(run / "checkpoints" / "selected.ckpt")
    assert f"loaded {run / 'checkpoints' / 'selected.ckpt'} (epoch " in result.stdout  # the log, beside the table
    assert (report["test"]["acc"], report["test"]["f1"]) == (logged["test/acc"], logged["test/f1"])
    assert (report["valid"]["acc"], report["valid"]["f1"]) == (logged["val/acc_selected"], logged["val/f1_selected"])
    assert report["valid"]["examples"] == len(NEWS_ROWS) and report["train"]["examples"] == 3 * len(NEWS_ROWS)
    assert sum(map(sum, report["test"]["confusion"])) == len(NEWS_ROWS[::2])
    assert "| valid | 10 |" in result.stdout
    saved = json.loads((work / "eval_last" / "eval.json").read_text())
    assert saved["checkpoint"] == str(run / "checkpoints" / "last.ckpt")
    assert saved["results"]["valid"]["acc"] == pytest.approx(logged["val/acc"], abs=1e-6)
    assert saved["results"]["valid"]["f1"] == pytest.approx(logged["val/f1"], abs=1e-6)


@pytest.mark.slow
def test_eval_on_a_labeled_file_uses_the_runs_vocabulary(trained, tmp_path):
    work, data, run = trained
    file = write_tsv(tmp_path / "extra.tsv", "category\ttitle", [("b", "Fed raises rates"), ("e", "Star Wars movie")])
    # a file of another dataset (SST-2 header) is refused naming the missing column and the columns found (below)
    other = write_tsv(tmp_path / "sst.tsv", "sentence\tlabel", [("a fine film", "1")])
    _, result = in_parallel(
        lambda: _eval(work, data, f"ckpt_path={run}/checkpoints/last.ckpt", f"file={file}", out=str(tmp_path / "eval_file")),
        lambda: _eval(work, data, f"ckpt_path={run}/checkpoints/last.ckpt", f"file={other}", ok=False, out=str(tmp_path / "eval_other")),
    )
    report = json.loads((tmp_path / "eval_file" / "eval.json").read_text())["results"]
    assert list(report) == [str(file)] and report[str(file)]["examples"] == 2
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"{other}:1: header has no column 'title' (columns found: 'sentence', 'label')" in result.stderr


def test_predict_text_stdin_and_file_formats(trained, tmp_path):
    work, data, run = trained
    ckpt = f"ckpt_path={run}/checkpoints/last.ckpt"
    sentences = tmp_path / "in.txt"
    sentences.write_text("Stocks rally\nJustin Bieber cancels tour\nNew study links sugar to disease\n")
    out = tmp_path / "preds.tsv"
    one, piped, result = in_parallel(  # three independent processes, two at a time
        lambda: _predict(work, data, ckpt, "text=Fed raises interest rates"),
        lambda: _predict(work, data, ckpt, stdin="Apple unveils new iPhone\n\nEbola outbreak spreads\n"),
        lambda: _predict(work, data, ckpt, f"input={sentences}", f"output={out}"),
    )
    (record,) = [json.loads(line) for line in one.stdout.splitlines()]
    assert record["text"] == "Fed raises interest rates"
    assert set(record["probs"]) == {"business", "science/technology", "entertainment", "health"}
    assert math.isclose(sum(record["probs"].values()), 1.0, abs_tol=1e-5)
    assert record["label"] == max(record["probs"], key=record["probs"].get)

    rows = [json.loads(line) for line in piped.stdout.splitlines()]
    assert [r["text"] for r in rows] == ["Apple unveils new iPhone", "", "Ebola outbreak spreads"]  # row i answers line i
    assert rows[1]["label"] is None and rows[1]["skipped"] == "empty line"
    assert "1 empty input line got a row with no label (line 2)" in piped.stderr

    rows = [line.split("\t") for line in out.read_text().splitlines()]
    assert rows[0] == ["text", "label", "p_business", "p_science/technology", "p_entertainment", "p_health"]
    assert len(rows) == 4 and all(math.isclose(sum(map(float, r[2:])), 1.0, abs_tol=1e-4) for r in rows[1:])
    assert re.search(r"predicted 3 sentences with .* in [\d.]+ s \([\d,]+ sentences/s\)", result.stderr)


@pytest.mark.slow
def test_predict_explain_gradient_x_input_on_words(trained):
    work, data, run = trained
    result = _predict(work, data, f"ckpt_path={run}/checkpoints/last.ckpt", "text=Fed raises zzzunseen rates", "explain=true")
    record = json.loads(result.stdout)
    assert record["method"] == "grad_x_input"
    assert record["tokens"] == ["fed", "raises", "<unk>", "rates"]
    assert len(record["importance"]) == 4 and any(v != 0 for v in record["importance"])


@pytest.mark.slow
def test_predict_explain_attention_weights(data_dir, tmp_path):
    run = _train(data_dir, tmp_path, "attn", "model=attention", "trainer.max_epochs=1")
    result = _predict(tmp_path, data_dir, f"ckpt_path={run}/checkpoints/last.ckpt", 'text=["Fed raises rates","Oscars"]', "explain=true")
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["method"] for r in records] == ["attention", "attention"]
    assert [len(r["tokens"]) for r in records] == [3, 1]
    for r in records:
        assert math.isclose(sum(r["importance"]), 1.0, abs_tol=1e-5)


@pytest.mark.slow
def test_multichannel_run_loads_and_explains(data_dir, tmp_path):
    """A Kim CNN-multichannel run: its checkpoint rebuilds both channels, and explain covers both."""
    import torch

    from textclass.models.embedding import MultichannelEmbedding

    run = _train(data_dir, tmp_path, "mc", "model=textcnn", "embeddings.multichannel=true")
    ckpt = run / "checkpoints" / "last.ckpt"
    state = torch.load(ckpt, map_location="cpu", weights_only=True)["state_dict"]
    embedding = load_run(ckpt).model.encoder.embedding
    assert isinstance(embedding, MultichannelEmbedding) and embedding.embedding_dim == 100  # 2 x GloVe 50d
    assert torch.equal(embedding.static.weight, state["model.encoder.embedding.static.weight"])
    assert torch.equal(embedding.tuned.weight, state["model.encoder.embedding.tuned.weight"])
    assert not torch.equal(embedding.static.weight, embedding.tuned.weight)  # two epochs of fine-tuning
    result = _predict(tmp_path, data_dir, f"ckpt_path={ckpt}", "text=Fed raises rates", "explain=true")
    record = json.loads(result.stdout)
    assert record["method"] == "grad_x_input" and record["tokens"] == ["fed", "raises", "rates"]
    assert len(record["importance"]) == 3 and all(math.isfinite(v) for v in record["importance"])


def _broken_copy(run: Path, tmp_path: Path, problem: str) -> Path:
    """A copy of `run` whose last.ckpt is unusable in the way `problem` names; returns the ckpt path."""
    shutil.copytree(run, tmp_path / "run")
    ckpt = tmp_path / "run" / "checkpoints" / "last.ckpt"
    if problem == "missing":
        ckpt.unlink()
    elif problem == "corrupt":
        ckpt.write_bytes(ckpt.read_bytes()[:1000])
    elif problem == "no_run_config":
        (tmp_path / "run" / "config.yaml").unlink()
    else:
        vocab = json.loads((tmp_path / "run" / "vocab.json").read_text())
        vocab["itos"].append("extra-word")
        (tmp_path / "run" / "vocab.json").write_text(json.dumps(vocab))
    return ckpt


BROKEN = {
    "missing": "checkpoint not found",
    "corrupt": "truncated or corrupt",
    "no_run_config": "no config.yaml",
    "other_vocabulary": "is not the vocabulary",
}


@pytest.mark.parametrize("problem", sorted(BROKEN))
def test_bad_checkpoints_raise_a_clear_error(trained, tmp_path, problem):
    ckpt = _broken_copy(trained[2], tmp_path, problem)
    with pytest.raises(ConfigError) as err:
        load_run(ckpt)
    assert BROKEN[problem] in str(err.value) and str(ckpt) in str(err.value)


@pytest.mark.slow
def test_corrupt_checkpoint_through_both_clis(trained, tmp_path):
    work, data, run = trained
    ckpt = _broken_copy(run, tmp_path, "corrupt")
    for result in in_parallel(
        lambda: _eval(work, data, f"ckpt_path={ckpt}", ok=False, out=str(tmp_path / "eval_out")),
        lambda: _predict(work, data, f"ckpt_path={ckpt}", "text=hello", ok=False),
    ):
        assert result.returncode == 2, result.stderr[-2000:]
        assert "truncated or corrupt" in result.stderr and str(ckpt) in result.stderr
        assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_predict_with_empty_input_says_so(trained, tmp_path):
    work, data, run = trained
    empty = tmp_path / "empty.txt"
    empty.write_text("\n  \n")
    result = _predict(work, data, f"ckpt_path={run}/checkpoints/last.ckpt", f"input={empty}", ok=False)
    assert result.returncode == 2 and "nothing to predict" in result.stderr and "Traceback" not in result.stderr
    assert result.stdout == ""


def test_a_checkpoint_of_the_earlier_layout_loads_the_same_model(tiny_run: TinyRun, tmp_path):
    """Runs trained before the model left the LightningModule hold its weights at the top of the
    state_dict (encoder.*, head.*), beside the metrics' states: they load as the same model."""
    import torch

    run = shutil.copytree(tiny_run.run, tmp_path / "run")
    ckpt = run / "checkpoints" / "selected.ckpt"
    state = torch.load(ckpt, map_location="cpu", weights_only=True)
    assert any(k.startswith("model.encoder.") for k in state["state_dict"])
    state["state_dict"] = {k.removeprefix("model."): v for k, v in state["state_dict"].items()}
    torch.save(state, ckpt)
    texts = ["Stocks fall", "a new phone", "rates rise again"]
    before, after = load_run(tiny_run.run).logits(texts), load_run(run).logits(texts)
    assert torch.equal(before, after)


def test_logits_come_back_in_the_texts_order_though_batched_by_length(tiny_run: TinyRun):
    """`logits` batches shortest first (less padding) and returns the rows in the texts' order: the
    same as scoring each text alone."""
    import torch

    run = load_run(tiny_run.run)
    texts = ["Stocks fall sharply as rates rise again in the markets", "phone", "rates rise again", "Stocks", "a new phone launch today"]
    alone = torch.cat([run.logits([text], 1) for text in texts])
    together = run.logits(texts, 2)
    assert together.shape == (5, len(run.labels))
    assert torch.allclose(together, alone, atol=1e-6)
    assert not torch.allclose(together[0], together[1])  # rows differ, so an order mix-up would show
