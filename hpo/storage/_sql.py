"""SQLStore: the study store on SQLAlchemy 2 (SQLite file, in-memory SQLite, PostgreSQL) — its
queries on studies, trials and final evaluations. The database under them (engine, transactions,
errors, proposal turns) is in :mod:`hpo.storage._sql_engine`; rows become records in
:mod:`hpo.storage._sql_rows`."""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy import exc
from sqlalchemy.engine import Connection

from hpo.exceptions import DuplicatedStudyError, StorageError, StudyNotFoundError
from hpo.storage._base import Evaluation, Store, StudyRecord, StudySummary
from hpo.storage._schema import evaluations, studies, trial_values, trials
from hpo.storage._sql_engine import _Database, mask_url
from hpo.storage._sql_engine import _normalise_url as _normalise_url  # tests import it here
from hpo.storage._sql_rows import (
    evaluation_records,
    frozen_trials,
    study_record,
    study_summaries,
    utcnow,
)
from hpo.trial import Direction, FrozenTrial, TrialState
from hpo.trial._frozen import INTERRUPTED_ATTR

__all__ = ["SQLStore", "mask_url", "utcnow"]

# The statements of the paths every trial takes (ask, report, tell), built once with bound
# parameters. Building a statement and computing its cache key cost more CPU than running it
# on SQLite (~30 % of a store call, profiled), and a trial of a small model makes about ten.
_ID: sa.BindParameter[int] = sa.bindparam("b_id")
_IS_RUNNING = trials.c.state == TrialState.RUNNING.value
_UPDATE_TRIAL = trials.update().where(trials.c.id == _ID)  # SET: the execute's other keys
_UPDATE_RUNNING_TRIAL = trials.update().where(trials.c.id == _ID, _IS_RUNNING)
_INSERT_TRIAL = trials.insert()
_SYSTEM_ATTRS = sa.select(trials.c.system_attrs).where(trials.c.id == _ID)
_STEP = (trial_values.c.trial_id == _ID, trial_values.c.step == sa.bindparam("b_step"))
_UPDATE_VALUE = trial_values.update().where(*_STEP)
_INSERT_VALUE = trial_values.insert()
_RUNNING_ROWS: dict[tuple[str, ...], sa.Select[Any]] = {}
_TRIAL_READS: dict[tuple[bool, bool], tuple[sa.Select[Any], sa.Select[Any]]] = {}


def _trial_reads(number: bool, states: bool) -> tuple[sa.Select[Any], sa.Select[Any]]:
    """The two queries of ``_read_trials`` (trials, their values) for a study's trials from
    ``b_min`` on, maybe only number ``b_number``, maybe only ``b_states``."""
    key = (number, states)
    if key not in _TRIAL_READS:
        sid: sa.BindParameter[int] = sa.bindparam("b_study")
        first: sa.BindParameter[int] = sa.bindparam("b_min")
        q = sa.select(trials).where(trials.c.study_id == sid, trials.c.number >= first)
        vq = (
            sa.select(trial_values.c.trial_id, trial_values.c.step, trial_values.c.value)
            .join(trials, trials.c.id == trial_values.c.trial_id)
            .where(trials.c.study_id == sid, trials.c.number >= first)
        )
        if number:
            q = q.where(trials.c.number == sa.bindparam("b_number"))
            vq = vq.where(trials.c.number == sa.bindparam("b_number"))
        if states:
            q = q.where(trials.c.state.in_(sa.bindparam("b_states", expanding=True)))
        _TRIAL_READS[key] = (q.order_by(trials.c.number), vq)
    return _TRIAL_READS[key]


class SQLStore(_Database, Store):
    """Studies and trials in a SQL database through SQLAlchemy 2.

    ``url=None`` keeps everything in memory (one process). ``sqlite:///path.db`` is a file that
    several processes on one machine can share (WAL mode; writers take the lock up front so
    concurrent transactions never deadlock). ``postgresql://...`` serves many machines.
    The schema is created or upgraded (Alembic) when the store opens.
    """

    # -- studies -------------------------------------------------------------------------
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
        return study_record(row)

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
        return study_summaries(rows, counts)

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
        q, vq = _trial_reads(number is not None, states is not None)
        args: dict[str, Any] = {"b_study": study_id, "b_min": min_number}
        if number is not None:
            args["b_number"] = number
        with self._tx("read trials") as conn:
            rows = conn.execute(
                q, args if states is None else {**args, "b_states": [s.value for s in states]}
            ).all()
            values: dict[int, dict[int, float]] = {}
            for tid, step, v in conn.execute(vq, args):
                values.setdefault(tid, {})[step] = float("nan") if v is None else v
        return frozen_trials(rows, values)

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
                    _INSERT_TRIAL,
                    {
                        "study_id": study_id,
                        "number": number,
                        "state": state.value,
                        "params": dict(params),
                        "started_at": now,
                        "heartbeat_at": now,
                        "user_attrs": {},
                        "system_attrs": dict(system_attrs or {}),
                    },
                )
                pk = res.inserted_primary_key
        except StorageError as e:
            if isinstance(e.__cause__, exc.IntegrityError):
                return None  # another process took this number first
            raise
        return None if pk is None else int(pk[0])

    def _running(self, conn: Connection, trial_id: int, doing: str, *attrs: sa.Column[Any]) -> Any:
        """The trial's row (state, number and the ``attrs`` columns), which must be running."""
        key = tuple(c.name for c in attrs)
        if key not in _RUNNING_ROWS:
            _RUNNING_ROWS[key] = sa.select(trials.c.state, trials.c.number, *attrs).where(
                trials.c.id == _ID
            )
        row = conn.execute(_RUNNING_ROWS[key], {"b_id": trial_id}).first()
        if row is None:
            raise StorageError(f"cannot {doing}: trial id {trial_id} does not exist.")
        if row.state != TrialState.RUNNING.value:
            raise StorageError(
                f"cannot {doing}: trial {row.number} has already finished ({row.state})."
            )
        return row

    def report(
        self, trial_id: int, step: int, value: float, *, user: Mapping[str, Any] | None = None
    ) -> None:
        v = None if value != value else float(value)  # NaN is kept as NULL
        with self._tx("report a value", write=True) as conn:
            if user:
                row = self._running(conn, trial_id, "report a value", trials.c.user_attrs)
                conn.execute(
                    _UPDATE_TRIAL,
                    {
                        "b_id": trial_id,
                        "heartbeat_at": utcnow(),
                        "user_attrs": {**(row.user_attrs or {}), **user},
                    },
                )
            else:
                # The heartbeat update doubles as the "still running?" check: one statement.
                alive = conn.execute(
                    _UPDATE_RUNNING_TRIAL, {"b_id": trial_id, "heartbeat_at": utcnow()}
                ).rowcount
                if not alive:
                    self._running(conn, trial_id, "report a value")  # raises the precise error
            updated = conn.execute(
                _UPDATE_VALUE, {"b_id": trial_id, "b_step": step, "value": v}
            ).rowcount
            if not updated:
                conn.execute(_INSERT_VALUE, {"trial_id": trial_id, "step": step, "value": v})

    def set_trial_attrs(
        self,
        trial_id: int,
        *,
        user: Mapping[str, Any] | None = None,
        system: Mapping[str, Any] | None = None,
    ) -> None:
        with self._tx("set trial attributes", write=True) as conn:
            wanted = [
                c for c, v in ((trials.c.user_attrs, user), (trials.c.system_attrs, system)) if v
            ]
            row = self._running(conn, trial_id, "set an attribute", *wanted)
            values: dict[str, Any] = {}
            if user:
                values["user_attrs"] = {**(row.user_attrs or {}), **user}
            if system:
                values["system_attrs"] = {**(row.system_attrs or {}), **system}
            if values:
                conn.execute(trials.update().where(trials.c.id == trial_id).values(**values))

    def annotate_trial(self, trial_id: int, system: Mapping[str, Any]) -> None:
        self._merge_attrs(trials.c.system_attrs, trial_id, system, "trial")

    def annotate_study(self, study_id: int, attrs: Mapping[str, Any]) -> None:
        self._merge_attrs(studies.c.user_attrs, study_id, attrs, "study")

    def _merge_attrs(
        self, column: sa.Column[Any], row_id: int, attrs: Mapping[str, Any], what: str
    ) -> None:
        """Merge ``attrs`` into the JSON ``column`` of row ``row_id``, whatever its state."""
        table = column.table
        with self._tx(f"annotate a {what}", write=True) as conn:
            row = conn.execute(sa.select(column).where(table.c.id == row_id)).first()
            if row is None:
                raise StorageError(f"cannot annotate: {what} id {row_id} does not exist.")
            conn.execute(
                table.update()
                .where(table.c.id == row_id)
                .values({column.name: {**(row[0] or {}), **attrs}})
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
                row = conn.execute(_SYSTEM_ATTRS, {"b_id": trial_id}).first()
                values["system_attrs"] = {**((row[0] if row else None) or {}), **system_attrs}
            n = conn.execute(_UPDATE_RUNNING_TRIAL, {"b_id": trial_id, **values}).rowcount
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
        return evaluation_records(rows)
