"""The search on a real PostgreSQL server: a throwaway one on localhost (benchmarks/_postgres.py), shared
by sweeper processes started independently, as workers on several machines would be.

Skipped, saying why, only where the PostgreSQL binaries or psycopg are missing (.ci/setup installs both).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from helpers.cli import cli_env, run_cli
from textclass.search.sweeper import FAIL_REASON, SURPLUS
from textclass.errors import ConfigError
from textclass.search.storage import open_storage

from benchmarks._postgres import LocalPostgres, unavailable

pytestmark = pytest.mark.skipif(unavailable() is not None, reason=str(unavailable()))

SWEEPER = ["hydra/sweeper=textclass_optuna", "hydra.sweeper.heartbeat_interval=1"]
QUIET = ["trainer.enable_progress_bar=false", "logger=[]", "callbacks.model_checkpoint=null"]
TRAIN = Path(sys.executable).parent / "textclass-train"


@pytest.fixture(scope="module")
def server():
    with LocalPostgres.start() as started:
        yield started


def _env(server: LocalPostgres, data_dir: Path, tmp_path: Path) -> dict[str, str]:
    """The password through PGPASSWORD, so no config file of the workers holds it."""
    return {**os.environ, **cli_env(data_dir, tmp_path), "PGPASSWORD": server.password}


def _worker(server, database, n_trials, seed, data_dir, tmp_path, *extra) -> subprocess.Popen:
    args = [*SWEEPER, f"hydra.sweeper.n_trials={n_trials}", f"hydra.sweeper.storage={server.url(database, with_password=False)}", "hydra.sweeper.study_name=shared",
            f"hydra.sweeper.sampler.seed={seed}", "optimizer.lr=interval(0.001, 0.01)", *QUIET, f"hydra.sweep.dir=worker{seed}", *extra]
    # output to a file: a pipe nobody reads while the worker runs could fill up and stall it
    with (tmp_path / f"worker{seed}.log").open("w") as log:
        process = subprocess.Popen([str(TRAIN), "-m", *args], cwd=tmp_path, env=_env(server, data_dir, tmp_path), stdout=log, stderr=subprocess.STDOUT)
    process.log = tmp_path / f"worker{seed}.log"
    return process


def _study(server: LocalPostgres, database: str) -> optuna.Study | None:
    try:
        return optuna.load_study(study_name="shared", storage=open_storage(server.url(database)))
    except KeyError:  # not created yet
        return None


def _wait_for(condition, processes, timeout_s=300):
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert all(p.poll() is None for p in processes), [p.log.read_text()[-3000:] for p in processes if p.poll() is not None]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def _finish(processes) -> list[str]:
    """Each worker's output (stdout and stderr), once it ended well."""
    outputs = []
    for process in processes:
        process.wait(timeout=600)
        output = process.log.read_text()
        assert process.returncode == 0, output[-3000:]
        outputs.append(output)
    return outputs


def _job_dirs(tmp_path: Path, workers) -> list[int]:
    return sorted(int(p.parent.name) for w in workers for p in (tmp_path / f"worker{w}").glob("*/metrics.json"))


def test_storage_url_problems_are_one_error_each(server):
    cases = [
        (server.url(password="wrong"), "password authentication failed", "check the user and password"),
        (server.url("no_such_db"), 'database "no_such_db" does not exist', "create the database first"),
        (server.url(host="no-such-host.invalid"), "no-such-host.invalid", "check the host name"),
        (server.url().replace(f":{server.port}/", f":{server.port + 1}/"), "Connection refused", "is the server running"),
        (server.url(driver="pg8000"), "no PostgreSQL driver", "pip install 'textclass[postgres]'"),
    ]
    for url, reason, hint in cases:
        with pytest.raises(ConfigError) as raised:
            open_storage(url)
        message = str(raised.value)
        assert reason in message and hint in message, message
        assert server.password not in message and ":***@" in message  # the password is masked
    # postgresql:// (SQLAlchemy's psycopg2) means psycopg when only psycopg is installed
    assert open_storage(server.url(driver="psycopg").replace("+psycopg", "")).get_all_studies() == []


def test_a_process_holds_one_connection_pool_per_url(server):
    """The sweeper's polls of a lost server and each job's pruning callback open the storage again and
    again; they share one pool, so a long search does not run the server out of clients (~100)."""
    import psycopg
    from textclass.search.storage import wait_until_reachable

    server.create_database("pool")
    url = server.url("pool")
    for _ in range(150):  # more than the server's max_connections
        open_storage(url).get_all_studies()
    assert wait_until_reachable(url, timeout_s=5, poll_s=0.1)
    with psycopg.connect(host="127.0.0.1", port=server.port, user="textclass", password=server.password, dbname="postgres") as conn:
        (clients,) = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = 'pool'").fetchone()
    assert 1 <= clients <= 2


@pytest.mark.slow
def test_a_bad_storage_url_stops_the_search_before_any_training(server, data_dir, tmp_path):
    result = run_cli(["textclass-train", "-m", *SWEEPER, f"hydra.sweeper.storage={server.url('missing')}", "optimizer.lr=interval(0.001, 0.01)", *QUIET, "hydra.sweep.dir=sweep"],
                     cwd=tmp_path, env=cli_env(data_dir, tmp_path))
    assert result.returncode == 2, result.stderr[-3000:]
    assert 'error: hydra.sweeper.storage=postgresql+psycopg://textclass:***@' in result.stderr and 'database "missing" does not exist' in result.stderr
    assert "Traceback" not in result.stderr and server.password not in result.stderr + result.stdout
    assert not list((tmp_path / "sweep").glob("*/metrics.json")) and not list((tmp_path / "sweep").glob("[0-9]*"))


@pytest.mark.slow
def test_four_workers_share_one_study_and_a_killed_one_is_failed_by_heartbeat(server, data_dir, tmp_path):
    """4 sweepers started independently on one PostgreSQL study; one is SIGKILLed mid-trial. The others
    fail its trial (heartbeat lost, not counted) and finish the study at exactly n_trials COMPLETE
    trials, none run twice."""
    server.create_database("four")
    workers = [_worker(server, "four", 8, seed, data_dir, tmp_path, "trainer.max_epochs=3") for seed in (1, 2, 3, 4)]
    victim, survivors = workers[0], workers[1:]

    def victim_mid_trial() -> bool:
        study = _study(server, "four")
        running = [t.number for t in study.get_trials(states=(TrialState.RUNNING,))] if study else []
        return any((tmp_path / "worker1" / str(n)).is_dir() for n in running)

    _wait_for(victim_mid_trial, workers)
    killed = [t.number for t in _study(server, "four").get_trials(states=(TrialState.RUNNING,)) if (tmp_path / "worker1" / str(t.number)).is_dir()]
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    _finish(survivors)

    study = _study(server, "four")
    complete = [t.number for t in study.trials if t.state == TrialState.COMPLETE]
    assert len(complete) == 8
    for trial in study.trials:
        if trial.number in killed:  # failed by its lost heartbeat, by one of the others
            assert trial.state == TrialState.FAIL and FAIL_REASON not in trial.user_attrs
        elif trial.state != TrialState.COMPLETE:  # asked at the same moment beyond n_trials: never run
            assert trial.user_attrs.get(FAIL_REASON) == SURPLUS, (trial.number, trial.state, trial.user_attrs)
    # each complete trial ran in exactly one process; the survivors ran at least one each
    assert [n for n in _job_dirs(tmp_path, (1, 2, 3, 4)) if n not in killed] == sorted(complete)
    assert all(_job_dirs(tmp_path, (w,)) for w in (2, 3, 4))


@pytest.mark.slow
def test_a_server_restart_mid_search_loses_no_finished_trial(server, data_dir, tmp_path):
    """The server stopped for 5 s and started again while 2 workers search: the trials finished before
    are still there, and the workers wait for it, reconnect and finish the study at n_trials."""
    server.create_database("restart")
    workers = [_worker(server, "restart", 6, seed, data_dir, tmp_path, "trainer.max_epochs=2") for seed in (1, 2)]

    def complete_count() -> int:
        study = _study(server, "restart")
        return len(study.get_trials(states=(TrialState.COMPLETE,))) if study else 0

    _wait_for(lambda: complete_count() >= 2, workers)
    before = {t.number: t.value for t in _study(server, "restart").get_trials(states=(TrialState.COMPLETE,))}
    server.restart(down_s=5)
    output = "".join(_finish(workers))
    assert "lost the study's storage" in output and "the storage answers again: continuing the study" in output

    study = _study(server, "restart")
    after = {t.number: t.value for t in study.get_trials(states=(TrialState.COMPLETE,))}
    assert len(after) == 6
    assert before.items() <= after.items()
    ran = _job_dirs(tmp_path, (1, 2))
    assert len(ran) == len(set(ran)) and set(after) <= set(ran)  # no trial ran twice
    # a trial whose result was being stored at the restart stays unfinished: its lost heartbeat fails it
    for trial in study.trials:
        if trial.state != TrialState.COMPLETE:
            assert trial.state == TrialState.FAIL and trial.user_attrs.get(FAIL_REASON) in (None, SURPLUS), (trial.number, trial.user_attrs)
