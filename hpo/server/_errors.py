"""Every error as JSON ``{"detail": <one sentence>, "error": <kind>}``, the password masked.

An unknown study is 404, a bad body (one that does not parse, too) 422, a conflict with what
is stored (a duplicate name, a finished trial, an exhausted grid) 409, an unreachable
database 503, a bug 500 (the traceback goes to the server's log).
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException

from hpo.exceptions import (
    DuplicatedStudyError,
    HpoError,
    SearchExhausted,
    SpaceError,
    StorageError,
    StrategyError,
    StudyMismatchError,
    StudyNotFoundError,
)
from hpo.server._common import json_response
from hpo.server._state import ServerState

__all__ = ["add_handlers", "status_of"]

log = logging.getLogger("hpo.server")

_KINDS = {401: "Unauthorized", 404: "NotFound", 405: "MethodNotAllowed", 409: "Conflict"}


def status_of(e: HpoError) -> int:
    """The HTTP status of one of the library's errors."""
    if isinstance(e, StudyNotFoundError):
        return 404
    if isinstance(e, (DuplicatedStudyError, SearchExhausted, StudyMismatchError)):
        return 409
    if isinstance(e, (SpaceError, StrategyError, ValueError)):  # ValueError: PrunerError too
        return 422
    if isinstance(e, StorageError):
        # Raised from a database error: the store is unreachable or broken. Raised on its
        # own: the request conflicts with the stored state (e.g. a trial already finished).
        return 503 if e.__cause__ is not None else 409
    return 400


def add_handlers(app: FastAPI) -> None:
    """Answer every error raised in an endpoint (or by FastAPI) as one JSON sentence."""
    app.add_exception_handler(HpoError, _hpo_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _invalid)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, _bug)
    app.add_exception_handler(HTTPException, _http)  # type: ignore[arg-type]


def _error(
    request: Request,
    detail: str,
    kind: str,
    status: int,
    headers: dict[str, str] | None = None,
) -> Response:
    state: ServerState = request.app.state.hpo
    return json_response({"detail": state.scrub(detail), "error": kind}, status, headers=headers)


async def _hpo_error(request: Request, e: HpoError) -> Response:
    return _error(request, str(e), type(e).__name__, status_of(e))


async def _invalid(request: Request, e: RequestValidationError) -> Response:
    return _error(request, _one_line(e), "ValidationError", 422)


async def _bug(request: Request, e: Exception) -> Response:
    # A bug, not bad input (the fuzz test asks for none): still one line for the client,
    # the traceback for the server's log.
    log.exception("%s %s failed", request.method, request.url.path)
    scrub = request.app.state.hpo.scrub
    message = scrub(f"internal error: {type(e).__name__}: {e}".splitlines()[0], 300)
    return _error(request, f"{message} (see the server's log)", "InternalError", 500)


async def _http(request: Request, e: HTTPException) -> Response:
    headers = dict(e.headers or {})
    detail = str(e.detail)
    status = e.status_code
    if status == 405:
        allowed = _allowed(request)
        if allowed:
            headers["Allow"] = allowed
        detail = f"{request.method} is not allowed here; allowed: {headers.get('Allow')}."
    elif status == 400 and detail == "There was an error parsing the body":
        # Starlette's answer to a body that is not UTF-8 JSON: a bad body, as documented
        detail = "body: the body is not valid JSON (UTF-8)."
        return _error(request, detail, "ValidationError", 422)
    return _error(request, detail, _KINDS.get(status, "HTTPError"), status, headers)


def _allowed(request: Request) -> str:
    """Every method the path answers (Starlette names those of one route only)."""
    state: ServerState = request.app.state.hpo
    methods: set[str] = set()
    for route in [*request.app.router.routes, *state.routes]:
        regex = getattr(route, "path_regex", None)
        got = getattr(route, "methods", None)
        if regex is not None and got and regex.match(request.scope["path"]):
            methods |= set(got)
    return ", ".join(sorted(methods))


def _one_line(e: RequestValidationError) -> str:
    parts = []
    for err in e.errors()[:3]:
        loc = [str(x) for x in err.get("loc", ())]
        where = ".".join(loc[1:]) if loc and loc[0] in ("body", "query", "path") else ".".join(loc)
        where = f"{loc[0]} {where}" if loc and loc[0] in ("query", "path") else where
        msg = str(err.get("msg", "invalid"))
        if "input" in err and err.get("type") not in ("missing", "json_invalid"):
            shown = repr(err["input"])
            msg += f" (got {shown[:60] + '...' if len(shown) > 60 else shown})"
        parts.append(f"{where or 'body'}: {msg}" if where or loc else msg)
    more = len(e.errors()) - 3
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "") + "."
