"""Pruning a trial from inside its training job: report the metric each epoch, stop when the pruner says so.

The sweeper (hydra_plugins/textclass_optuna_sweeper) tells each job which trial it runs through
environment variables (so DDP ranks launched from the job inherit them). Outside a search they are
absent and `OptunaPruning` does nothing. The pruner is the one the sweep configured
(`hydra/sweeper/pruner=median|hyperband|none`); it travels in the study's user attributes.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass

import lightning as L
import optuna
from hydra.utils import instantiate
from lightning.pytorch.callbacks import Callback

from textclass.errors import ConfigError
from textclass.search.storage import STORAGE_ERRORS, open_storage

log = logging.getLogger(__name__)

STORAGE_ENV = "TEXTCLASS_OPTUNA_STORAGE"
STUDY_ENV = "TEXTCLASS_OPTUNA_STUDY"
TRIAL_ENV = "TEXTCLASS_OPTUNA_TRIAL"
PRUNER_ATTR = "textclass.pruner"  # study user attribute: the pruner's config, {_target_: ..., ...} or None


@dataclass(frozen=True)
class TrialRef:
    storage: str
    study_name: str
    number: int

    def env(self) -> dict[str, str]:
        return {STORAGE_ENV: self.storage, STUDY_ENV: self.study_name, TRIAL_ENV: str(self.number)}

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> TrialRef | None:
        if TRIAL_ENV not in env:
            return None
        return cls(storage=env[STORAGE_ENV], study_name=env[STUDY_ENV], number=int(env[TRIAL_ENV]))


@dataclass(frozen=True)
class RunningTrial:
    """A trial the sweeper asked for in another process, reported to through Optuna's public storage
    and pruner APIs (what `Trial.report` and `Trial.should_prune` do inside a study's own process)."""

    study: optuna.Study  # loaded with the sweep's pruner
    storage: optuna.storages.BaseStorage  # the study's
    trial_id: int
    number: int

    def report(self, value: float, step: int) -> None:
        self.storage.set_trial_intermediate_value(self.trial_id, step, value)

    def should_prune(self) -> bool:
        return self.study.pruner.prune(self.study, self.storage.get_trial(self.trial_id))


def load_trial(ref: TrialRef) -> RunningTrial:
    """The running trial, in a study loaded with the sweep's pruner."""
    storage = open_storage(ref.storage)
    study_id = storage.get_study_id_from_name(ref.study_name)
    pruner_config = storage.get_study_user_attrs(study_id).get(PRUNER_ATTR)
    pruner = instantiate(pruner_config) if pruner_config else optuna.pruners.NopPruner()
    study = optuna.load_study(study_name=ref.study_name, storage=storage, pruner=pruner)
    return RunningTrial(study, storage, storage.get_trial_id_from_study_id_trial_number(study_id, ref.number), ref.number)


class OptunaPruning(Callback):
    """Reports `monitor` at the end of each training epoch; raises `optuna.TrialPruned` when told to prune.

    The sweeper records the job's `TrialPruned` as a PRUNED trial. Under DDP rank 0 reports and
    decides, and every rank follows its decision, so all of them stop together.
    """

    def __init__(self, monitor: str | list[str]) -> None:  # a list: a multi-objective study, never pruned
        self.monitor = monitor
        self.active = False  # inside a single-objective search: the same on every DDP rank
        self.trial: RunningTrial | None = None  # rank 0's, which reports and decides

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        ref = TrialRef.from_env(os.environ)
        if ref is None or stage != "fit":
            return
        if not isinstance(self.monitor, str):
            log.info("trial %d: multi-objective studies cannot be pruned", ref.number)
            return
        self.active = True
        if not trainer.is_global_zero:
            return
        try:
            self.trial = load_trial(ref)
        except (ConfigError, *STORAGE_ERRORS) as err:  # the study's database is away (restarting)
            log.warning("trial %d: the study's storage does not answer (%s): this run reports no epochs and is not pruned", ref.number, type(err).__name__)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # the end of the training epoch comes after that epoch's validation, so val/* metrics are current
        if not self.active or trainer.sanity_checking:
            return
        prune = False
        if self.trial is not None:
            value = trainer.callback_metrics.get(self.monitor)
            if value is not None and math.isfinite(float(value)):
                prune = self.report(float(value), trainer.current_epoch)
        if trainer.strategy.broadcast(prune):
            # epochs counted from 1 for people (Optuna's steps stay 0-based)
            raise optuna.TrialPruned(f"after epoch {trainer.current_epoch + 1}: {self.monitor}={float(trainer.callback_metrics[self.monitor]):.4f}")

    def report(self, value: float, epoch: int) -> bool:
        """Reports the epoch; whether to prune. A report the storage misses (its database restarting)
        only skips this epoch's pruning decision: the run goes on."""
        try:
            self.trial.report(value, step=epoch)
            return self.trial.should_prune()
        except STORAGE_ERRORS as err:
            log.warning("trial %d, epoch %d: not reported (%s): not pruned at this epoch", self.trial.number, epoch, type(err).__name__)
            return False
