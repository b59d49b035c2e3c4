"""The one `textclass <verb>` command and its textclass-<verb> aliases: the verbs listed without
importing torch, an unknown verb and bad input answered with one `error:` line each."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import entry_points

import pytest

from helpers.answers import assert_answer
from helpers.cli import cli_env
from helpers.inprocess import run_main
from textclass.commands.main import VERBS


def test_help_lists_every_verb_without_importing_torch(tmp_path):
    """A fresh interpreter (what a process shows): --help, and no verb at all, answer without torch."""
    script = (
        "import sys\nfrom textclass.commands.main import main\n"
        "main(sys.argv[1:])\nprint('torch loaded' if 'torch' in sys.modules else 'no torch')\n"
    )
    for args in (["--help"], []):
        done = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, timeout=120, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith("usage: textclass <verb>")
        assert done.stdout.rstrip().endswith("no torch")
        listed = [line.split()[0] for line in done.stdout.split("verbs:\n")[1].split("\n\n")[0].splitlines()]
        assert listed == list(VERBS) == ["train", "eval", "predict", "export", "compare", "ensemble", "summary"]


def test_every_verb_is_also_a_command_of_its_own():
    """The help says so: textclass-<verb> runs the verb's module's main, for every verb."""
    scripts = {ep.name: ep.value for ep in entry_points(group="console_scripts") if ep.name.startswith("textclass")}
    assert scripts == {"textclass": "textclass.commands.main:main"} | {
        f"textclass-{verb}": f"textclass.commands.{module}:main" for verb, (module, _) in VERBS.items()
    }


def test_an_unknown_verb_lists_the_verbs(tmp_path):
    result = run_main(["textclass", "trian", "model=lstm"], tmp_path)
    assert_answer(result, ("unknown verb 'trian'", "the verbs are train, eval, predict, export, compare, ensemble, summary"))


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["textclass", "compare", "/nonexistent"], ("/nonexistent: no such directory",)),
        (["textclass-compare", "/nonexistent"], ("/nonexistent: no such directory",)),
        (["textclass", "ensemble"], ("no member to ensemble",)),
        (["textclass-ensemble"], ("no member to ensemble",)),
        (["textclass", "summary", "/nonexistent"], ("/nonexistent: no such directory",)),
        (["textclass-eval"], ("ckpt_path has no value",)),
        (["textclass", "eval"], ("ckpt_path has no value",)),
        (["textclass-predict", "ckpt_path=/nonexistent", "text=hi"], ("checkpoint not found: /nonexistent",)),
        (["textclass-export", "ckpt_path=/nonexistent"], ("checkpoint not found: /nonexistent",)),
        (["textclass-train", "data=nosuch"], ("Could not find 'data/nosuch'", "available options in 'data': files, hf, news, sst2")),
        (["textclass", "train", "model=nosuch"], ("Could not find 'model/nosuch'", "attention, bert, bow")),
    ],
    ids=lambda value: " ".join(value) if isinstance(value, list) else None,
)
def test_bad_input_to_a_verb_or_its_alias_is_one_error_line(args, fragments, tmp_path):
    result = run_main(args, tmp_path)
    assert_answer(result, fragments)
    assert "_base" not in result.stderr


def test_a_missing_teacher_run_is_one_error_line(data_dir, tmp_path):
    result = run_main(["textclass", "train", "distill=kd", f"distill.teacher={tmp_path / 'no_run'}", "trainer.max_epochs=1"], tmp_path, cli_env(data_dir, tmp_path))
    assert_answer(result, (f"distill.teacher={tmp_path / 'no_run'}: no textclass-train run there",))
    assert not (tmp_path / "outputs" / "train" / "runs").exists() or not any((tmp_path / "outputs" / "train" / "runs").iterdir())


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["textclass-train", "-m", "model=lstm,gru", "--cfg", "hydra"], ("--cfg and -m: Hydra does one of these at a time",)),
        (["textclass", "train", "seeds=3", "hydra/sweeper=textclass_optuna", "optimizer.lr=interval(0.001, 0.1)"], ("the Optuna sweeper would take seed for a parameter",)),
    ],
    ids=["two modes", "seeds in a search"],
)
def test_command_lines_hydra_would_trip_on_are_one_error_line(args, fragments, tmp_path):
    assert_answer(run_main(args, tmp_path), fragments)


def test_a_distillation_key_before_a_flag_composes(data_dir, tmp_path, tiny_run):
    """distill.teacher= alone chooses distill=kd; placed before --cfg job, not read as its value."""
    result = run_main(["textclass-train", f"distill.teacher={tiny_run.run}", "--cfg", "job"], tmp_path, cli_env(data_dir, tmp_path))
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"teacher: {tiny_run.run}" in result.stdout and "_target_: textclass.distill.Distillation" in result.stdout
