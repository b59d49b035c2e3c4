"""Benchmark of accuracy: the `experiment=best/<data>_<arch>` configs over several seeds, reported on a
split that selected nothing.

Run from the repository root:
    python -m benchmarks.accuracy [--seeds 5] [--bert-seeds 3] [--holdout 0.1] [--data-dir DIR]
                                  [--datasets news,sst2] [--archs bow,lstm,...] [--with-bert | --skip-bert]
                                  [--extra KEY=VALUE] [--jobs N] [--quick] [--work-dir DIR] [--report-only] [--out PATH]

Each dataset is ONE multirun, exactly as a user would start it, in a subprocess whose working
directory is the work dir (default outputs/benchmarks/accuracy/<timestamp>):
    textclass-train -m experiment=best/news_bow,best/news_lstm,... seed=1,2,3,4,5 data.holdout=0.1 hydra.sweep.dir=<work dir>/news
(MiniLM, `bert`, in a multirun of its own with --bert-seeds seeds.) A dataset with a test split of
its own (news built from the raw UCI archive) reports on it; one without (SST-2, the pre-split news
copy) gets `data.holdout=F`: a stratified share F of train selects the epoch and the dataset's valid
split (news valid.tsv, SST-2 dev.tsv) reports as test. The figure of a run is the selected
checkpoint's (by val/loss) test accuracy; a row is its mean over the seeds, with the sample std, min,
max and 95% t-interval, the macro-F1, and the old headline `val/acc_best` (best epoch on the
selection split) beside it to show how far it moved. `textclass-compare` then ranks each dataset's
configs and marks those not significantly behind the leader (Welch's t-test over seeds,
Holm-corrected), from the predictions the runs saved. Writes the rows to a JSON file and a Markdown
table beside it (same name, .md). `--report-only` rebuilds both from an existing --work-dir.
`--jobs N` runs N jobs at a time (`hydra/launcher=joblib hydra.launcher.n_jobs=N`), each with the
cores / N torch threads (OMP_NUM_THREADS): on a few CPU cores, small models use a second thread
poorly, so two one-thread jobs finish a zoo sooner than one two-thread job after another. Each
sweep's wall time is printed and kept in the results' metadata (`sweep_wall_s`).
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
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import torch

from benchmarks._common import CONF, REPO, RESULTS_DIR, Row, default_data_dir, require_data, write_results
from textclass.metric_names import VAL_ACC_BEST, headline
from textclass.run_files import HISTORY_FILE
from textclass.reports.sweeps import collect_jobs, describe

DATASETS = ("news", "sst2")
ARCHS = ("bow", "mlp", "rnn", "gru", "lstm", "cnn", "textcnn", "attention", "bert")
QUICK_ARCHS = ("bow", "lstm", "textcnn")
QUICK_OVERRIDES = ("data.max_examples=200", "trainer.max_epochs=1")
# appended before --extra, which can override them (the last value of a key wins)
BASE_OVERRIDES = ("trainer.enable_progress_bar=false",)
DEFAULT_SEEDS = 5
DEFAULT_HOLDOUT = 0.1
# the file each dataset's valid split comes from (with data.holdout it reports as test)
VALID_FILE = {"news": "news valid.tsv", "sst2": "SST-2 dev.tsv"}
# accuracy targets from the issue that set them (news valid split, SST-2 dev); None: no target given
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
    parser.add_argument("--seeds", type=int, default=None, help=f"seeds 1..N of every config (default {DEFAULT_SEEDS}; 1 with --quick)")
    parser.add_argument("--bert-seeds", type=int, default=None, help="seeds of the bert configs (default: --seeds, at most 3)")
    parser.add_argument("--holdout", type=float, default=DEFAULT_HOLDOUT,
                        help="data.holdout for a dataset without a test split of its own: this share of train selects, valid reports")
    parser.add_argument("--jobs", type=int, default=1,
                        help="jobs at a time (joblib launcher), each with cores/N torch threads (default 1: one after the other)")
    parser.add_argument("--quick", action="store_true",
                        help=f"{' '.join(QUICK_OVERRIDES)}, archs {','.join(QUICK_ARCHS)}, one seed (smoke check, a minute or two)")
    parser.add_argument("--work-dir", type=Path, default=None,
                        help="where textclass-train runs (default outputs/benchmarks/accuracy/<timestamp>); one sweep per "
                             "dataset under <work dir>/multirun/")
    parser.add_argument("--report-only", action="store_true", help="train nothing: rebuild the table from the runs in --work-dir")
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
    args.seeds = args.seeds or (1 if args.quick else DEFAULT_SEEDS)
    args.bert_seeds = args.bert_seeds or min(args.seeds, 3)
    if args.seeds < 1 or args.bert_seeds < 1 or args.jobs < 1:
        parser.error("--seeds, --bert-seeds and --jobs must be at least 1")
    if not 0 < args.holdout < 1:
        parser.error(f"--holdout {args.holdout}: a fraction of train between 0 and 1")
    if args.report_only and args.work_dir is None:
        parser.error("--report-only reads the runs of an earlier --work-dir: pass it")
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
    return [sys.executable, "-m", "textclass", "train"]


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


def sweep_env(data_dir: Path, jobs: int = 1) -> dict[str, str]:
    """The environment of a benchmark's textclass-train subprocess; with `jobs` > 1, each job gets
    the cores / jobs torch threads (more would contend for the same cores)."""
    threads = {"OMP_NUM_THREADS": str(max(1, (os.cpu_count() or 1) // jobs))} if jobs > 1 else {}
    return {
        **os.environ,
        "TEXTCLASS_DATA_DIR": str(data_dir.resolve()),
        # the repository's cache, as for textclass-train started from the root, not one per work dir
        "TEXTCLASS_CACHE_DIR": os.environ.get("TEXTCLASS_CACHE_DIR") or str(REPO / ".cache" / "textclass"),
        **threads,
    }


def run_sweep(command: list[str], work_dir: Path, env: dict[str, str], quiet: bool, log_name: str = "multirun.log") -> int:
    """Runs the multirun in `work_dir`; its output goes to `log_name` there (and to stdout unless quiet)."""
    log_path = work_dir / log_name
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


def has_own_test(data_dir: Path, data: str) -> bool:
    """Whether the dataset has a test split of its own here (news built from the raw archive)."""
    return data == "news" and (data_dir / "news" / "test.tsv").is_file()


@dataclass
class Sweep:
    """One multirun of the benchmark: some configs of one dataset, each over the same seeds."""

    data: str
    archs: list[str]
    seeds: int
    holdout: float | None
    dir: Path

    def command(self, overrides: list[str], jobs: int = 1) -> list[str]:
        return [
            *train_command(),
            "-m",
            *(["hydra/launcher=joblib", f"hydra.launcher.n_jobs={jobs}"] if jobs > 1 else []),
            "experiment=" + ",".join(experiment(self.data, a) for a in self.archs),
            "seed=" + ",".join(str(s) for s in range(1, self.seeds + 1)),
            *([f"data.holdout={self.holdout}"] if self.holdout is not None else []),
            f"hydra.sweep.dir={self.dir}",
            *BASE_OVERRIDES,
            *overrides,
        ]


def plan_sweeps(args: argparse.Namespace, sweeps_dir: Path) -> list[Sweep]:
    sweeps = []
    for data in args.datasets:
        holdout = None if has_own_test(args.data_dir, data) else args.holdout
        words = [a for a in args.archs if a != "bert"]
        if words:
            sweeps.append(Sweep(data, words, args.seeds, holdout, sweeps_dir / data))
        if "bert" in args.archs and args.bert:
            sweeps.append(Sweep(data, ["bert"], args.bert_seeds, holdout, sweeps_dir / f"{data}_bert"))
    return sweeps


def summarize(values: list[float | None]) -> dict[str, object]:
    """n, mean, sample std, min, max and the 95% t-interval of the mean (std and interval need n >= 2)."""
    values = [v for v in values if v is not None]
    if len(values) < 2:
        one = values[0] if values else None
        return {"n": len(values), "mean": one, "std": None, "min": one, "max": one, "ci95": None}
    stats = describe(values)
    return {"n": len(values), "mean": stats.mean, "std": stats.std, "min": stats.min, "max": stats.max, "ci95": [stats.ci_low, stats.ci_high]}


def job_metrics(sweeps_dir: Path) -> dict[tuple[str, int], tuple[Path, dict | None]]:
    """(experiment, seed) -> (job dir, its metrics.json or None) of every job the sweeps started."""
    jobs = {}
    for job in collect_jobs(sweeps_dir):
        exp, seed = job.override("experiment"), job.override("seed")
        if exp is not None and seed is not None:
            jobs[(exp, int(seed))] = (job.dir, job.metrics)
    return jobs


def make_row(data: str, arch: str, seeds: int, jobs: dict, overrides: list[str], skipped_note: str | None) -> Row:
    exp = experiment(data, arch)
    target = TARGETS[data][arch]
    row: Row = {
        "name": f"{data} {arch} acc",
        "value": None,
        "unit": "accuracy",
        "data": data,
        "arch": arch,
        "experiment": exp,
        "split": None,
        "command": shlex.join(["textclass-train", "-m", f"experiment={exp}", f"seed=range(1,{seeds + 1})", *overrides]),
        "seeds": list(range(1, seeds + 1)),
        "values": [],
        "n": 0,
        "std": None, "min": None, "max": None, "ci95": None,
        "f1": None,
        "acc_best": None,  # the old headline: val/acc_best, the best epoch on the selection split
        "moved": None,
        "epochs": None,
        "time_s": None,
        "target": target,
        "met": None,
        "leader": False,
        "leader_gap_significant": None,  # from textclass-compare: significantly behind the leader
        "status": "skipped" if skipped_note else "failed",
        "note": skipped_note or "",
        "job_dirs": [],
    }
    if skipped_note:
        return row
    found = [jobs.get((exp, s)) for s in row["seeds"]]
    done = [(d, m) for d, m in (f for f in found if f) if m is not None]
    failed, not_run = sum(1 for f in found if f and f[1] is None), sum(1 for f in found if f is None)
    if not done:
        row["note"] = "no finished job (the sweep stopped before it, or its jobs failed)"
        return row
    key, split = headline(done[0][1])
    f1_key, _ = headline(done[0][1], "f1")
    histories = [read_history(d / HISTORY_FILE) for d, _ in done]
    stats = summarize([m[key] for _, m in done])
    row.update(
        value=stats["mean"],
        split=split,
        values=[m[key] for _, m in done],
        n=stats["n"], std=stats["std"], min=stats["min"], max=stats["max"], ci95=stats["ci95"],
        f1=summarize([m[f1_key] for _, m in done])["mean"],
        acc_best=summarize([m[VAL_ACC_BEST] for _, m in done])["mean"],
        epochs=summarize([h[0] for h in histories])["mean"],
        time_s=summarize([h[1] for h in histories])["mean"],
        status="ok",
        job_dirs=[str(d) for d, _ in done],
        note=", ".join(f"{k} of {seeds} seeds {what}" for k, what in ((failed, "failed"), (not_run, "not run")) if k),
    )
    row["moved"] = row["value"] - row["acc_best"]
    if target is not None:
        row["met"] = bool(row["value"] >= target)
    return row


def compare_command() -> list[str]:
    beside = Path(sys.executable).parent / "textclass-compare"
    return [str(beside)] if beside.is_file() else [sys.executable, "-m", "textclass", "compare"]


def significance(data: str, work_dir: Path, env: dict[str, str], jobs: dict) -> dict[str, str]:
    """textclass-compare over the dataset's sweeps: experiment -> its leaderboard mark ("leader",
    "≈ leader": not significantly behind it, "behind": significantly behind, "not compared"); empty when
    the comparison failed (stderr says why)."""
    # every sweep of the dataset under multirun/ (<data>, <data>_bert, and any added to a work dir by hand)
    dirs = [str(d) for d in sorted((work_dir / "multirun").glob(f"{data}*")) if (d / "multirun.yaml").is_file()]
    out = work_dir / f"compare_{data}"
    result = subprocess.run([*compare_command(), *dirs, "split=test", f"output={out}"], env=env, capture_output=True, text=True)
    if result.returncode != 0:
        print(f"textclass-compare on {data} exited {result.returncode}: {result.stderr.strip()[-500:]}", file=sys.stderr)
        return {}
    report = json.loads((out / "compare.json").read_text())
    experiment_of = {str(Path(job_dir).resolve()): exp for (exp, _), (job_dir, _) in jobs.items()}
    marks = {entry["name"]: entry["mark"] for entry in report["leaderboard"]}
    by_experiment = {}
    for system in report["systems"]:
        experiments = {experiment_of.get(str(Path(r["dir"]).resolve())) for r in system["runs"]}
        if len(experiments) == 1 and None not in experiments:
            by_experiment[experiments.pop()] = marks[system["name"]]
    return by_experiment


def _num(value: object, fmt: str) -> str:
    return "—" if value is None or (isinstance(value, float) and math.isnan(value)) else format(value, fmt)


def to_markdown(rows: list[Row]) -> str:
    lines = [
        "| `experiment=` | split | n | acc mean ± std | 95% CI | min – max | macro-F1 | epochs | time/run | vs leader |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if r["status"] != "ok":
            lines.append(f"| `{r['experiment']}` | | 0 | {r['note'] or r['status']} | | | | | | |")
            continue
        ci = "—" if r["ci95"] is None else f"[{r['ci95'][0]:.3f}, {r['ci95'][1]:.3f}]"
        std = "" if r["std"] is None else f" ± {r['std']:.3f}"
        mark = "leader" if r["leader"] else {True: "behind", False: "≈ leader", None: "—"}[r["leader_gap_significant"]]
        lines.append(
            f"| `{r['experiment']}` | {r['split']} | {r['n']} | {r['value']:.3f}{std} | {ci} | {r['min']:.3f} – {r['max']:.3f} | "
            f"{_num(r['f1'], '.3f')} | {_num(r['epochs'], '.1f')} | "
            f"{_num(r['time_s'], '.0f')} s | {mark} |"
        )
    notes = [f"- `{r['experiment']}`: {r['note']}" for r in rows if r["status"] == "ok" and r["note"]]
    return "\n".join(lines + (["", *notes] if notes else [])) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    require_data(args.data_dir, [f"{d}/train.tsv" for d in args.datasets])
    if args.report_only:
        work_dir = args.work_dir.resolve()
    else:
        work_dir, _ = prepare_work_dir(args.work_dir, "accuracy")
    sweeps = plan_sweeps(args, work_dir / "multirun")
    overrides = [*(QUICK_OVERRIDES if args.quick else ()), *args.extra]
    env = sweep_env(args.data_dir, args.jobs)
    returncodes, wall_s = {}, {}
    for sweep in [] if args.report_only else sweeps:
        command = sweep.command(overrides, args.jobs)
        print(f"running {len(sweep.archs)} configs x {sweep.seeds} seeds in {work_dir}:\n  {shlex.join(command)}", flush=True)
        start = time.perf_counter()
        returncodes[sweep.dir.name] = run_sweep(command, work_dir, env, args.quiet, log_name=f"{sweep.dir.name}.log")
        wall_s[sweep.dir.name] = time.perf_counter() - start
        print(f"{sweep.dir.name}: {len(sweep.archs) * sweep.seeds} jobs, {args.jobs} at a time, wall {wall_s[sweep.dir.name]:.0f} s", flush=True)
        if returncodes[sweep.dir.name] != 0:
            print(f"textclass-train exited with status {returncodes[sweep.dir.name]} (log: {work_dir / (sweep.dir.name + '.log')}); "
                  "writing the rows of the jobs that finished", file=sys.stderr)

    jobs = job_metrics(work_dir / "multirun") if (work_dir / "multirun").is_dir() else {}
    rows = []
    for data in args.datasets:
        data_rows = []
        for arch in args.archs:
            skipped = args.bert_note if arch == "bert" and not args.bert else None
            seeds = args.bert_seeds if arch == "bert" else args.seeds
            data_rows.append(make_row(data, arch, seeds, jobs, overrides, skipped))
        marks = significance(data, work_dir, env, jobs) if sum(r["status"] == "ok" for r in data_rows) >= 2 else {}
        for r in data_rows:
            mark = marks.get(r["experiment"])
            r["leader"] = mark == "leader"
            r["leader_gap_significant"] = {"behind": True, "≈ leader": False}.get(mark)
        rows += sorted(data_rows, key=lambda r: -(r["value"] or 0))
    table = to_markdown(rows)
    print()
    print(table, end="")
    with_target = [r for r in rows if r["met"] is not None]
    print(f"targets met: {sum(bool(r['met']) for r in with_target)}/{len(with_target)} (mean over seeds on the split in the "
          f"'split' column{'; QUICK run, not comparable to the targets' if args.quick else ''})")

    meta = {
        "quick": args.quick,
        "datasets": args.datasets,
        "archs": args.archs,
        "seeds": args.seeds,
        "bert_seeds": args.bert_seeds,
        "holdout": {d: (None if has_own_test(args.data_dir, d) else args.holdout) for d in args.datasets},
        "bert": "run" if args.bert else args.bert_note,
        "overrides": overrides,
        "commands": {s.dir.name: shlex.join(s.command(overrides, args.jobs)) for s in sweeps},
        "jobs": args.jobs,
        "returncodes": returncodes,
        "sweep_wall_s": wall_s,
        "work_dir": str(work_dir),
        # every job's run directory (with tensorboard/, history.csv, metrics.json, predictions) is under it
        "sweep_dir": str(work_dir / "multirun"),
        "data_dir": str(args.data_dir.resolve()),
        "cache_dir": env["TEXTCLASS_CACHE_DIR"],
        "value": "mean over seeds of the selected checkpoint's (by val/loss) accuracy on the split named in `split`: test = "
                 "a split that selected nothing (with data.holdout, the dataset's valid file); acc_best = the old headline "
                 "val/acc_best (best epoch on the selection split), moved = value - acc_best",
        "significance": "textclass-compare on each dataset's sweeps (split=test): leader_gap_significant = the gap to the "
                        "leader is significant at alpha 0.05 after Holm-Bonferroni",
        "valid_files": VALID_FILE,
        "time": "mean over seeds of the summed history.csv epoch_s",
        "targets": TARGETS,
    }
    write_results(args.out, meta, rows)
    md_path = args.out.with_suffix(".md")
    md_path.write_text(
        f"Accuracy of the `experiment=best/*` configs ({'quick: ' + ' '.join(QUICK_OVERRIDES) if args.quick else 'full'}), "
        f"{args.seeds} seed(s), {datetime.now(timezone.utc).isoformat(timespec='seconds')}; sweeps under `{work_dir / 'multirun'}`.\n\n"
        + table
    )
    print(f"wrote {md_path}")
    failed = [r["experiment"] for r in rows if r["status"] == "failed"]
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed or any(c != 0 for c in returncodes.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
