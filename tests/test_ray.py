"""Parallel and multi-node trials on real Ray: local instances started by `hpo run`, and a
two-node cluster of separate `ray start` processes (the second node with its own hostname
and a declared GPU), all in a loopback-only network namespace, over real PostgreSQL and a
real MLflow server. Nothing here is mocked: workers are killed with SIGKILL, the driver is
killed mid-study, Ctrl-C is a real SIGINT."""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _cluster import PYTHON, MlflowServer, NetNS, RayCluster, netns_reason, socket_url

import hpo
from hpo.executors import RayExecutor
from hpo.trial import TrialState

pytest.importorskip("ray", reason="Ray is not installed (pip install 'hpo[ray]')")

OBJECTIVES = '''
import os, pathlib, time
import hpo

def _nap(default):
    return float(os.environ.get("HPO_TEST_NAP", default))

def sleepy(trial):
    for step in range(1, 4):
        trial.report(trial.params["x"] * step, step)
        time.sleep(_nap("0.2"))
    return trial.params["x"]

def marked(trial):
    """Leaves its pid in HPO_TEST_DIR, so a test can kill the worker running it."""
    d = pathlib.Path(os.environ["HPO_TEST_DIR"])
    (d / f"{trial.study.name}-{trial.number}.pid").write_text(str(os.getpid()))
    time.sleep(_nap("1.5"))
    return trial.params["x"]

def gpu_seen(trial):
    """Records the GPUs the trial's process may see, as Ray set them up."""
    trial.set_user_attr("cuda_visible", os.environ.get("CUDA_VISIBLE_DEVICES"))
    time.sleep(_nap("0.5"))
    return trial.params["x"]

def resumable(trial):
    """Sums x * step over 4 steps, checkpointing after each; logs every step it computes."""
    log = pathlib.Path(os.environ["HPO_TEST_DIR"]) / f"{trial.study.name}-{trial.number}.steps"
    state = trial.last_checkpoint() or {"step": 0, "total": 0.0}
    for step in range(state["step"] + 1, 5):
        with open(log, "a") as f:
            f.write(f"{step} {os.getpid()}\\n")
        time.sleep(_nap("0.5"))
        state = {"step": step, "total": state["total"] + trial.params["x"] * step}
        trial.report(state["total"], step)
        trial.checkpoint(state)
    return state["total"]

def pausable(trial):
    """The curve x * s over 6 steps that checkpoints when paused and resumes from it; logs
    every step it computes (and where)."""
    log = pathlib.Path(os.environ["HPO_TEST_DIR"]) / f"{trial.study.name}-{trial.number}.steps"
    state = trial.last_checkpoint() or {"step": 0}
    for step in range(state["step"] + 1, 7):
        with open(log, "a") as f:
            f.write(f"{step} {os.getpid()}\\n")
        trial.report(trial.params["x"] * step, step)
        if trial.should_prune():
            if trial.pausing:
                trial.checkpoint({"step": step})
            raise hpo.TrialPruned()
        time.sleep(0.05)
    return trial.params["x"] * 6

def curve(trial):
    """A learning curve: the value after step s is x * s (smaller x, better trial)."""
    for step in range(1, 7):
        trial.report(trial.params["x"] * step, step)
        if trial.should_prune():
            raise hpo.TrialPruned()
        time.sleep(0.05)
    return trial.params["x"] * 6
'''

SPACE = """
direction: minimize
trials: 6
params:
  x: {type: float, low: 0.0, high: 1.0}
"""

GRID_SPACE = """
direction: minimize
params:
  x: {type: categorical, choices: [0, 1, 2, 3, 4, 5, 6, 7]}
"""


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("ray-work")
    (d / "objectives.py").write_text(OBJECTIVES)
    (d / "space.yaml").write_text(SPACE)
    (d / "grid.yaml").write_text(GRID_SPACE)
    (d / "pids").mkdir()
    return d


def _netns() -> NetNS:
    reason = netns_reason()
    if reason is not None:
        if os.environ.get("CI"):
            pytest.fail(f"the Ray tests need a network namespace in CI: {reason}")
        pytest.skip(f"no network namespace for the Ray tests: {reason}")
    return NetNS()


@pytest.fixture
def local_ns() -> Iterator[NetNS]:
    """A fresh namespace for one test that starts its own local Ray through `hpo run`."""
    ns = _netns()
    yield ns
    ns.close()


def _env(workdir: Path, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "RAY_USAGE_STATS_ENABLED": "0",
        "HPO_OFFLINE": "1",
        "PYTHONPATH": str(workdir),
        "HPO_TEST_DIR": str(workdir / "pids"),
        **extra,
    }


def _run_cmd(*args: str) -> list[str]:
    return [PYTHON, "-m", "hpo.cli", "run", "--no-progress", "--objective", *args]


def _hpo_run(
    ns: NetNS, env: dict[str, str], cwd: Path, *args: str, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ns.cmd(_run_cmd(*args)), env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout
    )


def _wait_for(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _overlap(trials: list[hpo.FrozenTrial]) -> bool:
    spans = sorted((t.started_at, t.finished_at) for t in trials)
    return any(b[0] < a[1] for a, b in itertools.pairwise(spans))


# -- no cluster needed --------------------------------------------------------------------


def test_executor_settings_are_checked() -> None:
    for kwargs, words in [
        ({"workers": 0}, "workers must be an integer >= 1"),
        ({"cpus_per_trial": 0}, "cpus per trial must be a number > 0"),
        ({"gpus_per_trial": -1}, "gpus per trial must be a number >= 0"),
        ({"gpus_per_trial": 1.5}, "whole number"),
        ({"retries": -1}, "retries must be an integer >= 0"),
    ]:
        with pytest.raises(hpo.HpoError, match=words):
            RayExecutor(**kwargs)


def test_in_memory_study_is_refused_before_ray_starts() -> None:
    study = hpo.create_study(space=hpo.SearchSpace({"x": hpo.Float(0, 1)}), strategy="random")
    t0 = time.monotonic()
    with pytest.raises(hpo.HpoError, match="in-memory study cannot be shared"):
        study.optimize(lambda t: 0.0, n_trials=2, executor=RayExecutor(workers=2))
    assert time.monotonic() - t0 < 5
    assert study.trials == []


@pytest.fixture
def web_server() -> Iterator[int]:
    """A plain HTTP server on a free loopback port: something listens, but no Ray head."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [PYTHON, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        _wait_for(lambda: _listening(port), 30, "the web server")
        yield port
    finally:
        proc.kill()
        proc.wait()


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def test_bad_cluster_settings_fail_fast_and_store_nothing(
    workdir: Path, tmp_path: Path, web_server: int
) -> None:
    """A dead or malformed address, a port where a web server listens (Ray hung on it for
    minutes: issue 17), a GPU index a Ray trial cannot see, or a GPU device without a GPU
    request: one line, exit 2, within seconds (Ray alone retries a dead address for
    minutes), and no study stored."""
    url = f"sqlite:///{tmp_path}/hpo.db"
    cases = [
        (["--ray-address", f"127.0.0.1:{web_server}"], "but it is not a Ray head"),
        (["--ray-address", f"ray://127.0.0.1:{web_server}"], "but it is not a Ray head"),
        (["--ray-address", "127.0.0.1:1"], "nothing answers at 127.0.0.1:1"),
        (["--ray-address", "ray://127.0.0.1:1"], "nothing answers at 127.0.0.1:1"),
        (["--ray-address", "http://head:6379"], "must be auto, HOST:PORT"),
        (["--ray-address", "head"], "must be auto, HOST:PORT"),
        (
            ["--workers", "2", "--device", "cuda:1", "--gpus-per-trial", "1"],
            "each trial sees only the GPU(s) it was",
        ),
        (["--workers", "2", "--device", "cuda"], "a trial sees no GPU unless it asks for one"),
    ]
    for args, words in cases:
        t0 = time.monotonic()
        r = subprocess.run(
            [*_run_cmd("objectives:sleepy", "--space", str(workdir / "space.yaml")),
             "--storage", url, "--no-mlflow", *args],
            env=_env(workdir), cwd=tmp_path, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert r.returncode == 2, (args, r.stderr[-2000:])
        assert words in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
        assert time.monotonic() - t0 < 30
    assert hpo.list_studies(storage=url) == []


# -- a local Ray instance started by `hpo run --workers N` --------------------------------


def test_workers_run_trials_at_once_and_leave_nothing_behind(
    local_ns: NetNS, workdir: Path, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path}/hpo.db"
    env = _env(workdir, HPO_TEST_NAP="0.5")
    r = _hpo_run(
        local_ns, env, tmp_path, "objectives:sleepy", "--space", str(workdir / "space.yaml"),
        "--strategy", "random", "--workers", "2", "--storage", url, "--no-mlflow",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    trials = hpo.load_study("space-random", storage=url).trials
    assert [t.number for t in trials] == list(range(6))
    assert all(t.state is TrialState.COMPLETE for t in trials)
    assert all(sorted(t.intermediate) == [1, 2, 3] for t in trials)
    assert len({t.system_attrs["worker_pid"] for t in trials}) == 2
    assert {t.system_attrs["executor"] for t in trials} == {"ray"}
    assert _overlap(trials), "two workers, but no two trials ran at the same time"
    _wait_for(lambda: not local_ns.pids(), 30, "the local Ray instance to stop")


def test_grid_hands_each_point_to_one_worker(
    local_ns: NetNS, workdir: Path, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path}/hpo.db"
    r = _hpo_run(
        local_ns, _env(workdir), tmp_path, "objectives:sleepy", "--space",
        str(workdir / "grid.yaml"), "--strategy", "grid", "--workers", "3", "--trials", "20",
        "--storage", url, "--no-mlflow",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    trials = hpo.load_study("grid-grid", storage=url).trials
    assert sorted(t.params["x"] for t in trials) == list(range(8))


def test_pruners_decide_from_the_store_on_ray_workers(
    local_ns: NetNS, workdir: Path, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path}/hpo.db"
    r = _hpo_run(
        local_ns, _env(workdir), tmp_path, "objectives:curve", "--space",
        str(workdir / "space.yaml"), "--strategy", "random", "--trials", "12", "--workers", "2",
        "--pruner", "asha", "--pruner-opt", "max_resource=6", "--storage", url, "--no-mlflow",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    trials = hpo.load_study("space-random-asha", storage=url).trials
    assert len(trials) == 12
    assert len({t.system_attrs["worker_pid"] for t in trials}) == 2
    pruned = [t for t in trials if t.state is TrialState.PRUNED]
    complete = [t for t in trials if t.state is TrialState.COMPLETE]
    assert pruned and complete, [t.state for t in trials]
    for t in pruned:  # stopped early, curve kept, last value as the trial's value
        assert t.last_step is not None and t.last_step < 6
        assert t.value == t.intermediate[t.last_step]
    assert all(sorted(t.intermediate) == [1, 2, 3, 4, 5, 6] for t in complete)
    # ASHA stops a trial only when another trial at that step did better
    for t in pruned:
        step = t.last_step
        rivals = [o.intermediate[step] for o in trials if o is not t and step in o.intermediate]
        assert rivals and min(rivals) < t.intermediate[step]


def test_paused_trials_are_promoted_on_ray_workers_from_their_checkpoints(
    local_ns: NetNS, workdir: Path, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path}/hpo.db"
    r = _hpo_run(
        local_ns, _env(workdir), tmp_path, "objectives:pausable", "--space",
        str(workdir / "space.yaml"), "--strategy", "random", "--trials", "12", "--workers", "2",
        "--pruner", "asha", "--pruner-opt", "max_resource=6", "--pruner-opt", "reduction_factor=2",
        "--pruner-opt", "pause=true", "--storage", url, "--study", "paused", "--no-mlflow",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    trials = hpo.load_study("paused", storage=url).trials
    assert len(trials) == 12 and len({t.system_attrs["worker_pid"] for t in trials}) == 2
    assert all(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials)
    promoted = [t for t in trials if t.promotions]
    assert promoted and any(t.paused for t in trials)
    for t in trials:
        steps = (workdir / "pids" / f"paused-{t.number}.steps").read_text().split("\n")
        computed = [int(line.split()[0]) for line in steps if line]
        assert computed == list(range(1, (t.last_step or 0) + 1)), (t.number, computed)
        assert dict(t.intermediate) == {s: t.params["x"] * s for s in computed}
    # Promotions go on to the end and nothing was trained twice: fewer steps than 12 x 6.
    assert any(t.state is TrialState.COMPLETE for t in promoted)
    assert sum(t.last_step or 0 for t in trials) < 12 * 6


def test_gpu_request_beyond_the_machine_fails_at_start(
    local_ns: NetNS, workdir: Path, tmp_path: Path
) -> None:
    t0 = time.monotonic()
    r = _hpo_run(
        local_ns, _env(workdir), tmp_path, "objectives:sleepy", "--space",
        str(workdir / "space.yaml"), "--workers", "2", "--gpus-per-trial", "1",
        "--storage", f"sqlite:///{tmp_path}/hpo.db", "--no-mlflow", timeout=120,
    )  # fmt: skip
    assert r.returncode == 2, r.stderr[-3000:]
    assert "asks for 1 GPU(s), but no node of the Ray cluster has that many" in r.stderr
    assert "--gpus-per-trial" in r.stderr
    errors = [ln for ln in r.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and r.stderr.strip().endswith(errors[0]), r.stderr
    assert time.monotonic() - t0 < 90
    # refused after Ray started, but no empty study is left behind (issue 17)
    assert hpo.list_studies(storage=f"sqlite:///{tmp_path}/hpo.db") == []


def test_ctrl_c_interrupts_running_trials_and_stops_ray(
    local_ns: NetNS, workdir: Path, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path}/hpo.db"
    name = f"ctrlc-{os.getpid()}"
    proc = subprocess.Popen(
        local_ns.cmd(
            _run_cmd(
                "objectives:marked", "--space", str(workdir / "space.yaml"), "--workers", "2",
                "--storage", url, "--study", name, "--no-mlflow",
            )
        ),
        env=_env(workdir, HPO_TEST_NAP="60"),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    pids = workdir / "pids"
    _wait_for(lambda: len(list(pids.glob(f"{name}-*.pid"))) == 2, 120, "two running trials")
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err[-3000:]
    trials = hpo.load_study(name, storage=url).trials
    assert len(trials) == 2
    for t in trials:
        assert t.state is TrialState.FAILED and t.interrupted, (t.state, t.error)
    _wait_for(lambda: not local_ns.pids(), 30, "every Ray process to exit after Ctrl-C")


# -- a two-node cluster -------------------------------------------------------------------


@pytest.fixture(scope="module")
def cluster(
    workdir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[RayCluster, MlflowServer]]:
    """Head node (this host's name, 2 CPUs) and a second node with hostname hpo-node2, 2 CPUs
    and two declared GPUs; an MLflow server beside them. Module-scoped: starting it costs
    ~20 s."""
    ns = _netns()
    logs = tmp_path_factory.mktemp("ray-logs")
    try:
        ray_cluster = RayCluster(
            ns,
            logs,
            [{"cpus": 2}, {"cpus": 2, "gpus": 2, "hostname": "hpo-node2"}],
            PYTHONPATH=str(workdir),
            HPO_TEST_DIR=str(workdir / "pids"),
        )
        ray_cluster.start()
        server = MlflowServer(ns, logs, ray_cluster.env)
        yield ray_cluster, server
    finally:
        ns.close()


def _cluster_run(
    cluster: RayCluster, cwd: Path, *args: str, **env: str
) -> subprocess.CompletedProcess[str]:
    return _hpo_run(
        cluster.ns, {**cluster.env, **env}, cwd, *args, "--ray-address", cluster.address
    )


def test_a_study_spans_both_nodes(
    cluster: tuple[RayCluster, MlflowServer], workdir: Path, postgres_url: str
) -> None:
    ray_cluster, server = cluster
    r = _cluster_run(
        ray_cluster, workdir, "objectives:sleepy", "--space", str(workdir / "space.yaml"),
        "--strategy", "random", "--trials", "12", "--workers", "4", "--seed", "7",
        "--storage", socket_url(postgres_url), "--mlflow-uri", server.url,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    study = hpo.load_study("space-random", storage=postgres_url)
    trials = study.trials
    assert [t.number for t in trials] == list(range(12))
    assert all(t.state is TrialState.COMPLETE for t in trials)
    assert all(sorted(t.intermediate) == [1, 2, 3] for t in trials)
    assert len({t.system_attrs["node_id"] for t in trials}) == 2
    assert {t.system_attrs["worker_host"] for t in trials} == {socket.gethostname(), "hpo-node2"}
    assert {t.system_attrs["node_ip"] for t in trials} == {"127.0.0.1"}
    # random stays reproducible per trial number, whichever worker ran it
    alone = hpo.create_study(space=study.space, strategy="random", seed=7)
    assert [dict(alone.ask().params) for _ in range(12)] == [dict(t.params) for t in trials]
    # every worker tracked its own trials in MLflow
    runs = [r for r in server.runs("space-random") if r["tags"].get("hpo.kind") == "trial"]
    assert sorted(int(r["tags"]["hpo.trial"]) for r in runs) == list(range(12))
    assert {r["tags"]["hpo.host"] for r in runs} == {socket.gethostname(), "hpo-node2"}
    assert {r["status"] for r in runs} == {"FINISHED"}


def test_gpu_trials_run_on_the_gpu_they_were_given(
    cluster: tuple[RayCluster, MlflowServer], workdir: Path, postgres_url: str
) -> None:
    ray_cluster, _ = cluster
    r = _cluster_run(
        ray_cluster, workdir, "objectives:gpu_seen", "--space", str(workdir / "space.yaml"),
        "--study", "gpus", "--trials", "4", "--workers", "2", "--gpus-per-trial", "1",
        "--storage", socket_url(postgres_url), "--no-mlflow", HPO_TEST_NAP="1.0",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    trials = hpo.load_study("gpus", storage=postgres_url).trials
    assert len(trials) == 4 and all(t.state is TrialState.COMPLETE for t in trials)
    assert {t.system_attrs["worker_host"] for t in trials} == {"hpo-node2"}  # the GPU node
    for t in trials:  # what the trial's process saw is the card the store says it had
        assert [t.user_attrs["cuda_visible"]] == t.system_attrs["gpu_ids"]
        assert t.system_attrs["device"] == "cuda"
    pairs = [
        (a, b)
        for a, b in itertools.combinations(trials, 2)
        if a.started_at < b.finished_at and b.started_at < a.finished_at  # type: ignore[operator]
    ]
    assert pairs, "two one-GPU trials should run at once on the two cards"
    assert all(a.system_attrs["gpu_ids"] != b.system_attrs["gpu_ids"] for a, b in pairs)

    # a trial that asked for no GPU sees none, wherever it runs
    r = _cluster_run(
        ray_cluster, workdir, "objectives:gpu_seen", "--space", str(workdir / "space.yaml"),
        "--study", "no-gpus", "--trials", "4", "--workers", "4",
        "--storage", socket_url(postgres_url), "--no-mlflow", HPO_TEST_NAP="0.5",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    trials = hpo.load_study("no-gpus", storage=postgres_url).trials
    assert "hpo-node2" in {t.system_attrs["worker_host"] for t in trials}
    assert {t.user_attrs["cuda_visible"] for t in trials} == {""}
    assert {t.system_attrs["device"] for t in trials} == {"cpu"}

    r = _cluster_run(
        ray_cluster, workdir, "objectives:sleepy", "--space", str(workdir / "space.yaml"),
        "--study", "too-big", "--gpus-per-trial", "3", "--storage", socket_url(postgres_url),
        "--no-mlflow",
    )  # fmt: skip
    assert r.returncode == 2
    assert "asks for 3 GPU(s), but no node of the Ray cluster has that many (most: 2" in r.stderr
    assert "too-big" not in {s.study.name for s in hpo.list_studies(storage=postgres_url)}


def test_a_client_port_without_ray_scheme_is_refused_and_stores_nothing(
    cluster: tuple[RayCluster, MlflowServer], workdir: Path, postgres_url: str
) -> None:
    """The head's client port (10001) given as HOST:PORT, without ray://: refused at start,
    and the study it was about to run is not left behind empty (issue 17)."""
    ray_cluster, _ = cluster
    t0 = time.monotonic()
    r = _hpo_run(
        ray_cluster.ns, ray_cluster.env, workdir, "objectives:sleepy", "--space",
        str(workdir / "space.yaml"), "--study", "client-port", "--storage",
        socket_url(postgres_url), "--no-mlflow", "--ray-address", "127.0.0.1:10001",
        timeout=240,
    )  # fmt: skip
    assert r.returncode == 2, r.stderr[-3000:]
    assert [ln for ln in r.stderr.splitlines() if ln.startswith("error:")], r.stderr
    assert "client-port" not in {s.study.name for s in hpo.list_studies(storage=postgres_url)}
    assert time.monotonic() - t0 < 120


def test_sqlite_is_refused_when_nodes_are_on_other_machines(
    cluster: tuple[RayCluster, MlflowServer], workdir: Path, tmp_path: Path
) -> None:
    ray_cluster, _ = cluster
    r = _cluster_run(
        ray_cluster, workdir, "objectives:sleepy", "--space", str(workdir / "space.yaml"),
        "--storage", f"sqlite:///{tmp_path}/hpo.db", "--no-mlflow",
    )  # fmt: skip
    assert r.returncode == 2
    assert "SQLite file on this machine" in r.stderr and "hpo-node2" in r.stderr
    assert "postgresql://" in r.stderr
    with pytest.raises(hpo.StudyNotFoundError):  # a refused run leaves no empty study
        hpo.load_study("space-bayes", storage=f"sqlite:///{tmp_path}/hpo.db")


def _kill_when_running(workdir: Path, name: str, number: int) -> int:
    pid_file = workdir / "pids" / f"{name}-{number}.pid"
    _wait_for(pid_file.exists, 120, f"trial {number} to start")
    pid = int(pid_file.read_text())
    os.kill(pid, signal.SIGKILL)
    return pid


@pytest.mark.parametrize("retries", [0, 1])
def test_a_killed_worker_fails_or_retries_its_trial(
    cluster: tuple[RayCluster, MlflowServer], workdir: Path, postgres_url: str, retries: int
) -> None:
    ray_cluster, _ = cluster
    name = f"kill-worker-{retries}"
    proc = subprocess.Popen(
        ray_cluster.ns.cmd(
            _run_cmd(
                "objectives:marked", "--space", str(workdir / "space.yaml"), "--trials", "5",
                "--workers", "2", "--study", name, "--retries", str(retries),
                "--storage", socket_url(postgres_url), "--no-mlflow",
                "--ray-address", ray_cluster.address,
            )
        ),
        env={**ray_cluster.env, "HPO_TEST_NAP": "2"},
        cwd=workdir,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    _kill_when_running(workdir, name, 1)
    _out, err = proc.communicate(timeout=240)
    assert proc.returncode == 0, err[-3000:]
    trials = hpo.load_study(name, storage=postgres_url).trials
    counted = [t for t in trials if not t.interrupted]
    assert len(counted) == 5
    killed = trials[1]
    assert killed.state is TrialState.FAILED
    assert "worker died while running this trial" in (killed.error or "")
    if retries == 0:
        assert not killed.interrupted
        assert [t.state for t in counted].count(TrialState.COMPLETE) == 4
    else:
        assert killed.interrupted and "retried as a new trial (1/1)" in (killed.error or "")
        assert all(t.state is TrialState.COMPLETE for t in counted)
        assert [dict(t.params) for t in counted].count(dict(killed.params)) == 1


def test_a_killed_worker_resumes_its_trial_from_its_checkpoint(
    cluster: tuple[RayCluster, MlflowServer], workdir: Path, postgres_url: str
) -> None:
    """--retries with checkpoints: the trial whose worker is killed mid-step goes on from its
    last checkpoint on a free worker, as the same trial; no step before it runs twice."""
    ray_cluster, _ = cluster
    name = "kill-worker-resume"
    proc = subprocess.Popen(
        ray_cluster.ns.cmd(
            _run_cmd(
                "objectives:resumable", "--space", str(workdir / "space.yaml"), "--trials", "3",
                "--workers", "2", "--study", name, "--retries", "1",
                "--storage", socket_url(postgres_url), "--no-mlflow",
                "--checkpoint-dir", str(workdir / "ck"), "--ray-address", ray_cluster.address,
            )
        ),
        env={**ray_cluster.env, "HPO_TEST_NAP": "0.6"},
        cwd=workdir,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    steps = workdir / "pids" / f"{name}-1.steps"

    def lines() -> list[list[str]]:
        return [ln.split() for ln in steps.read_text().splitlines()] if steps.exists() else []

    try:
        _wait_for(lambda: len(lines()) >= 3 or proc.poll() is not None, 120, "trial 1's third step")
        assert proc.poll() is None
    except AssertionError:
        proc.kill()
        raise AssertionError(proc.communicate()[1][-3000:]) from None
    os.kill(int(lines()[2][1]), signal.SIGKILL)  # during step 3, after checkpoint 2
    _out, err = proc.communicate(timeout=240)
    assert proc.returncode == 0, err[-3000:]
    trials = hpo.load_study(name, storage=postgres_url).trials
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 3  # no replacement trial
    t = trials[1]
    x = t.params["x"]
    assert t.value == pytest.approx(10 * x)
    assert dict(t.intermediate) == pytest.approx({1: x, 2: 3 * x, 3: 6 * x, 4: 10 * x})
    assert [r["step"] for r in t.system_attrs["resumed"]] == [2]
    assert "worker died" in t.system_attrs["resumed"][0]["error"]
    done = lines()
    assert [int(s) for s, _pid in done] == [1, 2, 3, 3, 4]  # steps 1-2 were not paid twice
    assert done[2][1] != done[3][1]  # another worker process went on


def test_a_killed_driver_resumes_without_losing_or_repeating_trials(
    cluster: tuple[RayCluster, MlflowServer], workdir: Path, postgres_url: str
) -> None:
    ray_cluster, _ = cluster
    name = "kill-driver"
    args = _run_cmd(
        "objectives:marked", "--space", str(workdir / "space.yaml"), "--trials", "8",
        "--workers", "2", "--study", name, "--storage", socket_url(postgres_url),
        "--no-mlflow", "--ray-address", ray_cluster.address,
    )  # fmt: skip
    env = {**ray_cluster.env, "HPO_TEST_NAP": "1.5"}
    proc = subprocess.Popen(
        ray_cluster.ns.cmd(args), env=env, cwd=workdir, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip

    def completed() -> list[hpo.FrozenTrial]:
        try:
            trials = hpo.load_study(name, storage=postgres_url).trials
        except hpo.StudyNotFoundError:
            return []
        return [t for t in trials if t.state is TrialState.COMPLETE]

    _wait_for(lambda: len(completed()) >= 3, 180, "three completed trials")
    proc.kill()
    proc.wait()
    before = {t.number: (dict(t.params), t.value) for t in completed()}
    assert any(
        t.state is TrialState.RUNNING for t in hpo.load_study(name, storage=postgres_url).trials
    ), "the driver was killed between trials; nothing to resume"

    r = subprocess.run(
        ray_cluster.ns.cmd(args), env=env, cwd=workdir, capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    trials = hpo.load_study(name, storage=postgres_url).trials
    assert [t.number for t in trials] == list(range(len(trials)))
    counted = [t for t in trials if not t.interrupted]
    assert len(counted) == 8 and all(t.state is TrialState.COMPLETE for t in counted)
    for number, (params, value) in before.items():
        assert (dict(trials[number].params), trials[number].value) == (params, value)
    interrupted = [t for t in trials if t.interrupted]
    assert interrupted and all("stopped" in (t.error or "") for t in interrupted)


def test_a_driver_killed_during_the_last_trials_resumes_them(
    cluster: tuple[RayCluster, MlflowServer], workdir: Path, postgres_url: str
) -> None:
    """kill -9 while the study's last trials run on Ray: the rerun marks them interrupted
    before it counts and runs them again (it said `already holds 4/4 trials; nothing to
    run` and left them RUNNING for ever: issue 17)."""
    ray_cluster, _ = cluster
    name = "kill-driver-last"
    args = _run_cmd(
        "objectives:marked", "--space", str(workdir / "space.yaml"), "--trials", "4",
        "--workers", "2", "--study", name, "--storage", socket_url(postgres_url),
        "--no-mlflow", "--ray-address", ray_cluster.address,
    )  # fmt: skip
    env = {**ray_cluster.env, "HPO_TEST_NAP": "4"}
    proc = subprocess.Popen(
        ray_cluster.ns.cmd(args), env=env, cwd=workdir, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    pids = workdir / "pids"
    _wait_for(lambda: (pids / f"{name}-3.pid").exists(), 180, "the last trial to start")
    proc.kill()
    proc.wait()
    trials = hpo.load_study(name, storage=postgres_url).trials
    assert len(trials) == 4 and any(t.state is TrialState.RUNNING for t in trials)

    env["HPO_TEST_NAP"] = "0.5"
    r = subprocess.run(
        ray_cluster.ns.cmd(args), env=env, cwd=workdir, capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    assert "nothing to run" not in r.stdout and "resuming: " in r.stdout, r.stdout
    trials = hpo.load_study(name, storage=postgres_url).trials
    assert not [t for t in trials if t.state is TrialState.RUNNING]
    counted = [t for t in trials if not t.interrupted]
    assert len(counted) == 4 and all(t.state is TrialState.COMPLETE for t in counted)
    assert [t for t in trials if t.interrupted]


def _descendants(pid: int) -> list[int]:
    """Every process below ``pid``, read from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def test_a_lost_node_resumes_its_trial_on_another_from_its_checkpoint(
    cluster: tuple[RayCluster, MlflowServer], workdir: Path, postgres_url: str
) -> None:
    """The raylet of the node running a trial is SIGKILLed mid-step, so the whole node is lost:
    with --retries the trial goes on from its last checkpoint on the node that is left, as the
    same trial, and no step before the checkpoint runs again. (Last in this module: the second
    node stays lost.)"""
    ray_cluster, _ = cluster
    name = "lost-node"
    proc = subprocess.Popen(
        ray_cluster.ns.cmd(
            _run_cmd(
                "objectives:resumable", "--space", str(workdir / "space.yaml"), "--trials", "4",
                "--workers", "4", "--study", name, "--retries", "1",
                "--storage", socket_url(postgres_url), "--no-mlflow",
                "--checkpoint-dir", str(workdir / "ck-lost"), "--ray-address", ray_cluster.address,
            )
        ),
        env={**ray_cluster.env, "HPO_TEST_NAP": "2.0"},
        cwd=workdir,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip

    def steps(number: int) -> list[list[str]]:
        log = workdir / "pids" / f"{name}-{number}.steps"
        return [ln.split() for ln in log.read_text().splitlines()] if log.exists() else []

    def on_node2() -> list[int]:
        with contextlib.suppress(hpo.StudyNotFoundError):
            trials = hpo.load_study(name, storage=postgres_url).trials
            return [t.number for t in trials if t.system_attrs.get("worker_host") == "hpo-node2"]
        return []

    target: list[int] = []

    def a_trial_at_step_2_on_node2() -> bool:
        target[:] = [n for n in on_node2() if len(steps(n)) >= 2]
        return bool(target) or proc.poll() is not None

    try:
        _wait_for(a_trial_at_step_2_on_node2, 120, "a trial on the second node at its step 2")
        assert proc.poll() is None and target
    except AssertionError:
        proc.kill()
        raise AssertionError(proc.communicate()[1][-3000:]) from None
    number = target[0]

    def comm(pid: int) -> str:
        with contextlib.suppress(OSError):
            return Path(f"/proc/{pid}/comm").read_text().strip()
        return ""

    raylets = [p for p in _descendants(ray_cluster.procs[1].pid) if comm(p) == "raylet"]
    assert len(raylets) == 1, raylets
    os.kill(raylets[0], signal.SIGKILL)  # the node is gone, with its workers
    _out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-3000:]
    trials = hpo.load_study(name, storage=postgres_url).trials
    assert not [t for t in trials if t.state is TrialState.RUNNING]
    counted = [t for t in trials if not t.interrupted]
    assert len(counted) == 4 and all(t.state is TrialState.COMPLETE for t in counted)
    t = trials[number]
    x = t.params["x"]
    assert t.state is TrialState.COMPLETE and t.value == pytest.approx(10 * x)
    assert dict(t.intermediate) == pytest.approx({1: x, 2: 3 * x, 3: 6 * x, 4: 10 * x})
    assert len(t.system_attrs.get("resumed", [])) == 1, (steps(number), t.system_attrs)
    assert "worker died" in t.system_attrs["resumed"][0]["error"]
    assert t.system_attrs["worker_host"] == socket.gethostname()  # went on on the head node
    lines = steps(number)
    first = [int(s) for s, pid in lines if pid == lines[0][1]]  # on the lost node
    after = [int(s) for s, pid in lines if pid != lines[0][1]]  # on the head node
    resumed_at = t.system_attrs["resumed"][0]["step"]
    assert first == list(range(1, len(first) + 1)) and len(first) >= 2
    # From the checkpoint before the step cut short (or after it, had it just been written):
    # no step before it ran again.
    assert resumed_at in (len(first) - 1, len(first))
    assert after == list(range(resumed_at + 1, 5))
