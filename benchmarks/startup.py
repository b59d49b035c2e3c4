"""Start-up time: textclass-train's `--help`, `--cfg job`, and a bag-of-embeddings news run's time
from process start to its first training batch, against the floor of `import lightning`; and a cold
`textclass predict` of one sentence with a trained bag-of-embeddings run and a MiniLM run, against
the floor of `import torch` (each side predicts with a run it trained itself).

    .venv/bin/python -m benchmarks.startup [--before REV] [--repeats 5] [--quick]

--before REV also measures the sources of git revision REV (a temporary worktree put first on
PYTHONPATH, so it shadows the editable install), each command alternating between the two, so the
ratio comes from one run on one equally busy machine. Figures are medians of --repeats runs.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks._common import REPO, RESULTS_DIR, default_data_dir, require_data, row, write_results

# Written into a temporary folder on PYTHONPATH: a user callback (allowed_targets) that notes the
# wall-clock time of the first training batch and ends the process there.
PROBE = '''
import os, time
from lightning.pytorch.callbacks import Callback


class FirstBatch(Callback):
    def __init__(self, path: str):
        self.path = path

    def on_train_batch_start(self, *args, **kwargs):
        with open(self.path, "w") as f:
            f.write(repr(time.time()))
        os._exit(0)
'''

TRAIN = "import sys; from textclass.commands.train import main; sys.argv[0] = 'textclass-train'; main()"
TEXTCLASS = "import sys; from textclass.commands.main import main; sys.argv[0] = 'textclass'; main()"
# the runs cold predictions load: one epoch, the MiniLM one on a slice of news
PREDICT_RUNS = {
    "bow": ["data=news", "model=bow", "trainer.max_epochs=1", "logger=[]", "trainer.enable_progress_bar=false"],
    "minilm": ["data=news", "model=bert", "data.max_examples=200", "trainer.max_epochs=1", "logger=[]", "trainer.enable_progress_bar=false"],
}
BOW_NEWS = ["data=news", "model=bow", "trainer.enable_progress_bar=false", "logger=[]", "trainer.enable_model_summary=false"]


def first_batch_seconds(env: dict[str, str], work: Path) -> float:
    """Seconds from launching a bow news run to its first training batch."""
    stamp = work / "first_batch.txt"
    stamp.unlink(missing_ok=True)
    args = [*BOW_NEWS, f"hydra.run.dir={work / 'run'}", "+callbacks.first_batch._target_=startup_probe.FirstBatch",
            f"+callbacks.first_batch.path={stamp}", "++allowed_targets=[startup_probe.*]"]
    start = time.time()
    result = subprocess.run([sys.executable, "-c", TRAIN, *args], cwd=work, env=env, capture_output=True, text=True)
    if not stamp.is_file():
        raise SystemExit(f"the bow run did not reach its first batch:\n{result.stderr[-2000:]}")
    return float(stamp.read_text()) - start


def command_seconds(command: list[str], env: dict[str, str], work: Path) -> float:
    start = time.perf_counter()
    result = subprocess.run(command, cwd=work, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{result.stderr[-2000:]}")
    return elapsed


def train_predict_runs(env: dict[str, str], work: Path, side: str) -> dict[str, Path]:
    runs = {}
    for name, overrides in PREDICT_RUNS.items():
        runs[name] = work / f"{side}_{name}"
        command_seconds([sys.executable, "-c", TRAIN, *overrides, f"hydra.run.dir={runs[name]}"], env, work)
    return runs


def measure(env: dict[str, str], work: Path, runs: dict[str, Path]) -> dict[str, float]:
    predict = [sys.executable, "-c", TEXTCLASS, "predict", "text=Stocks fall as rates rise"]
    return {
        "import lightning": command_seconds([sys.executable, "-c", "import lightning"], env, work),
        "textclass-train --help": command_seconds([sys.executable, "-c", TRAIN, "--help"], env, work),
        "textclass-train --cfg job": command_seconds([sys.executable, "-c", TRAIN, "--cfg", "job"], env, work),
        "bow news: start to first batch": first_batch_seconds(env, work),
        "import torch": command_seconds([sys.executable, "-c", "import torch"], env, work),
        **{f"predict 1 sentence, {name}": command_seconds([*predict, f"ckpt_path={run}"], env, work) for name, run in runs.items()},
    }


def checkout(rev: str, into: Path) -> Path:
    subprocess.run(["git", "worktree", "add", "--detach", str(into), rev], cwd=REPO, check=True, capture_output=True)
    return into


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", metavar="REV", help="also measure git revision REV, alternating with the working tree")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="one repeat (smoke check)")
    parser.add_argument("--data-dir", type=Path, default=default_data_dir())
    parser.add_argument("--results", type=Path, default=RESULTS_DIR / "startup.json")
    args = parser.parse_args()
    require_data(args.data_dir, ["news/train.tsv", "news/valid.tsv"])
    repeats = 1 if args.quick else args.repeats

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "probe").mkdir()
        (tmp / "probe" / "startup_probe.py").write_text(PROBE)
        base = {**os.environ, "TEXTCLASS_DATA_DIR": str(args.data_dir.resolve()), "TEXTCLASS_CACHE_DIR": str(tmp / "cache")}
        sides = {"now": {**base, "PYTHONPATH": str(tmp / "probe")}}
        if args.before:
            source = checkout(args.before, tmp / "before")
            sides["before"] = {**base, "PYTHONPATH": f"{source / 'src'}{os.pathsep}{tmp / 'probe'}"}
        try:
            for env in sides.values():  # fills the data cache: every timed run reads it
                first_batch_seconds(env, tmp)
            runs = {side: train_predict_runs(env, tmp, side) for side, env in sides.items()}
            times: dict[str, dict[str, list[float]]] = {side: {} for side in sides}
            for _ in range(repeats):
                for side, env in sides.items():
                    for name, seconds in measure(env, tmp, runs[side]).items():
                        times[side].setdefault(name, []).append(seconds)
        finally:
            if args.before:
                subprocess.run(["git", "worktree", "remove", "--force", str(tmp / "before")], cwd=REPO, capture_output=True)

    medians = {side: {name: statistics.median(v) for name, v in by_name.items()} for side, by_name in times.items()}
    print(f"median of {repeats} runs, seconds" + (f"; before = {args.before}" if args.before else ""))
    header = f"{'':34s}" + "".join(f"{side:>10s}" for side in medians) + ("   before/now" if args.before else "")
    print(header)
    rows = []
    for name in medians["now"]:
        line = f"{name:34s}" + "".join(f"{medians[side][name]:10.2f}" for side in medians)
        if args.before:
            line += f"{medians['before'][name] / medians['now'][name]:12.1f}x"
        print(line)
        rows += [row(f"{side}: {name}", medians[side][name], "s") for side in medians]
    for side in medians:
        for name in PREDICT_RUNS:
            ratio = medians[side][f"predict 1 sentence, {name}"] / medians[side]["import torch"]
            print(f"{side}: cold predict, {name}, / import torch = {ratio:.2f}x")
            rows.append(row(f"{side}: cold predict {name} / import torch", ratio, "x"))
    write_results(args.results, {"before": args.before, "repeats": repeats, "command": BOW_NEWS}, rows)


if __name__ == "__main__":
    main()
