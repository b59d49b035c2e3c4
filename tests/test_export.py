"""`textclass-export` on real training runs: every encoder to ONNX and TorchScript, the exported
files run outside textclass (onnxruntime, torch.jit.load) and give the logits PyTorch gives.

The quick loop exports conftest's shared `tiny_run`, checks the unpacked RNNs in process and the bad
input; the run of every encoder (one training and one export process) and the real data are `slow`."""

from __future__ import annotations

import functools
import importlib.metadata
import json
import shutil
from pathlib import Path

import numpy as np
import onnxruntime
import pytest
import torch

from helpers.cli import cli_env, run_cli, run_ok, TinyRun
from helpers.data import write_tiny_data, NEWS_ROWS
from helpers.paths import real_data, REAL_DATA
from textclass.training.checkpoint import TrainedRun, load_run
from textclass.data.batching import Batch

WORD_MODELS = ["bow", "mlp", "rnn", "lstm", "gru", "cnn", "textcnn", "attention"]
MODELS = [*WORD_MODELS, "bert"]
FORMATS = {"onnx": "model.onnx", "torchscript": "model.pt"}
TITLES = [title for _, title in NEWS_ROWS]
# three batches of other sizes and lengths than the exporter's example: dynamic axes at work
BATCHES = [["Fed"], TITLES[:3], [*TITLES[3:9], f"{TITLES[0]} and {TITLES[4]}, {TITLES[6]}"]]
# one epoch, and none of what export does not read (plots, summaries, logs, the test stage): ~0.5 s a job
TRAIN = ["trainer.max_epochs=1", "logger=[]", "test=false", "trainer.enable_progress_bar=false", "trainer.enable_model_summary=false",
         "~callbacks.run_plots"]


def _job_dirs(sweep: Path, key: str) -> dict[str, Path]:
    """The value of `key` (model, data) in each job's overrides -> its job directory, for a multirun."""
    jobs = {}
    for job in sweep.iterdir():
        if job.is_dir() and job.name.isdigit():
            overrides = dict(line.removeprefix("- ").split("=", 1) for line in (job / ".hydra" / "overrides.yaml").read_text().splitlines())
            jobs[overrides[key]] = job
    return jobs


def _export_all(runs: list[Path], work: Path, env: dict[str, str], *args: str) -> str:
    """One `textclass-export -m` over the runs' last checkpoints (one process start-up); its stderr."""
    checkpoints = ",".join(str(run / "checkpoints" / "last.ckpt") for run in runs)
    return run_ok(["textclass-export", "-m", f"ckpt_path={checkpoints}", *args], cwd=work, env=env).stderr


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> tuple[Path, Path, dict[str, Path], str]:
    """(work dir, data dir, model -> run dir, the export's stderr): a 1-epoch run of every model
    on tiny news (one multirun), each exported to both formats in its run dir (one multirun)."""
    work = tmp_path_factory.mktemp("export")
    data = write_tiny_data(work / "data")
    env = cli_env(data, work)
    run_ok(
        ["textclass-train", "-m", f"model={','.join(MODELS)}", "data=news", "embeddings=none", "embeddings.dim=16", "data.batch_size=8", *TRAIN,
         "hydra.sweep.dir=sweep"],
        cwd=work, env=env,
    )
    runs = _job_dirs(work / "sweep", "model")
    assert sorted(runs) == sorted(MODELS)
    stderr = _export_all(list(runs.values()), work, env, f"format={','.join(FORMATS)}")
    return work, data, runs, stderr


@functools.cache
def _loaded(run_dir: Path) -> TrainedRun:
    return load_run(run_dir)


def _exported_logits(path: Path, batch: Batch) -> np.ndarray:
    """The exported file run by its own runtime, as a user would, on the batch's ids and mask."""
    ids, mask = batch.input_ids, batch.attention_mask.long()
    if path.suffix == ".onnx":
        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return session.run(["logits"], {"input_ids": ids.numpy(), "attention_mask": mask.numpy()})[0]
    with torch.no_grad():
        return torch.jit.load(str(path))(ids, mask).numpy()


def _pytorch_logits(run: TrainedRun, batch: Batch) -> np.ndarray:
    with torch.no_grad():
        return run.model(batch).numpy()


@pytest.mark.slow
@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("model", MODELS)
def test_exported_file_gives_the_pytorch_logits_at_any_batch_size_and_length(exported, model, fmt):
    _, _, runs, _ = exported
    run = _loaded(runs[model])
    path = runs[model] / "export" / fmt / FORMATS[fmt]
    shapes = []
    for texts in BATCHES:
        (batch,) = run.batches(texts, len(texts))
        shapes.append(tuple(batch.input_ids.shape))
        logits = _exported_logits(path, batch)
        assert logits.shape == (len(texts), len(run.labels)) == (len(texts), 4)
        np.testing.assert_allclose(logits, _pytorch_logits(run, batch), atol=1e-4, rtol=0)
    # three batch sizes and three sequence lengths, none the exporter's example (2 x 6)
    assert len({b for b, _ in shapes}) == len({t for _, t in shapes}) == 3 and (2, 6) not in shapes, shapes
    # padding is really masked: a sentence alone gets the logits it gets inside the longest batch
    (alone,) = run.batches(BATCHES[2][:1], 1)
    (padded,) = run.batches(BATCHES[2], len(BATCHES[2]))
    assert alone.input_ids.shape[1] < padded.input_ids.shape[1]
    np.testing.assert_allclose(_exported_logits(path, alone)[0], _exported_logits(path, padded)[0], atol=1e-4, rtol=0)


@pytest.mark.slow
def test_export_reports_its_own_check_for_every_file(exported):
    *_, runs, stderr = exported
    lines = [line for line in stderr.splitlines() if line.startswith("exported ")]
    assert len(lines) == len(MODELS) * len(FORMATS)
    for model, run in runs.items():
        for fmt, name in FORMATS.items():
            line = next(line for line in lines if f" as {fmt} to {run / 'export' / fmt / name} " in line)
            assert "checked: same logits as PyTorch (max |difference| " in line, line
            assert (run / "export" / fmt / name).stat().st_size > 0


@pytest.mark.slow
@pytest.mark.parametrize("fmt", FORMATS)
def test_word_run_export_holds_vocab_labels_and_manifest(exported, fmt):
    _, _, runs, _ = exported
    run_dir = runs["lstm"]
    folder = run_dir / "export" / fmt
    manifest = json.loads((folder / "export.json").read_text())
    run = _loaded(run_dir)
    assert manifest == {
        "format": fmt,
        "file": FORMATS[fmt],
        "input_names": ["input_ids", "attention_mask"],
        "output_name": "logits",
        "class_names": ["business", "science/technology", "entertainment", "health"],
        "multi_label": False,
        "probabilities": "softmax",
        "pad_id": 0,
        "tokenizer": {"kind": "word", "vocab": "vocab.json", "split": "punct", "lowercase": True, "unknown_words": "id 1 (<unk>)"},
        "files": ["labels.json", "vocab.json"],
        "encoder": "RNNEncoder",
        "source": str((run_dir / "checkpoints" / "last.ckpt").resolve()),
        "textclass_version": importlib.metadata.version("textclass"),
    }
    assert manifest["class_names"] == list(run.labels.names)
    assert sorted(p.name for p in folder.iterdir()) == sorted([FORMATS[fmt], "export.json", "labels.json", "vocab.json"])
    for name in ("vocab.json", "labels.json"):
        assert (folder / name).read_bytes() == (run_dir / name).read_bytes()


@pytest.mark.slow
def test_word_export_runs_from_its_folder_alone(exported, tmp_path):
    """The folder moved away from the run: vocab.json + the manifest are all it takes to predict."""
    _, _, runs, _ = exported
    folder = shutil.copytree(runs["textcnn"] / "export" / "onnx", tmp_path / "textcnn")
    manifest = json.loads((folder / "export.json").read_text())
    itos = json.loads((folder / "vocab.json").read_text())["itos"]
    vocab = {word: i for i, word in enumerate(itos)}
    words = "Stocks rally after strong earnings reports!".lower().replace("!", " ").split()  # split: punct, lowercase
    ids = np.array([[vocab.get(w, vocab["<unk>"]) for w in words]])
    session = onnxruntime.InferenceSession(str(folder / manifest["file"]))
    logits = session.run([manifest["output_name"]], {"input_ids": ids, "attention_mask": np.ones_like(ids)})[0]
    expected = _loaded(runs["textcnn"]).logits(["Stocks rally after strong earnings reports!"]).numpy()
    np.testing.assert_allclose(logits, expected, atol=1e-4, rtol=0)


def test_shared_run_exports_to_a_chosen_path_with_its_files_beside_it(tiny_run: TinyRun, tmp_path):
    """The quick loop's export: the shared bow run (GloVe-initialised) to ONNX in two new folders."""
    target = tmp_path / "deploy" / "news" / "bow.onnx"
    result = run_ok(["textclass-export", f"ckpt_path={tiny_run.last_ckpt}", f"output={target}"], cwd=tmp_path,
                    env=cli_env(tiny_run.data, tmp_path))
    assert f"as onnx to {target} " in result.stderr and "checked: same logits as PyTorch" in result.stderr
    assert sorted(p.name for p in target.parent.iterdir()) == ["bow.onnx", "export.json", "labels.json", "vocab.json"]
    assert json.loads((target.parent / "export.json").read_text())["file"] == "bow.onnx"
    assert (target.parent / "vocab.json").read_bytes() == (tiny_run.run / "vocab.json").read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["deploy"]  # a single export leaves nothing in the working folder
    run = _loaded(tiny_run.run)
    for texts in BATCHES:
        (batch,) = run.batches(texts, len(texts))
        np.testing.assert_allclose(_exported_logits(target, batch), _pytorch_logits(run, batch), atol=1e-4, rtol=0)


@pytest.mark.slow
def test_bert_export_holds_the_tokenizer_that_encodes_as_training_did(exported):
    from transformers import AutoTokenizer

    _, _, runs, _ = exported
    folder = runs["bert"] / "export" / "onnx"
    manifest = json.loads((folder / "export.json").read_text())
    assert manifest["tokenizer"]["kind"] == "subword" and manifest["tokenizer"]["max_length"] == 128
    assert manifest["encoder"] == "BertEncoder" and manifest["pad_id"] == 0
    assert set(manifest["files"]) == {"labels.json", "tokenizer.json", "tokenizer_config.json"}
    run = _loaded(runs["bert"])
    tokenizer = AutoTokenizer.from_pretrained(folder)
    encoded = tokenizer(TITLES[:4], padding=True, return_tensors="np")
    (batch,) = run.batches(TITLES[:4], 4)
    assert (encoded["input_ids"] == batch.input_ids.numpy()).all()
    session = onnxruntime.InferenceSession(str(folder / "model.onnx"))
    logits = session.run(["logits"], {"input_ids": encoded["input_ids"], "attention_mask": encoded["attention_mask"]})[0]
    np.testing.assert_allclose(logits, _pytorch_logits(run, batch), atol=1e-4, rtol=0)


# --- the export's stand-in for packed sequences, against the packed encoders themselves ----------


RNN_VARIANTS = [
    dict(cell="lstm", num_layers=2, bidirectional=True, pooling="last"),
    dict(cell="gru", num_layers=1, bidirectional=True, pooling="max"),
    dict(cell="rnn", num_layers=2, bidirectional=True, pooling="mean"),
    dict(cell="rnn", num_layers=1, bidirectional=False, pooling="last"),
]


@pytest.mark.parametrize("options", RNN_VARIANTS, ids=lambda o: "-".join(map(str, o.values())))
def test_unpacked_rnn_equals_the_packed_encoder(options):

    from textclass.export.graph import exportable, sample_inputs
    from textclass.models.classifier import TextClassifier
    from textclass.models.encoders.rnn import RNNEncoder

    torch.manual_seed(0)
    model = TextClassifier(RNNEncoder(torch.nn.Embedding(30, 8, padding_idx=0), hidden_size=6, **options), 3)
    model.eval()
    module = exportable(model, pad_id=0)
    for lengths in ([7, 1, 3, 7], [1], [2, 5]):
        ids, mask = sample_inputs(30, 0, lengths, seed=len(lengths))
        with torch.no_grad():
            packed = model(Batch(ids, mask.sum(1), mask.bool(), mask.sum(1)))
            assert torch.allclose(module(ids, mask), packed, atol=1e-6), (options, lengths)
    assert model.encoder.rnn.__class__.__name__ == options["cell"].upper()  # the model itself is left as it was


@pytest.mark.slow
def test_the_torch_bug_forget_rnn_kernels_works_around_is_still_there(tmp_path, monkeypatch):
    """export_onnx clears torch's cached aten.lstm kernel (torch's private _dispatch_cache) before each
    export: without it, a second LSTM export in one process fixes the sequence axis. When this test
    fails, torch has fixed it: remove forget_rnn_kernels."""

    from textclass.export import graph
    from textclass.models.classifier import TextClassifier
    from textclass.models.encoders.rnn import RNNEncoder

    torch.manual_seed(0)
    model = TextClassifier(RNNEncoder(torch.nn.Embedding(30, 8, padding_idx=0), hidden_size=6, cell="lstm"), 3).eval()
    module = graph.exportable(model, pad_id=0)
    example = graph.sample_inputs(30, 0, graph.EXAMPLE_LENGTHS, seed=0)
    graph.export_onnx(module, example, tmp_path / "first.onnx", None)  # clears the cache, then exports: dynamic
    monkeypatch.setattr(graph, "forget_rnn_kernels", lambda: None)  # the workaround off
    with pytest.raises(RuntimeError, match="the exporter fixed an axis of input_ids"):
        graph.export_onnx(module, example, tmp_path / "second.onnx", None)


# --- bad input: one `error:` line naming the value and the fix, exit code 2 ----------------------


def _error_line(result) -> str:
    assert result.returncode == 2, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, result.stderr[-3000:]
    return lines[0]


def test_checkpoint_without_its_run_dir_is_refused(tiny_run: TinyRun, tmp_path):
    alone = tmp_path / "alone" / "last.ckpt"
    alone.parent.mkdir()
    shutil.copyfile(tiny_run.last_ckpt, alone)
    result = run_cli(["textclass-export", f"ckpt_path={alone}"], cwd=tmp_path, env=cli_env(tiny_run.data, tmp_path))
    line = _error_line(result)
    assert f"{alone}: no config.yaml of the run that made it" in line and "<run>/checkpoints/last.ckpt" in line
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["alone", "last.ckpt"]  # nothing written


@pytest.mark.parametrize(
    "args, fragments",
    [
        pytest.param([], ["ckpt_path has no value", "set ckpt_path=... on the command line"], id="no-ckpt_path"),
        pytest.param(["ckpt_path=nowhere/last.ckpt"], ["checkpoint not found:", "nowhere/last.ckpt", "pass ckpt_path=<run dir>"],
                     id="missing-checkpoint"),
        pytest.param(["ckpt_path=a_file", "format=tflite"], ["format='tflite' is not one of onnx, torchscript", "format=onnx"],
                     id="unknown-format"),
        pytest.param(["ckpt_path=a_file", "output=a_file/sub/model.onnx"],
                     ["output=", "a_file/sub: cannot create the folder", "a_file is a file", "choose an output path in a writable folder"],
                     id="output-folder-cannot-be-created"),
        pytest.param(["ckpt_path=a_file", "format=torchscript", "output=."], ["output=. is a directory; give a file path such as model.pt"],
                     id="output-is-a-folder"),
    ],
)
def test_bad_arguments_are_one_error_line(tmp_path, args, fragments):
    # none of these needs a trained run: each is refused before any checkpoint is read (a_file is none)
    (tmp_path / "a_file").write_text("a file where the output's folder would be\n")
    line = _error_line(run_cli(["textclass-export", *args], cwd=tmp_path))
    for fragment in fragments:
        assert fragment in line, (fragment, line)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file"]


# --- real sentences -------------------------------------------------------------------------------


def _real_texts(path: Path, column: str, count: int) -> list[str]:
    lines = path.read_text(encoding="utf-8").splitlines()
    index = lines[0].split("\t").index(column)
    return [line.split("\t")[index] for line in lines[1 : count + 1]]


@real_data
@pytest.mark.slow
def test_onnx_equals_pytorch_on_real_dev_sentences(tmp_path):
    """A BiLSTM-attention model per dataset, 1 epoch on 1,000 real examples; ONNX Runtime and PyTorch
    on 200 real dev (SST-2) and valid (news) sentences, in batches of 64 of every length they have."""
    env = cli_env(REAL_DATA, tmp_path)
    run_ok(
        ["textclass-train", "-m", "data=sst2,news", "model=attention", "model.encoder.hidden_size=32", "model.encoder.attention_size=16",
         "embeddings=none", "embeddings.dim=32", "data.vocab.source=data", "data.max_examples=1000", *TRAIN, "data.batch_size=64",
         "+trainer.limit_val_batches=1", "hydra.sweep.dir=sweep"],
        cwd=tmp_path, env=env,
    )
    runs = _job_dirs(tmp_path / "sweep", "data")
    _export_all([runs["sst2"], runs["news"]], tmp_path, env, "format=onnx")
    texts = {
        "sst2": _real_texts(REAL_DATA / "sst2" / "dev.tsv", "sentence", 200),
        "news": _real_texts(REAL_DATA / "news" / "valid.tsv", "title", 200),
    }
    for data, run_dir in runs.items():
        run = load_run(run_dir)
        batches = list(run.batches(texts[data], 64))
        assert len(batches) == 4 and len({b.input_ids.shape[1] for b in batches}) > 1
        exported = np.concatenate([_exported_logits(run_dir / "export" / "onnx" / "model.onnx", b) for b in batches])
        expected = run.logits(texts[data], 64).numpy()
        assert exported.shape == (200, {"sst2": 2, "news": 4}[data])
        np.testing.assert_allclose(exported, expected, atol=1e-4, rtol=0)
        assert (exported.argmax(1) == expected.argmax(1)).all()
