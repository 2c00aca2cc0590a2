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
        # a read command never makes a store: the missing default store is the answer
        (["show", "missing"], "no study store at 'hpo.db'"),
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


def _run_args(*extra: str) -> list[str]:
    return ["run", "--space", "toy.yaml", "--objective", "myobj:slow", "--strategy", "random",
            "--no-mlflow", *extra]  # fmt: skip


def _done_counts(stderr: str) -> list[tuple[int, int]]:
    """The `N/M done` of every plain progress line."""
    import re

    return [(int(a), int(b)) for a, b in re.findall(r"\| (\d+)/(\d+) done \|", stderr)]


def test_a_driver_killed_during_the_last_trial_is_resumed(work: Path) -> None:
    """kill -9 while the study's last trial runs, then the same command again: the orphan is
    marked interrupted before anything is counted, and the missing trial runs (issue 17:
    it used to say `already holds 3/3 trials; nothing to run` and leave trial 2 RUNNING)."""
    env = {**os.environ, "PYTHONPATH": str(work), "HPO_OFFLINE": "1"}
    proc = subprocess.Popen(
        [*HPO, *_run_args("--trials", "3", "--study", "k")],
        cwd=work, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env,
    )  # fmt: skip
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("trial 2"):  # the last trial is running (for 60 s)
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    states = [t["state"] for t in json.loads(hpo("show", "k", "--json", cwd=work).stdout)["trials"]]
    assert sorted(states) == ["complete", "complete", "running"]

    (work / "myobj.py").write_text(OBJECTIVE.replace("else 60", "else 0.1"))
    out = hpo(*_run_args("--trials", "3", "--study", "k"), cwd=work)
    assert "resuming: 2/3 trials already in the store" in out.stdout, out.stdout
    assert "nothing to run" not in out.stdout
    assert _done_counts(out.stderr) == [(1, 1)], out.stderr  # never `2/1 done`
    assert "-" not in out.stderr.split("left")[0].rsplit("~", 1)[-1]  # no negative time left
    trials = json.loads(hpo("show", "k", "--json", cwd=work).stdout)["trials"]
    by_number = {t["number"]: t for t in trials}
    assert sorted(by_number) == [0, 1, 2, 3]
    assert by_number[2]["state"] == "failed" and by_number[2]["system_attrs"]["interrupted"]
    assert "stopped" in by_number[2]["error"]
    assert [by_number[n]["state"] for n in (0, 1, 3)] == ["complete"] * 3
    # and now it is complete: a third run has nothing to do
    assert (
        "already holds 3/3 trials; nothing to run"
        in hpo(*_run_args("--trials", "3", "--study", "k"), cwd=work).stdout
    )


def test_an_explicit_study_name_is_kept_with_a_pruner(work: Path) -> None:
    hpo(
        "run", "--space", "toy.yaml", "--objective", "myobj:quadratic", "--strategy", "random",
        "--trials", "2", "--pruner", "median", "--study", "mine", cwd=work,
    )  # fmt: skip
    names = [s["name"] for s in json.loads(hpo("studies", "--json", cwd=work).stdout)]
    assert names == ["mine"]  # not mine-median
    hpo(
        "run", "--space", "toy.yaml", "--objective", "myobj:quadratic", "--strategy", "random",
        "--trials", "2", "--pruner", "median", cwd=work,
    )  # fmt: skip
    names = [s["name"] for s in json.loads(hpo("studies", "--json", cwd=work).stdout)]
    assert names == ["mine", "toy-random-median"]  # the default name still says the pruner


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("", "got ''"),
        ("it's", 'got "it\'s" ("\'" not allowed)'),
        ("team/a", "got 'team/a' ('/' not allowed)"),
        ("my study", "(' ' not allowed)"),
        ("-x", "starting with a letter or digit"),
        ("x" * 129, "1 to 128 characters"),
    ],
)
def test_a_bad_study_name_is_refused_before_anything_is_stored(
    work: Path, name: str, fragment: str
) -> None:
    proc = hpo(
        "run", "--space", "toy.yaml", "--objective", "myobj:quadratic", "--study", name,
        "--storage", "sqlite:///s.db", cwd=work, check=False,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("error: a study name must be")
    assert fragment in proc.stderr, proc.stderr
    import hpo as lib

    assert lib.list_studies(f"sqlite:///{work}/s.db") == []
    with pytest.raises(lib.HpoError, match="a study name must be"):  # the library's one rule
        lib.create_study(space={"x": lib.Float(0, 1)}, name=name)


def test_the_closing_hint_works_as_printed_and_reads_create_no_store(work: Path) -> None:
    out = hpo(
        "run", "--space", "toy.yaml", "--objective", "myobj:quadratic", "--strategy", "random",
        "--trials", "2", "--study", "h", "--storage", "sqlite:///other.db", cwd=work,
    )  # fmt: skip
    hint = next(ln for ln in out.stdout.splitlines() if ln.startswith("reopen with:"))
    show_cmd = hint.split("reopen with: ", 1)[1].split("   ·   ")[0].split()
    assert show_cmd == ["hpo", "show", "h", "--storage", "sqlite:///other.db"]
    assert "h: 2 trials" in hpo(*show_cmd[1:], cwd=work).stdout
    best_cmd = hint.split("best params: ", 1)[1].split()
    assert best_cmd == ["hpo", "best", "h", "--storage", "sqlite:///other.db"]
    hpo(*best_cmd[1:], cwd=work)
    # a read command on a store that is not there says so, and makes none
    for cmd in (["show", "h"], ["best", "h"], ["delete", "h", "--yes"], ["mlflow-sync", "h"]):
        proc = hpo(*cmd, cwd=work, check=False)
        assert proc.returncode == 2 and "no study store at 'hpo.db'" in proc.stderr, proc.stderr
    proc = hpo("plot", "h", "--kind", "history", "-o", "h.png", cwd=work, check=False)
    assert proc.returncode == 2 and "no study store at 'hpo.db'" in proc.stderr, proc.stderr
    assert "no studies" in hpo("studies", cwd=work).stdout
    assert json.loads(hpo("studies", "--json", cwd=work).stdout) == []
    assert not (work / "hpo.db").exists()


def test_cuda_without_cuda_is_refused_at_start(work: Path) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    space = yaml.safe_load(
        (Path(__file__).parents[1] / "search_spaces" / "mlp_mnist.yaml").read_text()
    )
    (work / "mlp.yaml").write_text(yaml.safe_dump(space, sort_keys=False))
    for device in ("cuda", "cuda:1"):
        proc = hpo("run", "--space", "mlp.yaml", "--device", device, cwd=work, check=False)
        assert proc.returncode == 2, proc.stderr
        assert proc.stderr.count("\n") == 1, proc.stderr
        assert f"error: --device {device}: CUDA is not available on this machine" in proc.stderr
    proc = hpo("run", "--space", "mlp.yaml", "--device", "gpu", cwd=work, check=False)
    assert proc.returncode == 2 and "--device must be cpu, cuda or cuda:N" in proc.stderr
    assert not (work / "hpo.db").exists()  # nothing stored


def test_version_bare_hpo_and_declined_delete(work: Path) -> None:
    import hpo as lib

    out = hpo("--version", cwd=work)
    assert out.stdout.strip() == f"hpo {lib.__version__}"
    bare = hpo(cwd=work)  # help, not `error:  (see hpo --help)`
    assert "Usage: hpo" in bare.stdout and "error" not in bare.stderr
    hpo("run", "--space", "toy.yaml", "--objective", "myobj:quadratic", "--trials", "1",
        "--study", "d", cwd=work)  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(work)}
    proc = subprocess.run(
        [*HPO, "delete", "d"], cwd=work, input="n\n", capture_output=True, text=True, env=env
    )
    assert proc.returncode == 0 and "not deleted" in proc.stdout, proc.stderr
    assert json.loads(hpo("studies", "--json", cwd=work).stdout)[0]["name"] == "d"


def test_show_one_trial_with_its_traceback_and_where_it_ran(work: Path) -> None:
    import socket

    hpo(
        "run", "--space", "toy.yaml", "--objective", "myobj:quadratic", "--strategy", "grid",
        "--trials", "10", "--study", "g", cwd=work,
    )  # fmt: skip
    shown = json.loads(hpo("show", "g", "--json", cwd=work).stdout)["trials"]
    failed = next(t for t in shown if t["state"] == "failed")
    out = hpo("show", "g", "--trial", str(failed["number"]), cwd=work).stdout
    assert out.startswith(f"trial {failed['number']}: failed\n")
    assert "error: RuntimeError: crash in the objective" in out
    assert "traceback:" in out and 'raise RuntimeError("crash in the objective")' in out
    assert "x: 1" in out and f"host: {socket.gethostname()}" in out
    one = json.loads(hpo("show", "g", "--trial", "0", "--json", cwd=work).stdout)
    assert one["number"] == 0 and one["state"] == "complete" and one["traceback"] is None
    proc = hpo("show", "g", "--trial", "99", cwd=work, check=False)
    assert proc.returncode == 2 and "has no trial 99 (its trials are 0-9)" in proc.stderr
    table = hpo("show", "g", cwd=work).stdout
    header = next(ln for ln in table.splitlines() if "state" in ln and "value" in ln)
    assert all(col in header for col in ("host", "node", "device"))
    assert socket.gethostname() in table


def test_a_huge_grid_runs_at_once_and_warns(work: Path) -> None:
    """12 params x 5 values = 244 million points: the old grid made them all before its
    first trial (and the OOM killer ended it). Now three trials run, after a warning."""
    params = {f"p{i}": {"type": "float", "low": 0.0, "high": 1.0} for i in range(12)}
    params["x"] = params.pop("p0")
    (work / "big.yaml").write_text(yaml.safe_dump({"params": params}))
    (work / "bigobj.py").write_text("def f(trial):\n    return trial.params['x']\n")
    out = hpo(
        "run", "--space", "big.yaml", "--objective", "bigobj:f", "--strategy", "grid",
        "--trials", "3", "--study", "big", cwd=work, timeout=60,
    )  # fmt: skip
    assert "the grid holds 244,140,625 points but only 3 trial(s) are left" in out.stdout
    shown = json.loads(hpo("show", "big", "--json", cwd=work).stdout)["trials"]
    assert len(shown) == 3 and {t["state"] for t in shown} == {"complete"}
