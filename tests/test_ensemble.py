"""`textclass-ensemble`: an ensemble of one run is that run (its predictions files, eval, predict and
compare through the CLIs, on conftest's shared tiny run), an ensemble of two runs of different
architectures averages their probabilities (slow: one more tiny training), members that disagree on
classes or examples are one clear error, and what needs one model refuses an ensemble."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

import textclass
from helpers.cli import cli_env, in_parallel, run_cli, run_ok, TinyRun
from helpers.data import NEWS_ROWS
from textclass.training.checkpoint import load_run, selected_checkpoint
from textclass.ensemble import Options, make_ensemble, mean_logits, refuse_ensemble
from textclass.errors import ConfigError, DataError
from textclass.metric_names import TEST_ACC, TEST_F1, VAL_ACC_SELECTED, VAL_F1_SELECTED
from textclass.training.predictions import Predictions, load_predictions
from textclass.run_files import LABELS_FILE, RUN_CONFIG, predictions_file

SPLITS = ("valid", "test")
TEXTS = [title for _, title in NEWS_ROWS] + ["zzzq an unseen headline"]


def _predicted_probs(stdout: str) -> np.ndarray:
    """The probabilities of textclass-predict's JSON lines, [N, C] in the classes' order."""
    return np.array([list(json.loads(line)["probs"].values()) for line in stdout.splitlines()])


def _table_rows(stdout: str) -> dict[str, list[str]]:
    """The printed table's cells by system name."""
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in stdout.splitlines() if line.startswith("| ") and "---" not in line]
    return {row[0]: row[1:] for row in rows[1:]}


@pytest.fixture(scope="module")
def one_run_ensemble(tiny_run: TinyRun, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """(the ensemble directory of the shared tiny run alone, the command's stdout)."""
    work = tmp_path_factory.mktemp("ensemble_of_one")
    result = run_ok(["textclass-ensemble", str(tiny_run.run), "output=ens"], cwd=work, env=cli_env(tiny_run.data, work))
    return work / "ens", result.stdout


def test_mean_logits_give_back_the_mean_probability():
    generator = torch.Generator().manual_seed(0)
    members = [torch.randn(6, 4, generator=generator) for _ in range(3)]
    softmaxes = [z.softmax(-1) for z in members]
    assert torch.allclose(mean_logits(softmaxes, multi_label=False).softmax(-1), torch.stack(softmaxes).mean(0), atol=1e-6)
    sigmoids = [z.sigmoid() for z in members] + [torch.ones(6, 4)]  # a certain member keeps the logits finite
    logits = mean_logits(sigmoids, multi_label=True)
    assert torch.isfinite(logits).all()
    assert torch.allclose(logits.sigmoid(), torch.stack(sigmoids).mean(0), atol=1e-6)


def test_an_ensemble_of_one_run_equals_that_run(tiny_run: TinyRun, one_run_ensemble, tmp_path):
    ens, stdout = one_run_ensemble
    run = tiny_run.run
    rows = _table_rows(stdout)
    assert set(rows) == {"run", "ensemble"} and rows["run"] == rows["ensemble"]
    for split in SPLITS:
        mine, theirs = Predictions.load(ens / predictions_file(split)), load_predictions(run, split)
        assert (mine.data, mine.class_names, mine.dataset) == (theirs.data, theirs.class_names, theirs.dataset)
        np.testing.assert_array_equal(mine.ids, theirs.ids)
        np.testing.assert_array_equal(mine.labels, theirs.labels)
        np.testing.assert_allclose(mine.probabilities, theirs.probabilities, atol=1e-6)
        np.testing.assert_array_equal(mine.predicted, theirs.predicted)
    manifest = OmegaConf.load(ens / RUN_CONFIG).ensemble
    assert [m.checkpoint for m in manifest.members] == [str(selected_checkpoint(run))]
    assert json.loads((ens / LABELS_FILE).read_text()) == json.loads((run / LABELS_FILE).read_text())

    env = cli_env(tiny_run.data, tmp_path)
    text_arg = "text=[" + ",".join(json.dumps(t) for t in TEXTS) + "]"
    evaluated, predicted, compared = in_parallel(
        lambda: run_ok(["textclass-eval", f"ckpt_path={ens}", "splits=[valid,test]", "hydra.run.dir=eval_out"], cwd=tmp_path, env=env),
        lambda: run_ok(["textclass-predict", f"ckpt_path={ens}", text_arg], cwd=tmp_path, env=env),
        lambda: run_ok(["textclass-compare", str(ens), str(run), "output=compare_out"], cwd=tmp_path),
    )
    # eval: the numbers the run logged for its selected checkpoint
    logged = json.loads((run / "metrics.json").read_text())
    report = json.loads((tmp_path / "eval_out" / "eval.json").read_text())["results"]
    assert report["valid"]["acc"] == pytest.approx(logged[VAL_ACC_SELECTED], abs=1e-6)
    assert report["valid"]["f1"] == pytest.approx(logged[VAL_F1_SELECTED], abs=1e-6)
    assert report["test"]["acc"] == pytest.approx(logged[TEST_ACC], abs=1e-6)
    assert report["test"]["f1"] == pytest.approx(logged[TEST_F1], abs=1e-6)
    # predict: the run's probabilities
    single = textclass.load(selected_checkpoint(run))
    np.testing.assert_allclose(_predicted_probs(predicted.stdout), single.predict_proba(TEXTS), atol=1e-6)
    # compare: no difference at all
    (pair,) = json.loads((tmp_path / "compare_out" / "compare.json").read_text())["pairs"]
    assert pair["difference"] == 0 and pair["a_only"] == pair["b_only"] == 0


def test_what_needs_one_model_refuses_an_ensemble(one_run_ensemble):
    ens, _ = one_run_ensemble
    with pytest.raises(ConfigError, match="format=onnx needs one model, and .* is an ensemble of 1 run"):
        refuse_ensemble(ens, "format=onnx")  # what textclass-export asks first
    with pytest.raises(ConfigError, match="is not a textclass-train run directory"):
        load_run(ens)  # the loader of single runs knows nothing of ensembles, only what a run is
    classifier = textclass.load(ens)
    assert len(classifier.predict(TEXTS[:2])) == 2
    with pytest.raises(ConfigError, match="explain=true needs one model"):
        classifier.predict(TEXTS[:2], explain=True)


def _copy_run(run: Path, to: Path) -> Path:
    shutil.copytree(run, to, ignore=shutil.ignore_patterns("tensorboard", "*.png"))
    return to


def test_members_with_other_classes_are_one_clear_error(tiny_run: TinyRun, tmp_path):
    other = _copy_run(tiny_run.run, tmp_path / "other")
    labels = json.loads((other / LABELS_FILE).read_text())
    labels["names"] = labels["names"][::-1]  # as if trained with data.dataset.labels in another order
    (other / LABELS_FILE).write_text(json.dumps(labels))
    result = run_cli(["textclass-ensemble", str(tiny_run.run), str(other), "output=ens"], cwd=tmp_path, env=cli_env(tiny_run.data, tmp_path))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    (line,) = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert "run and other cannot be ensembled: they have different classes" in line
    assert str(labels["names"]) in line
    assert not (tmp_path / "ens").exists()


def test_members_scored_on_other_examples_are_one_clear_error(tiny_run: TinyRun, tmp_path):
    other = _copy_run(tiny_run.run, tmp_path / "other")
    cfg = OmegaConf.load(other / RUN_CONFIG)
    cfg.data.max_examples = 5  # its splits are the first 5 examples of each
    (other / RUN_CONFIG).write_text(OmegaConf.to_yaml(cfg))
    with pytest.raises(DataError, match=r"run and other cannot be ensembled: their valid splits are different examples \(news, 10 examples"):
        make_ensemble([str(tiny_run.run), str(other)], Options(output=None, batch_size=256), tmp_path / "ens")


@pytest.mark.slow
def test_an_ensemble_of_two_runs_averages_their_probabilities(tiny_run: TinyRun, tmp_path):
    env = cli_env(tiny_run.data, tmp_path)
    run_ok(["textclass-train", "model=cnn", "trainer.max_epochs=2", "data.batch_size=4", "logger=[]", "hydra.run.dir=cnn"], cwd=tmp_path, env=env)
    members = [tiny_run.run, tmp_path / "cnn"]
    result = run_ok(["textclass-ensemble", *map(str, members), "output=ens"], cwd=tmp_path, env=env)
    ens = tmp_path / "ens"
    # members named by what sets them apart (their model, and their own overrides)
    assert set(_table_rows(result.stdout)) == {"model=bow trainer.accelerator=cpu", "model=cnn logger=[]", "ensemble"}

    hand = np.mean([textclass.load(selected_checkpoint(m)).predict_proba(TEXTS) for m in members], axis=0)
    assert not np.allclose(hand, textclass.load(selected_checkpoint(members[0])).predict_proba(TEXTS), atol=1e-3)
    np.testing.assert_allclose(textclass.load(ens).predict_proba(TEXTS), hand, atol=1e-6)
    (tmp_path / "texts.txt").write_text("\n".join(TEXTS) + "\n")
    predicted, evaluated = in_parallel(
        lambda: run_ok(["textclass-predict", f"ckpt_path={ens}", "input=texts.txt"], cwd=tmp_path, env=env),
        lambda: run_ok(["textclass-eval", f"ckpt_path={ens}", "splits=[test]", "hydra.run.dir=eval_out"], cwd=tmp_path, env=env),
    )
    np.testing.assert_allclose(_predicted_probs(predicted.stdout), hand, atol=1e-6)

    saved = [load_predictions(m, "test") for m in members]
    mine = Predictions.load(ens / predictions_file("test"))
    mean = np.mean([p.probabilities for p in saved], axis=0)
    np.testing.assert_allclose(mine.probabilities, mean, atol=1e-6)
    np.testing.assert_array_equal(mine.predicted, mean.argmax(-1))
    report = json.loads((tmp_path / "eval_out" / "eval.json").read_text())["results"]
    assert report["test"]["acc"] == pytest.approx(float((mean.argmax(-1) == mine.labels).mean()), abs=1e-6)
