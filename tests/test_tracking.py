"""MLflow tracking against a real `mlflow server` process and the default local store."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import hpo
from hpo.tracking import MlflowTracker
from hpo.trial import TrialState

SPACE = hpo.SearchSpace({"x": hpo.Float(0.0, 1.0), "act": hpo.Categorical(["relu", "tanh"])})


def objective(trial: hpo.Trial) -> float:
    torch.manual_seed(trial.number)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 3))
    for epoch in range(1, 4):
        trial.report(trial.params["x"] * epoch, epoch)
    trial.set_user_attr("train_loss", [1.0, 0.5, 0.25])
    trial.set_user_attr("device", "cpu")
    trial.attach("model", net)
    trial.attach("input_example", torch.zeros(2, 1, 2, 2))
    if trial.number == 1:
        raise RuntimeError("boom")
    if trial.number == 2:
        raise hpo.TrialPruned()
    return trial.params["x"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """A real `mlflow server` on a loopback port, restartable on the same port and store."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = open(self.root / "server.log", "ab")  # noqa: SIM115 - closed with the process
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "mlflow",
                "server",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--workers",
                "1",
                "--backend-store-uri",
                f"sqlite:///{self.root}/mlflow.db",
                "--artifacts-destination",
                str(self.root / "artifacts"),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.root,
            # Its own process group: MLflow forks a uvicorn worker and job runners, which
            # must stop (and hang, see hang()) with it.
            start_new_session=True,
        )
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.5)
            if self.proc.poll() is not None:
                break
        raise RuntimeError(
            f"mlflow server did not start: {(self.root / 'server.log').read_text()[-2000:]}"
        )

    def _signal(self, sig: int) -> None:
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, sig)

    def hang(self) -> None:
        """Stop every process of the server (SIGSTOP): connections are accepted by the
        kernel and never answered, as with a hung server."""
        self._signal(signal.SIGSTOP)

    def resume(self) -> None:
        self._signal(signal.SIGCONT)

    def stop(self) -> None:
        if self.proc is not None:
            self.resume()
            self._signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=20)
            time.sleep(0.5)
            self._signal(signal.SIGKILL)  # its job runners outlive it otherwise
            self.proc.wait()
            self.proc = None


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = Server(tmp_path_factory.mktemp("mlflow"))
    srv.start()
    yield srv
    srv.stop()


def _runs(uri: str, study: str) -> list:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(study)
    assert exp is not None
    return list(client.search_runs([exp.experiment_id], max_results=1000))


def test_study_and_trials_land_in_the_tracking_server(server: Server, sqlite_url: str) -> None:
    from mlflow.tracking import MlflowClient

    study = hpo.create_study(
        space=SPACE,
        strategy="random",
        storage=sqlite_url,
        name="tracked",
        meta={"metric": "val_accuracy"},
    )
    tracker = MlflowTracker(server.url)
    study.observers.append(tracker)
    study.optimize(objective, n_trials=5)
    tracker.close()
    assert tracker.failures == 0
    runs = _runs(server.url, "tracked")
    parents = [r for r in runs if r.data.tags.get("hpo.kind") == "study"]
    trials = {
        int(r.data.tags["hpo.trial"]): r for r in runs if r.data.tags.get("hpo.kind") == "trial"
    }
    assert len(parents) == 1 and sorted(trials) == [0, 1, 2, 3, 4]
    client = MlflowClient(server.url)
    for t in study.trials:
        run = trials[t.number]
        assert t.system_attrs["mlflow_run_id"] == run.info.run_id
        assert run.data.tags["mlflow.parentRunId"] == parents[0].info.run_id
        assert run.data.tags["hpo.state"] == t.state.value
        assert run.data.tags["hpo.strategy"] == "random" and run.data.tags["hpo.device"] == "cpu"
        assert run.data.tags["hpo.host"] == socket.gethostname()
        assert run.data.params == {k: str(v) for k, v in t.params.items()}
        hist = client.get_metric_history(run.info.run_id, "val_accuracy")
        assert [(m.step, m.value) for m in hist] == sorted(t.intermediate.items())
        assert [m.step for m in client.get_metric_history(run.info.run_id, "train_loss")] == [
            1,
            2,
            3,
        ]
    assert (
        trials[1].info.status == "FAILED"
        and trials[1].data.tags["hpo.error"] == "RuntimeError: boom"
    )
    assert trials[2].info.status == "KILLED" and "pruned" in trials[2].data.tags["hpo.error"]
    assert trials[0].info.status == "FINISHED" and "value" in trials[0].data.metrics
    # the best trial's model opens with mlflow.pytorch.load_model and runs on any batch size
    import mlflow.pytorch

    best = study.best_trial
    os.environ["MLFLOW_TRACKING_URI"] = server.url
    try:
        model = mlflow.pytorch.load_model(f"runs:/{best.system_attrs['mlflow_run_id']}/model")
    finally:
        del os.environ["MLFLOW_TRACKING_URI"]
    assert model(torch.ones(5, 1, 2, 2)).shape == (5, 3)


def test_server_down_loses_nothing_and_sync_backfills(
    tmp_path: Path, sqlite_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    srv = Server(tmp_path)
    srv.start()
    try:
        study = hpo.create_study(space=SPACE, strategy="random", storage=sqlite_url, name="down")
        tracker = MlflowTracker(srv.url, timeout=3)
        study.observers.append(tracker)
        study.optimize(lambda t: t.params["x"], n_trials=3)
        assert tracker.flush(60)
        srv.stop()  # the tracking server dies mid-study
        caplog.set_level(logging.WARNING, logger="hpo.tracking")
        start = time.monotonic()
        study.optimize(lambda t: t.params["x"], n_trials=4)
        assert time.monotonic() - start < 5  # trials never wait for tracking
        tracker.close(timeout=60)
        assert len(study.trials) == 7
        assert all(t.state is TrialState.COMPLETE for t in study.trials)
        # One warning that names the backfill: "tracking failed" when the first request is
        # refused, or (a loaded machine, where a request stalls before it is refused and the
        # breaker opens first) "tracking stopped ... not logged" at close. Never both.
        warnings = [
            r.getMessage()
            for r in caplog.records
            if r.levelno >= logging.WARNING and "MLflow tracking" in r.getMessage()
        ]
        assert len(warnings) == 1 and "mlflow-sync" in warnings[0], warnings
        untracked = [t.number for t in study.trials if "mlflow_run_id" not in t.system_attrs]
        assert untracked == [3, 4, 5, 6]
        srv.start()
        env = {**os.environ, "MLFLOW_TRACKING_URI": srv.url}
        for expected in ("backfilled 4 trial(s); 3 were already", "backfilled 0 trial(s); 7 were"):
            out = subprocess.run(
                [sys.executable, "-m", "hpo.cli", "mlflow-sync", "down", "--storage", sqlite_url],
                capture_output=True,
                text=True,
                env=env,
                timeout=120,
            )
            assert out.returncode == 0, out.stderr
            assert expected in out.stdout
        runs = [r for r in _runs(srv.url, "down") if r.data.tags.get("hpo.kind") == "trial"]
        assert sorted(int(r.data.tags["hpo.trial"]) for r in runs) == list(range(7))
        study = hpo.load_study("down", storage=sqlite_url)
        assert all("mlflow_run_id" in t.system_attrs for t in study.trials)
    finally:
        srv.stop()


WORKER = """
import sys, hpo
from hpo.tracking import MlflowTracker
space = hpo.SearchSpace({"x": hpo.Float(0.0, 1.0)})
study = hpo.create_study(space=space, strategy="random", storage=sys.argv[1], name=sys.argv[3],
                         load_if_exists=True)
tracker = MlflowTracker(sys.argv[2])
study.observers.append(tracker)
study.optimize(lambda t: t.params["x"], n_trials=6)
tracker.close()
assert tracker.failures == 0, tracker.failures
"""


def test_many_processes_log_into_one_experiment(
    server: Server, tmp_path: Path, storage_url: str
) -> None:
    script = tmp_path / "w.py"
    script.write_text(WORKER)
    name = f"multi-{storage_url.split(':')[0]}"
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), storage_url, server.url, name],
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    runs = _runs(server.url, name)
    trials = sorted(
        int(r.data.tags["hpo.trial"]) for r in runs if r.data.tags["hpo.kind"] == "trial"
    )
    assert trials == list(range(18))
    parents = {
        r.data.tags["mlflow.parentRunId"] for r in runs if r.data.tags["hpo.kind"] == "trial"
    }
    active_parents = [r for r in runs if r.data.tags["hpo.kind"] == "study"]
    assert len(active_parents) == 1 and parents == {active_parents[0].info.run_id}


def test_a_parent_run_made_at_the_same_time_elsewhere_wins_and_trials_follow_it(
    server: Server, sqlite_url: str
) -> None:
    """Two processes that start a study at once may each make a parent run before either
    sees the other's. The older one survives; at its next flush a tracker that picked the
    other moves its trials under the survivor, so the study keeps one parent."""
    from mlflow.tracking import MlflowClient

    study = hpo.create_study(
        space=hpo.SearchSpace({"x": hpo.Float(0.0, 1.0)}), storage=sqlite_url, name="race"
    )
    tracker = MlflowTracker(server.url)
    study.observers.append(tracker)
    study.optimize(lambda t: t.params["x"], n_trials=2)
    assert tracker.flush()
    (mine,) = [r for r in _runs(server.url, "race") if r.data.tags["hpo.kind"] == "study"]
    # Another process's parent, made a moment earlier but seen only now.
    client = MlflowClient(server.url)
    other = client.create_run(
        mine.info.experiment_id,
        start_time=mine.info.start_time,
        tags={"hpo.kind": "study", "hpo.study": "race", "hpo.created_ns": "1"},
    ).info.run_id
    study.optimize(lambda t: t.params["x"], n_trials=1)
    assert tracker.flush()
    runs = _runs(server.url, "race")
    assert [r.info.run_id for r in runs if r.data.tags["hpo.kind"] == "study"] == [other]
    trials = [r for r in runs if r.data.tags["hpo.kind"] == "trial"]
    assert len(trials) == 3 and {r.data.tags["mlflow.parentRunId"] for r in trials} == {other}
    tracker.close()


def _toy_project(path: Path) -> None:
    (path / "toy.yaml").write_text("params:\n  x: {type: float, low: 0, high: 1}\n")
    (path / "obj.py").write_text("def f(trial):\n    return trial.params['x']\n")


def _cli(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`hpo ARGS` in ``cwd`` (a toy project), with no MLflow URI from the environment."""
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env["PYTHONPATH"] = str(cwd)
    out = subprocess.run(
        [sys.executable, "-m", "hpo.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    return out


_TOY_RUN = ("run", "--space", "toy.yaml", "--objective", "obj:f", "--strategy", "random")


def test_default_local_store_from_the_cli(tmp_path: Path) -> None:
    _toy_project(tmp_path)
    out = _cli(tmp_path, *_TOY_RUN, "--trials", "3")
    assert "mlflow ui --backend-store-uri sqlite:///" in out.stdout
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    runs = [r for r in _runs(uri, "toy-random") if r.data.tags.get("hpo.kind") == "trial"]
    assert len(runs) == 3
    shown = json.loads(_cli(tmp_path, "show", "toy-random", "--json").stdout)
    assert {t["system_attrs"]["mlflow_run_id"] for t in shown["trials"]} == {
        r.info.run_id for r in runs
    }
    assert np.isfinite([t["value"] for t in shown["trials"]]).all()


def test_the_cli_counts_untracked_trials_from_the_store_and_its_backfill_command_works(
    tmp_path: Path, postgres_url: str
) -> None:
    """MLflow down during `hpo run`: every trial is stored, the summary says how many have no
    run (read from the store, so it holds for Ray workers' trackers too) and prints the exact
    backfill command; no password appears in the output."""
    _toy_project(tmp_path)
    user, rest = postgres_url.split("://", 1)[1].split("@", 1)
    storage = f"postgresql://{user}:s3cret-pw@{rest}"  # trust auth: any password is accepted
    srv = Server(tmp_path)  # its port is free: nothing listens yet

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        out = _cli(tmp_path, *args)
        assert "s3cret-pw" not in out.stdout + out.stderr
        return out

    out = cli(*_TOY_RUN, "--trials", "3", "--storage", storage, "--mlflow-uri", srv.url)
    assert f"MLflow: 3 of 3 finished trials have no run in {srv.url}" in out.stdout
    backfill = out.stdout.split("backfill them with: ", 1)[1].splitlines()[0].split()
    assert backfill[:2] == ["hpo", "mlflow-sync"] and "--mlflow-uri" in backfill
    assert len(hpo.load_study("toy-random", storage=postgres_url).trials) == 3
    srv.start()
    try:
        backfill[backfill.index("--storage") + 1] = storage  # the printed one is masked
        assert "backfilled 3 trial(s)" in cli(*backfill[1:]).stdout
        out = cli(*_TOY_RUN, "--trials", "4", "--storage", storage, "--mlflow-uri", srv.url)
        assert f"MLflow: tracked in {srv.url}" in out.stdout
        runs = [r for r in _runs(srv.url, "toy-random") if r.data.tags.get("hpo.kind") == "trial"]
        assert sorted(int(r.data.tags["hpo.trial"]) for r in runs) == [0, 1, 2, 3]
    finally:
        srv.stop()


def test_a_run_ends_by_logging_the_trials_that_have_no_run_yet(
    server: Server, tmp_path: Path
) -> None:
    """Trials stored without a run (here: an earlier run with --no-mlflow; on Ray, those a
    worker's tracker failed to log) are logged when a tracked run of the study ends, once."""
    _toy_project(tmp_path)
    _cli(tmp_path, *_TOY_RUN, "--study", "late", "--trials", "3", "--no-mlflow")
    out = _cli(tmp_path, *_TOY_RUN, "--study", "late", "--trials", "5", "--mlflow-uri", server.url)
    assert f"MLflow: tracked in {server.url}" in out.stdout
    runs = [r for r in _runs(server.url, "late") if r.data.tags.get("hpo.kind") == "trial"]
    assert sorted(int(r.data.tags["hpo.trial"]) for r in runs) == [0, 1, 2, 3, 4]
    stored = hpo.load_study("late", storage=f"sqlite:///{tmp_path / 'hpo.db'}")
    assert {t.system_attrs["mlflow_run_id"] for t in stored.trials} == {r.info.run_id for r in runs}
    # Nothing left to log: no request, nothing logged twice.
    assert MlflowTracker(server.url).backfill(stored) == 0
    assert (
        len([r for r in _runs(server.url, "late") if r.data.tags.get("hpo.kind") == "trial"]) == 5
    )


# -- a hung server (issue 17) -----------------------------------------------------------------


def _slow(trial: hpo.Trial) -> float:
    time.sleep(0.2)
    trial.report(trial.params["x"], 1)
    return float(trial.params["x"])


def test_a_hung_server_costs_a_study_about_a_second_then_nothing(
    tmp_path: Path, sqlite_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A tracking server that is stopped, not dead (SIGSTOP: it accepts connections and never
    answers), must not slow trials: neither in-process (the tracker logs in the background,
    and close gives up on it) nor where every trial waits for its logging, as a Ray worker
    does (the breaker opens after one probe). The trials it missed are backfilled later."""
    srv = Server(tmp_path)
    srv.start()
    try:
        study = hpo.create_study(space=SPACE, strategy="random", storage=sqlite_url, name="hung")
        tracker = MlflowTracker(srv.url)
        study.observers.append(tracker)
        study.optimize(_slow, n_trials=2)
        assert tracker.flush(60)
        srv.hang()
        caplog.set_level(logging.WARNING, logger="hpo.tracking")
        start = time.monotonic()
        # Like a Ray worker: wait for the tracker after every trial.
        study.optimize(_slow, n_trials=6, callbacks=[lambda s, t: tracker.flush()])
        tracker.close(timeout=120)
        took = time.monotonic() - start
        assert took < 6 * 0.2 + 2.5, took  # the trials' own time, plus at most ~1.25 s
        assert len(study.trials) == 8
        assert any("not logged" in r.getMessage() for r in caplog.records)
        srv.resume()
        time.sleep(2)
        # the stuck thread was told to stop: it logs nothing after close, sync does
        out = subprocess.run(
            [sys.executable, "-m", "hpo.cli", "mlflow-sync", "hung", "--storage", sqlite_url],
            capture_output=True,
            text=True,
            env={**os.environ, "MLFLOW_TRACKING_URI": srv.url},
            timeout=120,
        )
        assert out.returncode == 0, out.stderr
        # (the request pending when the server stopped may complete once it resumes)
        assert re.search(r"backfilled [56] trial\(s\); [32] were already", out.stdout)
        runs = [r for r in _runs(srv.url, "hung") if r.data.tags.get("hpo.kind") == "trial"]
        assert sorted(int(r.data.tags["hpo.trial"]) for r in runs) == list(range(8))
    finally:
        srv.stop()


def test_the_cli_finishes_promptly_on_a_hung_server(tmp_path: Path) -> None:
    _toy_project(tmp_path)
    srv = Server(tmp_path)
    srv.start()
    try:
        srv.hang()
        start = time.monotonic()
        out = _cli(tmp_path, *_TOY_RUN, "--trials", "4", "--mlflow-uri", srv.url)
        took = time.monotonic() - start
        assert "MLflow: 4 of 4 finished trials have no run" in out.stdout
        assert took < 40, took  # the CLI's own start-up; not 4 trials x 10 s timeouts
    finally:
        srv.stop()


# -- the study's parent run ends with the study (issue 17) -------------------------------------


def _parent(uri: str, study: str) -> Any:
    (run,) = [r for r in _runs(uri, study) if r.data.tags.get("hpo.kind") == "study"]
    return run


def test_the_parent_run_ends_with_the_run_of_the_study(server: Server, tmp_path: Path) -> None:
    _toy_project(tmp_path)
    args = (*_TOY_RUN, "--study", "ends", "--mlflow-uri", server.url)
    _cli(tmp_path, *args, "--trials", "2")
    assert _parent(server.url, "ends").info.status == "FINISHED"
    # Interrupted (Ctrl-C) mid-study: KILLED. Slow trials leave time to interrupt.
    (tmp_path / "obj.py").write_text(
        "import time\ndef f(trial):\n    time.sleep(1.0)\n    return trial.params['x']\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env["PYTHONPATH"] = str(tmp_path)
    proc = subprocess.Popen(
        [sys.executable, "-m", "hpo.cli", *args, "--trials", "50"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # Ctrl-C's default action, whatever this process inherited (a shell starts background
        # jobs with SIGINT ignored, and Python keeps that).
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        deadline = time.monotonic() + 120
        while _parent(server.url, "ends").info.status != "RUNNING":  # resumed: running again
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.3)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert _parent(server.url, "ends").info.status == "KILLED"


def test_close_ends_the_parent_run_of_a_study_tracked_from_python(
    server: Server, sqlite_url: str
) -> None:
    study = hpo.create_study(space=SPACE, strategy="random", storage=sqlite_url, name="py-ends")
    tracker = MlflowTracker(server.url)
    study.observers.append(tracker)
    study.optimize(lambda t: t.params["x"], n_trials=2)
    assert tracker.flush()
    assert _parent(server.url, "py-ends").info.status == "RUNNING"
    tracker.close()
    assert _parent(server.url, "py-ends").info.status == "FINISHED"


_CKPT_OBJECTIVE = '''
import os


def f(trial):
    """Sums x * step over 3 steps, a checkpoint after each; with DIE set, the whole process
    dies (as under SIGKILL) in step 3 of trial 0."""
    state = trial.last_checkpoint() or {"step": 0, "total": 0.0}
    for step in range(state["step"] + 1, 4):
        if trial.number == 0 and step == 3 and os.environ.get("DIE"):
            os._exit(9)
        with open("steps.log", "a") as log:
            log.write(f"{trial.number} {step}\\n")
        state = {"step": step, "total": state["total"] + trial.params["x"] * step}
        trial.report(state["total"], step)
        trial.checkpoint(state)
    return state["total"]
'''


def test_checkpoints_in_the_servers_artifact_store_resume_a_killed_driver(
    server: Server, tmp_path: Path
) -> None:
    (tmp_path / "toy.yaml").write_text("params:\n  x: {type: float, low: 0, high: 1}\n")
    (tmp_path / "obj.py").write_text(_CKPT_OBJECTIVE)
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env["PYTHONPATH"] = str(tmp_path)

    def hpo_cli(*args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "hpo.cli", *args], cwd=tmp_path, capture_output=True,
            text=True, env={**env, **extra}, timeout=300,
        )  # fmt: skip

    run = ("run", "--space", "toy.yaml", "--objective", "obj:f", "--strategy", "random",
           "--study", "ck", "--trials", "3", "--no-progress", "--mlflow-uri", server.url,
           "--checkpoint-dir", "mlflow-artifacts:/ckpt")  # fmt: skip
    died = hpo_cli(*run, DIE="1")
    assert died.returncode == 9, died.stderr[-2000:]
    # The checkpoint went through the server into its artifact root, recorded with the host.
    files = tmp_path / "artifacts"  # not here: on the server's side
    assert not files.exists()
    trial_dir = server.root / "artifacts" / "ckpt" / "ck" / "trial-0"
    assert sorted(p.name for p in trial_dir.iterdir()) == ["epoch-2.pt"]  # keep=1
    store = f"sqlite:///{tmp_path / 'hpo.db'}"
    t0 = hpo.load_study("ck", storage=store).trials[0]
    assert t0.system_attrs["checkpoint"]["dir"] == (
        f"mlflow-artifacts://127.0.0.1:{server.port}/ckpt/ck/trial-0"
    )

    again = hpo_cli(*run)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "resuming trial 0 from its checkpoint of step 2" in again.stderr
    trials = hpo.load_study("ck", storage=store).trials
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 3
    x0 = trials[0].params["x"]
    assert trials[0].value == pytest.approx(6 * x0)
    steps = (tmp_path / "steps.log").read_text().split("\n")
    assert [s for s in steps if s.startswith("0 ")] == ["0 1", "0 2", "0 3"]  # none twice
    # Finished trials keep their checkpoints on the server only if they are the best.
    best = min(trials, key=lambda t: float(t.value or 0.0)).number
    assert sorted(p.name for p in trial_dir.parent.iterdir()) == [f"trial-{best}"]

    deleted = hpo_cli("delete", "ck", "--yes")
    assert deleted.returncode == 0, deleted.stderr
    assert not trial_dir.parent.exists()

    # Bad locations: one line, exit 2, nothing stored.
    for args, says in (
        (("--checkpoint-dir", "mlflow-artifacts:/ckpt", "--no-mlflow"), "--mlflow-uri http"),
        (("--checkpoint-dir", "mlflow-artifacts://127.0.0.1:9/ckpt"), "cannot write"),
    ):
        bad = hpo_cli(*run[:7], "--study", "bad", "--no-progress", *args)
        assert bad.returncode == 2, bad.stderr
        lines = bad.stderr.strip().splitlines()
        assert len(lines) == 1 and says in lines[0], lines
    assert [s.name for s in hpo.list_studies(store)] == []
