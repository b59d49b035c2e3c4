"""What a textclass-train run directory holds, by file name: the one place that names them.

    <run>/config.yaml                the resolved config: eval, predict, export and load rebuild from it
    <run>/.hydra/overrides.yaml      the command-line overrides: resume=<run> replays them
    <run>/labels.json                class names in output order
    <run>/vocab.json                 word runs: the vocabulary (BERT runs: the tokenizer's own files)
    <run>/thresholds.json            multi-label runs with model.tune_thresholds=true
    <run>/metrics.json               final metrics by name
    <run>/history.csv, curves.png    per-epoch metrics (epochs counted from 1) and their plot
    <run>/confusion_matrix.json      the selected checkpoint's confusion matrices on valid and test; .png plots
    <run>/predictions_<split>.npz    the selected checkpoint's predictions on valid and test (textclass-compare)
    <run>/split.json                 with data.dataset.split_fractions: which rows of the file went to which split
    <run>/checkpoints/selected.ckpt  the epoch selected on valid (the checkpoint monitor): what the run reports,
                                     and what every command uses of a run directory by default
    <run>/checkpoints/last.ckpt      the latest finished epoch (resume=), written every epoch
    <run>/error.log                  a failed search trial's traceback
    <run>/eval.json                  textclass-eval's report, in the eval run's own directory

An ensemble directory (textclass-ensemble) holds a config.yaml whose `ensemble:` key lists its
members' checkpoints, classes and split fingerprints, labels.json, and its own predictions_<split>.npz.
"""

RUN_CONFIG = "config.yaml"
OVERRIDES_FILE = ".hydra/overrides.yaml"
HYDRA_FILE = ".hydra/hydra.yaml"  # Hydra's own settings of the run, its group choices among them
LABELS_FILE = "labels.json"
VOCAB_FILE = "vocab.json"
THRESHOLDS_FILE = "thresholds.json"
METRICS_FILE = "metrics.json"
HISTORY_FILE = "history.csv"
CURVES_FILE = "curves.png"
CONFUSION_FILE = "confusion_matrix.json"
CONFUSION_PLOT = "confusion_matrix.png"
CONFUSION_TEST_PLOT = "confusion_matrix_test.png"
CHECKPOINT_DIR = "checkpoints"
LAST_CHECKPOINT = f"{CHECKPOINT_DIR}/last.ckpt"
SELECTED_CHECKPOINT = f"{CHECKPOINT_DIR}/selected.ckpt"
SPLIT_FILE = "split.json"
# checkpoint=... of eval, predict, export, ensemble and textclass.load: which checkpoint of a run directory
SELECTED, LAST = "selected", "last"
ERROR_LOG = "error.log"
EVAL_REPORT = "eval.json"
ENSEMBLE_KEY = "ensemble"  # the top-level key of an ensemble directory's config.yaml


CONFUSION_PLOTS = {"valid": CONFUSION_PLOT, "test": CONFUSION_TEST_PLOT}
# what the end of a run lists, when present
RUN_FILES = (METRICS_FILE, HISTORY_FILE, CURVES_FILE, CONFUSION_PLOT, CONFUSION_TEST_PLOT, SPLIT_FILE)
# what Hydra writes into a new run directory before the job starts
HYDRA_DIR, TRAIN_LOG = ".hydra", "train.log"
HYDRA_FILES = (HYDRA_DIR, TRAIN_LOG)


def predictions_file(split: str) -> str:
    return f"predictions_{split}.npz"
