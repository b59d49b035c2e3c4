"""textclass: neural text classification on PyTorch Lightning + Hydra.

`textclass.train(overrides)` and `textclass.load(run_dir)` are the Python API (textclass/api.py);
both are imported on first use, so `import textclass` stays instant.
"""

import importlib

__version__ = "0.1.0"


def __getattr__(name: str):
    if name == "load":
        return importlib.import_module("textclass.api").load
    if name == "train":
        return importlib.import_module("textclass.api").train
    raise AttributeError(f"module 'textclass' has no attribute {name!r}")
