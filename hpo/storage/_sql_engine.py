"""The SQL store's database: URL checks and masking, the SQLAlchemy engine (SQLite pragmas,
BEGIN issued by hand), transactions, driver errors turned into StorageError, and the study's
turn to propose (a PostgreSQL advisory lock or a ``flock`` next to a SQLite file)."""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event, exc
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import StaticPool

from hpo.exceptions import StorageError
from hpo.storage import _migrate

__all__ = ["_Database", "_normalise_url", "mask_url"]

log = logging.getLogger("hpo")

_URL_HELP = "use sqlite:///path/to/file.db or postgresql://user@host:5432/dbname"


def mask_url(url: str) -> str:
    """The text with the password of every URL in it replaced by ***, for messages and logs:
    ``user:p@ss@host`` (an unencoded @ in the password) and a ``password=`` query too."""
    url = re.sub(r"(://[^:/?#@\s]*:)[^/?#\s]*@", r"\1***@", url)
    return re.sub(r"(?i)([?&](?:password|passwd|pwd)=)[^&#\s]*", r"\1***", url)


def _normalise_url(url: str) -> str:
    if not isinstance(url, str) or "://" not in url:
        raise StorageError(f"storage URL {url!r} is not a URL: {_URL_HELP}.")
    scheme = url.split("://", 1)[0]
    base = scheme.split("+", 1)[0]
    if base not in {"sqlite", "postgresql", "postgres", "mysql", "mariadb"}:
        raise StorageError(f"storage URL scheme {scheme!r} is not supported: {_URL_HELP}.")
    if base == "postgres":
        url = "postgresql" + url[len(scheme) :]
        scheme = "postgresql"
    # SQLAlchemy's default PostgreSQL driver is psycopg2; hpo depends on psycopg (3).
    if scheme == "postgresql" and importlib.util.find_spec("psycopg2") is None:
        url = "postgresql+psycopg" + url[len("postgresql") :]
    return url


def _sqlite_path(url: str) -> str | None:
    rest = url.split("://", 1)[1]
    if rest in {"", "/", "/:memory:"}:
        return None
    return rest[1:] if rest.startswith("/") else rest


# The advisory-lock space of hpo's proposal turns (two int4 keys: this class, the study id).
_LOCK_CLASS = 0x68706F  # "hpo"


@contextlib.contextmanager
def _file_turn(path: str | None, timeout: float) -> Iterator[None]:
    """An exclusive ``flock`` on the file ``path`` (made when missing), waited for up to
    ``timeout`` seconds. Never the database file itself: closing any descriptor of a file
    drops every POSIX lock this process holds on it, SQLite's own included."""
    try:
        import fcntl
    except ImportError:  # not on a POSIX system: no turn
        yield
        return
    fd = None
    if path is not None:
        with contextlib.suppress(OSError):  # a read-only folder: no turn (nobody can write)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        if fd is not None:
            deadline = time.monotonic() + timeout
            delay = 0.001
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except OSError:
                    if time.monotonic() >= deadline:
                        log.warning("proposing without the study's turn: %s is locked", path)
                        os.close(fd)
                        fd = None
                        break
                    time.sleep(delay)
                    delay = min(delay * 2, 0.01)
        yield
    finally:
        if fd is not None:
            os.close(fd)  # closing the file lets go of the lock


@contextlib.contextmanager
def _errors(url: str, doing: str) -> Iterator[None]:
    """Turn SQLAlchemy/driver errors into one StorageError sentence (the one place we do)."""
    try:
        yield
    except exc.OperationalError as e:
        reason = str(e.orig).strip().splitlines()[0] if e.orig is not None else str(e)
        raise StorageError(
            f"cannot {doing} in storage {mask_url(url)!r}: {reason} "
            "(is the database running and the URL right?)"
        ) from e
    except exc.ArgumentError as e:
        raise StorageError(f"storage URL {mask_url(url)!r} is invalid ({e}): {_URL_HELP}.") from e
    except exc.NoSuchModuleError as e:
        raise StorageError(
            f"storage URL {mask_url(url)!r} needs a database driver that is not installed ({e})."
        ) from e
    except (exc.InterfaceError, exc.DatabaseError) as e:
        raise StorageError(f"cannot {doing} in storage {mask_url(url)!r}: {e.orig or e}") from e


class _Database:
    """The connection half of :class:`hpo.storage.SQLStore`: opens the engine on a URL (and
    creates or upgrades the schema), hands out transactions, and takes the proposal turn."""

    def __init__(self, url: str | None = None) -> None:
        self._lock: threading.RLock | None = None
        if url is None:
            self.url = "sqlite://"
            self._engine = sa.create_engine(
                "sqlite://",
                poolclass=StaticPool,
                connect_args={"check_same_thread": False},
            )
            # One shared in-memory connection: serialise threads on it.
            self._lock = threading.RLock()
            self._propose_lock = threading.Lock()
            self._setup_sqlite(self._engine)
        else:
            self.url = _normalise_url(url)
            with _errors(self.url, "open the database"):
                if self.url.startswith("sqlite"):
                    path = _sqlite_path(self.url)
                    if path is not None:
                        parent = Path(path).expanduser().resolve().parent
                        if not parent.is_dir():
                            raise StorageError(
                                f"storage {url!r}: folder {str(parent)!r} does not exist; "
                                "create it or choose another path."
                            )
                    self._engine = sa.create_engine(
                        self.url, connect_args={"timeout": 60}, pool_pre_ping=False
                    )
                    self._setup_sqlite(self._engine, wal=path is not None)
                else:
                    self._engine = sa.create_engine(
                        self.url, pool_pre_ping=True, pool_size=4, max_overflow=4
                    )
        with _errors(self.url, "open the database"):
            _migrate.upgrade(self._engine)

    @staticmethod
    def _setup_sqlite(engine: Engine, wal: bool = False) -> None:
        # pysqlite's own transaction handling defers BEGIN and upgrades locks mid-transaction,
        # which deadlocks concurrent writers. We issue BEGIN ourselves: IMMEDIATE for writes.
        @event.listens_for(engine, "connect")
        def _connect(dbapi_conn: Any, _rec: Any) -> None:
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=60000")
            if wal:
                cur.execute("PRAGMA journal_mode=WAL")
                cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        @event.listens_for(engine, "begin")
        def _begin(conn: Connection) -> None:
            write = conn.get_execution_options().get("hpo_write", False)
            conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    # -- plumbing ------------------------------------------------------------------------
    @contextlib.contextmanager
    def _tx(self, doing: str, write: bool = False) -> Iterator[Connection]:
        lock = self._lock or contextlib.nullcontext()
        with lock, _errors(self.url, doing), self._engine.connect() as conn:
            if write:
                conn = conn.execution_options(hpo_write=True)
            with conn.begin():
                yield conn

    def close(self) -> None:
        self._engine.dispose()

    @contextlib.contextmanager
    def proposal_lock(self, study_id: int, *, timeout: float) -> Iterator[None]:
        """PostgreSQL: a transaction-level advisory lock on a connection of its own (the
        server lets go when the holder's connection drops). A SQLite file: ``flock`` on
        ``FILE.hpo-turn`` next to it (the kernel lets go when the holder dies). In-memory
        SQLite: a lock of this process."""
        if self.url.startswith("postgresql"):
            with self._pg_turn(study_id, timeout):
                yield
        elif self._lock is not None:  # in memory: one process
            with self._propose_lock:
                yield
        else:
            db = _sqlite_path(self.url)
            with _file_turn(None if db is None else db + ".hpo-turn", timeout):
                yield

    @contextlib.contextmanager
    def _pg_turn(self, study_id: int, timeout: float) -> Iterator[None]:
        conn = None
        try:
            with _errors(self.url, "wait for the turn to propose"):
                conn = self._engine.connect()
                conn.begin()
                conn.exec_driver_sql(f"SET LOCAL lock_timeout = {int(timeout * 1000)}")
                conn.execute(
                    sa.text("SELECT pg_advisory_xact_lock(:k1, :k2)"),
                    {"k1": _LOCK_CLASS, "k2": study_id},
                )
        except StorageError as e:  # a holder that hangs: go on without the turn
            log.warning("proposing without the study's turn: %s", e)
            if conn is not None:
                with contextlib.suppress(Exception):
                    conn.close()
            conn = None
        try:
            yield
        finally:
            if conn is not None:
                with contextlib.suppress(Exception):
                    conn.rollback()  # ends the transaction: the lock goes with it
                conn.close()
