"""`textclass train` (and textclass-train): compose the config, train with the recipe, return the
value a sweeper optimizes. The command line is rewritten first: a DDP rank's own job, `seeds=N` as a
multirun over seed=1..N, `resume=` as the run's own overrides and checkpoint, moved keys."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from textclass.commands.cli import MULTIRUN_FLAGS, exit_on_user_error, run_command
from textclass.config.compose import CONFIG_DIR, is_global_rank_zero
from textclass.config.trust import check_user_targets
from textclass.errors import ConfigError
from textclass.overrides import override_key
from textclass.console import shown_path
from textclass.training.accelerators import check_accelerator
from textclass.training.launchers import check_launcher, check_torchrun, check_torchrun_run_dir
from textclass.training.resume import plugin_arguments, removed_when_refused, resume_arguments

# Lightning, torch and the models (training.recipe) are imported inside train_job: `--help`, `--cfg
# job` and bad overrides are answered without their start-up time.

log = logging.getLogger(__name__)

DDP_JOB_ENV = "TEXTCLASS_DDP_JOB_ARGS"


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="train")
@exit_on_user_error
def hydra_main(cfg: DictConfig) -> float | list[float] | None:
    hydra_cfg = HydraConfig.get()
    log.info("run dir: %s", shown_path(Path(hydra_cfg.runtime.output_dir)))
    log.debug("config:\n%s", OmegaConf.to_yaml(cfg))
    if hydra_cfg.mode != RunMode.MULTIRUN:
        with removed_when_refused(Path(hydra_cfg.runtime.output_dir)):
            return train_job(cfg)
    env_before = dict(os.environ)
    # Lightning's DDP re-launches this script with its argv for the other ranks: under -m that
    # would be the whole sweep. Tell them exactly this job (read back in `main`).
    os.environ[DDP_JOB_ENV] = json.dumps([*hydra_cfg.overrides.task, f"hydra.run.dir={hydra_cfg.runtime.output_dir}"])
    try:
        return train_job(cfg)
    finally:
        # Lightning leaves LOCAL_RANK & co. set after a DDP job; the next job would then take its
        # ranks for externally launched ones and never start them.
        restore_environment(env_before)
        import torch

        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


def restore_environment(before: Mapping[str, str]) -> None:
    """Remove the variables a job added and restore those it changed; the rest stays untouched."""
    for name in set(os.environ) - set(before):
        del os.environ[name]
    for name, value in before.items():
        if os.environ.get(name) != value:
            os.environ[name] = value


def main() -> None:
    """Console entry: `seeds=N` becomes a multirun over seed=1..N, and `resume=<run dir>|last` that
    run's own overrides plus its last checkpoint."""
    run_command(hydra_main, "train", rewrite=rewrite_arguments, check=check_run, check_multirun=check_launcher)


def check_run(cfg: DictConfig) -> None:
    """A single run's checks before Hydra makes its run dir: user classes, torchrun's world size,
    the trainer's hardware."""
    check_user_targets(cfg)
    check_torchrun(cfg.trainer, os.environ)
    check_accelerator(cfg.trainer)


def train_job(cfg: DictConfig) -> float | list[float] | None:
    """Train; the value the sweeper optimizes. A DDP rank other than 0 (Lightning's child, a Slurm
    task) whose search trial is pruned ends with exit code 0: rank 0's sweeper records the PRUNED
    trial, and Lightning kills the whole sweep as soon as one of its ranks exits non-zero."""
    # optuna, torch and Lightning load here, not for --help or a refused command line
    import optuna

    from textclass.training.recipe import optimized_value, train

    try:
        return optimized_value(train(cfg), cfg.get("optimized_metric"))
    except optuna.TrialPruned as pruned:
        if is_global_rank_zero(os.environ):
            raise
        log.info("trial pruned %s: this process ends", pruned)
        return None


def rewrite_arguments(args: list[str]) -> list[str]:
    """The command line Hydra gets: a DDP rank's job, seeds=N and resume= rewritten (see each)."""
    args = plugin_arguments(resume_arguments(seeds_arguments(ddp_rank_arguments(args, os.environ))))
    check_torchrun_run_dir(args, os.environ)
    return args


def ddp_rank_arguments(args: list[str], env: Mapping[str, str]) -> list[str]:
    """For a DDP rank that Lightning launched from inside a multirun job: that job's overrides only.

    Lightning's own additions (hydra.job.name, hydra.output_subdir=null) are kept; its
    hydra.run.dir (the sweep's run-mode dir) is replaced by the job's directory.
    """
    if DDP_JOB_ENV not in env or "LOCAL_RANK" not in env or not ({"-m", "--multirun"} & set(args)):
        return args
    lightning_added = [a for a in args if a.startswith(("hydra.job.name=", "hydra.output_subdir="))]
    return [*json.loads(env[DDP_JOB_ENV]), *lightning_added]


def seeds_arguments(args: list[str]) -> list[str]:
    """`seeds=N` becomes a multirun over seed=1,...,N (-m added when missing), so the sweep's
    summary aggregates the repeats of each setup (reports/sweeps.py); other sweeps combine,
    `seeds=3 model=lstm,gru` being 6 jobs."""
    # `+seeds=3` too: Hydra's advice for a key it does not know is to add it with +
    given = [a for a in args if override_key(a) == "seeds" and "=" in a and not a.startswith("~")]
    if not given:
        return args
    value = given[-1].split("=", 1)[1]
    # isdecimal alone would take other scripts' digits, which int() reads too
    if not (value.isascii() and value.isdecimal() and int(value) > 0):
        raise ConfigError(
            f"seeds={value}: the number of seeds, a positive integer (seeds=5 trains with seed=1,2,3,4,5); "
            "for seeds of your own: -m seed=7,11,13"
        )
    rest = [a for a in args if a not in given]
    for arg in rest:
        key, chosen = override_key(arg), arg.partition("=")[2]
        if key == "seed":
            raise ConfigError(f"seeds={value} and {arg}: seeds=N sets seed=1,...,N itself; give one of the two")
        if (key == "hparams_search" and chosen != "null") or (key == "hydra/sweeper" and chosen == "textclass_optuna"):
            raise ConfigError(
                f"seeds={value} with {arg}: the Optuna sweeper would take seed for a parameter to search; "
                f"search without seeds=, then rerun the best config (best_params.yaml) with seeds={value}"
            )
        if key == "resume":
            raise ConfigError(f"seeds={value} with {arg}: resume continues one run; drop one of the two")
    multirun = [] if set(MULTIRUN_FLAGS) & set(rest) else ["-m"]
    return [*multirun, *rest, "seed=" + ",".join(str(s) for s in range(1, int(value) + 1))]


if __name__ == "__main__":
    main()
