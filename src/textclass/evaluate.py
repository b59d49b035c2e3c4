"""`textclass-eval`: accuracy, macro-F1 and confusion matrix of a checkpoint on its splits or a file."""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path

import hydra
import torch
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig
from torchmetrics.functional.classification import multiclass_accuracy, multiclass_confusion_matrix, multiclass_f1_score

from textclass.checkpoint import TrainedRun, load_run
from textclass.cli import CONFIG_DIR, exit_on_user_error, run_command
from textclass.data.tsv import LabeledTexts
from textclass.errors import DataError

log = logging.getLogger(__name__)


@dataclass
class EvalResult:
    examples: int
    acc: float
    f1: float  # macro
    confusion: list[list[int]]  # rows: true class, columns: predicted


def evaluate(run: TrainedRun, data: LabeledTexts, batch_size: int = 256) -> EvalResult:
    logits = run.logits(data.texts, batch_size)
    labels = torch.from_numpy(data.labels)
    k = run.dataset.num_classes
    return EvalResult(
        examples=len(data),
        acc=float(multiclass_accuracy(logits, labels, k, average="micro")),
        f1=float(multiclass_f1_score(logits, labels, k, average="macro")),
        confusion=multiclass_confusion_matrix(logits, labels, k).tolist(),
    )


def sources(run: TrainedRun, splits: list[str], file: str | None) -> dict[str, LabeledTexts]:
    """What to evaluate: a labeled file in the dataset's format, or the run's splits that exist."""
    dataset = run.dataset
    if file:
        return {file: dataset.read_file(Path(file))[0]}
    available = dataset.available_splits()
    chosen = [s for s in splits if s in available]
    if not chosen:
        raise DataError(f"none of splits={list(splits)} exists for {dataset.name} (it has {available})")
    for missing in sorted(set(splits) - set(available)):
        log.info("%s has no %s split: skipped", dataset.name, missing)
    return {split: dataset.read(split)[0] for split in chosen}


def format_table(results: dict[str, EvalResult]) -> str:
    lines = ["| data | examples | accuracy | macro-F1 |", "|---|---|---|---|"]
    lines += [f"| {name} | {r.examples} | {r.acc:.4f} | {r.f1:.4f} |" for name, r in results.items()]
    return "\n".join(lines)


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="eval")
@exit_on_user_error
def hydra_main(cfg: DictConfig) -> dict[str, EvalResult]:
    run = load_run(cfg.ckpt_path)
    results = {name: evaluate(run, data, cfg.batch_size) for name, data in sources(run, list(cfg.splits), cfg.file).items()}
    print(format_table(results))
    out = Path(HydraConfig.get().runtime.output_dir) / "eval.json"
    report = {"ckpt_path": str(cfg.ckpt_path), "class_names": run.model.class_names, "results": {n: asdict(r) for n, r in results.items()}}
    out.write_text(json.dumps(report, indent=1))
    log.info("wrote %s", out)
    return results


def main() -> None:
    run_command(hydra_main, "eval")


if __name__ == "__main__":
    main()
