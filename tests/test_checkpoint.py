"""Checkpoints and resumed trials, on real processes: the driver killed with SIGKILL in the
middle of an epoch, Ctrl-C in a user objective, an unwritable location, cleanup and delete.
The resumed trial is compared with an undisturbed run of the same seed, number for number."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

import hpo
from hpo.trial import TrialState
from hpo.trial._checkpoints import Checkpointing

HPO = [sys.executable, "-m", "hpo.cli"]

# Batch norm and dropout on: the model's buffers and the dropout RNG must resume exactly too.
CNN_SPACE = """
model: cnn
direction: maximize
trials: 1
budget: {epochs: 3, max_train_images: 1500}
params:
  lr: {type: float, low: 1.0e-3, high: 3.0e-3, log: true}
  lr_schedule: {type: categorical, choices: [cosine]}
  batch_size: {type: categorical, choices: [32]}
  conv_blocks: {type: categorical, choices: [2]}
  filters_1: {type: categorical, choices: [16]}
  filters_2: {type: categorical, choices: [24]}
  batch_norm: {type: categorical, choices: [true]}
  dense_units: {type: categorical, choices: [64]}
  dropout: {type: float, low: 0.2, high: 0.3}
"""

CURVES = ("train_loss", "train_accuracy", "val_loss", "val_accuracy")


def _env() -> dict[str, str]:
    return {**os.environ, "HPO_OFFLINE": "1", "OMP_NUM_THREADS": "1"}


def _run_args(name: str, *extra: str) -> list[str]:
    return [
        *HPO, "run", "--space", "cnn.yaml", "--strategy", "random", "--study", name,
        "--no-progress", "--no-mlflow", *extra,
    ]  # fmt: skip


def _checkpoint_step(db: Path, name: str) -> int:
    """The step of trial 0's last checkpoint, read straight from the SQLite file."""
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(db, timeout=1) as conn:
            row = conn.execute(
                "SELECT t.system_attrs FROM hpo_trials t JOIN hpo_studies s "
                "ON s.id = t.study_id WHERE s.name = ? AND t.number = 0",
                (name,),
            ).fetchone()
    except sqlite3.Error:
        return 0
    if row is None or '"checkpoint"' not in row[0]:
        return 0
    import json

    return int(json.loads(row[0])["checkpoint"]["step"])


def test_a_driver_killed_mid_epoch_resumes_its_trial_exactly(tmp_path: Path) -> None:
    (tmp_path / "cnn.yaml").write_text(CNN_SPACE)
    env = _env()
    ref = subprocess.run(
        _run_args("undisturbed"), cwd=tmp_path, env=env, capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    assert ref.returncode == 0, ref.stderr[-3000:]

    db = tmp_path / "hpo.db"
    proc = subprocess.Popen(
        _run_args("killed"), cwd=tmp_path, env=env, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 240
    while _checkpoint_step(db, "killed") < 1 and time.monotonic() < deadline:
        assert proc.poll() is None, "the run ended before its first checkpoint"
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)  # in epoch 2 (or 3): after a checkpoint, mid-epoch
    proc.wait()
    killed = hpo.load_study("killed", storage=f"sqlite:///{db}").trials[0]
    assert killed.state is TrialState.RUNNING, "the run finished before it was killed"
    saved_step = killed.system_attrs["checkpoint"]["step"]
    assert 1 <= saved_step < 3

    again = subprocess.run(
        _run_args("killed"), cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"resuming trial 0 from its checkpoint of step {saved_step}" in again.stderr

    store = f"sqlite:///{db}"
    want = hpo.load_study("undisturbed", storage=store).trials
    got = hpo.load_study("killed", storage=store).trials
    assert len(got) == 1 and got[0].state is TrialState.COMPLETE  # same number, no new trial
    w, g = want[0], got[0]
    assert dict(g.params) == dict(w.params)
    assert g.value == w.value
    assert dict(g.intermediate) == dict(w.intermediate) and list(g.intermediate) == [1, 2, 3]
    for key in CURVES:
        assert g.user_attrs[key] == w.user_attrs[key], key
    assert g.user_attrs["best_epoch"] == w.user_attrs["best_epoch"]
    assert [r["step"] for r in g.system_attrs["resumed"]] == [saved_step]
    # The best (only) finished trial keeps its last checkpoint, for later reuse.
    info = g.system_attrs["checkpoint"]
    assert info["files"] == ["epoch-3.pt"] and info["saved"] == 3
    trial_dir = tmp_path / "hpo.db.checkpoints" / "killed" / "trial-0"
    assert sorted(p.name for p in trial_dir.iterdir()) == ["epoch-3.pt"]

    shown = subprocess.run(
        [*HPO, "show", "killed", "--trial", "0"], cwd=tmp_path, env=env, capture_output=True,
        text=True, timeout=120,
    )  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    epochs = "epoch" if saved_step == 1 else "epochs"
    assert f"resumed, {saved_step} {epochs} saved" in shown.stdout
    assert f"resumed from step {saved_step}" in shown.stdout

    deleted = subprocess.run(
        [*HPO, "delete", "killed", "--yes"], cwd=tmp_path, env=env, capture_output=True,
        text=True, timeout=120,
    )  # fmt: skip
    assert deleted.returncode == 0, deleted.stderr
    assert not (tmp_path / "hpo.db.checkpoints" / "killed").exists()
    assert (tmp_path / "hpo.db.checkpoints" / "undisturbed").exists()


def _counting_objective(log: list[tuple[int, int]], stop_at: dict[int, int]) -> Any:
    """Sums x * step over 5 steps, checkpointing each; raises KeyboardInterrupt (Ctrl-C)
    before step ``stop_at[number]`` the first time. ``log`` gets every step computed."""

    def objective(trial: hpo.Trial) -> float:
        state = trial.last_checkpoint() or {"step": 0, "total": 0.0}
        for step in range(state["step"] + 1, 6):
            if stop_at.get(trial.number) == step:
                del stop_at[trial.number]
                raise KeyboardInterrupt
            log.append((trial.number, step))
            state = {"step": step, "total": state["total"] + trial.params["x"] * step}
            trial.report(state["total"], step)
            trial.checkpoint(state)
        return float(state["total"])

    return objective


def test_user_objectives_checkpoint_resume_after_ctrl_c_and_keep_the_best(
    tmp_path: Path,
) -> None:
    space = {"x": hpo.Float(0.0, 1.0)}
    url = f"sqlite:///{tmp_path}/s.db"
    study = hpo.create_study(space=space, strategy="random", storage=url, name="user")
    study.checkpointing = Checkpointing(str(tmp_path / "ck"), keep=2, best=1)
    log: list[tuple[int, int]] = []
    objective = _counting_objective(log, {1: 4})
    with pytest.raises(KeyboardInterrupt):
        study.optimize(objective, n_trials=3)
    t1 = study.trials[1]
    assert t1.state is TrialState.FAILED and t1.interrupted
    assert t1.system_attrs["checkpoint"]["files"] == ["epoch-2.pt", "epoch-3.pt"]  # keep=2

    # A new process (a fresh Study object) resumes trial 1 first, then runs new trials.
    study = hpo.load_study("user", storage=url)
    study.checkpointing = Checkpointing(str(tmp_path / "ck"), keep=2, best=1)
    study.optimize(objective, max_trials=3)
    trials = study.trials
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 3
    x1 = trials[1].params["x"]
    assert trials[1].value == pytest.approx(x1 * 15)
    assert dict(trials[1].intermediate) == pytest.approx(
        {s: x1 * s * (s + 1) / 2 for s in range(1, 6)}
    )
    assert [s for n, s in log if n == 1] == [1, 2, 3, 4, 5]  # no step computed twice
    assert trials[1].system_attrs["resumed"][0]["step"] == 3
    # Only the best (smallest) completed trial keeps a checkpoint.
    best = study.best_trial.number
    kept = {t.number for t in trials if t.system_attrs["checkpoint"]["files"]}
    assert kept == {best}
    assert sorted(p.name for p in (tmp_path / "ck" / "user").iterdir()) == [f"trial-{best}"]

    # In memory there is nowhere to keep checkpoints: saving is a no-op.
    mem = hpo.create_study(space=space, storage=None)
    assert mem.checkpointing is None
    trial = mem.ask()
    assert trial.checkpoint({"a": 1}) is False and trial.last_checkpoint() is None


def test_checkpoint_locations_postgres_fsspec_and_an_unwritable_one(
    tmp_path: Path, postgres_url: str
) -> None:
    # A PostgreSQL study spans machines: no local default.
    pg = hpo.create_study(space={"x": hpo.Float(0, 1)}, storage=postgres_url)
    assert pg.checkpointing is None
    hpo.delete_study(pg.name, storage=postgres_url)

    # Any fsspec URL: here fsspec's in-memory file system, in one process.
    study = hpo.create_study(space={"x": hpo.Float(0, 1)}, storage=None, name="mem")
    study.checkpointing = Checkpointing("memory://hpo-ck", keep=1)
    study.checkpointing.check()
    trial = study.ask()
    assert trial.checkpoint({"w": [1, 2]}, 1) and trial.checkpoint({"w": [3]}, 2)
    assert trial.last_checkpoint() == {"w": [3]}
    import fsspec

    fs = fsspec.filesystem("memory")
    assert [p.rsplit("/", 1)[1] for p in fs.ls("/hpo-ck/mem/trial-0", detail=False)] == [
        "epoch-2.pt"
    ]

    # An unwritable location is one clear line at start, exit 2, and stores nothing.
    (tmp_path / "cnn.yaml").write_text(CNN_SPACE)
    (tmp_path / "a-file").write_text("not a folder")
    r = subprocess.run(
        _run_args("nowhere", "--checkpoint-dir", str(tmp_path / "a-file" / "ck")),
        cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot write checkpoints to" in lines[0]
    assert "--no-checkpoints" in lines[0]
    assert not (tmp_path / "hpo.db").exists()


def test_the_loop_spaces_saves_by_their_cost_and_skips_a_last_save_its_end_would_delete(
    tmp_path: Path,
) -> None:
    """With a tiny overhead budget, six short epochs are saved twice (the first, then the last
    of the best trial); a budget of 0 saves every epoch. A trial outranked by one that keeps its
    checkpoint does not write its last epoch, and keeps nothing once it ends."""
    from hpo.data import load_mnist
    from hpo.training import train_and_evaluate

    data = load_mnist(download=False, max_train=300)
    space = {
        "layers": hpo.Categorical([1]),
        "units_1": hpo.Categorical([32]),
        "lr": hpo.Categorical([3e-3, 1e-7]),
    }
    url = f"sqlite:///{tmp_path}/s.db"

    def run(name: str, overhead: float, lrs: list[float]) -> list[Any]:
        study = hpo.create_study(space=space, direction="maximize", storage=url, name=name)
        study.checkpointing = Checkpointing(str(tmp_path / "ck"), overhead=overhead)
        saved = []
        for lr in lrs:
            trial = study.ask({"layers": 1, "units_1": 32, "lr": lr})
            value = train_and_evaluate(trial, model="mlp", data=data, epochs=6, device="cpu")
            trial.wait_checkpoints()
            saved.append((trial.checkpoint_info or {}).get("saved"))
            study.tell(trial, value)
        return [saved, study.trials]

    saved, trials = run("every", 0.0, [3e-3])
    assert saved == [6]
    saved, trials = run("spaced", 1e-4, [3e-3, 1e-7])
    # Trial 0: epoch 1, then nothing until its last (a save costs > 1e-4 of 5 short epochs).
    # Trial 1 (lr 1e-7) ranks below trial 0: its last save would be deleted at once.
    assert saved == [2, 1]
    assert trials[0].value > trials[1].value
    assert trials[0].system_attrs["checkpoint"]["files"] == ["epoch-6.pt"]
    gone = trials[1].system_attrs["checkpoint"]
    assert gone["files"] == [] and gone["deleted"] is True
    assert sorted(p.name for p in (tmp_path / "ck" / "spaced").iterdir()) == ["trial-0"]
