"""GLUE SST-2: the archive step that extracts sst2/train.tsv and dev.tsv from SST-2.zip.

The dataset itself is read like any other (conf/data/sst2.yaml).
"""

from __future__ import annotations

import logging
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from textclass.errors import DataError

log = logging.getLogger(__name__)

ZIP_MEMBERS = {"train.tsv": "SST-2/train.tsv", "dev.tsv": "SST-2/dev.tsv", "test.tsv": "SST-2/test.tsv"}


@dataclass
class GlueArchive:
    url: ClassVar[str] = "https://dl.fbaipublicfiles.com/glue/data/SST-2.zip"
    archive_names: ClassVar[tuple[str, ...]] = ("SST-2.zip",)

    def build(self, archive: Path, root: Path, on_bad_row: str) -> None:
        root.mkdir(parents=True, exist_ok=True)
        try:
            with zipfile.ZipFile(archive) as zf:
                for name, member in ZIP_MEMBERS.items():
                    if member in zf.namelist():
                        (root / name).write_bytes(zf.read(member))
        except zipfile.BadZipFile as err:
            raise DataError(f"{archive}: not a valid zip ({err}); delete it and download again") from None
        log.info("sst2: extracted %s into %s", archive, root)
