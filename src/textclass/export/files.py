"""What an export writes beside the model file, and where: the tokenizer (a word run's vocab.json,
or a subword tokenizer's own files), labels.json, thresholds.json when the run has one, and
export.json, the manifest; the output is checked before any work (never the checkpoint read, never
inside another run, never a folder of other files of those names)."""

from __future__ import annotations

import importlib.metadata
import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from textclass.errors import ConfigError
from textclass.files import check_output, creatable_folder, writable_folder
from textclass.run_files import LABELS_FILE, THRESHOLDS_FILE, VOCAB_FILE

if TYPE_CHECKING:  # the model code loads torch: a command's --help needs none of it
    from textclass.training.checkpoint import TrainedRun

FORMATS = {"onnx": "model.onnx", "torchscript": "model.pt"}  # format -> default file name
INPUT_NAMES = ("input_ids", "attention_mask")  # int64 [batch, sequence]
OUTPUT_NAME = "logits"  # float32 [batch, classes]
MANIFEST = "export.json"
BESIDE = (VOCAB_FILE, LABELS_FILE, THRESHOLDS_FILE, MANIFEST)  # written beside the model (subword runs: the tokenizer's files too)
EXPORT_DIR = "export"  # default output: <run dir>/export/<format>/<file name>


def check_format(fmt: str) -> str:
    if fmt not in FORMATS:
        raise ConfigError(f"format={fmt!r} is not one of {', '.join(FORMATS)}; e.g. format=onnx")
    return fmt


def output_path(output: str | None, run_dir: Path, fmt: str) -> Path:
    """The file to write: `output`, or <run dir>/export/<format>/model.onnx (model.pt), so that
    the formats of one run never share a manifest."""
    return Path(output).expanduser() if output else run_dir / EXPORT_DIR / fmt / FORMATS[fmt]


def check_output_file(path: Path, fmt: str) -> None:
    if path.is_dir():
        raise ConfigError(f"output={path} is a directory; give a file path such as {path / FORMATS[fmt]}")
    creatable_folder(path.parent, "output")


def prepare_output(path: Path, fmt: str, run: TrainedRun) -> None:
    """The output's folder, created and checked before any export work: never the checkpoint read,
    never inside a run directory but the run's own export/, and a folder that holds only a previous
    export (the files written beside the model would replace any others of their names)."""
    check_output_file(path, fmt)
    check_output(path, "output", inputs=[run.checkpoint], own_folder=run.run_dir / EXPORT_DIR)
    folder = path.expanduser().parent
    replaced = [name for name in BESIDE if (folder / name).exists()]
    if replaced and not (folder / MANIFEST).is_file():
        raise ConfigError(
            f"output={path}: its folder {folder} holds {', '.join(replaced)}, which the export would replace (it writes them "
            "beside the model): choose an empty folder, or one a previous textclass-export wrote"
        )
    writable_folder(folder, "output")


def save_tokenizer(features: Any, directory: Path) -> tuple[dict, list[str]]:
    """(how to turn text into ids, for the manifest; the files written for it): a word run's
    vocab.json, or a subword tokenizer's own files (AutoTokenizer.from_pretrained(directory))."""

    hf_tokenizer = getattr(features, "hf_tokenizer", None)
    if hf_tokenizer is not None:
        saved = hf_tokenizer.save_pretrained(directory)
        entry = {"kind": "subword", "load": "transformers.AutoTokenizer.from_pretrained(<this folder>)", "max_length": features.max_length}
        return entry, sorted(Path(p).name for p in saved)
    features.save(directory)
    unk = features.vocab.unk_id
    entry = {
        "kind": "word",
        "vocab": VOCAB_FILE,  # "itos": the token of each id
        "split": features.tokenizer.split,  # whitespace, or punct: punctuation to spaces, then whitespace
        "lowercase": features.tokenizer.lowercase,
        "unknown_words": "dropped" if unk is None else f"id {unk} (<unk>)",
    }
    return entry, [VOCAB_FILE]


def write_beside(run: TrainedRun, path: Path, fmt: str, source: Path) -> list[str]:
    """Tokenizer files, labels.json, thresholds.json (when the run has one) and the manifest, beside
    `path`; returns their names."""
    directory = path.parent
    tokenizer, files = save_tokenizer(run.features, directory)
    if fmt == "onnx" and (directory / f"{path.name}.data").is_file():  # the weights of a model past 2 GiB
        files.append(f"{path.name}.data")
    for name in (LABELS_FILE, THRESHOLDS_FILE):
        if (run.run_dir / name).is_file():
            shutil.copyfile(run.run_dir / name, directory / name)
            files.append(name)
    manifest = {
        "format": fmt,
        "file": path.name,
        "input_names": list(INPUT_NAMES),  # int64 [batch, sequence]; attention_mask 1 on real tokens, padding after them
        "output_name": OUTPUT_NAME,  # float32 [batch, classes]
        "class_names": list(run.labels.names),
        "multi_label": run.model.multi_label,
        "probabilities": "sigmoid" if run.model.multi_label else "softmax",
        "pad_id": int(run.features.pad_id),
        "tokenizer": tokenizer,
        "files": sorted(files),
        "encoder": type(run.model.encoder).__name__,
        "source": str(source),
        "textclass_version": importlib.metadata.version("textclass"),
    }
    (directory / MANIFEST).write_text(json.dumps(manifest, indent=1, ensure_ascii=False), encoding="utf-8")
    return sorted([*files, MANIFEST])


def summary(source: str, fmt: str, path: Path, worst: float | None, check: bool, beside: list[str]) -> str:
    if not check:
        checked = "not checked (check=false)"
    elif worst is None:
        checked = "not checked (onnxruntime is not installed)"
    else:
        checked = f"checked: same logits as PyTorch (max |difference| {worst:.1e})"
    size = path.stat().st_size
    shown = f"{size / 2**20:,.1f} MiB" if size >= 2**20 else f"{size / 2**10:,.0f} KiB"
    return f"exported {source} as {fmt} to {path} ({shown}), {checked}; beside it: {', '.join(beside)}"
