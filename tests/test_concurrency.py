"""Several processes on one study lose nothing: 4 x 25 trials = trials 0..99, once each."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

import hpo
from hpo.trial import TrialState

WORKER = """
import sys, hpo
space = hpo.SearchSpace({"x": hpo.Float(-1, 1), "k": hpo.Categorical(["a", "b", "c"])})
study = hpo.create_study(space=space, strategy=sys.argv[2], storage=sys.argv[1],
                         name="shared", load_if_exists=True, seed=0)
study.optimize(lambda t: t.params["x"] ** 2, n_trials=int(sys.argv[3]))
"""


@pytest.mark.parametrize("strategy", ["random", "grid"])
def test_four_processes_share_one_study(storage_url: str, tmp_path: Path, strategy: str) -> None:
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), storage_url, strategy, "25"],
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    for p in procs:
        _, err = p.communicate(timeout=240)
        assert p.returncode == 0, err
    study = hpo.load_study("shared", storage=storage_url)
    trials = study.trials
    if strategy == "grid":
        # 5 x-values x 3 choices = 15 points: each handed out exactly once, then exhausted
        assert len(trials) == 15
        keys = {tuple(sorted(t.params.items())) for t in trials}
        assert len(keys) == 15
    else:
        assert len(trials) == 100
    assert [t.number for t in trials] == list(range(len(trials)))
    assert all(t.state is TrialState.COMPLETE for t in trials)
    assert all(t.value == t.params["x"] ** 2 for t in trials)


BUDGET_WORKER = """
import sys, time, hpo
space = hpo.SearchSpace({"x": hpo.Float(-1, 1)})
study = hpo.create_study(space=space, strategy="random", storage=sys.argv[1], name="budget",
                         load_if_exists=True)
study.optimize(lambda t: time.sleep(0.1) or t.params["x"], max_trials=int(sys.argv[2]))
"""


def test_processes_sharing_a_budget_never_overshoot_it(sqlite_url: str, tmp_path: Path) -> None:
    """What two `hpo run --trials 30` on one study do: 30 trials in all, not 60 or 31."""
    script = tmp_path / "budget.py"
    script.write_text(BUDGET_WORKER)
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), sqlite_url, "30"], stderr=subprocess.PIPE, text=True
        )
        for _ in range(3)
    ]
    for p in procs:
        _, err = p.communicate(timeout=240)
        assert p.returncode == 0, err
    trials = hpo.load_study("budget", storage=sqlite_url).trials
    assert [t.number for t in trials] == list(range(30))
    assert len({t.system_attrs["pid"] for t in trials}) >= 2  # the work really was shared


COUNTING_WORKER = """
import sys, time, hpo
space = hpo.SearchSpace({"x": hpo.Float(-1, 1), "k": hpo.Categorical(["a", "b", "c"])})
study = hpo.create_study(space=space, strategy="random", storage=sys.argv[1], name="race",
                         load_if_exists=True, seed=0)
calls = 0
propose = study.strategy.propose
def slow_propose(*args, **kwargs):
    global calls
    calls += 1
    time.sleep(0.02)  # a proposal that takes time, as bayes' does: the race is real
    return propose(*args, **kwargs)
study.strategy.propose = slow_propose
print("ready", flush=True)
sys.stdin.readline()
study.optimize(lambda t: t.params["x"] ** 2, n_trials=int(sys.argv[2]))
print(calls, flush=True)
"""


def test_losing_the_race_for_a_number_costs_no_proposal(postgres_url: str, tmp_path: Path) -> None:
    """Six processes x 15 trials on PostgreSQL: one proposal per trial (processes take turns
    to propose). A process that lost the race for a number used to propose again: eight
    bayes processes took 4x the time of one (issue 17)."""
    script = tmp_path / "race.py"
    script.write_text(COUNTING_WORKER)
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), postgres_url, "15"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(6)
    ]
    for p in procs:
        assert p.stdout is not None and p.stdout.readline().strip() == "ready"
    for p in procs:  # all at once: they collide from the first trial
        assert p.stdin is not None
        p.stdin.write("go\n")
        p.stdin.flush()
    calls = 0
    for p in procs:
        out, err = p.communicate(timeout=240)
        assert p.returncode == 0, err
        calls += int(out.strip().splitlines()[-1])
    trials = hpo.load_study("race", storage=postgres_url).trials
    assert [t.number for t in trials] == list(range(90))
    assert all(t.state is TrialState.COMPLETE for t in trials)
    assert calls == 90  # one proposal per trial: none made again after a lost race
    # and the search is the one a single process makes: random's trial n is seeded by n
    alone = hpo.create_study(space=hpo.load_study("race", storage=postgres_url).space,
                             strategy="random", seed=0)  # fmt: skip
    assert [dict(alone.ask().params) for _ in range(90)] == [dict(t.params) for t in trials]


STUCK_WORKER = """
import os, sys, time, hpo
space = hpo.SearchSpace({"x": hpo.Float(-1, 1)})
study = hpo.create_study(space=space, strategy="random", storage=sys.argv[1], name="stuck",
                         load_if_exists=True, seed=0)
propose = study.strategy.propose
def hang(*args, **kwargs):
    if sys.argv[2] == "hang":
        print("proposing", flush=True)
        time.sleep(600)
    return propose(*args, **kwargs)
study.strategy.propose = hang
study.optimize(lambda t: t.params["x"], n_trials=3)
"""


def test_a_process_killed_while_proposing_blocks_no_one(storage_url: str, tmp_path: Path) -> None:
    """A process is killed (SIGKILL) while it holds the study's turn to propose: the next
    process, waiting for the turn, gets it at once (the database or the kernel lets go of a
    dead holder's lock) and runs its trials from number 0."""
    script = tmp_path / "stuck.py"
    script.write_text(STUCK_WORKER)
    hang = subprocess.Popen(
        [sys.executable, str(script), storage_url, "hang"], stdout=subprocess.PIPE, text=True
    )
    assert hang.stdout is not None and hang.stdout.readline().strip() == "proposing"
    other = subprocess.Popen(
        [sys.executable, str(script), storage_url, "go"], stderr=subprocess.PIPE, text=True
    )
    time.sleep(2.0)  # it waits for the turn
    assert other.poll() is None
    assert hpo.load_study("stuck", storage=storage_url).trials == []
    t0 = time.monotonic()
    hang.kill()
    hang.wait()
    _, err = other.communicate(timeout=60)
    assert other.returncode == 0, err
    assert time.monotonic() - t0 < 20
    trials = hpo.load_study("stuck", storage=storage_url).trials
    assert [t.number for t in trials] == [0, 1, 2]
    assert all(t.state is TrialState.COMPLETE for t in trials)
