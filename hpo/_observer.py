"""Observers: what hears about a study's trials — the MLflow tracker, the progress display,
the ``callbacks`` of ``Study.optimize``. One interface (after Ray Tune's ``Callback``), one
place that calls it (:func:`notify`)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, ClassVar

from hpo.trial import FrozenTrial

if TYPE_CHECKING:
    from hpo.study import Study
    from hpo.trial._trial import Trial

__all__ = ["CallbackObserver", "Observer", "notify"]

log = logging.getLogger("hpo")


class Observer:
    """Hears about a study's trials. Every method is optional: the base class does nothing.

    Add one to ``study.observers`` (it hears every trial of that ``Study`` object, ask/tell
    included) or pass it to ``Study.optimize(observers=...)`` (it hears that call's trials).

    Rules:
        * Who calls what: ``on_trial_start`` comes from the process that hands the trial out
          (with a :class:`hpo.executors.RayExecutor`, the driver); ``on_report`` from the
          process where the trial runs (a Ray worker's observers hear its reports, the
          driver's do not); ``on_trial_end`` from the process that finished the trial or, for
          a trial that finished in another process, from the driver when it hears of it
          (then ``trial`` is None: the live trial and its in-memory artifacts stayed there).
        * The trial is stored before an observer hears of it: an observer that fails (a
          tracking server down) loses nothing. Its exception is logged as a warning and the
          study goes on, unless the class sets :attr:`propagate_errors` (user callbacks do).
        * ``flush`` waits for what the observer does in the background (a Ray worker calls it
          after each trial, before the trial counts as done there). ``close`` is called once
          by whoever made the observer, when it is done with it; ``optimize`` never closes
          the observers it is given.
    """

    #: Let an exception raised by this observer stop the study instead of being logged.
    propagate_errors: ClassVar[bool] = False

    def on_trial_start(self, study: Study, trial: Trial) -> None:
        """A trial of this process starts running (a new one, or one resumed)."""

    def on_report(self, study: Study, trial: Trial, step: int, value: float) -> None:
        """The running ``trial`` reported ``value`` at ``step`` (it is stored already)."""

    def on_trial_end(self, study: Study, frozen: FrozenTrial, trial: Trial | None) -> None:
        """A trial finished: ``frozen`` as stored; ``trial`` the live one when it ran here."""

    def flush(self) -> bool:
        """Wait until what this observer does in the background is done; False when it gave
        up waiting."""
        return True

    def close(self) -> None:
        """Release what the observer holds; called once, by its owner."""


class CallbackObserver(Observer):
    """A user callback ``fn(study, frozen)`` called when each trial ends. Its exceptions stop
    the study, as they always have (``Study.optimize(callbacks=...)``)."""

    propagate_errors = True

    def __init__(self, fn: Callable[[Study, FrozenTrial], None]) -> None:
        self.fn = fn

    def on_trial_end(self, study: Study, frozen: FrozenTrial, trial: Trial | None) -> None:
        self.fn(study, frozen)

    def __repr__(self) -> str:
        return f"CallbackObserver({self.fn!r})"


def notify(
    observers: Iterable[Observer], event: Callable[[Observer], object], what: str = "event"
) -> None:
    """Call ``event(obs)`` for each observer; a failure is a warning naming the observer and
    ``what`` (never fatal, unless the observer propagates its errors)."""
    for obs in list(observers):
        try:
            event(obs)
        except Exception as e:
            if obs.propagate_errors:
                raise
            log.warning("%s failed on %s: %s", type(obs).__name__, what, e)
