"""The `hpo` command, run as a user runs it: a real process, real store, real training."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

HPO = [sys.executable, "-m", "hpo.cli"]


def hpo(
    *args: str, cwd: Path, check: bool = True, timeout: float = 300
) -> subprocess.CompletedProcess:
    if args and args[0] == "run":  # MLflow is tested in test_tracking.py; keep these fast
        args = (*args, "--no-mlflow")
    env = {**os.environ, "HPO_OFFLINE": "1", "PYTHONPATH": str(cwd)}
    proc = subprocess.run(
        [*HPO, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"hpo {' '.join(args)} -> {proc.returncode}\n{proc.stderr}")
    return proc


OBJECTIVE = """
import time
def quadratic(trial):
    if trial.params["x"] > 0.95:
        raise RuntimeError("crash in the objective")
    return (trial.params["x"] - 0.3) ** 2 + (trial.params["opt"] == "b")

def nap(trial):
    time.sleep(0.3)
    return trial.params["x"]

def slow(trial):
    print("trial", trial.number, flush=True)
    time.sleep(0.2 if trial.number < 2 else 60)
    return trial.params["x"]
"""

SPACE = """
description: toy space
direction: minimize
trials: 8
params:
  x: {type: float, low: 0.0, high: 1.0}
  opt: {type: categorical, choices: [a, b]}
"""


@pytest.fixture
def work(tmp_path: Path) -> Path:
    (tmp_path / "myobj.py").write_text(OBJECTIVE)
    (tmp_path / "toy.yaml").write_text(SPACE)
    return tmp_path


def test_run_show_best_studies_and_resume(work: Path) -> None:
    out = hpo(
        "run",
        "--space",
        "toy.yaml",
        "--objective",
        "myobj:quadratic",
        "--strategy",
        "random",
        "--trials",
        "6",
        cwd=work,
    )
    assert "toy-random" in out.stdout and "best trial" in out.stdout
    assert "[hpo] trial 5" in out.stderr  # plain progress lines off a terminal
    assert (work / "hpo.db").exists()  # the default store
    shown = json.loads(hpo("show", "toy-random", "--json", cwd=work).stdout)
    assert len(shown["trials"]) == 6
    values = [t["value"] for t in shown["trials"] if t["state"] == "complete"]
    assert values == sorted(values)  # best first
    # rerunning the same command with a larger budget resumes the study
    out = hpo(
        "run",
        "--space",
        "toy.yaml",
        "--objective",
        "myobj:quadratic",
        "--strategy",
        "random",
        "--trials",
        "9",
        cwd=work,
    )
    assert "resuming: 6/9" in out.stdout
    shown = json.loads(hpo("show", "toy-random", "--json", cwd=work).stdout)
    assert sorted(t["number"] for t in shown["trials"]) == list(range(9))
    out = hpo(
        "run",
        "--space",
        "toy.yaml",
        "--objective",
        "myobj:quadratic",
        "--strategy",
        "random",
        "--trials",
        "9",
        cwd=work,
    )
    assert "nothing to run" in out.stdout
    best = yaml.safe_load(hpo("best", "toy-random", cwd=work).stdout)
    assert set(best) <= {"x", "opt"}
    best_json = json.loads(hpo("best", "toy-random", "--json", cwd=work).stdout)
    assert best_json["params"] == best
    studies = json.loads(hpo("studies", "--json", cwd=work).stdout)
    assert studies[0]["name"] == "toy-random" and studies[0]["n_trials"] == 9
    spaces = json.loads(hpo("spaces", "--json", cwd=work).stdout)
    assert {"mlp_mnist", "cnn_mnist", "rnn_mnist"} <= set(spaces)


def test_crashing_objective_fails_trials_not_the_run(work: Path) -> None:
    hpo(
        "run",
        "--space",
        "toy.yaml",
        "--objective",
        "myobj:quadratic",
        "--strategy",
        "grid",
        "--trials",
        "20",
        "--study",
        "g",
        cwd=work,
    )
    shown = json.loads(hpo("show", "g", "--json", cwd=work).stdout)
    failed = [t for t in shown["trials"] if t["state"] == "failed"]
    assert failed and all(t["params"]["x"] == 1.0 for t in failed)
    assert failed[0]["error"] == "RuntimeError: crash in the objective"
    assert len(shown["trials"]) == 10  # the 5 x 2 grid, then exhausted


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["run", "--space", "nope"], "unknown space 'nope': must be one of"),
        (["run", "--space", "broken.yaml"], "broken.yaml: broken YAML at line"),
        (
            [
                "run",
                "--space",
                "toy.yaml",
                "--strategy",
                "simulated-annealing",
                "--objective",
                "myobj:quadratic",
            ],
            "strategy must be one of",
        ),
        # a space with a model: the name is refused before the data is looked for
        (["run", "--space", "mlp_mnist", "--strategy", "bays"], "strategy must be one of"),
        (["run", "--space", "toy.yaml", "--objective", "myobj:nothere"], "has no function"),
        (
            [
                "run",
                "--space",
                "toy.yaml",
                "--objective",
                "myobj:quadratic",
                "--storage",
                "postgresql://nobody@127.0.0.1:1/none",
            ],
            "cannot open the database",
        ),
        (
            ["run", "--space", "toy.yaml", "--objective", "myobj:quadratic", "--storage", "hpo.db"],
            "is not a URL",
        ),
        (["show", "missing"], "no study named 'missing'"),
        (["run", "--space", "toy.yaml"], "names no `model`"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(work: Path, args: list[str], fragment: str) -> None:
    (work / "broken.yaml").write_text("params: {x: {type: float, low: 0, high: [}")
    proc = hpo(*args, cwd=work, check=False)
    assert proc.returncode == 2, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and fragment in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr and "MNIST" not in proc.stderr


def test_reusing_a_study_with_another_space_is_refused_and_loses_nothing(work: Path) -> None:
    hpo(
        "run",
        "--space",
        "toy.yaml",
        "--objective",
        "myobj:quadratic",
        "--strategy",
        "random",
        "--trials",
        "3",
        "--study",
        "s",
        cwd=work,
    )
    (work / "other.yaml").write_text(SPACE.replace("high: 1.0", "high: 2.0"))
    proc = hpo(
        "run",
        "--space",
        "other.yaml",
        "--objective",
        "myobj:quadratic",
        "--strategy",
        "random",
        "--trials",
        "5",
        "--study",
        "s",
        cwd=work,
        check=False,
    )
    assert proc.returncode == 2 and "different space: parameter 'x' differs" in proc.stderr
    shown = json.loads(hpo("show", "s", "--json", cwd=work).stdout)
    assert len(shown["trials"]) == 3


def test_usage_errors_exit_2_and_help_is_accurate(work: Path) -> None:
    proc = hpo("run", cwd=work, check=False)
    assert proc.returncode == 2 and "Missing option '--space'" in proc.stderr
    proc = hpo("run", "--space", "toy.yaml", "--trials", "0", cwd=work, check=False)
    assert proc.returncode == 2
    for bad in (["run", "--space", "toy.yaml", "--workers", "0"], ["run", "--no-such-flag"]):
        proc = hpo(*bad, cwd=work, check=False)  # one line naming the fix, no usage block
        assert proc.returncode == 2 and proc.stderr.strip().count("\n") == 0, proc.stderr
        assert proc.stderr.startswith("error: ") and "hpo run --help" in proc.stderr
    for cmd in ("run", "spaces", "studies", "show", "best", "delete"):
        assert hpo(cmd, "--help", cwd=work).returncode == 0
    assert "--strategy" in hpo("run", "--help", cwd=work).stdout


def _sigint_default() -> None:
    # A process started in the background by a non-interactive shell (CI runners do this)
    # inherits SIGINT as *ignored*, and Python then never raises KeyboardInterrupt.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_exits_130_and_rerun_resumes(work: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(work)}
    proc = subprocess.Popen(
        [
            *HPO,
            "run",
            "--space",
            "toy.yaml",
            "--objective",
            "myobj:slow",
            "--strategy",
            "random",
            "--trials",
            "4",
            "--study",
            "c",
            "--no-mlflow",
        ],
        cwd=work,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        preexec_fn=_sigint_default,
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("trial 2"):
            break
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "rerun the same command to resume" in err
    shown = json.loads(hpo("show", "c", "--json", cwd=work).stdout)
    states = {t["number"]: t["state"] for t in shown["trials"]}
    assert states == {0: "complete", 1: "complete", 2: "failed"}
    (work / "myobj.py").write_text(OBJECTIVE.replace("else 60", "else 0.1"))
    out = hpo(
        "run",
        "--space",
        "toy.yaml",
        "--objective",
        "myobj:slow",
        "--strategy",
        "random",
        "--trials",
        "4",
        "--study",
        "c",
        cwd=work,
    )
    assert "resuming: 2/4" in out.stdout
    shown = json.loads(hpo("show", "c", "--json", cwd=work).stdout)
    assert sum(t["state"] == "complete" for t in shown["trials"]) == 4


def test_run_a_named_model_space_end_to_end(work: Path) -> None:
    """Real training: the MLP builder on the embedded MNIST images, two trials."""
    space = yaml.safe_load(
        (Path(__file__).parents[1] / "search_spaces" / "mlp_mnist.yaml").read_text()
    )
    space["budget"] = {"epochs": 1, "max_train_images": 600}
    (work / "tiny_mlp.yaml").write_text(yaml.safe_dump(space, sort_keys=False))
    out = hpo(
        "run",
        "--space",
        "tiny_mlp.yaml",
        "--strategy",
        "random",
        "--trials",
        "2",
        "--device",
        "cpu",
        cwd=work,
    )
    assert "embedded" in out.stdout.lower()  # the data source is named
    shown = json.loads(hpo("show", "tiny_mlp-random", "--json", cwd=work).stdout)
    assert len(shown["trials"]) == 2
    for t in shown["trials"]:
        if t["state"] == "complete":
            assert 0.0 <= t["value"] <= 1.0
            assert list(t["intermediate"]) == ["1"]  # validation accuracy after epoch 1
            assert t["user_attrs"]["n_params"] > 0


def test_timeout_stops_starting_new_trials(work: Path) -> None:
    hpo(
        "run",
        "--space",
        "toy.yaml",
        "--objective",
        "myobj:nap",
        "--strategy",
        "random",
        "--trials",
        "100",
        "--timeout",
        "1.5",
        "--study",
        "t",
        cwd=work,
    )
    shown = json.loads(hpo("show", "t", "--json", cwd=work).stdout)
    assert 2 <= len(shown["trials"]) <= 10
    assert all(t["state"] == "complete" for t in shown["trials"])
