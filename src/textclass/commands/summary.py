"""`textclass summary SWEEP_DIR`: a sweep's summary.csv / summary.md (and aggregate.* for repeats of
one setup) written again from its job directories (textclass.reports.sweeps): for a sweep that was
stopped, or one with a failed job, which Hydra's end-of-sweep callback never saw end."""

from __future__ import annotations

from pathlib import Path

from textclass.commands.cli import PathsCommand, run_paths_command
from textclass.errors import ConfigError

COMMAND = PathsCommand(
    name="summary",
    summary="Write a sweep's summary.csv and summary.md (and aggregate.* for repeated seeds or folds) from its job directories.",
    paths="SWEEP_DIR",
    defaults="summary.yaml",
)


def summary(paths: list[str], options: dict) -> str:
    from textclass.reports.sweeps import COLUMNS, write_summary  # scipy, matplotlib

    if len(paths) != 1:
        raise ConfigError(f"give one sweep directory (hydra.sweep.dir), e.g. textclass summary outputs/train/multiruns/<time>; got {len(paths)}")
    if not Path(paths[0]).is_dir():
        raise ConfigError(f"{paths[0]}: no such directory; give a sweep directory (hydra.sweep.dir), e.g. outputs/train/multiruns/<time>")
    if options["plot_y"] not in COLUMNS:
        raise ConfigError(f"plot_y={options['plot_y']}: not a summary column; one of {', '.join(COLUMNS[3:])}")
    return write_summary(Path(paths[0]), options["plot_x"], options["plot_y"])


def main(argv: list[str] | None = None) -> None:
    run_paths_command(COMMAND, summary, argv)


if __name__ == "__main__":
    main()
