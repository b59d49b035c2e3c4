"""The documentation site builds with `mkdocs build --strict` (no broken link, no page left out of
the navigation), and the README stays a page."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from helpers.paths import REPO

README_LIMIT = 15 * 1024


def test_the_readme_fits_on_a_page():
    assert len((REPO / "README.md").read_bytes()) <= README_LIMIT


def test_mkdocs_build_strict(tmp_path: Path):
    pytest.importorskip("mkdocs", reason="the docs extra (pip install -e '.[docs]') is not installed")
    mkdocs = Path(sys.executable).parent / "mkdocs"
    command = [str(mkdocs)] if mkdocs.is_file() else [shutil.which("mkdocs") or "mkdocs"]
    done = subprocess.run([*command, "build", "--strict", "--site-dir", str(tmp_path / "site")], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    pages = sorted(p.relative_to(REPO / "docs").with_suffix("") for p in (REPO / "docs").rglob("*.md"))
    missing = [str(page) for page in pages if not (tmp_path / "site" / (page.parent if page.name == "index" else page) / "index.html").is_file()]
    assert len(pages) >= 20 and missing == []
