"""textclass as a user gets it: a built wheel installed into a fresh environment, used from a project
of their own (config folder, encoder, dataset reader and callback) with no file of the checkout on the path."""

from __future__ import annotations

import ast
import json
import math
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from helpers.paths import REPO

pytestmark = pytest.mark.slow

POSITIVE = ["great", "fine", "lovely", "superb", "good", "warm"]
NEGATIVE = ["awful", "dull", "poor", "bad", "grim", "weak"]

ENCODERS = '''
import torch
from torch import nn


class MaxBag(nn.Module):
    """Max over a sentence's word vectors, projected: the README's own-encoder example."""

    def __init__(self, embedding: nn.Embedding, size: int = 8):
        super().__init__()
        self.embedding = embedding
        self.project = nn.Linear(embedding.embedding_dim, size)
        self.output_dim = size

    def forward(self, batch):
        padding = ~batch.attention_mask.bool().unsqueeze(-1)
        vectors = self.embedding(batch.input_ids).masked_fill(padding, -1e4)
        return torch.tanh(self.project(vectors.max(dim=1).values))


class NoOutputDim(nn.Module):
    def __init__(self, embedding: nn.Embedding, size: int = 8):
        super().__init__()
        self.embedding = embedding

    def forward(self, batch):
        return self.embedding(batch.input_ids).mean(dim=1)
'''

DATA = '''
from dataclasses import dataclass
from pathlib import Path

from textclass.data.dataset import TextDataset
from textclass.data.formats import SkippedRows
from textclass.errors import DataError


@dataclass
class FolderDataset(TextDataset):
    """One folder per split, one subfolder per label, one .txt file per text."""

    def prepare(self):
        for split in self.file_splits():
            if not self.file(split).is_dir():
                raise DataError(f"data.dataset.{split}={self.file(split)} is not a folder of <label>/*.txt files")

    def rows(self, split):
        folder = self.file(split)
        files = sorted(folder.glob("*/*.txt"))
        rows = ((number, [f.read_text(), f.parent.name]) for number, f in enumerate(files, 1))
        return str(folder), "folder", rows, SkippedRows(folder)

    def fingerprint(self, digest):
        return {s: sorted((str(f), f.read_text()) for f in self.file(s).glob("*/*.txt")) for s in self.file_splits()}
'''

CALLBACKS = '''
import json
from pathlib import Path

from lightning.pytorch.callbacks import Callback


class CountBatches(Callback):
    def __init__(self, path: str):
        self.path = path
        self.batches = 0

    def on_train_batch_end(self, *args, **kwargs):
        self.batches += 1

    def on_fit_end(self, trainer, pl_module):
        Path(self.path).write_text(json.dumps({"train_batches": self.batches}))
'''

EXPERIMENT = """# @package _global_
defaults:
  - override /data: files
  - override /model: maxbag
  - override /embeddings: none
allowed_targets: [mypkg.*]
data:
  dataset:
    _target_: mypkg.data.FolderDataset
    train: corpus/train
    valid: corpus/valid
  batch_size: 4
  vocab:
    min_freq: 1
callbacks:
  count_batches:
    _target_: mypkg.callbacks.CountBatches
    path: ${paths.output_dir}/batches.json
trainer:
  max_epochs: 1
  enable_progress_bar: false
"""

MODEL = """defaults:
  - _base
  - _self_
encoder:
  _target_: mypkg.encoders.MaxBag
  _partial_: true
  size: 8
"""

# a user file with a built-in's name (model/lstm.yaml) replaces it
LSTM_OVERRIDE = """defaults:
  - _base
  - _self_
encoder:
  _target_: textclass.models.encoders.rnn.RNNEncoder
  _partial_: true
  cell: gru
  hidden_size: 5
"""


def write_project(root: Path) -> Path:
    """The user's project: their package, their config folder and a folder-per-label corpus."""
    project = root / "project"
    for name, text in {"__init__.py": "", "encoders.py": ENCODERS, "data.py": DATA, "callbacks.py": CALLBACKS}.items():
        (project / "mypkg").mkdir(parents=True, exist_ok=True)
        (project / "mypkg" / name).write_text(text)
    conf = project / "my_conf"
    for name, text in {"experiment/mine.yaml": EXPERIMENT, "model/maxbag.yaml": MODEL, "model/lstm.yaml": LSTM_OVERRIDE}.items():
        (conf / name).parent.mkdir(parents=True, exist_ok=True)
        (conf / name).write_text(text)
    for split, count in {"train": 24, "valid": 8}.items():
        for i in range(count):
            label, words = ("pos", POSITIVE) if i % 2 else ("neg", NEGATIVE)
            path = project / "corpus" / split / label / f"{i:03d}.txt"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(f"a {words[i % 6]} and {words[(i + 1) % 6]} film\n")
    return project


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A fresh venv holding the wheel built from a clean copy of the sources; the third-party
    dependencies come from the test's own environment through a .pth path line (which, unlike
    a site dir, does not run that environment's editable-install hook)."""
    root = tmp_path_factory.mktemp("package")
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO, capture_output=True, text=True, check=True).stdout.split()
    source = root / "source"
    for name in files:
        if (REPO / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            (source / name).write_bytes((REPO / name).read_bytes())
    subprocess.run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(root / "dist"), str(source)], check=True, capture_output=True)
    (wheel,) = (root / "dist").glob("textclass-*.whl")
    env_dir = root / "env"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env_dir)], check=True)
    python = env_dir / "bin" / "python"
    site = Path(subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], capture_output=True, text=True, check=True).stdout.strip())
    (site / "_test_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--no-deps", "--no-index", str(wheel)], check=True)
    return env_dir


def user_run(env_dir: Path, project: Path, *args: str) -> subprocess.CompletedProcess:
    """A textclass console script of the installed wheel, started in the user's project folder."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TEXTCLASS_", "PYTHON"))}
    env.update(PYTHONPATH=str(project), TEXTCLASS_CACHE_DIR=str(project / ".cache"), PATH=f"{env_dir / 'bin'}{os.pathsep}{env['PATH']}")
    return subprocess.run([str(env_dir / "bin" / args[0]), *args[1:]], cwd=project, env=env, capture_output=True, text=True, timeout=600)


def test_wheel_trains_evaluates_and_predicts_from_a_user_project(installed, tmp_path):
    project = write_project(tmp_path)
    where = user_run(installed, project, "python", "-c", "import sys, textclass, hydra_plugins.textclass_searchpath as s; print(textclass.__file__); print(s.__file__); print(sys.path)")
    textclass_file, plugin_file, path = where.stdout.splitlines()
    assert textclass_file.startswith(str(installed)) and plugin_file.startswith(str(installed))
    # no file of the checkout is importable (the dependencies' folder may live inside it, as .venv does)
    assert [p for p in ast.literal_eval(path) if p.startswith(str(REPO)) and p != sysconfig.get_paths()["purelib"]] == []

    # the user's file with a built-in's name wins; their experiment is an option
    shown = user_run(installed, project, "textclass-train", "--config-dir", "my_conf", "experiment=mine", "model=lstm", "--cfg", "job")
    assert shown.returncode == 0, shown.stderr
    assert "cell: gru" in shown.stdout and "hidden_size: 5" in shown.stdout
    # hydra.searchpath adds the folder's options (a built-in file of the same name stays first)
    listed = user_run(installed, project, "textclass-train", "hydra.searchpath=[file://my_conf]", "experiment=mine", "--cfg", "job")
    assert listed.returncode == 0, listed.stderr
    assert "_target_: mypkg.encoders.MaxBag" in listed.stdout

    trained = user_run(installed, project, "textclass-train", "--config-dir", "my_conf", "experiment=mine", "hydra.run.dir=run")
    assert trained.returncode == 0, trained.stderr
    run = project / "run"
    config = (run / "config.yaml").read_text()
    assert "allowed_targets:\n- mypkg.*" in config and "_target_: mypkg.encoders.MaxBag" in config
    # the user's callback ran on every batch: 24 training texts in batches of 4
    assert json.loads((run / "batches.json").read_text()) == {"train_batches": math.ceil(24 / 4)}
    metrics = json.loads((run / "metrics.json").read_text())

    evaluated = user_run(installed, project, "textclass-eval", "ckpt_path=run/checkpoints/last.ckpt", "hydra.run.dir=eval")
    assert evaluated.returncode == 0, evaluated.stderr
    report = json.loads((project / "eval" / "eval.json").read_text())
    # the user's dataset reader read the 8 valid texts again, and the one epoch scores as in training
    assert sum(map(sum, report["results"]["valid"]["confusion"])) == 8
    assert report["results"]["valid"]["acc"] == pytest.approx(metrics["val/acc"], abs=1e-6)

    predicted = user_run(installed, project, "textclass-predict", "ckpt_path=run/checkpoints/last.ckpt", "text=a superb and lovely film")
    assert predicted.returncode == 0, predicted.stderr
    prediction = json.loads(predicted.stdout.splitlines()[0])
    assert prediction["label"] in ("neg", "pos") and sum(prediction["probs"].values()) == pytest.approx(1.0, abs=1e-5)

    # the same run directory, its allowed_targets widened by hand, no longer loads a class it names
    (run / "config.yaml").write_text(config.replace("_target_: mypkg.encoders.MaxBag", "_target_: mypkg.encoders.torch.hub.load"))
    crafted = user_run(installed, project, "textclass-predict", "ckpt_path=run/checkpoints/last.ckpt", "text=hi")
    assert crafted.returncode == 2 and "mypkg.encoders.torch.hub.load" in crafted.stderr and "Traceback" not in crafted.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        (["--config-dir", "no_such_conf", "experiment=mine"], "--config-dir no_such_conf: no such folder"),
        (["--config-dir", "my_conf", "experiment=mine", "allowed_targets=[]"], "_target_='mypkg.data.FolderDataset' is not in allowed_targets"),
        (["--config-dir", "my_conf", "experiment=mine", "model.encoder._target_=mypkg.encoders.NoOutputDim"], "mypkg.encoders.NoOutputDim has no output_dim"),
        (["--config-dir", "my_conf", "experiment=mine", "model.encoder._target_=mypkg.encoders.Missing"], "mypkg.encoders.Missing cannot be imported (AttributeError"),
        (["--config-dir", "my_conf", "experiment=mine", "callbacks.count_batches._target_=mypkg.data.FolderDataset"], "callbacks.count_batches._target_='mypkg.data.FolderDataset' is not a lightning.pytorch.callbacks.Callback"),
        (["--config-dir", "my_conf", "experiment=mine", "allowed_targets=[subprocess.*]"], "'subprocess.*' names the standard library"),
    ],
    ids=["missing_config_dir", "not_in_allowed_targets", "encoder_without_output_dim", "encoder_not_found", "callback_not_a_callback", "stdlib_allowed"],
)
def test_user_extension_mistakes_are_one_error(installed, tmp_path, args, message):
    project = write_project(tmp_path)
    result = user_run(installed, project, "textclass-train", *args)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr
    assert not (project / "outputs" / "train" / "runs").exists() or not list((project / "outputs" / "train" / "runs").glob("*/metrics.json"))
