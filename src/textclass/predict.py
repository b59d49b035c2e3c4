"""`textclass-predict`: labels and class probabilities for new sentences, optionally explained per token."""

from __future__ import annotations

import csv
import json
import re
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import hydra
from omegaconf import DictConfig

from textclass.cli import CONFIG_DIR, exit_on_user_error, run_command
from textclass.data.formats import decode_utf8
from textclass.errors import ConfigError, DataError
from textclass.files import temporary_beside

if TYPE_CHECKING:
    import torch
    from torch import nn

    from textclass.checkpoint import Predictor, TrainedRun
    from textclass.data.batching import Batch

# torch and the model code are imported by the functions that use them: --help and bad overrides
# are answered without them

FORMATS = ("jsonl", "tsv")


@dataclass
class Prediction:
    text: str
    label: str | None  # None: the input line was empty, nothing was predicted; multi-label: the set joined by "|"
    probs: dict[str, float] | None
    labels: list[str] | None = None  # multi-label: every label whose probability reaches the run's threshold
    tokens: list[str] | None = None  # with explain: the model's input tokens
    importance: list[float] | None = None  # one score per token
    method: str | None = None  # "attention" or "grad_x_input"
    skipped: str | None = None  # why this line got no prediction

    def __repr__(self) -> str:
        if self.label is None:
            return f"Prediction(skipped={self.skipped!r})"
        chosen = f"labels={self.labels}" if self.labels is not None else f"label={self.label!r}, p={self.probs[self.label]:.3f}"
        text = self.text if len(self.text) <= 40 else self.text[:37] + "..."
        return f"Prediction({chosen}, text={text!r})"

    def record(self) -> dict:
        """The JSON line: text, label and probs always; explanation and skip reason when present."""
        optional = ("labels", "tokens", "importance", "method", "skipped")
        return {"text": self.text, "label": self.label, "probs": self.probs} | {
            k: getattr(self, k) for k in optional if getattr(self, k) is not None
        }


EMPTY_LINE = "empty line"


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


def predict_lines(run: Predictor, lines: list[str], batch_size: int = 256, explain: bool = False) -> Iterator[Prediction]:
    """A prediction per line, in order; an empty line gets a row saying it was skipped."""
    predictions = predict(run, [line for line in lines if line], batch_size, explain)
    for line in lines:
        yield next(predictions) if line else Prediction(line, None, None, skipped=EMPTY_LINE)


def predict(run: Predictor, texts: list[str], batch_size: int = 256, explain: bool = False) -> Iterator[Prediction]:
    """Predictions for non-empty `texts`; for a sentence-pair run each text is `text<TAB>pair`.
    `explain` needs one model: an ensemble refuses it here, before the first row."""
    explained = run.single_model("explain=true") if explain else None
    return _predictions(run, texts, batch_size, explained)


def _predictions(run: Predictor, texts: list[str], batch_size: int, explained: TrainedRun | None) -> Iterator[Prediction]:
    names = list(run.labels.names)
    model = run.model
    for start in range(0, len(texts), batch_size):
        chunk = texts[start : start + batch_size]
        firsts, pairs = split_pairs(chunk) if run.dataset.text_pair_column else (chunk, None)
        if explained is not None:
            (batch,) = explained.batches(firsts, batch_size, pairs)
            logits, importance, method = explain_batch(explained.model, batch)
        else:
            logits = run.logits(firsts, batch_size, pairs)
        probs = model.probabilities(logits)
        chosen_rows = model.decide(probs).tolist() if model.multi_label else None
        for row, text in enumerate(chunk):
            p = probs[row].tolist()
            if model.multi_label:
                chosen = [n for n, keep in zip(names, chosen_rows[row]) if keep]
                prediction = Prediction(text, "|".join(chosen), dict(zip(names, p)), labels=chosen)
            else:
                prediction = Prediction(text, names[int(probs[row].argmax())], dict(zip(names, p)))
            if explained is not None:
                length = int(batch.lengths[row])
                prediction.tokens = explained.features.token_strings(batch.input_ids[row, :length].tolist())
                prediction.importance = importance[row, :length].tolist()
                prediction.method = method
            yield prediction


def split_pairs(lines: list[str]) -> tuple[list[str], list[str]]:
    """`text<TAB>pair` lines as two lists (a line without a tab has an empty pair)."""
    halves = [line.split("\t", 1) + [""] for line in lines]
    return [h[0].strip() for h in halves], [h[1].strip() for h in halves]


def explain_batch(model: nn.Module, batch: Batch) -> tuple[torch.Tensor, torch.Tensor, str]:
    """(logits, per-token importance [B, T], method): attention weights when the encoder has them,
    else gradient x input of the predicted class's logit at the token embeddings."""
    import torch
    from torch import nn

    from textclass.models.embedding import MultichannelEmbedding

    encoder = model.encoder
    if hasattr(encoder, "attend"):
        with torch.no_grad():
            return model(batch), encoder.attend(batch)[1], "attention"
    # modules() yields a MultichannelEmbedding before its two nn.Embedding channels: both are explained
    embedding = next(m for m in encoder.modules() if isinstance(m, (MultichannelEmbedding, nn.Embedding)))
    captured: list[torch.Tensor] = []

    def keep_output(module, inputs, output):
        output.retain_grad()
        captured.append(output)

    handle = embedding.register_forward_hook(keep_output)
    try:
        with torch.enable_grad():
            logits = model(batch)
            logits.gather(1, logits.argmax(-1, keepdim=True)).sum().backward()
    finally:
        handle.remove()
        model.zero_grad(set_to_none=True)
    vectors = captured[0]
    return logits.detach(), (vectors * vectors.grad).sum(-1).detach(), "grad_x_input"


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
    from textclass.ensemble import load_system

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
