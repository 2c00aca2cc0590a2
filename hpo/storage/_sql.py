"""SQLStore: the study store on SQLAlchemy 2 (SQLite file, in-memory SQLite, PostgreSQL)."""

from __future__ import annotations

import contextlib
import datetime as _dt
import importlib.util
import logging
import os
import re
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event, exc
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import StaticPool

from hpo.exceptions import DuplicatedStudyError, StorageError, StudyNotFoundError
from hpo.storage import _migrate
from hpo.storage._base import Evaluation, Store, StudyRecord, StudySummary
from hpo.storage._schema import evaluations, studies, trial_values, trials
from hpo.trial import Direction, FrozenTrial, TrialState
from hpo.trial._frozen import INTERRUPTED_ATTR

__all__ = ["SQLStore", "mask_url", "utcnow"]

log = logging.getLogger("hpo")

_URL_HELP = "use sqlite:///path/to/file.db or postgresql://user@host:5432/dbname"


def utcnow() -> _dt.datetime:
    """Naive UTC: SQLite keeps no time zones, so every timestamp in the store is UTC."""
    return _dt.datetime.now(_dt.timezone.utc).replace(tzinfo=None)


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


class SQLStore(Store):
    """Studies and trials in a SQL database through SQLAlchemy 2.

    ``url=None`` keeps everything in memory (one process). ``sqlite:///path.db`` is a file that
    several processes on one machine can share (WAL mode; writers take the lock up front so
    concurrent transactions never deadlock). ``postgresql://...`` serves many machines.
    The schema is created or upgraded (Alembic) when the store opens.
    """

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

    # -- studies -------------------------------------------------------------------------
    @staticmethod
    def _study(row: Any) -> StudyRecord:
        meta = dict(row.meta or {})
        pruner_options = dict(row.pruner_options or {})
        if row.pruner is not None:  # where readers of ``meta`` found it before migration 0003
            meta["pruner"] = {"name": row.pruner, "options": pruner_options}
        return StudyRecord(
            id=row.id,
            name=row.name,
            direction=Direction(row.direction),
            space=MappingProxyType(row.space),
            strategy=row.strategy,
            strategy_options=MappingProxyType(row.strategy_options or {}),
            seed=row.seed,
            created_at=row.created_at.replace(tzinfo=_dt.timezone.utc),
            meta=MappingProxyType(meta),
            user_attrs=MappingProxyType(row.user_attrs or {}),
            pruner=row.pruner,
            pruner_options=MappingProxyType(pruner_options),
        )

    def create_study(
        self,
        *,
        name: str,
        direction: Direction,
        space: Mapping[str, Any],
        strategy: str,
        strategy_options: Mapping[str, Any],
        seed: int,
        meta: Mapping[str, Any],
        pruner: str | None = None,
        pruner_options: Mapping[str, Any] | None = None,
    ) -> StudyRecord:
        try:
            with self._tx("create a study", write=True) as conn:
                conn.execute(
                    studies.insert().values(
                        name=name,
                        direction=direction.value,
                        space=dict(space),
                        strategy=strategy,
                        strategy_options=dict(strategy_options),
                        seed=seed,
                        created_at=utcnow(),
                        # the pruner goes in its columns (the record's meta shows it again)
                        meta={k: v for k, v in meta.items() if pruner is None or k != "pruner"},
                        user_attrs={},
                        pruner=pruner,
                        pruner_options=None if pruner is None else dict(pruner_options or {}),
                    )
                )
        except StorageError as e:
            if isinstance(e.__cause__, exc.IntegrityError):
                raise DuplicatedStudyError(f"a study named {name!r} already exists.") from None
            raise
        except exc.IntegrityError:
            raise DuplicatedStudyError(f"a study named {name!r} already exists.") from None
        return self.get_study(name)

    def get_study(self, name: str) -> StudyRecord:
        with self._tx("read a study") as conn:
            row = conn.execute(sa.select(studies).where(studies.c.name == name)).first()
            if row is None:
                first = sa.select(studies.c.name).order_by(studies.c.id).limit(21)
                known = list(conn.execute(first).scalars())
        if row is None:
            more = ", ..." if len(known) > 20 else ""
            hint = (
                f" Known studies: {', '.join(map(repr, known[:20]))}{more}."
                if known
                else " The store has no studies."
            )
            raise StudyNotFoundError(f"no study named {name!r} in {mask_url(self.url)}.{hint}")
        return self._study(row)

    def list_studies(self) -> list[StudySummary]:
        with self._tx("list studies") as conn:
            rows = conn.execute(sa.select(studies).order_by(studies.c.id)).all()
            counts = conn.execute(
                sa.select(
                    trials.c.study_id,
                    trials.c.state,
                    sa.func.count(),
                    sa.func.min(trials.c.value),
                    sa.func.max(trials.c.value),
                    sa.func.max(sa.func.coalesce(trials.c.finished_at, trials.c.started_at)),
                ).group_by(trials.c.study_id, trials.c.state)
            ).all()
        out = []
        for row in rows:
            rec = self._study(row)
            states: dict[TrialState, int] = {}
            best: float | None = None
            last: _dt.datetime | None = None
            for sid, state, n, vmin, vmax, t in counts:
                if sid != rec.id:
                    continue
                states[TrialState(state)] = n
                if t is not None:
                    t = t.replace(tzinfo=_dt.timezone.utc)
                    last = t if last is None or t > last else last
                if state == TrialState.COMPLETE.value:
                    best = vmin if rec.direction is Direction.MINIMIZE else vmax
            out.append(
                StudySummary(
                    study=rec,
                    n_trials=sum(states.values()),
                    states=MappingProxyType(states),
                    best_value=best,
                    last_activity=last,
                )
            )
        return out

    def delete_study(self, name: str) -> None:
        rec = self.get_study(name)
        with self._tx("delete a study", write=True) as conn:
            ids = sa.select(trials.c.id).where(trials.c.study_id == rec.id)
            conn.execute(trial_values.delete().where(trial_values.c.trial_id.in_(ids)))
            conn.execute(evaluations.delete().where(evaluations.c.study_id == rec.id))
            conn.execute(trials.delete().where(trials.c.study_id == rec.id))
            conn.execute(studies.delete().where(studies.c.id == rec.id))

    # -- trials --------------------------------------------------------------------------
    def get_trials(
        self,
        study_id: int,
        *,
        states: Sequence[TrialState] | None = None,
        min_number: int = 0,
    ) -> list[FrozenTrial]:
        return self._read_trials(study_id, states=states, min_number=min_number)

    def get_trial(self, study_id: int, number: int) -> FrozenTrial | None:
        found = self._read_trials(study_id, number=number)
        return found[0] if found else None

    def _read_trials(
        self,
        study_id: int,
        *,
        states: Sequence[TrialState] | None = None,
        min_number: int = 0,
        number: int | None = None,
    ) -> list[FrozenTrial]:
        q = sa.select(trials).where(trials.c.study_id == study_id)
        if min_number:
            q = q.where(trials.c.number >= min_number)
        if number is not None:
            q = q.where(trials.c.number == number)
        if states is not None:
            q = q.where(trials.c.state.in_([s.value for s in states]))
        q = q.order_by(trials.c.number)
        vq = (
            sa.select(trial_values.c.trial_id, trial_values.c.step, trial_values.c.value)
            .join(trials, trials.c.id == trial_values.c.trial_id)
            .where(trials.c.study_id == study_id)
        )
        if min_number:
            vq = vq.where(trials.c.number >= min_number)
        if number is not None:
            vq = vq.where(trials.c.number == number)
        with self._tx("read trials") as conn:
            rows = conn.execute(q).all()
            values: dict[int, dict[int, float]] = {}
            for tid, step, v in conn.execute(vq):
                values.setdefault(tid, {})[step] = float("nan") if v is None else v
        utc = _dt.timezone.utc
        return [
            FrozenTrial(
                number=r.number,
                state=TrialState(r.state),
                params=MappingProxyType(r.params),
                value=r.value,
                intermediate=MappingProxyType(dict(sorted(values.get(r.id, {}).items()))),
                started_at=r.started_at.replace(tzinfo=utc),
                finished_at=None if r.finished_at is None else r.finished_at.replace(tzinfo=utc),
                error=r.error,
                user_attrs=MappingProxyType(r.user_attrs or {}),
                system_attrs=MappingProxyType({**(r.system_attrs or {}), "trial_id": r.id}),
                trial_id=r.id,
            )
            for r in rows
        ]

    def count_trials(self, study_id: int) -> int:
        with self._tx("count trials") as conn:
            n = conn.execute(
                sa.select(sa.func.count()).select_from(trials).where(trials.c.study_id == study_id)
            ).scalar_one()
        return int(n)

    def add_trial(
        self,
        study_id: int,
        number: int,
        params: Mapping[str, Any],
        *,
        state: TrialState = TrialState.RUNNING,
        system_attrs: Mapping[str, Any] | None = None,
    ) -> int | None:
        now = utcnow()
        try:
            with self._tx("add a trial", write=True) as conn:
                res = conn.execute(
                    trials.insert().values(
                        study_id=study_id,
                        number=number,
                        state=state.value,
                        params=dict(params),
                        started_at=now,
                        heartbeat_at=now,
                        user_attrs={},
                        system_attrs=dict(system_attrs or {}),
                    )
                )
                pk = res.inserted_primary_key
        except StorageError as e:
            if isinstance(e.__cause__, exc.IntegrityError):
                return None  # another process took this number first
            raise
        return None if pk is None else int(pk[0])

    def _running(self, conn: Connection, trial_id: int, doing: str) -> Any:
        row = conn.execute(
            sa.select(
                trials.c.state, trials.c.number, trials.c.user_attrs, trials.c.system_attrs
            ).where(trials.c.id == trial_id)
        ).first()
        if row is None:
            raise StorageError(f"cannot {doing}: trial id {trial_id} does not exist.")
        if row.state != TrialState.RUNNING.value:
            raise StorageError(
                f"cannot {doing}: trial {row.number} has already finished ({row.state})."
            )
        return row

    def report(self, trial_id: int, step: int, value: float) -> None:
        v = None if value != value else float(value)  # NaN is kept as NULL
        with self._tx("report a value", write=True) as conn:
            # The heartbeat update doubles as the "still running?" check: one statement.
            alive = conn.execute(
                trials.update()
                .where(trials.c.id == trial_id, trials.c.state == TrialState.RUNNING.value)
                .values(heartbeat_at=utcnow())
            ).rowcount
            if not alive:
                self._running(conn, trial_id, "report a value")  # raises the precise error
            updated = conn.execute(
                trial_values.update()
                .where(trial_values.c.trial_id == trial_id, trial_values.c.step == step)
                .values(value=v)
            ).rowcount
            if not updated:
                conn.execute(trial_values.insert().values(trial_id=trial_id, step=step, value=v))

    def set_trial_attrs(
        self,
        trial_id: int,
        *,
        user: Mapping[str, Any] | None = None,
        system: Mapping[str, Any] | None = None,
    ) -> None:
        with self._tx("set trial attributes", write=True) as conn:
            row = self._running(conn, trial_id, "set an attribute")
            values: dict[str, Any] = {}
            if user:
                values["user_attrs"] = {**(row.user_attrs or {}), **user}
            if system:
                values["system_attrs"] = {**(row.system_attrs or {}), **system}
            if values:
                conn.execute(trials.update().where(trials.c.id == trial_id).values(**values))

    def annotate_trial(self, trial_id: int, system: Mapping[str, Any]) -> None:
        with self._tx("annotate a trial", write=True) as conn:
            row = conn.execute(
                sa.select(trials.c.system_attrs).where(trials.c.id == trial_id)
            ).first()
            if row is None:
                raise StorageError(f"cannot annotate: trial id {trial_id} does not exist.")
            conn.execute(
                trials.update()
                .where(trials.c.id == trial_id)
                .values(system_attrs={**(row[0] or {}), **system})
            )

    def annotate_study(self, study_id: int, attrs: Mapping[str, Any]) -> None:
        with self._tx("annotate a study", write=True) as conn:
            row = conn.execute(
                sa.select(studies.c.user_attrs).where(studies.c.id == study_id)
            ).first()
            if row is None:
                raise StorageError(f"cannot annotate: study id {study_id} does not exist.")
            conn.execute(
                studies.update()
                .where(studies.c.id == study_id)
                .values(user_attrs={**(row[0] or {}), **attrs})
            )

    def heartbeat(self, trial_ids: Sequence[int]) -> None:
        if not trial_ids:
            return
        with self._tx("record a heartbeat", write=True) as conn:
            conn.execute(
                trials.update()
                .where(trials.c.id.in_(list(trial_ids)), trials.c.state == TrialState.RUNNING.value)
                .values(heartbeat_at=utcnow())
            )

    def finish_trial(
        self,
        trial_id: int,
        state: TrialState,
        *,
        value: float | None = None,
        error: str | None = None,
        system_attrs: Mapping[str, Any] | None = None,
    ) -> bool:
        if state is TrialState.RUNNING:
            raise ValueError("finish_trial needs a finished state")
        with self._tx("finish a trial", write=True) as conn:
            values: dict[str, Any] = {
                "state": state.value,
                "value": value,
                "error": error,
                "finished_at": utcnow(),
            }
            if system_attrs:
                row = conn.execute(
                    sa.select(trials.c.system_attrs).where(trials.c.id == trial_id)
                ).first()
                values["system_attrs"] = {**((row[0] if row else None) or {}), **system_attrs}
            n = conn.execute(
                trials.update()
                .where(trials.c.id == trial_id, trials.c.state == TrialState.RUNNING.value)
                .values(**values)
            ).rowcount
        return bool(n)

    def resume_trial(self, trial_id: int, system_attrs: Mapping[str, Any]) -> bool:
        with self._tx("resume a trial", write=True) as conn:
            row = conn.execute(
                sa.select(trials.c.system_attrs).where(trials.c.id == trial_id)
            ).first()
            if row is None:
                return False
            now = utcnow()
            n = conn.execute(
                trials.update()
                .where(
                    trials.c.id == trial_id,
                    trials.c.state.in_([TrialState.FAILED.value, TrialState.PRUNED.value]),
                )
                .values(
                    state=TrialState.RUNNING.value,
                    value=None,
                    error=None,
                    finished_at=None,
                    heartbeat_at=now,
                    system_attrs={**(row[0] or {}), **system_attrs},
                )
            ).rowcount
        return bool(n)

    def fail_stale_trials(self, study_id: int, older_than: _dt.datetime) -> list[int]:
        cutoff = older_than.astimezone(_dt.timezone.utc).replace(tzinfo=None)
        with self._tx("fail stale trials", write=True) as conn:
            rows = conn.execute(
                sa.select(trials.c.id, trials.c.number, trials.c.system_attrs).where(
                    trials.c.study_id == study_id,
                    trials.c.state == TrialState.RUNNING.value,
                    trials.c.heartbeat_at < cutoff,
                )
            ).all()
            for r in rows:
                conn.execute(
                    trials.update()
                    .where(trials.c.id == r.id, trials.c.state == TrialState.RUNNING.value)
                    .values(
                        state=TrialState.FAILED.value,
                        finished_at=utcnow(),
                        error="interrupted: the process running this trial stopped "
                        "(no heartbeat since it was last seen)",
                        system_attrs={**(r.system_attrs or {}), INTERRUPTED_ATTR: True},
                    )
                )
        return [r.number for r in rows]

    # -- final evaluations -----------------------------------------------------------------
    def add_evaluation(
        self,
        study_id: int,
        *,
        trial_number: int,
        test_accuracy: float,
        test_loss: float,
        epochs: int,
        retrained: bool,
        confusion: Sequence[Sequence[int]],
        info: Mapping[str, Any],
    ) -> Evaluation:
        matrix = [[int(v) for v in row] for row in confusion]
        with self._tx("store an evaluation", write=True) as conn:
            new_id = conn.execute(
                evaluations.insert()
                .values(
                    study_id=study_id,
                    trial_number=int(trial_number),
                    created_at=utcnow(),
                    test_accuracy=float(test_accuracy),
                    test_loss=float(test_loss),
                    epochs=int(epochs),
                    retrained=int(bool(retrained)),
                    confusion=matrix,
                    info=dict(info),
                )
                .returning(evaluations.c.id)
            ).scalar_one()
        (found,) = [e for e in self.get_evaluations(study_id) if e.id == new_id]
        return found

    def get_evaluations(self, study_id: int) -> list[Evaluation]:
        q = (
            sa.select(evaluations)
            .where(evaluations.c.study_id == study_id)
            .order_by(evaluations.c.id)
        )
        with self._tx("read evaluations") as conn:
            rows = conn.execute(q).all()
        utc = _dt.timezone.utc
        return [
            Evaluation(
                id=r.id,
                trial_number=r.trial_number,
                created_at=r.created_at.replace(tzinfo=utc),
                test_accuracy=r.test_accuracy,
                test_loss=r.test_loss,
                epochs=r.epochs,
                retrained=bool(r.retrained),
                confusion=tuple(tuple(row) for row in r.confusion),
                info=MappingProxyType(r.info or {}),
            )
            for r in rows
        ]
