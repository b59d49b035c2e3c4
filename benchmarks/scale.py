"""Benchmark of textclass beyond one process: search throughput by worker count and storage, and
2-process DDP against one process, on CPU.

Run from the repository root:
    python -m benchmarks.scale [--data-dir DIR] [--workers 1,2,4] [--trials N] [--quick] [--out PATH]

Search: for each storage (SQLite in a temp dir, PostgreSQL on a throwaway local server, see
_postgres.py) and each worker count W, W `textclass-train -m hydra/sweeper=textclass_optuna`
processes are started independently, as W machines would be, on one new study of `--trials` trials
(the study's total: the workers share it). Each trial is the same small job: the bag of embeddings
on the first 2000 news headlines, 1 epoch, no checkpoint, logger or predictions. Figure: trials per
minute, the study's trials over the wall time from the first start to the last exit (process
start-up and the vectors' load included, as on a cluster). Each worker runs one torch thread, as one
core of a machine. The two storages alternate within one run, so a ratio compares like with like.

DDP: `trainer=ddp_cpu trainer.devices=2 data.batch_size=32` against `trainer=cpu data.batch_size=64`
(one global batch), the LSTM on the first 4000 SST-2 sentences, 2 epochs; figure: the fastest epoch
(`time/epoch_s`) of each and their ratio.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks._common import RESULTS_DIR, Row, default_data_dir, epoch_seconds, hydra_string, require_data, row, write_results
from benchmarks._postgres import LocalPostgres, unavailable

TRAIN = Path(sys.executable).parent / "textclass-train"
TRIAL = ["data=news", "data.max_examples=2000", "model=bow", "trainer.max_epochs=1", "trainer.enable_progress_bar=false", "logger=[]",
         "callbacks.model_checkpoint=null", "predictions=false", "test=false", "optimizer.lr=interval(0.001, 0.05)"]
DDP_JOB = ["data=sst2", "model=lstm", "trainer.max_epochs=2", "trainer.enable_progress_bar=false", "logger=[]",
           "callbacks.model_checkpoint=null", "predictions=false", "test=false"]


def worker_env(data_dir: Path, cache_dir: Path, threads: int | None) -> dict[str, str]:
    env = {**os.environ, "TEXTCLASS_DATA_DIR": str(data_dir), "TEXTCLASS_CACHE_DIR": str(cache_dir)}
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    return env


def run_search(storage: str, workers: int, trials: int, work: Path, env: dict[str, str]) -> float:
    """Seconds for `workers` independent workers to finish one study of `trials` trials on `storage`."""
    study = f"scale_{work.name}"
    common = ["-m", "hydra/sweeper=textclass_optuna", f"hydra.sweeper.storage={hydra_string(storage)}", f"hydra.sweeper.study_name={study}",
              f"hydra.sweeper.n_trials={trials}", "hydra.sweeper.heartbeat_interval=10", *TRIAL]
    start = time.perf_counter()
    processes = []
    for w in range(workers):
        log = (work / f"worker{w}.log").open("w")
        args = [str(TRAIN), *common, f"hydra.sweeper.sampler.seed={w}", f"hydra.sweep.dir={work / f'worker{w}'}"]
        processes.append((subprocess.Popen(args, cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT), log))
    for process, log in processes:
        process.wait()
        log.close()
        if process.returncode != 0:
            raise SystemExit(f"a search worker failed; its output: {log.name}\n" + Path(log.name).read_text()[-3000:])
    return time.perf_counter() - start


def fastest_epoch(overrides: list[str], run_dir: Path, env: dict[str, str]) -> float:
    """The fastest epoch (time/epoch_s, validation included) of a run of `overrides` in `run_dir`."""
    result = subprocess.run([str(TRAIN), *overrides, f"hydra.run.dir={run_dir}"], cwd=run_dir.parent, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"training failed: {' '.join(overrides)}\n{result.stderr[-3000:]}")
    return min(epoch_seconds(run_dir))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=default_data_dir())
    parser.add_argument("--workers", default="1,2,4", help="comma-separated worker counts")
    parser.add_argument("--trials", type=int, default=16, help="trials per study (shared by its workers)")
    parser.add_argument("--quick", action="store_true", help="workers 1,2, 2 trials, 1000 sentences for DDP (smoke check)")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR / "scale.json")
    args = parser.parse_args()
    require_data(args.data_dir, ["news/train.tsv", "news/valid.tsv", "sst2/train.tsv", "sst2/dev.tsv"])
    if reason := unavailable():
        raise SystemExit(f"PostgreSQL is needed for the storage comparison: {reason}")
    workers = [1, 2] if args.quick else [int(w) for w in args.workers.split(",")]
    trials = 2 if args.quick else args.trials
    ddp_job = [*DDP_JOB, f"data.max_examples={1000 if args.quick else 4000}"]
    root = Path(tempfile.mkdtemp(prefix="textclass-scale-"))
    rows: list[Row] = []
    try:
        with LocalPostgres.start() as server:
            env = {**worker_env(args.data_dir, root / "cache", threads=1), "PGPASSWORD": server.password}
            # one trial first, so the data cache and the vectors' cache are built before any timing
            run_search(f"sqlite:///{root / 'warmup.db'}", 1, 1, make_dir(root / "warmup"), env)
            seconds: dict[tuple[str, int], float] = {}
            for count in workers:
                for name in ("sqlite", "postgresql"):
                    work = make_dir(root / f"{name}{count}")
                    if name == "postgresql":
                        server.create_database(work.name)
                        storage = server.url(work.name, with_password=False)
                    else:
                        storage = f"sqlite:///{work / 'study.db'}"
                    seconds[name, count] = run_search(storage, count, trials, work, env)
                    rate = trials / seconds[name, count] * 60
                    rows.append(row(f"search {name} {count} workers", rate, "trials/min"))
                    print(f"search {name:10s} {count} workers: {rate:6.1f} trials/min ({seconds[name, count]:.1f} s for {trials} trials)", flush=True)
            for count in workers:
                rows.append(row(f"search throughput postgresql/sqlite {count} workers", seconds["sqlite", count] / seconds["postgresql", count], "ratio"))
            for count in workers[1:]:
                for name in ("sqlite", "postgresql"):
                    rows.append(row(f"search throughput {name} {count} workers/{workers[0]}", seconds[name, workers[0]] / seconds[name, count], "ratio"))
        env = worker_env(args.data_dir, root / "cache", threads=None)
        ddp_dir = make_dir(root / "ddp")
        single = fastest_epoch(["trainer=cpu", "data.batch_size=64", *ddp_job], ddp_dir / "single", env)
        ddp = fastest_epoch(["trainer=ddp_cpu", "trainer.devices=2", "data.batch_size=32", *ddp_job], ddp_dir / "ddp", env)
        rows += [row("ddp 1 process epoch", single, "s"), row("ddp 2 processes epoch", ddp, "s"), row("ddp speed-up 2 processes/1", single / ddp, "ratio")]
        print(f"DDP lstm epoch: 1 process {single:.2f} s, 2 processes {ddp:.2f} s: speed-up {single / ddp:.2f}x", flush=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print_table(rows)
    write_results(args.out, {"workers": workers, "trials": trials, "trial": TRIAL, "ddp_job": ddp_job}, rows)


def make_dir(path: Path) -> Path:
    path.mkdir(parents=True)
    return path


def print_table(rows: list[Row]) -> None:
    print("\n| figure | value | unit |\n|---|---|---|")
    for r in rows:
        print(f"| {r['name']} | {r['value']:.2f} | {r['unit']} |")


if __name__ == "__main__":
    main()
