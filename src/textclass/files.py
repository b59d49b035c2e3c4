"""Writing a command's files safely: never half a file, never over an input, never into another run.

Every command that writes (train's checkpoints, predict's output, export's model and its files,
ensemble and compare reports, the loggers' folders) goes through these checks before any work,
so a mistyped path costs one clear error, not a checkpoint or another run's vocabulary.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterable
from pathlib import Path

from textclass.errors import ConfigError
from textclass.run_files import OVERRIDES_FILE, RUN_CONFIG


class WriteError(ConfigError):
    """A file that could not be written (full disk, no permission): what it replaces is kept."""


def write_atomically(path: Path, data: bytes | memoryview) -> None:
    """`path` holds exactly `data`, or, when writing fails, whatever it held before. The bytes go to a
    temporary file of this call's own beside the target (two writers of one path never share it),
    are flushed to disk, and replace the target in one rename."""
    tmp = path.parent / f".{path.name}.{secrets.token_hex(4)}.tmp"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # os.open with 0o666, not mkstemp's 0o600: the file gets the umask's usual permissions
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        kept = f"{path.name} keeps its previous contents" if path.exists() else "nothing was written"
        raise WriteError(f"could not write {path} ({err.strerror or err}); {kept}. Free space in {path.parent} or choose another place") from None


def temporaries_of(path: Path) -> list[Path]:
    """The temporary files of writes to `path` (write_atomically's and temporary_beside's) that still
    exist: another writer's in progress, or one a killed process left."""
    return list(path.parent.glob(f".{path.name}.*.tmp"))


def temporary_beside(path: Path) -> Path:
    """A temporary file name beside `path`, this process's and this call's own."""
    return path.parent / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"


def writable_folder(folder: Path, option: str) -> Path:
    """`folder`, created if missing, checked by writing (and removing) a file in it: a folder that
    cannot be written is one error naming `option`, before any work, not a traceback after it (or a
    library quietly writing elsewhere)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = temporary_beside(folder / "probe")
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as err:
        raise ConfigError(f"{option}={folder}: cannot write there ({err.strerror or err}); choose a folder you can write to") from None
    return folder


def creatable_folder(folder: Path, option: str) -> None:
    """`folder` exists or could be made (its nearest existing ancestor is a folder we may write in),
    checked without creating anything: for the checks that come before a command knows where its
    inputs are (writable_folder makes the folder once every check has passed)."""
    existing = next((p for p in [folder, *folder.parents] if p.exists()), None)
    if existing is not None and not existing.is_dir():
        raise ConfigError(f"{option}={folder}: cannot create the folder, {existing} is a file; choose an output path in a writable folder")
    if existing is not None and not os.access(existing, os.W_OK):
        raise ConfigError(f"{option}={folder}: cannot write in {existing} (no permission); choose an output path in a writable folder")


def enclosing_run(path: Path) -> Path | None:
    """The textclass-train run directory `path` lies in (or is), if any."""
    for folder in [path, *path.parents] if path.is_dir() else path.parents:
        if (folder / RUN_CONFIG).is_file() and (folder / OVERRIDES_FILE).is_file():
            return folder
    return None


def check_output(path: Path, option: str, inputs: Iterable[Path] = (), own_folder: Path | None = None) -> None:
    """A file a command will write (or the folder it fills) is not one of its `inputs`, and does not
    lie in a run directory, except below `own_folder` (export's <run>/export/, a run's own place)."""
    resolved = path.expanduser().resolve()
    for source in inputs:
        if resolved == Path(source).expanduser().resolve():
            raise ConfigError(f"{option}={path} is the file the command reads; writing would destroy it: choose another {option}")
    run = enclosing_run(resolved)
    if run is None:
        return
    if own_folder is not None and resolved.is_relative_to(own_folder.resolve()):
        return
    raise ConfigError(
        f"{option}={path} lies in the run directory {run}, whose files (checkpoints, vocab.json, labels.json) it could replace: "
        f"choose a folder outside any run" + (f" (or leave {option} unset: {own_folder})" if own_folder is not None else "")
    )
