"""The SQL store's rows as hpo's records: a ``studies`` row as a StudyRecord (and, with its
trial counts, a StudySummary), ``trials`` rows with their reported values as FrozenTrials,
``evaluations`` rows as Evaluations; and the store's time convention (naive UTC)."""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any

from hpo.storage._base import Evaluation, StudyRecord, StudySummary
from hpo.trial import Direction, FrozenTrial, TrialState

__all__ = ["evaluation_records", "frozen_trials", "study_record", "study_summaries", "utcnow"]


def utcnow() -> _dt.datetime:
    """Naive UTC: SQLite keeps no time zones, so every timestamp in the store is UTC."""
    return _dt.datetime.now(_dt.timezone.utc).replace(tzinfo=None)


def study_record(row: Any) -> StudyRecord:
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


def study_summaries(rows: Sequence[Any], counts: Sequence[Any]) -> list[StudySummary]:
    """A summary of each study row, from the (study, state) groups of ``counts``: how many
    trials, the best complete value, the last start or finish."""
    out = []
    for row in rows:
        rec = study_record(row)
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


def frozen_trials(
    rows: Sequence[Any], values: Mapping[int, Mapping[int, float]]
) -> list[FrozenTrial]:
    """The trial rows as FrozenTrials; ``values`` holds each trial's reported values by
    trial id, then step."""
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


def evaluation_records(rows: Sequence[Any]) -> list[Evaluation]:
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
