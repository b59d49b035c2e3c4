"""Opening an Optuna storage the same way in the sweeper and in its jobs."""

from __future__ import annotations

import optuna
import sqlalchemy.exc

from textclass.errors import ConfigError


def open_storage(url: str) -> optuna.storages.RDBStorage:
    """An RDB storage (sqlite:///..., postgresql://...); SQLite waits for locks instead of failing at once.

    Several processes write to one study: the sweepers asking and telling trials, their heartbeat
    threads, and the jobs reporting epochs for pruning.
    """
    engine_kwargs = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else None
    try:
        return optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs)
    except (ImportError, ValueError, sqlalchemy.exc.SQLAlchemyError) as err:
        raise ConfigError(
            f"hydra.sweeper.storage={url}: cannot open it ({type(err).__name__}: {err}); use sqlite:///<file> or "
            "postgresql://user:password@host/db (with `pip install psycopg2-binary`)"
        ) from None
