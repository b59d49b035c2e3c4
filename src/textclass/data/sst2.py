"""GLUE SST-2: binary sentiment of movie-review sentences (pre-tokenized, lowercased)."""

from __future__ import annotations

import logging
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from textclass.data.base import TsvDataset
from textclass.errors import DataError

log = logging.getLogger(__name__)

ZIP_MEMBERS = {"train.tsv": "SST-2/train.tsv", "dev.tsv": "SST-2/dev.tsv", "test.tsv": "SST-2/test.tsv"}


@dataclass
class SST2(TsvDataset):
    name: ClassVar[str] = "sst2"
    url: ClassVar[str] = "https://dl.fbaipublicfiles.com/glue/data/SST-2.zip"
    header: ClassVar[tuple[str, str]] = ("sentence", "label")
    text_column: ClassVar[str] = "sentence"
    label_column: ClassVar[str] = "label"
    label_codes: ClassVar[tuple[str, ...]] = ("0", "1")
    class_names: ClassVar[tuple[str, ...]] = ("negative", "positive")
    # GLUE's test.tsv has no labels: it serves prediction, never the test stage.
    split_file_names: ClassVar[dict[str, str]] = {"train": "train.tsv", "valid": "dev.tsv"}
    archive_names: ClassVar[tuple[str, ...]] = ("SST-2.zip",)
    pretokenized: ClassVar[bool] = True
    predict_file: ClassVar[tuple[str, tuple[str, ...], str]] = ("test.tsv", ("index", "sentence"), "sentence")
    missing_test_reason: ClassVar[str] = (
        "GLUE keeps the SST-2 test labels hidden (its test.tsv is for prediction only); "
        "evaluate on the valid split (dev.tsv)"
    )

    def build_splits(self, archive: Path) -> None:
        self.root_path.mkdir(parents=True, exist_ok=True)
        try:
            with zipfile.ZipFile(archive) as zf:
                for name, member in ZIP_MEMBERS.items():
                    if member in zf.namelist():
                        (self.root_path / name).write_bytes(zf.read(member))
        except zipfile.BadZipFile as err:
            raise DataError(f"{archive}: not a valid zip ({err}); delete it and download again") from None
        log.info("sst2: extracted %s into %s", archive, self.root_path)
