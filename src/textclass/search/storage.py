"""Opening an Optuna storage the same way in the sweeper and in its jobs."""

from __future__ import annotations

import time

import optuna
import sqlalchemy.exc

from textclass.errors import ConfigError

SCHEMA_RACE_RETRIES = 5
SCHEMA_RACE_WAIT_S = 0.5


def open_storage(url: str) -> optuna.storages.RDBStorage:
    """An RDB storage (sqlite:///..., postgresql://...); SQLite waits for locks instead of failing at once.

    Several processes write to one study: the sweepers asking and telling trials, their heartbeat
    threads, and the jobs reporting epochs for pruning. Processes that open a new database at the
    same moment all try to create its tables; the losers of that race open it again.
    """
    engine_kwargs = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else None
    retries = 0
    while True:
        try:
            return optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs)
        except (ImportError, ValueError, sqlalchemy.exc.SQLAlchemyError) as err:
            if not _lost_schema_race(err) or retries == SCHEMA_RACE_RETRIES:
                raise _cannot_open(url, err) from None
            retries += 1
            time.sleep(SCHEMA_RACE_WAIT_S)


def _lost_schema_race(err: Exception) -> bool:
    """Another process created a table, or inserted the schema version row, first."""
    return isinstance(err, sqlalchemy.exc.IntegrityError) or (
        isinstance(err, sqlalchemy.exc.OperationalError) and "already exists" in str(err)
    )


def _cannot_open(url: str, err: Exception) -> ConfigError:
    return ConfigError(
        f"hydra.sweeper.storage={url}: cannot open it ({type(err).__name__}: {err}); use sqlite:///<file> or "
        "postgresql://user:password@host/db (with `pip install psycopg2-binary`)"
    )
