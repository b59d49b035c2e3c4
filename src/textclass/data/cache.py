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
import socket
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from textclass.errors import DataError

log = logging.getLogger(__name__)

KEY_FILE = "key.json"
TMP_PREFIX = ".tmp-"
FOREIGN_ORPHAN_AGE_S = 24 * 3600
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


def remove_orphans(root: Path) -> None:
    """Delete the build directories that killed processes left behind (`.tmp-<prefix>.<pid>.<id>@<host>`).

    On this host a build is an orphan once its process is gone; another host's (a shared cache)
    only once it is a day old, since its process cannot be checked from here.
    """
    host = socket.gethostname()
    for tmp in root.glob(f"{TMP_PREFIX}*"):
        rest, _, tmp_host = tmp.name.rpartition("@")
        pid = rest.rsplit(".", 2)[-2] if rest.count(".") >= 2 else ""
        if tmp_host == host and pid.isdigit():
            orphan = not process_alive(int(pid))
        else:
            try:
                orphan = time.time() - tmp.stat().st_mtime > FOREIGN_ORPHAN_AGE_S
            except FileNotFoundError:  # finished meanwhile
                continue
        if orphan:
            log.info("removing %s, left by an interrupted cache build", tmp)
            shutil.rmtree(tmp, ignore_errors=True)


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def cached_dir(root: Path, prefix: str, parts: dict, build: Callable[[Path], None]) -> tuple[Path, bool]:
    """The entry for `parts` under `root`, built by `build(tmp_dir)` on a miss. Returns (dir, hit)."""
    entry = root / f"{prefix}-{cache_key(parts)}"
    if (entry / KEY_FILE).is_file():
        return entry, True
    root.mkdir(parents=True, exist_ok=True)
    remove_orphans(root)
    tmp = root / f"{TMP_PREFIX}{prefix}.{os.getpid()}.{uuid.uuid4().hex[:8]}@{socket.gethostname()}"
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
    log.debug("cached %s", entry)
    return entry, False


def content_digest(path: Path, memo_root: Path) -> str:
    """sha256 of a file's bytes (a directory: of its files' names and bytes).

    Remembered under `memo_root` by (path, size, mtime, inode), so a second run does not read the
    file again, while a file rewritten with the same size (another mtime or inode) is hashed anew.
    """
    given, path = path, path.resolve()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    stats = [(str(p), s.st_size, s.st_mtime_ns, s.st_ino) for p in files for s in [p.stat()]]
    memo = memo_root / "digests" / (hashlib.sha256(json.dumps(stats).encode()).hexdigest()[:24] + ".txt")
    if memo.is_file():
        return memo.read_text().strip()
    digest = hashlib.sha256()
    for p in files:
        digest.update(str(p.relative_to(path)).encode() if path.is_dir() else b"")
        try:
            with p.open("rb") as f:
                digest.update(hashlib.file_digest(f, "sha256").digest())
        except OSError as err:
            shown = p if path.is_dir() else given  # the name the user gave, not where a link leads
            raise DataError(f"cannot read data file {shown} ({err.strerror or err}); check the file and its permissions") from None
    value = digest.hexdigest()
    memo.parent.mkdir(parents=True, exist_ok=True)
    tmp = memo.with_name(f"{TMP_PREFIX}{memo.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}")
    tmp.write_text(value)
    tmp.replace(memo)
    return value
