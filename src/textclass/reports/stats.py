"""The statistics of compare: a metric from per-example counts, the paired bootstrap, McNemar's
test, Welch's t-test, Almost Stochastic Order (deepsig) and Holm-Bonferroni."""

from __future__ import annotations

import math
import statistics
import warnings
from dataclasses import dataclass

import numpy as np

from textclass.training.predictions import Predictions

# scipy.stats, statsmodels (pandas), scikit-learn and deepsig (torch) are imported by the functions
# that use them, for their start-up time: a compare of two runs needs the bootstrap alone

CI_LEVEL = 0.95
ASO_TAU = 0.2  # deepsig's threshold on ε_min for claiming that A is better (Ulmer et al. 2022)
# the bootstrap handles about this many resampled example indices at once (memory, not speed)
BATCH_ELEMENTS = 2**22


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
