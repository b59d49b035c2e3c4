"""Comparing trained systems on the same examples: which is better, and is the gap real?

    textclass compare RUN_OR_SWEEP_DIR ... [split=test] [metric=acc] [alpha=0.05] [resamples=10000] [seed=0] [output=DIR]

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

import json
import statistics
import logging
from dataclasses import asdict, dataclass, replace
from itertools import combinations
from pathlib import Path

from textclass.errors import ConfigError
from textclass.reports.stats import ASO_TAU, aso_eps_min, bootstrap_half_width, holm, mcnemar_test, paired_bootstrap, score, welch
from textclass.reports.systems import System, check_same_data, read_systems
from textclass.tables import markdown_table

METRICS = ("acc", "f1")
COMPARE_MD, COMPARE_JSON = "compare.md", "compare.json"
LEADER, NOT_SIGNIFICANT, NOT_COMPARED, BEHIND = "leader", "≈ leader", "not compared", "behind"

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Options:
    split: str
    metric: str
    alpha: float
    resamples: int
    seed: int
    output: str | None


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


def compare(systems: list[System], opts: Options) -> Report:
    reference = check_same_data(systems)
    scores = {s.name: [score(run.predictions, opts.metric) for run in s.runs] for s in systems}
    ranked = sorted(systems, key=lambda s: statistics.fmean(scores[s.name]), reverse=True)
    pairs_of_groups = sum(1 for a, b in combinations(ranked, 2) if a.kind == b.kind == "seeds")
    if pairs_of_groups:
        log.info("ASO on %d pair(s) of seed groups: a few seconds each", pairs_of_groups)
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

METRIC_LABELS = {"acc": "accuracy (multi-label: subset accuracy)", "f1": "macro-F1"}


def to_markdown(report: Report) -> str:
    m = report.metric
    leaderboard = [[s.rank, s.name, f"{s.score:.4f}", f"{s.spread:.4f}", s.n, s.mark] for s in report.leaderboard]
    pairs = [pair_cells(pair, report.resamples) for pair in report.pairs]
    return "\n".join([
        f"# textclass compare: {report.dataset} {report.split}, {m}",
        "",
        f"Split `{report.split}`, {report.examples} examples (data {report.data[:12]}); metric `{m}`: {METRIC_LABELS[m]}.",
        "",
        tests_line(report),
        "",
        "## Leaderboard",
        "",
        markdown_table(["rank", "system", m, "±", "n", "vs leader"], leaderboard),
        "± is the sample std over seeds, or for a single run the half-width of its 95% bootstrap CI. "
        f"≈ leader: the gap to the leader is not significant at alpha = {report.alpha} after Holm-Bonferroni; behind: it is.",
        "",
        "## Pairs",
        "",
        markdown_table(["A", "B", f"A − B ({m})", "95% CI", "test", "p", "p (Holm)", "significant", "McNemar p (A only / B only)", "ASO ε_min (A over B)"], pairs),
    ])


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


def pair_cells(pair: Pair, resamples: int) -> list[str]:
    if pair.test is None:
        return [pair.a, pair.b, f"{pair.difference:+.4f}", "", pair.note, "", "", "", "", ""]
    mcnemar = f"{_p(pair.mcnemar_p)} ({pair.a_only} / {pair.b_only})" if pair.mcnemar_p is not None else ""
    eps = f"{pair.aso_eps_min:.3f}" if pair.aso_eps_min is not None else ""
    # a bootstrap p of 0 only says p < 1/resamples
    resolution = max(1 / resamples, 1e-4) if pair.test == "bootstrap" else 1e-4
    return [
        pair.a,
        pair.b,
        f"{pair.difference:+.4f}",
        f"[{pair.ci[0]:+.4f}, {pair.ci[1]:+.4f}]",
        "paired bootstrap + McNemar" if pair.test == "bootstrap" else "Welch + ASO",
        _p(pair.p, resolution),
        _p(pair.p_holm, resolution),
        "yes" if pair.significant else "no",
        mcnemar,
        eps,
    ]


def _p(p: float, resolution: float = 1e-4) -> str:
    return f"< {resolution:g}" if p < resolution else f"{p:.4f}"


def write_report(report: Report, folder: Path) -> str:
    """compare.md and compare.json in `folder`; returns the Markdown."""
    folder.mkdir(parents=True, exist_ok=True)
    markdown = to_markdown(report)
    (folder / COMPARE_MD).write_text(markdown, encoding="utf-8")
    (folder / COMPARE_JSON).write_text(json.dumps(asdict(report), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return markdown


def compare_systems(sources: list[str], opts: Options, folder: Path) -> str:
    """Rank the systems of `sources` and test their gaps; writes compare.md and compare.json into
    `folder` and returns the Markdown."""
    systems = read_systems(sources, opts.split) if sources else []
    if len(systems) < 2:
        raise ConfigError(
            f"{len(systems)} system(s) to compare in {' '.join(sources) or 'no directory'}: give at least two run directories, "
            "or sweeps whose jobs differ in more than the seed"
        )
    return write_report(compare(systems, opts), folder)
