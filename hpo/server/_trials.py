"""Trials: ask, tell, report, read, and keep a note on one.

Ask, tell and report go through ``Study.ask``, ``Study.tell`` and ``Trial.report``: a pipeline
driving a study over HTTP and one importing ``hpo`` share one implementation.
"""

from __future__ import annotations

import hashlib
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from starlette.exceptions import HTTPException

import hpo
from hpo.exceptions import HpoError
from hpo.server._common import ERRORS, NamePath, NumberPath, encode
from hpo.server._errors import status_of
from hpo.server._models import (
    INT32,
    AskIn,
    AskOut,
    NoteIn,
    ReportIn,
    ReportOut,
    TellIn,
    TrialOut,
    clean,
    trial_out,
)
from hpo.server._state import Server
from hpo.trial import TrialState

__all__ = ["reads", "writes"]

#: The endpoints that read (behind the token with ``token_reads``) and those that write.
reads = APIRouter(tags=["trials"])
writes = APIRouter(tags=["trials"])

States = Annotated[list[TrialState] | None, Query(description="Only these states.")]
MinNumber = Annotated[int, Query(ge=0, le=INT32, description="From this number.")]
Attrs = Annotated[
    bool, Query(description="Include user_attrs and system_attrs (false: the page's view).")
]


@reads.get(
    "/api/studies/{name}/trials",
    response_model=None,
    responses={200: {"model": list[TrialOut]}, **ERRORS},
)
def list_trials(
    server: Server,
    request: Request,
    name: NamePath,
    state: States = None,
    min_number: MinNumber = 0,
    attrs: Attrs = True,
) -> Response:
    """A study's trials by number. Sends an ``ETag``: with ``If-None-Match`` an unchanged
    list is a bodiless 304 (what the dashboard polls). ``attrs=false`` leaves out the
    attributes (per-epoch curves, host details), most of a trained trial's weight."""
    study = server.studies.get(name)
    trials = server.store.get_trials(study.record.id, states=state, min_number=min_number)
    rows = [trial_out(t, server.mlflow_ui, finite=False) for t in trials]
    if not attrs:
        for row in rows:
            del row["user_attrs"], row["system_attrs"]
    body = encode(rows)
    etag = '"' + hashlib.blake2b(body, digest_size=12).hexdigest() + '"'
    if state is None and min_number == 0:
        server.snapshots.put(etag, study.record.id, trials)
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers={"ETag": etag})
    return Response(body, media_type="application/json", headers={"ETag": etag})


@reads.get("/api/studies/{name}/trials/{number}", response_model=TrialOut, responses=ERRORS)
def get_trial(server: Server, name: NamePath, number: NumberPath) -> Any:
    """One trial."""
    study = server.studies.get(name)
    return trial_out(server.studies.trial(study, number), server.mlflow_ui)


@writes.post("/api/studies/{name}/ask", status_code=201, response_model=AskOut, responses=ERRORS)
def ask(server: Server, name: NamePath, body: AskIn | None = None) -> Any:
    """Start a trial: its number and the strategy's params (or the ``params`` given)."""
    study = server.studies.get(name)
    trial = study.ask(body.params if body is not None else None)
    return {"study": study.name, "number": trial.number, "params": clean(dict(trial.params))}


@writes.post("/api/studies/{name}/trials/{number}/tell", response_model=TrialOut, responses=ERRORS)
def tell(server: Server, name: NamePath, number: NumberPath, body: TellIn) -> Any:
    """Finish a running trial: ``complete`` with its value, ``pruned`` (the value defaults
    to the last reported one) or ``failed`` with the reason in ``error``."""
    if body.state == "complete" and body.value is None:
        raise HTTPException(
            422,
            "value is required when state is 'complete'; to record a failure send "
            "state 'failed' with an error.",
        )
    if body.error is not None and body.state != "failed":
        raise HTTPException(422, f"error is only for state 'failed', not {body.state!r}.")
    study = server.studies.get(name)
    try:
        frozen = study.tell(number, body.value, state=body.state, error=body.error)
    except HpoError as e:
        if status_of(e) == 503:
            raise
        # No such trial, or finished already: find out which for a precise 404 / 409.
        server.studies.running(study, number, "tell")
        raise
    return trial_out(frozen, server.mlflow_ui)


@writes.post(
    "/api/studies/{name}/trials/{number}/report", response_model=ReportOut, responses=ERRORS
)
def report(server: Server, name: NamePath, number: NumberPath, body: ReportIn) -> Any:
    """Record an intermediate value of a running trial at ``step`` (an epoch, say), and
    say whether the study's pruner wants the trial stopped."""
    study = server.studies.get(name)
    t = server.studies.running(study, number, "report")
    # The live trial an objective would hold, rebuilt from the store: report and
    # should_prune run exactly as they do in-process.
    assert t.trial_id is not None  # read from the store
    live = hpo.Trial(study, t.trial_id, t.number, t.params)
    live.report(body.value, body.step)
    return {
        "study": study.name,
        "number": number,
        "step": body.step,
        "value": body.value,
        "should_prune": bool(live.should_prune()),
    }


@writes.put("/api/studies/{name}/trials/{number}/note", response_model=TrialOut, responses=ERRORS)
def trial_note(server: Server, name: NamePath, number: NumberPath, body: NoteIn) -> Any:
    """Keep a note on a trial, finished or not (the result itself never changes)."""
    study = server.studies.get(name)
    t = server.studies.trial(study, number)
    server.store.annotate_trial(int(t.system_attrs["trial_id"]), {"note": body.note or None})
    return trial_out(server.studies.trial(study, number), server.mlflow_ui)
