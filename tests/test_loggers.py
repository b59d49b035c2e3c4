"""logger=csv|mlflow|wandb|many and lists of them: what each logger wrote, read back with its own tools.

One real `textclass-train -m` (two jobs: one process, then DDP with 2 CPU processes) with CSV,
MLflow and W&B at their defaults; the CSV files, the MLflow store (MlflowClient) and the W&B offline
run files hold each job's config and its final metrics as in metrics.json. Plus the errors before
training (unreachable server, missing package) and the config choices, in-process.
"""

from __future__ import annotations

import csv
import http.server
import json
import socket
import struct
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml

from helpers.cli import cli_env, run_cli
from helpers.data import write_tsv, NEWS_ROWS
from textclass.config.compose import compose_config
from textclass.errors import ConfigError
from textclass.training.loggers import WandbLogger, check_tracking_uri, local_store_folder, make_loggers, run_name

LR = 0.02
# the final metrics every logger must hold, as metrics.json has them
FINAL = ("val/loss", "val/acc", "val/f1", "val/acc_best", "test/loss", "test/acc", "test/f1")
JOBS = {"0": "default", "1": "ddp_cpu"}  # job -> trainer choice
# the probes below talk to 127.0.0.1 directly, also where an HTTP proxy is configured
NO_PROXY = {"no_proxy": "127.0.0.1,localhost"}


@pytest.fixture(scope="module")
def sweep(tmp_path_factory) -> Path:
    """Two jobs, each with CSV, MLflow and W&B at their defaults (no tracking URI or W&B mode from
    the environment): the MLflow store in the start directory, W&B offline in each job's dir."""
    tmp = tmp_path_factory.mktemp("loggers")
    data_dir = tmp / "data"
    write_tsv(data_dir / "news" / "train.tsv", "category\ttitle", NEWS_ROWS * 3)
    write_tsv(data_dir / "news" / "valid.tsv", "category\ttitle", NEWS_ROWS)
    write_tsv(data_dir / "news" / "test.tsv", "category\ttitle", NEWS_ROWS[::2])
    args = ["textclass-train", "-m", f"trainer={','.join(JOBS.values())}", "logger=[csv,mlflow,wandb]", f"optimizer.lr={LR}",
            "trainer.max_epochs=2", "data.batch_size=4", "trainer.enable_progress_bar=false", "hydra.sweep.dir=sweep"]  # fmt: skip
    with pytest.MonkeyPatch.context() as mp:
        for name in ("MLFLOW_TRACKING_URI", "WANDB_MODE", "WANDB_PROJECT"):
            mp.delenv(name, raising=False)
        result = run_cli(args, cwd=tmp, env=cli_env(data_dir, tmp))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "GLOBAL_RANK: 1, MEMBER: 2/2" in result.stdout + result.stderr  # job 1 did run two processes
    return tmp


def job_metrics(sweep: Path, job: str) -> dict[str, float]:
    return json.loads((sweep / "sweep" / job / "metrics.json").read_text())


def test_csv_holds_config_and_final_metrics(sweep):
    for job, trainer in JOBS.items():
        folder = sweep / "sweep" / job / "csv"
        hparams = yaml.safe_load((folder / "hparams.yaml").read_text())
        # the resolved config with the group choices, beside the module's own hparams
        assert hparams["optimizer"]["lr"] == LR
        assert hparams["choice"]["model"] == "bow" and hparams["choice"]["trainer"] == trainer
        assert hparams["model"]["encoder"]["_target_"] == "textclass.models.encoders.bow.BagOfEmbeddings"
        assert hparams["num_classes"] == 4
        with (folder / "metrics.csv").open(newline="") as f:
            rows = list(csv.DictReader(f))
        last = {key: float(row[key]) for row in rows for key in FINAL if row.get(key)}
        expected = job_metrics(sweep, job)
        assert last == pytest.approx({key: expected[key] for key in FINAL}, abs=1e-7), job
        assert len([row for row in rows if row.get("val/loss")]) == 2  # one writer: one row per epoch, not per rank


def test_mlflow_store_holds_one_run_per_job(sweep):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{sweep}/mlruns/mlflow.db")  # the default: mlruns/ in the start directory
    experiment = client.get_experiment_by_name("train/news")
    runs = {run.info.run_name: run for run in client.search_runs([experiment.experiment_id])}
    assert sorted(runs) == ["sweep/0", "sweep/1"]  # one per job, none from DDP's rank 1
    for job, trainer in JOBS.items():
        run = client.get_run(runs[f"sweep/{job}"].info.run_id)
        assert run.info.status == "FINISHED"
        assert run.data.tags["run_dir"] == str(sweep / "sweep" / job)
        params = run.data.params
        assert float(params["optimizer/lr"]) == LR
        assert params["choice/model"] == "bow" and params["choice/trainer"] == trainer
        assert params["trainer/devices"] == ("2" if trainer == "ddp_cpu" else "auto")
        assert params["num_classes"] == "4"
        expected = job_metrics(sweep, job)
        assert {key: run.data.metrics[key] for key in FINAL} == pytest.approx({key: expected[key] for key in FINAL}, abs=1e-7)


def test_wandb_offline_run_per_job_holds_config_and_final_metrics(sweep):
    ids = set()
    for job, trainer in JOBS.items():
        runs = list((sweep / "sweep" / job / "wandb").glob("offline-run-*/run-*.wandb"))
        assert len(runs) == 1, runs  # its own run (not job 0's, still open), none from DDP's rank 1
        run = read_wandb_run(runs[0])
        ids.add(run["id"])
        assert run["name"] == f"sweep/{job}" and run["project"] == "textclass"
        assert run["exit_code"] == 0  # finished by its job
        assert run["config"]["optimizer"]["lr"] == LR
        assert run["config"]["choice"]["model"] == "bow" and run["config"]["choice"]["trainer"] == trainer
        expected = job_metrics(sweep, job)
        assert {key: run["summary"][key] for key in FINAL} == pytest.approx({key: expected[key] for key in FINAL}, abs=1e-7)
    assert len(ids) == 2


def test_a_failed_stage_ends_the_wandb_run_marked_failed(tmp_path):
    """An Optuna trial pruned mid-fit: Lightning finalizes its loggers with "failed" and the sweep
    goes on in this process, where the next job's WandbLogger must not find the run still open."""
    import wandb

    logger = WandbLogger(save_dir=str(tmp_path), mode="offline", project="textclass", name="pruned")
    logger.log_metrics({"val/loss": 1.5}, step=0)
    logger.finalize("failed")
    assert wandb.run is None
    # wandb-core buffers an offline run file until its service shuts down (the process's exit)
    wandb.teardown()
    (path,) = tmp_path.glob("wandb/offline-run-*/run-*.wandb")
    run = read_wandb_run(path)
    assert (run["name"], run["exit_code"], run["summary"]["val/loss"]) == ("pruned", 1, 1.5)


def test_unreachable_tracking_server_is_one_error_before_training(data_dir, tmp_path):
    uri = "http://127.0.0.1:9/"
    result = run_cli(
        ["textclass-train", "logger=[csv,mlflow]", f"logger.mlflow.tracking_uri={uri}", "trainer.max_epochs=1", "hydra.run.dir=run"],
        cwd=tmp_path,
        env={**cli_env(data_dir, tmp_path), **NO_PROXY},
    )
    assert result.returncode == 2, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1
    assert f"logger.mlflow.tracking_uri={uri}: no MLflow tracking server answers there" in errors[0]
    assert "mlflow server --host" in errors[0]
    assert not (tmp_path / "run" / "checkpoints").exists() and not (tmp_path / "run" / "csv").exists()


def test_a_server_that_never_answers_is_refused_within_the_timeout(monkeypatch):
    monkeypatch.setenv("no_proxy", NO_PROXY["no_proxy"])
    with socket.create_server(("127.0.0.1", 0)) as server:  # accepts connections, never replies
        uri = f"http://127.0.0.1:{server.getsockname()[1]}/"
        start = time.perf_counter()
        with pytest.raises(ConfigError, match="timed out"):
            check_tracking_uri("logger.mlflow.tracking_uri", uri, timeout_s=0.3)
        assert time.perf_counter() - start < 2


def test_a_server_answering_with_an_error_status_counts_as_reachable(monkeypatch):
    monkeypatch.setenv("no_proxy", NO_PROXY["no_proxy"])
    class NotFound(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_error(404)

        def log_message(self, *args):
            pass

    with http.server.HTTPServer(("127.0.0.1", 0), NotFound) as server:
        threading.Thread(target=server.handle_request, daemon=True).start()
        check_tracking_uri("logger.mlflow.tracking_uri", f"http://127.0.0.1:{server.server_port}/", timeout_s=5)


def test_local_store_folder_is_made_or_refused(tmp_path):
    check_tracking_uri("opt", f"sqlite:///{tmp_path}/a/b/mlflow.db")
    assert (tmp_path / "a" / "b").is_dir()
    (tmp_path / "file").write_text("")
    with pytest.raises(ConfigError, match=r"opt=sqlite:///.*/file/mlflow.db: cannot create the store's folder"):
        check_tracking_uri("opt", f"sqlite:///{tmp_path}/file/mlflow.db")
    assert local_store_folder("file:///srv/mlruns") == Path("/srv/mlruns")
    assert local_store_folder("runs/mlruns") == Path("runs/mlruns")
    assert local_store_folder("sqlite://") is None and local_store_folder("https://mlflow.example.com") is None


def test_missing_logger_package_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "wandb", None)  # what `import wandb` finds when it is not installed
    cfg = compose_config("train", ["logger=[csv,wandb]"])
    with pytest.raises(ConfigError, match=r"logger.wandb needs the wandb package, which is not installed: pip install 'textclass\[loggers\]'"):
        make_loggers(cfg)


def test_logger_choices_compose(monkeypatch, tmp_path):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.chdir(tmp_path)
    assert list(compose_config("train", ["logger=many"]).logger) == ["tensorboard", "csv", "mlflow"]
    assert list(compose_config("train", ["logger=[tensorboard,mlflow]"]).logger) == ["tensorboard", "mlflow"]
    mlflow = compose_config("train", ["logger=mlflow", "data=sst2"]).logger.mlflow
    assert (mlflow.tracking_uri, mlflow.experiment_name) == (f"sqlite:///{tmp_path}/mlruns/mlflow.db", "train/sst2")
    assert compose_config("train", ["logger=wandb"]).logger.wandb.mode == "offline"
    monkeypatch.setenv("WANDB_MODE", "disabled")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow.example.com")
    cfg = compose_config("train", ["logger=[mlflow,wandb]"])
    assert (cfg.logger.wandb.mode, cfg.logger.mlflow.tracking_uri) == ("disabled", "http://mlflow.example.com")


def test_run_name_is_the_run_dir_relative_to_the_start_dir(tmp_path):
    assert run_name(tmp_path / "outputs" / "train" / "runs" / "x", tmp_path) == "outputs/train/runs/x"
    assert run_name(Path("/elsewhere/run"), tmp_path) == "/elsewhere/run"


# ---------------------------------------------------------------------------------------------
# W&B offline run files: wandb >= 0.2x writes config and summary only into run-<id>.wandb (its
# Python reader is gone); the format is LevelDB's log: 32 KiB blocks of records with a 7-byte
# header (crc32, length, type), after a 7-byte file header (":W&B", magic, version).
# ---------------------------------------------------------------------------------------------

BLOCK = 32 * 1024
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def wandb_records(path: Path):
    """The protobuf records of an offline W&B run file, in order."""
    from wandb.proto import wandb_internal_pb2

    data = path.read_bytes()
    assert data[:4] == b":W&B", path
    pos, pending = 7, b""
    while pos + 7 <= len(data):
        if BLOCK - pos % BLOCK < 7:  # no room for a header: the rest of the block is padding
            pos += BLOCK - pos % BLOCK
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        if kind == 0:  # zero padding (a preallocated tail)
            break
        pending += data[pos + 7 : pos + 7 + length]
        pos += 7 + length
        if kind in (FULL, LAST):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            pending = b""
            yield record


def read_wandb_run(path: Path) -> dict:
    """id, name, project, config (key -> value), summary (key -> last value), exit_code of a run file."""
    run: dict = {"config": {}, "summary": {}, "exit_code": None}
    for record in wandb_records(path):
        kind = record.WhichOneof("record_type")
        if kind == "run":
            run.update(id=record.run.run_id, name=record.run.display_name, project=record.run.project)
            updates = record.run.config.update
        elif kind == "config":
            updates = record.config.update
        elif kind == "summary":
            for item in record.summary.update:
                run["summary"]["/".join(item.nested_key) or item.key] = json.loads(item.value_json)
            continue
        elif kind == "exit":
            run["exit_code"] = record.exit.exit_code
            continue
        else:
            continue
        run["config"].update({item.key: json.loads(item.value_json) for item in updates})
    return run
