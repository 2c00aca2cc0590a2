"""What the optimiser thinks: its views of a study (the GP, the densities, the coverage, the
workers' timeline), drawn with the strategy's own code from the stored history."""

from __future__ import annotations

import enum
import time
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import Response
from starlette.exceptions import HTTPException

from hpo.plots._optimizer_figures import OPTIMIZER_KINDS, default_kinds
from hpo.server._common import ERRORS, NamePath, Snapshot, json_response
from hpo.server._state import Server
from hpo.study import Study

__all__ = ["router"]

router = APIRouter(tags=["plots"])

OptimizerKind = enum.Enum(  # type: ignore[misc]
    "OptimizerKind", {k: k for k in OPTIMIZER_KINDS}, type=str
)
ParamName = Annotated[
    str | None, Query(max_length=200, description="A parameter of the study's space.")
]
Kinds = Annotated[
    list[OptimizerKind] | None,
    Query(description="Only these views [default: those of the study's strategy]."),
]


@router.get(
    "/api/studies/{name}/optimizer",
    response_model=None,
    responses={200: {"model": dict[str, Any]}, **ERRORS},
)
def optimizer(
    server: Server,
    name: NamePath,
    kind: Kinds = None,
    x: ParamName = None,
    y: ParamName = None,
    snapshot: Snapshot = None,
) -> Response:
    """What the optimiser thinks, as plotly figures keyed by kind: for bayes its GP
    (surrogate slices, acquisition, a contour of ``x`` and ``y``, whether it still
    learns), for tpe its densities, for random and grid their coverage; for every
    study the workers' timeline and the EDF. Computed from the stored history with the
    strategy's own code, once per study revision (``revision``; ``cached`` lists the
    views served from the cache; ``server_ms`` and ``server_cpu_ms`` what it took)."""
    t0, cpu0 = time.perf_counter(), time.thread_time()
    study = server.studies.get(name)
    _check_params(study, x=x, y=y)
    kinds = [k.value for k in kind] if kind else list(default_kinds(study.record.strategy))
    trials = server.trials(study, snapshot)
    rev, figs, hits = server.optimizer.get(study, trials, kinds, x, y)
    return json_response(
        {
            "study": study.name,
            "strategy": study.record.strategy,
            "revision": rev,
            "kinds": kinds,
            "figures": figs,
            "cached": hits,
            "server_ms": round((time.perf_counter() - t0) * 1000, 2),
            # CPU time of the thread that answered: what it costs on a machine whose other
            # processes leave it a whole core (server_ms grows with the machine's load).
            "server_cpu_ms": round((time.thread_time() - cpu0) * 1000, 2),
        }
    )


def _check_params(study: Study, **params: str | None) -> None:
    for what, param in params.items():
        if param is not None and param not in study.space:
            raise HTTPException(
                422,
                f"query {what}: {param!r} is not a parameter of study {study.name!r}; "
                f"pick one of {', '.join(study.space)}.",
            )
