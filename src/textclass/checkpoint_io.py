"""Checkpoint files written so that a failed save never costs the previous checkpoint.

Lightning's own save writes into a temporary file under /tmp and moves it into place, which across
filesystems is a copy: a full disk then leaves `last.ckpt` truncated. Here the bytes go to a
temporary file beside the target, are flushed to disk, and replace it in one rename.
"""

from __future__ import annotations

import io
import os
import secrets
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO

from textclass.errors import TextclassError


class CheckpointSaveError(TextclassError):
    """A checkpoint that could not be written (full disk, no permission): the old file is kept."""


class AtomicCheckpointIO(TorchCheckpointIO):
    def save_checkpoint(self, checkpoint: dict[str, Any], path: str | Path, storage_options: Any | None = None) -> None:
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} takes no storage_options")
        buffer = io.BytesIO()
        torch.save(checkpoint, buffer)
        write_atomically(Path(path), buffer.getbuffer())


def write_atomically(path: Path, data: bytes | memoryview) -> None:
    """`path` holds exactly `data`, or, when writing fails, whatever it held before."""
    tmp = path.parent / f".{path.name}.{secrets.token_hex(4)}.tmp"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # os.open with 0o666, not mkstemp's 0o600: the checkpoint gets the umask's usual permissions
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        kept = f"{path.name} keeps its previous contents" if path.exists() else "checkpoints saved before are untouched"
        raise CheckpointSaveError(
            f"could not save checkpoint {path} ({err.strerror or err}); {kept}. Free space in {path.parent} "
            "(or point paths.log_dir elsewhere) and resume the run"
        ) from None
