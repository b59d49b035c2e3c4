"""Predicting with a trained system: a label and class probabilities per text (the labels whose
probability reaches the run's thresholds, for multi-label runs), and on request the importance of
each input token (attention weights, or gradient x input)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from textclass.data.batching import Batch
from textclass.models.embedding import MultichannelEmbedding
from textclass.errors import DataError
from textclass.training.checkpoint import Predictor, TrainedRun


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


def checked_texts(texts: Sequence[str]) -> list[str]:
    """`texts` as a list of strings; one string (which would be read character by character) or
    an item that is not a string is an error naming it."""
    if isinstance(texts, (str, bytes)):
        raise DataError(f"texts must be a list of strings, not one {type(texts).__name__}: predict([{texts[:40]!r}])")
    texts = list(texts)
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise DataError(f"texts[{i}] is {text!r} ({type(text).__name__}), not a string: pass sentences as str")
    return texts
