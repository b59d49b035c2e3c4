"""Learning-rate schedules that need the run's length (given by the classifier at fit time)."""

from __future__ import annotations

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR

from textclass.errors import ConfigError


def linear_warmup_decay(optimizer: Optimizer, num_training_steps: int, warmup_fraction: float = 0.1) -> LambdaLR:
    """Linear rise from 0 over the first `warmup_fraction` of the steps, then linear decay to 0.

    The same multipliers as transformers' get_linear_schedule_with_warmup.
    """
    if not 0.0 <= warmup_fraction < 1.0:
        raise ConfigError(f"scheduler.scheduler.warmup_fraction={warmup_fraction} must be in [0, 1)")
    warmup = int(num_training_steps * warmup_fraction)

    def factor(step: int) -> float:
        if step < warmup:
            return step / warmup
        return max(0.0, (num_training_steps - step) / max(1, num_training_steps - warmup))

    return LambdaLR(optimizer, factor)
