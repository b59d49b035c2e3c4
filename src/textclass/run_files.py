"""What a textclass-train run directory holds, by file name: the one place that names them.

    <run>/config.yaml                the resolved config: eval, predict, export and load rebuild from it
    <run>/.hydra/overrides.yaml      the command-line overrides: resume=<run> replays them
    <run>/labels.json                class names in output order
    <run>/vocab.json                 word runs: the vocabulary (BERT runs: the tokenizer's own files)
    <run>/thresholds.json            multi-label runs with model.tune_thresholds=true
    <run>/metrics.json               final metrics by name
    <run>/history.csv, curves.png    per-epoch metrics and their plot
    <run>/confusion_matrix.json      last validation (and test) confusion matrices; .png plots
    <run>/predictions_<split>.npz    the selected checkpoint's predictions on valid and test (textclass-compare)
    <run>/checkpoints/last.ckpt      the last epoch (resume), beside the best epoch_NNN.ckpt
    <run>/error.log                  a failed search trial's traceback
    <run>/eval.json                  textclass-eval's report, in the eval run's own directory

An ensemble directory (textclass-ensemble) holds a config.yaml whose `ensemble:` key lists its
members' checkpoints, classes and split fingerprints, labels.json, and its own predictions_<split>.npz.
"""

RUN_CONFIG = "config.yaml"
OVERRIDES_FILE = ".hydra/overrides.yaml"
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
ERROR_LOG = "error.log"
EVAL_REPORT = "eval.json"
ENSEMBLE_KEY = "ensemble"  # the top-level key of an ensemble directory's config.yaml


def predictions_file(split: str) -> str:
    return f"predictions_{split}.npz"
