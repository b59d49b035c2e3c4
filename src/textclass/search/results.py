"""What a finished search leaves in its sweep directory, all read back from the study's storage.

- trials.csv: one row per trial (number, state, value(s), params, duration, failure reason)
- best_params.yaml: the best trial's parameters as an experiment config (single objective), or
  pareto_front.yaml: every Pareto-optimal trial (several objectives)
- optimization_history.png, param_importances.png
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

import optuna
from omegaconf import OmegaConf

log = logging.getLogger(__name__)

TRIALS_CSV = "trials.csv"
BEST_PARAMS = "best_params.yaml"
PARETO_FRONT = "pareto_front.yaml"
HISTORY_PNG = "optimization_history.png"
IMPORTANCES_PNG = "param_importances.png"


def objective_text(values: Sequence[float], names: Sequence[str], directions: Sequence[str]) -> str:
    """`val/loss 0.871454 (minimized)`, one per objective: what a value is and which way is better."""
    named = list(names) if len(names) == len(values) else [f"objective {i}" for i in range(len(values))]
    return ", ".join(f"{n} {v:.6g} ({d.lower().removesuffix('e')}ed)" for n, v, d in zip(named, values, directions))


def study_directions(study: optuna.Study) -> list[str]:
    return [d.name.lower() for d in study.directions]


def write_results(
    study: optuna.Study,
    sweep_dir: Path,
    groups: Collection[str],
    base_overrides: Sequence[str],
    fixed_params: Mapping[str, Any],
    config_values: Callable[[Mapping[str, Any]], dict[str, Any]],
    objectives: Sequence[str] = (),
) -> str:
    """Writes every file above that the study's trials allow; returns a short report of the best result.

    `groups`: the config groups (a swept `model` is a group choice, not a value); `base_overrides`:
    the sweep's command line; `fixed_params`: the search's constant values, part of every trial;
    `config_values`: a trial's params as config values (`SearchSpace.values`); `objectives`: the
    metric name of each objective (optimized_metric).
    """
    sweep_dir.mkdir(parents=True, exist_ok=True)
    study.trials_dataframe().to_csv(sweep_dir / TRIALS_CSV, index=False)
    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if not complete:
        return f"study {study.study_name!r}: no completed trial; see {sweep_dir / TRIALS_CSV}"
    if len(study.directions) == 1:
        best = study.best_trial
        params = {**fixed_params, **config_values(best.params)}
        objective = objective_text([best.value], objectives, study_directions(study))
        (sweep_dir / BEST_PARAMS).write_text(best_params_yaml(study, best, params, groups, base_overrides, objective))
        report = f"best trial {best.number} of study {study.study_name!r}: {objective}, params {best.params}; wrote {sweep_dir / BEST_PARAMS}"
    else:
        front = [{"number": t.number, "values": t.values, "params": config_values(t.params)} for t in study.best_trials]
        (sweep_dir / PARETO_FRONT).write_text(OmegaConf.to_yaml({"directions": [d.name.lower() for d in study.directions], "trials": front}))
        report = f"{len(front)} Pareto-optimal trials in study {study.study_name!r}; wrote {sweep_dir / PARETO_FRONT}"
    write_plots(study, sweep_dir)
    return report


def best_params_yaml(
    study: optuna.Study, best: optuna.trial.FrozenTrial, params: Mapping[str, Any], groups: Collection[str], base_overrides: Sequence[str], objective: str
) -> str:
    """The best trial's `params` as an experiment config: group choices as defaults overrides, other values nested under their keys.

    A search over `experiment=X` gives a config that includes X (a second experiment= on the command
    line would replace X, not add to it).
    """
    values = OmegaConf.create({})
    for key, value in params.items():
        if key not in groups:
            OmegaConf.update(values, key, value, force_add=True)
    base_experiments = [o.split("=", 1)[1] for o in base_overrides if o.split("=", 1)[0] == "experiment"]
    defaults: list[Any] = [f"/experiment/{name}" for name in base_experiments]
    defaults += [{f"override /{key}": value} for key, value in params.items() if key in groups]
    if base_experiments:
        defaults.append("_self_")  # this file's values over the included experiment's
    config = {**({"defaults": defaults} if defaults else {}), **OmegaConf.to_container(values)}
    command = " ".join(["textclass train", *(o for o in base_overrides if o.split("=", 1)[0] != "experiment")])
    header = [
        "# @package _global_",
        f"# best of {len(study.trials)} trials in study {study.study_name!r}: trial {best.number}, {objective}",
        f"# searched with: {' '.join(['textclass train -m', *base_overrides])}",
        "# to train with it, copy it to <your config folder>/experiment/<name>.yaml and run:",
        f"#   {command.replace('textclass train', 'textclass train --config-dir <your config folder>', 1)} experiment=<name>",
    ]
    return "\n".join(header) + "\n" + OmegaConf.to_yaml(config)


def write_plots(study: optuna.Study, sweep_dir: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")  # headless: the plots below draw through pyplot
    from matplotlib import pyplot as plt
    from optuna.visualization import matplotlib as optuna_plots

    target = None if len(study.directions) == 1 else (lambda t: t.values[0])
    target_name = "objective" if target is None else "first objective"
    plots = {
        HISTORY_PNG: lambda: optuna_plots.plot_optimization_history(study, target=target, target_name=target_name),
        IMPORTANCES_PNG: lambda: optuna_plots.plot_param_importances(study, target=target, target_name=target_name),
    }
    for name, plot in plots.items():
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                ax = plot()
        except (ValueError, RuntimeError) as err:  # e.g. importances need two completed trials that differ
            log.info("%s not drawn: %s", name, err)
            continue
        figure = ax.figure
        figure.set_size_inches(8, 5)
        figure.tight_layout()
        figure.savefig(sweep_dir / name, dpi=100)
        plt.close(figure)
