"""`textclass-compare`: which trained systems are better on the same examples, and is the gap real?

    textclass-compare RUN_OR_SWEEP_DIR ... [split=test] [metric=acc] [alpha=0.05] [resamples=10000] [seed=0] [output=DIR]

Each argument is a run directory (it holds config.yaml): one system; or a sweep (multirun)
directory (it holds multirun.yaml; its jobs are the directories with .hydra/ below it): one system
per group of its jobs that differ only in `seed` / `data.fold` (`sweep_summary.group_repeats`),
named by the overrides that set it apart from the sweep's other groups; a group of two or more runs
is a *seed group*. Everything comes from the predictions each run saved (predictions_<split>.npz):
nothing is retrained, and every run must have been scored on the same examples (equal data
fingerprints and classes), else it is an error.

Pairs are taken in leaderboard order, A the better-ranked system:

- two single runs: a paired bootstrap over the examples (`scipy.stats.bootstrap`, paired) of the
  metric's difference A − B, with its 95% percentile CI and a two-sided p-value under the shifted
  null (the share of resampled differences d* with |d* − d| ≥ |d|); and McNemar's exact test on
  per-example correctness (statsmodels), which is about accuracy whatever the metric.
- two seed groups: the difference of their mean scores with Welch's t-test and its 95% CI (scipy),
  and Almost Stochastic Order (deepsig; Dror et al. 2019): ε_min, an upper bound on how much the
  claim "A's scores are stochastically larger than B's" is violated. ε_min < 0.5 means A is almost
  stochastically dominant; deepsig recommends claiming it only below τ = 0.2 (`ASO_TAU`). ASO runs
  at confidence 1 − alpha, Bonferroni-corrected over the seed-group pairs, as deepsig advises.
- a single run and a seed group: not compared (one seed says nothing about the spread over seeds).

The p-values of all tested pairs (bootstrap for runs, Welch for groups) are corrected together by
Holm-Bonferroni (statsmodels). The leaderboard ranks the systems by the metric (a group's mean) and
marks every system whose gap to the leader is not significant at alpha after Holm.

compare.md holds the printed report; compare.json the same numbers:

    {"split", "metric", "alpha", "resamples", "seed", "dataset",
     "examples": the split's size, "data": the examples' fingerprint,
     "systems": [                                  # in leaderboard order
        {"name", "kind": "run" | "seeds", "source": the argument it came from, "n": runs,
         "score": the run's metric or the group's mean,
         "spread": the group's sample std over seeds, or the run's 95% bootstrap CI half-width,
         "runs": [{"dir", "score"}, ...]}, ...],
     "pairs": [
        {"a", "b", "test": "bootstrap" | "welch" | null (not compared),
         "difference": A − B (of the means, for groups), "ci": [low, high] (95%) | null,
         "p", "p_holm", "significant" (at alpha after Holm; null when not tested),
         "mcnemar_p", "a_only", "b_only" (examples only A / only B got right; runs only),
         "aso_eps_min" (groups only), "note"}, ...],
     "leaderboard": [{"rank", "name", "score", "spread", "n",
                      "mark": "leader" | "≈ leader" | "behind" | "not compared"}, ...]}
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import warnings
from collections import Counter
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from itertools import combinations
from pathlib import Path

import numpy as np

from textclass.cli import CONFIG_DIR, fail, key_value_options, split_arguments
from textclass.overrides import dir_name, distinct, override_key, run_names
from textclass.errors import ConfigError, DataError, TextclassError
from textclass.predictions import Predictions, load_predictions
from textclass.run_files import RUN_CONFIG

# scipy.stats, statsmodels (pandas), scikit-learn and deepsig (torch) are imported by the functions
# that use them: --help and bad arguments are answered without them

DEFAULTS = Path(CONFIG_DIR) / "compare.yaml"
MULTIRUN_CONFIG = "multirun.yaml"  # what Hydra writes into a sweep directory
METRICS = ("acc", "f1")
CI_LEVEL = 0.95
ASO_TAU = 0.2  # deepsig's threshold on ε_min for claiming that A is better (Ulmer et al. 2022)
COMPARE_MD, COMPARE_JSON = "compare.md", "compare.json"
# the bootstrap handles about this many resampled example indices at once (memory, not speed)
BATCH_ELEMENTS = 2**22
LEADER, NOT_SIGNIFICANT, NOT_COMPARED, BEHIND = "leader", "≈ leader", "not compared", "behind"


@dataclass(frozen=True)
class Options:
    split: str
    metric: str
    alpha: float
    resamples: int
    seed: int
    output: str | None


@dataclass(frozen=True)
class Run:
    dir: Path
    predictions: Predictions


@dataclass(frozen=True)
class System:
    name: str
    source: str  # the command-line argument it came from
    runs: tuple[Run, ...]

    @property
    def kind(self) -> str:
        return "seeds" if len(self.runs) > 1 else "run"


@dataclass(frozen=True)
class RunScore:
    dir: str
    score: float


@dataclass(frozen=True)
class SystemResult:
    name: str
    kind: str
    source: str
    n: int
    score: float
    spread: float
    runs: list[RunScore]


@dataclass(frozen=True)
class Pair:
    a: str
    b: str
    test: str | None  # "bootstrap" (two runs), "welch" (two seed groups), None: not compared
    difference: float
    ci: tuple[float, float] | None = None
    p: float | None = None
    p_holm: float | None = None
    significant: bool | None = None
    mcnemar_p: float | None = None
    a_only: int | None = None
    b_only: int | None = None
    aso_eps_min: float | None = None
    note: str = ""


@dataclass(frozen=True)
class Standing:
    rank: int
    name: str
    score: float
    spread: float
    n: int
    mark: str


@dataclass(frozen=True)
class Report:
    split: str
    metric: str
    alpha: float
    resamples: int
    seed: int
    dataset: str
    examples: int
    data: str
    systems: list[SystemResult]
    pairs: list[Pair]
    leaderboard: list[Standing]


# --- the command line -----------------------------------------------------------------------------


def parse_options(items: list[str]) -> Options:
    """`key=value` options over conf/compare.yaml's defaults."""
    return check_options(Options(**key_value_options(items, DEFAULTS)))


def check_options(opts: Options) -> Options:
    if opts.metric not in METRICS:
        raise ConfigError(f"metric={opts.metric}: choose one of {', '.join(METRICS)}")
    if not isinstance(opts.split, str) or not opts.split:
        raise ConfigError(f"split={opts.split}: the name of a split, e.g. split=test or split=valid")
    if not _is_number(opts.alpha) or not 0 < opts.alpha < 1:
        raise ConfigError(f"alpha={opts.alpha}: a significance level between 0 and 1, e.g. alpha=0.05")
    if not _is_int(opts.resamples) or opts.resamples < 1:
        raise ConfigError(f"resamples={opts.resamples}: a positive number of bootstrap resamples, e.g. resamples=10000")
    if not _is_int(opts.seed) or opts.seed < 0:
        raise ConfigError(f"seed={opts.seed}: a non-negative integer")
    return replace(opts, alpha=float(opts.alpha), output=None if opts.output is None else str(opts.output))


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


# --- systems ---------------------------------------------------------------------------------------


def read_systems(sources: list[str], split: str) -> list[System]:
    """One system per run directory, and one per group of repeats in each sweep directory."""
    seen: dict[Path, str] = {}
    for source in sources:
        resolved = Path(source).resolve()
        if resolved in seen:
            raise ConfigError(f"{seen[resolved]} and {source} are the same directory: give each system once")
        seen[resolved] = source
    found = [(source, key, dirs) for source in sources for key, dirs in find_groups(source)]
    names = system_names([(source, key, dirs) for source, key, dirs in found])
    return [
        System(name, source, tuple(Run(d, load_predictions(d, split)) for d in dirs)) for name, (source, _, dirs) in zip(names, found)
    ]


def find_groups(source: str) -> list[tuple[str | None, list[Path]]]:
    """What one argument holds: [(None, [run])] for a run directory, [(overrides, job dirs), ...] for a
    sweep, one per group of repeats (overrides "" when the sweep only repeats one setup)."""
    path = Path(source)
    if not path.is_dir():
        raise DataError(f"{source}: no such directory; pass textclass-train run directories or multirun (sweep) directories")
    if (path / RUN_CONFIG).is_file():
        return [(None, [path])]
    # Hydra writes multirun.yaml into every sweep directory: no search through an arbitrary tree
    if not (path / MULTIRUN_CONFIG).is_file():
        raise DataError(
            f"{source}: neither a run directory (no {RUN_CONFIG}) nor a sweep directory (no {MULTIRUN_CONFIG}); "
            "pass textclass-train run directories or multirun (sweep) directories"
        )
    # sweep_summary draws plots (matplotlib): imported only when a sweep is read
    from textclass.sweep_summary import collect_jobs, group_repeats

    jobs = collect_jobs(path)
    groups = list(group_repeats(jobs).values())
    finished = sum(len(members) for members in groups)
    if finished < len(jobs):
        print(f"note: {source}: {len(jobs) - finished} job(s) without metrics.json (failed or unfinished) left out", file=sys.stderr)
    if not groups:
        raise DataError(f"{source}: no job of this sweep finished (none has metrics.json)")
    return list(zip(setup_differences([members[0].overrides for members in groups]), [[job.dir for job in members] for members in groups]))


def setup_differences(overrides: list[list[str]]) -> list[str]:
    """Each group's overrides (one job's, less `seed` / `data.fold`) without those every group
    shares: `model=cnn`, not `model=cnn trainer.max_epochs=5 data.batch_size=64`."""
    from textclass.sweep_summary import REPEAT_KEYS

    setups = [[o for o in given if override_key(o) not in REPEAT_KEYS] for given in overrides]
    if len(setups) == 1:
        return [""]  # a sweep that repeats one setup: its own name says it
    return [" ".join(own) for own in distinct(setups).own]


def system_names(found: list[tuple[str, str | None, list[Path]]]) -> list[str]:
    """Short names: a sweep group's distinguishing overrides (the sweep's name when it repeats one
    setup); single runs by the overrides that set them apart from the other single runs (else their
    directory's name); names that would clash are prefixed by their argument."""
    runs = [dirs[0] for _, key, dirs in found if key is None]
    run_name = dict(zip(runs, run_names(runs)))
    short = [key if key else run_name[dirs[0]] if key is None else dir_name(Path(source)) for source, key, dirs in found]
    counts = Counter(short)
    return [name if counts[name] == 1 else f"{source} {key}" if key else source for name, (source, key, _) in zip(short, found)]


def check_same_data(systems: list[System]) -> Predictions:
    """The first run's predictions, once every run's are on the same examples with the same classes."""
    first_system, first = systems[0], systems[0].runs[0]
    for system in systems:
        for run in system.runs:
            p, q = first.predictions, run.predictions
            names = f"{run_label(first_system, first)} and {run_label(system, run)}"
            if q.data != p.data:
                raise DataError(
                    f"{names} were scored on different examples: {p.describe()} vs {q.describe()}; compare runs on the same "
                    "split of the same data (another vocabulary, tokenizer or model is fine)"
                )
            if q.class_names != p.class_names:
                raise DataError(f"{names} have different classes: {p.class_names} vs {q.class_names}")
    return first.predictions


def run_label(system: System, run: Run) -> str:
    return system.name if len(system.runs) == 1 else f"{system.name} ({run.dir})"


# --- the metric, and what a resample needs of it ----------------------------------------------------


def score(p: Predictions, metric: str) -> float:
    """acc: accuracy (multi-label: every label right); f1: macro-F1 over the classes that occur in
    the truth or the decisions (as scikit-learn for single-label data, and torchmetrics' val/f1)."""
    if metric == "acc":
        return p.accuracy()
    from sklearn.metrics import f1_score

    return float(f1_score(p.labels, p.predicted, labels=occurring_classes(p), average="macro"))


def occurring_classes(p: Predictions) -> np.ndarray:
    if p.multi_label:
        return np.flatnonzero(p.labels.any(axis=0) | p.predicted.any(axis=0))
    return np.union1d(p.labels, p.predicted)


def example_counts(p: Predictions, metric: str) -> np.ndarray:
    """float [N, K]: what each example adds to the counts the metric is computed from: acc [right];
    f1 [true positives, false positives, false negatives] per class."""
    if metric == "acc":
        return p.correct()[:, None].astype(float)
    truth, decided = one_hot(p.labels, len(p.class_names)), one_hot(p.predicted, len(p.class_names))
    return np.concatenate([truth & decided, ~truth & decided, truth & ~decided], axis=1).astype(float)


def one_hot(values: np.ndarray, classes: int) -> np.ndarray:
    """bool [N, C] of class ids [N] (multi-label 0/1 rows [N, C] as they are)."""
    return values.astype(bool) if values.ndim == 2 else values[:, None] == np.arange(classes)


def metric_from_counts(counts: np.ndarray, examples: int, metric: str) -> np.ndarray:
    """The metric of summed example counts [..., K] (see `example_counts`) of `examples` examples."""
    if metric == "acc":
        return counts[..., 0] / examples
    tp, fp, fn = np.split(counts, 3, axis=-1)
    # a class that is neither true nor decided anywhere has no F1: it is left out of the mean
    scored = tp + fp + fn > 0
    f1 = np.divide(2 * tp, 2 * tp + fp + fn, out=np.zeros_like(tp), where=scored)
    return f1.sum(axis=-1) / np.maximum(scored.sum(axis=-1), 1)


@dataclass(frozen=True)
class Tally:
    """A run's example counts as codes into a table of their distinct rows: a resample's counts are
    then a histogram of its codes times the table, never an array [resamples, examples, K]."""

    codes: np.ndarray  # int [N]: each example's row of `table`
    table: np.ndarray  # float [U, K]

    @classmethod
    def of(cls, p: Predictions, metric: str) -> Tally:
        table, codes = np.unique(example_counts(p, metric), axis=0, return_inverse=True)
        return cls(codes.reshape(-1), table)

    def metric(self, codes: np.ndarray, metric: str) -> np.ndarray:
        """The metric of each resample, `codes` [..., N] being resampled `self.codes`."""
        return metric_from_counts(histogram(codes, len(self.table)) @ self.table, codes.shape[-1], metric)


def histogram(codes: np.ndarray, size: int) -> np.ndarray:
    """float [..., size]: how often each code occurs along the last axis (one bincount for all rows)."""
    rows = codes.reshape(-1, codes.shape[-1])
    offset = rows + size * np.arange(len(rows))[:, None]
    counts = np.bincount(offset.ravel(), minlength=size * len(rows)).reshape(len(rows), size)
    return counts.reshape(*codes.shape[:-1], size).astype(float)


# --- the tests ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Bootstrap:
    difference: float
    ci: tuple[float, float]
    p: float


def bootstrap(samples: tuple[np.ndarray, ...], statistic, resamples: int, seed: int):
    """scipy's bootstrap over the examples (the same resampled indices for every sample)."""
    from scipy import stats

    return stats.bootstrap(
        samples,
        statistic,
        paired=True,
        vectorized=True,
        n_resamples=resamples,
        batch=max(1, BATCH_ELEMENTS // len(samples[0])),
        # percentile, not BCa: BCa's jackknife costs examples² (25,000 test examples: 6·10⁸ rows)
        method="percentile",
        confidence_level=CI_LEVEL,
        rng=np.random.default_rng(seed),
    )


def paired_bootstrap(a: Predictions, b: Predictions, metric: str, resamples: int, seed: int) -> Bootstrap:
    """The metric's difference A − B, its 95% CI and the two-sided shifted-null p-value, over the
    same resampled examples for both systems."""
    tally_a, tally_b = Tally.of(a, metric), Tally.of(b, metric)

    def difference(codes_a: np.ndarray, codes_b: np.ndarray, axis: int = -1) -> np.ndarray:
        # scipy hands the resamples with the examples on the last axis
        return tally_a.metric(codes_a, metric) - tally_b.metric(codes_b, metric)

    res = bootstrap((tally_a.codes, tally_b.codes), difference, resamples, seed)
    d = score(a, metric) - score(b, metric)
    # the resampled differences centred on d stand for the null "no difference"
    p = float(np.mean(np.abs(res.bootstrap_distribution - d) >= abs(d)))
    return Bootstrap(d, (float(res.confidence_interval.low), float(res.confidence_interval.high)), p)


def bootstrap_half_width(p: Predictions, metric: str, resamples: int, seed: int) -> float:
    """Half the width of the 95% bootstrap CI of one run's metric: its ± on the leaderboard."""
    tally = Tally.of(p, metric)
    res = bootstrap((tally.codes,), lambda codes, axis=-1: tally.metric(codes, metric), resamples, seed)
    return float(res.confidence_interval.high - res.confidence_interval.low) / 2


@dataclass(frozen=True)
class McNemar:
    p: float
    a_only: int  # examples only A got right
    b_only: int


def mcnemar_test(a: Predictions, b: Predictions) -> McNemar:
    from statsmodels.stats.contingency_tables import mcnemar

    right_a, right_b = a.correct(), b.correct()
    # rows: A right, A wrong; columns: B right, B wrong
    table = [[int(np.sum(row & column)) for column in (right_b, ~right_b)] for row in (right_a, ~right_a)]
    return McNemar(float(mcnemar(table, exact=True).pvalue), a_only=table[0][1], b_only=table[1][0])


@dataclass(frozen=True)
class Welch:
    difference: float
    ci: tuple[float, float]
    p: float


def welch(a: list[float], b: list[float]) -> Welch:
    """Welch's t-test of two groups' per-seed scores: the difference of their means, its 95% CI, p."""
    from scipy.stats import ttest_ind

    with warnings.catch_warnings():
        # scipy warns of precision loss when a group's scores are (nearly) equal, as seeds can be
        warnings.simplefilter("ignore", RuntimeWarning)
        res = ttest_ind(a, b, equal_var=False)
    ci = res.confidence_interval(CI_LEVEL)
    # scipy's p is nan only for 0/0: both groups constant and equal, no evidence of a difference
    p = 1.0 if math.isnan(res.pvalue) else float(res.pvalue)
    return Welch(statistics.fmean(a) - statistics.fmean(b), (float(ci.low), float(ci.high)), p)


def aso_eps_min(a: list[float], b: list[float], alpha: float, comparisons: int, seed: int) -> float:
    """ASO's ε_min of A's scores over B's (deepsig): < 0.5, A is almost stochastically dominant; < ASO_TAU, claim it."""
    from deepsig import aso  # imports torch: only when seed groups are compared

    with warnings.catch_warnings():
        # deepsig warns once per bootstrap iteration when a group's scores are all equal
        warnings.simplefilter("ignore")
        return float(aso(a, b, confidence_level=1 - alpha, num_comparisons=comparisons, seed=seed, show_progress=False))


def holm(p: list[float], alpha: float) -> tuple[list[bool], list[float]]:
    """Holm-Bonferroni: which hypotheses are rejected at `alpha`, and the adjusted p-values."""
    from statsmodels.stats.multitest import multipletests

    reject, adjusted, _, _ = multipletests(p, alpha=alpha, method="holm")
    return [bool(r) for r in reject], [float(q) for q in adjusted]


def correct_pairs(pairs: list[Pair], alpha: float) -> list[Pair]:
    """The pairs with Holm's adjusted p and significance filled in, over every tested pair together."""
    tested = [i for i, pair in enumerate(pairs) if pair.p is not None]
    if not tested:
        return pairs
    reject, adjusted = holm([pairs[i].p for i in tested], alpha)
    corrected = list(pairs)
    for i, r, q in zip(tested, reject, adjusted):
        corrected[i] = replace(pairs[i], p_holm=q, significant=r)
    return corrected


# --- the comparison ----------------------------------------------------------------------------------


def compare(systems: list[System], opts: Options) -> Report:
    reference = check_same_data(systems)
    scores = {s.name: [score(run.predictions, opts.metric) for run in s.runs] for s in systems}
    ranked = sorted(systems, key=lambda s: statistics.fmean(scores[s.name]), reverse=True)
    pairs_of_groups = sum(1 for a, b in combinations(ranked, 2) if a.kind == b.kind == "seeds")
    if pairs_of_groups:
        print(f"ASO on {pairs_of_groups} pair(s) of seed groups: a few seconds each", file=sys.stderr)
    pairs = correct_pairs([compare_pair(a, b, scores, opts, pairs_of_groups) for a, b in combinations(ranked, 2)], opts.alpha)
    results = [system_result(s, scores[s.name], opts) for s in ranked]
    return Report(
        split=opts.split,
        metric=opts.metric,
        alpha=opts.alpha,
        resamples=opts.resamples,
        seed=opts.seed,
        dataset=reference.dataset,
        examples=len(reference),
        data=reference.data,
        systems=results,
        pairs=pairs,
        leaderboard=standings(results, pairs),
    )


def compare_pair(a: System, b: System, scores: dict[str, list[float]], opts: Options, pairs_of_groups: int) -> Pair:
    """A (ranked higher) against B, by the test their kinds allow."""
    if a.kind != b.kind:
        group = a if a.kind == "seeds" else b
        difference = statistics.fmean(scores[a.name]) - statistics.fmean(scores[b.name])
        note = f"not compared: 1 run vs {len(group.runs)} seeds; train both with the same seeds"
        return Pair(a.name, b.name, None, difference, note=note)
    if a.kind == "run":
        pa, pb = a.runs[0].predictions, b.runs[0].predictions
        boot, exact = paired_bootstrap(pa, pb, opts.metric, opts.resamples, opts.seed), mcnemar_test(pa, pb)
        return Pair(
            a.name, b.name, "bootstrap", boot.difference, boot.ci, boot.p, mcnemar_p=exact.p, a_only=exact.a_only, b_only=exact.b_only
        )
    t = welch(scores[a.name], scores[b.name])
    eps = aso_eps_min(scores[a.name], scores[b.name], opts.alpha, pairs_of_groups, opts.seed)
    return Pair(a.name, b.name, "welch", t.difference, t.ci, t.p, aso_eps_min=eps)


def system_result(system: System, scores: list[float], opts: Options) -> SystemResult:
    if len(scores) > 1:
        spread = statistics.stdev(scores)
    else:
        spread = bootstrap_half_width(system.runs[0].predictions, opts.metric, opts.resamples, opts.seed)
    runs = [RunScore(str(run.dir.resolve()), s) for run, s in zip(system.runs, scores)]
    return SystemResult(system.name, system.kind, system.source, len(scores), statistics.fmean(scores), spread, runs)


def standings(results: list[SystemResult], pairs: list[Pair]) -> list[Standing]:
    """The leaderboard of `results` (best first), each marked by its pair with the leader."""
    vs_leader = {pair.b: pair for pair in pairs if pair.a == results[0].name}
    return [Standing(rank, r.name, r.score, r.spread, r.n, mark(vs_leader.get(r.name))) for rank, r in enumerate(results, 1)]


def mark(vs_leader: Pair | None) -> str:
    """leader; "≈ leader" when the gap is not significant after Holm; "behind" when it is; "not compared"."""
    if vs_leader is None:
        return LEADER
    if vs_leader.test is None:
        return NOT_COMPARED
    return BEHIND if vs_leader.significant else NOT_SIGNIFICANT


# --- the report ------------------------------------------------------------------------------------


METRIC_LABELS = {"acc": "accuracy (multi-label: subset accuracy)", "f1": "macro-F1"}


def to_markdown(report: Report) -> str:
    m = report.metric
    lines = [
        f"# textclass-compare: {report.dataset} {report.split}, {m}",
        "",
        f"Split `{report.split}`, {report.examples} examples (data {report.data[:12]}); metric `{m}`: {METRIC_LABELS[m]}.",
        "",
        tests_line(report),
        "",
        "## Leaderboard",
        "",
        f"| rank | system | {m} | ± | n | vs leader |",
        "|---|---|---|---|---|---|",
        *(f"| {s.rank} | {_cell(s.name)} | {s.score:.4f} | {s.spread:.4f} | {s.n} | {s.mark} |" for s in report.leaderboard),
        "",
        "± is the sample std over seeds, or for a single run the half-width of its 95% bootstrap CI. "
        f"≈ leader: the gap to the leader is not significant at alpha = {report.alpha} after Holm-Bonferroni; behind: it is.",
        "",
        "## Pairs",
        "",
        f"| A | B | A − B ({m}) | 95% CI | test | p | p (Holm) | significant | McNemar p (A only / B only) | ASO ε_min (A over B) |",
        "|---|---|---|---|---|---|---|---|---|---|",
        *(pair_row(pair, report.resamples) for pair in report.pairs),
    ]
    return "\n".join(lines) + "\n"


def tests_line(report: Report) -> str:
    kinds = {pair.test for pair in report.pairs}
    tested = sum(1 for pair in report.pairs if pair.test is not None)
    parts = []
    if "bootstrap" in kinds:
        parts.append(
            f"Single runs: paired bootstrap of A − B over the examples ({report.resamples} resamples, seed {report.seed}; "
            "95% percentile CI, two-sided p under the shifted null) and McNemar's exact test on per-example correctness."
        )
    if "welch" in kinds:
        parts.append(
            "Seed groups: Welch's t-test on the per-seed scores (95% CI of the difference of means) and ASO ε_min "
            f"(Dror et al. 2019): A is almost stochastically better than B when ε_min < 0.5, claim it when ε_min < {ASO_TAU}."
        )
    if None in kinds:
        parts.append("A single run and a seed group are not compared.")
    if tested:
        parts.append(f"Holm-Bonferroni over the {tested} tested pair(s) at alpha = {report.alpha}.")
    return " ".join(parts)


def pair_row(pair: Pair, resamples: int) -> str:
    if pair.test is None:
        return f"| {_cell(pair.a)} | {_cell(pair.b)} | {pair.difference:+.4f} | | {pair.note} | | | | | |"
    mcnemar = f"{_p(pair.mcnemar_p)} ({pair.a_only} / {pair.b_only})" if pair.mcnemar_p is not None else ""
    eps = f"{pair.aso_eps_min:.3f}" if pair.aso_eps_min is not None else ""
    # a bootstrap p of 0 only says p < 1/resamples
    resolution = max(1 / resamples, 1e-4) if pair.test == "bootstrap" else 1e-4
    cells = [
        _cell(pair.a),
        _cell(pair.b),
        f"{pair.difference:+.4f}",
        f"[{pair.ci[0]:+.4f}, {pair.ci[1]:+.4f}]",
        "paired bootstrap + McNemar" if pair.test == "bootstrap" else "Welch + ASO",
        _p(pair.p, resolution),
        _p(pair.p_holm, resolution),
        "yes" if pair.significant else "no",
        mcnemar,
        eps,
    ]
    return "| " + " | ".join(cells) + " |"


def _p(p: float, resolution: float = 1e-4) -> str:
    return f"< {resolution:g}" if p < resolution else f"{p:.4f}"


def _cell(text: str) -> str:
    return text.replace("|", r"\|")  # a literal | would split the cell


def output_dir(output: str | None, now: datetime) -> Path:
    folder = Path(output) if output is not None else Path("outputs") / "compare" / now.strftime("%Y-%m-%d_%H-%M-%S")
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"output={folder}: a file, not a folder; name a folder for compare.md and compare.json")
    return folder


def write_report(report: Report, folder: Path) -> str:
    """compare.md and compare.json in `folder`; returns the Markdown."""
    folder.mkdir(parents=True, exist_ok=True)
    markdown = to_markdown(report)
    (folder / COMPARE_MD).write_text(markdown, encoding="utf-8")
    (folder / COMPARE_JSON).write_text(json.dumps(asdict(report), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return markdown


def compare_command(items: list[str]) -> tuple[str, Path]:
    """The command: (the Markdown report, the folder it was written to)."""
    sources, options = split_arguments(items)
    opts = parse_options(options)
    systems = read_systems(sources, opts.split) if sources else []
    if len(systems) < 2:
        raise ConfigError(
            f"{len(systems)} system(s) to compare in {' '.join(sources) or 'no directory'}: give at least two run directories, "
            "or sweeps whose jobs differ in more than the seed"
        )
    folder = output_dir(opts.output, datetime.now())
    return write_report(compare(systems, opts), folder), folder


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="textclass-compare",
        description="Compare trained runs (and seed groups of sweeps) on the same examples: leaderboard, "
        "paired bootstrap and McNemar for single runs, Welch and ASO for seed groups, Holm-Bonferroni over all pairs.",
        epilog="options (key=value), with their defaults (conf/compare.yaml):\n" + DEFAULTS.read_text(encoding="utf-8"),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("items", nargs="*", metavar="RUN_OR_SWEEP_DIR | key=value")
    items = parser.parse_args(argv).items
    try:
        markdown, folder = compare_command(items)
    except TextclassError as err:
        fail(err)
    print(markdown, end="")
    print(f"wrote {folder / COMPARE_MD} and {folder / COMPARE_JSON}", file=sys.stderr)


if __name__ == "__main__":
    main()
