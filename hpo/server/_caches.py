"""What the server keeps between requests: the trials behind recent ETags, parameter
importance, and the optimiser views of each study revision. Each is a small LRU behind a lock
(the endpoints run in a thread pool)."""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from hpo.plots._data import Importance, importance
from hpo.plots._optimizer_figures import optimizer_figure
from hpo.study import Study
from hpo.trial import FrozenTrial, TrialState

__all__ = ["ImportanceCache", "OptimizerCache", "Snapshots"]


class Snapshots:
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


class ImportanceCache:
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


class OptimizerCache:
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
            out[kind] = fig = self._draw(study, trials, rev, kind, x, y)
            if not volatile:
                with self._lock:
                    self._figures[key] = fig
                    while len(self._figures) > self._size:
                        self._figures.popitem(last=False)
        return rev, out, hits

    def _draw(
        self,
        study: Study,
        trials: Sequence[FrozenTrial],
        rev: str,
        kind: str,
        x: str | None,
        y: str | None,
    ) -> dict[str, Any]:
        model, memo = (
            self._model(study, trials, rev)
            if kind in ("surrogate", "acquisition", "contour", "learning")
            else (None, None)
        )
        return optimizer_figure(
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
