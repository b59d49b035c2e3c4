"""DDP with 2 CPU processes (trainer=ddp_cpu): alone and inside a Hydra multirun (slow), and the rank
arguments of a multirun job."""

from __future__ import annotations

import json
import os

import pytest

from helpers.cli import cli_env, failed_run, run_cli, run_ok, tensorboard_writers
from helpers.data import NEWS_ROWS
from textclass.config.compose import compose_config
from textclass.config.compose import RANK_ENV, is_global_rank_zero
from textclass.commands.train import DDP_JOB_ENV, ddp_rank_arguments

COMMON = ["trainer.max_epochs=1", "trainer.enable_progress_bar=false", "data.batch_size=4"]



@pytest.mark.slow
def test_two_process_run_sees_every_example_once_and_rank_zero_writes(data_dir, tmp_path):
    env = cli_env(data_dir, tmp_path)
    run_ok(["textclass-train", *COMMON, "hydra.run.dir=single"], cwd=tmp_path, env=env)
    ddp = run_ok(["textclass-train", "trainer=ddp_cpu", *COMMON, "hydra.run.dir=ddp"], cwd=tmp_path, env=env)
    assert "GLOBAL_RANK: 1, MEMBER: 2/2" in ddp.stderr + ddp.stdout
    seen = {run: json.loads((tmp_path / run / "metrics.json").read_text())["train/examples"] for run in ("single", "ddp")}
    assert seen == {"single": 3 * len(NEWS_ROWS), "ddp": 3 * len(NEWS_ROWS)}
    # one writer: TensorBoard event files (fit, then test) all from one process, no per-rank run dirs
    assert len(tensorboard_writers(tmp_path / "ddp")) == 1
    log = (tmp_path / "ddp" / "train.log").read_text()
    assert "GLOBAL_RANK: 0, MEMBER: 1/2" in log and "GLOBAL_RANK: 1" not in log  # rank 1 logs to its stderr only
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache", "data", "ddp", "single"]


@pytest.mark.slow
def test_ddp_inside_multirun_runs_each_job_exactly_once(data_dir, tmp_path):
    result = run_ok(
        ["textclass-train", "-m", "trainer=ddp_cpu", *COMMON, "logger=[]", "optimizer.lr=0.01,0.02", "hydra.sweep.dir=sweep"],
        cwd=tmp_path,
        env=cli_env(data_dir, tmp_path),
    )
    output = result.stdout + result.stderr
    assert output.count("GLOBAL_RANK: 1, MEMBER: 2/2") == 2  # one rank 1 per job, not a sweep per rank
    jobs = sorted(p.name for p in (tmp_path / "sweep").iterdir() if p.is_dir())
    assert jobs == ["0", "1"]
    for job, lr in (("0", "0.01"), ("1", "0.02")):
        assert f"optimizer.lr={lr}" in (tmp_path / "sweep" / job / ".hydra" / "overrides.yaml").read_text()
        assert json.loads((tmp_path / "sweep" / job / "metrics.json").read_text())["train/examples"] == 3 * len(NEWS_ROWS)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache", "data", "sweep"]  # no stray sweep or run dirs


def test_rank_arguments_replace_the_sweep_by_the_job():
    lightning_argv = ["-m", "optimizer.lr=0.01,0.02", "hydra.run.dir=\"outputs/x\"", "hydra.job.name=train_ddp_process_1", "hydra.output_subdir=null"]
    env = {DDP_JOB_ENV: json.dumps(["optimizer.lr=0.02", "hydra.run.dir=/runs/sweep/1"]), "LOCAL_RANK": "1"}
    assert ddp_rank_arguments(lightning_argv, env) == [
        "optimizer.lr=0.02", "hydra.run.dir=/runs/sweep/1", "hydra.job.name=train_ddp_process_1", "hydra.output_subdir=null",
    ]
    assert ddp_rank_arguments(lightning_argv, {"LOCAL_RANK": "1"}) == lightning_argv  # not from a multirun job
    assert ddp_rank_arguments(["optimizer.lr=0.02"], env) == ["optimizer.lr=0.02"]  # a single run: untouched


def test_lightning_sampler_on_top_of_the_shards_is_one_error(data_dir, tmp_path):
    result = run_cli(["textclass-train", "trainer=ddp_cpu", "trainer.use_distributed_sampler=true", *COMMON, "hydra.run.dir=run"],
                     cwd=tmp_path, env=cli_env(data_dir, tmp_path))
    assert result.returncode == 2, failed_run(result)
    assert "Traceback" not in result.stderr
    assert [l for l in result.stderr.splitlines() if l.startswith("error: ")] == [
        "error: trainer.use_distributed_sampler=true with 2 processes: textclass's data module gives each process its own part "
        "of the data, and Lightning would split that part again; set trainer.use_distributed_sampler=false"
    ]


@pytest.mark.parametrize("env, rank_zero", [
    ({}, True), ({"RANK": "0", "LOCAL_RANK": "0", "SLURM_PROCID": "0"}, True),
    ({"LOCAL_RANK": "1"}, False), ({"RANK": "2", "LOCAL_RANK": "0"}, False),  # Lightning's child, torchrun's second node
    ({"SLURM_PROCID": "1"}, False), ({"NODE_RANK": "1", "LOCAL_RANK": "0"}, False),  # a Slurm task, Lightning's second node
])
def test_other_ranks_write_nothing_in_the_run_dir(env, rank_zero, monkeypatch):
    for name in RANK_ENV:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    hydra = compose_config("train", [], with_hydra=True).hydra
    hydra.runtime.output_dir = "/runs/x"  # as Hydra sets it when the job starts
    assert is_global_rank_zero(os.environ) is rank_zero
    assert hydra.output_subdir == (".hydra" if rank_zero else None)
    assert hydra.job_logging.handlers.file.filename == ("/runs/x/train.log" if rank_zero else "/dev/null")
