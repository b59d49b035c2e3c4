"""Ensembles, a plug-in: the mean of trained runs' class probabilities, as a directory that eval,
predict, compare and `textclass.load` take wherever they take a run directory.

    textclass ensemble RUN_DIR_OR_CKPT RUN_DIR_OR_CKPT ... [output=DIR] [batch_size=256] [checkpoint=selected]

Each argument is a member: a run directory (its selected checkpoint: the best by the checkpoint
monitor, the one its metrics and predictions files report) or a checkpoint file inside one. The
members may differ in anything but their classes (names, order, multi-label or not) and their
splits' examples (the predictions' data fingerprints): a bag-of-embeddings run and a MiniLM run
make an ensemble. Its probability of a class is the mean of the members' (softmax per member;
multi-label: each label's sigmoid), and a multi-label ensemble predicts a label when that mean
reaches the mean of the members' thresholds for it.

The ensemble directory holds:

    config.yaml               `ensemble:` the members (run directory, checkpoint), classes, dataset
                              and split fingerprints; eval, predict and load read it
    labels.json               the classes, as in a run directory
    predictions_<split>.npz   its predictions on valid and test (textclass-compare reads them)

The command prints each member's and the ensemble's accuracy and macro-F1 on valid and test, as
textclass-eval computes them. Eval and predict hand an ensemble's "logits" around as log(mean
probability) (multi-label: its logit), so softmax (sigmoid) gives the mean back exactly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
from omegaconf import DictConfig, ListConfig, OmegaConf

from textclass.data.dataset import Examples, TextDataset
from textclass.data.labels import LabelSet
from textclass.errors import ConfigError, DataError
from textclass.overrides import run_names, unique
from textclass.run_files import ENSEMBLE_KEY, LABELS_FILE, RUN_CONFIG, SELECTED, predictions_file
from textclass.tables import markdown_table
from textclass.training.checkpoint import Predictor, TrainedRun, load_run, run_checkpoint
from textclass.training.run_dir import find_run_dir, load_yaml
from textclass.training.predictions import fingerprint, from_logits
from textclass.training.scoring import EvalResult, score
from textclass.training.scoring import sources as read_sources

SPLITS = ("valid", "test")  # what the ensemble saves predictions of, as a training run does
COMBINE = "mean_probabilities"


@dataclass(frozen=True)
class Options:
    output: str | None
    batch_size: int
    checkpoint: str = "selected"


@dataclass(frozen=True)
class Member:
    run_dir: Path
    checkpoint: Path


@dataclass
class MeanRule:
    """An ensemble's `DecisionRule`: its logits are log(mean probability) (multi-label: the mean's
    logit), so they give back the mean; a multi-label decision is the mean reaching `thresholds`."""

    multi_label: bool
    thresholds: torch.Tensor  # per label: the mean of the members' thresholds

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        return logits.sigmoid() if self.multi_label else logits.softmax(-1)

    def decide(self, probabilities: torch.Tensor) -> torch.Tensor:
        return probabilities >= self.thresholds


@dataclass
class Ensemble:
    """A `Predictor` made of trained runs that agree on classes and splits (see `check_members`)."""

    run_dir: Path  # the ensemble directory
    members: list[TrainedRun]
    checkpoints: list[Path]  # the members' checkpoint files, in member order
    model: MeanRule = field(init=False)

    def __post_init__(self) -> None:
        import torch

        rule = self.members[0].model
        thresholds = torch.stack([m.model.thresholds.float().cpu() for m in self.members]).mean(0)
        self.model = MeanRule(rule.multi_label, thresholds)

    # the data and classes are every member's (checked when the ensemble was made): the first one's stand for them
    @property
    def cfg(self) -> DictConfig:
        return self.members[0].cfg

    @property
    def dataset(self) -> TextDataset:
        return self.members[0].dataset

    @property
    def labels(self) -> LabelSet:
        return self.members[0].labels

    def logits(self, texts: list[str], batch_size: int = 256, pairs: list[str] | None = None) -> torch.Tensor:
        return self.combine([m.logits(texts, batch_size, pairs) for m in self.members])

    def combine(self, member_logits: list[torch.Tensor]) -> torch.Tensor:
        """The ensemble's logits from its members' logits on the same texts, in member order."""
        return mean_logits([m.model.probabilities(z) for m, z in zip(self.members, member_logits)], self.model.multi_label)

    def single_model(self, purpose: str) -> TrainedRun:
        raise ConfigError(
            f"{purpose} needs one model, and {self.run_dir} is an ensemble of {len(self.members)} run(s); "
            f"pass one of its members instead: {', '.join(str(c) for c in self.checkpoints)}"
        )


def mean_logits(probabilities: list[torch.Tensor], multi_label: bool) -> torch.Tensor:
    """float32 logits [N, C] whose softmax (multi-label: sigmoid) is the mean of `probabilities`
    (each [N, C]): log p, or log(p / (1 - p)); kept finite so that every metric can take them."""
    mean = torch.stack([p.double() for p in probabilities]).mean(0)
    tiny = torch.finfo(torch.float32).tiny
    if multi_label:
        mean = mean.clamp(tiny, 1 - 1e-12)
        return (mean.log() - (-mean).log1p()).float()
    return mean.clamp_min(tiny).log().float()


# --- a run or an ensemble -------------------------------------------------------------------------
def load_system(path: str | Path, checkpoint: str = SELECTED) -> Predictor:
    """What eval, predict and textclass.load take: a run directory or checkpoint (`load_run`: its
    `checkpoint`), or an ensemble directory, whose members' checkpoints were chosen when it was made."""
    path = Path(path).expanduser().resolve()
    if ensemble_members(path) is not None:
        if str(checkpoint) != SELECTED:
            raise ConfigError(f"{path} is an ensemble: its members' checkpoints were chosen when it was made; drop checkpoint={checkpoint}")
        return load_ensemble(path)
    return load_run(path, checkpoint)


def ensemble_members(path: Path) -> list[str] | None:
    """The member checkpoints an ensemble directory lists; None for anything else (a run, a file)."""
    if not (path / RUN_CONFIG).is_file():
        return None
    cfg = load_yaml(path / RUN_CONFIG)
    if not isinstance(cfg, DictConfig) or ENSEMBLE_KEY not in cfg:
        return None
    section = cfg[ENSEMBLE_KEY]
    members = section.get("members") if isinstance(section, DictConfig) else None
    return [str(m.get("checkpoint")) if isinstance(m, DictConfig) else str(m) for m in members] if isinstance(members, ListConfig) else []


def refuse_ensemble(path: str | Path, purpose: str) -> None:
    """What needs one model (`purpose`) is refused for an ensemble directory, naming its members."""
    members = ensemble_members(Path(path).expanduser().resolve())
    if members is not None:
        raise ConfigError(f"{purpose} needs one model, and {path} is an ensemble of {len(members)} run(s) (textclass-ensemble): pass one of its members, {', '.join(members)}")


# --- members -----------------------------------------------------------------------------------------
def resolve_member(source: str, checkpoint: str = SELECTED) -> Member:
    """A run directory (its `checkpoint`, see checkpoint.run_checkpoint) or a checkpoint file inside one."""
    path = Path(source).expanduser().resolve()
    if not path.exists():
        raise DataError(f"{source}: no such run directory or checkpoint; pass textclass-train run directories (or .ckpt files in them)")
    inner = ensemble_members(path)
    if inner is not None:
        raise ConfigError(f"{source} is an ensemble itself; pass the run directories of its members instead: {', '.join(inner)}")
    if path.is_dir():
        if not (path / RUN_CONFIG).is_file():
            raise DataError(f"{source}: not a run directory (no {RUN_CONFIG}); pass textclass-train run directories (or .ckpt files in them)")
        return Member(path, run_checkpoint(path, checkpoint))
    return Member(find_run_dir(path), path)


def member_names(members: list[Member]) -> list[str]:
    """Each member by the overrides that set its run apart from the others' (`model=lstm seed=2`),
    else its run directory's name; with its checkpoint's name when a run gives two members."""
    return unique(run_names([m.run_dir for m in members]), [m.checkpoint.name for m in members])


def check_members(members: list[Member]) -> None:
    seen: dict[Path, Member] = {}
    for member in members:
        if member.checkpoint in seen:
            raise ConfigError(f"{member.checkpoint} is given twice (as {seen[member.checkpoint].run_dir} and {member.run_dir}): give each member once")
        seen[member.checkpoint] = member


def check_same_classes(runs: list[TrainedRun], names: list[str]) -> None:
    """Every run has the first one's classes, in the same order, and is multi-label alike."""
    first = runs[0].labels
    for run, name in zip(runs[1:], names[1:]):
        labels = run.labels
        pair = f"{names[0]} and {name}"
        if labels.multi_label != first.multi_label:
            kinds = {True: "multi-label", False: "single-label"}
            raise DataError(f"{pair} cannot be ensembled: {names[0]} is {kinds[first.multi_label]}, {name} {kinds[labels.multi_label]}")
        if (labels.values, labels.names) != (first.values, first.names):
            raise DataError(
                f"{pair} cannot be ensembled: they have different classes, {list(first.names)} vs {list(labels.names)}; "
                "ensemble runs trained on the same classes in the same order"
            )


def check_same_splits(splits: list[dict[str, Examples]], dataset_names: list[str], names: list[str]) -> None:
    """Every run reads the first one's splits, with the same examples (data fingerprints)."""
    first = {split: fingerprint(examples) for split, examples in splits[0].items()}
    for run_splits, dataset, name in zip(splits[1:], dataset_names[1:], names[1:]):
        pair = f"{names[0]} and {name}"
        if list(run_splits) != list(first):
            raise DataError(f"{pair} cannot be ensembled: they have different splits, {list(first)} vs {list(run_splits)}")
        for split, examples in run_splits.items():
            if fingerprint(examples) != first[split]:
                raise DataError(
                    f"{pair} cannot be ensembled: their {split} splits are different examples "
                    f"({dataset_names[0]}, {len(splits[0][split])} examples, data {first[split][:12]} vs "
                    f"{dataset}, {len(examples)} examples, data {fingerprint(examples)[:12]}); "
                    "ensemble runs of the same data and splits (another tokenizer, vocabulary or model is fine)"
                )


# --- the ensemble directory --------------------------------------------------------------------------
def manifest(members: list[Member], labels: LabelSet, dataset: str, fingerprints: dict[str, str]) -> dict:
    return {
        ENSEMBLE_KEY: {
            "combine": COMBINE,
            "members": [{"run_dir": str(m.run_dir), "checkpoint": str(m.checkpoint)} for m in members],
            "class_names": list(labels.names),
            "multi_label": labels.multi_label,
            "dataset": dataset,
            "splits": fingerprints,
        }
    }


def read_manifest(folder: Path) -> tuple[list[Member], list[str], bool]:
    """(members, class names, multi-label) of an ensemble directory's config.yaml."""
    path = folder / RUN_CONFIG
    section = load_yaml(path).get(ENSEMBLE_KEY)
    members = section.get("members") if isinstance(section, DictConfig) else None
    well_formed = (
        isinstance(members, ListConfig)
        and len(members) > 0
        and all(isinstance(m, DictConfig) and isinstance(m.get("run_dir"), str) and isinstance(m.get("checkpoint"), str) for m in members)
        and isinstance(section.get("class_names"), ListConfig)
    )
    if not well_formed:
        raise ConfigError(f"{path}: not an ensemble textclass-ensemble wrote (no members with run_dir and checkpoint, or no class_names); make it again")
    found = [Member(Path(m.run_dir), Path(m.checkpoint)) for m in members]
    return found, [str(n) for n in section.class_names], bool(section.get("multi_label", False))


def load_ensemble(folder: Path) -> Ensemble:
    """An ensemble directory's members, loaded as textclass-eval loads runs, checked against it."""
    members, class_names, multi_label = read_manifest(folder)
    for member in members:
        if not member.checkpoint.is_file():
            raise DataError(f"{folder}: its member {member.checkpoint} is gone (moved or deleted); make the ensemble again with textclass-ensemble")
    runs = [load_run(m.checkpoint, run_dir=m.run_dir) for m in members]
    for run, member in zip(runs, members):
        if list(run.labels.names) != class_names or run.labels.multi_label != multi_label:
            raise DataError(
                f"{folder}: its member {member.run_dir} now has the classes {list(run.labels.names)}, not {class_names} "
                "(trained again in place?); make the ensemble again with textclass-ensemble"
            )
    return Ensemble(folder, runs, [m.checkpoint for m in members])


def check_output_folder(folder: Path) -> None:
    if (folder / RUN_CONFIG).is_file() and ensemble_members(folder.resolve()) is None:
        raise ConfigError(f"output={folder} is a training run's directory; name a new folder for the ensemble")


# --- the command -------------------------------------------------------------------------------------
def check_options(opts: Options) -> Options:
    if not isinstance(opts.batch_size, int) or isinstance(opts.batch_size, bool) or opts.batch_size < 1:
        raise ConfigError(f"batch_size={opts.batch_size}: a positive integer, e.g. batch_size=256")
    return Options(None if opts.output is None else str(opts.output), opts.batch_size, str(opts.checkpoint))


@dataclass(frozen=True)
class Row:
    name: str
    results: dict[str, EvalResult]  # by split


def format_table(rows: list[Row], multi_label: bool) -> str:
    splits = list(rows[0].results)
    acc = "subset acc" if multi_label else "acc"
    header = ["system", *(f"{s} {name}" for s in splits for name in (acc, "macro-F1"))]
    cells = [[row.name, *(v for s in splits for v in (row.results[s].acc, row.results[s].f1))] for row in rows]
    examples = ", ".join(f"{s} {r.examples}" for s, r in rows[0].results.items())
    return markdown_table(header, cells) + f"\nexamples: {examples}\n"


def make_ensemble(sources: list[str], opts: Options, folder: Path) -> str:
    """The ensemble of the runs `sources` (directories or checkpoints), written into `folder`; returns
    the table of each member's and the ensemble's figures."""
    if not sources:
        raise ConfigError("no member to ensemble: give run directories, e.g. textclass ensemble outputs/train/runs/A outputs/train/runs/B")
    check_output_folder(folder)
    members = [resolve_member(s, opts.checkpoint) for s in sources]
    check_members(members)
    names = member_names(members)
    runs = [load_run(m.checkpoint, run_dir=m.run_dir) for m in members]
    check_same_classes(runs, names)
    splits = [read_sources(run, list(SPLITS), None) for run in runs]
    check_same_splits(splits, [run.dataset.name for run in runs], names)
    ensemble = Ensemble(folder.resolve(), runs, [m.checkpoint for m in members])
    rows = [Row(name, {}) for name in [*names, "ensemble"]]
    predictions = {}
    for split, examples in splits[0].items():
        member_logits = [run.logits(s[split].texts, opts.batch_size, s[split].pairs) for run, s in zip(runs, splits)]
        logits = ensemble.combine(member_logits)
        predictions[split] = from_logits(ensemble, split, examples, logits)
        for row, run, z in zip(rows, [*runs, ensemble], [*member_logits, logits]):
            row.results[split] = score(run, z, examples.labels)
    folder.mkdir(parents=True, exist_ok=True)
    fingerprints = {split: fingerprint(examples) for split, examples in splits[0].items()}
    (folder / RUN_CONFIG).write_text(OmegaConf.to_yaml(manifest(members, ensemble.labels, ensemble.dataset.name, fingerprints)))
    ensemble.labels.save(folder / LABELS_FILE)
    for split in SPLITS:
        # a folder made again from members without a test split keeps no stale file of the last ensemble
        (folder / predictions_file(split)).unlink(missing_ok=True)
    for split, p in predictions.items():
        p.save(folder / predictions_file(split))
    return format_table(rows, ensemble.model.multi_label)
