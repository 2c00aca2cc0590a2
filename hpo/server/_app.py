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
"""

from __future__ import annotations

import enum
import hashlib
import importlib
import ipaddress
import json
import logging
import re
import secrets
import threading
import time
import urllib.parse
from collections import OrderedDict
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

import orjson
from fastapi import Depends, FastAPI, Query, Request
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

import hpo
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
from hpo.plots import KINDS, figure
from hpo.plots._data import Importance, importance
from hpo.plots._optimizer_figures import OPTIMIZER_KINDS, default_kinds, optimizer_figure
from hpo.server._models import (
    INT32,
    AskIn,
    AskOut,
    ErrorOut,
    NoteIn,
    ReportIn,
    ReportOut,
    StudyCreate,
    StudyDetail,
    StudyOut,
    TellIn,
    TrialOut,
    clean,
    evaluation_out,
    study_out,
    trial_out,
)
from hpo.storage import Store, StudyRecord, StudySummary, get_store
from hpo.study import Study
from hpo.trial import FrozenTrial, TrialState

__all__ = ["create_app"]

log = logging.getLogger("hpo.server")

STATIC = Path(str(resources.files("hpo.server") / "static"))

NamePath = Annotated[
    str,
    PathParam(
        description="The study's name, percent-encoded as one path segment (a/b: a%2Fb).",
        max_length=1000,
    ),
]
NumberPath = Annotated[int, PathParam(ge=0, le=INT32, description="The trial's number.")]

Snapshot = Annotated[
    str | None,
    Query(
        max_length=64,
        description="An ETag from the trials list: build the answer from that same read of "
        "the trials (the dashboard does; unknown ones are read afresh).",
    ),
]

PlotKind = enum.Enum("PlotKind", {k: k for k in KINDS}, type=str)  # type: ignore[misc]
OptimizerKind = enum.Enum(  # type: ignore[misc]
    "OptimizerKind", {k: k for k in OPTIMIZER_KINDS}, type=str
)
ParamName = Annotated[
    str | None, Query(max_length=200, description="A parameter of the study's space.")
]

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

#: Request bodies above this are refused (413) before they are read.
MAX_BODY = 1 << 20
#: Error details are cut to this many characters (a 400,000-parameter ask once made 4 MB).
MAX_DETAIL = 1000

# Sent with every answer: no framing by other sites (clickjacking), no MIME sniffing.
_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
]
# The page: its own scripts only (plotly is vendored); plotly sets inline styles.
_PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
_API_CSP = "default-src 'none'; frame-ancestors 'none'"
# FastAPI's /docs and /redoc load their scripts from a CDN: only framing is limited there.
_DOCS_CSP = "frame-ancestors 'none'"

_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "A token is required and was missing or wrong."},
    404: {"model": ErrorOut, "description": "No such study or trial."},
    409: {"model": ErrorOut, "description": "Conflicts with what is stored."},
    422: {"model": ErrorOut, "description": "The request is invalid (the detail says why)."},
    503: {"model": ErrorOut, "description": "The study store cannot be reached."},
}


def _status(e: HpoError) -> int:
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


class _Scrub:
    """Takes the store's password out of text bound for a client (a driver's error can quote
    the URL it was given), and caps its length."""

    def __init__(self, url: str) -> None:
        from hpo.storage import mask_url

        self._mask = mask_url
        found = re.search(r"://[^:/?#@\s]*:([^/?#\s]*)@", url)
        pw = found.group(1) if found else ""
        self._secrets = sorted(
            {p for p in (pw, urllib.parse.unquote(pw)) if len(p) >= 3}, key=len, reverse=True
        )

    def __call__(self, text: str, limit: int = MAX_DETAIL) -> str:
        text = self._mask(text)
        for secret in self._secrets:
            text = text.replace(secret, "***")
        if len(text) > limit:
            text = f"{text[: limit - 40]}... ({len(text) - limit + 40} more characters)"
        return text


def _encode(content: Any) -> bytes:
    """JSON bytes, NaN and infinities as null. orjson: 1,000 trials in ~3 ms where the standard
    library takes ~50 ms (plus a walk to replace the NaNs)."""
    try:
        return orjson.dumps(content, option=orjson.OPT_NON_STR_KEYS)
    except (TypeError, orjson.JSONEncodeError):  # e.g. an integer beyond 64 bits
        return json.dumps(clean(content), allow_nan=False, default=str).encode()


def _json(content: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        _encode(content), status_code=status, media_type="application/json", headers=headers
    )


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


class _Snapshots:
    """The trials behind each ETag the trials list handed out lately.

    The page reads the trials list, then asks for the study and its plots with
    ``snapshot=<that ETag>``: they are built from the very same read (consistent with the
    table, and one read of the store instead of four). An unknown snapshot is read afresh.
    """

    def __init__(self, size: int = 16) -> None:
        self._data: OrderedDict[str, tuple[int, list[FrozenTrial]]] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def put(self, etag: str, study_id: int, trials: list[FrozenTrial]) -> None:
        with self._lock:
            self._data[etag] = (study_id, trials)
            self._data.move_to_end(etag)
            while len(self._data) > self._size:
                self._data.popitem(last=False)

    def get(self, etag: str | None, study_id: int) -> list[FrozenTrial] | None:
        with self._lock:
            hit = self._data.get(etag) if etag else None
        return hit[1] if hit is not None and hit[0] == study_id else None


class _Studies:
    """Open studies by name, reused while the stored study is the same one (same id)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._open: dict[str, Study] = {}
        self._notes: dict[int, Any] = {}  # study id -> its note as last read
        self._lock = threading.Lock()

    def note(self, study: Study) -> str | None:
        """The study's note as :meth:`get` last read it (a Study keeps its record as made)."""
        note = self._notes.get(study.record.id, study.record.user_attrs.get("note"))
        return str(note) if note else None

    def get(self, quoted: str) -> Study:
        name = urllib.parse.unquote(quoted)  # the path segment, as _name_path encoded it
        record = self.store.get_study(name)  # StudyNotFoundError: 404
        self._notes[record.id] = record.user_attrs.get("note")
        with self._lock:
            study = self._open.get(name)
            if study is not None and study.record.id == record.id:
                return study
        study = hpo.load_study(name, storage=self.store)
        with self._lock:
            self._open[name] = study
        return study

    def trial(self, study: Study, number: int) -> FrozenTrial:
        t = self.store.get_trial(study.record.id, number)
        if t is not None:
            return t
        raise HTTPException(404, f"study {study.name!r} has no trial {number}.")

    def running(self, study: Study, number: int, doing: str) -> FrozenTrial:
        t = self.trial(study, number)
        if t.state.is_finished:
            raise HTTPException(
                409,
                f"cannot {doing}: trial {number} of study {study.name!r} has already finished "
                f"({t.state.value}); a finished trial never changes.",
            )
        return t


class _ImportanceCache:
    """Importance is a pure function of the space and the completed trials: keep the last few."""

    def __init__(self, size: int = 32) -> None:
        self._data: OrderedDict[tuple[Any, ...], Importance] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def get(self, study: Study, trials: Sequence[FrozenTrial]) -> Importance:
        key = (
            study.record.id,
            tuple((t.number, t.value) for t in trials if t.state is TrialState.COMPLETE),
        )
        with self._lock:
            if key in self._data:
                self._data.move_to_end(key)
                return self._data[key]
        value = importance(trials, study.space)
        with self._lock:
            self._data[key] = value
            while len(self._data) > self._size:
                self._data.popitem(last=False)
        return value


def _revision(trials: Sequence[FrozenTrial]) -> str:
    """What the optimiser views depend on: each trial's number, state, value and last step."""
    key = repr([(t.number, t.state.value, t.value, t.last_step) for t in trials]).encode()
    return hashlib.blake2b(key, digest_size=10).hexdigest()


class _OptimizerCache:
    """The optimiser views of each study revision (:func:`_revision`): the GP is fitted once
    per revision and each figure drawn once; the timeline of a study with running trials is
    drawn afresh (its bars grow and its ETAs move with the clock)."""

    def __init__(self, size: int = 64) -> None:
        self._models: OrderedDict[tuple[int, str], tuple[Any, Any]] = OrderedDict()
        self._figures: OrderedDict[tuple[Any, ...], dict[str, Any]] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def _model(self, study: Study, trials: Sequence[FrozenTrial], rev: str) -> tuple[Any, Any]:
        """The revision's fitted model (or why there is none) and a memo its views share."""
        from hpo.plots._optimizer import fit

        key = (study.record.id, rev)
        with self._lock:
            if key in self._models:
                self._models.move_to_end(key)
                return self._models[key]
        model: tuple[Any, dict[str, Any]] = (
            fit(study.space, trials, study.direction, study.strategy),
            {},
        )
        with self._lock:
            self._models[key] = model
            while len(self._models) > 8:
                self._models.popitem(last=False)
        return model

    def get(
        self,
        study: Study,
        trials: Sequence[FrozenTrial],
        kinds: Sequence[str],
        x: str | None,
        y: str | None,
    ) -> tuple[str, dict[str, Any], list[str]]:
        """(revision, figures by kind, the kinds served from the cache)."""
        rev = _revision(trials)
        running = any(t.state is TrialState.RUNNING for t in trials)
        out: dict[str, Any] = {}
        hits: list[str] = []
        for kind in kinds:
            pair = (x, y) if kind == "contour" else (None, None)
            key = (study.record.id, rev, kind, *pair)
            volatile = kind == "timeline" and running
            with self._lock:
                fig = None if volatile else self._figures.get(key)
            if fig is not None:
                out[kind] = fig
                hits.append(kind)
                continue
            model, memo = (
                self._model(study, trials, rev)
                if kind in ("surrogate", "acquisition", "contour", "learning")
                else (None, None)
            )
            fig = optimizer_figure(
                kind,
                study.space,
                trials,
                study.direction,
                study.strategy,
                seed=study.record.seed,
                x=x,
                y=y,
                model=model,
                memo=memo,
            )
            out[kind] = fig
            if not volatile:
                with self._lock:
                    self._figures[key] = fig
                    while len(self._figures) > self._size:
                        self._figures.popitem(last=False)
        return rev, out, hits


def _loopback_name(host_header: str) -> bool:
    """Whether a Host header (``name[:port]``) names this machine's loopback."""
    try:
        name = urllib.parse.urlsplit(f"//{host_header}").hostname or ""
    except ValueError:  # not a host name at all ("[::1" and the like)
        return False
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _netloc(url: str) -> str | None:
    """The ``host[:port]`` of a URL such as an Origin header (None when it is not a URL)."""
    try:
        return urllib.parse.urlsplit(url).netloc
    except ValueError:
        return None


class _Guard:
    """What is decided before the app reads a request: the Host and Origin checks (other
    sites), the token, the body's size; then the security headers on every answer, and the
    study name taken from the raw path (so that an encoded '/' stays in the name).

    A pure ASGI middleware: a refused request's body is never read (a 100 MB POST without a
    token costs nothing), and a body without a Content-Length is cut off at the limit.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        token: str | None,
        token_reads: bool,
        max_body: int,
        scrub: _Scrub,
    ) -> None:
        self.app = app
        self.token = token
        self.token_reads = token_reads
        self.max_body = max_body
        self.scrub = scrub

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        send = self._headers(send, path)
        headers = Headers(scope=scope)
        refusal = self._refusal(scope["method"], path, headers)
        if refusal is not None:
            await self._answer(send, *refusal)
            return
        if scope["method"] not in ("GET", "HEAD", "OPTIONS") or "content-length" in headers:
            body = await self._body(receive, headers)
            if body is None:
                await self._answer(
                    send,
                    413,
                    "PayloadTooLarge",
                    f"the request body is over the limit of {self.max_body} bytes.",
                )
                return
            receive = _replay(body)
        if path.startswith("/api/studies/"):
            scope = {**scope, "path": _name_path(scope)}
        await self.app(scope, receive, send)

    def _refusal(self, method: str, path: str, headers: Headers) -> tuple[int, str, str] | None:
        # Without a token the server trusts whoever reaches it, which a loopback bind limits
        # to this machine, but a browser on this machine runs other sites' code too: a page
        # could POST here (cross-site request forgery), or rename itself onto 127.0.0.1 and
        # read (DNS rebinding). A browser names the page's site in Origin and the name it
        # asked for in Host; tools such as curl and hpo.client send no Origin and a loopback
        # Host.
        host = headers.get("host", "")
        if self.token is None and not _loopback_name(host):
            return (
                421,
                "MisdirectedRequest",
                f"this server answers loopback names only (127.0.0.1, localhost), got Host "
                f"{host!r}; to serve other names, give it a token (--token).",
            )
        origin = headers.get("origin")
        write = method not in ("GET", "HEAD", "OPTIONS")
        if write and origin is not None and _netloc(origin) != host:
            return (
                403,
                "Forbidden",
                f"cross-site write refused: the request comes from a page at {origin}, not "
                f"from this server ({host}).",
            )
        if self.token is None:
            return None
        read = path.startswith("/api/") and path != "/api/config" and method != "OPTIONS"
        if not (write or (self.token_reads and read)):
            return None
        given = headers.get("authorization", "")
        scheme, _, credentials = given.partition(" ")
        if scheme.lower() == "bearer" and secrets.compare_digest(
            credentials.strip().encode(), self.token.encode()
        ):
            return None
        if not given:
            what = "writes and reads" if self.token_reads else "writes"
            return (
                401,
                "Unauthorized",
                f"this server needs a token for {what}: send the header "
                "'Authorization: Bearer <token>'.",
            )
        return 401, "Unauthorized", "wrong token."

    async def _body(self, receive: Receive, headers: Headers) -> bytes | None:
        """The whole body, or None when it is over the limit (read no further)."""
        length = headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_body):
            return None
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)

    async def _answer(self, send: Send, status: int, kind: str, detail: str) -> None:
        body = _encode({"detail": self.scrub(detail), "error": kind})
        headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
        if status == 401:
            headers.append((b"www-authenticate", b"Bearer"))
        if status == 413:
            headers.append((b"connection", b"close"))  # the unread body is not waited for
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    @staticmethod
    def _headers(send: Send, path: str) -> Send:
        if path == "/" or path.startswith("/static/"):
            csp = _PAGE_CSP
        elif path in ("/docs", "/redoc") or path.startswith("/docs/"):
            csp = _DOCS_CSP
        else:
            csp = _API_CSP
        extra = [*_HEADERS, (b"content-security-policy", csp.encode())]

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        return sending


def _replay(body: bytes) -> Receive:
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return {"type": "http.disconnect"}

    return receive


def _name_path(scope: Scope) -> str:
    """The path with the study's name segment taken from the raw path and percent-encoded
    again, so that the router sees one segment whatever the name holds ('/' included); the
    endpoints decode it (``_Studies.get``)."""
    raw = scope.get("raw_path")
    if not raw:
        return str(scope["path"])
    parts = raw.decode("latin-1").split("/")  # "", "api", "studies", NAME, ...
    if len(parts) < 4:
        return str(scope["path"])
    name = urllib.parse.unquote(parts[3])
    rest = [urllib.parse.unquote(p) for p in parts[4:]]
    return "/".join(["", "api", "studies", urllib.parse.quote(name, safe=""), *rest])


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
    scrub = _Scrub(store.url)
    studies = _Studies(store)
    snapshots = _Snapshots()
    # scikit-learn takes seconds to import: do it now, off the request path, so that the
    # first page asking for parameter importance does not wait for it.
    threading.Thread(target=_warm_up, name="hpo-warm-up", daemon=True).start()
    importance_cache = _ImportanceCache()
    optimizer_cache = _OptimizerCache()
    bearer = HTTPBearer(auto_error=False, description="The server's token (--token / HPO_TOKEN).")

    # The token is checked by _Guard, before the body is read; this dependency declares it in
    # the schema (only when there is one) and checks again.
    # (Dependencies as default values: this module's annotations are strings, and FastAPI
    # resolves them in the module's globals, where a local like `bearer` does not exist.)
    def authorised(creds: HTTPAuthorizationCredentials | None = Depends(bearer)) -> None:  # noqa: B008
        given = creds.credentials if creds is not None else ""
        if token is None or not secrets.compare_digest(given.encode(), token.encode()):
            raise HTTPException(401, "wrong token.", headers={"WWW-Authenticate": "Bearer"})

    Write = [Depends(authorised)] if token is not None else []
    Read = [Depends(authorised)] if token is not None and token_reads else []

    app = FastAPI(
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

    app.add_middleware(_Guard, token=token, token_reads=token_reads, max_body=max_body, scrub=scrub)

    # -- errors --------------------------------------------------------------------------
    def _error(
        detail: str, kind: str, status: int, headers: dict[str, str] | None = None
    ) -> Response:
        return _json({"detail": scrub(detail), "error": kind}, status, headers=headers)

    @app.exception_handler(HpoError)
    async def _hpo_error(request: Request, e: HpoError) -> Response:
        return _error(str(e), type(e).__name__, _status(e))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, e: RequestValidationError) -> Response:
        return _error(_one_line(e), "ValidationError", 422)

    @app.exception_handler(Exception)
    async def _bug(request: Request, e: Exception) -> Response:
        # A bug, not bad input (the fuzz test asks for none): still one line for the client,
        # the traceback for the server's log.
        log.exception("%s %s failed", request.method, request.url.path)
        message = scrub(f"internal error: {type(e).__name__}: {e}".splitlines()[0], 300)
        return _error(f"{message} (see the server's log)", "InternalError", 500)

    @app.exception_handler(HTTPException)
    async def _http(request: Request, e: HTTPException) -> Response:
        kind = {401: "Unauthorized", 404: "NotFound", 405: "MethodNotAllowed", 409: "Conflict"}
        headers = dict(e.headers or {})
        detail = str(e.detail)
        status = e.status_code
        if status == 405:
            # Every method the path answers (Starlette names those of one route only).
            methods: set[str] = set()
            for route in app.router.routes:
                regex = getattr(route, "path_regex", None)
                got = getattr(route, "methods", None)
                if regex is not None and got and regex.match(request.scope["path"]):
                    methods |= set(got)
            if methods:
                headers["Allow"] = ", ".join(sorted(methods))
            detail = f"{request.method} is not allowed here; allowed: {headers.get('Allow')}."
        elif status == 400 and detail == "There was an error parsing the body":
            # Starlette's answer to a body that is not UTF-8 JSON: a bad body, as documented
            status, detail = 422, "body: the body is not valid JSON (UTF-8)."
            return _error(detail, "ValidationError", status)
        return _error(detail, kind.get(status, "HTTPError"), status, headers)

    # -- studies -------------------------------------------------------------------------
    @app.get("/api/studies", tags=["studies"], response_model=list[StudyOut], dependencies=Read)
    def list_studies() -> Any:
        """Every study in the store, oldest first, with trials by state and the best value."""
        return [study_out(s) for s in store.list_studies()]

    def _trials(study: Study, snapshot: str | None = None) -> list[FrozenTrial]:
        found = snapshots.get(snapshot, study.record.id)
        return found if found is not None else store.get_trials(study.record.id)

    def _detail(study: Study, snapshot: str | None = None) -> dict[str, Any]:
        trials = _trials(study, snapshot)
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
            "best_trial": trial_out(best, mlflow_ui) if best is not None else None,
            "evaluation": evaluation_out(study.evaluation),
            "note": studies.note(study),
        }

    @app.post(
        "/api/studies",
        tags=["studies"],
        status_code=201,
        response_model=StudyDetail,
        responses=_ERRORS,
        dependencies=Write,
    )
    def create_study(body: StudyCreate) -> Any:
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
            space = hpo.SearchSpace.from_dict(
                {k: v.as_space_entry() for k, v in body.space.items()}
            )
        pruning: dict[str, Any] = {}
        if body.pruner is not None or body.pruner_options is not None:
            pruning = {"pruner": body.pruner, "pruner_options": body.pruner_options}
        study = hpo.create_study(
            space=space,
            strategy=body.strategy,
            direction=body.direction,
            storage=store,
            name=body.name,
            seed=body.seed,
            load_if_exists=body.load_if_exists,
            strategy_options=body.strategy_options,
            **pruning,
        )
        return _detail(study)

    @app.get(
        "/api/studies/{name}",
        tags=["studies"],
        response_model=StudyDetail,
        responses=_ERRORS,
        dependencies=Read,
    )
    def get_study(name: NamePath, snapshot: Snapshot = None) -> Any:
        """A study: how it was made, its trials by state and its best trial."""
        return _detail(studies.get(name), snapshot)

    # -- trials --------------------------------------------------------------------------
    @app.get(
        "/api/studies/{name}/trials",
        tags=["trials"],
        response_model=None,
        responses={200: {"model": list[TrialOut]}, **_ERRORS},
        dependencies=Read,
    )
    def list_trials(
        request: Request,
        name: NamePath,
        state: Annotated[list[TrialState] | None, Query(description="Only these states.")] = None,
        min_number: Annotated[int, Query(ge=0, le=INT32, description="From this number.")] = 0,
        attrs: Annotated[
            bool,
            Query(description="Include user_attrs and system_attrs (false: the page's view)."),
        ] = True,
    ) -> Response:
        """A study's trials by number. Sends an ``ETag``: with ``If-None-Match`` an unchanged
        list is a bodiless 304 (what the dashboard polls). ``attrs=false`` leaves out the
        attributes (per-epoch curves, host details), most of a trained trial's weight."""
        study = studies.get(name)
        trials = store.get_trials(study.record.id, states=state, min_number=min_number)
        rows = [trial_out(t, mlflow_ui, finite=False) for t in trials]
        if not attrs:
            for row in rows:
                del row["user_attrs"], row["system_attrs"]
        body = _encode(rows)
        etag = '"' + hashlib.blake2b(body, digest_size=12).hexdigest() + '"'
        if state is None and min_number == 0:
            snapshots.put(etag, study.record.id, trials)
        if request.headers.get("if-none-match") == etag:
            return Response(status_code=304, headers={"ETag": etag})
        return Response(body, media_type="application/json", headers={"ETag": etag})

    @app.get(
        "/api/studies/{name}/trials/{number}",
        tags=["trials"],
        response_model=TrialOut,
        responses=_ERRORS,
        dependencies=Read,
    )
    def get_trial(name: NamePath, number: NumberPath) -> Any:
        """One trial."""
        study = studies.get(name)
        return trial_out(studies.trial(study, number), mlflow_ui)

    @app.post(
        "/api/studies/{name}/ask",
        tags=["trials"],
        status_code=201,
        response_model=AskOut,
        responses=_ERRORS,
        dependencies=Write,
    )
    def ask(name: NamePath, body: AskIn | None = None) -> Any:
        """Start a trial: its number and the strategy's params (or the ``params`` given)."""
        study = studies.get(name)
        trial = study.ask(body.params if body is not None else None)
        return {"study": study.name, "number": trial.number, "params": clean(dict(trial.params))}

    @app.post(
        "/api/studies/{name}/trials/{number}/tell",
        tags=["trials"],
        response_model=TrialOut,
        responses=_ERRORS,
        dependencies=Write,
    )
    def tell(name: NamePath, number: NumberPath, body: TellIn) -> Any:
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
        study = studies.get(name)
        try:
            frozen = study.tell(number, body.value, state=body.state, error=body.error)
        except HpoError as e:
            if _status(e) == 503:
                raise
            # No such trial, or finished already: find out which for a precise 404 / 409.
            studies.running(study, number, "tell")
            raise
        return trial_out(frozen, mlflow_ui)

    @app.post(
        "/api/studies/{name}/trials/{number}/report",
        tags=["trials"],
        response_model=ReportOut,
        responses=_ERRORS,
        dependencies=Write,
    )
    def report(name: NamePath, number: NumberPath, body: ReportIn) -> Any:
        """Record an intermediate value of a running trial at ``step`` (an epoch, say), and
        say whether the study's pruner wants the trial stopped."""
        study = studies.get(name)
        t = studies.running(study, number, "report")
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

    # -- plots ---------------------------------------------------------------------------
    def _figures(
        study: Study,
        kinds: Sequence[str],
        highlight: Sequence[int],
        only: bool,
        snapshot: str | None,
    ) -> dict[str, Any]:
        trials = _trials(study, snapshot)
        out = {}
        for kind in kinds:
            imp = importance_cache.get(study, trials) if kind == "importance" else None
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

    # The figures skip FastAPI's response validation (thousands of points, already plain
    # JSON) and go straight to orjson; `responses` still documents them in the schema.
    @app.get(
        "/api/studies/{name}/plots",
        tags=["plots"],
        response_model=None,
        responses={200: {"model": dict[str, dict[str, Any]]}, **_ERRORS},
        dependencies=Read,
    )
    def plots(
        name: NamePath,
        kind: Annotated[
            list[PlotKind] | None, Query(description="Only these plots [default: all].")
        ] = None,
        highlight: Highlight = [],  # noqa: B006 - FastAPI copies query defaults
        highlight_ranges: HighlightRanges = None,
        snapshot: Snapshot = None,
    ) -> Response:
        """Several plots of the study from one read of its trials, as plotly figures keyed by
        kind."""
        kinds = [k.value for k in kind] if kind else list(KINDS)
        marked = [*highlight, *_numbers(highlight_ranges)]
        return _json(_figures(studies.get(name), kinds, marked, False, snapshot))

    @app.get(
        "/api/studies/{name}/plots/{kind}",
        tags=["plots"],
        response_model=None,
        responses={200: {"model": dict[str, Any]}, **_ERRORS},
        dependencies=Read,
    )
    def plot(
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
        return _json(_figures(studies.get(name), [k], marked, only_highlighted, snapshot)[k])

    # -- what the optimiser thinks ------------------------------------------------------
    @app.get(
        "/api/studies/{name}/optimizer",
        tags=["plots"],
        response_model=None,
        responses={200: {"model": dict[str, Any]}, **_ERRORS},
        dependencies=Read,
    )
    def optimizer(
        name: NamePath,
        kind: Annotated[
            list[OptimizerKind] | None,
            Query(description="Only these views [default: those of the study's strategy]."),
        ] = None,
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
        study = studies.get(name)
        for param, what in ((x, "x"), (y, "y")):
            if param is not None and param not in study.space:
                raise HTTPException(
                    422,
                    f"query {what}: {param!r} is not a parameter of study {study.name!r}; "
                    f"pick one of {', '.join(study.space)}.",
                )
        kinds = [k.value for k in kind] if kind else list(default_kinds(study.record.strategy))
        trials = _trials(study, snapshot)
        rev, figs, hits = optimizer_cache.get(study, trials, kinds, x, y)
        return _json(
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

    # -- notes ---------------------------------------------------------------------------
    @app.put(
        "/api/studies/{name}/note",
        tags=["studies"],
        response_model=StudyDetail,
        responses=_ERRORS,
        dependencies=Write,
    )
    def study_note(name: NamePath, body: NoteIn) -> Any:
        """Keep a note on the study (in the store, with the study); an empty note removes it."""
        study = studies.get(name)
        store.annotate_study(study.record.id, {"note": body.note or None})
        return _detail(studies.get(name))

    @app.put(
        "/api/studies/{name}/trials/{number}/note",
        tags=["trials"],
        response_model=TrialOut,
        responses=_ERRORS,
        dependencies=Write,
    )
    def trial_note(name: NamePath, number: NumberPath, body: NoteIn) -> Any:
        """Keep a note on a trial, finished or not (the result itself never changes)."""
        study = studies.get(name)
        t = studies.trial(study, number)
        store.annotate_trial(int(t.system_attrs["trial_id"]), {"note": body.note or None})
        return trial_out(studies.trial(study, number), mlflow_ui)

    # -- the page ------------------------------------------------------------------------
    @app.get("/api/config", tags=["studies"], response_model=dict[str, Any])
    def config() -> Any:
        """What the page needs to know: poll interval, whether writes need a token."""
        return {
            "version": hpo.__version__,
            "poll_interval": poll_interval,
            "token_required": token is not None,
            "token_reads": token_reads,
            "storage": _masked(store.url),
        }

    @app.get("/", include_in_schema=False)
    def index() -> Response:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


def _warm_up() -> None:
    try:
        for module in ("sklearn.ensemble", "sklearn.inspection"):
            importlib.import_module(module)
    except ImportError:  # reported when importance is asked for
        pass


def _masked(url: str) -> str:
    from hpo.storage import mask_url

    return mask_url(url)
