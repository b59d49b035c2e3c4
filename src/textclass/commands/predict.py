"""`textclass predict` (and textclass-predict): labels and class probabilities for new sentences
(text=..., input=FILE, or stdin), as JSON lines or TSV, optionally explained per token."""

from __future__ import annotations

import csv
import json
import re
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import hydra
from omegaconf import DictConfig

from textclass.commands.cli import exit_on_user_error, run_command
from textclass.config.compose import CONFIG_DIR
from textclass.data.formats import decode_utf8
from textclass.errors import ConfigError, DataError
from textclass.files import temporary_beside

if TYPE_CHECKING:
    from textclass.training.inference import Prediction

# torch and the model code (textclass.training.inference, textclass.ensemble) are imported inside
# hydra_main: --help and bad overrides are answered without their start-up time

FORMATS = ("jsonl", "tsv")


def read_texts(text: str | list[str] | None, input_path: str | None) -> list[str]:
    """One entry per input line, stripped (empty lines stay, so output row i answers line i).

    From `text`, a file (one sentence a line, '-' = stdin), or stdin when neither is given.
    """
    if text is not None:
        texts = [str(t) for t in text] if isinstance(text, Sequence) and not isinstance(text, str) else [str(text)]
    elif input_path not in (None, "-"):
        path = Path(input_path)
        if not path.is_file():
            raise DataError(f"input file not found: {path}" if not path.exists() else f"input={path} is not a file")
        try:
            data = path.read_bytes()
        except OSError as err:
            raise DataError(f"cannot read input={path} ({err.strerror})") from None
        texts = decode_utf8(data, path).splitlines()
    elif input_path == "-" or not sys.stdin.isatty():
        texts = decode_utf8(sys.stdin.buffer.read(), "<stdin>").splitlines()
    else:
        raise ConfigError("nothing to predict: give text=\"...\", input=FILE, or pipe sentences on stdin")
    texts = [t.strip() for t in texts]
    if not any(texts):
        raise DataError(f"nothing to predict: the input ({input_path or 'text'}) has no non-empty line")
    return texts


def check_output(output: str, input_path: str | None) -> None:
    """Fail before the model loads when the output cannot be written, or would overwrite the input."""
    if output == "-":
        return
    path = Path(output)
    if path.is_dir():
        raise ConfigError(f"output={output} is a directory; give a file path such as {path / 'predictions.jsonl'}")
    if not path.parent.is_dir():
        raise ConfigError(f"output={output}: the folder {path.parent} does not exist; create it or choose another path")
    if input_path not in (None, "-") and path.resolve() == Path(input_path).resolve():
        raise ConfigError(f"output={output} is the input file: writing would destroy it; choose another output path")


def write(predictions: Iterable[Prediction], output: str, fmt: str | None, class_names: list[str]) -> None:
    """Write rows as JSON lines or TSV (quoted where a text holds a tab, quote or newline).

    A file is written beside its target and renamed into place: an error midway leaves no partial file.
    """
    fmt = fmt or ("tsv" if output.endswith(".tsv") else "jsonl")
    if fmt not in FORMATS:
        raise ConfigError(f"format={fmt!r} is not one of {FORMATS}")
    tmp = None if output == "-" else temporary_beside(Path(output))  # this call's own: two predicts may share an output
    out = sys.stdout if tmp is None else open(tmp, "w", encoding="utf-8", newline="")
    try:
        tsv = csv.writer(out, delimiter="\t", lineterminator="\n") if fmt == "tsv" else None
        if tsv is not None:
            tsv.writerow(["text", "label", *(f"p_{c}" for c in class_names)])
        for p in predictions:
            if tsv is not None:
                probs = [f"{v:.6f}" for v in p.probs.values()] if p.probs else [""] * len(class_names)
                tsv.writerow([p.text, p.label or "", *probs])
            else:
                out.write(json.dumps(p.record(), ensure_ascii=False) + "\n")
        if tmp is not None:
            out.close()
            tmp.replace(output)
    finally:
        if tmp is not None:
            out.close()
            tmp.unlink(missing_ok=True)


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="predict")
@exit_on_user_error
def hydra_main(cfg: DictConfig) -> None:
    ckpt_path = cfg.ckpt_path  # a missing ckpt_path is the first thing to say
    check_output(cfg.output, cfg.input)
    lines = read_texts(cfg.text, cfg.input)
    # torch loads here, once the input is known to be readable
    from textclass.ensemble import load_system
    from textclass.training.inference import predict_lines

    run = load_system(ckpt_path, cfg.checkpoint)
    if cfg.explain:
        run.single_model("explain=true")  # an ensemble refuses before any output is written
    start = time.perf_counter()
    write(predict_lines(run, lines, cfg.batch_size, cfg.explain), cfg.output, cfg.format, list(run.labels.names))
    seconds = time.perf_counter() - start
    n = sum(map(bool, lines))
    empty = [i for i, line in enumerate(lines, start=1) if not line]
    if empty:
        shown = ", ".join(map(str, empty[:10])) + (", ..." if len(empty) > 10 else "")
        print(f"{len(empty)} empty input line{'s' * (len(empty) > 1)} got a row with no label (line {shown})", file=sys.stderr)
    print(f"predicted {n} sentences with {getattr(run, 'checkpoint', run.run_dir)} in {seconds:.3f} s ({n / max(seconds, 1e-9):,.0f} sentences/s)", file=sys.stderr)


def main() -> None:
    run_command(hydra_main, "predict", rewrite=quoted_text)


def quoted_text(args: list[str]) -> list[str]:
    """`text=Stocks fall, bonds rally` as one sentence: quoted for Hydra, which would read the comma
    as a list of values (and ${...} as an interpolation). A list (text=[...]) or a value already
    quoted is left as written."""
    return [f"text={hydra_quoted(a[len('text='):])}" if a.startswith("text=") else a for a in args]


def hydra_quoted(value: str) -> str:
    if value.startswith("[") or (len(value) >= 2 and value[0] == value[-1] and value[0] in "'\""):
        return value
    # Hydra's quoted strings: backslashes are literal except before a quote or at the end
    value = re.sub(r"(\\*)'", lambda m: m.group(1) * 2 + "\\'", value)
    value = re.sub(r"(\\+)$", lambda m: m.group(1) * 2, value)
    return "'" + value.replace("${", "\\${") + "'"


if __name__ == "__main__":
    main()
