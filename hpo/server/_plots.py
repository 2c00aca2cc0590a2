"""The dashboard's charts: plotly figures of a study's trials (the ones ``hpo plot`` draws).

The figures skip FastAPI's response validation (thousands of points, already plain JSON) and
go straight to orjson; ``responses`` still documents them in the schema.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import Response
from starlette.exceptions import HTTPException

from hpo.plots import KINDS, figure
from hpo.server._common import ERRORS, NamePath, Snapshot, json_response
from hpo.server._models import INT32
from hpo.server._state import Server, ServerState
from hpo.study import Study

__all__ = ["router"]

router = APIRouter(tags=["plots"])

PlotKind = enum.Enum("PlotKind", {k: k for k in KINDS}, type=str)  # type: ignore[misc]

Highlight = Annotated[
    list[int], Query(max_length=100, description="Trials drawn on top of the learning curves.")
]
HighlightRanges = Annotated[
    str | None,
    Query(
        max_length=8000,
        pattern=r"^[0-9,-]*$",
        description="More trials to draw on top, as numbers and ranges: 1,4,10-20 "
        "(the dashboard's compare view sends hundreds this way).",
    ),
]
Kinds = Annotated[list[PlotKind] | None, Query(description="Only these plots [default: all].")]


@router.get(
    "/api/studies/{name}/plots",
    response_model=None,
    responses={200: {"model": dict[str, dict[str, Any]]}, **ERRORS},
)
def plots(
    server: Server,
    name: NamePath,
    kind: Kinds = None,
    highlight: Highlight = [],  # noqa: B006 - FastAPI copies query defaults
    highlight_ranges: HighlightRanges = None,
    snapshot: Snapshot = None,
) -> Response:
    """Several plots of the study from one read of its trials, as plotly figures keyed by
    kind."""
    kinds = [k.value for k in kind] if kind else list(KINDS)
    marked = [*highlight, *_numbers(highlight_ranges)]
    study = server.studies.get(name)
    return json_response(_figures(server, study, kinds, marked, False, snapshot))


@router.get(
    "/api/studies/{name}/plots/{kind}",
    response_model=None,
    responses={200: {"model": dict[str, Any]}, **ERRORS},
)
def plot(
    server: Server,
    name: NamePath,
    kind: PlotKind,
    highlight: Highlight = [],  # noqa: B006
    highlight_ranges: HighlightRanges = None,
    only_highlighted: bool = False,
    snapshot: Snapshot = None,
) -> Response:
    """One plot as a plotly figure (``{"data": [...], "layout": {...}}``)."""
    k = kind.value
    marked = [*highlight, *_numbers(highlight_ranges)]
    study = server.studies.get(name)
    return json_response(_figures(server, study, [k], marked, only_highlighted, snapshot)[k])


def _figures(
    server: ServerState,
    study: Study,
    kinds: Sequence[str],
    highlight: Sequence[int],
    only: bool,
    snapshot: str | None,
) -> dict[str, Any]:
    trials = server.trials(study, snapshot)
    out = {}
    for kind in kinds:
        imp = server.importance.get(study, trials) if kind == "importance" else None
        out[kind] = figure(
            kind,
            trials,
            study.space,
            study.direction,
            highlight=highlight,
            only_highlighted=only,
            importance_data=imp,
        )
    return out


def _numbers(spec: str | None) -> list[int]:
    """``"1,4,10-12"`` -> ``[1, 4, 10, 11, 12]`` (at most 100,000 numbers)."""
    out: list[int] = []
    for part in (spec or "").split(","):
        if not part:
            continue
        lo, _, hi = part.partition("-")
        if not lo.isdigit() or (hi and not hi.isdigit()):
            raise HTTPException(422, f"highlight_ranges: {part!r} is no number or range a-b.")
        a, b = int(lo), int(hi or lo)
        if b < a or len(out) + b - a >= 100_000 or b > INT32:
            raise HTTPException(422, f"highlight_ranges: {part!r} is reversed or too large.")
        out.extend(range(a, b + 1))
    return out
