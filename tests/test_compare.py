"""`textclass-compare`: its statistics against scipy / statsmodels / scikit-learn on constructed
predictions, the data check, the leaderboard's marks, and the CLI on hand-made run and sweep
directories (quick) and on real tiny training runs (slow)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import f1_score
from statsmodels.stats.multitest import multipletests

from helpers.cli import cli_env, run_cli, run_ok, TinyRun
from textclass.reports.compare import BEHIND, NOT_COMPARED, NOT_SIGNIFICANT, Pair, SystemResult, correct_pairs, standings
from textclass.reports.stats import Tally, aso_eps_min, holm, mcnemar_test, paired_bootstrap, score, welch
from textclass.reports.systems import check_same_data, read_systems, setup_differences, system_names
from textclass.errors import DataError
from textclass.training.predictions import Predictions
from textclass.run_files import predictions_file

CLASSES = ["b", "e", "m", "t"]
DATA = "f" * 64  # the fingerprint every constructed system shares


def predictions(labels: np.ndarray, predicted: np.ndarray, data: str = DATA, split: str = "test") -> Predictions:
    classes = CLASSES if labels.ndim == 1 else [f"l{i}" for i in range(labels.shape[1])]
    probabilities = np.full((len(labels), len(classes)), 1 / len(classes), dtype=np.float32)
    return Predictions(split, np.arange(len(labels)), labels, probabilities, predicted, classes, data, "tiny")


def right_on(labels: np.ndarray, right: np.ndarray, data: str = DATA) -> Predictions:
    """Predictions that are right exactly where `right` is (wrong: the next class)."""
    return predictions(labels, np.where(right, labels, (labels + 1) % len(CLASSES)), data)


@pytest.fixture
def labels() -> np.ndarray:
    return np.random.default_rng(0).integers(0, len(CLASSES), 1000)


# --- single runs: bootstrap and McNemar -----------------------------------------------------------


def test_identical_systems_differ_by_nothing(labels):
    right = np.random.default_rng(1).random(1000) < 0.8
    a, b = right_on(labels, right), right_on(labels, right)
    boot = paired_bootstrap(a, b, "acc", 2000, seed=0)
    assert boot.difference == 0 and boot.ci == (0.0, 0.0) and boot.p == 1.0
    exact = mcnemar_test(a, b)
    assert exact.p == 1.0 and exact.a_only == exact.b_only == 0


def test_a_system_right_on_60_more_of_1000_is_significantly_better(labels):
    # B right on the first 800; A loses 20 of those and wins 80 others: 60 more right
    b_right = np.arange(1000) < 800
    a_right = b_right.copy()
    a_right[:20] = False
    a_right[800:880] = True
    a, b = right_on(labels, a_right), right_on(labels, b_right)
    boot = paired_bootstrap(a, b, "acc", 10_000, seed=0)
    assert boot.difference == pytest.approx(0.06)
    assert boot.ci[0] < 0.06 < boot.ci[1] and boot.ci[0] > 0
    assert boot.p < 0.001
    exact = mcnemar_test(a, b)
    assert (exact.a_only, exact.b_only) == (80, 20)
    assert exact.p == pytest.approx(stats.binomtest(80, 100, 0.5).pvalue) and exact.p < 0.001


def test_bootstrap_is_seeded_and_its_p_follows_the_shifted_null(labels):
    rng = np.random.default_rng(2)
    a, b = right_on(labels, rng.random(1000) < 0.80), right_on(labels, rng.random(1000) < 0.78)
    first, again = paired_bootstrap(a, b, "acc", 3000, seed=7), paired_bootstrap(a, b, "acc", 3000, seed=7)
    assert first == again
    # a gap of about one standard error: neither tiny nor near 1
    assert 0.01 < first.p < 0.9


# --- the metric ------------------------------------------------------------------------------------


def test_f1_equals_sklearn_also_on_resamples(labels):
    rng = np.random.default_rng(3)
    predicted = np.where(rng.random(1000) < 0.7, labels, rng.integers(0, len(CLASSES), 1000))
    p = predictions(labels, predicted)
    assert score(p, "f1") == pytest.approx(f1_score(labels, predicted, average="macro"))
    assert score(p, "acc") == pytest.approx(np.mean(labels == predicted))
    tally = Tally.of(p, "f1")
    # small resamples, so some drop a class entirely (sklearn then leaves it out of the mean)
    rows = rng.integers(0, 1000, (50, 12))
    resampled = tally.metric(tally.codes[rows], "f1")
    expected = [f1_score(labels[r], predicted[r], average="macro") for r in rows]
    np.testing.assert_allclose(resampled, expected)


def test_multi_label_f1_and_subset_accuracy_equal_sklearn():
    rng = np.random.default_rng(4)
    labels = (rng.random((300, 5)) < 0.3).astype(np.uint8)
    predicted = np.where(rng.random((300, 5)) < 0.8, labels, 1 - labels).astype(np.uint8)
    p = predictions(labels, predicted)
    assert score(p, "f1") == pytest.approx(f1_score(labels, predicted, average="macro"))
    assert score(p, "acc") == pytest.approx(np.mean((labels == predicted).all(axis=1)))
    tally = Tally.of(p, "f1")
    rows = rng.integers(0, 300, (20, 300))
    expected = [f1_score(labels[r], predicted[r], average="macro") for r in rows]
    np.testing.assert_allclose(tally.metric(tally.codes[rows], "f1"), expected)


# --- seed groups: Welch and ASO --------------------------------------------------------------------


def test_welch_equals_scipy():
    a, b = [0.81, 0.83, 0.80, 0.84, 0.82], [0.79, 0.80, 0.78, 0.81]
    t, reference = welch(a, b), stats.ttest_ind(a, b, equal_var=False)
    assert t.p == pytest.approx(reference.pvalue)
    assert t.difference == pytest.approx(np.mean(a) - np.mean(b))
    ci = reference.confidence_interval(0.95)
    assert t.ci == pytest.approx((ci.low, ci.high))
    # equal constant scores: no evidence of a difference (scipy's nan)
    assert welch([0.8, 0.8], [0.8, 0.8]).p == 1.0


def test_aso_eps_min_of_clearly_better_and_of_identical_distributions():
    rng = np.random.default_rng(0)
    better, worse = list(rng.normal(0.9, 0.01, 5)), list(rng.normal(0.8, 0.01, 5))
    assert aso_eps_min(better, worse, alpha=0.05, comparisons=1, seed=0) < 0.05
    # the same five scores in another order: one distribution (two draws of five can land near τ)
    same = list(rng.normal(0.8, 0.01, 5))
    assert aso_eps_min(same, same[::-1], alpha=0.05, comparisons=1, seed=0) > 0.5


# --- Holm and the leaderboard ----------------------------------------------------------------------


def test_holm_matches_statsmodels_on_a_known_vector():
    p = [0.01, 0.04, 0.03, 0.005]
    reject, adjusted = holm(p, 0.05)
    assert reject == [True, False, False, True]
    assert adjusted == pytest.approx([0.03, 0.06, 0.06, 0.02])
    expected = multipletests(p, alpha=0.05, method="holm")
    assert reject == list(expected[0]) and adjusted == pytest.approx(list(expected[1]))


def test_leaderboard_marks_follow_holm():
    results = [SystemResult(name, "run", name, 1, s, 0.01, []) for name, s in [("L", 0.9), ("B", 0.88), ("C", 0.8), ("D", 0.79)]]
    pairs = [
        Pair("L", "B", "bootstrap", 0.02, p=0.04),  # significant alone, not after Holm (0.04 · 2)
        Pair("L", "C", "bootstrap", 0.10, p=0.001),
        Pair("L", "D", None, 0.11, note="not compared"),
        Pair("B", "C", "bootstrap", 0.08, p=0.5),
        Pair("B", "D", None, 0.09),
        Pair("C", "D", None, 0.01),
    ]
    corrected = correct_pairs(pairs, 0.05)
    assert [q.p_holm for q in corrected if q.p is not None] == pytest.approx([0.08, 0.003, 0.5])
    assert [q.significant for q in corrected] == [False, True, None, False, None, None]
    assert [s.mark for s in standings(results, corrected)] == ["leader", NOT_SIGNIFICANT, BEHIND, NOT_COMPARED]


# --- systems and their data -------------------------------------------------------------------------


def fake_run(path: Path, p: Predictions) -> Path:
    """A run directory as textclass-compare reads it: config.yaml and the saved predictions."""
    path.mkdir(parents=True)
    (path / "config.yaml").write_text("{}\n")
    p.save(path / predictions_file(p.split))
    return path


def fake_sweep(path: Path, jobs: list[tuple[list[str], Predictions]]) -> Path:
    """A multirun directory: multirun.yaml and one finished job per (overrides, predictions)."""
    path.mkdir(parents=True)
    (path / "multirun.yaml").write_text("{}\n")
    for num, (overrides, p) in enumerate(jobs):
        job = fake_run(path / str(num), p)
        (job / ".hydra").mkdir()
        (job / ".hydra" / "hydra.yaml").write_text(f"hydra:\n  job:\n    num: {num}\n")
        (job / ".hydra" / "overrides.yaml").write_text("".join(f"- {o}\n" for o in overrides))
        (job / "metrics.json").write_text("{}")
    return path


def test_different_data_is_an_error_naming_both_systems(tmp_path, labels):
    right = np.ones(1000, bool)
    fake_run(tmp_path / "bow", right_on(labels, right))
    fake_run(tmp_path / "cnn", right_on(labels, right, data="0" * 64))
    systems = read_systems([str(tmp_path / "bow"), str(tmp_path / "cnn")], "test")
    with pytest.raises(DataError) as err:
        check_same_data(systems)
    message = str(err.value)
    assert "bow and cnn were scored on different examples" in message
    assert systems[0].runs[0].predictions.describe() in message and systems[1].runs[0].predictions.describe() in message


def test_groups_are_named_by_what_sets_them_apart():
    overrides = [
        ["model=cnn", "optimizer.lr=0.1", "seed=1"],
        ["+model=cnn", "optimizer.lr=0.2", "seed=2"],
        ["model=bow", "optimizer.lr=0.1", "data.fold=0"],
    ]
    assert setup_differences(overrides) == ["model=cnn optimizer.lr=0.1", "+model=cnn optimizer.lr=0.2", "model=bow optimizer.lr=0.1"]
    assert setup_differences([["model=cnn", "seed=1"], ["model=bow", "seed=1"]]) == ["model=cnn", "model=bow"]
    assert setup_differences([["model=cnn", "seed=1"]]) == [""]


def test_system_names_are_short_and_prefixed_by_their_argument_when_they_clash(tmp_path):
    found = [("sweep1", "model=cnn"), ("sweep2", "model=cnn"), ("sweep2", "model=bow"), ("seeds", "")]
    runs = [("a/run", None, [Path("a/run")]), ("b/run", None, [Path("b/run")])]
    names = system_names([*runs, *((source, key, [Path(source)]) for source, key in found)])
    # runs without overrides files are named by their directories, told apart by their paths
    assert names == ["run (a/run)", "run (b/run)", "sweep1 model=cnn", "sweep2 model=cnn", "model=bow", "seeds"]
    # a sweep's job directory is a number: its sweep's name goes with it
    jobs = [Path("x/sweep/3"), Path("x/sweep/../sweep/4/")]
    assert system_names([(str(job), None, [job]) for job in jobs]) == ["sweep/3", "sweep/4"]
    # runs are named by the overrides that set them apart, the shared ones left out
    for name, model in (("lstm_run", "lstm"), ("gru_run", "gru")):
        (tmp_path / name / ".hydra").mkdir(parents=True)
        (tmp_path / name / ".hydra" / "overrides.yaml").write_text(f"- data=sst2\n- model={model}\n- seed=1\n")
    dirs = [tmp_path / "lstm_run", tmp_path / "gru_run"]
    assert system_names([(str(d), None, [d]) for d in dirs]) == ["model=lstm", "model=gru"]


# --- the CLI ------------------------------------------------------------------------------------------


@pytest.fixture
def systems_dir(tmp_path, labels) -> Path:
    """Two single runs (acc 0.86 and 0.80) and a sweep of two seed groups (model=big clearly ahead)."""
    rng = np.random.default_rng(5)
    fake_run(tmp_path / "best", right_on(labels, np.arange(1000) < 860))
    fake_run(tmp_path / "base", right_on(labels, np.arange(1000) < 800))
    jobs = [
        ([f"model={m}", "trainer.max_epochs=5", f"seed={s}"], right_on(labels, rng.random(1000) < q))
        for m, q in [("big", 0.9), ("small", 0.7)]
        for s in (1, 2, 3)
    ]
    fake_sweep(tmp_path / "sweep", jobs)
    return tmp_path


def test_cli_compares_runs_and_seed_groups(systems_dir):
    result = run_ok(["textclass-compare", "best", "base", "sweep", "resamples=2000", "output=out"], cwd=systems_dir)
    report = json.loads((systems_dir / "out" / "compare.json").read_text())
    assert result.stdout == (systems_dir / "out" / "compare.md").read_text()
    assert "out/compare.md" in result.stderr
    assert (report["split"], report["metric"], report["examples"], report["data"]) == ("test", "acc", 1000, DATA)
    assert [s["name"] for s in report["leaderboard"]] == ["model=big", "best", "base", "model=small"]
    big, best = report["systems"][0], report["systems"][1]
    assert big["kind"] == "seeds" and big["n"] == 3 and len(big["runs"]) == 3
    assert big["spread"] == pytest.approx(np.std([r["score"] for r in big["runs"]], ddof=1))
    assert best["kind"] == "run" and best["score"] == 0.86 and 0 < best["spread"] < 0.05
    pairs = {(q["a"], q["b"]): q for q in report["pairs"]}
    assert len(pairs) == 6
    runs = pairs["best", "base"]
    assert runs["test"] == "bootstrap" and runs["difference"] == pytest.approx(0.06) and runs["significant"]
    assert (runs["a_only"], runs["b_only"]) == (60, 0) and runs["mcnemar_p"] < 0.001
    groups = pairs["model=big", "model=small"]
    assert groups["test"] == "welch" and groups["aso_eps_min"] < 0.2 and groups["significant"]
    mixed = pairs["model=big", "best"]
    assert mixed["test"] is None and mixed["p"] is None
    assert mixed["note"] == "not compared: 1 run vs 3 seeds; train both with the same seeds"
    ps = [q["p"] for q in report["pairs"] if q["p"] is not None]
    assert [q["p_holm"] for q in report["pairs"] if q["p"] is not None] == pytest.approx(list(multipletests(ps, 0.05, method="holm")[1]))
    assert [s["mark"] for s in report["leaderboard"]] == ["leader", NOT_COMPARED, NOT_COMPARED, BEHIND]
    assert "## Leaderboard" in result.stdout and "| 1 | model=big |" in result.stdout
    assert "not compared: 1 run vs 3 seeds" in result.stdout and "1000 examples" in result.stdout


def test_cli_f1_on_two_runs_and_the_default_output_folder(systems_dir):
    result = run_ok(["textclass-compare", "best", "base", "metric=f1", "resamples=500"], cwd=systems_dir)
    (folder,) = (systems_dir / "outputs" / "compare").iterdir()
    report = json.loads((folder / "compare.json").read_text())
    best = predictions_of(systems_dir / "best")
    assert report["systems"][0]["score"] == pytest.approx(f1_score(best.labels, best.predicted, average="macro"))
    assert report["pairs"][0]["test"] == "bootstrap" and report["leaderboard"][1]["mark"] == BEHIND
    assert str(folder.relative_to(systems_dir)) in result.stderr


def predictions_of(run_dir: Path) -> Predictions:
    return Predictions.load(run_dir / predictions_file("test"))


@pytest.mark.parametrize(
    "args, message",
    [
        (["best"], "1 system(s) to compare"),
        (["best", "base", "metrics=f1"], "unknown option metrics=...; the options are split=, metric=, alpha="),
        (["best", "base", "alpha=2"], "alpha=2"),
        (["best", "nothing"], "nothing: no such directory"),
        (["best", "plain"], "plain: neither a run directory"),
        (["best", "base", "split=valid"], "no predictions_valid.npz"),
        (["best", "other_data"], "best and other_data were scored on different examples: tiny test (1000 examples, data ffffffffffff) vs"),
        (["best", "base", "output=best/config.yaml"], "output=best/config.yaml: a file, not a folder"),
    ],
    ids=["one_system", "unknown_key", "bad_alpha", "missing_dir", "not_a_run", "missing_split", "other_data", "output_is_a_file"],
)
def test_cli_user_errors_are_one_line(systems_dir, labels, args, message):
    (systems_dir / "plain").mkdir()
    fake_run(systems_dir / "other_data", right_on(labels, np.ones(1000, bool), data="0" * 64))
    result = run_cli(["textclass-compare", *args], cwd=systems_dir)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("error: ") and message in result.stderr and "Traceback" not in result.stderr


# --- real runs ----------------------------------------------------------------------------------------


@pytest.mark.slow
def test_cli_on_two_real_tiny_runs(tiny_run: TinyRun, tmp_path):
    shutil.copytree(tiny_run.run, tmp_path / "bow")
    run_ok(
        ["textclass-train", "model=cnn", "trainer.max_epochs=2", "data.batch_size=4", "logger=[]", "hydra.run.dir=cnn"],
        cwd=tmp_path,
        env=cli_env(tiny_run.data, tmp_path),
    )
    run_ok(["textclass-compare", "bow", "cnn", "output=out"], cwd=tmp_path)
    report = json.loads((tmp_path / "out" / "compare.json").read_text())
    assert report["examples"] == len(predictions_of(tmp_path / "bow")) > 0
    # named by what sets them apart: the model (a default the bow run never typed) and their own overrides
    assert {s["name"] for s in report["systems"]} == {"model=bow trainer.accelerator=cpu", "model=cnn logger=[]"}
    (pair,) = report["pairs"]
    assert pair["test"] == "bootstrap" and 0 <= pair["p"] <= 1 and pair["mcnemar_p"] is not None
    for system in report["systems"]:
        (run,) = system["runs"]
        metrics = json.loads((Path(run["dir"]) / "metrics.json").read_text())
        assert system["score"] == pytest.approx(metrics["test/acc"])


@pytest.mark.slow
def test_cli_on_a_real_sweep_of_seed_groups(tiny_run: TinyRun, tmp_path):
    args = ["textclass-train", "-m", "model=bow,cnn", "seed=1,2", "trainer.max_epochs=1", "data.batch_size=4", "logger=[]"]
    args.append("hydra.sweep.dir=sweep")
    run_ok(args, cwd=tmp_path, env=cli_env(tiny_run.data, tmp_path))
    run_ok(["textclass-compare", "sweep", "split=valid", "output=out"], cwd=tmp_path)
    report = json.loads((tmp_path / "out" / "compare.json").read_text())
    assert {s["name"] for s in report["systems"]} == {"model=bow", "model=cnn"}
    assert all(s["kind"] == "seeds" and s["n"] == 2 for s in report["systems"])
    (pair,) = report["pairs"]
    assert pair["test"] == "welch" and 0 <= pair["aso_eps_min"] <= 1
