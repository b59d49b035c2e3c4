"""Where things are: the checkout, the config tree textclass ships and the real data (with the
`real_data` marker, whose tests conftest skips, saying why, when the data is absent)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from textclass.config.compose import CONFIG_DIR

REPO = Path(__file__).resolve().parents[2]
CONF = Path(CONFIG_DIR)  # the config tree textclass ships (src/textclass/conf)
# The real data: TEXTCLASS_DATA_DIR when set, else ../shared/data beside the checkout.
REAL_DATA = Path(os.environ.get("TEXTCLASS_DATA_DIR") or REPO.parent / "shared" / "data").resolve()
HAVE_REAL_DATA = (REAL_DATA / "sst2" / "train.tsv").is_file() and (REAL_DATA / "news" / "train.tsv").is_file()
REAL_DATA_MISSING = f"real data not found at {REAL_DATA} (set TEXTCLASS_DATA_DIR to the folder holding sst2/ and news/)"

# The marker (select with -m real_data); pytest_collection_modifyitems skips its tests when the data is absent.
real_data = pytest.mark.real_data
