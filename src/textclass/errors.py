"""User-facing errors: each carries one message that names the file, key or value and the fix."""


class TextclassError(Exception):
    """Base of every error a user can cause and fix; the CLI prints it without a traceback."""


class ConfigError(TextclassError):
    """An invalid or incompatible configuration value."""


class DataError(TextclassError):
    """Missing, unreadable or malformed dataset files."""


class EmbeddingError(TextclassError):
    """Missing, corrupt or mismatched pretrained vectors."""


class DownloadError(TextclassError):
    """A download that could not be done (typically: offline)."""


def find_user_error(err: BaseException) -> TextclassError | None:
    """The TextclassError behind `err`, also when Hydra's instantiate wrapped it."""
    seen = set()
    while err is not None and id(err) not in seen:
        if isinstance(err, TextclassError):
            return err
        seen.add(id(err))
        err = err.__cause__ or err.__context__
    return None
