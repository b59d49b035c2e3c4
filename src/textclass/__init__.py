"""textclass: neural text classification on PyTorch Lightning + Hydra.

`textclass.train(overrides)` and `textclass.load(run_dir)` are the Python API (textclass/api.py), and
`textclass.network(overrides or run_dir)` a model to look inside (textclass/inspection.py); each is
imported on first use, so `import textclass` stays instant.
"""

import importlib

__version__ = "0.1.0"


def __getattr__(name: str):
    if name == "load":
        return importlib.import_module("textclass.api").load
    if name == "train":
        return importlib.import_module("textclass.api").train
    if name == "network":
        return importlib.import_module("textclass.inspection").network
    raise AttributeError(f"module 'textclass' has no attribute {name!r}")
