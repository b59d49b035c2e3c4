"""Opening an Optuna storage the same way in the sweeper and in its jobs: SQLite or PostgreSQL."""

from __future__ import annotations

import importlib.util
import time

import optuna
import sqlalchemy.exc
from sqlalchemy.engine import make_url

from textclass.errors import ConfigError

SCHEMA_RACE_RETRIES = 5
SCHEMA_RACE_WAIT_S = 0.5
CONNECT_TIMEOUT_S = 10
# what a dropped database connection raises from inside Optuna (a commit) or from SQLAlchemy (a query)
STORAGE_ERRORS = (optuna.exceptions.StorageInternalError, sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError)
POSTGRES_EXTRA = "pip install 'textclass[postgres]'"
# what a driver's message says, and what to do about it
POSTGRES_HINTS = (
    ("password", "check the user and password (in the URL, PGPASSWORD or ~/.pgpass)"),
    ("does not exist", "create the database first, e.g. `createdb -h HOST -U USER DBNAME`, or name an existing one"),
    ("resolve host", "check the host name"),
    ("translate host name", "check the host name"),
    ("connection refused", "is the server running and listening on that host and port (listen_addresses, port)?"),
    ("timeout expired", "is the host reachable and the server listening (firewall, listen_addresses)?"),
    ("no pg_hba.conf entry", "allow this host, user and database in the server's pg_hba.conf"),
)


# one storage per URL in a process, see open_storage
_OPENED: dict[str, optuna.storages.RDBStorage] = {}


def open_storage(url: str) -> optuna.storages.RDBStorage:
    """An RDB storage (sqlite:///..., postgresql+psycopg://...); SQLite waits for locks instead of failing at once.

    Several processes write to one study: the sweepers asking and telling trials, their heartbeat
    threads, and the jobs reporting epochs for pruning. Processes that open a new database at the
    same moment all try to create its tables; the losers of that race open it again. PostgreSQL
    connections are checked before each use, so a restarted server is reconnected to.

    A process opens each URL once and shares that storage (RDBStorage is thread-safe) between the
    sweeper, its heartbeat thread, its polls of a lost server and the pruning callback of every job it
    runs: each storage holds a pool of connections, and a PostgreSQL server takes ~100 clients in all.
    """
    url = driver_url(url)
    if url not in _OPENED:
        _OPENED[url] = _connect(url)
    return _OPENED[url]


def _connect(url: str) -> optuna.storages.RDBStorage:
    retries = 0
    while True:
        try:
            return optuna.storages.RDBStorage(url, engine_kwargs=engine_options(url))
        except (ImportError, ValueError, sqlalchemy.exc.SQLAlchemyError) as err:
            if not _lost_schema_race(err) or retries == SCHEMA_RACE_RETRIES:
                raise _cannot_open(url, err) from None
            retries += 1
            time.sleep(SCHEMA_RACE_WAIT_S)


def driver_url(url: str) -> str:
    """`postgresql://` names SQLAlchemy's default driver, psycopg2; with only psycopg (3) installed, as
    `textclass[postgres]` installs it, that one is meant."""
    if url.startswith("postgresql://") and not _installed("psycopg2") and _installed("psycopg"):
        return "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return url


def engine_options(url: str) -> dict | None:
    if url.startswith("sqlite"):
        return {"connect_args": {"timeout": 60}}
    if url.startswith("postgresql"):
        return {"pool_pre_ping": True, "connect_args": {"connect_timeout": CONNECT_TIMEOUT_S}}
    return None


def shown_url(url: str) -> str:
    """The URL with its password masked, for messages and logs."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except sqlalchemy.exc.ArgumentError:
        return url


def wait_until_reachable(url: str, timeout_s: float, poll_s: float) -> bool:
    """Whether the storage answers a query within `timeout_s` (asked every `poll_s` seconds)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            open_storage(url).get_all_studies()
            return True
        except (ConfigError, *STORAGE_ERRORS):
            if time.monotonic() > deadline:
                return False
            time.sleep(poll_s)


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def _lost_schema_race(err: Exception) -> bool:
    """Another process created a table, or inserted the schema version row, first: SQLite says so in
    an OperationalError, PostgreSQL in a ProgrammingError (DuplicateTable) or an IntegrityError."""
    return isinstance(err, sqlalchemy.exc.IntegrityError) or (
        isinstance(err, (sqlalchemy.exc.OperationalError, sqlalchemy.exc.ProgrammingError)) and "already exists" in str(err)
    )


def _cannot_open(url: str, err: Exception) -> ConfigError:
    shown = shown_url(url)
    if url.startswith("postgresql"):
        if isinstance(err, (ImportError, sqlalchemy.exc.NoSuchModuleError)):
            return ConfigError(f"hydra.sweeper.storage={shown}: no PostgreSQL driver ({err}); {POSTGRES_EXTRA} and use postgresql+psycopg://user@host:port/dbname")
        reason = _driver_message(err)
        hint = next((h for needle, h in POSTGRES_HINTS if needle in reason.lower()), "check the URL: postgresql+psycopg://user@host:port/dbname")
        return ConfigError(f"hydra.sweeper.storage={shown}: cannot connect ({reason}); {hint}")
    return ConfigError(
        f"hydra.sweeper.storage={shown}: cannot open it ({type(err).__name__}: {err}); use sqlite:///<file> or "
        f"postgresql+psycopg://user@host:port/dbname (with {POSTGRES_EXTRA})"
    )


def _driver_message(err: Exception) -> str:
    """The database driver's own words, on one line, without SQLAlchemy's background link."""
    original = getattr(err, "orig", None) or err
    return " ".join(str(original).split())
