"""The executor contract: where a study's trials run."""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hpo.trial import FrozenTrial

if TYPE_CHECKING:
    from hpo._observer import Observer
    from hpo.study import Study
    from hpo.trial._trial import Trial

__all__ = ["Executor", "Finished"]


@dataclass(frozen=True)
class Finished:
    """A trial an executor ran, as :meth:`Executor.wait` hands it back.

    Attributes:
        trial: The live trial given to :meth:`Executor.submit`.
        frozen: The trial as stored now: finished.
        retry: Run its params again (its worker died and the executor's retries allow it):
            the driver resumes it from its checkpoint, or asks a new trial with its params.
        observed: The study's observers in this process heard of its end already (it was
            told here); False when it finished in another process (a Ray worker), and the
            driver tells them.
    """

    trial: Trial
    frozen: FrozenTrial
    retry: bool = False
    observed: bool = True


class Executor(abc.ABC):
    """Runs a study's trials somewhere: in this process (:class:`InProcessExecutor`, the
    default) or on Ray (:class:`RayExecutor`).

    The driver loop (:meth:`run`, which ``Study.optimize`` calls) is written once, here; an
    executor only runs the trials it is handed. The loop calls :meth:`start` once, then keeps
    up to :attr:`capacity` trials submitted, collecting them with :meth:`wait`, and always
    ends with :meth:`stop` (after an error or Ctrl-C too).

    Rules:
        * An executor never chooses params, never asks the study for a trial and never
          counts trials: the loop does (``n_trials``, ``timeout``, ``max_trials``, resuming
          interrupted trials, retries).
        * The trial runs ``objective(trial)`` through :func:`hpo.executors.run_trial`,
          wherever it runs: that tells the store (the single source of truth), keeps its
          heartbeat and tells the observers of the process it runs in.
        * A trial that :meth:`wait` returns is finished in the store. When the place it ran
          died before telling the store, the executor finishes it (failed; interrupted with
          :func:`hpo.executors.mark_interrupted` when it may run again).
        * Ctrl-C: :meth:`cancel` stops the trials in flight and marks each interrupted; the
          loop then re-raises ``KeyboardInterrupt``.
    """

    @property
    @abc.abstractmethod
    def capacity(self) -> int:
        """Trials in flight at once."""

    def start(self, study: Study, objective: Callable[[Trial], Any]) -> None:  # noqa: B027
        """Get ready to run ``objective`` on ``study``'s trials (start or join a cluster).

        Raises:
            HpoError: the executor cannot run this study's trials (nothing is stored yet).
        """

    @abc.abstractmethod
    def submit(self, trial: Trial, attempt: int) -> None:
        """Start running ``trial``. ``attempt``: how many times its params ran before and
        died with their worker (0 for a first run); what a retrying executor counts."""

    @abc.abstractmethod
    def wait(self) -> list[Finished]:
        """The submitted trials that finished since the last call, after waiting a short
        while (about a second) for one; may be empty."""

    def cancel(self) -> None:  # noqa: B027
        """Ctrl-C: stop every trial in flight and mark it interrupted."""

    def stop(self) -> None:  # noqa: B027
        """Release what :meth:`start` took; called once, whatever happened."""

    def run(
        self,
        study: Study,
        objective: Callable[[Trial], Any],
        *,
        n_trials: int | None = None,
        timeout: float | None = None,
        max_trials: int | None = None,
        callbacks: Iterable[Callable[[Study, FrozenTrial], None]] = (),
        observers: Iterable[Observer] = (),
        show_progress: bool = False,
    ) -> None:
        """Run trials of ``study`` here until ``n_trials`` were started, ``timeout`` passed,
        the study holds ``max_trials`` or the strategy is exhausted (see
        :meth:`hpo.study.Study.optimize`, which calls this)."""
        from hpo.executors._runner import drive

        drive(
            self,
            study,
            objective,
            n_trials=n_trials,
            timeout=timeout,
            max_trials=max_trials,
            callbacks=callbacks,
            observers=observers,
            show_progress=show_progress,
        )
