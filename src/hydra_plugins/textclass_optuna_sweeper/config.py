"""The sweeper's config, registered as `hydra/sweeper: textclass_optuna`, with its sampler and pruner options.

The keys of the official hydra-optuna-sweeper (`params`, `sampler`, `direction`, `n_trials`,
`n_jobs`, `storage`, `study_name`, `max_failure_rate`) mean the same here.
"""

# No `from __future__ import annotations` in this package: Hydra imports plugin modules without
# registering them in sys.modules, where dataclasses look up string annotations.
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING


@dataclass
class TPESamplerConf:
    _target_: str = "optuna.samplers.TPESampler"
    seed: Optional[int] = 123
    n_startup_trials: int = 10
    multivariate: bool = False


@dataclass
class RandomSamplerConf:
    _target_: str = "optuna.samplers.RandomSampler"
    seed: Optional[int] = 123


@dataclass
class BruteForceSamplerConf:
    """Every combination once (discrete spaces: choice, range, int intervals), in random order."""

    _target_: str = "optuna.samplers.BruteForceSampler"
    seed: Optional[int] = 123


@dataclass
class NopPrunerConf:
    _target_: str = "optuna.pruners.NopPruner"


@dataclass
class MedianPrunerConf:
    """Stops a trial whose metric is worse than the median of earlier trials at the same epoch."""

    _target_: str = "optuna.pruners.MedianPruner"
    n_startup_trials: int = 3  # finished trials before any pruning
    n_warmup_steps: int = 1  # epochs of each trial before it can be pruned (epoch 0 is noisy)
    interval_steps: int = 1


@dataclass
class HyperbandPrunerConf:
    _target_: str = "optuna.pruners.HyperbandPruner"
    min_resource: int = 1  # epochs
    max_resource: Any = "auto"
    reduction_factor: int = 3


@dataclass
class ThresholdPrunerConf:
    """Stops a trial as soon as its metric leaves [lower, upper] (e.g. a diverging val/loss)."""

    _target_: str = "optuna.pruners.ThresholdPruner"
    lower: Optional[float] = None
    upper: Optional[float] = None
    n_warmup_steps: int = 0


@dataclass
class TextclassOptunaSweeperConf:
    _target_: str = "hydra_plugins.textclass_optuna_sweeper.optuna_sweeper.TextclassOptunaSweeper"
    # the sweeper gets the sampler and pruner as configs: it re-seeds the sampler on resume and
    # hands the pruner's config to the jobs
    _recursive_: bool = False
    defaults: List[Any] = field(default_factory=lambda: [{"sampler": "tpe"}, {"pruner": "none"}])
    sampler: Any = MISSING
    pruner: Any = MISSING
    # minimize | maximize, or a list of them for several objectives (the job returns a list)
    direction: Any = "minimize"
    # finished trials the study should hold in total: re-running resumes up to this number
    n_trials: int = 20
    # trials asked and launched together (in parallel with a parallel launcher, e.g. joblib)
    n_jobs: int = 1
    # None: sqlite:///<sweep dir>/optuna.db; postgresql://... shares one study between machines
    storage: Optional[str] = None
    # None: the task name (train)
    study_name: Optional[str] = None
    # stop once more than this fraction of n_trials has failed (raised, or returned NaN/inf)
    max_failure_rate: float = 0.25
    # seconds between "still running" marks of each trial; a trial without one for twice as long
    # (its process was killed) is marked failed and does not count towards n_trials
    heartbeat_interval: int = 10
    # key: search space in override syntax, e.g. optimizer.lr: tag(log, interval(1e-4, 1e-1));
    # a dict, not None, so that the command line can add to it (hydra.sweeper.params={...})
    params: Dict[str, Any] = field(default_factory=dict)


store = ConfigStore.instance()
store.store(group="hydra/sweeper", name="textclass_optuna", node=TextclassOptunaSweeperConf, provider="textclass")
for name, node in {"tpe": TPESamplerConf, "random": RandomSamplerConf, "brute_force": BruteForceSamplerConf}.items():
    store.store(group="hydra/sweeper/sampler", name=name, node=node, provider="textclass")
for name, node in {"none": NopPrunerConf, "median": MedianPrunerConf, "hyperband": HyperbandPrunerConf, "threshold": ThresholdPrunerConf}.items():
    store.store(group="hydra/sweeper/pruner", name=name, node=node, provider="textclass")
