"""Pause and promote (ASHA's promotion rule, ``pause=True``): a trial stopped at a rung keeps
its checkpoint, goes on from it when later trials lift it into the rung's best share, and ends
exactly as the same trial trained straight through. Real processes (``hpo run``) on SQLite,
the built-in training loop, compared number for number with an undisturbed study."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
from _dashboard_server import running_server

import hpo
from hpo.pruners import ASHA, Hyperband
from hpo.trial import Direction, FrozenTrial, TrialState

HPO = [sys.executable, "-m", "hpo.cli"]

MLP_SPACE = """
model: mlp
direction: maximize
budget: {epochs: 4, max_train_images: 600}
params:
  lr: {type: float, low: 1.0e-4, high: 3.0e-2, log: true}
  batch_size: {type: categorical, choices: [64]}
  layers: {type: int, low: 1, high: 2}
  units_1: {type: int, low: 32, high: 128, log: true}
  units_2: {type: int, low: 32, high: 128, log: true, when: {layers: {">=": 2}}}
  dropout: {type: float, low: 0.0, high: 0.3}
"""

CURVES = ("train_loss", "train_accuracy", "val_loss", "val_accuracy")


def _frozen(number: int, values: dict[int, float], state: TrialState) -> FrozenTrial:
    return FrozenTrial(number=number, state=state, params={}, intermediate=values)


def test_pause_promotes_only_the_best_floor_share_of_a_rung() -> None:
    """At a rung of n trials, a pausing ASHA lets on only the best floor(n/eta): nobody while
    fewer than eta trials are there, where stopping ASHA lets the first one through."""
    stop, pause = ASHA(2, 1, 4), ASHA(2, 1, 4, pause=True)
    first = _frozen(0, {1: 0.5}, TrialState.RUNNING)
    kw = {"direction": Direction.MAXIMIZE, "seed": 0}
    assert not stop.prune(first, [first], **kw)  # ceil(1/2) = 1: goes on
    assert pause.prune(first, [first], **kw)  # floor(1/2) = 0: waits
    paused = _frozen(0, {1: 0.5}, TrialState.PRUNED)
    worse = _frozen(1, {1: 0.4}, TrialState.RUNNING)
    better = _frozen(1, {1: 0.6}, TrialState.RUNNING)
    # A worse trial at the rung lifts the paused one into the best half; a better one does not.
    assert pause.promotable(paused, [paused, worse], **kw)
    assert not pause.promotable(paused, [paused, better], **kw)
    assert not stop.promotable(paused, [paused, worse], **kw)  # a stopping pruner never does
    assert pause.options() == {
        "reduction_factor": 2,
        "min_resource": 1,
        "max_resource": 4,
        "pause": True,
    }
    assert "pause" not in stop.options()  # studies stored before it read back unchanged
    hb = Hyperband(pause=True).for_budget(9)
    assert hb.pauses and "wait (paused)" in hb.describe()
    with pytest.raises(hpo.PrunerError, match="`pause` must be true or false"):
        ASHA(pause="yes")  # type: ignore[arg-type]


def _run(tmp_path: Path, name: str, *extra: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HPO_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    cmd = [
        *HPO, "run", "--space", "mlp.yaml", "--strategy", "random", "--study", name,
        "--trials", "10", "--seed", "3", "--no-progress", "--no-mlflow", "--no-evaluate",
        *extra,
    ]  # fmt: skip
    out = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    return out


def _epochs(trials: list[FrozenTrial]) -> int:
    return sum(len(t.user_attrs.get("val_accuracy", [])) for t in trials)


def test_paused_trials_go_on_from_their_checkpoint_exactly(tmp_path: Path) -> None:
    (tmp_path / "mlp.yaml").write_text(MLP_SPACE)
    _run(tmp_path, "straight", "--pruner", "none")
    asha = ("--pruner", "asha", "--pruner-opt", "reduction_factor=2")
    _run(tmp_path, "stopping", *asha)
    _run(tmp_path, "paused", *asha, "--pruner-opt", "pause=true")

    store = f"sqlite:///{tmp_path / 'hpo.db'}"
    straight = hpo.load_study("straight", storage=store).trials
    stopping = hpo.load_study("stopping", storage=store).trials
    study = hpo.load_study("paused", storage=store)
    got = study.trials
    assert study.pruner is not None and "wait (paused)" in study.pruner.describe()
    assert len(got) == 10  # promotions are not new trials

    promoted = [t for t in got if t.promotions]
    assert promoted, "no paused trial was promoted"
    assert any(t.paused for t in got), "every trial went on: nothing waited"
    for t in promoted:
        w = straight[t.number]
        assert dict(t.params) == dict(w.params)
        # Its curve so far is the straight run's, epoch for epoch, bit for bit.
        n = len(t.user_attrs["val_accuracy"])
        for key in CURVES:
            assert t.user_attrs[key] == w.user_attrs[key][:n], (t.number, key)
        assert dict(t.intermediate) == {s: w.intermediate[s] for s in t.intermediate}
        if t.state is TrialState.COMPLETE:
            assert t.value == w.value and n == 4
    for t in got:
        if t.paused:  # waits with its checkpoint of the step it paused at
            info = t.system_attrs["checkpoint"]
            assert info["step"] == t.last_step and info["files"]
            assert (Path(info["dir"]) / info["files"][-1]).exists()
        assert not (t.state is TrialState.RUNNING or t.state is TrialState.FAILED)

    # Promoting the best floor share costs fewer epochs than running straight through, and
    # the best trial is the straight run's best among the trials that reached the end.
    assert _epochs(got) < _epochs(straight)
    assert _epochs(stopping) < _epochs(straight)
    best = max((t for t in got if t.state is TrialState.COMPLETE), key=lambda t: t.value or 0)
    assert best.value is not None and not math.isnan(best.value)
    assert best.value == straight[best.number].value

    shown = subprocess.run(
        [*HPO, "show", "paused", "--trial", str(promoted[0].number)], cwd=tmp_path,
        env={**os.environ, "HPO_OFFLINE": "1"}, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    assert "promoted from step" in shown.stdout

    # The dashboard's API says which trials wait and which went on, and how.
    with running_server(store) as server:
        rows = server.get("/api/studies/paused/trials")
        assert isinstance(rows, list)
        by_number = {r["number"]: r for r in rows}
        for t in got:
            row = by_number[t.number]
            assert row["paused"] is t.paused
            if t.paused:
                assert row["reason"] == f"paused at step {t.last_step}"
            if t.promotions:
                assert row["resumed"].startswith("promoted") and "saved" in row["resumed"]
            else:
                assert row["resumed"] is None


def test_pause_without_checkpoints_is_refused_before_anything_is_stored(tmp_path: Path) -> None:
    study = hpo.create_study(
        space={"x": hpo.Float(0, 1)},
        pruner="asha",
        pruner_options={"pause": True, "max_resource": 9},
    )  # in memory: no checkpoint location
    with pytest.raises(hpo.PrunerError, match=r"pause=true .* keeps none"):
        study.optimize(lambda t: t.params["x"], n_trials=1)
    assert study.trials == []

    (tmp_path / "mlp.yaml").write_text(MLP_SPACE)
    out = subprocess.run(
        [*HPO, "run", "--space", "mlp.yaml", "--study", "nockpt", "--pruner", "asha",
         "--pruner-opt", "pause=true", "--no-checkpoints", "--no-mlflow", "--no-progress"],
        cwd=tmp_path, env={**os.environ, "HPO_OFFLINE": "1"}, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    assert out.returncode == 2, out.stderr
    assert "with pause=true" in out.stderr and len(out.stderr.strip().splitlines()) == 1
    db = tmp_path / "hpo.db"
    assert not db.exists() or hpo.list_studies(f"sqlite:///{db}") == []


def test_a_user_objective_pauses_and_goes_on_from_its_own_checkpoint(tmp_path: Path) -> None:
    """The checkpoint API is all a user objective needs: paused at a rung, promoted later, it
    reads its state back and the steps it trained are not trained again."""
    study = hpo.create_study(
        space={"x": hpo.Float(0, 1)}, strategy="random", direction="minimize",
        storage=f"sqlite:///{tmp_path / 's.db'}", pruner="asha",
        pruner_options={"reduction_factor": 2, "max_resource": 8, "pause": True},
    )  # fmt: skip
    trained: list[tuple[int, int]] = []

    def objective(trial: hpo.Trial) -> float:
        state = trial.last_checkpoint()
        start = state["step"] if state else 0
        v = math.nan
        for step in range(start + 1, 9):
            trained.append((trial.number, step))
            v = trial.params["x"] + 1.0 / step
            trial.report(v, step)
            if trial.should_prune():
                assert trial.pausing
                trial.checkpoint({"step": step}, step)
                raise hpo.TrialPruned()
        return v

    study.optimize(objective, n_trials=12)
    trials = study.trials
    assert len(trials) == 12
    assert len(trained) == len(set(trained)), "a step was trained twice"
    assert any(t.promotions for t in trials)
    best = study.best_trial
    assert best.params["x"] == min(t.params["x"] for t in trials if t.state is TrialState.COMPLETE)


def test_a_trial_not_yet_collected_is_not_promoted_again(tmp_path: Path) -> None:
    """A Ray worker pauses its trial in the store before the driver collects the task. The
    driver must not promote that trial until it has collected it: it once did, ran the trial
    twice at once and failed the study (``KeyError`` in its bookkeeping)."""
    from hpo.executors._recovery import promote_paused

    study = hpo.create_study(
        space={"x": hpo.Float(0, 1)}, strategy="random", direction="minimize",
        storage=f"sqlite:///{tmp_path / 's.db'}", pruner="asha",
        pruner_options={"reduction_factor": 2, "max_resource": 8, "pause": True},
    )  # fmt: skip
    ids = []
    for value in (0.1, 0.9):  # the better one waits until the worse one lifts it
        trial = study.ask()
        trial.report(value, 1)
        assert trial.should_prune() and trial.pausing
        trial.checkpoint({"step": 1}, 1)
        study.tell(trial, state=TrialState.PRUNED)
        ids.append(trial.trial_id)
    assert all(t.paused for t in study.trials)
    assert promote_paused(study, busy={ids[0]}) is None  # out still: it waits
    promoted = promote_paused(study, busy={ids[1]})
    assert promoted is not None and promoted.number == 0
    assert promoted.last_checkpoint() == {"step": 1}
    assert study.trials[0].state is TrialState.RUNNING
