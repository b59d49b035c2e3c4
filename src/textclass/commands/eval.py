"""`textclass eval` (and textclass-eval): accuracy, macro-F1 and confusion matrix of a run (its
selected checkpoint, or `checkpoint=`) or an ensemble, on its own splits or on a labeled file."""

from __future__ import annotations

import json
import logging
from dataclasses import asdict
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from textclass.commands.cli import exit_on_user_error, run_command
from textclass.config.compose import CONFIG_DIR
from textclass.run_files import EVAL_REPORT

# torch, torchmetrics and the model code (textclass.ensemble, textclass.training) are imported
# inside hydra_main: --help and bad overrides are answered without their start-up time

log = logging.getLogger(__name__)


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="eval")
@exit_on_user_error
def hydra_main(cfg: DictConfig) -> dict:
    # torch and Lightning load here, after Hydra has refused a bad command line
    from textclass.ensemble import load_system
    from textclass.training.scoring import evaluate, format_table, sources

    run = load_system(cfg.ckpt_path, cfg.checkpoint)
    results = {name: evaluate(run, data, cfg.batch_size) for name, data in sources(run, list(cfg.splits), cfg.file).items()}
    print(format_table(results))
    out = Path(HydraConfig.get().runtime.output_dir) / EVAL_REPORT
    report = {"ckpt_path": str(cfg.ckpt_path), "checkpoint": str(getattr(run, "checkpoint", run.run_dir)), "class_names": list(run.labels.names), "results": {n: asdict(r) for n, r in results.items()}}
    out.write_text(json.dumps(report, indent=1))
    log.info("wrote %s", out)
    return results


def main() -> None:
    run_command(hydra_main, "eval")


if __name__ == "__main__":
    main()
