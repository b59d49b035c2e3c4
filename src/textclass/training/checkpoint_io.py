"""Checkpoint files written so that a failed save never costs the previous checkpoint.

Lightning's own save writes into a temporary file under /tmp and moves it into place, which across
filesystems is a copy: a full disk then leaves `last.ckpt` truncated. Here the bytes go to a
temporary file beside the target, are flushed to disk, and replace it in one rename.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO

from textclass.files import WriteError, temporaries_of, write_atomically


class AtomicCheckpointIO(TorchCheckpointIO):
    def save_checkpoint(self, checkpoint: dict[str, Any], path: str | Path, storage_options: Any | None = None) -> None:
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} takes no storage_options")
        path = Path(path)
        # a save killed mid-write (SIGKILL, power loss) leaves its temporary file: the next save of
        # the same checkpoint (a resumed run's) sweeps it away; only the rank that saves runs this
        for stale in temporaries_of(path):
            stale.unlink(missing_ok=True)
        buffer = io.BytesIO()
        torch.save(checkpoint, buffer)
        try:
            write_atomically(path, buffer.getbuffer())
        except WriteError as err:
            raise WriteError(f"could not save checkpoint: {err}; resume the run once there is room") from None
