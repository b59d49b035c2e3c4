"""Benchmark of the batch-size study (NLP100-2020 ex.77): seconds per training epoch of the single-layer net on news.

Run from the repository root:
    python -m benchmarks.batch_size [--data-dir DIR] [--sizes 1,2,4,...,1024] [--quick] [--work-dir DIR] [--out PATH]

Runs the study exactly as a user would start it, as one multirun:
    textclass-train experiment=news_batch_size_study data.batch_size=<sizes> hydra.sweep.dir=<work dir>/multirun
(one training epoch per size, no validation) in a subprocess whose working directory is the work dir
(default outputs/benchmarks/batch_size/<timestamp>). Each job's `time/epoch_s` (its history.csv)
gives one row per size, with a `batch_size` field; one more row is the smallest size's epoch time
over the largest's. The sweep dir also gets the study's own summary.md and
epoch_s_mean_by_batch_size.png.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

from benchmarks._common import RESULTS_DIR, Row, default_data_dir, require_data, row, write_results
from benchmarks.accuracy import BASE_OVERRIDES, prepare_work_dir, run_sweep, sweep_env, train_command
from textclass.metric_names import EPOCH_S_MEAN
from textclass.reports.sweeps import collect_jobs, plot_points

SIZES = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
QUICK_SIZES = (16, 256)
QUICK_OVERRIDES = ("data.max_examples=500",)
EXPERIMENT = "news_batch_size_study"


def size_rows(points: list[tuple[float, float]]) -> list[Row]:
    """One row per (batch size, seconds per epoch), then the smallest size's time over the largest's."""
    rows = [{**row(f"news single-layer s/epoch bs{int(size)}", seconds, "s"), "batch_size": int(size)} for size, seconds in sorted(points)]
    if len(points) >= 2:
        (small, slow), (large, fast) = min(points), max(points)
        rows.append(row(f"news single-layer epoch time, batch {int(small)} over batch {int(large)}", slow / fast, "x"))
    return rows


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=default_data_dir(), help="folder holding news/")
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)), help="batch sizes, comma-separated")
    parser.add_argument("--quick", action="store_true",
                        help=f"sizes {','.join(map(str, QUICK_SIZES))} on {QUICK_OVERRIDES[0].split('=')[1]} examples (smoke check)")
    parser.add_argument("--work-dir", type=Path, default=None)
    parser.add_argument("--quiet", action="store_true", help="training output only to <work dir>/multirun.log")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR / "batch_size.json")
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes = ",".join(map(str, QUICK_SIZES))
    try:
        args.sizes = sorted({int(s) for s in args.sizes.split(",") if s.strip()})
    except ValueError:
        parser.error(f"--sizes must be comma-separated integers, got {args.sizes!r}")
    if not args.sizes or min(args.sizes) < 1:
        parser.error("--sizes needs at least one batch size >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    require_data(args.data_dir, ["news/train.tsv"])
    work_dir, sweep_dir = prepare_work_dir(args.work_dir, "batch_size")
    overrides = [*BASE_OVERRIDES, *(QUICK_OVERRIDES if args.quick else ())]
    command = [
        *train_command(),
        f"experiment={EXPERIMENT}",
        f"data.batch_size={','.join(map(str, args.sizes))}",
        f"hydra.sweep.dir={sweep_dir}",
        *overrides,
    ]
    print(f"running the batch-size study in {work_dir}:\n  {shlex.join(command)}", flush=True)
    start = time.perf_counter()
    returncode = run_sweep(command, work_dir, sweep_env(args.data_dir), args.quiet)
    sweep_s = time.perf_counter() - start
    points = plot_points(collect_jobs(sweep_dir), "data.batch_size", EPOCH_S_MEAN) if sweep_dir.is_dir() else []
    rows = size_rows(points)
    for r in rows:
        print(f"{r['name']:<60} {r['value']:>10.4g} {r['unit']}")
    missing = sorted(set(args.sizes) - {int(size) for size, _ in points})
    if returncode != 0 or missing:
        print(f"textclass-train exited with status {returncode}; no epoch time for batch sizes {missing} "
              f"(log: {work_dir / 'multirun.log'})", file=sys.stderr)
    meta = {
        "quick": args.quick,
        "sizes": args.sizes,
        "command": shlex.join(command),
        "returncode": returncode,
        "sweep_wall_s": sweep_s,
        "sweep_dir": str(sweep_dir),
        "missing_sizes": missing,
    }
    write_results(args.out, meta, rows)
    return 0 if returncode == 0 and not missing else 1


if __name__ == "__main__":
    sys.exit(main())
