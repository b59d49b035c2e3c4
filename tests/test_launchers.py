"""Jobs beyond one process, for real on this machine: a sweep through submitit's local executor and
through a local Ray cluster, one Optuna study fed by joblib, submitit_local and Ray sweepers at once,
and one model trained by two torchrun "nodes" (gloo on CPU, c10d rendezvous on 127.0.0.1)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from conftest import NEWS_ROWS, REPO, cli_env, in_parallel, run_ok, tensorboard_writers
from textclass.search.storage import open_storage

sys.path.insert(0, str(REPO / "benchmarks"))
from _postgres import free_port  # noqa: E402

QUIET = ["trainer.max_epochs=1", "trainer.enable_progress_bar=false", "logger=[]"]


def _job_metrics(sweep: Path, job: str) -> dict:
    return json.loads((sweep / job / "metrics.json").read_text())


@pytest.mark.slow
@pytest.mark.parametrize("launcher", ["submitit_local", "ray"])
def test_two_job_sweep_through_a_launcher(launcher, data_dir, tmp_path):
    extra = ["+hydra.launcher.ray.init.num_cpus=2"] if launcher == "ray" else []
    run_ok(["textclass-train", "-m", f"hydra/launcher={launcher}", *extra, "optimizer.lr=0.01,0.02", *QUIET, "hydra.sweep.dir=sweep"],
           cwd=tmp_path, env=cli_env(data_dir, tmp_path))
    sweep = tmp_path / "sweep"
    for job, lr in (("0", "0.01"), ("1", "0.02")):
        assert f"optimizer.lr={lr}" in (sweep / job / ".hydra" / "overrides.yaml").read_text()
        assert _job_metrics(sweep, job)["train/examples"] == 3 * len(NEWS_ROWS)
    summary = (sweep / "summary.csv").read_text().splitlines()
    assert len(summary) == 3  # header + one row per job
    if launcher == "submitit_local":  # submitit's own folder: one log pair and one result per job
        assert len(list((sweep / ".submitit").glob("*/*_0_log.out"))) == 2
        assert len(list((sweep / ".submitit").glob("*/*_0_result.pkl"))) == 2


@pytest.mark.slow
def test_sweepers_on_three_launchers_fill_one_study(data_dir, tmp_path):
    db = tmp_path / "one.db"
    common = ["hydra/sweeper=textclass_optuna", "hydra.sweeper.heartbeat_interval=10", "hydra.sweeper.n_jobs=2", "hydra.sweeper.n_trials=6",
              f"hydra.sweeper.storage=sqlite:///{db}", "hydra.sweeper.study_name=shared", "optimizer.lr=interval(0.001, 0.01)",
              "callbacks.model_checkpoint=null", *QUIET]
    launchers = {"joblib": ["hydra.launcher.n_jobs=2"], "submitit_local": [], "ray": ["+hydra.launcher.ray.init.num_cpus=2"]}
    env = cli_env(data_dir, tmp_path)
    in_parallel(*(lambda name=name, extra=extra: run_ok(["textclass-train", "-m", *common, f"hydra/launcher={name}", *extra, f"hydra.sweep.dir={name}"],
                                                       cwd=tmp_path, env=env) for name, extra in launchers.items()), workers=3)
    study = optuna.load_study(study_name="shared", storage=open_storage(f"sqlite:///{db}"))
    complete = [t for t in study.trials if t.state == TrialState.COMPLETE]
    assert len(complete) == 6
    ran = {}  # trial number -> the sweeper (launcher) whose sweep dir holds its job
    for name in launchers:
        for job in (tmp_path / name).iterdir():
            if job.is_dir() and job.name.isdigit() and (job / "metrics.json").is_file():
                assert int(job.name) not in ran, f"trial {job.name} ran twice"
                ran[int(job.name)] = name
    assert sorted(ran) == sorted(t.number for t in complete)
    for number, name in ran.items():
        assert study.trials[number].value == pytest.approx(_job_metrics(tmp_path / name, str(number))["val/loss"])


@pytest.mark.slow
def test_two_torchrun_nodes_train_one_model_and_rank_zero_writes(data_dir, tmp_path):
    port = free_port()
    torchrun = [str(Path(sys.executable).parent / "torchrun"), "--nnodes=2", "--nproc-per-node=1", "--rdzv-backend=c10d", f"--rdzv-endpoint=127.0.0.1:{port}"]
    args = ["-m", "textclass.train", "trainer=ddp_cpu", "trainer.devices=1", "trainer.num_nodes=2", "trainer.max_epochs=2", "trainer.enable_progress_bar=false",
            "data.batch_size=4", "hydra.run.dir=run"]
    env = {**os.environ, **cli_env(data_dir, tmp_path)}
    nodes = [subprocess.Popen([*torchrun, *args], cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for _ in range(2)]
    outputs = [node.communicate(timeout=300)[0] for node in nodes]
    assert [node.returncode for node in nodes] == [0, 0], outputs[0][-3000:] + outputs[1][-3000:]
    assert "GLOBAL_RANK: 1, MEMBER: 2/2" in "".join(outputs)
    # the two shards together cover the training data once per epoch
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["train/examples"] == 3 * len(NEWS_ROWS)
    assert len(tensorboard_writers(tmp_path / "run")) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache", "data", "run"]
