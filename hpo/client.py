"""A small client of the hpo HTTP API (``hpo dashboard``), standard library only.

>>> from hpo.client import Client
>>> client = Client("http://127.0.0.1:8080", token=None)          # doctest: +SKIP
>>> study = client.create_study(
...     space={"x": {"type": "float", "low": -5, "high": 5}}, strategy="random", name="remote"
... )                                                              # doctest: +SKIP
>>> trial = study.ask()                                            # doctest: +SKIP
>>> trial.report(trial.params["x"] ** 2 + 1, step=1)               # doctest: +SKIP
>>> study.tell(trial, trial.params["x"] ** 2)                      # doctest: +SKIP

Mirrors the library: ``create_study`` / ``load_study`` give a :class:`RemoteStudy` with
``ask`` / ``tell`` / ``optimize`` / ``trials`` / ``best_*``; trials come back as
:class:`hpo.FrozenTrial`. Errors are hpo's own exceptions, rebuilt from the server's answer
(``StudyNotFoundError``, ``DuplicatedStudyError``, ``SpaceError``...), or :class:`ClientError`
(a subclass of :class:`hpo.HpoError`) with the HTTP status.

Why the standard library (``http.client``) and not httpx or requests: one keep-alive
connection per thread is all a client of a few endpoints needs, and a pipeline that installs
hpo to drive a remote study gets no extra dependency.
"""

from __future__ import annotations

import datetime as _dt
import http.client
import json
import math
import threading
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from hpo import exceptions as _exc
from hpo.exceptions import HpoError, TrialPruned
from hpo.space import SearchSpace
from hpo.trial import FrozenTrial, TrialState
from hpo.trial._trial import check_value

__all__ = ["Client", "ClientError", "RemoteStudy", "RemoteTrial"]


class ClientError(HpoError):
    """The server refused a request (``status``: the HTTP status) or could not be reached
    (``status`` 0)."""

    def __init__(self, message: str, status: int = 0, kind: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.kind = kind


# Errors the server names that are hpo's own: raised as such on this side.
_KNOWN = {
    name: getattr(_exc, name)
    for name in _exc.__all__
    if isinstance(getattr(_exc, name), type) and issubclass(getattr(_exc, name), HpoError)
}


_MAX_ERROR = 2000  # characters the API keeps of a failure's reason


def _fit_error(text: str) -> str:
    """A failure reason as the API takes it: no NUL characters, at most 2,000 characters
    (a CUDA error or a long traceback would otherwise get a 422 and leave the trial
    running)."""
    text = text.replace("\x00", "")
    return text if len(text) <= _MAX_ERROR else text[: _MAX_ERROR - 1] + "…"


def _error(status: int, raw: bytes, what: str) -> HpoError:
    try:
        body = json.loads(raw)
        detail, kind = str(body.get("detail")), str(body.get("error", ""))
    except (ValueError, AttributeError):
        detail, kind = (
            raw.decode(errors="replace").strip()[:300]
            or http.client.responses.get(status, "error"),
            "",
        )
    cls = _KNOWN.get(kind)
    if cls is not None:
        return cls(detail)
    return ClientError(f"{what}: {detail} (HTTP {status})", status, kind)


def _time(s: str | None) -> _dt.datetime | None:
    if not s:
        return None
    return _dt.datetime.fromisoformat(s.replace("Z", "+00:00"))


def frozen_from_json(d: Mapping[str, Any]) -> FrozenTrial:
    """A trial as the API sends it, back as the library's record."""
    system = dict(d.get("system_attrs") or {})
    if d.get("mlflow_run_id"):
        system.setdefault("mlflow_run_id", d["mlflow_run_id"])
    state = TrialState(d["state"])
    return FrozenTrial(
        number=int(d["number"]),
        state=state,
        params=MappingProxyType(dict(d.get("params") or {})),
        value=d.get("value"),
        intermediate=MappingProxyType(
            {int(k): (math.nan if v is None else float(v)) for k, v in d["intermediate"].items()}
        ),
        started_at=_time(d.get("started_at")),
        finished_at=_time(d.get("finished_at")),
        error=d.get("reason") if state is TrialState.FAILED else None,
        user_attrs=MappingProxyType(dict(d.get("user_attrs") or {})),
        system_attrs=MappingProxyType(system),
    )


class Client:
    """Talks to one hpo server.

    Args:
        url: The server's address, e.g. ``http://127.0.0.1:8080``.
        token: Sent as ``Authorization: Bearer <token>`` (needed for writes when the server
            has one).
        timeout: Seconds to wait for each answer (a ``bayes`` ask on a big study takes a
            while).
    """

    def __init__(self, url: str, token: str | None = None, timeout: float = 60.0) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise HpoError(f"url must look like http://host:port, got {url!r}.")
        self.url = url.rstrip("/")
        self.token = token
        self.timeout = timeout
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port
        self._prefix = parts.path.rstrip("/")
        self._local = threading.local()

    def __repr__(self) -> str:
        return f"Client({self.url!r})"

    # -- transport -------------------------------------------------------------------------
    def _connection(self) -> http.client.HTTPConnection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            cls = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
            conn = cls(self._host, self._port, timeout=self.timeout)
            self._local.conn = conn
            self._local.used = False
        return conn

    def _drop(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
        self._local.conn = None

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        query: Sequence[tuple[str, Any]] = (),
    ) -> Any:
        """Send one request and return the decoded JSON answer (raises on 4xx/5xx)."""
        target = self._prefix + path
        if query:
            target += "?" + urllib.parse.urlencode(list(query))
        headers = {"Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body, allow_nan=False).encode()
            headers["Content-Type"] = "application/json"
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        what = f"{method} {path}"
        for attempt in range(2):
            conn = self._connection()
            reused = bool(getattr(self._local, "used", False))
            try:
                conn.request(method, target, body=data, headers=headers)
                resp = conn.getresponse()
                raw = resp.read()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as e:
                # The server closed an idle keep-alive connection: reconnect once. (A fresh
                # connection that fails is reported, never retried: a POST must not run twice.)
                self._drop()
                if attempt or not reused:
                    raise ClientError(f"cannot reach the hpo server at {self.url}: {e}.") from None
                continue
            except (OSError, http.client.HTTPException) as e:
                self._drop()
                reason = getattr(e, "strerror", None) or str(e) or type(e).__name__
                raise ClientError(f"cannot reach the hpo server at {self.url}: {reason}.") from None
            self._local.used = True
            if resp.status >= 400:
                raise _error(resp.status, raw, what)
            return json.loads(raw) if raw else None
        raise AssertionError("unreachable")  # pragma: no cover

    @staticmethod
    def _path(name: str) -> str:
        return "/api/studies/" + urllib.parse.quote(name, safe="")

    # -- studies ---------------------------------------------------------------------------
    def studies(self) -> list[dict[str, Any]]:
        """Every study: name, space, strategy, direction, trials by state, best value..."""
        return list(self.request("GET", "/api/studies"))

    def create_study(
        self,
        space: SearchSpace | Mapping[str, Any] | str,
        *,
        strategy: str = "bayes",
        direction: str = "minimize",
        name: str | None = None,
        seed: int | None = 0,
        strategy_options: Mapping[str, Any] | None = None,
        pruner: str | None = None,
        pruner_options: Mapping[str, Any] | None = None,
        load_if_exists: bool = False,
    ) -> RemoteStudy:
        """Create a study on the server, like :func:`hpo.create_study`.

        ``space`` is a :class:`hpo.SearchSpace`, the parameters as in a YAML file's
        ``params:`` (``{"lr": {"type": "float", "low": 1e-4, "high": 0.1, "log": True}}``),
        or the name of a space shipped with hpo.
        """
        spec = space.to_dict() if isinstance(space, SearchSpace) else space
        body: dict[str, Any] = {
            "space": spec if isinstance(spec, str) else dict(spec),
            "strategy": strategy,
            "direction": direction,
            "seed": seed,
            "load_if_exists": load_if_exists,
        }
        for key, value in (
            ("name", name),
            ("strategy_options", strategy_options),
            ("pruner", pruner),
            ("pruner_options", pruner_options),
        ):
            if value is not None:
                body[key] = dict(value) if isinstance(value, Mapping) else value
        detail = self.request("POST", "/api/studies", body)
        return RemoteStudy(self, detail["name"], direction=detail["direction"])

    def load_study(self, name: str) -> RemoteStudy:
        """A study that exists on the server. Raises StudyNotFoundError."""
        detail = self.study(name)
        return RemoteStudy(self, detail["name"], direction=detail["direction"])

    def study(self, name: str) -> dict[str, Any]:
        """A study's details: space, strategy, trials by state, best trial."""
        return dict(self.request("GET", self._path(name)))

    # -- trials ----------------------------------------------------------------------------
    def trials(
        self, name: str, states: Sequence[TrialState | str] | None = None
    ) -> list[FrozenTrial]:
        """A study's trials, ordered by number."""
        query = [("state", TrialState(s).value) for s in states or ()]
        rows = self.request("GET", self._path(name) + "/trials", query=query)
        return [frozen_from_json(r) for r in rows]

    def ask(self, name: str, params: Mapping[str, Any] | None = None) -> RemoteTrial:
        """Start a trial: the strategy's params, or ``params`` if given."""
        body = {"params": dict(params)} if params is not None else None
        out = self.request("POST", self._path(name) + "/ask", body)
        return RemoteTrial(self, out["study"], int(out["number"]), MappingProxyType(out["params"]))

    def tell(
        self,
        name: str,
        number: int,
        value: Any = None,
        *,
        state: TrialState | str | None = None,
        error: str | None = None,
    ) -> FrozenTrial:
        """Finish a trial, with the library's rules: a value that is None, NaN, infinite or
        not a number fails it with that reason; ``state="pruned"`` or ``"failed"`` (with
        ``error``) end it so."""
        st = TrialState(state) if state is not None else TrialState.COMPLETE
        body: dict[str, Any] = {"state": st.value}
        if st is TrialState.COMPLETE:
            v, reason = check_value(value)
            body = (
                {"state": "complete", "value": v}
                if reason is None
                else {
                    "state": "failed",
                    "error": _fit_error(error or reason),
                }
            )
        elif st is TrialState.FAILED:
            body["error"] = _fit_error(error or "failed")
        elif value is not None:  # pruned, with the value to keep
            v, _ = check_value(value)
            if v is not None:
                body["value"] = v
        out = self.request("POST", f"{self._path(name)}/trials/{int(number)}/tell", body)
        return frozen_from_json(out)

    def report(self, name: str, number: int, value: float, step: int) -> bool:
        """Record an intermediate value; returns whether the study's pruner says stop."""
        v = float(value)
        if not math.isfinite(v):
            raise HpoError(f"report: value must be a finite number, got {value!r}.")
        out = self.request(
            "POST",
            f"{self._path(name)}/trials/{int(number)}/report",
            {"step": int(step), "value": v},
        )
        return bool(out["should_prune"])


@dataclass
class RemoteTrial:
    """A trial being evaluated by this process, on a study that lives on a server."""

    client: Client
    study: str
    number: int
    params: Mapping[str, Any]
    _prune: bool = field(default=False, repr=False)

    def report(self, value: float, step: int) -> None:
        """Record an intermediate value (e.g. validation accuracy after epoch ``step``)."""
        self._prune = self.client.report(self.study, self.number, value, step)

    def should_prune(self) -> bool:
        """What the study's pruner said at the last report."""
        return self._prune


class RemoteStudy:
    """A study on a server, with the library's ask/tell/optimize API."""

    def __init__(self, client: Client, name: str, direction: str = "minimize") -> None:
        self.client = client
        self.name = name
        self.direction = direction

    def __repr__(self) -> str:
        return f"RemoteStudy({self.name!r}, {self.client.url!r})"

    def ask(self, params: Mapping[str, Any] | None = None) -> RemoteTrial:
        return self.client.ask(self.name, params)

    def tell(
        self,
        trial: RemoteTrial | int,
        value: Any = None,
        *,
        state: TrialState | str | None = None,
        error: str | None = None,
    ) -> FrozenTrial:
        number = trial.number if isinstance(trial, RemoteTrial) else int(trial)
        return self.client.tell(self.name, number, value, state=state, error=error)

    def optimize(self, objective: Callable[[RemoteTrial], Any], n_trials: int) -> None:
        """Run ``objective`` on ``n_trials`` new trials, here, one after another. As in the
        library, an exception fails the trial (with its reason) and the loop goes on;
        :class:`hpo.TrialPruned` prunes it."""
        for _ in range(int(n_trials)):
            trial = self.ask()
            try:
                value = objective(trial)
            except TrialPruned:
                self.tell(trial, state=TrialState.PRUNED)
                continue
            except Exception as e:
                self.tell(trial, state=TrialState.FAILED, error=f"{type(e).__name__}: {e}")
                continue
            self.tell(trial, value)

    @property
    def trials(self) -> list[FrozenTrial]:
        return self.client.trials(self.name)

    @property
    def best_trial(self) -> FrozenTrial:
        best = self.client.study(self.name).get("best_trial")
        if best is None:
            raise HpoError(f"study {self.name!r} has no completed trial yet.")
        return frozen_from_json(best)

    @property
    def best_value(self) -> float:
        v = self.best_trial.value
        assert v is not None  # a completed trial always has a value
        return float(v)

    @property
    def best_params(self) -> dict[str, Any]:
        return dict(self.best_trial.params)
