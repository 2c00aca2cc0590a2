"""The page: its HTML, its static files (plotly vendored), and the settings it reads."""

from __future__ import annotations

import importlib
from importlib import resources
from pathlib import Path
from typing import Any

from fastapi import APIRouter
from fastapi.responses import FileResponse, Response

import hpo
from hpo.server._state import Server

__all__ = ["STATIC", "router", "warm_up"]

STATIC = Path(str(resources.files("hpo.server") / "static"))

router = APIRouter()


@router.get("/api/config", tags=["studies"], response_model=dict[str, Any])
def config(server: Server) -> Any:
    """What the page needs to know: poll interval, whether writes need a token."""
    from hpo.storage import mask_url

    return {
        "version": hpo.__version__,
        "poll_interval": server.poll_interval,
        "token_required": server.token is not None,
        "token_reads": server.token_reads,
        "storage": mask_url(server.store.url),
    }


@router.get("/", include_in_schema=False)
def index() -> Response:
    return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})


def warm_up() -> None:
    """Import scikit-learn (seconds), so that the first page asking for parameter importance
    does not wait for it."""
    try:
        for module in ("sklearn.ensemble", "sklearn.inspection"):
            importlib.import_module(module)
    except ImportError:  # reported when importance is asked for
        pass
