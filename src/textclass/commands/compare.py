"""`textclass compare` (and textclass-compare): rank runs (and the seed groups of sweeps) on the
predictions they saved, and test whether the gaps are real (textclass.reports.compare)."""

from __future__ import annotations

import sys

from textclass.commands.cli import PathsCommand, run_paths_command
from textclass.config.compose import output_folder

COMMAND = PathsCommand(
    name="compare",
    summary="Compare trained runs (and seed groups of sweeps) on the same examples: leaderboard, paired bootstrap and "
    "McNemar for single runs, Welch and ASO for seed groups, Holm-Bonferroni over all pairs.",
    paths="RUN_OR_SWEEP_DIR ...",
    defaults="compare.yaml",
)


def compare(paths: list[str], options: dict) -> str:
    # scipy and statsmodels (reports.stats) load here, after --help and bad options
    from textclass.reports.compare import COMPARE_JSON, COMPARE_MD, Options, check_options, compare_systems

    opts = check_options(Options(**options))
    folder = output_folder("compare", opts.output)
    markdown = compare_systems(paths, opts, folder)
    print(f"wrote {folder / COMPARE_MD} and {folder / COMPARE_JSON}", file=sys.stderr)
    return markdown


def main(argv: list[str] | None = None) -> None:
    run_paths_command(COMMAND, compare, argv)


if __name__ == "__main__":
    main()
