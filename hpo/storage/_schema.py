"""The store's tables (SQLAlchemy Core). Changes go through an Alembic migration.

Tables carry an ``hpo_`` prefix so the store can share a database with other tools (MLflow,
Optuna) without clashes.
"""

from __future__ import annotations

import json
import math
from typing import Any

from sqlalchemy import (
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.types import TypeDecorator

__all__ = ["JSONText", "evaluations", "metadata", "studies", "trial_values", "trials"]


def _finite(obj: Any) -> Any:
    """JSON has no NaN/inf (PostgreSQL rejects them): store them as strings, read them back."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return {"__float__": repr(obj)}
    if isinstance(obj, dict):
        return {str(k): _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def _restore(obj: Any) -> Any:
    if isinstance(obj, dict):
        if len(obj) == 1 and "__float__" in obj:
            return float(obj["__float__"])
        return {k: _restore(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_restore(v) for v in obj]
    return obj


class JSONText(TypeDecorator[Any]):
    """JSON kept as TEXT: portable across SQLite and PostgreSQL, NaN-safe."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Any) -> str | None:
        if value is None:
            return None
        return json.dumps(_finite(value), allow_nan=False, default=str)

    def process_result_value(self, value: Any, dialect: Any) -> Any:
        if value is None:
            return None
        data = json.loads(value)
        # Only text that holds a stored NaN/inf needs the walk: skipping it elsewhere takes a
        # quarter off reading 1,000 trials (what the dashboard's trials list waits on).
        return _restore(data) if "__float__" in value else data


metadata = MetaData()

studies = Table(
    "hpo_studies",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(255), nullable=False, unique=True),
    Column("direction", String(16), nullable=False),
    Column("space", JSONText, nullable=False),
    Column("strategy", String(64), nullable=False),
    Column("strategy_options", JSONText, nullable=False),
    Column("seed", Integer, nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("meta", JSONText, nullable=False),
    Column("user_attrs", JSONText, nullable=False),
    # The pruner the study was made with, next to its strategy (migration 0003). NULL: none
    # stored (a pruner object of the user's own, or a study from before pruners were stored).
    Column("pruner", String(64), nullable=True),
    Column("pruner_options", JSONText, nullable=True),
)

trials = Table(
    "hpo_trials",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("study_id", Integer, ForeignKey("hpo_studies.id", ondelete="CASCADE"), nullable=False),
    Column("number", Integer, nullable=False),
    Column("state", String(16), nullable=False),
    Column("params", JSONText, nullable=False),
    Column("value", Float, nullable=True),
    Column("started_at", DateTime, nullable=False),
    Column("finished_at", DateTime, nullable=True),
    Column("heartbeat_at", DateTime, nullable=True),
    Column("error", Text, nullable=True),
    Column("user_attrs", JSONText, nullable=False),
    Column("system_attrs", JSONText, nullable=False),
    # The unique pair is what makes trial numbers atomic: two processes that try to take the
    # same number cannot both succeed, and the loser retries with the next one.
    UniqueConstraint("study_id", "number", name="uq_hpo_trials_study_number"),
    Index("ix_hpo_trials_study_state", "study_id", "state"),
)

trial_values = Table(
    "hpo_trial_values",
    metadata,
    Column("trial_id", Integer, ForeignKey("hpo_trials.id", ondelete="CASCADE"), primary_key=True),
    Column("step", Integer, primary_key=True),
    Column("value", Float, nullable=True),
)

# A study's final evaluations (issue 16): the best trial's configuration retrained and tested
# on the test split the search never saw. One row per evaluation, newest last.
evaluations = Table(
    "hpo_evaluations",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("study_id", Integer, ForeignKey("hpo_studies.id", ondelete="CASCADE"), nullable=False),
    Column("trial_number", Integer, nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("test_accuracy", Float, nullable=False),
    Column("test_loss", Float, nullable=False),
    Column("epochs", Integer, nullable=False),
    Column("retrained", Integer, nullable=False),
    Column("confusion", JSONText, nullable=False),
    Column("info", JSONText, nullable=False),
    Index("ix_hpo_evaluations_study", "study_id"),
)
