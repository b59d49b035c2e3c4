"""Benchmark of `textclass-predict` on CPU: sentences/s for batched file input, textcnn and lstm on SST-2,
and of the Python API's predict on a loaded model at batch 1 and 64.

Run from the repository root:
    python -m benchmarks.inference [--data-dir DIR] [--models textcnn,lstm] [--sentences 20000] [--quick] [--out PATH]

Each model is first trained for one epoch on a slice of SST-2 (throughput does not depend on how
well it was trained). Then the real `textclass-predict` command labels a file of N SST-2 dev
sentences. The batched rate is N over the seconds textclass-predict reports for tokenizing,
predicting and writing them (its last stderr line), without the process start-up (imports, loading
the checkpoint); the end-to-end rate, start-up included, and the start-up itself are reported too.
(Start-up used to be cancelled out by timing two file sizes, but on a busy machine its noise could
exceed the difference, down to a negative rate.)
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks._common import RESULTS_DIR, default_data_dir, require_data, row, write_results

BIN = Path(sys.executable).parent
TRAIN_SLICE = 5000  # SST-2 training sentences for the one-epoch model
API_SENTENCES = 2000  # sentences the Python API predicts, one a call and 64 a call


PREDICT_SECONDS = re.compile(r"predicted (\d+) sentences with .* in ([\d.]+) s")


def run(command: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, str]:
    """Wall seconds and error output of one console command; exits with that output on failure."""
    start = time.perf_counter()
    result = subprocess.run([str(BIN / command[0]), *command[1:]], cwd=cwd, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(f"{' '.join(command)} failed:\n{result.stderr[-3000:]}")
    return seconds, result.stderr


def dev_sentences(data_dir: Path, count: int) -> list[str]:
    """`count` SST-2 dev sentences, the dev set repeated as often as needed."""
    lines = (data_dir / "sst2" / "dev.tsv").read_text(encoding="utf-8").splitlines()[1:]
    sentences = [line.split("\t")[0] for line in lines if line.strip()]
    return [sentences[i % len(sentences)] for i in range(count)]


def benchmark(model: str, sentences: int, work: Path, env: dict[str, str], data_dir: Path) -> list[dict]:
    run_dir = work / f"{model}_run"
    run(["textclass-train", "data=sst2", f"model={model}", f"data.max_examples={TRAIN_SLICE}", "trainer.max_epochs=1", "logger=[]",
         "trainer.enable_progress_bar=false", f"hydra.run.dir={run_dir}"], cwd=work, env=env)
    ckpt = run_dir / "checkpoints" / "last.ckpt"
    source = work / f"{sentences}.txt"
    source.write_text("\n".join(dev_sentences(data_dir, sentences)) + "\n", encoding="utf-8")
    output = work / f"{model}_{sentences}.jsonl"
    seconds, stderr = run(["textclass-predict", f"ckpt_path={ckpt}", f"input={source}", f"output={output}"], cwd=work, env=env)
    written = sum(1 for _ in output.open(encoding="utf-8"))
    reported = PREDICT_SECONDS.search(stderr)
    if written != sentences or reported is None or int(reported[1]) != sentences:
        sys.exit(f"{model}: {written} predictions written for {sentences} sentences; textclass-predict said: {stderr.strip()[-500:]}")
    predicting = float(reported[2])
    return api_rates(model, run_dir, dev_sentences(data_dir, min(sentences, API_SENTENCES))) + [
        {"name": f"{model} predict sentences/s batched", "value": sentences / predicting, "unit": "sentences/s", "sentences": sentences},
        {"name": f"{model} predict sentences/s end-to-end", "value": sentences / seconds, "unit": "sentences/s", "sentences": sentences,
         "seconds": seconds},
        row(f"{model} predict start-up", seconds - predicting, "s"),
    ]


def api_rates(model: str, run_dir: Path, texts: list[str]) -> list[dict]:
    """Sentences/s of the Python API's predict on a loaded model: one sentence a call (a server
    answering requests), and the same sentences in batches of 64."""
    import textclass

    classifier = textclass.load(run_dir)
    classifier.predict(texts[:64])  # first-call costs (allocations, lazy inits) stay out of the rates
    rows = []
    for batch_size in (1, 64):
        start = time.perf_counter()
        for i in range(0, len(texts), batch_size):
            classifier.predict(texts[i : i + batch_size], batch_size=batch_size)
        rate = len(texts) / (time.perf_counter() - start)
        rows.append({"name": f"{model} API predict sentences/s, batch {batch_size}", "value": rate, "unit": "sentences/s", "sentences": len(texts)})
    return rows


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=default_data_dir(), help="folder holding sst2/")
    parser.add_argument("--models", default="textcnn,lstm")
    parser.add_argument("--sentences", type=int, default=20_000, help="lines in the larger input file")
    parser.add_argument("--quick", action="store_true", help="2,000 sentences (smoke check)")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR / "inference.json")
    args = parser.parse_args(argv)
    if args.quick:
        args.sentences = 2_000
    if args.sentences < 100:
        parser.error("--sentences must be at least 100")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    require_data(args.data_dir, ["sst2/train.tsv", "sst2/dev.tsv"])
    rows = []
    with tempfile.TemporaryDirectory(prefix="textclass-inference-") as tmp:
        work = Path(tmp)
        env = {**os.environ, "TEXTCLASS_DATA_DIR": str(args.data_dir.resolve())}
        for model in args.models.split(","):
            rows += benchmark(model, args.sentences, work, env, args.data_dir)
    print("| figure | value |\n|---|---|")
    for r in rows:
        print(f"| {r['name']} | {r['value']:,.1f} {r['unit']} |")
    settings = {
        "quick": args.quick,
        "sentences": args.sentences,
        "train_slice": TRAIN_SLICE,
        "data_dir": str(args.data_dir),
    }
    write_results(args.out, settings, rows)


if __name__ == "__main__":
    main()
