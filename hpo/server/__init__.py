"""The dashboard and the HTTP API (FastAPI), served by ``hpo dashboard``.

``create_app(storage, token=..., mlflow_ui=...)`` builds the app; ``serve(...)`` runs it with
uvicorn. FastAPI and uvicorn are imported only here, never by ``import hpo``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hpo.server._serve import check_bind, is_loopback, serve

if TYPE_CHECKING:
    from hpo.server._app import create_app

__all__ = ["check_bind", "create_app", "is_loopback", "serve"]


def __getattr__(name: str) -> Any:
    if name == "create_app":  # imports FastAPI: only when asked for
        from hpo.server._app import create_app

        return create_app
    raise AttributeError(f"module 'hpo.server' has no attribute {name!r}")
