"""The trial runner and the driver loop, written once for every executor.

* :func:`run_trial` runs one trial where it is: the objective, its heartbeat, its end told
  to the store (and so to the study's observers), Ctrl-C marked as an interruption.
* :func:`drive` is ``Study.optimize``: it hands trials (promoted, resumed or new) to an
  executor until ``n_trials``, ``timeout``, ``max_trials`` or the strategy says stop, collects
  them, retries those whose worker died, and tells the observers.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import traceback
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from hpo._observer import CallbackObserver, Observer, notify
from hpo.exceptions import HpoError, PrunerError, SearchExhausted, StorageError, TrialPruned
from hpo.executors._recovery import mark_interrupted, promote_paused, resume
from hpo.trial import FrozenTrial, TrialState

if TYPE_CHECKING:
    from hpo.executors._base import Executor
    from hpo.study import Study
    from hpo.trial._trial import Trial

__all__ = ["Heartbeat", "check_pause", "drive", "read_trial", "run_trial", "trial_ended"]

log = logging.getLogger("hpo")


def read_trial(study: Study, number: int) -> FrozenTrial:
    """Trial ``number`` of ``study`` as stored now.

    Raises:
        HpoError: the study has no such trial.
    """
    t = study.store.get_trial(study.record.id, number)
    if t is None:
        raise HpoError(f"study {study.name!r} has no trial {number}.")
    return t


def trial_ended(
    study: Study,
    frozen: FrozenTrial,
    trial: Trial | None,
    observers: Iterable[Observer] | None = None,
) -> None:
    """Tell ``observers`` (by default the study's) that ``frozen`` ended."""
    notify(
        study.observers if observers is None else observers,
        lambda o: o.on_trial_end(study, frozen, trial),
        f"trial {frozen.number}",
    )


def _trial_started(study: Study, trial: Trial) -> None:
    notify(study.observers, lambda o: o.on_trial_start(study, trial), f"trial {trial.number}")


class Heartbeat:
    """Tells the store every ``study.heartbeat_interval`` seconds that the trials this
    process runs are alive; a trial silent for ``study.stale_after`` seconds is taken for
    interrupted by any other process (:meth:`hpo.study.Study.recover_orphans`)."""

    def __init__(self, study: Study) -> None:
        self._study = study
        self._ids: set[int] = set()
        self._lock = threading.Lock()
        self._stop: threading.Event | None = None

    def add(self, trial_id: int) -> None:
        with self._lock:
            self._ids.add(trial_id)

    def discard(self, trial_id: int) -> None:
        with self._lock:
            self._ids.discard(trial_id)

    def start(self) -> None:
        if self._stop is None:
            self._stop = threading.Event()
            threading.Thread(
                target=self._beat, args=(self._stop,), name="hpo-heartbeat", daemon=True
            ).start()

    def stop(self) -> None:
        if self._stop is not None:
            self._stop.set()
            self._stop = None

    def _beat(self, stop: threading.Event) -> None:
        while not stop.wait(self._study.heartbeat_interval):
            with self._lock:
                ids = list(self._ids)
            try:
                self._study.store.heartbeat(ids)
            except HpoError as e:  # a missed beat is not worth a dead study
                log.warning("heartbeat failed: %s", e)


def run_trial(
    study: Study,
    objective: Callable[[Trial], Any],
    trial: Trial,
    heartbeat: Heartbeat | None = None,
) -> FrozenTrial:
    """Run ``objective(trial)`` in this process and tell ``study`` how it ended: its value
    (complete), :class:`hpo.TrialPruned` (pruned), or any other exception, None, NaN...
    (failed, with the reason and traceback stored). Ctrl-C marks the trial interrupted,
    tells the observers and re-raises; a :class:`hpo.StorageError` is re-raised as is."""
    if heartbeat is not None:
        heartbeat.add(trial.trial_id)
    try:
        return _run(study, objective, trial)
    finally:
        if heartbeat is not None:
            heartbeat.discard(trial.trial_id)


def _run(study: Study, objective: Callable[[Trial], Any], trial: Trial) -> FrozenTrial:
    try:
        value = objective(trial)
    except TrialPruned:
        return study.tell(trial, state=TrialState.PRUNED)
    except KeyboardInterrupt:
        with contextlib.suppress(Exception, KeyboardInterrupt):
            trial.wait_checkpoints()
        mark_interrupted(study.store, trial.trial_id, "interrupted: stopped by Ctrl-C")
        with contextlib.suppress(Exception, KeyboardInterrupt):
            trial_ended(study, read_trial(study, trial.number), trial)
        raise
    except StorageError:
        raise
    except Exception as e:
        tb = traceback.format_exc(limit=-8)
        message = f"{type(e).__name__}: {e}"
        log.warning("trial %d failed: %s", trial.number, message)
        with contextlib.suppress(HpoError):
            trial.set_system_attrs({"traceback": tb})
        return study.tell(trial, state=TrialState.FAILED, error=message)
    frozen = study.tell(trial, value)
    if frozen.state is TrialState.FAILED:
        log.warning("trial %d failed: %s", trial.number, frozen.error)
    return frozen


def check_pause(pruner: object, checkpointing: object) -> None:
    """A pruner that pauses trials needs checkpoints to let them go on.

    Raises:
        PrunerError: it pauses and the study keeps no checkpoints; the message says how to
            give it some.
    """
    if getattr(pruner, "pauses", False) and checkpointing is None:
        raise PrunerError(
            f"pruner {getattr(pruner, 'name', pruner)!r} with pause=true lets paused trials go "
            "on from their checkpoints, and this study keeps none (an in-memory or server "
            "store without a checkpoint location, or checkpoints off); give it one "
            "(--checkpoint-dir, or study.checkpointing = hpo.Checkpointing(DIR)) or drop "
            "pause=true."
        )


def drive(
    executor: Executor,
    study: Study,
    objective: Callable[[Trial], Any],
    *,
    n_trials: int | None,
    timeout: float | None,
    max_trials: int | None,
    callbacks: Iterable[Callable[[Study, FrozenTrial], None]],
    observers: Iterable[Observer],
    show_progress: bool,
) -> None:
    """The loop of ``Study.optimize`` (see there), for any executor.

    The run's observers (``callbacks``, ``observers``, the progress display) join
    ``study.observers`` while it runs, so they hear every event the study's own do.
    """
    if n_trials is not None and (isinstance(n_trials, bool) or n_trials < 0):
        raise HpoError(f"n_trials must be a non-negative integer, got {n_trials!r}.")
    if n_trials is None and timeout is None and max_trials is None:
        log.info("optimize without n_trials or timeout runs until the search is exhausted")
    check_pause(study.pruner, study.checkpointing)
    study.recover_orphans()
    mine: list[Observer] = [CallbackObserver(cb) for cb in callbacks] + list(observers)
    progress = None
    if show_progress:
        from hpo._progress import Progress

        progress = Progress.for_run(study, n_trials, timeout, max_trials)
        mine.append(progress)
    study.observers.extend(mine)
    heartbeat = Heartbeat(study)
    heartbeat.start()
    try:
        if progress is not None:
            progress.start()
        try:
            executor.start(study, objective)
            _loop(executor, study, heartbeat, n_trials, timeout, max_trials)
        finally:
            executor.stop()
    finally:
        heartbeat.stop()
        study.observers[:] = [o for o in study.observers if not any(o is m for m in mine)]
        if progress is not None:
            progress.close()


def _loop(
    executor: Executor,
    study: Study,
    heartbeat: Heartbeat,
    n_trials: int | None,
    timeout: float | None,
    max_trials: int | None,
) -> None:
    # Trials handed out by this run and not yet collected, with how often their params ran
    # before: Ctrl-C must leave none of them running in the store.
    outstanding: dict[int, tuple[Trial, int]] = {}

    def launch(trial: Trial, attempt: int) -> None:
        outstanding[trial.trial_id] = (trial, attempt)
        heartbeat.add(trial.trial_id)
        executor.submit(trial, attempt)
        _trial_started(study, trial)

    t0 = time.monotonic()
    asked = 0
    exhausted = False
    try:
        while True:
            while len(outstanding) < executor.capacity:
                if timeout is not None and time.monotonic() - t0 >= timeout:
                    break
                # A paused trial its pruner now promotes goes first; it is not a new trial,
                # so promotions go on after the last new one (ASHA's rule). One still out
                # (paused by its worker, not yet collected here) waits for its collection.
                trial = promote_paused(study, busy=outstanding.keys())
                if trial is None:
                    if exhausted or (n_trials is not None and asked >= n_trials):
                        break
                    try:
                        trial = study.resume_interrupted(max_trials) or study.ask(
                            max_trials=max_trials
                        )
                    except SearchExhausted as e:
                        log.debug("%s", e)
                        exhausted = True
                        break
                    asked += 1
                launch(trial, 0)
            if not outstanding:
                break
            for done in executor.wait():
                _, attempt = outstanding.pop(done.trial.trial_id)
                heartbeat.discard(done.trial.trial_id)
                if done.retry:
                    # Resume from its last checkpoint, else its params as a new trial.
                    again = resume(study, done.frozen) or study.ask(params=done.trial.params)
                    launch(again, attempt + 1)
                if not done.observed:
                    trial_ended(study, done.frozen, None)
    except KeyboardInterrupt:
        executor.cancel()
        for trial, _ in outstanding.values():
            mark_interrupted(study.store, trial.trial_id, "interrupted: stopped by Ctrl-C")
        raise
