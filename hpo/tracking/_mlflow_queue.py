"""A tracker's background delivery: the bounded queue of trials waiting to be logged, the
thread that logs them, and the circuit breaker (a watchdog that probes the server's ``/health``
when a request hangs, and a cooldown) that keeps a dead or hung server from stalling a study."""

from __future__ import annotations

import logging
import queue
import threading
import time
import urllib.request
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from hpo.trial import FrozenTrial

if TYPE_CHECKING:
    from hpo.study import Study

__all__ = ["QUEUE_SIZE", "_TrialQueue"]

log = logging.getLogger("hpo.tracking")

#: Trials waiting to be logged, at most; a trial that finds the queue full is left untracked.
QUEUE_SIZE = 1000
#: A request pending this long makes the watchdog ask the server's /health whether it lives.
_STALL_S = 0.1
#: How long that probe waits for an answer (a live server answers /health in milliseconds,
#: whatever else it is doing); and how long the breaker stays open before the next probe.
_PROBE_TIMEOUT_S = 0.5
_COOLDOWN_S = 10.0


class _TrialQueue:
    """The trials a tracker has yet to log, logged one at a time by ``deliver`` (True when it
    logged the trial) on a daemon thread, behind the circuit breaker for the server at ``uri``."""

    def __init__(self, uri: str, deliver: Callable[[Study, FrozenTrial, Any], bool]) -> None:
        self.uri = uri
        self._deliver = deliver
        self._queue: queue.Queue[tuple[Study, FrozenTrial, Any] | None] = queue.Queue(QUEUE_SIZE)
        self._worker: threading.Thread | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._busy_since: float | None = None  # when the item being logged was taken up
        self._down_until = 0.0  # the breaker: open (no requests) until this monotonic time

    @property
    def pending(self) -> int:
        """Trials queued or being logged."""
        return self._queue.unfinished_tasks

    def put(self, item: tuple[Study, FrozenTrial, Any]) -> None:
        """Queue a trial (starting the thread when it is not running); raises ``queue.Full``
        when ``QUEUE_SIZE`` trials are waiting already."""
        self._ensure_worker()
        self._queue.put_nowait(item)

    def wait(self, timeout: float) -> bool:
        """Wait (at most ``timeout`` s) until every queued trial is logged. True when done;
        False at once when the breaker is open, with the trials still queued."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks:
            if self.is_down() or time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True

    def stop(self, done: bool) -> None:
        """Stop the thread: after the queue, when ``done`` (every trial logged); else at once."""
        if self._worker is not None and self._worker.is_alive():
            if done:
                self._queue.put(None)
                self._worker.join(timeout=5)
            else:
                # A thread stuck on a hung server is a daemon (it never holds the process up);
                # told to stop, it logs nothing more, and a later trial gets a fresh queue.
                self._stop.set()
                self._queue = queue.Queue(QUEUE_SIZE)
        self._worker = None

    def _ensure_worker(self) -> None:
        with self._lock:
            if self._worker is None or not self._worker.is_alive():
                self._stop = threading.Event()
                self._worker = threading.Thread(
                    target=self._work,
                    args=(self._queue, self._stop),
                    name="hpo-mlflow",
                    daemon=True,
                )
                self._worker.start()
                threading.Thread(
                    target=self._watch,
                    args=(self._worker, self._stop),
                    name="hpo-mlflow-watch",
                    daemon=True,
                ).start()

    def _watch(self, worker: threading.Thread, stop: threading.Event) -> None:
        """Open the breaker as soon as a request hangs, while the trials run: a study that
        then waits for tracking (close, a Ray worker's flush) finds it open and goes on."""
        while worker.is_alive() and not stop.is_set():
            if not self.is_down():
                self.stalled()
            time.sleep(0.02)

    def _work(
        self, q: queue.Queue[tuple[Study, FrozenTrial, Any] | None], stop: threading.Event
    ) -> None:
        while True:
            item = q.get()
            try:
                if item is None:
                    return
                while self.is_down() and not stop.is_set():  # breaker open: wait, probe again
                    time.sleep(min(0.5, max(0.01, self._down_until - time.monotonic())))
                    if not self.is_down() and not self.probe():
                        self.trip()
                if stop.is_set():  # given up on (close): left to `hpo mlflow-sync`
                    continue
                self._busy_since = time.monotonic()
                ok = self._deliver(*item)
                if not ok and not self.probe():
                    self.trip()
            finally:
                self._busy_since = None
                q.task_done()

    # -- the circuit breaker ---------------------------------------------------------------
    def is_down(self) -> bool:
        return time.monotonic() < self._down_until

    def trip(self) -> None:
        self._down_until = time.monotonic() + _COOLDOWN_S

    def probe(self) -> bool:
        """Whether the tracking server answers ``/health`` within a second. Stores that are
        not servers (a local ``sqlite:`` or file store) cannot hang that way: always True."""
        if not self.uri.startswith(("http://", "https://")):
            return True
        try:
            with urllib.request.urlopen(
                self.uri.rstrip("/") + "/health", timeout=_PROBE_TIMEOUT_S
            ) as r:
                return bool(200 <= r.status < 300)
        except Exception as e:  # refused, timed out, an HTTP error: not answering as it should
            log.debug("MLflow health probe failed: %s", e)
            return False

    def stalled(self) -> bool:
        """A request has been pending a while and the server does not answer a probe: open
        the breaker (True). A slow but live server (a model upload) is waited for."""
        busy = self._busy_since
        if busy is None or time.monotonic() - busy < _STALL_S:
            return False
        if self.probe():
            self._busy_since = time.monotonic()  # alive: probe again only after another stall
            return False
        self.trip()
        return True
