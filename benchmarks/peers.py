"""Benchmark of the peers: fastText, TF-IDF + logistic regression and the HF Trainer, on textclass's own
splits, beside textclass runs of the cheap models (bow, and fasttext with --textclass-models), in one
process on one machine.

Run from the repository root:
    python -m benchmarks.peers [--datasets news,sst2] [--peers fasttext,fasttext_glove,tfidf,hf_trainer]
                               [--seeds 1] [--threads N] [--holdout 0.1] [--textclass-results PATH]
                               [--quick] [--data-dir DIR] [--work-dir DIR] [--out PATH]

The splits are textclass's own: the dataset is composed from conf/data/<data>.yaml and read by
`read_splits` with the `Resplit` of `data.holdout=F`, as `textclass-train data=<data> data.holdout=F`
reads it: a stratified share F of train (seeded by the dataset's split_seed) is the selection split
(valid), the rest is train, and the dataset's valid file (news valid.tsv, SST-2 dev.tsv) is test,
used for no choice. (A dataset with a test split of its own, news built from the raw archive, keeps
its three splits.) The textclass runs of the same benchmark write their predictions' fingerprints of
valid and test; the peers' splits are checked against the first one's (`<data> splits = textclass's`).

- fastText (`fasttext`, and `fasttext_glove` with `pretrainedVectors` = GloVe 6B 50d as a .vec text
  file): `train_supervised` over a grid of lr x epoch x wordNgrams (dim 50, softmax, `thread` =
  --threads), the grid point with the best valid accuracy retrained with seeds 1..--seeds and scored
  on test. Input: textclass's word tokenizer for the dataset (lowercased; news: punctuation to
  spaces; SST-2: whitespace, it is pre-tokenized), tokens joined by spaces. fastText adds every word
  of the vectors file to its dictionary; the grid reads a file of the GloVe words that occur in the
  dataset's three splits (same vectors for every word the splits hold, far quicker to read), the
  retraining the whole 400k-word file, as a user would (its read time is in `train s`).
- TF-IDF (`tfidf`): word 1-2 grams + char_wb 2-5 grams (sublinear tf, lowercased raw texts) +
  LogisticRegression (newton-cg), C from a grid selected on valid; `train s` is the vectorizers' fit and the
  selected C's fit.
- HF Trainer (`hf_trainer`): `benchmarks/hf_trainer.py` fine-tunes the MiniLM of `model=bert` with
  its epochs, batch size, learning rate and precision (default only with a GPU).
- textclass (`--textclass-models`, default bow): `textclass-train experiment=best/<data>_<model>
  seed=1 data.holdout=F` in a subprocess. Speed: tokens/s = training tokens (the word tokenizer's
  count on the train split) x epochs / training seconds, for fastText the seconds of
  `train_supervised` (reading the file, the dictionary, the epochs), for textclass the summed
  `epoch_s` of history.csv (epochs and their validation passes; not the checkpoint writes, which
  Lightning makes after it at each epoch's end, nor the start-up or data preparation). The target
  (issues 16, 28): each >= 0.5 x the tokens/s of the fastText that is the same model (dim 50;
  wordNgrams=1 for bow, the model's word_ngrams for fasttext) at the selected lr and epochs.

The accuracy table sets each peer beside the best textclass figure of benchmarks/accuracy.py (its
5-seed results file, --textclass-results; the textclass table is never rerun here). Writes the rows
(`<data> <peer> test acc`, `... train s`, `... tokens/s`, ...) to --out and the tables beside it (.md).
"""

from __future__ import annotations

import argparse
import importlib.util
import itertools
import json
import os
import shlex
import statistics
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

from benchmarks._common import REPO, RESULTS_DIR, Row, builtin_data_config, default_data_dir, hydra_string, quiet_training, require_data, row, write_results
from benchmarks.accuracy import DEFAULT_HOLDOUT, has_own_test, read_history, run_sweep, split_list, sweep_env, train_command
from textclass.data.dataset import Examples
from textclass.metric_names import headline
from textclass.run_files import HISTORY_FILE, METRICS_FILE, predictions_file
from textclass.tokenizers.word import WordTokenizer

DATASETS = ("news", "sst2")
PEERS = ("fasttext", "fasttext_glove", "tfidf", "hf_trainer")
CPU_PEERS = ("fasttext", "fasttext_glove", "tfidf")
FASTTEXT_DIM = 50  # GloVe 6B 50d, and bow's embedding size
QUICK_MAX_EXAMPLES = 200
QUICK_EPOCHS = 1
SPEED_TARGET = 0.5  # textclass tokens/s >= 0.5 x the same model's in fastText (issues 16, 28)
TEXTCLASS_MODELS = ("bow", "fasttext")
# the fastText wordNgrams each textclass model is (best/<data>_fasttext: word and bigram vectors)
WORD_NGRAMS = {"bow": 1, "fasttext": 2}
LABEL_PREFIX = "__label__"
GLOVE_VEC = "glove_6b_50d.vec"


@dataclass(frozen=True)
class FastTextGrid:
    lr: tuple[float, ...]
    epoch: tuple[int, ...]
    word_ngrams: tuple[int, ...]

    def points(self) -> list[dict[str, float | int]]:
        return [{"lr": lr, "epoch": e, "wordNgrams": n} for lr, e, n in itertools.product(self.lr, self.epoch, self.word_ngrams)]


FASTTEXT_GRID = FastTextGrid(lr=(0.1, 0.5, 1.0), epoch=(5, 10, 25), word_ngrams=(1, 2))
QUICK_FASTTEXT_GRID = FastTextGrid(lr=(0.5, 1.0), epoch=(QUICK_EPOCHS,), word_ngrams=(1, 2))
TFIDF_C = (1.0, 4.0, 16.0)
QUICK_TFIDF_C = (1.0, 4.0)


@dataclass
class Splits:
    """One dataset's train / valid (selection) / test splits as textclass-train reads them, and its word tokenizer."""

    data: str
    train: Examples
    valid: Examples
    test: Examples
    tokenizer: WordTokenizer  # resolved for the dataset (punct or whitespace)
    holdout: float | None
    classes: int

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.train), "valid": len(self.valid), "test": len(self.test)}

    def tokens(self, examples: Examples) -> list[list[str]]:
        return [self.tokenizer.tokenize(t) for t in examples.texts]

    def train_tokens(self) -> int:
        return sum(len(t) for t in self.tokens(self.train))


@dataclass
class PeerResult:
    """A peer on one dataset: the selected settings, their valid accuracy, and test accuracy over seeds."""

    peer: str
    settings: dict[str, object]
    valid_acc: float | None  # None: the peer selects nothing on valid (HF Trainer: fixed epochs)
    test_accs: list[float]
    train_s: list[float]  # per final fit
    tokens_per_s: float | None = None  # fastText
    examples_per_s: float | None = None  # HF Trainer
    grid: list[dict[str, object]] = field(default_factory=list)  # every grid point: settings, valid acc, seconds
    note: str = ""

    @property
    def test_acc(self) -> float:
        return statistics.fmean(self.test_accs)

    @property
    def mean_train_s(self) -> float:
        return statistics.fmean(self.train_s)


@dataclass
class TextclassRun:
    """A textclass run of this benchmark: its figures and whether its splits are the peers'."""

    model: str
    dir: Path
    returncode: int
    test_acc: float | None = None
    epochs: int | None = None
    train_s: float | None = None
    tokens_per_s: float | None = None
    splits_match: bool | None = None
    command: str = ""


# --- the splits -------------------------------------------------------------------------------------


def holdout_for(data: str, data_dir: Path, holdout: float) -> float | None:
    """data.holdout for the dataset: none for one with a test split of its own (as accuracy.py decides)."""
    return None if has_own_test(data_dir, data) else holdout


def load_splits(data: str, data_dir: Path, holdout: float | None, max_examples: int | None = None) -> Splits:
    """The splits `textclass-train data=<data> data.holdout=<holdout> data.max_examples=<max_examples>` trains,
    selects and reports on: the dataset composed from the config tree, read and re-cut by textclass's own code."""
    from hydra.utils import instantiate

    from textclass.data.encoded import Resplit, read_splits

    cfg = builtin_data_config(data, data_dir, *([f"data.holdout={holdout}"] if holdout is not None else []))
    dataset = instantiate(cfg.data.dataset, _convert_="all")
    tokenizer = instantiate(cfg.tokenizer).resolved(dataset.pretokenized)
    dataset.prepare()
    splits, labels, _ = read_splits(dataset, Resplit.from_config(cfg.data))
    first = slice(0, max_examples)  # data.max_examples: the first N of each split, after the re-cut
    return Splits(data, *(splits[s].take(first) for s in ("train", "valid", "test")), tokenizer, holdout, len(labels))


# --- fastText ---------------------------------------------------------------------------------------


def write_fasttext_file(path: Path, tokens: list[list[str]], labels: np.ndarray) -> Path:
    path.write_text("".join(f"{LABEL_PREFIX}{label} {' '.join(words)}\n" for words, label in zip(tokens, labels)), encoding="utf-8")
    return path


def write_vec(path: Path, words: list[str], vectors: np.ndarray) -> Path:
    """Vectors in the word2vec text format fastText reads (a `<count> <dim>` header line), written atomically."""
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", encoding="utf-8") as f:
        f.write(f"{len(words)} {vectors.shape[1]}\n")
        for word, vector in zip(words, vectors):
            f.write(word + " " + " ".join(f"{x:.6g}" for x in vector) + "\n")
    tmp.replace(path)
    return path


def glove_vectors():
    from textclass.embeddings import EmbeddingSpec, load_vectors

    return load_vectors(EmbeddingSpec(dim=FASTTEXT_DIM))


def full_glove_vec(cache_dir: Path) -> Path:
    """The whole GloVe 6B 50d as a .vec file, written once into the cache."""
    path = cache_dir / "peers" / GLOVE_VEC
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        kv = glove_vectors()
        print(f"writing {len(kv)} GloVe vectors to {path} (once)", flush=True)
        write_vec(path, kv.index_to_key, kv.vectors)
    return path


def dataset_glove_vec(path: Path, splits: Splits) -> Path:
    """The GloVe vectors of the words in the dataset's three splits: every vector fastText would use on them."""
    kv = glove_vectors()
    words = {w for examples in (splits.train, splits.valid, splits.test) for ws in splits.tokens(examples) for w in ws}
    kept = [w for w in kv.index_to_key if w in words]
    return write_vec(path, kept, np.stack([kv[w] for w in kept]) if kept else np.zeros((0, FASTTEXT_DIM), np.float32))


def fit_fasttext(train_file: Path, point: dict[str, float | int], threads: int, seed: int, vectors: Path | None):
    """(model, seconds of train_supervised)."""
    import fasttext

    extra = {"pretrainedVectors": str(vectors)} if vectors is not None else {}
    start = time.perf_counter()
    model = fasttext.train_supervised(
        input=str(train_file), dim=FASTTEXT_DIM, thread=threads, seed=seed, verbose=0, minCount=1, loss="softmax", **point, **extra
    )
    return model, time.perf_counter() - start


def fasttext_accuracy(model, tokens: list[list[str]], labels: np.ndarray) -> float:
    # the list form: fasttext-wheel's single-string predict fails under numpy 2
    predicted, _ = model.predict([" ".join(words) for words in tokens], k=1)
    ids = np.array([int(p[0].removeprefix(LABEL_PREFIX)) if p else -1 for p in predicted])
    return float((ids == labels).mean())


def run_fasttext(
    peer: str, splits: Splits, grid: FastTextGrid, seeds: int, threads: int, work: Path, grid_vectors: Path | None, final_vectors: Path | None
) -> PeerResult:
    """Grid on valid, then the selected point retrained with seeds 1..`seeds` (vectors: `final_vectors`) and scored on test."""
    train_file = write_fasttext_file(work / f"{splits.data}_fasttext_train.txt", splits.tokens(splits.train), splits.train.labels)
    valid_tokens, test_tokens = splits.tokens(splits.valid), splits.tokens(splits.test)
    n_tokens = splits.train_tokens()
    tried = []
    for point in grid.points():
        model, seconds = fit_fasttext(train_file, point, threads, 1, grid_vectors)
        tried.append({**point, "valid_acc": fasttext_accuracy(model, valid_tokens, splits.valid.labels), "train_s": seconds,
                      "tokens_per_s": n_tokens * point["epoch"] / seconds})
    best = max(tried, key=lambda t: t["valid_acc"])  # the first of equals: grid order
    point = {k: best[k] for k in ("lr", "epoch", "wordNgrams")}
    test_accs, times = [], []
    for seed in range(1, seeds + 1):
        model, seconds = fit_fasttext(train_file, point, threads, seed, final_vectors)
        test_accs.append(fasttext_accuracy(model, test_tokens, splits.test.labels))
        times.append(seconds)
    settings = {**point, "dim": FASTTEXT_DIM, "thread": threads}
    if final_vectors is not None:
        settings["pretrainedVectors"] = str(final_vectors)
    result = PeerResult(peer, settings, best["valid_acc"], test_accs, times, grid=tried)
    result.tokens_per_s = n_tokens * point["epoch"] / result.mean_train_s
    return result


def like_speed(result: PeerResult, model: str) -> float:
    """fastText's tokens/s as the textclass `model` is (its wordNgrams, dim 50), at the selected lr and
    epochs: the grid's own fit."""
    lr, epoch = result.settings["lr"], result.settings["epoch"]
    return next(t["tokens_per_s"] for t in result.grid if t["lr"] == lr and t["epoch"] == epoch and t["wordNgrams"] == WORD_NGRAMS[model])


# --- TF-IDF + logistic regression -------------------------------------------------------------------


def tfidf_features():
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.pipeline import FeatureUnion

    return FeatureUnion([
        ("word", TfidfVectorizer(analyzer="word", ngram_range=(1, 2), lowercase=True, sublinear_tf=True)),
        ("char", TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), lowercase=True, sublinear_tf=True)),
    ])


def run_tfidf(splits: Splits, cs: tuple[float, ...]) -> PeerResult:
    """Vectorizers fitted on train; C selected on valid; the selected fit scored on test (it is deterministic: one run)."""
    from sklearn.linear_model import LogisticRegression

    start = time.perf_counter()
    features = tfidf_features()
    x_train = features.fit_transform(splits.train.texts)
    vectorize_s = time.perf_counter() - start
    x_valid, x_test = features.transform(splits.valid.texts), features.transform(splits.test.texts)
    tried, models = [], {}
    for c in cs:
        start = time.perf_counter()
        # newton-cg: the quickest of sklearn's solvers on these sparse n-gram matrices (lbfgs takes several times as long to the same optimum)
        models[c] = LogisticRegression(C=c, solver="newton-cg", max_iter=1000).fit(x_train, splits.train.labels)
        seconds = time.perf_counter() - start
        tried.append({"C": c, "valid_acc": float((models[c].predict(x_valid) == splits.valid.labels).mean()), "fit_s": seconds})
    best = max(tried, key=lambda t: t["valid_acc"])
    test_acc = float((models[best["C"]].predict(x_test) == splits.test.labels).mean())
    settings = {"C": best["C"], "features": x_train.shape[1], "word_ngrams": [1, 2], "char_wb_ngrams": [2, 5]}
    return PeerResult("tfidf", settings, best["valid_acc"], [test_acc], [vectorize_s + best["fit_s"]], grid=tried)


# --- HF Trainer -------------------------------------------------------------------------------------


def hf_trainer_available() -> bool:
    return (Path(__file__).parent / "hf_trainer.py").is_file() and importlib.util.find_spec("accelerate") is not None


def run_hf_trainer(splits: Splits, work: Path, epochs: int | None) -> PeerResult:
    """The HF Trainer fine-tuning the MiniLM with `experiment=best/<data>_bert`'s settings (seed 1, as accuracy.py's
    first seed; `epochs` instead of the config's when given), scored on test. It selects nothing: no valid accuracy."""
    from benchmarks.hf_trainer import bert_settings, finetune

    settings = bert_settings([f"experiment=best/{splits.data}_bert"], seed=1, **({"epochs": epochs} if epochs else {}))
    result = finetune(splits.train.texts, splits.train.labels, splits.test.texts, splits.test.labels, settings=settings,
                      num_labels=splits.classes, work_dir=work / f"{splits.data}_hf_trainer")
    shown = {k: result.settings[k] for k in ("epochs", "batch_size", "lr", "precision", "device")}
    note = "" if result.examples_per_s is not None else "too few steps to time after the warm-up"
    return PeerResult("hf_trainer", shown, None, [result.accuracy], [result.train_wall_s], examples_per_s=result.examples_per_s, note=note)


# --- textclass runs ---------------------------------------------------------------------------------


def textclass_command(splits: Splits, model: str, run_dir: Path, quick: bool) -> list[str]:
    return [
        *train_command(),
        f"experiment=best/{splits.data}_{model}",
        "seed=1",
        *([f"data.holdout={splits.holdout}"] if splits.holdout is not None else []),
        f"hydra.run.dir={hydra_string(run_dir)}",
        "trainer.enable_progress_bar=false",
        *([f"data.max_examples={QUICK_MAX_EXAMPLES}", f"trainer.max_epochs={QUICK_EPOCHS}"] if quick else []),
    ]


def same_examples(run_dir: Path, split: str, examples: Examples) -> bool:
    """Whether the run's saved predictions on `split` are on exactly `examples` (rows, texts, labels: the fingerprint)."""
    from textclass.training.predictions import Predictions, fingerprint

    path = run_dir / predictions_file(split)
    return path.is_file() and Predictions.load(path).data == fingerprint(examples)


def run_textclass(splits: Splits, model: str, work: Path, env: dict[str, str], quick: bool) -> TextclassRun:
    name = f"{splits.data}_{model}"
    run_dir = work / name
    command = textclass_command(splits, model, run_dir, quick)
    print(f"  textclass: {shlex.join(command)}", flush=True)
    returncode = run_sweep(command, work, env, quiet=True, log_name=f"{name}.log")
    run = TextclassRun(model, run_dir, returncode, command=shlex.join(command))
    if returncode != 0 or not (run_dir / METRICS_FILE).is_file():
        print(f"textclass-train exited {returncode} (log: {work / (name + '.log')})", file=sys.stderr)
        return run
    metrics = json.loads((run_dir / METRICS_FILE).read_text())
    run.test_acc = metrics.get(headline(metrics)[0])
    run.epochs, run.train_s, _ = read_history(run_dir / HISTORY_FILE)
    if run.epochs and run.train_s:
        run.tokens_per_s = splits.train_tokens() * run.epochs / run.train_s
    run.splits_match = same_examples(run_dir, "valid", splits.valid) and same_examples(run_dir, "test", splits.test)
    return run


# --- the textclass reference (accuracy.py's results) -------------------------------------------------


def textclass_reference(path: Path | None) -> dict[str, dict[str, object]]:
    """Per dataset, the best word row and the bert row of accuracy.py's results file (empty without one)."""
    if path is None or not path.is_file():
        return {}
    rows = [r for r in json.loads(path.read_text())["rows"] if r.get("status") == "ok" and r.get("value") is not None]
    reference: dict[str, dict[str, object]] = {}
    for data in DATASETS:
        mine = [r for r in rows if r.get("data") == data or str(r.get("experiment", "")).startswith(f"best/{data}_")]
        words = [r for r in mine if not str(r.get("experiment", "")).endswith("_bert")]
        bert = [r for r in mine if str(r.get("experiment", "")).endswith("_bert")]
        if words:
            reference.setdefault(data, {})["best"] = max(words, key=lambda r: r["value"])
        if bert:
            reference.setdefault(data, {})["bert"] = bert[0]
    return reference


# --- report -----------------------------------------------------------------------------------------


def result_rows(data: str, results: list[PeerResult], runs: list[TextclassRun], splits: Splits) -> list[Row]:
    rows = [row(f"{data} {split} examples", n, "examples") for split, n in splits.sizes().items()]
    rows.append(row(f"{data} train tokens", splits.train_tokens(), "tokens"))
    for r in results:
        if r.valid_acc is not None:
            rows.append(row(f"{data} {r.peer} valid acc", r.valid_acc, "accuracy"))
        rows += [
            row(f"{data} {r.peer} test acc", r.test_acc, "accuracy"),
            row(f"{data} {r.peer} train s", r.mean_train_s, "s"),
        ]
        if r.tokens_per_s is not None:
            rows.append(row(f"{data} {r.peer} tokens/s", r.tokens_per_s, "tokens/s"))
        if r.examples_per_s is not None:
            rows.append(row(f"{data} {r.peer} examples/s", r.examples_per_s, "examples/s"))
    fasttext = next((r for r in results if r.peer == "fasttext"), None)
    for run in runs:
        if run.tokens_per_s is None:
            continue
        m = run.model
        rows += [
            row(f"{data} textclass {m} test acc", run.test_acc, "accuracy"),
            row(f"{data} textclass {m} train s", run.train_s, "s"),
            row(f"{data} textclass {m} tokens/s", run.tokens_per_s, "tokens/s"),
        ]
        if fasttext is not None:
            rows += [
                row(f"{data} fasttext {m}-like tokens/s", like_speed(fasttext, m), "tokens/s"),
                row(f"{data} {m}/fasttext {m}-like tokens/s", run.tokens_per_s / like_speed(fasttext, m), "x"),
                row(f"{data} {m}/fasttext tokens/s", run.tokens_per_s / fasttext.tokens_per_s, "x"),
            ]
    if runs and runs[0].splits_match is not None:
        rows.append(row(f"{data} splits = textclass's", float(runs[0].splits_match), "bool"))
    return rows


def _fmt(value: float | None, spec: str) -> str:
    return "—" if value is None else format(value, spec)


def describe(r: PeerResult) -> str:
    shown = {k: v for k, v in r.settings.items() if k not in ("pretrainedVectors", "features", "thread")}
    return ", ".join(f"{k}={v}" for k, v in shown.items())


def accuracy_table(data: str, results: list[PeerResult], runs: list[TextclassRun], reference: dict[str, object]) -> str:
    best, bert = reference.get("best"), reference.get("bert")
    head = "| peer | selected on valid | valid acc | test acc | train s | textclass best (accuracy.py) | test acc | textclass − peer | textclass / peer |"
    lines = [head, "|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        ref = bert if r.peer == "hf_trainer" else best
        seeds = f" ({len(r.test_accs)} seeds)" if len(r.test_accs) > 1 else ""
        ref_cells = (
            f"`{ref['experiment']}` ({ref.get('n', '?')} seeds) | {ref['value']:.3f} | {ref['value'] - r.test_acc:+.3f} | {ref['value'] / r.test_acc:.3f}"
            if ref else "— (no accuracy.py results) | | |"
        )
        lines.append(f"| {r.peer} | {describe(r)} | {_fmt(r.valid_acc, '.3f')} | {r.test_acc:.3f}{seeds} | {r.mean_train_s:.1f} | {ref_cells} |")
    for run in runs:
        if run.test_acc is not None:
            lines.append(f"| textclass {run.model} (this run, seed 1) | `experiment=best/{data}_{run.model}` | | {run.test_acc:.3f} | {_fmt(run.train_s, '.1f')} | | | | |")
    return "\n".join(lines) + "\n"


def speed_line(data: str, results: list[PeerResult], run: TextclassRun) -> str:
    fasttext = next((r for r in results if r.peer == "fasttext"), None)
    m = run.model
    if fasttext is None or run.tokens_per_s is None:
        return f"{data} {m} speed: not measured (needs the fasttext peer and a finished textclass {m} run)\n"
    like = like_speed(fasttext, m)
    ratio = run.tokens_per_s / like
    return (
        f"{data} tokens/s: textclass {m} {run.tokens_per_s:,.0f} ({run.epochs} epochs in {run.train_s:.1f} s); fastText "
        f"wordNgrams={WORD_NGRAMS[m]} dim 50 lr={fasttext.settings['lr']} epoch={fasttext.settings['epoch']} {like:,.0f}, selected "
        f"({describe(fasttext)}) {fasttext.tokens_per_s:,.0f}; {m}/fastText {ratio:.2f} "
        f"(target >= {SPEED_TARGET}: {'met' if ratio >= SPEED_TARGET else 'missed'}), {m}/selected {run.tokens_per_s / fasttext.tokens_per_s:.2f}\n"
    )


# --- main -------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=default_data_dir(), help="folder holding sst2/ and news/")
    parser.add_argument("--datasets", default=",".join(DATASETS), help="comma-separated, from: " + ",".join(DATASETS))
    parser.add_argument("--peers", default=None,
                        help=f"comma-separated, from: {','.join(PEERS)} (default: {','.join(CPU_PEERS)}, and hf_trainer with a GPU)")
    parser.add_argument("--seeds", type=int, default=1, help="fastText: the selected settings retrained with seeds 1..N (default 1)")
    parser.add_argument("--hf-epochs", type=int, default=None,
                        help="hf_trainer: epochs instead of experiment=best/<data>_bert's (e.g. 1 on a CPU)")
    parser.add_argument("--threads", type=int, default=None,
                        help="threads of both sides: fastText's thread= and the textclass run's OMP_NUM_THREADS (default: fastText "
                             "the machine's cores, textclass torch's default)")
    parser.add_argument("--holdout", type=float, default=DEFAULT_HOLDOUT,
                        help="data.holdout of a dataset without a test split of its own: this share of train selects, valid reports")
    parser.add_argument("--textclass-results", type=Path, default=RESULTS_DIR / "accuracy.json",
                        help="benchmarks/accuracy.py's results file: the textclass figures beside the peers")
    parser.add_argument("--textclass-models", default="bow",
                        help=f"comma-separated textclass models run beside the peers, from: {','.join(TEXTCLASS_MODELS)} (default bow)")
    parser.add_argument("--no-textclass-run", dest="textclass_run", action="store_false",
                        help="skip the textclass runs (no speed line, no split check)")
    parser.add_argument("--quick", action="store_true",
                        help=f"first {QUICK_MAX_EXAMPLES} examples of each split, {QUICK_EPOCHS} epoch, tiny grids (smoke check)")
    parser.add_argument("--work-dir", type=Path, default=None, help="training files and the textclass run (default outputs/benchmarks/peers/<timestamp>)")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR / "peers.json", help="results JSON; the Markdown tables go beside it (.md)")
    args = parser.parse_args(argv)
    args.datasets = split_list(args.datasets, DATASETS, "--datasets", parser)
    default_peers = [*CPU_PEERS, *(("hf_trainer",) if torch.cuda.is_available() else ())]
    args.peers = split_list(args.peers or ",".join(default_peers), PEERS, "--peers", parser)
    args.textclass_models = split_list(args.textclass_models, TEXTCLASS_MODELS, "--textclass-models", parser) if args.textclass_run else []
    if args.seeds < 1 or (args.threads is not None and args.threads < 1):
        parser.error("--seeds and --threads must be at least 1")
    if not 0 < args.holdout < 1:
        parser.error(f"--holdout {args.holdout}: a fraction of train between 0 and 1")
    if "hf_trainer" in args.peers and not hf_trainer_available():
        parser.error("--peers hf_trainer needs benchmarks/hf_trainer.py and accelerate (pip install 'textclass[peers]')")
    return args


def prepare_work_dir(work_dir: Path | None, datasets: list[str], models: list[str]) -> Path:
    stamp = datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    work = (work_dir or REPO / "outputs" / "benchmarks" / "peers" / stamp).resolve()
    used = [work / f"{d}_{m}" for d in datasets for m in models if (work / f"{d}_{m}").exists()]
    if used:
        print(f"{', '.join(map(str, used))} already exist: pass a fresh --work-dir", file=sys.stderr)
        raise SystemExit(2)
    work.mkdir(parents=True, exist_ok=True)
    return work


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    require_data(args.data_dir, [f"{d}/train.tsv" for d in args.datasets])
    quiet_training()
    work = prepare_work_dir(args.work_dir, args.datasets, args.textclass_models)
    env = sweep_env(args.data_dir)
    if args.threads is not None:
        env["OMP_NUM_THREADS"] = str(args.threads)  # torch's intra-op threads in the textclass run
    threads = args.threads or os.cpu_count() or 1
    cache_dir = Path(env["TEXTCLASS_CACHE_DIR"])
    grid, cs = (QUICK_FASTTEXT_GRID, QUICK_TFIDF_C) if args.quick else (FASTTEXT_GRID, TFIDF_C)
    reference = textclass_reference(args.textclass_results)
    rows: list[Row] = []
    tables, meta_datasets = [], {}
    for data in args.datasets:
        splits = load_splits(data, args.data_dir, holdout_for(data, args.data_dir, args.holdout), QUICK_MAX_EXAMPLES if args.quick else None)
        print(f"{data}: {splits.sizes()} (holdout {splits.holdout}), {splits.train_tokens():,} training tokens", flush=True)
        results: list[PeerResult] = []
        for peer in args.peers:
            print(f"  {peer} ...", flush=True)
            if peer == "fasttext":
                results.append(run_fasttext(peer, splits, grid, args.seeds, threads, work, None, None))
            elif peer == "fasttext_glove":
                subset = dataset_glove_vec(work / f"{data}_glove.vec", splits)
                final = subset if args.quick else full_glove_vec(cache_dir)  # quick: no 170 MB file
                results.append(run_fasttext(peer, splits, grid, args.seeds, threads, work, subset, final))
            elif peer == "tfidf":
                results.append(run_tfidf(splits, cs))
            elif peer == "hf_trainer":
                results.append(run_hf_trainer(splits, work, QUICK_EPOCHS if args.quick else args.hf_epochs))
            r = results[-1]
            print(f"    {describe(r)}: valid {_fmt(r.valid_acc, '.3f')}, test {r.test_acc:.3f}, {r.mean_train_s:.1f} s", flush=True)
        runs = [run_textclass(splits, model, work, env, args.quick) for model in args.textclass_models]
        rows += result_rows(data, results, runs, splits)
        table = accuracy_table(data, results, runs, reference.get(data, {}))
        speed = "".join(speed_line(data, results, run) for run in runs)
        split_note = "" if not runs or runs[0].splits_match is None else (
            f"{data} splits = textclass's: {'yes' if runs[0].splits_match else 'NO'} (fingerprints of valid and test against {runs[0].dir})\n")
        tables.append(f"### {data}: test = {'its own test split' if splits.holdout is None else 'the valid file'}, "
                      f"{splits.sizes()}\n\n{table}\n{speed}{split_note}")
        print("\n" + tables[-1], flush=True)
        meta_datasets[data] = {
            "sizes": splits.sizes(),
            "holdout": splits.holdout,
            "train_tokens": splits.train_tokens(),
            "tokenizer": {"split": splits.tokenizer.split, "lowercase": splits.tokenizer.lowercase},
            "peers": {r.peer: {"settings": r.settings, "valid_acc": r.valid_acc, "test_accs": r.test_accs, "train_s": r.train_s,
                               "grid": r.grid, "note": r.note} for r in results},
            "textclass": {run.model: {"dir": str(run.dir), "command": run.command, "returncode": run.returncode, "epochs": run.epochs,
                                      "train_s": run.train_s, "splits_match": run.splits_match} for run in runs},
        }
    meta = {
        "quick": args.quick,
        "datasets": args.datasets,
        "peers": args.peers,
        "seeds": args.seeds,
        "fasttext_threads": threads,
        "textclass_omp_num_threads": env.get("OMP_NUM_THREADS"),
        "fasttext_grid": grid.points(),
        "tfidf_c": list(cs),
        "textclass_results": str(args.textclass_results) if reference else None,
        "work_dir": str(work),
        "data_dir": str(args.data_dir.resolve()),
        "per_dataset": meta_datasets,
        "tokens_per_s": "training tokens (textclass's word tokenizer on the train split) x epochs / training seconds: fastText "
                        "train_supervised, textclass the summed history.csv epoch_s",
    }
    write_results(args.out, meta, rows)
    md_path = args.out.with_suffix(".md")
    md_path.write_text(f"Peers ({'quick' if args.quick else 'full'}), {datetime.now(timezone.utc).isoformat(timespec='seconds')}; "
                       f"work dir `{work}`.\n\n" + "\n".join(tables))
    print(f"wrote {md_path}")
    failed = [d for d, m in meta_datasets.items() if any(run["returncode"] != 0 for run in m["textclass"].values())]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
