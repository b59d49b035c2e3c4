"""Export, a plug-in: a trained run as an ONNX or TorchScript file (graph.py) with its tokenizer, labels
and manifest beside it (files.py)."""
