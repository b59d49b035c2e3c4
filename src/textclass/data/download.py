"""Fetching dataset archives, for users who are online."""

from __future__ import annotations

import logging
import shutil
import urllib.error
import urllib.request
from pathlib import Path

from textclass.errors import DownloadError

log = logging.getLogger(__name__)

TIMEOUT_S = 30


def download(url: str, dest: Path, manual_hint: str) -> Path:
    """Download `url` to `dest` atomically; offline or failing, say how to get the file by hand.

    A failed download leaves nothing behind, not even the folders it created (a mistyped data dir).
    """
    created = [p for p in (dest.parent, *dest.parent.parents) if not p.exists()]
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_suffix(dest.suffix + ".part")
    log.info("downloading %s -> %s", url, dest)
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response, tmp.open("wb") as f:
            shutil.copyfileobj(response, f)
    except (urllib.error.URLError, OSError, TimeoutError) as err:
        tmp.unlink(missing_ok=True)
        for folder in created:  # deepest first
            try:
                folder.rmdir()
            except OSError:  # something else was put there meanwhile: keep it
                break
        missing_root = f" (the folder {created[-1]} did not exist: is the data directory right?)" if created else ""
        raise DownloadError(
            f"could not download {url} ({getattr(err, 'reason', err)}); are you offline?{missing_root} "
            f"{manual_hint}"
        ) from None
    tmp.replace(dest)
    return dest
