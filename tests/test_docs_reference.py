"""The generated reference pages (docs/reference/configuration.md, commands.md) match the config tree:
a changed key, default or comment in src/textclass/conf/ needs the pages written again."""

from __future__ import annotations

import importlib.util
import sys

from helpers.paths import REPO


def test_generated_reference_pages_are_up_to_date() -> None:
    spec = importlib.util.spec_from_file_location("gen_reference", REPO / "docs" / "gen_reference.py")
    gen_reference = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = gen_reference  # its dataclasses look their module up there
    try:
        spec.loader.exec_module(gen_reference)
        stale = gen_reference.stale_pages()
    finally:
        del sys.modules[spec.name]
    assert not stale, f"{', '.join(stale)} out of date: run `.venv/bin/python docs/gen_reference.py`"
