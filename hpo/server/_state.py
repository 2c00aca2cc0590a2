"""The app's shared state: the store, the studies it has open, the caches and the settings.

:func:`create_app <hpo.server.create_app>` keeps one :class:`ServerState` in
``app.state.hpo``; the endpoints take it as the :data:`Server` dependency.
"""

from __future__ import annotations

import threading
import urllib.parse
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, Request
from starlette.exceptions import HTTPException
from starlette.routing import BaseRoute

import hpo
from hpo.server._caches import ImportanceCache, OptimizerCache, Snapshots
from hpo.storage import Store
from hpo.study import Study
from hpo.trial import FrozenTrial

if TYPE_CHECKING:
    from hpo.server._security import Scrub

__all__ = ["Server", "ServerState", "Studies", "server_state"]


class Studies:
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
        name = urllib.parse.unquote(quoted)  # the path segment, as the Guard encoded it
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


@dataclass
class ServerState:
    """Everything the endpoints share, made once per app."""

    store: Store
    scrub: Scrub
    token: str | None = None
    token_reads: bool = False
    mlflow_ui: str | None = None
    poll_interval: float = 2.0
    studies: Studies = field(init=False)
    snapshots: Snapshots = field(default_factory=Snapshots)
    importance: ImportanceCache = field(default_factory=ImportanceCache)
    optimizer: OptimizerCache = field(default_factory=OptimizerCache)
    #: The endpoints of the routers the app includes (FastAPI keeps an included router as
    #: one entry of ``app.routes``): what a 405's Allow header is made from.
    routes: list[BaseRoute] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.studies = Studies(self.store)

    def trials(self, study: Study, snapshot: str | None = None) -> list[FrozenTrial]:
        """The study's trials: those of a recent trials list's ETag, else read afresh."""
        found = self.snapshots.get(snapshot, study.record.id)
        return found if found is not None else self.store.get_trials(study.record.id)


async def server_state(request: Request) -> ServerState:
    # async: FastAPI runs it on the event loop, not in a worker thread.
    state: ServerState = request.app.state.hpo
    return state


#: The endpoints' parameter for the shared state.
Server = Annotated[ServerState, Depends(server_state)]
