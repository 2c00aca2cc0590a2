"""Studies: list, create, read, and keep a note on one."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import APIRouter

import hpo
from hpo.exceptions import SpaceError
from hpo.server._common import ERRORS, NamePath, Snapshot
from hpo.server._models import (
    NoteIn,
    StudyCreate,
    StudyDetail,
    StudyOut,
    clean,
    evaluation_out,
    study_out,
    trial_out,
)
from hpo.server._state import Server, ServerState
from hpo.storage import StudyRecord, StudySummary
from hpo.study import Study
from hpo.trial import FrozenTrial, TrialState

__all__ = ["reads", "writes"]

#: The endpoints that read (behind the token with ``token_reads``) and those that write.
reads = APIRouter(tags=["studies"])
writes = APIRouter(tags=["studies"])


@reads.get("/api/studies", response_model=list[StudyOut])
def list_studies(server: Server) -> Any:
    """Every study in the store, oldest first, with trials by state and the best value."""
    return [study_out(s) for s in server.store.list_studies()]


@writes.post("/api/studies", status_code=201, response_model=StudyDetail, responses=ERRORS)
def create_study(server: Server, body: StudyCreate) -> Any:
    """Create a study (or reopen it with ``load_if_exists``), like ``hpo.create_study``."""
    if isinstance(body.space, str):
        named = hpo.available_spaces()
        if body.space not in named:
            raise SpaceError(
                f"space must be one of the named spaces {sorted(named)} or a mapping of "
                f"parameters, got {body.space!r}."
            )
        space: Any = body.space
    else:
        space = hpo.SearchSpace.from_dict({k: v.as_space_entry() for k, v in body.space.items()})
    pruning: dict[str, Any] = {}
    if body.pruner is not None or body.pruner_options is not None:
        pruning = {"pruner": body.pruner, "pruner_options": body.pruner_options}
    study = hpo.create_study(
        space=space,
        strategy=body.strategy,
        direction=body.direction,
        storage=server.store,
        name=body.name,
        seed=body.seed,
        load_if_exists=body.load_if_exists,
        strategy_options=body.strategy_options,
        **pruning,
    )
    return detail(server, study)


@reads.get("/api/studies/{name}", response_model=StudyDetail, responses=ERRORS)
def get_study(server: Server, name: NamePath, snapshot: Snapshot = None) -> Any:
    """A study: how it was made, its trials by state and its best trial."""
    return detail(server, server.studies.get(name), snapshot)


@writes.put("/api/studies/{name}/note", response_model=StudyDetail, responses=ERRORS)
def study_note(server: Server, name: NamePath, body: NoteIn) -> Any:
    """Keep a note on the study (in the store, with the study); an empty note removes it."""
    study = server.studies.get(name)
    server.store.annotate_study(study.record.id, {"note": body.note or None})
    return detail(server, server.studies.get(name))


def detail(server: ServerState, study: Study, snapshot: str | None = None) -> dict[str, Any]:
    """A study as :class:`StudyDetail` says, from one read of its trials."""
    trials = server.trials(study, snapshot)
    best = None
    for t in trials:
        if t.state is TrialState.COMPLETE and (
            best is None or study.direction.better(t.value, best.value)  # type: ignore[arg-type]
        ):
            best = t
    rec = study.record
    return {
        **study_out(_summary(rec, trials)),
        "space": clean(study.space.to_dict()),
        "strategy_options": clean(dict(rec.strategy_options)),
        "seed": rec.seed,
        "meta": clean(dict(rec.meta)),
        "best_trial": trial_out(best, server.mlflow_ui) if best is not None else None,
        "evaluation": evaluation_out(study.evaluation),
        "note": server.studies.note(study),
    }


def _summary(record: StudyRecord, trials: Sequence[FrozenTrial]) -> StudySummary:
    """What ``Store.list_studies`` says of one study, from trials already read."""
    states: dict[TrialState, int] = {}
    best: float | None = None
    last = None
    for t in trials:
        states[t.state] = states.get(t.state, 0) + 1
        if (
            t.state is TrialState.COMPLETE
            and t.value is not None
            and (best is None or record.direction.better(t.value, best))
        ):
            best = t.value
        seen = t.finished_at or t.started_at
        if seen is not None and (last is None or seen > last):
            last = seen
    return StudySummary(record, len(trials), states, best, last)
