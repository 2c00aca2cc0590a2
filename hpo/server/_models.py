"""The HTTP API's request and response bodies (pydantic): they make the OpenAPI schema.

Inputs forbid unknown fields and non-finite numbers (JSON has no NaN; a failed evaluation is
told as ``state: "failed"``), so a typo is a 422 that names the field, not a silent default.
"""

from __future__ import annotations

import datetime as _dt
import math
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from hpo.storage import StudySummary
from hpo.trial import FrozenTrial, TrialState

__all__ = [
    "AskIn",
    "AskOut",
    "ErrorOut",
    "EvaluationOut",
    "NoteIn",
    "ParamSpec",
    "ReportIn",
    "ReportOut",
    "StudyCreate",
    "StudyDetail",
    "StudyOut",
    "TellIn",
    "TrialOut",
    "clean",
    "evaluation_out",
    "study_out",
    "trial_out",
]

#: Trial numbers, steps and seeds are stored as 32-bit integers.
INT32 = 2**31 - 1

# A study name made over HTTP is one URL path segment that needs no care: letters, digits,
# _ . : @ + = -, starting with a letter, digit or _. (Names made in Python may be anything.)
StudyName = Annotated[
    str, StringConstraints(min_length=1, max_length=200, pattern=r"^\w[\w.:@+=-]*$")
]
# Bounds JSON numbers so that no float conversion downstream can overflow.
Bound = Annotated[int, Field(ge=-(2**53), le=2**53)] | float
Text = Annotated[str, StringConstraints(max_length=2000, pattern=r"^[^\x00]*$")]
Scalar = Annotated[str, StringConstraints(max_length=1000)] | Bound | bool | None


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class ErrorOut(BaseModel):
    """Every error: one sentence in ``detail`` and the error's kind (``StudyNotFoundError``,
    ``ValidationError``...)."""

    detail: str
    error: str


class ParamSpec(_In):
    """One parameter, as in a YAML space file's ``params:``."""

    type: Literal["float", "int", "categorical"]
    low: Bound | None = None
    high: Bound | None = None
    log: bool | None = None
    step: int | None = Field(None, ge=1, le=INT32)
    choices: list[Scalar] | None = Field(None, min_length=1, max_length=1000)
    when: dict[str, Any] | None = Field(
        None,
        description="Active only when parents have these values: {parent: value | [values] "
        '| {">=": number}}.',
    )

    def as_space_entry(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True)


class StudyCreate(_In):
    name: StudyName | None = Field(None, description="Unique name; made up when omitted.")
    space: Annotated[str, StringConstraints(max_length=200)] | dict[str, ParamSpec] = Field(
        ...,
        description="A named space (see `hpo spaces`) or the parameters, as in a YAML file's "
        "`params:`.",
        examples=[{"x": {"type": "float", "low": -5, "high": 5}}],
    )
    strategy: Annotated[str, StringConstraints(max_length=64)] = Field(
        "bayes", description="grid, random, bayes or tpe."
    )
    direction: Literal["minimize", "maximize"] = "minimize"
    seed: int | None = Field(0, ge=0, le=INT32)
    strategy_options: dict[str, Scalar] | None = None
    pruner: Annotated[str, StringConstraints(max_length=64)] | None = Field(
        None, description="none, median, asha or hyperband (see hpo.pruners)."
    )
    pruner_options: dict[str, Scalar] | None = None
    load_if_exists: bool = Field(
        False, description="Reopen the study if it exists (same space and direction)."
    )


class StudyOut(BaseModel):
    name: str
    space_name: str | None
    strategy: str
    direction: str
    n_trials: int
    states: dict[str, int] = Field(description="Trials by state (all four states present).")
    best_value: float | None
    created_at: _dt.datetime
    last_activity: _dt.datetime | None
    elapsed_s: float = Field(
        description="From creation to the last activity (or now, while trials are running)."
    )


class TrialOut(BaseModel):
    number: int
    state: TrialState
    value: float | None
    params: dict[str, Any]
    intermediate: dict[int, float | None] = Field(description="Reported values by step.")
    started_at: _dt.datetime | None
    finished_at: _dt.datetime | None
    duration_s: float | None
    reason: str | None = Field(description="Why a failed or pruned trial ended so.")
    device: str | None
    host: str | None
    mlflow_run_id: str | None
    mlflow_url: str | None = Field(description="The run in the MLflow UI (dashboard --mlflow-ui).")
    user_attrs: dict[str, Any] = Field(
        default_factory=dict, description="What the objective set (absent with attrs=false)."
    )
    system_attrs: dict[str, Any] = Field(
        default_factory=dict, description="What hpo recorded (absent with attrs=false)."
    )
    note: str | None = Field(None, description="A person's note on the trial (PUT .../note).")
    resumed: str | None = Field(
        None,
        description="How the trial went on from its checkpoints (e.g. 'resumed 2x, 5 epochs "
        "saved', 'promoted, 3 epochs saved'); null for a trial that never did.",
    )
    paused: bool = Field(
        False, description="Pruned for now: waiting at a rung, it may be promoted (pause=true)."
    )


class EvaluationOut(BaseModel):
    """The final model: the best params retrained and tested on data the search never saw."""

    trial: int = Field(description="The trial whose params were used.")
    created_at: _dt.datetime
    test_accuracy: float = Field(description="On the test split (never the search's).")
    test_loss: float
    val_accuracy: float | None = Field(description="The trial's best validation accuracy.")
    epochs: int
    retrained: bool = Field(description="Trained on train + validation (else the trial's run).")
    test_split: str | None = Field(description="Which test split: t10k or held out.")
    confusion: list[list[int]] = Field(description="confusion[true][predicted], test images.")
    info: dict[str, Any] = Field(default_factory=dict)


class StudyDetail(StudyOut):
    space: dict[str, Any]
    strategy_options: dict[str, Any]
    seed: int
    meta: dict[str, Any]
    best_trial: TrialOut | None
    evaluation: EvaluationOut | None = Field(
        None, description="The latest final evaluation (hpo evaluate), if any."
    )
    note: str | None = Field(None, description="A person's note on the study (PUT .../note).")


class NoteIn(_In):
    note: Annotated[str, StringConstraints(max_length=10_000, pattern=r"^[^\x00]*$")] = Field(
        description="Free text; an empty note removes it."
    )


class AskIn(_In):
    params: dict[str, Any] | None = Field(
        None, description="Evaluate these params instead of the strategy's proposal."
    )


class AskOut(BaseModel):
    study: str
    number: int
    params: dict[str, Any]


class TellIn(_In):
    value: float | None = Field(None, description="The objective's value (state complete).")
    state: Literal["complete", "pruned", "failed"] = "complete"
    error: Text | None = Field(None, description="Why the trial failed (state failed).")


class ReportIn(_In):
    step: int = Field(..., ge=0, le=INT32)
    value: float


class ReportOut(BaseModel):
    study: str
    number: int
    step: int
    value: float
    should_prune: bool = Field(description="The study's pruner says: stop this trial now.")


# -- records to bodies ---------------------------------------------------------------------


def clean(obj: Any) -> Any:
    """JSON-safe copy: NaN and infinities become None (JSON has neither)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, Mapping):
        return {str(k): clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [clean(v) for v in obj]
    return obj


def _iso(t: _dt.datetime | None) -> str | None:
    """UTC times as pydantic writes them (``...Z``), so every answer spells them alike."""
    if t is None:
        return None
    if t.tzinfo is None:
        t = t.replace(tzinfo=_dt.timezone.utc)
    return t.isoformat().replace("+00:00", "Z")


def _reason(t: FrozenTrial) -> str | None:
    if t.state is TrialState.FAILED:
        return t.error or "failed"
    if t.state is TrialState.PRUNED:
        step = t.last_step
        how = "paused" if t.paused else "pruned"
        return f"{how} at step {step}" if step is not None else how
    return None


def trial_out(
    t: FrozenTrial, mlflow_ui: str | None = None, *, finite: bool = True
) -> dict[str, Any]:
    """A trial as the API sends it (a plain dict: building 1,000 models costs more).

    ``finite=False`` skips the walk that turns NaN and infinities into None, for a caller
    that encodes with ``allow_nan=False`` and walks only when that fails (they are rare).
    """
    same = clean if finite else _same
    run = t.system_attrs.get("mlflow_run_id")
    device = t.user_attrs.get("device", t.system_attrs.get("device"))
    d = t.duration
    return {
        "number": t.number,
        "state": t.state.value,
        "value": clean(t.value),
        "params": same(dict(t.params)),
        "intermediate": {str(k): clean(v) for k, v in t.intermediate.items()},
        "started_at": _iso(t.started_at),
        "finished_at": _iso(t.finished_at),
        "duration_s": d.total_seconds() if d is not None else None,
        "reason": _reason(t),
        "device": str(device) if device is not None else None,
        "host": t.system_attrs.get("host"),
        "mlflow_run_id": run,
        "mlflow_url": f"{mlflow_ui.rstrip('/')}/#/runs/{run}" if run and mlflow_ui else None,
        "user_attrs": same(dict(t.user_attrs)),
        "system_attrs": same({k: v for k, v in t.system_attrs.items() if k != "trial_id"}),
        "note": t.system_attrs.get("note") or None,
        "resumed": t.resume_summary or None,
        "paused": t.paused,
    }


def _same(obj: Any) -> Any:
    return obj


def study_out(s: StudySummary) -> dict[str, Any]:
    rec = s.study
    states = {st.value: int(s.states.get(st, 0)) for st in TrialState}
    end = s.last_activity or rec.created_at
    if states["running"]:
        end = _dt.datetime.now(_dt.timezone.utc)
    created = rec.created_at
    if created.tzinfo is None:
        created = created.replace(tzinfo=_dt.timezone.utc)
    if end.tzinfo is None:
        end = end.replace(tzinfo=_dt.timezone.utc)
    return {
        "name": rec.name,
        "space_name": rec.meta.get("space_name"),
        "strategy": rec.strategy,
        "direction": rec.direction.value,
        "n_trials": s.n_trials,
        "states": states,
        "best_value": clean(s.best_value),
        "created_at": _iso(created),
        "last_activity": _iso(s.last_activity),
        "elapsed_s": max(0.0, (end - created).total_seconds()),
    }


def evaluation_out(ev: Any) -> dict[str, Any] | None:
    """An :class:`hpo.storage.Evaluation` as the API shows it; None stays None."""
    if ev is None:
        return None
    info = clean(dict(ev.info))
    val = info.get("val_accuracy")
    return {
        "trial": ev.trial_number,
        "created_at": _iso(ev.created_at),
        "test_accuracy": ev.test_accuracy,
        "test_loss": ev.test_loss,
        "val_accuracy": val if isinstance(val, (int, float)) else None,
        "epochs": ev.epochs,
        "retrained": ev.retrained,
        "test_split": info.get("test_source"),
        "confusion": [list(r) for r in ev.confusion],
        "info": info,
    }
