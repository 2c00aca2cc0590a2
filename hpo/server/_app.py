"""The dashboard and the HTTP API: one FastAPI app over one store.

Every endpoint goes through the library (``hpo.create_study``, ``hpo.load_study``,
``Study.ask`` / ``Study.tell``, ``Trial.report``, the :class:`~hpo.storage.Store`), so a
pipeline driving a study over HTTP and one importing ``hpo`` share one implementation.

Errors are JSON ``{"detail": <one sentence>, "error": <kind>}``: an unknown study is 404, a bad
body (one that does not parse, too) 422, a conflict with what is stored (a duplicate name, a
finished trial, an exhausted grid) 409, a body over 1 MiB 413, an unreachable database 503.
Details are at most 1,000 characters and never hold the store's password. Writes need
``Authorization: Bearer <token>`` when the app has a token (reads too with ``token_reads``);
the token is checked, and the body's size, before the body is read.

A study's name is one path segment, percent-encoded (``a/b`` is ``a%2Fb``): any name opens.

The endpoints live in one router module per resource: ``_studies``, ``_trials``, ``_plots``,
``_optimizer`` and ``_dashboard`` (the page); ``_security`` and ``_errors`` hold what comes
before and after them, ``_state`` what they share.
"""

from __future__ import annotations

import threading

from fastapi import Depends, FastAPI
from fastapi.staticfiles import StaticFiles

import hpo
from hpo.exceptions import HpoError
from hpo.server import _dashboard, _optimizer, _plots, _studies, _trials
from hpo.server._errors import add_handlers
from hpo.server._security import MAX_BODY, Guard, Scrub, authorised
from hpo.server._state import ServerState
from hpo.storage import Store, get_store

__all__ = ["create_app"]


def create_app(
    storage: str | Store | None,
    *,
    token: str | None = None,
    token_reads: bool = False,
    mlflow_ui: str | None = None,
    poll_interval: float = 2.0,
    max_body: int = MAX_BODY,
) -> FastAPI:
    """The dashboard and API over ``storage``.

    Args:
        storage: A store URL or a :class:`~hpo.storage.Store` (``None``: in memory).
        token: When set, every write (POST) needs ``Authorization: Bearer <token>``.
        token_reads: With a token, the API's reads need it too (the page asks for it).
        mlflow_ui: Base URL of the MLflow UI; trials with an MLflow run link to it.
        poll_interval: Seconds between the page's checks for new trials.
        max_body: Request bodies over this many bytes are refused (413) unread.
    """
    if token_reads and not token:
        raise HpoError("token_reads needs a token (--token or HPO_TOKEN) to ask for.")
    store = get_store(storage)
    state = ServerState(
        store,
        Scrub(store.url),
        token=token,
        token_reads=token_reads,
        mlflow_ui=mlflow_ui,
        poll_interval=poll_interval,
    )
    # scikit-learn takes seconds to import: do it now, off the request path.
    threading.Thread(target=_dashboard.warm_up, name="hpo-warm-up", daemon=True).start()

    app = _fastapi()
    app.state.hpo = state
    app.add_middleware(
        Guard, token=token, token_reads=token_reads, max_body=max_body, scrub=state.scrub
    )
    add_handlers(app)

    # The token dependency only on an app with a token: the schema declares it where needed.
    writes = [Depends(authorised)] if token is not None else []
    reads = list(writes) if token_reads else []
    routers = [
        (_studies.reads, reads),
        (_studies.writes, writes),
        (_trials.reads, reads),
        (_trials.writes, writes),
        (_plots.router, reads),
        (_optimizer.router, reads),
        (_dashboard.router, []),
    ]
    for router, dependencies in routers:
        app.include_router(router, dependencies=dependencies)
        state.routes.extend(router.routes)
    app.mount("/static", StaticFiles(directory=_dashboard.STATIC), name="static")
    return app


def _fastapi() -> FastAPI:
    return FastAPI(
        title="hpo",
        version=hpo.__version__,
        description=(
            "Hyperparameter optimisation as a service: create studies, ask for params, tell "
            "results, report intermediate values, read trials and plots. The dashboard is at /."
        ),
        openapi_tags=[
            {"name": "studies", "description": "Create and read studies."},
            {"name": "trials", "description": "Ask, tell, report and read trials."},
            {"name": "plots", "description": "Plotly figures (the dashboard's charts)."},
        ],
    )
