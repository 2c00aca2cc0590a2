"""Pause and promote against stop: the same best value with fewer epochs?

A pruner with ``pause=True`` (ASHA's promotion rule) lets on at a rung only the best
``floor(n / eta)`` of the ``n`` trials there; the others wait, keep their checkpoint, and go on
from it if later trials lift them into that share. Stopping pruners (hpo's default, Optuna's
``SuccessiveHalvingPruner``/``HyperbandPruner``, Ray Tune's ASHA) judge a trial once, when it
arrives, against the trials already there: the first arrivals at a rung pass with little
competition and train to the end.

Part ``synthetic``: the learning-curve family of ``bench_pruning.py`` (R = 27 steps, curves
    that cross, deterministic noise), hpo's ``random`` strategy (the same seed gives the same
    configurations whatever the pruner), ``--trials`` trials (default 100) for each of
    ``--seeds`` seeds (default 10). The objective is a user objective that checkpoints through
    ``trial.checkpoint`` when paused and resumes from ``trial.last_checkpoint()``; each study
    is a SQLite file with its checkpoint folder. Arms: no pruner; hyperband and asha
    (eta 3, min_resource 1, max_resource 27), each stopping and pausing; Optuna's
    HyperbandPruner with its RandomSampler for reference.
Part ``mlp``: the built-in training loop on the embedded MNIST images, a ReLU + dropout MLP
    space over 9 epochs (``--mlp-images`` training images, default 2,000), hyperband
    (eta 3, rungs at epochs 1 and 3) stopping and pausing, and no pruner, ``--mlp-trials``
    trials (default 27) for each of ``--mlp-seeds`` seeds (default 0 1 2).

Reported per arm: total steps (epochs) trained, its ratio to the stopping pruner's, and the
best value; the medians over seeds, and per seed whether pausing found the same best.

Commands:
    .venv/bin/python benchmarks/bench_pause.py --json benchmarks/results/pause.json
    .venv/bin/python benchmarks/bench_pause.py --parts synthetic      # about a minute
    .venv/bin/python benchmarks/bench_pause.py --quick                # smoke check
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_pruning
from _report import write_json
from bench_pruning import SPACE, R, curve

import hpo
from hpo.trial import TrialState

ETA = 3
OPTS = {"reduction_factor": ETA, "min_resource": 1, "max_resource": R}


def _synthetic_objective(trial: hpo.Trial) -> float:
    state = trial.last_checkpoint()
    start = int(state["step"]) if state else 0
    v = math.nan
    for step in range(start + 1, R + 1):
        v = curve(trial.params, step)
        trial.report(v, step)
        if trial.should_prune():
            if trial.pausing:
                trial.checkpoint({"step": step}, step)
            raise hpo.TrialPruned()
    return v


def _steps(trials: list[hpo.FrozenTrial]) -> int:
    """Steps trained in all: each trial's last step (a promoted trial's steps were trained
    once, the paused part and the rest)."""
    return sum(t.last_step or 0 for t in trials)


def run_hpo(arm: str, seed: int, n_trials: int, folder: Path) -> dict[str, float]:
    pruner, _, mode = arm.partition("-")
    options = None if pruner == "none" else {**OPTS, "pause": mode == "pause"}
    study = hpo.create_study(
        space=SPACE, strategy="random", seed=seed, name=f"{arm}-{seed}",
        storage=f"sqlite:///{folder / f'{arm}-{seed}.db'}",
        pruner=pruner, pruner_options=options,
    )  # fmt: skip
    study.optimize(_synthetic_objective, n_trials=n_trials)
    trials = study.trials
    return {"steps": _steps(trials), "best": study.best_value, "promoted": _promoted(trials)}


def _promoted(trials: list[hpo.FrozenTrial]) -> int:
    return sum(1 for t in trials if t.promotions)


def run_optuna(seed: int, n_trials: int) -> dict[str, float]:
    """Optuna's HyperbandPruner with its RandomSampler, as ``bench_pruning.py`` runs it."""
    r = bench_pruning.run_optuna("hyperband", seed, n_trials)
    return {"steps": r["resource"], "best": r["best"], "promoted": 0}


MLP_SPACE = """
description: ReLU + dropout MLP, 9 epochs (bench_pause.py)
model: mlp
dataset: mnist
metric: val_accuracy
direction: maximize
budget: {{epochs: 9, max_train_images: {images}}}
params:
  optimizer: {{type: categorical, choices: [sgd, adam]}}
  lr: {{type: float, low: 3.0e-4, high: 1.0e-1, log: true}}
  momentum: {{type: float, low: 0.8, high: 0.99, when: {{optimizer: sgd}}}}
  batch_size: {{type: categorical, choices: [64, 128, 256]}}
  layers: {{type: int, low: 1, high: 2}}
  units_1: {{type: int, low: 64, high: 512, log: true}}
  units_2: {{type: int, low: 64, high: 512, log: true, when: {{layers: {{">=": 2}}}}}}
  dropout: {{type: float, low: 0.0, high: 0.5}}
"""


def run_mlp(arm: str, seed: int, n_trials: int, folder: Path, images: int) -> dict[str, float]:
    space = folder / "mlp_pause.yaml"
    space.write_text(MLP_SPACE.format(images=images))
    pruner, _, mode = arm.partition("-")
    options = None if pruner == "none" else {"reduction_factor": ETA, "pause": mode == "pause"}
    quiet: Callable[[str], None] = lambda _text: None  # noqa: E731
    result = hpo.run_study(
        str(space), strategy="random", storage=f"sqlite:///{folder / f'mlp-{arm}-{seed}.db'}",
        name=f"mlp-{arm}-{seed}", pruner=pruner, pruner_options=options, trials=n_trials,
        seed=seed, mlflow=False, evaluate=False, progress=False, say=quiet, warn=quiet,
    )  # fmt: skip
    trials = result.study.trials
    assert all(t.state is not TrialState.RUNNING for t in trials)
    return {"steps": _steps(trials), "best": result.study.best_value, "promoted": _promoted(trials)}


def _table(title: str, arms: list[str], rows: dict[str, list[dict[str, float]]], ref: str) -> dict:
    print(f"\n{title}")
    print(f"{'arm':<18} {'steps (median)':>15} {'x ' + ref:>16} {'best (median)':>14} "
          f"{'promoted':>9}")  # fmt: skip
    out: dict[str, Any] = {}
    base = [r["steps"] for r in rows[ref]]
    for arm in arms:
        steps = [r["steps"] for r in rows[arm]]
        ratios = [s / b for s, b in zip(steps, base, strict=True)]
        best = statistics.median(r["best"] for r in rows[arm])
        out[arm] = {
            "steps_median": statistics.median(steps),
            "steps_ratio_median": statistics.median(ratios),
            "best_median": best,
            "runs": rows[arm],
        }
        print(
            f"{arm:<18} {statistics.median(steps):>15.0f} {statistics.median(ratios):>16.3f} "
            f"{best:>14.5g} {statistics.median(r['promoted'] for r in rows[arm]):>9.0f}"
        )
    return out


def _same_best(rows: dict[str, list[dict[str, float]]], a: str, b: str, maximize: bool) -> str:
    """How many seeds pausing (``a``) found a best as good as stopping (``b``)."""
    ok = sum(
        1
        for x, y in zip(rows[a], rows[b], strict=True)
        if (x["best"] >= y["best"] if maximize else x["best"] <= y["best"])
    )
    return f"{a} as good as or better than {b} on {ok}/{len(rows[a])} seeds"


def part_synthetic(args: argparse.Namespace, folder: Path) -> dict:
    arms = ["none", "hyperband-stop", "hyperband-pause", "asha-stop", "asha-pause"]
    rows: dict[str, list[dict[str, float]]] = {a: [] for a in [*arms, "optuna-hyperband"]}
    t0 = time.perf_counter()
    for seed in range(args.seeds):
        for arm in arms:
            rows[arm].append(run_hpo(arm, seed, args.trials, folder))
        rows["optuna-hyperband"].append(run_optuna(seed, args.trials))
    out = _table(
        f"synthetic curves, {args.trials} trials x {args.seeds} seeds "
        f"({time.perf_counter() - t0:.0f} s); lower best is better",
        [*arms, "optuna-hyperband"], rows, "hyperband-stop",
    )  # fmt: skip
    for a, b in (("hyperband-pause", "hyperband-stop"), ("asha-pause", "asha-stop")):
        line = _same_best(rows, a, b, maximize=False)
        print(line)
        out[f"{a}_vs_{b}"] = line
    return out


def part_mlp(args: argparse.Namespace, folder: Path) -> dict:
    arms = ["none", "hyperband-stop", "hyperband-pause"]
    rows: dict[str, list[dict[str, float]]] = {a: [] for a in arms}
    t0 = time.perf_counter()
    for seed in args.mlp_seeds:
        for arm in arms:
            rows[arm].append(run_mlp(arm, seed, args.mlp_trials, folder, args.mlp_images))
            print(f"  mlp seed {seed} {arm}: {rows[arm][-1]}", flush=True)
    out = _table(
        f"MLP on MNIST ({args.mlp_images} images, 9 epochs), {args.mlp_trials} trials x "
        f"{len(args.mlp_seeds)} seeds ({time.perf_counter() - t0:.0f} s); higher best is better",
        arms, rows, "hyperband-stop",
    )  # fmt: skip
    line = _same_best(rows, "hyperband-pause", "hyperband-stop", maximize=True)
    print(line)
    out["hyperband-pause_vs_hyperband-stop"] = line
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--parts", nargs="+", choices=["synthetic", "mlp"], default=["synthetic", "mlp"]
    )
    ap.add_argument("--trials", type=int, default=100)
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--mlp-trials", type=int, default=27)
    ap.add_argument("--mlp-seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--mlp-images", type=int, default=2000)
    ap.add_argument("--quick", action="store_true", help="2 seeds, 30 trials, 8 MLP trials")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    if args.quick:
        args.trials, args.seeds, args.mlp_trials, args.mlp_seeds = 30, 2, 8, [0]
        args.mlp_images = 600
    os.environ.setdefault("HPO_OFFLINE", "1")
    print(f"bench_pause: {' '.join(sys.argv[1:]) or '(defaults)'}; {os.cpu_count()} cpus")
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="hpo-bench-pause-") as tmp:
        if "synthetic" in args.parts:
            out["synthetic"] = part_synthetic(args, Path(tmp))
        if "mlp" in args.parts:
            out["mlp"] = part_mlp(args, Path(tmp))
    write_json(args.json, args, **out)


if __name__ == "__main__":
    main()
