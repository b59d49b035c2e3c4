"""What every dataset shares: split files on disk, built from an archive that is local or downloaded."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from textclass.data.download import download
from textclass.data.tsv import LabeledTexts, SkippedRows, check_bad_row_policy, check_data_file, read_labeled_tsv, read_texts_tsv
from textclass.errors import DataError

SPLITS = ("train", "valid", "test")


@dataclass
class TsvDataset:
    """A labeled text dataset stored as one TSV file per split under `root`.

    Subclasses name their files and archive and know how to build the split files from it.
    """

    root: str
    download: bool = True
    on_bad_row: str = "error"

    name: ClassVar[str]
    url: ClassVar[str]
    header: ClassVar[tuple[str, str]]
    text_column: ClassVar[str]
    label_column: ClassVar[str]
    label_codes: ClassVar[tuple[str, ...]]  # the file's label values, in class-id order
    class_names: ClassVar[tuple[str, ...]]
    split_file_names: ClassVar[dict[str, str]]  # split -> file name; train and valid are required
    archive_names: ClassVar[tuple[str, ...]]  # local sources accepted, in order of preference
    pretokenized: ClassVar[bool] = False  # texts are already space-separated tokens
    missing_test_reason: ClassVar[str]
    # texts to predict when none are given: file name, its header, its text column
    predict_file: ClassVar[tuple[str, tuple[str, ...], str]]

    def __post_init__(self) -> None:
        check_bad_row_policy(self.on_bad_row)

    @property
    def root_path(self) -> Path:
        return Path(self.root).expanduser()

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def split_path(self, split: str) -> Path:
        return self.root_path / self.split_file_names[split]

    def available_splits(self) -> list[str]:
        # lexists: a split that is a directory or a dangling link is reported when read, not ignored
        return [s for s in SPLITS if s in self.split_file_names and os.path.lexists(self.split_path(s))]

    def prepare(self) -> None:
        """Make sure the split files exist: build them from a local archive, or download one."""
        for split in self.split_file_names:
            if os.path.lexists(self.split_path(split)):
                check_data_file(self.split_path(split))
        if self._has_required_splits():
            return
        archive = next((self.root_path / n for n in self.archive_names if (self.root_path / n).exists()), None)
        if archive is None:
            if not self.download:
                raise DataError(self._missing_message() + " (download is off: data.dataset.download=false)")
            archive = download(self.url, self.root_path / self.archive_names[-1], self._manual_hint())
        self.build_splits(archive)
        if not self._has_required_splits():
            raise DataError(f"building {self.name} from {archive} did not produce {self._required_files()}")

    def read(self, split: str) -> tuple[LabeledTexts, SkippedRows]:
        if split not in self.available_splits():
            if split == "test":
                raise DataError(f"{self.name} has no test split: {self.missing_test_reason}")
            raise DataError(self._missing_message())
        return self.read_file(self.split_path(split))

    def read_file(self, path: Path) -> tuple[LabeledTexts, SkippedRows]:
        """A labeled TSV in this dataset's format (header, columns, label codes)."""
        label_ids = {code: i for i, code in enumerate(self.label_codes)}
        return read_labeled_tsv(path, self.header, self.text_column, self.label_column, label_ids, self.on_bad_row)

    def read_predict_texts(self) -> list[str]:
        name, header, text_column = self.predict_file
        path = self.root_path / name
        if not path.is_file():
            raise DataError(f"{self.name}: nothing to predict: {path} does not exist; give the texts to predict instead")
        return read_texts_tsv(path, header, text_column)

    def fingerprint(self) -> dict:
        """Everything about the source files that decides what `read` returns (for cache keys)."""
        files = {}
        for split in self.available_splits():
            stat = self.split_path(split).stat()
            files[split] = [str(self.split_path(split).resolve()), stat.st_size, stat.st_mtime_ns]
        return {"dataset": self.name, "on_bad_row": self.on_bad_row, "files": files}

    def build_splits(self, archive: Path) -> None:
        raise NotImplementedError

    def _required_files(self) -> list[Path]:
        return [self.split_path("train"), self.split_path("valid")]

    def _has_required_splits(self) -> bool:
        return all(p.is_file() for p in self._required_files())

    def _manual_hint(self) -> str:
        return (
            f"Download {self.url} on a machine with internet and put it at "
            f"{self.root_path / self.archive_names[-1]}, or point TEXTCLASS_DATA_DIR (or paths.data_dir) "
            f"at a directory whose {self.root_path.name}/ holds {' and '.join(p.name for p in self._required_files())}."
        )

    def _missing_message(self) -> str:
        wanted = " and ".join(str(p) for p in self._required_files())
        return (
            f"{self.name} data not found: expected {wanted}, or one of "
            f"{', '.join(self.archive_names)} in {self.root_path}. Either run online with "
            f"data.dataset.download=true to fetch {self.url}, or set TEXTCLASS_DATA_DIR "
            f"(or paths.data_dir) to a directory that contains {self.root_path.name}/"
            f"{self.split_file_names['train']}"
        )
