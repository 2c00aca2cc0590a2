"""Pruners: exact decisions on curves known in advance, settings, every strategy with every
pruner, decisions read from the store across processes, and a real `hpo run --pruner asha`."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import hpo
from hpo.exceptions import PrunerError
from hpo.pruners import epoch_budget
from hpo.trial import TrialState

# Learning curves known in advance (lower is better), one row per trial number, steps 1..4.
# Built so that the pruners disagree: trial 2 starts worst and ends best, trial 1 starts well
# and stalls, trial 6 is flat.
CURVES = [
    [10.0, 8.0, 6.0, 5.0],
    [9.0, 8.5, 8.0, 7.5],
    [12.0, 7.0, 4.0, 3.0],
    [8.0, 6.0, 5.0, 4.0],
    [11.0, 10.0, 9.0, 9.0],
    [9.5, 6.5, 5.5, 5.0],
    [7.0, 7.0, 7.0, 7.0],
    [13.0, 12.0, 11.0, 10.0],
]
SPACE = hpo.SearchSpace({"x": hpo.Float(0.0, 1.0)})


def table_objective(trial: hpo.Trial, sign: float = 1.0) -> float:
    """Reports the trial's row of CURVES step by step, as the training loop does."""
    row = CURVES[trial.number]
    for step, v in enumerate(row, start=1):
        trial.report(sign * v, step)
        if trial.should_prune():
            raise hpo.TrialPruned()
    return sign * row[-1]


def pruned_at(study: hpo.Study) -> dict[int, int | None]:
    return {t.number: t.last_step for t in study.trials if t.state is TrialState.PRUNED}


def run_table(pruner: str, seed: int = 0, direction: str = "minimize", **options: object):
    study = hpo.create_study(
        space=SPACE,
        strategy="random",
        direction=direction,
        seed=seed,
        pruner=pruner,
        pruner_options=options,
    )
    sign = 1.0 if direction == "minimize" else -1.0
    study.optimize(lambda t: table_objective(t, sign), n_trials=len(CURVES))
    return study


# -- exact decisions --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "expected", "best"),
    [
        # bar = median of the completed trials at the step; a trial is judged by its best so far
        ({"warmup_trials": 1}, {1: 2, 2: 1, 4: 1, 5: 1, 6: 3, 7: 1}, 3),
        # one warm-up step saves the slow starter (trial 2), which becomes the best trial
        ({"warmup_trials": 1, "warmup_steps": 1}, {1: 2, 4: 2, 5: 3, 6: 3, 7: 2}, 2),
        # nothing is pruned before 9 trials completed
        ({"warmup_trials": 9}, {}, 2),
    ],
)
def test_median_prunes_exactly_the_expected_trials(
    options: dict, expected: dict, best: int
) -> None:
    study = run_table("median", **options)
    assert pruned_at(study) == expected
    assert study.best_trial.number == best


def test_asha_prunes_exactly_the_expected_trials() -> None:
    # eta=2, rungs at steps 1 and 2 (4 is the max, never a rung); keep ceil(n/2) at a rung:
    # 1: goes on at rung 1 (9 < 10), then ranks 2nd of 2 at rung 2 (8.5 vs 8) -> pruned at 2
    # 2: 3rd of 3 at rung 1 -> pruned at 1 (ASHA's known bias against slow starters)
    # 4: 4th of 5 at rung 1, keep 3 -> pruned; 7: last of 8, keep 4 -> pruned
    # 3, 5, 6 rank within the kept share at both rungs and run to the end
    study = run_table("asha", reduction_factor=2, max_resource=4)
    assert pruned_at(study) == {1: 2, 2: 1, 4: 1, 7: 1}
    assert study.best_trial.number == 3
    # the same decisions when the objective is maximised (values negated)
    assert pruned_at(
        run_table("asha", direction="maximize", reduction_factor=2, max_resource=4)
    ) == {
        1: 2,
        2: 1,
        4: 1,
        7: 1,
    }


def test_hyperband_prunes_exactly_the_expected_trials() -> None:
    hb = hpo.Hyperband(reduction_factor=2, max_resource=4)
    assert hb.brackets == [[1, 2], [2], []]  # the last bracket never prunes
    assert hb.weights == [4, 3, 3]
    # bracket of each trial number for study seed 5: a hash of (seed, number), pinned here
    # because every process and machine must agree on it
    assert [hb.bracket(n, seed=5) for n in range(8)] == [0, 0, 1, 1, 0, 0, 0, 0]
    study = run_table("hyperband", seed=5, reduction_factor=2, max_resource=4)
    # bracket 0 (rungs 1, 2): trials 0 1 4 5 6 7 -> 1 pruned at 2 (8.5 vs 8), 4 at 1 (3rd of 3),
    # 7 at 1 (6th of 6); bracket 1 (rung 2): trials 2 and 3 -> both go on. Trial 2, the
    # slow starter ASHA pruned, lands in the late bracket and is found as the best trial.
    assert pruned_at(study) == {1: 2, 4: 1, 7: 1}
    assert study.best_trial.number == 2


def test_hyperband_brackets_follow_hyperbands_sizes_and_agree_across_processes() -> None:
    hb = hpo.Hyperband(reduction_factor=3, max_resource=27)
    assert hb.brackets == [[1, 3, 9], [3, 9], [9], []]
    assert hb.weights == [27, 12, 6, 4]  # Li et al.'s n_i for R=27, eta=3
    counts = [0] * 4
    for n in range(4900):
        counts[hb.bracket(n, seed=0)] += 1
    for c, w in zip(counts, hb.weights, strict=True):
        assert abs(c / 4900 - w / 49) < 0.025
    code = (
        "import hpo, json; hb = hpo.Hyperband(reduction_factor=3, max_resource=27); "
        "print(json.dumps([[hb.bracket(n, s) for n in range(300)] for s in range(3)]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONHASHSEED": "123"},
    )
    assert json.loads(out.stdout) == [[hb.bracket(n, s) for n in range(300)] for s in range(3)]


def test_a_pruned_trial_ends_at_once_with_its_curve_and_last_value() -> None:
    study = run_table("asha", reduction_factor=2, max_resource=4)
    t1 = study.trials[1]
    assert t1.state is TrialState.PRUNED
    assert dict(t1.intermediate) == {1: 9.0, 2: 8.5}  # stopped right after step 2
    assert t1.value == 8.5  # the last reported value: what strategies learn from
    assert t1.finished_at is not None
    t3 = study.trials[3]
    assert t3.state is TrialState.COMPLETE and len(t3.intermediate) == 4


def test_nan_counts_as_the_worst_value() -> None:
    study = hpo.create_study(
        space=SPACE, strategy="random", pruner="asha", pruner_options={"max_resource": 4}
    )

    def objective(trial: hpo.Trial) -> float:
        for step in range(1, 5):
            trial.report(math.nan if trial.number == 1 else 1.0, step)
            if trial.should_prune():
                raise hpo.TrialPruned()
        return 1.0

    study.optimize(objective, n_trials=2)
    assert pruned_at(study) == {1: 1}


def test_no_pruner_and_a_custom_pruner_object() -> None:
    study = run_table("none")
    assert pruned_at(study) == {} and isinstance(study.pruner, hpo.NoPruner)

    class EveryOddTrial:
        def should_prune(self, study: hpo.Study, trial: hpo.Trial) -> bool:
            return trial.number % 2 == 1

    study = hpo.create_study(space=SPACE, strategy="random", pruner=EveryOddTrial())
    study.optimize(table_objective, n_trials=4)
    assert pruned_at(study) == {1: 1, 3: 1}


def test_pruners_pickle_for_remote_workers() -> None:
    """The Ray executor ships the study's pruner to its workers by pickling it."""
    import pickle

    for pruner in (
        hpo.NoPruner(),
        hpo.MedianPruner(warmup_trials=2),
        hpo.ASHA(max_resource=9),
        hpo.Hyperband(max_resource=27),
    ):
        pruner.describe()  # fills caches a worker must carry along
        again = pickle.loads(pickle.dumps(pruner))
        assert again == pruner and again.describe() == pruner.describe()


# -- settings ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "options", "budget", "fragment"),
    [
        ("asha", {"reduction_factor": 1}, 9, "`reduction_factor` must be an integer >= 2"),
        ("hyperband", {"reduction_factor": 1.5}, 9, "`reduction_factor` must be an integer >= 2"),
        ("asha", {"min_resource": 9}, 9, "below the epoch budget (9)"),
        ("asha", {"min_resource": 12}, 9, "got min_resource=12; use a value from 1 to 8"),
        ("hyperband", {"min_resource": 10}, 5, "below the epoch budget (5)"),
        ("asha", {"min_resource": 4, "max_resource": 3}, None, "below `max_resource`"),
        ("asha", {"min_resource": 0}, 9, "`min_resource` must be an integer >= 1"),
        ("hyperband", {}, None, "needs `max_resource`"),
        (
            "asha",
            {},
            3,
            "min_resource × reduction_factor must be <= the epoch budget (3), got 1 × 4",
        ),
        ("hyperband", {"reduction_factor": 4, "max_resource": 3}, None, "no rung fits"),
        ("median", {"warmup_steps": -1}, 9, "`warmup_steps` must be an integer >= 0"),
        ("median", {"warmup_trials": -2}, 9, "`warmup_trials` must be an integer >= 0"),
        ("median", {"warmup_steps": 9}, 9, "below the epoch budget (9)"),
        ("median", {"min_trials": 0}, 9, "`min_trials` must be an integer >= 1"),
        ("median", {"bogus": 1}, 9, "has no option 'bogus'; its options are"),
        ("none", {"max_resource": 3}, 9, "has no option 'max_resource'; it takes no options"),
        ("sha", {}, 9, "pruner must be one of ['asha', 'hyperband', 'median', 'none'], got 'sha'"),
    ],
)
def test_bad_settings_are_one_clear_sentence(
    name: str, options: dict, budget: int | None, fragment: str, sqlite_url: str
) -> None:
    space = hpo.SearchSpace(
        {"x": hpo.Float(0.0, 1.0)}, meta={"budget": {"epochs": budget}} if budget else None
    )
    with pytest.raises(PrunerError) as err:
        hpo.create_study(
            space=space, storage=sqlite_url, name="s", pruner=name, pruner_options=options
        )
    message = str(err.value)
    assert fragment in message and "\n" not in message
    assert isinstance(err.value, hpo.HpoError)
    assert hpo.list_studies(sqlite_url) == []  # refused before anything was stored


def test_defaults_come_from_the_epoch_budget() -> None:
    budget5 = hpo.SearchSpace({"x": hpo.Float(0, 1)}, meta={"budget": {"epochs": 5}})
    searched = hpo.SearchSpace({"epochs": hpo.Int(2, 12), "x": hpo.Float(0, 1)})
    assert epoch_budget(budget5, budget5.meta) == 5
    assert epoch_budget(searched, {"budget": {"epochs": 5}}) == 12  # the searched epochs win
    assert epoch_budget(SPACE, {}) is None
    study = hpo.create_study(space=budget5, pruner="asha")
    assert study.pruner == hpo.ASHA(max_resource=5)
    assert study.pruner.rung_steps() == [1]  # type: ignore[union-attr]  # 4 x 4 > 5
    study = hpo.create_study(space=searched, pruner=hpo.Hyperband(reduction_factor=2))
    assert study.pruner.brackets == [[1, 2, 4], [2, 4], [4], []]  # type: ignore[union-attr]
    assert hpo.get_pruner("asha", reduction_factor=4) == hpo.ASHA(reduction_factor=4)
    assert hpo.get_pruner(None) == hpo.NoPruner()


# -- persistence and decisions from the store -------------------------------------------------


def test_the_pruner_is_stored_and_reopened(sqlite_url: str) -> None:
    hpo.create_study(
        space=SPACE,
        storage=sqlite_url,
        name="s",
        pruner="asha",
        pruner_options={"reduction_factor": 2, "max_resource": 4},
    )
    again = hpo.load_study("s", storage=sqlite_url)
    assert again.pruner == hpo.ASHA(reduction_factor=2, max_resource=4)
    assert isinstance(hpo.load_study("s", storage=sqlite_url, pruner="none").pruner, hpo.NoPruner)
    reopened = hpo.create_study(
        space=SPACE, storage=sqlite_url, name="s", load_if_exists=True, pruner="median"
    )
    assert reopened.pruner == hpo.MedianPruner()


def test_a_second_study_object_decides_from_the_store_alone(sqlite_url: str) -> None:
    """Trials 0-3 run through one Study object, 4-7 through another that never saw them run:
    the decisions are those of a single run."""
    first = hpo.create_study(
        space=SPACE,
        strategy="random",
        storage=sqlite_url,
        name="s",
        pruner="asha",
        pruner_options={"reduction_factor": 2, "max_resource": 4},
    )
    first.optimize(table_objective, n_trials=4)
    second = hpo.load_study("s", storage=sqlite_url)
    second.optimize(table_objective, n_trials=4)
    assert pruned_at(second) == {1: 2, 2: 1, 4: 1, 7: 1}


WORKER = """
import sys, hpo
CURVES = {curves}
def objective(trial):
    for step, v in enumerate(CURVES[trial.number], start=1):
        trial.report(v, step)
        if trial.should_prune():
            raise hpo.TrialPruned()
    return CURVES[trial.number][-1]
study = hpo.load_study("shared", storage=sys.argv[1])  # the pruner comes from the store
study.optimize(objective, n_trials=int(sys.argv[2]))
"""


@pytest.mark.postgres
def test_two_processes_on_postgres_prune_as_one(postgres_url: str, tmp_path: Path) -> None:
    hpo.create_study(
        space=SPACE,
        strategy="random",
        storage=postgres_url,
        name="shared",
        pruner="asha",
        pruner_options={"reduction_factor": 2, "max_resource": 4},
    )
    script = tmp_path / "worker.py"
    script.write_text(WORKER.format(curves=CURVES))
    for _ in range(2):  # one process after the other: trials 0-3, then 4-7
        proc = subprocess.run(
            [sys.executable, str(script), postgres_url, "4"], capture_output=True, text=True
        )
        assert proc.returncode == 0, proc.stderr
    study = hpo.load_study("shared", storage=postgres_url)
    assert pruned_at(study) == {1: 2, 2: 1, 4: 1, 7: 1}
    pids = [t.system_attrs["pid"] for t in study.trials]
    assert len(set(pids[:4])) == 1 and len(set(pids[4:])) == 1 and pids[0] != pids[4]


CONCURRENT_WORKER = """
import sys, time, hpo
Q = [3, 11, 0, 7, 5, 9, 1, 10, 2, 8, 4, 6]
def objective(trial):
    for step in range(1, 5):
        time.sleep(0.2)
        trial.report(Q[trial.number] + 1.0 / step, step)
        if trial.should_prune():
            raise hpo.TrialPruned()
    return Q[trial.number]
study = hpo.load_study("shared", storage=sys.argv[1])
study.optimize(objective, max_trials=12)
"""


@pytest.mark.postgres
def test_two_processes_at_once_on_postgres(postgres_url: str, tmp_path: Path) -> None:
    """Two processes prune one study together: each sees the other's reports in the store."""
    hpo.create_study(
        space=SPACE,
        strategy="random",
        storage=postgres_url,
        name="shared",
        pruner="asha",
        pruner_options={"reduction_factor": 2, "max_resource": 4},
    )
    script = tmp_path / "worker.py"
    script.write_text(CONCURRENT_WORKER)
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), postgres_url], stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    for p in procs:
        _, err = p.communicate(timeout=240)
        assert p.returncode == 0, err
    trials = hpo.load_study("shared", storage=postgres_url).trials
    assert [t.number for t in trials] == list(range(12))
    assert len({t.system_attrs["pid"] for t in trials}) == 2
    assert all(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials)
    pruned = [t for t in trials if t.state is TrialState.PRUNED]
    assert pruned and {t.last_step for t in pruned} <= {1, 2}  # only ever at a rung
    assert trials[7].state is TrialState.PRUNED  # second worst: behind most trials at rung 1
    assert trials[2].state is TrialState.COMPLETE  # the best is never stopped


# -- every strategy with every pruner ---------------------------------------------------------

MIXED = hpo.SearchSpace(
    {
        "lr": hpo.Float(1e-4, 1e-1, log=True),
        "width": hpo.Int(1, 8),
        "act": hpo.Categorical(["relu", "tanh"]),
    }
)


def curve_objective(trial: hpo.Trial) -> float:
    """A learning curve from params: final loss from lr/width/act, speed from lr."""
    p = trial.params
    final = (math.log10(p["lr"]) + 2.5) ** 2 + 0.1 * abs(p["width"] - 5) + (p["act"] == "tanh")
    speed = 0.3 + 2.0 * (math.log10(p["lr"]) + 4) / 3
    value = final
    for step in range(1, 10):
        value = final + 3.0 * math.exp(-speed * step)
        trial.report(value, step)
        if trial.should_prune():
            raise hpo.TrialPruned()
    return value


@pytest.mark.parametrize("pruner", ["none", "median", "asha", "hyperband"])
@pytest.mark.parametrize("strategy", ["grid", "random", "bayes", "tpe"])
def test_every_strategy_runs_with_every_pruner(strategy: str, pruner: str) -> None:
    options = {"warmup_trials": 2} if pruner == "median" else {"max_resource": 9}
    study = hpo.create_study(
        space=MIXED,
        strategy=strategy,
        seed=1,
        pruner=pruner,
        pruner_options=None if pruner == "none" else options,
        strategy_options={"n_initial": 4} if strategy == "bayes" else None,
    )
    study.optimize(curve_objective, n_trials=14)
    trials = study.trials
    assert len(trials) == 14
    assert all(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials), [
        (t.number, t.error) for t in trials
    ]
    pruned = [t for t in trials if t.state is TrialState.PRUNED]
    if pruner == "none":
        assert not pruned
    else:
        assert pruned, "the pruner stopped nothing in 14 trials"
        assert all(t.value == t.intermediate[t.last_step] for t in pruned)  # type: ignore[index]
    if pruner == "asha":
        assert {t.last_step for t in pruned} == {1}  # only ever stopped at its one rung
    assert study.best_trial.state is TrialState.COMPLETE


# -- end to end: `hpo run --pruner asha` with real training -----------------------------------


@pytest.mark.slow
def test_hpo_run_with_asha_prunes_real_trials_and_shows_them(tmp_path: Path) -> None:
    """The MLP builder on the embedded MNIST images, 3 epochs a trial, ASHA with eta=3 set
    on the command line (one rung, after epoch 1); pruned trials keep their curves, `hpo show`
    and MLflow show them."""
    space = yaml.safe_load(
        (Path(__file__).parents[1] / "search_spaces" / "mlp_mnist.yaml").read_text()
    )
    space["budget"] = {"epochs": 3, "max_train_images": 600}
    (tmp_path / "tiny_mlp.yaml").write_text(yaml.safe_dump(space, sort_keys=False))
    env = {**os.environ, "HPO_OFFLINE": "1"}

    def hpo_cli(*args: str) -> subprocess.CompletedProcess:
        proc = subprocess.run(
            [sys.executable, "-m", "hpo.cli", *args],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            env=env,
            timeout=600,
        )
        assert proc.returncode == 0, proc.stderr
        return proc

    out = hpo_cli(
        "run",
        "--space",
        "tiny_mlp.yaml",
        "--strategy",
        "random",
        "--pruner",
        "asha",
        "--pruner-opt",
        "reduction_factor=3",
        "--trials",
        "8",
        "--device",
        "cpu",
        "--mlflow-models",
        "none",
        "--no-progress",
    )
    assert "pruner asha: rungs at steps 1 of 3; the best 1/3" in out.stdout
    shown = json.loads(hpo_cli("show", "tiny_mlp-random-asha", "--json").stdout)["trials"]
    states = {t["number"]: t["state"] for t in shown}
    pruned = [t for t in shown if t["state"] == "pruned"]
    complete = [t for t in shown if t["state"] == "complete"]
    assert len(shown) == 8 and len(pruned) >= 3 and complete, states
    for t in pruned:
        assert t["last_step"] == 1 and list(t["intermediate"]) == ["1"]
        assert len(t["user_attrs"]["val_accuracy"]) == 1  # the curve is kept
        assert t["value"] == t["intermediate"]["1"]
    for t in complete:
        assert list(t["intermediate"]) == ["1", "2", "3"]
    # each pruned trial really ranked below the kept third at epoch 1 of those before it
    at_rung = {t["number"]: t["intermediate"]["1"] for t in shown if "1" in t["intermediate"]}
    for t in pruned:
        earlier = [v for n, v in at_rung.items() if n < t["number"]]
        better = sum(v > t["intermediate"]["1"] for v in earlier)
        assert better >= math.ceil((len(earlier) + 1) / 3)
    text = hpo_cli("show", "tiny_mlp-random-asha").stdout
    assert text.count("pruned at step 1") == len(pruned)
    # MLflow (the local store in the working directory) marks the pruned runs KILLED
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    experiment = client.get_experiment_by_name("tiny_mlp-random-asha")
    runs = client.search_runs([experiment.experiment_id], "tags.`hpo.kind` = 'trial'")
    status = {int(r.data.tags["hpo.trial"]): r.info.status for r in runs}
    mlflow_status = {"complete": "FINISHED", "pruned": "KILLED", "failed": "FAILED"}
    assert status == {n: mlflow_status[s] for n, s in states.items()}


def test_hpo_run_refuses_a_bad_pruner_setting_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "toy.yaml").write_text(
        "budget: {epochs: 4}\nparams:\n  x: {type: float, low: 0.0, high: 1.0}\n"
    )
    (tmp_path / "obj.py").write_text("def f(trial):\n    return trial.params['x']\n")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "hpo.cli",
            "run",
            "--space",
            "toy.yaml",
            "--objective",
            "obj:f",
            "--pruner",
            "asha",
            "--pruner-opt",
            "min_resource=4",
            "--no-mlflow",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(tmp_path)},
    )
    assert proc.returncode == 2
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert errors == [
        "error: pruner 'asha': `min_resource` must be below the epoch budget (4) so that a "
        "trial meets a rung before it ends, got min_resource=4; use a value from 1 to 3."
    ], proc.stderr
