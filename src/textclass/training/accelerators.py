"""The trainer's hardware settings against this machine, before any data is read: one clear error
for `trainer=gpu` without a GPU, more devices than there are, or a precision the device cannot run,
instead of Lightning's MisconfigurationException after the data has been loaded.

torch is imported only when a setting needs a look at the hardware: the defaults (accelerator and
devices `auto`, 32-bit precision) are answered without it.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from dataclasses import dataclass

from omegaconf import DictConfig, OmegaConf

from textclass.errors import ConfigError
from textclass.training.launchers import device_count

KNOWN = ("auto", "cpu", "gpu", "cuda", "mps")
LIGHTNING_ONLY = ("tpu", "hpu")  # Lightning's names for hardware textclass is never tested on
CPU_ADVICE = "train on the CPU with trainer=cpu (or trainer.accelerator=cpu)"


@dataclass(frozen=True)
class Hardware:
    cuda: int  # CUDA devices
    mps: bool
    bf16: bool  # the CUDA devices compute in bfloat16

    @classmethod
    def here(cls) -> Hardware:
        import torch

        cuda = torch.cuda.device_count() if torch.cuda.is_available() else 0
        mps = bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())
        return cls(cuda, mps, bool(cuda) and torch.cuda.is_bf16_supported())

    def describe(self) -> str:
        if self.cuda:
            return f"{self.cuda} CUDA GPU{'s' * (self.cuda > 1)}"
        return "an Apple GPU (mps)" if self.mps else "no GPU"


def check_accelerator(trainer: DictConfig, hardware: Hardware | None = None) -> None:
    """`trainer.accelerator`, `devices` and `precision` can run on this machine (or `hardware`)."""
    accelerator = trainer.get("accelerator", "auto")
    if not isinstance(accelerator, str):  # an Accelerator object built from a _target_ node: Lightning's call
        return
    accelerator = accelerator.lower()
    devices, precision = trainer.get("devices", "auto"), str(trainer.get("precision", "32-true"))
    if OmegaConf.is_config(devices):
        devices = OmegaConf.to_container(devices)
    if accelerator not in KNOWN:
        hint = f"Lightning's {accelerator} accelerator is not supported by textclass" if accelerator in LIGHTNING_ONLY else "unknown accelerator"
        raise ConfigError(f"trainer.accelerator={accelerator}: {hint}; choose one of {', '.join(KNOWN)}")
    if not needs_a_look(accelerator, devices, precision):
        return
    hardware = hardware or Hardware.here()
    kind = resolved_kind(accelerator, hardware)
    check_devices(kind, devices, hardware)
    check_precision(kind, precision, hardware)


def needs_a_look(accelerator: str, devices: object, precision: str) -> bool:
    return accelerator not in ("auto", "cpu") or device_count(devices) not in (None, 1) or precision.startswith(("bf16", "16", "transformer"))


def resolved_kind(accelerator: str, hardware: Hardware) -> str:
    """cpu, cuda or mps, as Lightning would pick it; an accelerator this machine lacks is an error."""
    if accelerator == "auto":
        return "cuda" if hardware.cuda else "mps" if hardware.mps else "cpu"
    if accelerator == "gpu":
        if hardware.cuda or hardware.mps:
            return "cuda" if hardware.cuda else "mps"
        raise ConfigError(f"trainer.accelerator=gpu (trainer=gpu) but this machine has {hardware.describe()} (torch sees none); {CPU_ADVICE}")
    if accelerator == "cuda" and not hardware.cuda:
        raise ConfigError(f"trainer.accelerator=cuda but this machine has {hardware.describe()} (torch.cuda.is_available() is False); {CPU_ADVICE}")
    if accelerator == "mps" and not hardware.mps:
        raise ConfigError(f"trainer.accelerator=mps but this machine has no Apple GPU; {CPU_ADVICE}")
    return accelerator


def check_devices(kind: str, devices: object, hardware: Hardware) -> None:
    available = {"cuda": hardware.cuda, "mps": 1 if hardware.mps else 0}.get(kind)
    if available is None:  # cpu: devices=N is N processes, any number
        return
    if isinstance(devices, Sequence) and not isinstance(devices, str):
        wrong = [d for d in devices if not isinstance(d, int) or not 0 <= d < available]
        if wrong:
            raise ConfigError(f"trainer.devices={list(devices)}: this machine has {hardware.describe()} (ids 0 to {available - 1}), so {wrong[0]} does not exist")
        return
    count = device_count(devices)
    if count is not None and count > available:
        raise ConfigError(
            f"trainer.devices={devices} but this machine has {hardware.describe()}: set trainer.devices={available} or fewer "
            "(DDP starts one process per device), or trainer.devices=auto"
        )


def check_precision(kind: str, precision: str, hardware: Hardware) -> None:
    if precision.startswith("bf16") and kind == "cuda" and not hardware.bf16:
        raise ConfigError(
            f"trainer.precision={precision}: this machine's GPU does not compute in bfloat16 (torch.cuda.is_bf16_supported() is False); "
            "use trainer.precision=16-mixed (or 32-true)"
        )
    if precision.startswith("transformer") and importlib.util.find_spec("transformer_engine") is None:
        raise ConfigError(f"trainer.precision={precision} needs NVIDIA's transformer_engine package, which is not installed; use trainer.precision=bf16-mixed")
