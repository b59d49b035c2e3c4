"""Knowledge distillation, a plug-in: `textclass-train distill=kd distill.teacher=<run>` trains any
model on a finished run's soft labels as well as the true labels (conf/distill/kd.yaml).

It enters training through two general doors of the core and nothing else: a Lightning callback
(`Distillation`, listed in the callbacks as `callbacks.distill`) attaches the teacher's logits of
each training example to the data module (`add_example_array`, so batches carry them in
`Batch.extras`) and sets the training objective (`ClassifierModule.objective`).
"""

from textclass.distill.callback import Distillation

__all__ = ["Distillation"]
