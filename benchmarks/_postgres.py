"""A throwaway PostgreSQL server on localhost, for the tests and benchmarks of the PostgreSQL-backed search.

    with LocalPostgres.start() as server:       # initdb into a temporary folder, pg_ctl start on a free port
        url = server.url()                     # postgresql+psycopg://textclass:<password>@127.0.0.1:<port>/textclass
        server.restart()                       # pg_ctl restart (fast shutdown: sessions are cut); down_s=5: an outage
    # stopped, and its folder removed

The binaries are looked up on PATH, then in Debian's /usr/lib/postgresql/<version>/bin (the
`postgresql` package). PostgreSQL refuses to run as root: as root the server runs as the `postgres`
account the Debian package creates (through `runuser`). `unavailable()` says why a server cannot be
started here, or returns None.
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

USER = "textclass"  # the server's superuser, who owns the database
DATABASE = "textclass"
SERVER_ACCOUNT = "postgres"  # the OS account that runs the server when we are root
START_TIMEOUT_S = 60


def binaries() -> Path | None:
    """The folder holding initdb and pg_ctl: on PATH, else the newest /usr/lib/postgresql/*/bin."""
    on_path = shutil.which("initdb")
    if on_path and shutil.which("pg_ctl"):
        return Path(on_path).resolve().parent
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0)
    return versions[-1].parent if versions else None


def unavailable() -> str | None:
    """Why no throwaway server can be started here, or None."""
    if binaries() is None:
        return "PostgreSQL binaries (initdb, pg_ctl) not found on PATH or in /usr/lib/postgresql/*/bin: `apt-get install postgresql` (.ci/setup does)"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(SERVER_ACCOUNT)
        except KeyError:
            return f"running as root and there is no {SERVER_ACCOUNT!r} account to run PostgreSQL as (PostgreSQL refuses root)"
    if shutil.which("runuser") is None and os.geteuid() == 0:
        return "running as root without `runuser` to start PostgreSQL as another account"
    if importlib.util.find_spec("psycopg") is None:
        return "psycopg (PostgreSQL driver) not installed: pip install 'textclass[postgres]'"
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class LocalPostgres:
    root: Path  # holds data/ (the cluster), server.log and the socket
    port: int
    password: str

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def log_file(self) -> Path:
        return self.root / "server.log"

    def url(self, database: str = DATABASE, *, password: str | None = None, host: str = "127.0.0.1", driver: str = "psycopg",
            with_password: bool = True) -> str:
        """`with_password=False`: for clients that read it from PGPASSWORD or ~/.pgpass."""
        secret = f":{password or self.password}" if with_password else ""
        return f"postgresql+{driver}://{USER}{secret}@{host}:{self.port}/{database}"

    @classmethod
    def start(cls) -> LocalPostgres:
        reason = unavailable()
        if reason:
            raise RuntimeError(reason)
        root = Path(tempfile.mkdtemp(prefix="textclass-pg-"))
        server = cls(root, free_port(), secrets.token_hex(8))
        try:
            server._init()
            server._start()
            server.create_database(DATABASE)
        except BaseException:
            server.stop()
            raise
        return server

    def _init(self) -> None:
        password_file = self.root / "password"
        password_file.write_text(self.password + "\n")
        if os.geteuid() == 0:
            account = pwd.getpwnam(SERVER_ACCOUNT)
            os.chown(self.root, account.pw_uid, account.pw_gid)
            os.chown(password_file, account.pw_uid, account.pw_gid)
        self._run("initdb", "-D", str(self.data_dir), "-U", USER, f"--pwfile={password_file}", "--auth-host=scram-sha-256", "--auth-local=trust", "-E", "UTF8", "--no-sync")

    def create_database(self, name: str) -> None:
        import psycopg

        with psycopg.connect(host="127.0.0.1", port=self.port, user=USER, password=self.password, dbname="postgres", autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')

    def restart(self, down_s: float = 0) -> None:
        """A fast restart: open sessions are cut, committed data stays; with `down_s`, the server stays
        down that long in between (an outage rather than a blip)."""
        # -l: the new server's output to the log, not to our pipe (which would then never close)
        if not down_s:
            self._pg_ctl("restart", "-m", "fast", "-l", str(self.log_file))
            return
        self._pg_ctl("stop", "-m", "fast")
        time.sleep(down_s)
        self._start()

    def _start(self) -> None:
        self._pg_ctl("start", "-o", f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1", "-l", str(self.log_file))

    def stop(self) -> None:
        if (self.data_dir / "postmaster.pid").exists():
            self._pg_ctl("stop", "-m", "immediate", check=False)
        shutil.rmtree(self.root, ignore_errors=True)

    def _pg_ctl(self, *args: str, check: bool = True) -> None:
        self._run("pg_ctl", "-D", str(self.data_dir), "-w", "-t", str(START_TIMEOUT_S), *args, check=check)

    def _run(self, program: str, *args: str, check: bool = True) -> None:
        command = [str(binaries() / program), *args]
        if os.geteuid() == 0:
            command = ["runuser", "-u", SERVER_ACCOUNT, "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, cwd=self.root)
        if check and result.returncode != 0:
            log = self.log_file.read_text()[-2000:] if self.log_file.exists() else ""
            raise RuntimeError(f"{program} {' '.join(args)} failed ({result.returncode}): {result.stderr[-2000:]}{log}")

    def __enter__(self) -> LocalPostgres:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
