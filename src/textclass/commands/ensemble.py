"""`textclass ensemble` (and textclass-ensemble): average trained runs' class probabilities into an
ensemble directory that eval, predict, compare and textclass.load take like a run directory."""

from __future__ import annotations

import sys

from textclass.commands.cli import PathsCommand, run_paths_command
from textclass.config.compose import output_folder
from textclass.run_files import LABELS_FILE, RUN_CONFIG

COMMAND = PathsCommand(
    name="ensemble",
    summary="Average trained runs' class probabilities into an ensemble directory that eval, predict (ckpt_path=DIR), "
    "compare and textclass.load take like a run directory.",
    paths="RUN_DIR_OR_CKPT ...",
    defaults="ensemble.yaml",
)


def ensemble(paths: list[str], options: dict) -> str:
    # torch and the model code load here, after --help and bad options
    from textclass.ensemble import Options, check_options, make_ensemble

    opts = check_options(Options(**options))
    folder = output_folder("ensemble", opts.output)
    table = make_ensemble(paths, opts, folder)
    print(f"wrote the ensemble {folder} ({RUN_CONFIG}, {LABELS_FILE}, predictions files)", file=sys.stderr)
    return table


def main(argv: list[str] | None = None) -> None:
    run_paths_command(COMMAND, ensemble, argv)


if __name__ == "__main__":
    main()
