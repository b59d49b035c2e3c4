"""The names textclass logs its metrics under (Lightning, metrics.json, history.csv, summaries).

`<stage>/<metric>` for the stages train, val and test; the YAML files name them too
(conf/train.yaml optimized_metric, conf/callbacks/default.yaml monitors).
"""

TRAIN, VAL, TEST = "train", "val", "test"


def metric(stage: str, name: str) -> str:
    return f"{stage}/{name}"


TRAIN_LOSS_EPOCH = metric(TRAIN, "loss_epoch")  # mean over the epoch's examples
TRAIN_LOSS_STEP = metric(TRAIN, "loss_step")  # every trainer.log_every_n_steps
TRAIN_ACC = metric(TRAIN, "acc")
VAL_LOSS = metric(VAL, "loss")
VAL_ACC = metric(VAL, "acc")
VAL_F1 = metric(VAL, "f1")  # macro
VAL_ACC_BEST = metric(VAL, "acc_best")  # best val/acc of any epoch so far: never a headline figure
VAL_F1_TUNED = metric(VAL, "f1_tuned")  # multi-label, under thresholds tuned on valid
VAL_F1_MICRO_TUNED = metric(VAL, "f1_micro_tuned")
TEST_ACC = metric(TEST, "acc")
EPOCH_S = "time/epoch_s"  # wall-clock seconds of a training epoch, validation included
EPOCH_S_MEAN = "time/epoch_s_mean"  # sweep summaries: mean over a run's epochs
