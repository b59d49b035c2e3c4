"""The distillation term and its settings (Hinton, Vinyals & Dean 2015, "Distilling the Knowledge in
a Neural Network"): the training loss becomes

    alpha * L(labels) + (1 - alpha) * T^2 * KL(softmax(teacher / T) || softmax(student / T))

where L is the model's own loss (cross-entropy, or BCE) and T the temperature. The T^2 factor is
Hinton et al.'s: the soft targets' gradients scale as 1/T^2, so multiplying by T^2 keeps the two
terms' relative weight the same whatever T is. Multi-label runs use each label's Bernoulli
distribution instead of the softmax (sigmoid(teacher / T) against sigmoid(student / T)).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from textclass.data.batching import Batch
from textclass.errors import ConfigError

LOGITS_KEY = "teacher_logits"  # the per-example array the teacher's logits travel under (Batch.extras)


@dataclass(frozen=True)
class DistillSpec:
    """`distill=kd`: the teacher run (a run directory or a .ckpt inside one), the weight alpha of the
    hard-label loss, and the softmax temperature."""

    teacher: str
    alpha: float = 0.5
    temperature: float = 2.0

    def __post_init__(self) -> None:
        if not isinstance(self.teacher, str) or not self.teacher:
            raise ConfigError(f"distill.teacher={self.teacher!r} must be a textclass-train run directory (a path)")
        number = (int, float)
        if isinstance(self.alpha, bool) or not isinstance(self.alpha, number) or not 0.0 <= self.alpha <= 1.0:
            raise ConfigError(f"distill.alpha={self.alpha!r} must be in [0, 1] (1: labels only, 0: teacher only)")
        if isinstance(self.temperature, bool) or not isinstance(self.temperature, number) or not self.temperature > 0:
            raise ConfigError(f"distill.temperature={self.temperature!r} must be > 0 (1: the plain softmax; Hinton et al. use 2-20)")


def distillation_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float, multi_label: bool = False) -> torch.Tensor:
    """T^2 * KL(teacher || student) of the temperature-softened distributions, averaged over the batch.

    Single-label: the softmax over the classes, KL summed over classes. Multi-label: each label's
    Bernoulli (sigmoid), KL averaged over labels and examples, as BCEWithLogitsLoss averages.
    """
    t = float(temperature)
    teacher, student = teacher_logits.to(student_logits.dtype) / t, student_logits / t
    if multi_label:
        p = teacher.sigmoid()
        kl = p * (F.logsigmoid(teacher) - F.logsigmoid(student)) + (1 - p) * (F.logsigmoid(-teacher) - F.logsigmoid(-student))
        return kl.mean() * (t * t)
    return F.kl_div(student.log_softmax(-1), teacher.log_softmax(-1), reduction="batchmean", log_target=True) * (t * t)


@dataclass(frozen=True)
class DistillationObjective:
    """The training objective while distilling (ClassifierModule.objective): the plain loss
    mixed with the distillation term against the teacher's logits the batch carries."""

    alpha: float
    temperature: float
    multi_label: bool

    def __call__(self, loss: torch.Tensor, logits: torch.Tensor, batch: Batch) -> torch.Tensor:
        soft = distillation_loss(logits, batch.extras[LOGITS_KEY], self.temperature, self.multi_label)
        return self.alpha * loss + (1.0 - self.alpha) * soft
