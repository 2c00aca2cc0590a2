"""InProcessExecutor: one trial at a time, in this process (``Study.optimize``'s default)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from hpo.executors._base import Executor, Finished
from hpo.executors._runner import run_trial

if TYPE_CHECKING:
    from hpo.study import Study
    from hpo.trial._trial import Trial

__all__ = ["InProcessExecutor"]


class InProcessExecutor(Executor):
    """Run trials one after another in this process: no start-up cost, and the objective
    may use anything this process holds. Ctrl-C reaches the running trial, which is marked
    interrupted."""

    def __init__(self) -> None:
        self._study: Study | None = None
        self._objective: Callable[[Trial], Any] | None = None
        self._next: Trial | None = None

    @property
    def capacity(self) -> int:
        return 1

    def start(self, study: Study, objective: Callable[[Trial], Any]) -> None:
        self._study, self._objective = study, objective

    def submit(self, trial: Trial, attempt: int) -> None:
        self._next = trial  # it runs in `wait`, after the loop has told observers it starts

    def wait(self) -> list[Finished]:
        trial, self._next = self._next, None
        if trial is None or self._study is None or self._objective is None:
            return []
        return [Finished(trial, run_trial(self._study, self._objective, trial))]

    def stop(self) -> None:
        self._study = self._objective = self._next = None

    def __repr__(self) -> str:
        return "InProcessExecutor()"
