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
TEST_F1 = metric(TEST, "f1")
# the checkpoint selected on valid (by the checkpoint monitor, val/loss), scored again on valid: the
# figure to report for a dataset without a test split, labelled "valid (selection split)"
VAL_ACC_SELECTED = metric(VAL, "acc_selected")
VAL_F1_SELECTED = metric(VAL, "f1_selected")
EPOCH_S = "time/epoch_s"  # wall-clock seconds of a training epoch, validation included
EPOCH_S_MEAN = "time/epoch_s_mean"  # sweep summaries: mean over a run's epochs


def headline(metrics: dict[str, float], name: str = "acc") -> tuple[str, str]:
    """(metric key, split label) of the figure to report for a run: the selected checkpoint's `name` on
    test when the run has one (a split that selected nothing), else on valid, labelled as the selection split."""
    if metric(TEST, name) in metrics:
        return metric(TEST, name), "test"
    return metric(VAL, f"{name}_selected"), "valid (selection split)"
