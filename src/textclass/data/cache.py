"""A directory cache keyed by a hash of everything that determines its contents.

Entries are built in a private temporary directory and renamed into place, so concurrent sweep
trials never read a half-written entry; the first finished writer wins.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)

KEY_FILE = "key.json"
PACKAGE_DIR = Path(__file__).resolve().parents[1]
# The code that decides what a cache entry holds: editing any of it invalidates old entries.
PRODUCING_CODE = ("data/*.py", "tokenizers/*.py", "embeddings.py")


@functools.cache
def code_fingerprint() -> str:
    digest = hashlib.sha256()
    for pattern in PRODUCING_CODE:
        for path in sorted(PACKAGE_DIR.glob(pattern)):
            digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()[:16]


def cache_key(parts: dict) -> str:
    canonical = json.dumps({"code": code_fingerprint(), **parts}, sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:20]


def cached_dir(root: Path, prefix: str, parts: dict, build: Callable[[Path], None]) -> tuple[Path, bool]:
    """The entry for `parts` under `root`, built by `build(tmp_dir)` on a miss. Returns (dir, hit)."""
    entry = root / f"{prefix}-{cache_key(parts)}"
    if (entry / KEY_FILE).is_file():
        return entry, True
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f".tmp-{prefix}-{uuid.uuid4().hex}"
    tmp.mkdir()
    try:
        build(tmp)
        (tmp / KEY_FILE).write_text(json.dumps({"code": code_fingerprint(), **parts}, indent=1, sort_keys=True, default=str))
        try:
            os.rename(tmp, entry)
        except OSError:  # another process finished the same entry first
            if not (entry / KEY_FILE).is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    log.info("cached %s", entry)
    return entry, False
