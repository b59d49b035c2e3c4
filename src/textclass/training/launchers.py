"""Checks of the settings that start processes beyond this one (Hydra launchers, torchrun) against
the trainer's, before any job starts: one clear error instead of a hang or another tool's traceback."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Mapping, Sequence

from omegaconf import DictConfig

from textclass.errors import ConfigError

SLURM_LAUNCHER = "SlurmLauncher"  # hydra-submitit-launcher's class for hydra/launcher=submitit_slurm (and slurm)
# launchers that run each job inside a worker process of their own, whose command line Lightning's
# DDP cannot start again for the other ranks
WORKER_LAUNCHERS = {"JoblibLauncher": "joblib", "LocalLauncher": "submitit_local", "RayLauncher": "ray"}
TORCHRUN_ENV = "TORCHELASTIC_RUN_ID"  # set by torchrun in every process it starts


def device_count(devices: object) -> int | None:
    """trainer.devices as a number of processes per node: 4, "4" or [0, 1]; None for "auto" (or -1)."""
    if isinstance(devices, Sequence) and not isinstance(devices, str):
        return len(devices)
    text = str(devices).strip()
    return int(text) if text.isdecimal() else None


def check_launcher(cfg: DictConfig) -> None:
    """A multirun's launcher (cfg holds the hydra node) against its trainer.

    Slurm: one task per device and the trainer's nodes (Lightning's SLURMEnvironment makes each task
    one rank), and `srun` on this machine (submitit submits through it). joblib, submitit_local, ray:
    each job is one worker process, so DDP inside a job is left to the default launcher (or Slurm).
    """
    target = str(cfg.hydra.launcher.get("_target_", "")).rsplit(".", 1)[-1]
    devices, nodes = cfg.trainer.get("devices"), cfg.trainer.get("num_nodes", 1)
    if target == SLURM_LAUNCHER:
        count = device_count(devices)
        if count is None:
            raise ConfigError(
                f"hydra/launcher=slurm with trainer.devices={devices}: Slurm starts one task per device, so give "
                "their number (trainer.devices=4 and hydra.launcher.tasks_per_node=4)"
            )
        launcher = cfg.hydra.launcher
        if launcher.tasks_per_node != count or launcher.nodes != nodes:
            raise ConfigError(
                f"hydra.launcher.tasks_per_node={launcher.tasks_per_node}, hydra.launcher.nodes={launcher.nodes} but "
                f"trainer.devices={devices}, trainer.num_nodes={nodes}: Slurm must start one task per device on each "
                f"node; set hydra.launcher.tasks_per_node={count} hydra.launcher.nodes={nodes} (hydra/launcher=slurm "
                "takes both from the trainer)"
            )
        if shutil.which("srun") is None:
            raise ConfigError(
                "hydra/launcher=slurm (submitit_slurm): no `srun` on this machine's PATH, so nothing can be submitted "
                "to Slurm; run the sweep from a Slurm login node, or here with hydra/launcher=submitit_local (or without "
                "hydra/launcher)"
            )
        if (reason := no_cluster_reason()) is not None:
            raise ConfigError(
                f"hydra/launcher=slurm: Slurm's programs are installed but no cluster answers (sinfo: {reason}); run the sweep "
                "where the cluster's controller is reachable (a login node, SLURM_CONF set), or here with "
                "hydra/launcher=submitit_local (or without hydra/launcher)"
            )
    elif target in WORKER_LAUNCHERS and (device_count(devices) or 1) * nodes > 1:
        raise ConfigError(
            f"hydra/launcher={WORKER_LAUNCHERS[target]} runs each job in one worker process, and trainer.devices={devices} "
            f"trainer.num_nodes={nodes} would start more from inside it: run DDP jobs without hydra/launcher (the default "
            "launcher runs them one after another), or on a cluster with hydra/launcher=slurm"
        )


def no_cluster_reason(timeout_s: float = 30) -> str | None:
    """Why `sinfo` finds no Slurm cluster from here (its last error line), or None when one answers."""
    try:
        done = subprocess.run(["sinfo", "--noheader", "--format=%P"], capture_output=True, text=True, timeout=timeout_s)
    except FileNotFoundError:
        return "no sinfo on PATH"
    except subprocess.TimeoutExpired:
        return f"no answer within {timeout_s:.0f} s"
    if done.returncode == 0:
        return None
    lines = [line.strip() for line in done.stderr.splitlines() if line.strip()]
    return lines[-1] if lines else f"exit code {done.returncode}"


def check_torchrun(trainer: DictConfig, env: Mapping[str, str]) -> None:
    """Under torchrun: the processes it started match trainer.devices per node × trainer.num_nodes."""
    if TORCHRUN_ENV not in env or "WORLD_SIZE" not in env:
        return
    world, per_node = int(env["WORLD_SIZE"]), int(env.get("LOCAL_WORLD_SIZE", env["WORLD_SIZE"]))
    devices, nodes = device_count(trainer.get("devices")), trainer.get("num_nodes", 1)
    if devices is None and world == 1:
        return
    if devices != per_node or devices * nodes != world:
        raise ConfigError(
            f"torchrun started {world} processes ({per_node} on this node: --nproc-per-node={per_node}, "
            f"--nnodes={world // per_node}) but trainer.devices={trainer.get('devices')} and trainer.num_nodes={nodes}: "
            f"set trainer.devices={per_node} trainer.num_nodes={world // per_node}"
        )


def check_torchrun_run_dir(args: list[str], env: Mapping[str, str]) -> None:
    """Every torchrun process composes its own config, and the default run dir holds the start time
    and a per-process id: the processes of one model must be given one directory."""
    if TORCHRUN_ENV in env and int(env.get("WORLD_SIZE", "1")) > 1 and not any(a.startswith("hydra.run.dir=") for a in args):
        raise ConfigError(
            f"torchrun started {env['WORLD_SIZE']} processes that each name a run dir of their own: give them all one, "
            "hydra.run.dir=<dir> (on a disk every node shares); rank 0 alone writes it"
        )
