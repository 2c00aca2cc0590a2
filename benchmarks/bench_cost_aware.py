"""Expected improvement per second (``bayes`` option ``cost_aware``) against plain EI, on a
time budget, side by side in one run.

What it measures
    Deep-learning trials do not cost the same: a net with 8 layers of 1,024 units trains far
    longer than one with a layer of 16. Snoek et al. (2012) proposed to maximise expected
    improvement per second, with the duration learnt by a second GP. Here each problem has a
    known objective and a known duration model (seconds a trial takes, from its params); a
    search runs, trial after trial, until the durations it has spent reach the budget, and
    its regret then is what a user with that much time gets.

    The durations are simulated (a trial's history record gets ``started_at`` and
    ``finished_at`` that far apart) so many seeds are affordable: the strategy is a pure
    function of the history, so it sees exactly what it would see from real trials of those
    durations.

Problems
    mixed-cost   the ``mixed`` problem of ``_problems.py`` (log lr, layers 1-8, units 16-1024,
                 activation, dropout); a trial takes 2 + 30 * layers * units / 8192 seconds
                 (1 layer of 16 units: 2.1 s; 8 of 1024: 32 s; the optimum, 4 of 256:
                 5.8 s).
    mixed-deep   the same objective; the duration as above but the best region is the
                 expensive one: the objective's optimum moved to layers 7, units 724 (~20 s).
    branin-cost  Branin; a trial takes 1 + 9 * ((x1 + 5) / 15) ** 2 seconds (1 to 10 s
                 along x1; the three optima at x1 = -3.14, 3.14 and 9.42 cost 1.2, 3.9 and
                 8.8 s).

Budget
    ``--budget-trials`` (40) times the mean duration of the space (over 4,096 uniform points),
    so a plain search affords about that many trials.

Commands
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_cost_aware.py --seeds 10 \\
        --json benchmarks/results/cost_aware.json
    the same searches on a budget of trials (what ``--trials`` gives), durations ignored:
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_cost_aware.py --seeds 10 --trial-budget
"""

from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import argparse
import datetime as dt
import math
import multiprocessing as mp
import statistics
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _problems import PROBLEMS, _mixed
from _report import write_json

import hpo
from hpo.strategies import get_strategy
from hpo.trial import FrozenTrial, TrialState


def _mixed_deep(p: Mapping[str, Any]) -> float:
    # The same landscape, its optimum moved to the expensive corner: layers 7, units ~724.
    q = dict(p)
    q["layers"] = p["layers"] - 3
    q["units"] = p["units"] / 2**1.5
    return _mixed(q)


def _net_seconds(p: Mapping[str, Any]) -> float:
    return 2.0 + 30.0 * p["layers"] * p["units"] / 8192.0


def _branin_seconds(p: Mapping[str, Any]) -> float:
    return 1.0 + 9.0 * ((p["x1"] + 5.0) / 15.0) ** 2


CASES: dict[str, tuple[hpo.SearchSpace, Callable[..., float], Callable[..., float], float]] = {
    "mixed-cost": (PROBLEMS["mixed"].space, _mixed, _net_seconds, 0.0),
    # The shifted optimum (layers 7, units 724) is inside the box: still 0.
    "mixed-deep": (PROBLEMS["mixed"].space, _mixed_deep, _net_seconds, 0.0),
    "branin-cost": (
        PROBLEMS["branin"].space,
        PROBLEMS["branin"].f,
        _branin_seconds,
        PROBLEMS["branin"].optimum,
    ),
}


def _mean_seconds(space: hpo.SearchSpace, seconds: Callable[..., float]) -> float:
    rng = np.random.default_rng(0)
    return float(np.mean([seconds(space.sample(rng)) for _ in range(4096)]))


def run_one(task: tuple[str, str, int, float, int]) -> dict[str, Any]:
    case, method, seed, budget, max_trials = task
    space, f, seconds, optimum = CASES[case]
    strategy = get_strategy("bayes", cost_aware=(method == "bayes-cost-aware"))
    t0 = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    clock = 0.0
    trials: list[FrozenTrial] = []
    best = math.inf
    wall = time.perf_counter()
    while True:
        n = len(trials)
        params = dict(
            strategy.propose(
                space,
                trials,
                direction=hpo.Direction.MINIMIZE,
                number=n,
                seed=seed,
                rng=np.random.default_rng([seed, n]),
            )
        )
        cost = seconds(params)
        if clock + cost > budget or n >= max_trials:
            break
        value = f(params)
        start = t0 + dt.timedelta(seconds=clock)
        clock += cost
        trials.append(
            FrozenTrial(
                number=n,
                state=TrialState.COMPLETE,
                params=params,
                value=value,
                started_at=start,
                finished_at=start + dt.timedelta(seconds=cost),
            )
        )
        best = min(best, value)
    return {
        "case": case,
        "method": method,
        "seed": seed,
        "regret": best - optimum,
        "trials": len(trials),
        "seconds": time.perf_counter() - wall,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--budget-trials", type=float, default=40.0)
    ap.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    ap.add_argument("--processes", type=int, default=2)
    ap.add_argument(
        "--trial-budget",
        action="store_true",
        help="stop each search after --budget-trials trials instead, whatever they cost",
    )
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()

    methods = ["bayes", "bayes-cost-aware"]
    budgets = {
        c: math.inf if args.trial_budget else args.budget_trials * _mean_seconds(*CASES[c][::2])
        for c in args.cases
    }
    cap = int(args.budget_trials) if args.trial_budget else 1_000_000
    tasks = [
        (c, m, s, budgets[c], cap) for c in args.cases for s in range(args.seeds) for m in methods
    ]
    start = time.perf_counter()
    with mp.get_context("spawn").Pool(args.processes) as pool:
        results = pool.map(run_one, tasks, chunksize=1)
    unit = "trials" if args.trial_budget else "x the mean trial duration"
    print(
        f"\n{args.seeds} seeds, budget {args.budget_trials:g} {unit}, "
        f"{time.perf_counter() - start:.0f} s\n"
    )
    print(
        "| problem | budget (s) | bayes: median regret | trials | cost-aware: median regret "
        "| trials | cost-aware / bayes | seeds cost-aware better |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    summary = {}
    for c in args.cases:
        rows = {m: [r for r in results if r["case"] == c and r["method"] == m] for m in methods}
        med = {m: statistics.median(r["regret"] for r in rows[m]) for m in methods}
        trials = {m: statistics.median(r["trials"] for r in rows[m]) for m in methods}
        wins = sum(
            1
            for a, b in zip(rows["bayes"], rows["bayes-cost-aware"], strict=True)
            if b["regret"] < a["regret"]
        )
        ratio = med["bayes-cost-aware"] / med["bayes"] if med["bayes"] > 0 else float("nan")
        summary[c] = {"median": med, "trials": trials, "ratio": ratio, "wins": wins}
        print(
            f"| {c} | {budgets[c]:.0f} | {med['bayes']:.3g} | {trials['bayes']:.0f} "
            f"| {med['bayes-cost-aware']:.3g} | {trials['bayes-cost-aware']:.0f} "
            f"| {ratio:.2f} | {wins}/{args.seeds} |"
        )
    write_json(args.json, args, results=results, summary=summary, budgets=budgets)


if __name__ == "__main__":
    main()
