"""Test helpers for the dashboard: a real small study in a store, and the real server.

The server is the real ``hpo dashboard`` command in a subprocess, on a free loopback port
(``--port 0``; the command prints the address it got).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import hpo
from hpo.storage import get_store

SPACE = hpo.SearchSpace(
    {
        "lr": hpo.Float(1e-4, 1e-1, log=True),
        "layers": hpo.Int(1, 4),
        "optimizer": hpo.Categorical(["sgd", "adam"]),
        "momentum": hpo.Float(0.0, 0.99, when={"optimizer": "sgd"}),
    }
)

MLFLOW_UI = "http://127.0.0.1:5999"  # only used to build links; nothing listens there


def objective(trial: hpo.Trial) -> float:
    """A cheap objective shaped like training: three epochs of a falling curve.

    Trial 3 is pruned after two epochs, trial 5 fails, trial 6 reports a NaN once (the API must
    still answer with JSON); ``lr`` matters most.
    """
    p = trial.params
    final = 10 * (math.log10(p["lr"]) + 2) ** 2 + 0.1 * p["layers"] + p.get("momentum", 0.2)
    trial.set_user_attr("device", "cpu")
    for step in (1, 2, 3):
        if trial.number == 6 and step == 2:
            trial.report(float("nan"), step)
            continue
        trial.report(final + 3.0 / step, step)
        if trial.number == 3 and step == 2:
            raise hpo.TrialPruned()
    if trial.number == 5:
        raise RuntimeError("CUDA out of memory (simulated)")
    return final


def legacy_study(storage: str, name: str) -> hpo.Study:
    """A study whose name breaks today's name rule, as stores made before the rule hold them
    (made through the store, which keeps any name; hpo.create_study refuses it)."""
    store = get_store(storage)
    store.create_study(
        name=name,
        direction=hpo.Direction.MINIMIZE,
        space=SPACE.to_dict(),
        strategy="random",
        strategy_options={},
        seed=0,
        meta={},
    )
    return hpo.load_study(name, storage=storage)


def fill_study(storage: str, name: str = "demo", n_trials: int = 12) -> hpo.Study:
    """A real study: ``n_trials`` trials by the random strategy, one pruned, one failed, one
    with an MLflow run id (what the tracker records). A ``name`` that breaks today's name rule
    is made as an older store holds it (:func:`legacy_study`)."""
    try:
        hpo.check_study_name(name)
    except hpo.HpoError:
        study = legacy_study(storage, name)
    else:
        study = hpo.create_study(
            space=SPACE,
            strategy="random",
            direction="minimize",
            storage=storage,
            name=name,
            seed=0,
        )
    study.optimize(objective, n_trials=n_trials)
    first = study.trials[0]
    study.store.annotate_trial(int(first.system_attrs["trial_id"]), {"mlflow_run_id": "abc123"})
    return study


def counts(trials: Sequence[hpo.FrozenTrial]) -> dict[str, int]:
    out: dict[str, int] = {}
    for t in trials:
        out[t.state.value] = out.get(t.state.value, 0) + 1
    return out


@dataclass
class Server:
    url: str
    proc: subprocess.Popen[str]
    output: list[str]  # what the server printed (drained by a thread so it never blocks)

    def get(self, path: str) -> object:
        with urllib.request.urlopen(self.url + path, timeout=30) as r:
            return json.loads(r.read())


def hpo_command() -> list[str]:
    return [sys.executable, "-m", "hpo.cli"]


@contextmanager
def running_server(
    storage: str, *args: str, env: dict[str, str] | None = None, timeout: float = 90.0
) -> Iterator[Server]:
    """``hpo dashboard --storage STORAGE --port 0 ARGS`` until the block ends."""
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    if env is None or "HPO_TOKEN" not in env:
        full_env.pop("HPO_TOKEN", None)
    proc = subprocess.Popen(
        [*hpo_command(), "dashboard", "--storage", storage, "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=full_env,
    )
    try:
        url, output = _wait_for_url(proc, timeout)
        threading.Thread(target=_drain, args=(proc, output), daemon=True).start()
        yield Server(url, proc, output)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _drain(proc: subprocess.Popen[str], into: list[str]) -> None:
    assert proc.stdout is not None
    for line in proc.stdout:
        into.append(line)


def _wait_for_url(proc: subprocess.Popen[str], timeout: float) -> tuple[str, list[str]]:
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    lines = []
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            if proc.poll() is not None:
                break
            continue
        lines.append(line)
        if line.startswith("hpo dashboard on "):
            url = line.split()[3].rstrip("/")
            _wait_until_up(url, deadline)
            return url, lines
    raise RuntimeError("the dashboard did not start:\n" + "".join(lines))


def _wait_until_up(url: str, deadline: float) -> None:
    while True:
        try:
            with urllib.request.urlopen(url + "/api/config", timeout=5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def artifacts_dir(name: str) -> Path:
    """Where tests keep screenshots: $HPO_TEST_ARTIFACTS, else test-artifacts/ (gitignored)."""
    root = os.environ.get("HPO_TEST_ARTIFACTS") or Path(__file__).resolve().parent.parent / (
        "test-artifacts"
    )
    path = Path(root) / name
    path.mkdir(parents=True, exist_ok=True)
    return path
