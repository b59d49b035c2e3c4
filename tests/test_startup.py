"""Start-up stays light and quiet: commands that need no model never import the heavy libraries
(benchmarks/startup.py times them), and a training run prints none of Lightning's noise."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from helpers.cli import cli_env, run_cli

HEAVY = ("torch", "lightning", "optuna", "transformers", "gensim", "matplotlib", "pandas", "torchmetrics", "ray")

# runs a console entry point in-process, then prints which heavy modules it imported
PROBE = """
import json, sys
from {module} import main
sys.argv = ["{program}", *{args!r}]
try:
    main()
except SystemExit:
    pass
print(json.dumps(sorted(m for m in {heavy!r} if m in sys.modules)), file=sys.stderr)
"""


def heavy_imports(module: str, program: str, *args: str, cwd) -> list[str]:
    code = PROBE.format(module=module, program=program, args=list(args), heavy=HEAVY)
    result = subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=120)
    return json.loads(result.stderr.strip().splitlines()[-1])


@pytest.mark.parametrize(
    "module, program, args",
    [
        ("textclass.commands.main", "textclass", ["--help"]),  # the verbs, one line each
        ("textclass.commands.main", "textclass", ["eval", "--help"]),
        ("textclass.commands.train", "textclass-train", ["--help"]),
        ("textclass.commands.train", "textclass-train", ["--cfg", "job", "model=lstm"]),
        ("textclass.commands.train", "textclass-train", ["model=lstmm"]),  # a mistyped option: one error line
        ("textclass.commands.train", "textclass-train", ["hparams_search=news_textcnn", "--cfg", "hydra"]),
        ("textclass.commands.eval", "textclass-eval", ["--help"]),
        ("textclass.commands.predict", "textclass-predict", ["--help"]),
        ("textclass.commands.export", "textclass-export", ["--help"]),
        ("textclass.commands.compare", "textclass-compare", ["--help"]),
        ("textclass.commands.compare", "textclass-compare", ["run_a", "run_b", "metric=acc_typo"]),  # a bad option: one error line
        ("textclass.commands.ensemble", "textclass-ensemble", ["--help"]),
        ("textclass.commands.summary", "textclass", ["--help"]),
    ],
    ids=[
        "textclass_help", "textclass_eval_help", "train_help", "train_cfg_job", "train_bad_override", "search_cfg", "eval_help",
        "predict_help", "export_help", "compare_help", "compare_bad_option", "ensemble_help", "summary_help",
    ],
)
def test_commands_that_need_no_model_import_no_heavy_library(tmp_path, module, program, args):
    assert heavy_imports(module, program, *args, cwd=tmp_path) == []


def test_hydra_plugin_scan_does_not_import_optuna(tmp_path):
    # Hydra imports every plugin module on every start: the sweeper's is a shim
    code = "import sys; import hydra_plugins.textclass_optuna_sweeper.optuna_sweeper, hydra_plugins.textclass_optuna_sweeper.config; print('optuna' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


@pytest.mark.slow
def test_a_training_run_prints_no_lightning_noise(tmp_path, data_dir):
    args = ["textclass-train", "embeddings=none", "trainer.max_epochs=1", "data.vocab.min_freq=1", "hydra.run.dir=run"]
    result = run_cli(args, tmp_path, env=cli_env(data_dir, tmp_path))
    assert result.returncode == 0, result.stderr
    output = result.stdout + result.stderr
    assert "Name" in output and "Params" in output  # the parameter table is still there...
    for noise in ("FLOPs", "💡 Tip", "litlogger", "LeafSpec", "Trainer already configured with model summary"):
        assert noise not in output, noise  # ... without what is noise to a user
