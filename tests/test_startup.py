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


# what loading a trained model never needs: training (Lightning, torchmetrics), reading vectors (gensim)
TRAINING_ONLY = ("lightning", "pytorch_lightning", "lightning_fabric", "torchmetrics", "gensim", "torch._dynamo")

# runs a command in-process on a trained run, then prints which training-only modules it imported
LOAD_PROBE = """
import json, os, sys
os.environ.update({env!r})
from textclass.commands.main import main
sys.argv = ["textclass", *{args!r}]
try:
    main()
except SystemExit as exit:
    assert not exit.code, exit.code
print(json.dumps(sorted(m for m in {modules!r} if m in sys.modules)), file=sys.stderr)
"""


@pytest.mark.parametrize(
    "verb, args",
    [
        ("predict", ["text=Stocks fall as rates rise", "output=out.jsonl"]),
        ("eval", ["splits=[test]"]),
        ("export", ["format=torchscript", "output=model.pt"]),
    ],
)
def test_commands_on_a_trained_run_import_no_training_library(tiny_run, tmp_path, verb, args):
    """A trained model loads without Lightning, torchmetrics or gensim: a cold `textclass predict`
    costs little more than `import torch` (benchmarks/startup.py times it)."""
    env = cli_env(tiny_run.data, tmp_path)
    code = LOAD_PROBE.format(env=env, args=[verb, f"ckpt_path={tiny_run.run}", *args], modules=TRAINING_ONLY)
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads(result.stderr.strip().splitlines()[-1]) == []
    if verb == "predict":  # and it did its job
        row = json.loads((tmp_path / "out.jsonl").read_text())
        assert row["label"] in row["probs"] and abs(sum(row["probs"].values()) - 1) < 1e-5
    if verb == "eval":
        assert "| test |" in result.stdout
    if verb == "export":
        assert (tmp_path / "model.pt").stat().st_size > 0
