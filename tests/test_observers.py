"""One observer interface and one driver loop: what observers hear, in what order, how their
failures are treated, and that any Executor subclass gets the same loop."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest

import hpo
from hpo.executors import Executor, Finished, InProcessExecutor, run_trial
from hpo.study import Observer, Study
from hpo.trial import FrozenTrial
from hpo.trial._trial import Trial


class Recorder(Observer):
    def __init__(self) -> None:
        self.events: list[tuple[Any, ...]] = []

    def on_trial_start(self, study: Study, trial: Trial) -> None:
        self.events.append(("start", trial.number))

    def on_report(self, study: Study, trial: Trial, step: int, value: float) -> None:
        self.events.append(("report", trial.number, step))

    def on_trial_end(self, study: Study, frozen: FrozenTrial, trial: Trial | None) -> None:
        self.events.append(("end", frozen.number, frozen.state.value, trial is not None))


def _study() -> Study:
    return hpo.create_study({"x": hpo.Float(-1.0, 1.0)}, strategy="random", seed=0)


def _objective(trial: Trial) -> float:
    trial.report(1.0, 0)
    if trial.number == 1:
        raise ValueError("no")
    return float(trial.params["x"])


def test_observers_hear_every_event_in_order_and_leave_after_the_call() -> None:
    study = _study()
    rec, calls = Recorder(), []
    study.optimize(
        _objective, n_trials=2, observers=[rec], callbacks=[lambda s, f: calls.append(f.number)]
    )
    assert rec.events == [
        ("start", 0),
        ("report", 0, 0),
        ("end", 0, "complete", True),
        ("start", 1),
        ("report", 1, 0),
        ("end", 1, "failed", True),
    ]
    assert calls == [0, 1] and study.observers == []


def test_a_failing_observer_is_a_warning_and_a_failing_callback_stops_the_study(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Broken(Observer):
        def on_trial_end(self, study: Study, frozen: FrozenTrial, trial: Trial | None) -> None:
            raise RuntimeError("server down")

    study = _study()
    study.observers.append(Broken())
    with caplog.at_level(logging.WARNING, logger="hpo"):
        study.optimize(lambda t: 0.0, n_trials=2)
    assert len(study.trials) == 2 and "Broken failed on trial 1: server down" in caplog.text

    def stop(s: Study, f: FrozenTrial) -> None:
        raise KeyError("enough")

    with pytest.raises(KeyError):
        study.optimize(lambda t: 0.0, n_trials=3, callbacks=[stop])
    assert len(study.trials) == 3  # the trial was stored before the callback heard of it


def test_ctrl_c_marks_the_trial_interrupted_and_observers_hear_it() -> None:
    study, rec = _study(), Recorder()

    def interrupted(trial: Trial) -> float:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        study.optimize(interrupted, n_trials=3, observers=[rec])
    (t,) = study.trials
    assert t.interrupted and t.error == "interrupted: stopped by Ctrl-C"
    assert rec.events == [("start", 0), ("end", 0, "failed", True)]
    # an interrupted trial is not counted against max_trials
    study.optimize(lambda t: 0.0, max_trials=2)
    assert [x.interrupted for x in study.trials] == [True, False, False]


class Batches(Executor):
    """Runs up to two trials per wait, one after the other: enough to show that the loop
    (counting, stopping, observers) is the base class's, not the executor's."""

    def __init__(self) -> None:
        self.queue: list[Trial] = []
        self.waits = 0

    @property
    def capacity(self) -> int:
        return 2

    def start(self, study: Study, objective: Callable[[Trial], Any]) -> None:
        self.study, self.objective = study, objective

    def submit(self, trial: Trial, attempt: int) -> None:
        self.queue.append(trial)

    def wait(self) -> list[Finished]:
        self.waits += 1
        batch, self.queue = self.queue, []
        return [Finished(t, run_trial(self.study, self.objective, t)) for t in batch]


def test_any_executor_gets_the_same_loop_and_the_same_trials() -> None:
    a, b = _study(), _study()
    a.optimize(lambda t: t.params["x"] ** 2, n_trials=5, executor=InProcessExecutor())
    ex = Batches()
    b.optimize(lambda t: t.params["x"] ** 2, n_trials=5, executor=ex)
    assert [t.params for t in a.trials] == [t.params for t in b.trials]
    assert [t.value for t in a.trials] == [t.value for t in b.trials]
    assert ex.waits == 3  # 2 + 2 + 1
