"""`textclass export` (and textclass-export): a trained run as one ONNX or TorchScript file, with
what it takes to encode text beside it (textclass.export)."""

from __future__ import annotations

import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from textclass.commands.cli import exit_on_user_error, run_command
from textclass.config.compose import CONFIG_DIR
from textclass.errors import ConfigError
from textclass.export.files import check_format, check_output_file, output_path, prepare_output, summary, write_beside


# torch, onnx and the model code are imported inside hydra_main: --help is answered without them
@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="export")
@exit_on_user_error
def hydra_main(cfg: DictConfig) -> None:
    ckpt_path = cfg.ckpt_path  # a missing ckpt_path is the first thing to say
    fmt = check_format(cfg.format)
    # what can be checked without the run is checked before load_run's imports (seconds)
    if not Path(str(ckpt_path)).expanduser().exists():
        raise ConfigError(f"checkpoint not found: {ckpt_path}; pass ckpt_path=<run dir> (or a .ckpt file inside one)")
    if cfg.output:  # what can be checked of a given output before the run loads (seconds)
        check_output_file(Path(cfg.output).expanduser(), fmt)
    from textclass.ensemble import refuse_ensemble
    from textclass.export.graph import export
    from textclass.training.checkpoint import load_run

    refuse_ensemble(ckpt_path, f"format={fmt}")
    run = load_run(ckpt_path, cfg.checkpoint)
    path = output_path(cfg.output, run.run_dir, fmt)
    prepare_output(path, fmt, run)
    worst = export(run, fmt, path, cfg.check)
    beside = write_beside(run, path, fmt, run.checkpoint)
    print(summary(ckpt_path, fmt, path, worst, cfg.check, beside), file=sys.stderr)


def main() -> None:
    run_command(hydra_main, "export")



if __name__ == "__main__":
    main()
