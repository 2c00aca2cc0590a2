"""The embeddable API: create/load, optimize, ask/tell, failures, Ctrl-C, mismatches."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import hpo
from hpo.exceptions import HpoError, StudyMismatchError
from hpo.trial import TrialState

SPACE = hpo.SearchSpace(
    {
        "lr": hpo.Float(1e-4, 1e-1, log=True),
        "layers": hpo.Int(1, 4),
        "units": hpo.Int(16, 512, log=True),
        "activation": hpo.Categorical(["relu", "tanh"]),
        "optimizer": hpo.Categorical(["sgd", "adam"]),
        "momentum": hpo.Float(0.0, 0.99, when={"optimizer": "sgd"}),
    }
)


def objective(trial: hpo.Trial) -> float:
    p = trial.params
    return math.log10(p["lr"]) ** 2 + p["layers"] + p.get("momentum", 0.5)


def test_api_round_trip_and_reopen_from_storage(sqlite_url: str) -> None:
    study = hpo.create_study(
        space=SPACE, strategy="random", direction="minimize", storage=sqlite_url, name="s", seed=0
    )
    study.optimize(objective, n_trials=12)
    assert len(study.trials) == 12
    assert [t.number for t in study.trials] == list(range(12))
    best = min(study.trials, key=lambda t: t.value or math.inf)
    assert study.best_trial.number == best.number
    assert study.best_value == best.value and study.best_params == dict(best.params)
    again = hpo.load_study("s", storage=sqlite_url)
    assert again.best_value == study.best_value
    assert again.strategy.name == "random" and again.space == SPACE
    again.optimize(objective, n_trials=3)
    assert len(study.trials) == 15


def test_maximize_picks_the_largest() -> None:
    study = hpo.create_study(space=SPACE, strategy="random", direction="maximize")
    study.optimize(objective, n_trials=10)
    assert study.best_value == max(t.value for t in study.trials if t.value is not None)


def test_ask_tell_for_external_loops() -> None:
    study = hpo.create_study(space=SPACE, strategy="random", seed=1)
    a, b = study.ask(), study.ask()
    assert (a.number, b.number) == (0, 1)
    a.report(0.5, 0)
    a.set_user_attr("note", "hi")
    a.report(0.4, 1, attrs={"curve": [0.5, 0.4]})  # with attributes, in one write
    assert a.user_attrs["curve"] == [0.5, 0.4] and a.intermediate == {0: 0.5, 1: 0.4}
    with pytest.raises(HpoError, match="keys of attrs must be strings"):
        a.report(0.3, 2, attrs={1: "x"})  # type: ignore[dict-item]
    assert 2 not in a.intermediate
    done = study.tell(a, 0.123)
    assert done.state is TrialState.COMPLETE and done.value == 0.123
    assert done.intermediate == {0: 0.5, 1: 0.4}
    assert done.user_attrs["note"] == "hi" and done.user_attrs["curve"] == [0.5, 0.4]
    study.tell(b.number, state="pruned")
    with pytest.raises(HpoError, match="already finished"):
        study.tell(a, 1.0)
    fixed = study.ask(
        {
            "lr": 0.01,
            "layers": 2,
            "units": 32,
            "activation": "relu",
            "optimizer": "adam",
            "momentum": 0.3,
        }
    )
    assert "momentum" not in fixed.params  # inactive params are dropped
    assert study.best_value == 0.123


@pytest.mark.parametrize(
    ("returned", "reason"),
    [
        (float("nan"), "returned NaN"),
        (float("inf"), "returned inf"),
        (None, "returned None"),
        ("0.5x", "returned '0.5x' (str)"),
        (True, "returned a bool"),
    ],
)
def test_bad_return_values_fail_the_trial_not_the_study(returned: object, reason: str) -> None:
    study = hpo.create_study(space=SPACE, strategy="random")
    study.optimize(lambda t: returned if t.number == 0 else 1.0, n_trials=3)
    states = [t.state for t in study.trials]
    assert states == [TrialState.FAILED, TrialState.COMPLETE, TrialState.COMPLETE]
    assert reason in (study.trials[0].error or "")


def test_exceptions_fail_the_trial_and_pruned_is_recorded() -> None:
    def obj(t: hpo.Trial) -> float:
        if t.number == 0:
            raise RuntimeError("out of memory")
        if t.number == 1:
            t.report(0.7, 0)
            raise hpo.TrialPruned()
        return float(np.float32(2.5))  # numpy scalars are numbers too

    study = hpo.create_study(space=SPACE, strategy="random")
    study.optimize(obj, n_trials=3)
    t0, t1, t2 = study.trials
    assert t0.state is TrialState.FAILED and t0.error == "RuntimeError: out of memory"
    assert "Traceback" in t0.system_attrs["traceback"]
    assert t1.state is TrialState.PRUNED and t1.value == 0.7
    assert t2.value == 2.5


def test_reopening_with_another_space_or_direction_is_refused(sqlite_url: str) -> None:
    hpo.create_study(space=SPACE, storage=sqlite_url, name="s", strategy="random")
    other = hpo.SearchSpace({**SPACE, "lr": hpo.Float(1e-5, 1e-1, log=True)})
    with pytest.raises(StudyMismatchError, match="parameter 'lr' differs"):
        hpo.create_study(space=other, storage=sqlite_url, name="s", load_if_exists=True)
    with pytest.raises(StudyMismatchError, match="created to minimize, not maximize"):
        hpo.create_study(
            space=SPACE, storage=sqlite_url, name="s", direction="maximize", load_if_exists=True
        )
    with pytest.raises(hpo.DuplicatedStudyError, match="load_if_exists=True"):
        hpo.create_study(space=SPACE, storage=sqlite_url, name="s")
    same = hpo.create_study(
        space=SPACE, storage=sqlite_url, name="s", load_if_exists=True, strategy="random"
    )
    assert same.name == "s"


def test_unknown_strategy_and_direction_are_clear() -> None:
    with pytest.raises(hpo.StrategyError, match=r"must be one of \['bayes', 'grid', 'random', "):
        hpo.create_study(space=SPACE, strategy="annealing")
    with pytest.raises(HpoError, match="direction must be one of"):
        hpo.create_study(space=SPACE, direction="up")
    with pytest.raises(hpo.StrategyError, match="grid option `points` must be an integer >= 2"):
        hpo.create_study(space=SPACE, strategy="grid", strategy_options={"points": 1})


def test_best_trial_without_completed_trials() -> None:
    study = hpo.create_study(space=SPACE, strategy="random")
    with pytest.raises(HpoError, match="no completed trial yet"):
        _ = study.best_value


def test_timeout_stops_the_loop() -> None:
    study = hpo.create_study(space=SPACE, strategy="random")
    start = time.monotonic()
    study.optimize(lambda t: time.sleep(0.05) or 1.0, timeout=0.4)
    assert time.monotonic() - start < 2.0
    assert 2 <= len(study.trials) <= 12


def _sigint_default() -> None:
    # A process started in the background by a non-interactive shell (CI runners do this)
    # inherits SIGINT as *ignored*, and Python then never raises KeyboardInterrupt.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


CTRL_C_SCRIPT = """
import sys, time, hpo
space = hpo.SearchSpace({"x": hpo.Float(0, 1)})
study = hpo.create_study(space=space, strategy="random", storage=sys.argv[1], name="c",
                         load_if_exists=True)
def obj(trial):
    print("start", trial.number, flush=True)
    time.sleep(0.5 if trial.number < 3 else 30)
    return trial.params["x"]
try:
    study.optimize(obj, n_trials=int(sys.argv[2]))
except KeyboardInterrupt:
    print("interrupted", flush=True)
    sys.exit(130)
"""


def test_ctrl_c_marks_the_running_trial_interrupted_and_the_study_resumes(
    tmp_path: Path, sqlite_url: str
) -> None:
    script = tmp_path / "run.py"
    script.write_text(CTRL_C_SCRIPT)
    proc = subprocess.Popen(
        [sys.executable, str(script), sqlite_url, "10"],
        stdout=subprocess.PIPE,
        text=True,
        preexec_fn=_sigint_default,
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.strip() == "start 3":
            break
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 130 and "interrupted" in out
    study = hpo.load_study("c", storage=sqlite_url)
    states = [t.state for t in study.trials]
    assert states == [TrialState.COMPLETE] * 3 + [TrialState.FAILED]
    assert study.trials[3].interrupted and "Ctrl-C" in (study.trials[3].error or "")
    # resuming continues the numbering; nothing stored is lost
    env = {**os.environ}
    script.write_text(CTRL_C_SCRIPT.replace("30)", "0)"))
    subprocess.run(
        [sys.executable, str(script), sqlite_url, "2"], check=True, env=env, capture_output=True
    )
    study = hpo.load_study("c", storage=sqlite_url)
    assert [t.number for t in study.trials] == [0, 1, 2, 3, 4, 5]
    assert [t.state for t in study.trials][4:] == [TrialState.COMPLETE] * 2
