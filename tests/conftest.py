"""Shared fixtures: tiny datasets written per test, and the location of the real data."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from textclass.cli import CONFIG_DIR

REPO = Path(__file__).resolve().parents[1]
CONF = Path(CONFIG_DIR)  # the config tree textclass ships (src/textclass/conf)
# The real data: TEXTCLASS_DATA_DIR when set, else ../shared/data beside the checkout.
REAL_DATA = Path(os.environ.get("TEXTCLASS_DATA_DIR") or REPO.parent / "shared" / "data").resolve()
HAVE_REAL_DATA = (REAL_DATA / "sst2" / "train.tsv").is_file() and (REAL_DATA / "news" / "train.tsv").is_file()

real_data = pytest.mark.skipif(
    not HAVE_REAL_DATA,
    reason=f"real data not found at {REAL_DATA} (set TEXTCLASS_DATA_DIR to the folder holding sst2/ and news/)",
)

NEWS_ROWS = [
    ("b", "Fed raises interest rates as inflation climbs"),
    ("b", "Stocks rally after strong earnings reports"),
    ("b", "Oil prices fall on weak demand, Fed warns"),
    ("t", "Apple unveils new iPhone with faster chip"),
    ("t", "Google tests self-driving cars in California"),
    ("e", "Kim Kardashian shows off new look at the Oscars"),
    ("e", "New Star Wars movie breaks box office records"),
    ("e", "Justin Bieber cancels concert tour"),
    ("m", "Ebola outbreak spreads in West Africa, WHO says"),
    ("m", "New study links sugar to heart disease"),
]
SST2_ROWS = [
    ("hide new secretions from the parental units ", "0"),
    ("contains no wit , only labored gags ", "0"),
    ("that loves its characters and communicates something rather beautiful about human nature ", "1"),
    ("remains utterly satisfied to remain the same throughout ", "0"),
    ("a gorgeous , witty , seductive movie . ", "1"),
    ("the movie is n't good ", "0"),
    ("an utterly charming and hilarious film ", "1"),
    ("xyzzyq plugh ", "1"),  # no word in GloVe: dropped when unknown words are dropped
]


def write_tsv(path: Path, header: str, rows: list[tuple[str, str]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(header + "\n" + "".join("\t".join(r) + "\n" for r in rows), encoding="utf-8")
    return path


def write_tiny_data(root: Path) -> Path:
    """`root` as a data root with tiny news (train/valid/test) and SST-2 (train/dev) splits."""
    write_tsv(root / "news" / "train.tsv", "category\ttitle", NEWS_ROWS * 3)
    write_tsv(root / "news" / "valid.tsv", "category\ttitle", NEWS_ROWS)
    write_tsv(root / "news" / "test.tsv", "category\ttitle", NEWS_ROWS[::2])
    write_tsv(root / "sst2" / "train.tsv", "sentence\tlabel", SST2_ROWS * 3)
    write_tsv(root / "sst2" / "dev.tsv", "sentence\tlabel", SST2_ROWS)
    return root


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A data root with tiny news (train/valid/test) and SST-2 (train/dev) splits."""
    return write_tiny_data(tmp_path / "data")


def builtin_dataset(name: str, data_dir: Path | str, *overrides: str):
    """The TextDataset that conf/data/<name>.yaml builds for the data root `data_dir` (the folder
    holding news/ and sst2/), composed and instantiated as textclass-train does; `overrides` as on
    the command line (e.g. "data.dataset.download=false"). A user error raised while instantiating
    comes out as itself, not wrapped in Hydra's InstantiationException."""
    from hydra.utils import instantiate

    from textclass.cli import compose_config
    from textclass.errors import find_user_error

    cfg = compose_config("train", [f"data={name}", f"paths.data_dir={data_dir}", *overrides])
    try:
        return instantiate(cfg.data.dataset, _convert_="all")
    except Exception as err:
        user_error = find_user_error(err)
        if user_error is None:
            raise
        raise user_error from None


def cli_env(data_dir: Path, tmp_path: Path) -> dict[str, str]:
    """Environment for a CLI run on `data_dir`, with a cache private to the test."""
    return {"TEXTCLASS_DATA_DIR": str(data_dir), "TEXTCLASS_CACHE_DIR": str(tmp_path / "cache")}


def run_cli(
    args: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: int = 600, stdin: str | bytes | None = None
) -> subprocess.CompletedProcess:
    """Run a textclass console entry point (e.g. ["textclass-train", ...]) as a user would.

    `stdin` may be bytes (e.g. not UTF-8); stdout and stderr always come back as text.
    """
    script = Path(sys.executable).parent / args[0]
    full_env = {**os.environ, **(env or {})}
    data = (stdin or "").encode() if not isinstance(stdin, bytes) else stdin
    result = subprocess.run([str(script), *args[1:]], cwd=cwd, env=full_env, capture_output=True, timeout=timeout, input=data)
    return subprocess.CompletedProcess(
        result.args, result.returncode, result.stdout.decode("utf-8", "replace"), result.stderr.decode("utf-8", "replace")
    )
