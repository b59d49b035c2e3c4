"""A trained model as an exportable graph: plain tensors in (`input_ids`, `attention_mask`, int64
[batch, sequence], both axes dynamic, padding after each sequence's end), `logits` [batch, classes]
out; written as ONNX (torch.onnx's dynamo exporter) or TorchScript, and checked against PyTorch on
inputs of other shapes than the traced example's.

Packed sequences (the RNN encoders) keep no dynamic axis in either exporter: each RNN layer and
direction is run alone on the padded batch instead (PaddedRNN), which gives the same states.
"""

from __future__ import annotations

import copy
import importlib.util
import logging
import warnings
from pathlib import Path

import torch
from torch import nn

from textclass.console import silenced
from textclass.data.batching import Batch
from textclass.errors import ConfigError
from textclass.export.files import INPUT_NAMES, OUTPUT_NAME
from textclass.models.classifier import TextClassifier
from textclass.models.encoders.cnn import CNNEncoder
from textclass.models.encoders.rnn import RNNEncoder
from textclass.training.checkpoint import TrainedRun

TOLERANCE = 1e-4  # largest |logit difference| the check accepts between the exported file and PyTorch
ONNX_SIZE_LIMIT = 2**31 - 2**26  # protobuf's 2 GiB cap on one file, less a margin for the graph itself
GATE_SATURATION = 50.0  # sigmoid(50) is 1.0 in float32, sigmoid(-50) 2e-22
EXAMPLE_LENGTHS = [6, 3]  # the traced example: two sequences, one padded
# the check's inputs: other batch sizes and lengths than the example's, down to a one-token input
CHECK_LENGTHS = ([9, 1, 4], [1], [2, 11, 5, 11, 3])


class PaddedRNN(nn.Module):
    """RNNEncoder with the same states computed without packed sequences, which neither ONNX
    exporter nor the tracer keeps dynamic in torch 2.13: each direction of each layer runs
    alone on the padded batch. Forward outputs at real steps never depend on the padding after
    them; the backward direction runs on each sequence reversed within its length."""

    forward = RNNEncoder.forward  # the encoder's own pooling, over this run()

    def __init__(self, encoder: RNNEncoder):
        super().__init__()
        self.embedding = encoder.embedding
        self.pooling, self.num_directions, self.output_dim = encoder.pooling, encoder.num_directions, encoder.output_dim
        rnn = encoder.rnn
        self.layers = nn.ModuleList(
            nn.ModuleList(single_direction(rnn, layer, direction) for direction in range(self.num_directions))
            for layer in range(rnn.num_layers)
        )

    def run(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """RNNEncoder.run's (states [B, T, output_dim], zeros after each end; final hidden [layers*dirs, B, H])."""
        lengths = batch.lengths.clamp(min=1)  # an empty sequence runs one (padding) step, as in RNNEncoder.run
        x = self.embedding(batch.input_ids)
        last = (lengths - 1).view(-1, 1, 1)
        finals = []
        for layer in self.layers:
            outputs = []
            for direction, rnn in enumerate(layer):
                if direction == 0:
                    out = rnn(x)[0]
                    finals.append(out.gather(1, last.expand(-1, 1, out.shape[-1])).squeeze(1))
                else:
                    out = flip_within(rnn(flip_within(x, lengths))[0], lengths)
                    finals.append(out[:, 0])
                outputs.append(out)
            x = torch.cat(outputs, dim=-1)  # dropout between layers is off in eval mode
        real = torch.arange(x.shape[1], device=x.device).unsqueeze(0) < lengths.unsqueeze(1)
        return x * real.unsqueeze(-1), torch.stack(finals)


class Exportable(nn.Module):
    """A TextClassifier's forward over plain tensors (input_ids, attention_mask) -> logits.

    It holds the classifier's parts, not the LightningModule, whose `trainer` property raises
    when the tracer walks the attributes."""

    forward_batch = TextClassifier.forward  # encoder, dropout, head and the binary logit as trained

    def __init__(self, model: TextClassifier, pad_id: int):
        super().__init__()
        self.encoder, self.dropout, self.head, self.binary = model.encoder, model.dropout, model.head, model.binary
        self.pad_id = pad_id
        # CNNEncoder pads an input shorter than its widest window; a trace keeps that padding as
        # a constant of the traced length. Appending a widest window of (masked) padding to
        # every input makes it 0 for any length, and leaves the logits as they were.
        self.extra_padding = max(model.encoder.widths) if isinstance(model.encoder, CNNEncoder) else 0
        swap_rnns(self)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        if self.extra_padding:
            rows = input_ids.shape[0]
            input_ids = torch.cat([input_ids, input_ids.new_full((rows, self.extra_padding), self.pad_id)], dim=1)
            attention_mask = torch.cat([attention_mask, attention_mask.new_zeros((rows, self.extra_padding))], dim=1)
        lengths = attention_mask.sum(1)
        return self.forward_batch(Batch(input_ids, lengths, attention_mask.bool(), labels=lengths))  # labels: never read


def swap_rnns(module: nn.Module) -> None:
    """Every RNNEncoder below `module` (also the one inside AttentionEncoder) replaced by its PaddedRNN."""
    for name, child in module.named_children():
        if isinstance(child, RNNEncoder):
            setattr(module, name, PaddedRNN(child))
        else:
            swap_rnns(child)


def flip_within(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Each sequence of x [B, T, D] reversed over its first lengths[b] steps, the padding left in
    place: a backward direction then reads the real tokens first, as with packed sequences."""
    steps = torch.arange(x.shape[1], device=x.device).unsqueeze(0)
    last = (lengths - 1).unsqueeze(1)
    index = torch.where(steps <= last, last - steps, steps)
    # expand to x's last (static) size, not expand_as(x): with expand_as, torch 2.13's ONNX export
    # fixes the sequence axis behind a GRU/LSTM (pytorch/pytorch#191855)
    return x.gather(1, index.unsqueeze(-1).expand(-1, -1, x.shape[-1]))


def single_direction(rnn: nn.RNNBase, layer: int, direction: int) -> nn.RNNBase:
    """One layer and direction of `rnn` as a one-layer, one-direction module of the same cell
    (an Elman RNN as the GRU that computes it: see elman_as_gru)."""
    suffix = f"_l{layer}" + ("_reverse" if direction else "")
    input_size = rnn.input_size if layer == 0 else rnn.hidden_size * (2 if rnn.bidirectional else 1)
    names = ("weight_ih", "weight_hh", "bias_ih", "bias_hh") if rnn.bias else ("weight_ih", "weight_hh")
    weights = {f"{name}_l0": getattr(rnn, name + suffix).detach().clone() for name in names}
    if isinstance(rnn, nn.RNN):
        return elman_as_gru(input_size, rnn.hidden_size, weights).eval()
    single = type(rnn)(input_size, rnn.hidden_size, num_layers=1, bias=rnn.bias, batch_first=True)
    single.load_state_dict(weights)
    return single.eval()


def elman_as_gru(input_size: int, hidden_size: int, weights: dict[str, torch.Tensor]) -> nn.GRU:
    """The GRU equal to a one-layer tanh RNN of these weights: reset gate 1, update gate 0, so
    h' = tanh(W_ih x + b_ih + W_hh h + b_hh). The ONNX exporter keeps a GRU's loop over a dynamic
    number of steps, but unrolls an Elman RNN over the example's length."""
    gru = nn.GRU(input_size, hidden_size, batch_first=True)
    zeros = torch.zeros(hidden_size)
    saturated = torch.full((hidden_size,), GATE_SATURATION)
    # GRU rows are (reset, update, new); a constant gate has no weights, only its bias
    gru.load_state_dict({
        "weight_ih_l0": torch.cat([torch.zeros(2 * hidden_size, input_size), weights["weight_ih_l0"]]),
        "weight_hh_l0": torch.cat([torch.zeros(2 * hidden_size, hidden_size), weights["weight_hh_l0"]]),
        "bias_ih_l0": torch.cat([saturated, -saturated, weights.get("bias_ih_l0", zeros)]),
        "bias_hh_l0": torch.cat([zeros, zeros, weights.get("bias_hh_l0", zeros)]),
    })
    return gru


def exportable(model: TextClassifier, pad_id: int) -> nn.Module:
    """`model` (left as it is) as an eval-mode module of plain tensors, ready to trace or export."""
    return Exportable(copy.deepcopy(model).eval(), pad_id).eval()


def vocab_size(module: nn.Module) -> int:
    """Rows of the model's first token embedding: the ids that are safe to feed it."""
    return next(m for m in module.modules() if isinstance(m, nn.Embedding)).num_embeddings


def max_sequence(module: nn.Module) -> int | None:
    """The longest input a transformer takes (its position embeddings); None: any length."""
    config = getattr(getattr(module.encoder, "model", None), "config", None)
    return getattr(config, "max_position_embeddings", None)


def sample_inputs(vocab: int, pad_id: int, lengths: list[int], seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(input_ids, attention_mask) of random ids (never the pad id) with these lengths, padded after each end."""
    generator = torch.Generator().manual_seed(seed)
    width = max(lengths)
    ids = torch.randint(0, vocab - 1, (len(lengths), width), generator=generator)
    ids += ids >= pad_id  # skip the pad id: real tokens are never padding
    mask = (torch.arange(width).unsqueeze(0) < torch.tensor(lengths).unsqueeze(1)).long()
    return ids.masked_fill(mask == 0, pad_id), mask


def export_onnx(module: nn.Module, example: tuple[torch.Tensor, torch.Tensor], path: Path, max_length: int | None) -> None:
    """torch.onnx's dynamo exporter (torch.export), batch and sequence axes dynamic; one file
    unless the weights pass protobuf's 2 GiB (then beside it, <file>.data)."""
    if importlib.util.find_spec("onnxscript") is None:  # the dynamo exporter's ONNX builder
        raise ConfigError("format=onnx needs the onnx and onnxscript packages: pip install 'textclass[export]'")
    batch = torch.export.Dim("batch")
    sequence = torch.export.Dim("sequence", max=max_length) if max_length else torch.export.Dim("sequence")
    axes = {0: batch, 1: sequence}
    weight_bytes = sum(p.numel() * p.element_size() for p in module.parameters())
    forget_rnn_kernels()
    logging.getLogger("onnx_ir").setLevel(logging.WARNING)  # a line per deduplicated initializer
    # torch's exporter warns that torchvision's operators are skipped: none of ours is one
    with warnings.catch_warnings(), silenced("torch.onnx._internal.exporter._registration"):
        warnings.simplefilter("ignore")  # the exporter's notes on its own internals
        torch.onnx.export(
            module,
            example,
            str(path),
            input_names=list(INPUT_NAMES),
            output_names=[OUTPUT_NAME],
            dynamo=True,
            dynamic_shapes={name: axes for name in INPUT_NAMES},
            external_data=weight_bytes > ONNX_SIZE_LIMIT,
            verbose=False,
        )
    check_dynamic_axes(path)


def forget_rnn_kernels() -> None:
    """Drop the kernels torch cached for aten.lstm / aten.gru. The exporter swaps in loop-based
    ones of dynamic length only while it captures; in torch 2.13 a second export in one process
    finds the first one's cached kernel and unrolls the recurrence over the example's length (a
    fixed sequence axis). check_dynamic_axes catches it should this ever come back."""
    for op in (torch.ops.aten.lstm.input, torch.ops.aten.gru.input):
        cache = getattr(op, "_dispatch_cache", None)
        if cache is not None:
            cache.clear()


def check_dynamic_axes(path: Path) -> None:
    """Both axes of every input named (symbolic), not fixed at the example's size."""
    import onnx

    for value in onnx.load(str(path), load_external_data=False).graph.input:
        dims = [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]
        if any(isinstance(d, int) for d in dims):
            raise RuntimeError(f"{path}: the exporter fixed an axis of {value.name} ({dims}), not [batch, sequence]")


def export_torchscript(module: nn.Module, example: tuple[torch.Tensor, torch.Tensor], path: Path) -> None:
    """A traced TorchScript module (torch.jit.load runs it without textclass); the check after
    export, on other shapes, stands in for the tracer's own check on the example."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tracer's notes on Python values it records as constants
        traced = torch.jit.trace(module, example, check_trace=False)
    torch.jit.save(traced, str(path))


def run_exported(path: Path, fmt: str, inputs: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor | None:
    """Logits of the exported file on `inputs`; None when onnxruntime (to run ONNX) is not installed."""
    if fmt == "torchscript":
        with torch.no_grad():
            return torch.jit.load(str(path))(*inputs)
    try:
        import onnxruntime
    except ImportError:
        return None
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feeds = {name: tensor.numpy() for name, tensor in zip(INPUT_NAMES, inputs)}
    return torch.from_numpy(session.run([OUTPUT_NAME], feeds)[0])


def check_exported(module: nn.Module, path: Path, fmt: str, samples: list[tuple[torch.Tensor, torch.Tensor]]) -> float | None:
    """Largest |logit difference| between the file and PyTorch over `samples`; a difference past
    TOLERANCE, or a file that does not run, is a bug: it raises. None: nothing could run the file."""
    worst = 0.0
    for inputs in samples:
        shape = tuple(inputs[0].shape)
        try:
            exported = run_exported(path, fmt, inputs)
        except Exception as err:
            raise RuntimeError(f"{path} does not run on inputs of shape {shape}: {err}") from err
        if exported is None:
            return None
        with torch.no_grad():
            expected = module(*inputs)
        if exported.shape != expected.shape:
            raise RuntimeError(f"{path} gives logits of shape {tuple(exported.shape)} for inputs {shape}, PyTorch {tuple(expected.shape)}")
        worst = max(worst, float((exported - expected).abs().max()))
        if worst > TOLERANCE:
            raise RuntimeError(f"{path} disagrees with PyTorch on inputs of shape {shape}: max |logit difference| {worst:.2e} > {TOLERANCE}")
    return worst


def export(run: TrainedRun, fmt: str, path: Path, check: bool = True) -> float | None:
    """Write `run`'s model to `path` as `fmt`; returns the largest logit difference the check
    found on inputs of other shapes than the traced example's (None: not checked)."""
    pad_id = int(run.features.pad_id)
    module = exportable(run.model, pad_id)
    vocab = vocab_size(module)
    example = sample_inputs(vocab, pad_id, EXAMPLE_LENGTHS, seed=0)
    if fmt == "onnx":
        export_onnx(module, example, path, max_sequence(module))
    else:
        export_torchscript(module, example, path)
    if not check:
        return None
    return check_exported(module, path, fmt, [sample_inputs(vocab, pad_id, lengths, seed=1) for lengths in CHECK_LENGTHS])
