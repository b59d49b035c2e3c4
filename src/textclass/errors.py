"""User-facing errors: each carries one message that names the file, key or value and the fix."""

from __future__ import annotations

from collections.abc import Iterator

from omegaconf.errors import GrammarParseError, InterpolationResolutionError, MissingMandatoryValue, ValidationError


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


class UnsafeRunError(TextclassError):
    """A run directory whose saved config would run code textclass does not trust."""


class TrainingDiverged(TextclassError):
    """A training loss that became nan or infinite; unlike bad input found before training, the run
    directory stays, with the epochs that led there."""


class NothingToDo(Exception):
    """A request that needs no work (resuming a finished run): the CLI says why and exits 0."""


# OmegaConf errors that only a config value can cause: a `???` left unset, an interpolation that
# points nowhere, a value of the wrong type for a typed node.
CONFIG_VALUE_ERRORS = (MissingMandatoryValue, InterpolationResolutionError, GrammarParseError, ValidationError)


def causes(err: BaseException | None) -> Iterator[BaseException]:
    """`err` and the exceptions it was raised from (or while handling), outermost first."""
    seen = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        yield err
        err = err.__cause__ or err.__context__


def find_user_error(err: BaseException) -> TextclassError | None:
    """The TextclassError behind `err` (also when Hydra's instantiate wrapped it), or the
    ConfigError that an OmegaConf error about a config value stands for."""
    for cause in causes(err):
        if isinstance(cause, TextclassError):
            return cause
        if isinstance(cause, CONFIG_VALUE_ERRORS):
            return config_value_error(cause)
    return None


def config_value_error(err: Exception) -> ConfigError:
    key = getattr(err, "full_key", None)
    if isinstance(err, MissingMandatoryValue):
        key = key or "a key"
        return ConfigError(f"{key} has no value (it is ??? in the config): set {key}=... on the command line")
    reason = (getattr(err, "msg", None) or str(err)).splitlines()[0]
    return ConfigError(f"{key + ': ' if key else ''}{reason}; fix that value (or the interpolation it refers to)")
