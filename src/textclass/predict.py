"""`textclass-predict`: labels and class probabilities for new sentences, optionally explained per token."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import hydra
import torch
from omegaconf import DictConfig
from torch import nn

from textclass.checkpoint import TrainedRun, load_run
from textclass.cli import CONFIG_DIR, exit_on_user_error, run
from textclass.data.batching import Batch
from textclass.errors import ConfigError, DataError
from textclass.models.embedding import MultichannelEmbedding

FORMATS = ("jsonl", "tsv")


@dataclass
class Prediction:
    text: str
    label: str
    probs: dict[str, float]
    tokens: list[str] | None = None  # with explain: the model's input tokens
    importance: list[float] | None = None  # one score per token
    method: str | None = None  # "attention" or "grad_x_input"


def read_texts(text: str | list[str] | None, input_path: str | None) -> list[str]:
    """Sentences from `text`, a file (one per line, '-' = stdin), or stdin when neither is given."""
    if text is not None:
        texts = [text] if isinstance(text, str) else list(text)
    elif input_path not in (None, "-"):
        path = Path(input_path)
        if not path.is_file():
            raise DataError(f"input file not found: {path}")
        texts = path.read_text(encoding="utf-8").splitlines()
    elif input_path == "-" or not sys.stdin.isatty():
        texts = sys.stdin.read().splitlines()
    else:
        raise ConfigError("nothing to predict: give text=\"...\", input=FILE, or pipe sentences on stdin")
    texts = [t.strip() for t in texts if t.strip()]
    if not texts:
        raise DataError(f"nothing to predict: the input ({input_path or 'text'}) has no non-empty line")
    return texts


def predict(run: TrainedRun, texts: list[str], batch_size: int = 256, explain: bool = False) -> Iterator[Prediction]:
    names = [str(n) for n in run.model.class_names]
    for start in range(0, len(texts), batch_size):
        chunk = texts[start : start + batch_size]
        (batch,) = run.batches(chunk, batch_size)
        if explain:
            logits, importance, method = explain_batch(run.model, batch)
        else:
            with torch.no_grad():
                logits = run.model(batch)
        probs = logits.softmax(-1)
        for row, text in enumerate(chunk):
            p = probs[row].tolist()
            prediction = Prediction(text, names[int(probs[row].argmax())], dict(zip(names, p)))
            if explain:
                length = int(batch.lengths[row])
                prediction.tokens = token_strings(run, batch.input_ids[row, :length].tolist())
                prediction.importance = importance[row, :length].tolist()
                prediction.method = method
            yield prediction


def explain_batch(model: nn.Module, batch: Batch) -> tuple[torch.Tensor, torch.Tensor, str]:
    """(logits, per-token importance [B, T], method): attention weights when the encoder has them,
    else gradient x input of the predicted class's logit at the token embeddings."""
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


def token_strings(run: TrainedRun, ids: list[int]) -> list[str]:
    if run.vocab is not None:
        return [run.vocab.itos[i] for i in ids]
    return run.tokenizer.hf_tokenizer.convert_ids_to_tokens(ids)


def write(predictions: Iterable[Prediction], output: str, fmt: str | None) -> int:
    fmt = fmt or ("tsv" if output.endswith(".tsv") else "jsonl")
    if fmt not in FORMATS:
        raise ConfigError(f"format={fmt!r} is not one of {FORMATS}")
    out = sys.stdout if output == "-" else open(output, "w", encoding="utf-8")
    n = 0
    try:
        for p in predictions:
            if fmt == "tsv":
                if n == 0:
                    out.write("\t".join(["text", "label", *(f"p_{c}" for c in p.probs)]) + "\n")
                out.write("\t".join([p.text, p.label, *(f"{v:.6f}" for v in p.probs.values())]) + "\n")
            else:
                out.write(json.dumps({k: v for k, v in p.__dict__.items() if v is not None}, ensure_ascii=False) + "\n")
            n += 1
    finally:
        if out is not sys.stdout:
            out.close()
    return n


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="predict")
@exit_on_user_error
def hydra_main(cfg: DictConfig) -> None:
    texts = read_texts(cfg.text, cfg.input)
    run = load_run(cfg.ckpt_path)
    start = time.perf_counter()
    n = write(predict(run, texts, cfg.batch_size, cfg.explain), cfg.output, cfg.format)
    seconds = time.perf_counter() - start
    print(f"predicted {n} sentences with {cfg.ckpt_path} in {seconds:.3f} s ({n / max(seconds, 1e-9):,.0f} sentences/s)", file=sys.stderr)


def main() -> None:
    run(hydra_main, "predict")


if __name__ == "__main__":
    main()
