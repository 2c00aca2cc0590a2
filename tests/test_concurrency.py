"""Several processes on one study lose nothing: 4 x 25 trials = trials 0..99, once each."""

from __future__ import annotations

import subprocess
import sys
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
