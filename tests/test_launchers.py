"""Jobs beyond one process, for real on this machine: a sweep through submitit's local executor,
through a one-node Slurm cluster (DDP jobs of 2 tasks) and through a local Ray cluster, one Optuna study fed by joblib, submitit_local and Ray sweepers at once,
and one model trained by two torchrun "nodes" (gloo on CPU, c10d rendezvous on 127.0.0.1)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
from omegaconf import OmegaConf
from optuna.trial import TrialState

from helpers.cli import cli_env, failed_run, in_parallel, run_cli, run_ok, tensorboard_writers
from helpers.data import NEWS_ROWS
import textclass
from textclass.config.compose import compose_config
from textclass.errors import ConfigError
from textclass.training.launchers import check_launcher, check_torchrun, check_torchrun_run_dir
from textclass.search.storage import open_storage

from benchmarks._postgres import free_port
from helpers.slurm import LocalSlurm
from helpers.slurm import unavailable as slurm_unavailable

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
@pytest.mark.skipif(slurm_unavailable() is not None, reason=str(slurm_unavailable()))
def test_ddp_sweep_through_slurm_runs_one_rank_per_task(data_dir, tmp_path):
    """hydra/launcher=slurm on a real (one-node) Slurm cluster: each job is one Slurm job of 2 tasks,
    which Lightning's SLURMEnvironment makes the 2 ranks of one DDP run; task 0 alone writes the job dir."""
    with LocalSlurm.start() as cluster:
        run_ok(["textclass-train", "-m", "hydra/launcher=slurm", "hydra.launcher.cpus_per_task=1", "hydra.launcher.gpus_per_node=null",
                "trainer=ddp_cpu", "optimizer.lr=0.01,0.02", *QUIET, "hydra.sweep.dir=sweep"],
               cwd=tmp_path, env={**cli_env(data_dir, tmp_path), **cluster.env()})
    sweep = tmp_path / "sweep"
    for job, lr in (("0", "0.01"), ("1", "0.02")):
        assert f"optimizer.lr={lr}" in (sweep / job / ".hydra" / "overrides.yaml").read_text()
        assert _job_metrics(sweep, job)["train/examples"] == 3 * len(NEWS_ROWS)  # the 2 ranks' shards cover the data once
        log = (sweep / job / "train.log").read_text()
        assert "GLOBAL_RANK: 0, MEMBER: 1/2" in log and "GLOBAL_RANK: 1" not in log and log.count("run dir:") == 1
    # submitit's folder: per job, one log and one result per task; task 1 was rank 1
    task_logs = sorted(p.name.split("_", 1)[1] for p in (sweep / ".submitit").glob("*/*_log.out"))
    assert task_logs == ["0_0_log.out", "0_1_log.out", "1_0_log.out", "1_1_log.out"]
    assert all("GLOBAL_RANK: 1, MEMBER: 2/2" in p.read_text() for p in (sweep / ".submitit").glob("*/*_1_log.out"))
    assert len((sweep / "summary.csv").read_text().splitlines()) == 3  # header + one row per job


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
def test_two_torchrun_nodes_train_the_model_one_process_trains_with_their_global_batch(data_dir, tmp_path):
    """Plain batches; bucketed ones shard the same way (tests/test_pipeline.py compares their shards)."""
    port = free_port()
    torchrun = [str(Path(sys.executable).parent / "torchrun"), "--nnodes=2", "--nproc-per-node=1", "--rdzv-backend=c10d", f"--rdzv-endpoint=127.0.0.1:{port}"]
    common = ["trainer.max_epochs=2", "trainer.enable_progress_bar=false", "trainer.deterministic=true"]
    args = ["-m", "textclass", "train", "trainer=ddp_cpu", "trainer.devices=1", "trainer.num_nodes=2", "data.batch_size=4", *common, "hydra.run.dir=run"]
    env = {**os.environ, **cli_env(data_dir, tmp_path)}
    nodes = [subprocess.Popen([*torchrun, *args], cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for _ in range(2)]
    outputs = [node.communicate(timeout=300)[0] for node in nodes]
    assert [node.returncode for node in nodes] == [0, 0], outputs[0][-3000:] + outputs[1][-3000:]
    assert "GLOBAL_RANK: 1, MEMBER: 2/2" in "".join(outputs)
    run_ok(["textclass-train", "trainer=cpu", "data.batch_size=8", *common, "hydra.run.dir=single"], cwd=tmp_path, env=cli_env(data_dir, tmp_path))
    nodes_metrics, single = (json.loads((tmp_path / d / "metrics.json").read_text()) for d in ("run", "single"))
    # the two shards together cover the training data once per epoch
    assert nodes_metrics["train/examples"] == 3 * len(NEWS_ROWS)
    # 2 processes x batch 4 train the model one process trains with batch 8: every figure agrees
    assert sorted(nodes_metrics) == sorted(single)
    for name in (n for n in single if not n.startswith("time/")):
        assert nodes_metrics[name] == pytest.approx(single[name], abs=1e-5), name
    assert len(tensorboard_writers(tmp_path / "run")) == 1
    log = (tmp_path / "run" / "train.log").read_text()
    assert "GLOBAL_RANK: 0, MEMBER: 1/2" in log and "GLOBAL_RANK: 1" not in log  # rank 1 logs to its stderr only
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache", "data", "run", "single"]


# --- launcher and torchrun settings that cannot run: one clear error before any job starts ----------

def _with_hydra(*overrides: str):
    return compose_config("train", list(overrides), with_hydra=True)


def test_slurm_launcher_takes_tasks_and_nodes_from_the_trainer():
    launcher = _with_hydra("hydra/launcher=slurm", "trainer=ddp", "trainer.devices=4", "trainer.num_nodes=2").hydra.launcher
    assert (launcher.tasks_per_node, launcher.nodes, launcher.gpus_per_node, launcher.timeout_min) == (4, 2, 4, 240)
    assert launcher._target_.endswith("SlurmLauncher")


@pytest.mark.parametrize("overrides, message", [
    (["hydra/launcher=slurm"], "hydra/launcher=slurm with trainer.devices=auto: Slurm starts one task per device"),
    (["hydra/launcher=submitit_slurm", "trainer=ddp", "trainer.devices=4"], "set hydra.launcher.tasks_per_node=4 hydra.launcher.nodes=1"),
    (["hydra/launcher=slurm", "trainer=ddp", "trainer.num_nodes=2", "hydra.launcher.nodes=1"], "hydra.launcher.nodes=1 but trainer.devices=2, trainer.num_nodes=2"),
    (["hydra/launcher=submitit_local", "trainer=ddp_cpu"], "hydra/launcher=submitit_local runs each job in one worker process, and trainer.devices=2"),
    (["hydra/launcher=joblib", "trainer=ddp_cpu"], "hydra/launcher=joblib runs each job in one worker process"),
    (["hydra/launcher=ray", "trainer=ddp_cpu", "trainer.devices=1", "trainer.num_nodes=2"], "hydra/launcher=ray runs each job in one worker process"),
])
def test_launcher_settings_that_cannot_run_are_one_error(overrides, message, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # an srun of its own below: only the settings are wrong
    (tmp_path / "srun").write_text("#!/bin/sh\n")
    (tmp_path / "srun").chmod(0o755)
    with pytest.raises(ConfigError, match=re.escape(message)):
        check_launcher(_with_hydra(*overrides))


def test_slurm_launcher_needs_srun_and_a_cluster(tmp_path, monkeypatch):
    cfg = _with_hydra("hydra/launcher=slurm", "trainer=ddp", "trainer.devices=2")
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ConfigError, match="no `srun` on this machine's PATH"):
        check_launcher(cfg)
    (tmp_path / "srun").write_text("#!/bin/sh\n")
    (tmp_path / "srun").chmod(0o755)
    # Slurm's programs without a cluster (Debian's slurm-client alone): sinfo fails as it does then
    (tmp_path / "sinfo").write_text("#!/bin/sh\necho 'sinfo: fatal: Could not establish a configuration source' >&2\nexit 1\n")
    (tmp_path / "sinfo").chmod(0o755)
    with pytest.raises(ConfigError, match=re.escape("no cluster answers (sinfo: sinfo: fatal: Could not establish a configuration source)")):
        check_launcher(cfg)
    (tmp_path / "sinfo").write_text("#!/bin/sh\necho debug\n")
    check_launcher(cfg)  # a Slurm login node: settings that match, srun, and a cluster that answers
    for launcher in ("basic", "joblib", "submitit_local", "ray"):
        check_launcher(_with_hydra(f"hydra/launcher={launcher}", "trainer=cpu"))  # one process per job: nothing to refuse


def test_slurm_sweep_without_slurm_is_one_error_before_any_job(data_dir, tmp_path):
    env = {**cli_env(data_dir, tmp_path), "PATH": str(Path(sys.executable).parent)}
    result = run_cli(["textclass-train", "-m", "hydra/launcher=slurm", "trainer=ddp", "trainer.devices=2", "optimizer.lr=0.01,0.02"], cwd=tmp_path, env=env)
    assert result.returncode == 2, failed_run(result)
    assert "Traceback" not in result.stderr
    assert [l for l in result.stderr.splitlines() if l.startswith("error: ")] == [
        "error: hydra/launcher=slurm (submitit_slurm): no `srun` on this machine's PATH, so nothing can be submitted to Slurm; "
        "run the sweep from a Slurm login node, or here with hydra/launcher=submitit_local (or without hydra/launcher)"
    ]
    assert not (tmp_path / "outputs").exists()


@pytest.mark.parametrize("env, trainer, message", [
    ({"WORLD_SIZE": "2", "LOCAL_WORLD_SIZE": "2"}, {"devices": 1, "num_nodes": 1}, "torchrun started 2 processes (2 on this node: --nproc-per-node=2, --nnodes=1) but trainer.devices=1 and trainer.num_nodes=1: set trainer.devices=2 trainer.num_nodes=1"),
    ({"WORLD_SIZE": "4", "LOCAL_WORLD_SIZE": "2"}, {"devices": 2, "num_nodes": 1}, "set trainer.devices=2 trainer.num_nodes=2"),
    ({"WORLD_SIZE": "2", "LOCAL_WORLD_SIZE": "1"}, {"devices": "auto", "num_nodes": 1}, "set trainer.devices=1 trainer.num_nodes=2"),
])
def test_torchrun_world_that_the_trainer_does_not_match_is_one_error(env, trainer, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        check_torchrun(OmegaConf.create(trainer), {"TORCHELASTIC_RUN_ID": "none", **env})


def test_torchrun_world_that_matches_passes():
    elastic = {"TORCHELASTIC_RUN_ID": "none", "WORLD_SIZE": "4", "LOCAL_WORLD_SIZE": "2"}
    check_torchrun(OmegaConf.create({"devices": 2, "num_nodes": 2}), elastic)
    check_torchrun(OmegaConf.create({"devices": [0, 1], "num_nodes": 2}), elastic)
    check_torchrun(OmegaConf.create({"devices": "auto", "num_nodes": 1}), {"TORCHELASTIC_RUN_ID": "none", "WORLD_SIZE": "1"})
    check_torchrun(OmegaConf.create({"devices": 1, "num_nodes": 1}), {"WORLD_SIZE": "4"})  # not torchrun: Lightning's own ranks
    check_torchrun_run_dir(["hydra.run.dir=/shared/run"], elastic)
    with pytest.raises(ConfigError, match=re.escape("give them all one, hydra.run.dir=<dir>")):
        check_torchrun_run_dir(["trainer.devices=2"], elastic)


@pytest.mark.slow
def test_torchrun_with_a_mismatched_world_size_stops_every_rank_with_one_message(data_dir, tmp_path):
    torchrun = [str(Path(sys.executable).parent / "torchrun"), "--nnodes=1", "--nproc-per-node=2", "--rdzv-backend=c10d", f"--rdzv-endpoint=127.0.0.1:{free_port()}"]
    env = {**os.environ, **cli_env(data_dir, tmp_path)}
    result = subprocess.run([*torchrun, "-m", "textclass", "train", "trainer=ddp_cpu", "trainer.devices=1", "hydra.run.dir=run"],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode != 0
    errors = {l for l in result.stderr.splitlines() if l.startswith("error: ")}
    assert errors == {"error: torchrun started 2 processes (2 on this node: --nproc-per-node=2, --nnodes=1) but trainer.devices=1 "
                      "and trainer.num_nodes=1: set trainer.devices=2 trainer.num_nodes=1"}, result.stderr[-3000:]
    # torchrun reports a failed child with a traceback of its own launcher; none comes from textclass
    # (its package folder, wherever the repository was cloned: a clone named textclass holds torch's venv too)
    assert f'File "{Path(textclass.__file__).parent}{os.sep}' not in result.stderr, result.stderr[-3000:]
    assert not (tmp_path / "run").exists()  # stopped before Hydra made the run dir
