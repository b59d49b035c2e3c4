"""Hyperparameter search with the textclass_optuna sweeper: the real CLI, a real SQLite study, tiny data.

Each CLI test runs `textclass-train -m` in a subprocess and reads the study back from its SQLite file
(slow); the search space parser, Optuna bookkeeping and best_params.yaml are tested in-process (quick).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
import yaml
from hydra import compose, initialize_config_dir
from hydra.core.utils import JobReturn, JobStatus
from omegaconf import OmegaConf
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState

from helpers.cli import cli_env, run_cli, run_ok
from helpers.paths import CONF
from helpers.inprocess import run_main
from textclass.config.compose import CONFIG_DIR
from textclass.search.sweeper import FAIL_REASON, tell
from textclass.errors import ConfigError
from textclass.search.results import best_params_yaml, objective_text
from textclass.search.space import parse_override, parse_search_space
from textclass.search.storage import open_storage

SWEEPER = ["hydra/sweeper=textclass_optuna", "hydra.sweeper.heartbeat_interval=1"]
QUIET = ["trainer.enable_progress_bar=false", "logger=[]", "callbacks.model_checkpoint=null"]


def _study(path: Path, name: str = "train") -> optuna.Study:
    # open_storage: a test reading the file while the sweeper creates it races for the schema too
    return optuna.load_study(study_name=name, storage=open_storage(f"sqlite:///{path}"))


def _states(study: optuna.Study) -> dict[int, str]:
    return {t.number: t.state.name for t in study.trials}


def _complete_count(db: Path) -> int:
    """COMPLETE trials in the study, 0 while the sweeper has not created it yet."""
    try:
        return sum(s == "COMPLETE" for s in _states(_study(db)).values()) if db.exists() else 0
    except KeyError:  # the file is there, the study not yet
        return 0


# ---------------------------------------------------------------------------------------------
# the search space parser
# ---------------------------------------------------------------------------------------------


def test_search_space_every_syntax():
    space = parse_search_space(
        {
            "a": "interval(0.1, 1)",
            "b": "int(interval(1, 5))",
            "c": "tag(log, interval(1e-4, 1e-1))",
            "d": "range(100, 400, 100)",
            "e": "choice(adam, sgd)",
            "f": "range(0.0, 0.6, 0.1)",
            "g": "3",
            "h": "int(tag(log, interval(1, 64)))",
            "i": "choice([2, 3, 4], [3, 4, 5])",
            "j": "choice({a: 1}, {a: 2, b: x})",
        },
        ["e=sgd,adagrad", "model=choice(bow, cnn)", "trainer.max_epochs=2"],
    )
    assert space.distributions == {
        "a": FloatDistribution(0.1, 1.0),
        "b": IntDistribution(1, 5),
        "c": FloatDistribution(1e-4, 1e-1, log=True),
        "d": IntDistribution(100, 300, step=100),  # range() excludes its end, as Hydra's and Python's
        "e": CategoricalDistribution(["sgd", "adagrad"]),  # the command line wins over the config
        "f": FloatDistribution(0.0, 0.5, step=0.1),
        "h": IntDistribution(1, 64, log=True),
        "i": CategoricalDistribution(["[2,3,4]", "[3,4,5]"]),  # Optuna stores a list choice as its override text
        "j": CategoricalDistribution(["{a:1}", "{a:2,b:x}"]),
        "model": CategoricalDistribution(["bow", "cnn"]),
    }
    assert space.values({"i": "[3,4,5]", "j": "{a:2,b:x}", "e": "sgd"}) == {"i": [3, 4, 5], "j": {"a": 2, "b": "x"}, "e": "sgd"}
    for key, text in (("i", "[3,4,5]"), ("j", "{a:2,b:x}")):  # the stored text is an override Hydra reads back
        assert parse_override(f"{key}={text}").value() == space.values({key: text})[key]
    assert space.fixed == ["g=3", "trainer.max_epochs=2"]
    assert space.fixed_values() == {"g": 3, "trainer.max_epochs": 2}
    assert space.overrides({"a": 0.5, "e": "sgd", "i": "[2,3,4]", "x": "two words", "y": True}) == [
        "a=0.5", "e=sgd", "i=[2,3,4]", "x='two words'", "y=true", "g=3", "trainer.max_epochs=2"
    ]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("x=intervl(1, 2)", "Unknown function 'intervl'"),
        ("x=interval(1, 2", "cannot parse"),
        ("x=choice()", "empty choice"),
        ("x=interval(2, 1)", "interval(2.0, 1.0) is empty"),
        ("x=tag(log, interval(0, 1))", "log-scale interval must be positive"),
        ("x=range(5, 1)", "range(5, 1, 1) is empty"),
        ("x=tag(log, range(1, 5))", "applies to interval(), not range()"),
        ("x=glob(*)", "glob sweeps are not supported"),
        ("x=choice(a, b, a)", "lists a value twice"),
        ("x=choice(null, 1)", "NoneType is incompatible"),
    ],
)
def test_search_space_rejects_bad_syntax(line, message):
    with pytest.raises(ConfigError, match=r"search space") as err:
        parse_search_space({}, [line])
    assert message in str(err.value)


# ---------------------------------------------------------------------------------------------
# telling job outcomes to Optuna (Hydra JobReturn objects, an in-memory study)
# ---------------------------------------------------------------------------------------------


def _job(status: JobStatus, value, tmp_path: Path) -> JobReturn:
    job = JobReturn(status=status)
    job.return_value = value  # the public setter (what a launcher sets)
    job.hydra_cfg = OmegaConf.create({"hydra": {"runtime": {"output_dir": str(tmp_path)}}})
    return job


def test_tell_maps_job_outcomes_to_trial_states(tmp_path):
    study = optuna.create_study()
    outcomes = [
        (JobStatus.COMPLETED, 0.5, "COMPLETE", None),
        (JobStatus.COMPLETED, float("nan"), "FAIL", "not finite"),
        (JobStatus.COMPLETED, None, "FAIL", "error"),  # optimized_metric: null
        (JobStatus.FAILED, optuna.TrialPruned("after epoch 0"), "PRUNED", None),
        (JobStatus.FAILED, RuntimeError("boom"), "FAIL", "error"),
    ]
    for status, value, state, reason in outcomes:
        trial = study.ask({"x": FloatDistribution(0, 1)})
        tell(study, trial, _job(status, value, tmp_path), ["minimize"], ["val/loss"])
        frozen = study.trials[trial.number]
        assert (frozen.state.name, frozen.user_attrs.get(FAIL_REASON)) == (state, reason), value
    assert study.trials[0].value == 0.5
    assert "RuntimeError: boom" in (tmp_path / "error.log").read_text()  # the failed job's traceback


def test_best_params_yaml_is_an_experiment(tmp_path):
    study = optuna.create_study(study_name="s")
    trial = study.ask({"model": CategoricalDistribution(["bow", "cnn"]), "optimizer.lr": FloatDistribution(0.001, 0.1)})
    study.tell(trial, 0.25)
    params = {"trainer.max_epochs": 3, **trial.params}
    value = objective_text([0.25], ["val/loss"], ["minimize"])
    assert value == "val/loss 0.25 (minimized)"
    text = best_params_yaml(study, study.best_trial, params, groups={"model", "data"}, base_overrides=["data=sst2"], objective=value)
    assert text.startswith("# @package _global_\n")
    assert "trial 0, val/loss 0.25 (minimized)" in text.splitlines()[1]
    assert "textclass train --config-dir <your config folder> data=sst2 experiment=<name>" in text
    config = yaml.safe_load(text)
    assert config["defaults"] == [{"override /model": trial.params["model"]}]
    assert config["optimizer"]["lr"] == trial.params["optimizer.lr"] and config["trainer"]["max_epochs"] == 3


def test_best_params_of_a_search_over_an_experiment_include_it(tmp_path):
    """`experiment=sst2_bow_frozen` in the search's command becomes an include, not a second experiment=."""
    study = optuna.create_study(study_name="s", direction="maximize")
    trial = study.ask({"optimizer.lr": FloatDistribution(0.001, 0.1)})
    study.tell(trial, 0.7)
    value = objective_text([0.7], ["val/acc"], ["maximize"])
    text = best_params_yaml(study, study.best_trial, trial.params, groups={"model"}, base_overrides=["experiment=sst2_bow_frozen", "trainer.max_epochs=15"], objective=value)
    assert "val/acc 0.7 (maximized)" in text
    assert "#   textclass train --config-dir <your config folder> trainer.max_epochs=15 experiment=<name>" in text
    (tmp_path / "experiment").mkdir()
    (tmp_path / "experiment" / "found.yaml").write_text(text)
    with initialize_config_dir(version_base="1.3", config_dir=str(CONF)):
        cfg = compose("train", overrides=["experiment=found", "trainer.max_epochs=15", f"hydra.searchpath=[file://{tmp_path}]"])
    assert cfg.embeddings.freeze is True and cfg.data.dataset.name == "sst2"  # from sst2_bow_frozen
    assert cfg.optimizer.lr == trial.params["optimizer.lr"]  # the found value over the experiment's


@pytest.mark.slow
def test_processes_creating_one_new_database_at_once_all_open_it(tmp_path):
    """The race behind a CI failure: whoever loses CREATE TABLE on a new SQLite file opens it again."""
    script = "import sys; from textclass.search.storage import open_storage; open_storage(sys.argv[1]).get_all_studies()"
    for attempt in range(6):  # a race: several fresh files make losing it likely
        url = f"sqlite:///{tmp_path / f'new{attempt}.db'}"
        processes = [subprocess.Popen([sys.executable, "-c", script, url], stderr=subprocess.PIPE, text=True) for _ in range(4)]
        for process in processes:
            _, stderr = process.communicate(timeout=120)
            assert process.returncode == 0, stderr[-2000:]


# ---------------------------------------------------------------------------------------------
# the real CLI
# ---------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_bad_sweeper_settings_are_one_error_line(data_dir, tmp_path):
    for setting, message in [
        ("hydra.sweeper.storage=nosuchdb://x", "hydra.sweeper.storage=nosuchdb://x: cannot open it"),
        ("hydra.sweeper.direction=upwards", "each must be minimize or maximize"),
        ("optimizer.lr=interval(1, 0)", "interval(1.0, 0.0) is empty"),
    ]:
        result = run_cli(["textclass-train", "-m", *SWEEPER, setting, "optimizer.lr=interval(0.001, 0.01)" if "optimizer" not in setting else "seed=1", "hydra.sweep.dir=sweep"],
                         cwd=tmp_path, env=cli_env(data_dir, tmp_path))
        assert result.returncode == 2, (setting, result.stderr[-2000:])
        assert "error: " in result.stderr and message in result.stderr, (setting, result.stderr[-2000:])
        assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_killed_sweep_resumes_to_total_and_best_params_work_as_experiment(data_dir, tmp_path):
    """4 trials asked for, killed (SIGKILL) after 2; re-run with n_trials=6 finishes the study at 6
    done trials, job numbers continuing; best_params.yaml then works as an experiment."""
    args = [*SWEEPER, "model=choice(bow, cnn)", "optimizer.lr=tag(log, interval(1e-3, 1e-1))", "trainer.max_epochs=2", *QUIET, "hydra.sweep.dir=sweep"]
    env = {**os.environ, **cli_env(data_dir, tmp_path)}
    script = Path(sys.executable).parent / "textclass-train"
    process = subprocess.Popen([str(script), "-m", *args, "hydra.sweeper.n_trials=4"], cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    db = tmp_path / "sweep" / "optuna.db"
    deadline = time.monotonic() + 300
    while _complete_count(db) < 2:
        assert process.poll() is None, "the sweep ended before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.2)
    process.send_signal(signal.SIGKILL)
    process.wait()
    before = _states(_study(db))
    assert sum(s == "COMPLETE" for s in before.values()) in (2, 3) and len(before) <= 4

    resumed = run_ok(["textclass-train", "-m", *args, "hydra.sweeper.n_trials=6"], cwd=tmp_path, env=env)
    study = _study(db)
    states = _states(study)
    complete = sorted(n for n, s in states.items() if s == "COMPLETE")
    assert len(complete) == 6
    assert {n: s for n, s in before.items() if s == "COMPLETE"}.items() <= states.items()  # earlier trials kept
    killed = [n for n, s in before.items() if s == "RUNNING"]
    for number in killed:  # the trial running when killed: failed by its lost heartbeat, not counted
        assert states[number] == "FAIL" and FAIL_REASON not in study.trials[number].user_attrs
    assert sorted(states) == list(range(len(states))) == list(range(6 + len(killed)))
    # job dirs are trial numbers: the resumed sweep continued after the killed one's
    for number in complete:
        metrics = json.loads((tmp_path / "sweep" / str(number) / "metrics.json").read_text())
        assert metrics["val/loss"] == pytest.approx(study.trials[number].value)
    assert f"{len(before) - len(killed)} of 6 trials done" in resumed.stderr + resumed.stdout

    rows = (tmp_path / "sweep" / "trials.csv").read_text().splitlines()
    assert len(rows) == 1 + len(states)
    for name in ("optimization_history.png", "param_importances.png"):
        assert (tmp_path / "sweep" / name).stat().st_size > 5_000, name

    best = study.best_trial
    experiment_dir = tmp_path / "extra" / "experiment"
    experiment_dir.mkdir(parents=True)
    shutil.copy(tmp_path / "sweep" / "best_params.yaml", experiment_dir / "tuned.yaml")
    composed = run_ok(["textclass-train", "--config-dir", str(tmp_path / "extra"), "experiment=tuned", "--cfg", "job", "--resolve"], cwd=tmp_path, env=env)
    config = yaml.safe_load(composed.stdout)
    assert config["optimizer"]["lr"] == pytest.approx(best.params["optimizer.lr"])
    expected_encoder = {"bow": "textclass.models.encoders.bow.BagOfEmbeddings", "cnn": "textclass.models.encoders.cnn.CNNEncoder"}[best.params["model"]]
    assert config["model"]["encoder"]["_target_"] == expected_encoder


@pytest.mark.slow
def test_failing_trial_is_recorded_and_the_sweep_goes_on(data_dir, tmp_path):
    """Brute force over three learning rates: lr=-1 exits with a config error (FAIL), the others complete."""
    result = run_ok(
        ["textclass-train", "-m", *SWEEPER, "hydra/sweeper/sampler=brute_force",
         "hydra.sweeper.n_trials=3", "hydra.sweeper.max_failure_rate=0.5", "optimizer.lr=choice(0.01, -1, 0.02)", "trainer.max_epochs=1", *QUIET, "hydra.sweep.dir=sweep"],
        cwd=tmp_path, env=cli_env(data_dir, tmp_path),
    )
    study = _study(tmp_path / "sweep" / "optuna.db")
    by_lr = {t.params["optimizer.lr"]: t for t in study.trials}
    assert sorted(by_lr) == [-1, 0.01, 0.02]
    failed = by_lr[-1]
    assert failed.state == TrialState.FAIL and failed.user_attrs[FAIL_REASON] == "error"
    assert "optimizer.lr must be > 0" in result.stderr
    assert "JobExited: the job exited with code 2" in (tmp_path / "sweep" / str(failed.number) / "error.log").read_text()
    assert {by_lr[0.01].state, by_lr[0.02].state} == {TrialState.COMPLETE}
    assert (tmp_path / "sweep" / "best_params.yaml").is_file()


@pytest.mark.slow
def test_list_choices_reach_the_jobs_and_best_params(data_dir, tmp_path):
    """choice([2,3],[3,4]) over TextCNN widths: each job's config has a list, and so has best_params.yaml."""
    run_ok(
        ["textclass-train", "-m", *SWEEPER, "hydra/sweeper/sampler=brute_force", "hydra.sweeper.n_trials=2", "model=textcnn",
         "model.encoder.widths=choice([2,3],[3,4])", "model.encoder.paddings=[1,1]", "trainer.max_epochs=1", *QUIET, "hydra.sweep.dir=sweep"],
        cwd=tmp_path, env=cli_env(data_dir, tmp_path),
    )
    study = _study(tmp_path / "sweep" / "optuna.db")
    assert sorted(t.params["model.encoder.widths"] for t in study.trials) == ["[2,3]", "[3,4]"]
    for trial in study.trials:
        job_config = OmegaConf.load(tmp_path / "sweep" / str(trial.number) / ".hydra" / "config.yaml")
        assert OmegaConf.to_container(job_config.model.encoder.widths) == json.loads(trial.params["model.encoder.widths"])
    best = yaml.safe_load((tmp_path / "sweep" / "best_params.yaml").read_text())
    assert best["model"]["encoder"]["widths"] == json.loads(study.best_trial.params["model.encoder.widths"])


@pytest.mark.slow
def test_too_many_failures_stop_the_search(data_dir, tmp_path):
    result = run_cli(
        ["textclass-train", "-m", *SWEEPER, "hydra.sweeper.n_trials=4", "hydra.sweeper.max_failure_rate=0.25", "optimizer.lr=interval(-2, -1)", "trainer.max_epochs=1", *QUIET, "hydra.sweep.dir=sweep"],
        cwd=tmp_path, env=cli_env(data_dir, tmp_path),
    )
    assert result.returncode == 2
    assert "error: search stopped: 2 of 2 trials failed, more than max_failure_rate=0.25 of n_trials=4" in result.stderr
    assert "Traceback" not in result.stderr
    assert _states(_study(tmp_path / "sweep" / "optuna.db")) == {0: "FAIL", 1: "FAIL"}


@pytest.mark.slow
def test_pruner_that_must_fire_prunes_every_trial(data_dir, tmp_path):
    """ThresholdPruner(upper=0): any val/loss is above it, so each trial is pruned at its first report.

    The space is given as a hydra.sweeper.params dict added on the command line.
    """
    result = run_ok(
        ["textclass-train", "-m", *SWEEPER, "hydra.sweeper.n_trials=2", "hydra/sweeper/pruner=threshold", "hydra.sweeper.pruner.upper=0.0",
         '+hydra.sweeper.params={seed: "range(1, 3)"}', "trainer.max_epochs=3", *QUIET, "hydra.sweep.dir=sweep"],
        cwd=tmp_path, env=cli_env(data_dir, tmp_path),
    )
    study = _study(tmp_path / "sweep" / "optuna.db")
    assert _states(study) == {0: "PRUNED", 1: "PRUNED"}
    assert {t.params["seed"] for t in study.trials} <= {1, 2}
    for trial in study.trials:
        assert list(trial.intermediate_values) == [0]  # reported epoch 0, then stopped
        assert not (tmp_path / "sweep" / str(trial.number) / "metrics.json").exists()
    assert "trial 0 pruned after epoch 1: val/loss=" in result.stdout + result.stderr


@pytest.mark.slow
def test_pruning_under_ddp_stops_both_processes_of_each_trial(data_dir, tmp_path):
    """Trials that are 2-process DDP jobs: rank 0 reports and decides, rank 1 follows the broadcast
    decision, so the pruned job ends in both processes (no hang) and the next trial starts."""
    result = run_ok(
        ["textclass-train", "-m", *SWEEPER, "hydra.sweeper.n_trials=2", "hydra/sweeper/pruner=threshold", "hydra.sweeper.pruner.upper=0.0",
         "optimizer.lr=interval(0.001, 0.01)", "trainer=ddp_cpu", "trainer.max_epochs=3", *QUIET, "hydra.sweep.dir=sweep"],
        cwd=tmp_path, env=cli_env(data_dir, tmp_path), timeout=600,
    )
    study = _study(tmp_path / "sweep" / "optuna.db")
    assert _states(study) == {0: "PRUNED", 1: "PRUNED"}
    for trial in study.trials:
        assert list(trial.intermediate_values) == [0]  # one report, by rank 0 alone
    output = result.stdout + result.stderr
    assert output.count("GLOBAL_RANK: 1, MEMBER: 2/2") == 2  # each trial trained on 2 processes
    assert "trial 1 pruned after epoch 1: val/loss=" in output
    # rank 1 ends with exit code 0: a non-zero exit makes Lightning SIGKILL the sweep (it hung the
    # next trial's rank 1 in its rendezvous)
    assert output.count("this process ends") == 2
    assert "terminated with code" not in output
    assert "Error executing job" not in output


@pytest.mark.slow
def test_two_processes_share_one_study(data_dir, tmp_path):
    """Two sweepers on one SQLite study finish it at n_trials trials in total, none run twice."""
    storage = tmp_path / "shared.db"
    env = {**os.environ, **cli_env(data_dir, tmp_path)}
    script = Path(sys.executable).parent / "textclass-train"
    processes = [
        subprocess.Popen(
            [str(script), "-m", *SWEEPER, "hydra.sweeper.n_trials=5", f"hydra.sweeper.storage=sqlite:///{storage}", "hydra.sweeper.study_name=shared",
             f"hydra.sweeper.sampler.seed={seed}", "optimizer.lr=interval(0.001, 0.01)", "trainer.max_epochs=1", *QUIET, f"hydra.sweep.dir=worker{seed}"],
            cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )
        for seed in (1, 2)
    ]
    for process in processes:
        _, stderr = process.communicate(timeout=600)
        assert process.returncode == 0, stderr[-3000:]
    study = _study(storage, "shared")
    complete = [t.number for t in study.trials if t.state == TrialState.COMPLETE]
    assert len(complete) == 5
    # a trial asked by both at the same moment beyond n_trials is told FAIL as surplus, never run
    assert all(t.user_attrs.get(FAIL_REASON) == "surplus" for t in study.trials if t.number not in complete)
    job_dirs = [int(p.parent.name) for worker in ("worker1", "worker2") for p in (tmp_path / worker).glob("*/metrics.json")]
    assert sorted(job_dirs) == complete  # each trial ran in exactly one of the two processes


@pytest.mark.slow
def test_two_objectives_write_the_pareto_front(data_dir, tmp_path):
    run_ok(
        ["textclass-train", "-m", *SWEEPER, "hydra.sweeper.n_trials=2", "hydra.sweeper.direction=[minimize,maximize]", "optimized_metric=[val/loss,val/acc]",
         "optimizer.lr=interval(0.001, 0.01)", "trainer.max_epochs=1", *QUIET, "hydra.sweep.dir=sweep"],
        cwd=tmp_path, env=cli_env(data_dir, tmp_path),
    )
    study = _study(tmp_path / "sweep" / "optuna.db")
    front = yaml.safe_load((tmp_path / "sweep" / "pareto_front.yaml").read_text())
    assert front["directions"] == ["minimize", "maximize"]
    assert {t["number"] for t in front["trials"]} == {t.number for t in study.best_trials}
    for trial in study.trials:
        metrics = json.loads((tmp_path / "sweep" / str(trial.number) / "metrics.json").read_text())
        assert trial.values == pytest.approx([metrics["val/loss"], metrics["val/acc"]])
    assert not (tmp_path / "sweep" / "best_params.yaml").exists()


@pytest.mark.slow
def test_n_jobs_with_joblib_launcher_runs_trials_in_parallel(data_dir, tmp_path):
    run_ok(
        ["textclass-train", "-m", *SWEEPER, "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "hydra.sweeper.n_jobs=2", "hydra.sweeper.n_trials=2",
         "optimizer.lr=interval(0.001, 0.01)", "trainer.max_epochs=2", *QUIET, "hydra.sweep.dir=sweep"],
        cwd=tmp_path, env=cli_env(data_dir, tmp_path),
    )
    assert [t.state for t in _study(tmp_path / "sweep" / "optuna.db").trials] == [TrialState.COMPLETE] * 2
    # both jobs ran at the same time: each wrote its config (at its start) before the other's metrics (at its end)
    started = {job: (tmp_path / "sweep" / job / ".hydra" / "config.yaml").stat().st_mtime for job in ("0", "1")}
    ended = {job: (tmp_path / "sweep" / job / "metrics.json").stat().st_mtime for job in ("0", "1")}
    assert started["0"] < ended["1"] and started["1"] < ended["0"]


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(p.stem for p in (CONF / "hparams_search").glob("*.yaml")))
def test_every_hparams_search_runs_a_trial(name, data_dir, tmp_path):
    run_ok(
        ["textclass-train", "-m", f"hparams_search={name}", "hydra.sweeper.n_trials=1", "trainer.fast_dev_run=true", "logger=[]", "hydra.sweep.dir=sweep"],
        cwd=tmp_path, env=cli_env(data_dir, tmp_path),
    )
    study = _study(tmp_path / 'sweep' / 'optuna.db', name)
    assert [t.state for t in study.trials] == [TrialState.COMPLETE]
    assert math.isfinite(study.trials[0].value)
    overrides = (tmp_path / "sweep" / "0" / ".hydra" / "overrides.yaml").read_text()
    for key in study.trials[0].params:
        assert f"{key}=" in overrides, key


@pytest.mark.slow
def test_a_search_file_on_an_experiment_writes_best_params_that_include_it(data_dir, tmp_path):
    """hparams_search files name their experiment in their defaults (not on the command line): the
    found config still includes it, so training with it trains the searched setup."""
    conf = tmp_path / "conf"
    (conf / "experiment").mkdir(parents=True)
    (conf / "hparams_search").mkdir()
    (conf / "experiment" / "tiny.yaml").write_text("# @package _global_\ndefaults:\n  - override /model: mlp\nmodel:\n  dropout: 0.25\n")
    (conf / "hparams_search" / "tiny.yaml").write_text(
        "# @package _global_\ndefaults:\n  - override /experiment: tiny\n  - override /hydra/sweeper: textclass_optuna\n"
        "hydra:\n  sweeper:\n    n_trials: 1\n    params:\n      optimizer.lr: interval(0.001, 0.01)\n"
    )
    args = ["textclass-train", "-m", "--config-dir", str(conf), "hparams_search=tiny", "hydra.sweeper.heartbeat_interval=1", "trainer.max_epochs=1", *QUIET, "hydra.sweep.dir=sweep"]
    result = run_main(args, cwd=tmp_path, env=cli_env(data_dir, tmp_path))
    assert result.returncode == 0, result.stderr[-3000:]
    text = (tmp_path / "sweep" / "best_params.yaml").read_text()
    assert "- /experiment/tiny" in text
    # the sweep's summary reads each trial's overrides, `monitor=${optimized_metric}` among them, as text
    summary = (tmp_path / "sweep" / "summary.csv").read_text().splitlines()
    assert len(summary) == 2 and "optimizer.lr=" in summary[1]
    (conf / "experiment" / "found.yaml").write_text(text)
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose("train", overrides=["experiment=found", f"hydra.searchpath=[file://{conf}]"])
    assert cfg.model.dropout == 0.25
    assert cfg.model.encoder._target_ == "textclass.models.encoders.mlp.MLPEncoder"
    assert cfg.optimizer.lr == pytest.approx(_study(tmp_path / "sweep" / "optuna.db").best_trial.params["optimizer.lr"])
