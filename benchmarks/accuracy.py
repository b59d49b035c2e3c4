"""Benchmark of accuracy: the `experiment=best/<data>_<arch>` configs against the issue's targets.

Run from the repository root:
    python benchmarks/accuracy.py [--data-dir DIR] [--datasets news,sst2] [--archs bow,lstm,...]
                                  [--with-bert | --skip-bert] [--extra KEY=VALUE] [--quick]
                                  [--work-dir DIR] [--out PATH]

All chosen configs run as ONE multirun, exactly as a user would start it:
    textclass-train -m experiment=best/news_bow,best/news_lstm,... hydra.sweep.dir=<work dir>/multirun
in a subprocess whose working directory is the work dir (default outputs/benchmarks/accuracy/<timestamp>).
Each job's metrics.json and history.csv then give one row per (data, arch): `val/acc_best` (the
best-of-config valid accuracy, the row's value), `val/acc` of the last epoch, `val/f1` (macro-F1),
the epochs run (rows of history.csv) and the training time (sum of its `epoch_s`). The valid split
is news valid.tsv and SST-2 dev.tsv. Writes the rows (with the sweep dir, where the TensorBoard logs
are, in the metadata) to a JSON file and a Markdown table beside it (same name, .md).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import shlex
import shutil
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import torch

from _common import CONF, REPO, RESULTS_DIR, Row, default_data_dir, require_data, write_results

DATASETS = ("news", "sst2")
ARCHS = ("bow", "mlp", "rnn", "gru", "lstm", "cnn", "textcnn", "attention", "bert")
QUICK_ARCHS = ("bow", "lstm", "textcnn")
QUICK_OVERRIDES = ("data.max_examples=200", "trainer.max_epochs=1")
# appended before --extra, which can override them (the last value of a key wins)
BASE_OVERRIDES = ("trainer.enable_progress_bar=false",)
SPLIT = {"news": "valid", "sst2": "dev"}  # the valid split each dataset's val/* metrics come from
# valid accuracy targets from the issue (news valid split, SST-2 dev); None: no target given
TARGETS: dict[str, dict[str, float | None]] = {
    "news": {"bow": 0.90, "mlp": 0.91, "rnn": 0.92, "gru": 0.92, "lstm": 0.92, "cnn": 0.92, "textcnn": 0.92,
             "attention": 0.92, "bert": 0.94},
    "sst2": {"bow": 0.80, "mlp": None, "rnn": None, "gru": None, "lstm": 0.84, "cnn": None, "textcnn": 0.84,
             "attention": 0.84, "bert": 0.89},
}


def experiment(data: str, arch: str) -> str:
    return f"best/{data}_{arch}"


def split_list(value: str, allowed: tuple[str, ...], option: str, parser: argparse.ArgumentParser) -> list[str]:
    items = [v.strip() for v in value.split(",") if v.strip()]
    unknown = [v for v in items if v not in allowed]
    if unknown:
        parser.error(f"{option}: unknown {', '.join(unknown)}; choose from {', '.join(allowed)}")
    if not items:
        parser.error(f"{option}: empty")
    return list(dict.fromkeys(items))  # keep order, drop repeats


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=default_data_dir(), help="folder holding sst2/ and news/")
    parser.add_argument("--datasets", default=",".join(DATASETS), help="comma-separated, from: " + ",".join(DATASETS))
    parser.add_argument("--archs", default=None,
                        help=f"comma-separated, from: {','.join(ARCHS)} (default: all; with --quick: {','.join(QUICK_ARCHS)})")
    bert = parser.add_mutually_exclusive_group()
    bert.add_argument("--with-bert", dest="bert", action="store_true", default=None, help="run the bert configs too")
    bert.add_argument("--skip-bert", dest="bert", action="store_false",
                      help="write the bert rows as not run (the default without a GPU)")
    parser.add_argument("--extra", action="append", default=[], metavar="KEY=VALUE",
                        help="further override for every job (repeatable), e.g. trainer.max_epochs=2")
    parser.add_argument("--quick", action="store_true",
                        help=f"{' '.join(QUICK_OVERRIDES)}, archs {','.join(QUICK_ARCHS)} (smoke check, a minute or two)")
    parser.add_argument("--work-dir", type=Path, default=None,
                        help="where textclass-train runs (default outputs/benchmarks/accuracy/<timestamp>); the sweep is <work dir>/multirun")
    parser.add_argument("--quiet", action="store_true", help="do not echo the training output (it always goes to <work dir>/multirun.log)")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR / "accuracy.json",
                        help="results JSON; the Markdown table goes beside it with the suffix .md")
    args = parser.parse_args(argv)
    args.datasets = split_list(args.datasets, DATASETS, "--datasets", parser)
    args.archs = split_list(args.archs or ",".join(QUICK_ARCHS if args.quick else ARCHS), ARCHS, "--archs", parser)
    if args.bert is None:
        args.bert = torch.cuda.is_available()
        args.bert_note = "not run: no GPU"
    else:
        args.bert_note = "not run: --skip-bert"
    bad = [o for o in args.extra if "=" not in o]
    if bad:
        parser.error(f"--extra takes KEY=VALUE overrides, got {', '.join(bad)}")
    for data in args.datasets:
        for arch in args.archs:
            if not (CONF / "experiment" / f"{experiment(data, arch)}.yaml").is_file():
                parser.error(f"no config conf/experiment/{experiment(data, arch)}.yaml")
    return args


def train_command() -> list[str]:
    """`textclass-train` of the Python running this script (its venv), else the one on PATH."""
    beside = Path(sys.executable).parent / "textclass-train"
    if beside.is_file():
        return [str(beside)]
    found = shutil.which("textclass-train")
    if found:
        return [found]
    return [sys.executable, "-m", "textclass.train"]


def prepare_work_dir(work_dir: Path | None, benchmark: str) -> tuple[Path, Path]:
    """(work dir, its multirun/ sweep dir), the work dir created (default outputs/benchmarks/<benchmark>/<timestamp>).

    Exits with status 2 when the sweep dir already holds jobs: their results would mix with the new ones.
    """
    stamp = datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    work_dir = (work_dir or REPO / "outputs" / "benchmarks" / benchmark / stamp).resolve()
    sweep_dir = work_dir / "multirun"
    work_dir.mkdir(parents=True, exist_ok=True)
    if sweep_dir.exists() and any(sweep_dir.iterdir()):
        print(f"{sweep_dir} is not empty: pass a fresh --work-dir", file=sys.stderr)
        raise SystemExit(2)
    return work_dir, sweep_dir


def sweep_env(data_dir: Path) -> dict[str, str]:
    """The environment of a benchmark's textclass-train subprocess."""
    return {
        **os.environ,
        "TEXTCLASS_DATA_DIR": str(data_dir.resolve()),
        # the repository's cache, as for textclass-train started from the root, not one per work dir
        "TEXTCLASS_CACHE_DIR": os.environ.get("TEXTCLASS_CACHE_DIR") or str(REPO / ".cache" / "textclass"),
    }


def run_sweep(command: list[str], work_dir: Path, env: dict[str, str], quiet: bool) -> int:
    """Runs the multirun in `work_dir`; its output goes to multirun.log there (and to stdout unless quiet)."""
    log_path = work_dir / "multirun.log"
    with log_path.open("w") as log, subprocess.Popen(
        command, cwd=work_dir, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
    ) as proc:
        for line in proc.stdout:
            log.write(line)
            if not quiet:
                sys.stdout.write(line)
                sys.stdout.flush()
        return proc.wait()


def read_history(path: Path) -> tuple[int | None, float | None, float | None]:
    """(epochs run, sum of epoch_s, best val_acc of an epoch) from a run's history.csv; Nones without one."""
    if not path.is_file():
        return None, None, None
    with path.open(newline="") as f:
        records = list(csv.DictReader(f))
    times = [float(r["epoch_s"]) for r in records if r.get("epoch_s")]
    accs = [float(r["val_acc"]) for r in records if r.get("val_acc")]
    return len(records), (sum(times) if times else None), (max(accs) if accs else None)


def job_dirs_by_experiment(sweep_dir: Path) -> dict[str, Path]:
    """experiment override -> job directory, for every job Hydra started in the sweep."""
    from omegaconf import OmegaConf

    jobs = {}
    for overrides_file in sorted(sweep_dir.glob("**/.hydra/overrides.yaml")):
        for override in OmegaConf.load(overrides_file):
            key, _, value = str(override).partition("=")
            if key == "experiment":
                jobs[value] = overrides_file.parent.parent
    return jobs


def make_row(data: str, arch: str, job_dir: Path | None, overrides: list[str], skipped_note: str | None) -> Row:
    exp = experiment(data, arch)
    target = TARGETS[data][arch]
    row: Row = {
        "name": f"{data} {arch} valid acc",
        "value": None,
        "unit": "accuracy",
        "data": data,
        "arch": arch,
        "split": SPLIT[data],
        "experiment": exp,
        "command": shlex.join(["textclass-train", f"experiment={exp}", *overrides]),
        "acc_best": None,
        "acc_best_epochs": None,
        "acc_last": None,
        "f1": None,
        "val_loss": None,
        "test_acc": None,
        "epochs": None,
        "time_s": None,
        "target": target,
        "met": None,
        "status": "skipped" if skipped_note else "failed",
        "note": skipped_note or "",
        "job_dir": str(job_dir) if job_dir else None,
    }
    if skipped_note:
        return row
    metrics_file = job_dir / "metrics.json" if job_dir else None
    if metrics_file is None or not metrics_file.is_file():
        row["note"] = "no job directory (sweep stopped before it)" if job_dir is None else "no metrics.json (the job failed)"
        return row
    metrics = json.loads(metrics_file.read_text())
    epochs, seconds, best_epoch_acc = read_history(job_dir / "history.csv")
    row.update(
        value=metrics.get("val/acc_best"),
        acc_best=metrics.get("val/acc_best"),
        acc_best_epochs=best_epoch_acc,
        acc_last=metrics.get("val/acc"),
        f1=metrics.get("val/f1"),
        val_loss=metrics.get("val/loss"),
        test_acc=metrics.get("test/acc"),
        epochs=epochs,
        time_s=seconds,
        status="ok",
    )
    if row["value"] is not None and best_epoch_acc is not None and row["value"] > best_epoch_acc + 1e-6:
        # val/acc_best is a running max that also saw the sanity-check validation (untrained model)
        row["note"] = f"val/acc_best above every epoch's val/acc (best epoch {best_epoch_acc:.4f}): sanity-check value"
    if target is not None and row["value"] is not None:
        row["met"] = bool(row["value"] >= target)
    return row


def _num(value: object, fmt: str) -> str:
    return "—" if value is None or (isinstance(value, float) and math.isnan(value)) else format(value, fmt)


def to_markdown(rows: list[Row]) -> str:
    lines = [
        "| command | data | arch | epochs | acc best | acc last | macro-F1 | time | target | met |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        met = {True: "yes", False: "**no**", None: "—"}[r["met"]]
        if r["status"] != "ok":
            met = r["note"] or r["status"]
        time_s = "—" if r["time_s"] is None else f"{r['time_s']:.0f} s"
        lines.append(
            f"| `{r['command']}` | {r['data']} ({r['split']}) | {r['arch']} | {_num(r['epochs'], 'd')} | "
            f"{_num(r['acc_best'], '.4f')} | {_num(r['acc_last'], '.4f')} | {_num(r['f1'], '.4f')} | {time_s} | "
            f"{_num(r['target'], '.2f')} | {met} |"
        )
    notes = [f"- `{r['experiment']}`: {r['note']}" for r in rows if r["status"] == "ok" and r["note"]]
    return "\n".join(lines + (["", *notes] if notes else [])) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    require_data(args.data_dir, [f"{d}/train.tsv" for d in args.datasets])
    work_dir, sweep_dir = prepare_work_dir(args.work_dir, "accuracy")

    pairs = [(d, a) for d in args.datasets for a in args.archs]
    to_run = [(d, a) for d, a in pairs if a != "bert" or args.bert]
    overrides = [*(QUICK_OVERRIDES if args.quick else ()), *args.extra]
    env = sweep_env(args.data_dir)
    command = [
        *train_command(),
        "-m",
        "experiment=" + ",".join(experiment(d, a) for d, a in to_run),
        f"hydra.sweep.dir={sweep_dir}",
        *BASE_OVERRIDES,
        *overrides,
    ]
    returncode, sweep_s = None, None
    if to_run:
        print(f"running {len(to_run)} configs in {work_dir}:\n  {shlex.join(command)}", flush=True)
        start = time.perf_counter()
        returncode = run_sweep(command, work_dir, env, args.quiet)
        sweep_s = time.perf_counter() - start
        if returncode != 0:
            print(f"textclass-train exited with status {returncode} (log: {work_dir / 'multirun.log'}); "
                  "writing the rows of the jobs that finished", file=sys.stderr)

    job_dirs = job_dirs_by_experiment(sweep_dir) if sweep_dir.is_dir() else {}
    rows = [
        make_row(d, a, job_dirs.get(experiment(d, a)), overrides, None if (d, a) in to_run else args.bert_note)
        for d, a in pairs
    ]
    table = to_markdown(rows)
    print()
    print(table, end="")
    with_target = [r for r in rows if r["met"] is not None]
    print(f"targets met: {sum(bool(r['met']) for r in with_target)}/{len(with_target)} "
          f"(value: val/acc_best on news valid / SST-2 dev{'; QUICK run, not comparable to the targets' if args.quick else ''})")

    meta = {
        "quick": args.quick,
        "datasets": args.datasets,
        "archs": args.archs,
        "bert": "run" if args.bert else args.bert_note,
        "overrides": overrides,
        "command": shlex.join(command) if to_run else None,
        "returncode": returncode,
        "sweep_wall_s": sweep_s,
        "work_dir": str(work_dir),
        # every job's run directory (with tensorboard/, history.csv, metrics.json) is under it
        "sweep_dir": str(sweep_dir),
        "summary_csv": str(sweep_dir / "summary.csv"),
        "data_dir": str(args.data_dir.resolve()),
        "cache_dir": env["TEXTCLASS_CACHE_DIR"],
        "value": "val/acc_best (best valid accuracy of the run); acc_best_epochs = best val_acc of history.csv; "
                 "acc_last = val/acc of the last epoch; f1 = val/f1 (macro) of the last epoch",
        "time": "sum of history.csv epoch_s (time/epoch_s: training epoch incl. validation)",
        "targets": TARGETS,
    }
    write_results(args.out, meta, rows)
    md_path = args.out.with_suffix(".md")
    md_path.write_text(
        f"Accuracy of the `experiment=best/*` configs ({'quick: ' + ' '.join(QUICK_OVERRIDES) if args.quick else 'full'}), "
        f"{datetime.now(timezone.utc).isoformat(timespec='seconds')}; sweep `{sweep_dir}`.\n\n" + table
    )
    print(f"wrote {md_path}")
    failed = [r["experiment"] for r in rows if r["status"] == "failed"]
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed or (returncode not in (None, 0)) else 0


if __name__ == "__main__":
    sys.exit(main())
