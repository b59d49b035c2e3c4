"""What a test asserts about files: that a command left them byte for byte as they were."""

from __future__ import annotations

import hashlib
from pathlib import Path


def digests(paths: list[Path]) -> dict[str, str]:
    """sha256 of every file under `paths` (so 'nothing changed' is checked byte for byte)."""
    out = {}
    for root in paths:
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
        for f in files:
            out[str(f)] = hashlib.sha256(f.read_bytes()).hexdigest()
    return out
