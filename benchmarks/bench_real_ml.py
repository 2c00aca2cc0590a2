"""Real ML tuning problems: hpo bayes / tpe / random vs Optuna GP and TPE vs skopt's GP.

What it measures (issue 14 item 4)
    Five scikit-learn models on data sets that ship with scikit-learn, over the discrete,
    log-scale and conditional spaces people tune (``benchmarks/_real_ml.py``: gb_cancer,
    svc_digits, mlp_wine, rf_diabetes, sgd_digits; 410-800 configurations each). Every
    configuration is trained once by ``build`` into a lookup table, so a search costs lookups
    only. Each method runs ``--trials`` (default 50) evaluations per seed; the final regret is
    the best validation loss found minus the table's minimum.

Methods (side by side, same run, each at its defaults)
    hpo-bayes, hpo-tpe, hpo-random  ``hpo.create_study(strategy=..., seed=seed)`` in memory.
    optuna-gp   ``optuna.samplers.GPSampler(seed=seed)``, define-by-run (a conditional
                parameter suggested only when active).
    optuna-tpe  ``optuna.samplers.TPESampler(seed=seed)``, define-by-run.
    skopt-gp    ``skopt.gp_minimize(n_calls=trials, n_initial_points=10, random_state=seed)``
                on the flattened space (inactive parameters ignored by the lookup).
    ax          only when asked (``--methods ... ax``; ``pip install ax-platform``, which
                keeps the installed torch): Ax's ``Client(random_seed=seed)`` with its
                default generation strategy (Sobol, then BoTorch's GP with log noisy EI),
                sequential ask/tell on the flattened space like skopt.

Report
    Per problem: the median final regret of each method, the ratio of hpo bayes' median to
    the best other method's (ratio <= 1: bayes is best or tied; 0/0 counts as 1), and the
    number of distinct configurations among the trials (mean over seeds). Overall: each
    method's mean rank of the final best value over all (problem, seed) pairs (ties share the
    average rank; 1 is best).

Commands
    build the tables (once; about 5 min on 2 cores with two processes):
        OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_real_ml.py build
    the comparison:
        OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_real_ml.py run --seeds 5 \\
            --json benchmarks/results/real_ml.json
    only bayes, with options:
        .venv/bin/python benchmarks/bench_real_ml.py run --methods hpo-bayes \\
            --bayes-options '{"ordered_choices": false}'
"""

from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import argparse
import json
import multiprocessing as mp
import statistics
import sys
import time
import warnings
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _problems import ax_minimize, optuna_suggest, skopt_dimensions, skopt_params
from _real_ml import PROBLEMS, build, key, load
from _report import mean_ranks, write_json

ALL_METHODS = ["hpo-bayes", "hpo-tpe", "hpo-random", "optuna-gp", "optuna-tpe", "skopt-gp"]
# BoTorch through Ax: not installed by the project (pip install ax-platform); ask for it.
EXTRA_METHODS = ["ax"]
_COST = {"ax": 9, "optuna-gp": 5, "skopt-gp": 4, "hpo-bayes": 3, "optuna-tpe": 2, "hpo-tpe": 1}


def _init_worker() -> None:
    warnings.filterwarnings("ignore")
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)


def run_one(task: tuple[str, str, int, int, dict[str, Any]]) -> dict[str, Any]:
    pname, method, seed, n_trials, bayes_options = task
    prob = PROBLEMS[pname]
    table = load(pname)
    seen: list[str] = []

    def f(params: dict[str, Any]) -> float:
        k = key(params)
        seen.append(k)
        return table[k]

    t0 = time.perf_counter()
    if method.startswith("hpo-"):
        import hpo

        study = hpo.create_study(
            space=prob.space,
            strategy=method[4:],
            direction="minimize",
            seed=seed,
            strategy_options=bayes_options if method == "hpo-bayes" else None,
        )
        study.optimize(lambda t: f(dict(t.params)), n_trials=n_trials)
    elif method.startswith("optuna-"):
        import optuna

        sampler = (
            optuna.samplers.GPSampler(seed=seed)
            if method == "optuna-gp"
            else optuna.samplers.TPESampler(seed=seed)
        )
        ostudy = optuna.create_study(sampler=sampler, direction="minimize")
        ostudy.optimize(lambda tr: f(optuna_suggest(tr, prob.space)), n_trials=n_trials)
    elif method == "skopt-gp":
        import skopt

        skopt.gp_minimize(
            lambda x: f(skopt_params(prob.space, x)),
            skopt_dimensions(prob.space),
            n_calls=n_trials,
            n_initial_points=10,
            random_state=seed,
        )
    elif method == "ax":
        ax_minimize(prob.space, f, n_trials, seed)
    else:
        raise ValueError(method)
    values = [table[k] for k in seen]
    best_possible = min(table.values())
    return {
        "problem": pname,
        "method": method,
        "seed": seed,
        "values": values,
        "best": min(values),
        "regret": min(values) - best_possible,
        "distinct": len(set(seen)),
        "trials": len(seen),
        "seconds": time.perf_counter() - t0,
    }


def _fmt(x: float) -> str:
    if x == 0:
        return "0"
    if abs(x) >= 1e3 or abs(x) < 1e-3:
        return f"{x:.2e}"
    return f"{x:.4g}"


def report(runs: list[dict[str, Any]], methods: list[str], problems: list[str]) -> dict:
    by: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in runs:
        by.setdefault((r["problem"], r["method"]), []).append(r)
    ranks = mean_ranks((r for r in runs if r["problem"] in problems), methods, "best")
    out: dict[str, Any] = {"problems": {}, "mean_rank": {}}
    head = "| problem | configs | " + " | ".join(methods) + " | bayes / best other |"
    print(head)
    print("|---|---:|" + "---:|" * len(methods) + "---:|")
    for pname in problems:
        med = {m: statistics.median(r["regret"] for r in by[(pname, m)]) for m in methods}
        others = [med[m] for m in methods if m != "hpo-bayes"]
        ratio = None
        if "hpo-bayes" in med and others:
            best_other = min(others)
            b = med["hpo-bayes"]
            ratio = 1.0 if b == best_other else (b / best_other if best_other > 0 else float("inf"))
        distinct = {m: statistics.mean(r["distinct"] for r in by[(pname, m)]) for m in methods}
        cells = " | ".join(f"{_fmt(med[m])} ({distinct[m]:.0f})" for m in methods)
        print(f"| {pname} | {len(load(pname))} | {cells} | {_fmt(ratio) if ratio else '-'} |")
        out["problems"][pname] = {"median_regret": med, "ratio": ratio, "distinct": distinct}
    print("\nmean rank over (problem, seed):")
    for m in sorted(ranks, key=ranks.__getitem__):
        out["mean_rank"][m] = ranks[m]
        secs = statistics.median(r["seconds"] for r in runs if r["method"] == m)
        print(f"  {m:11s} {ranks[m]:.2f}   (median {secs:.1f} s per run)")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="train every configuration into the lookup tables")
    b.add_argument("--problems", nargs="+", default=list(PROBLEMS), choices=list(PROBLEMS))
    b.add_argument("--processes", type=int, default=2)
    r = sub.add_parser("run", help="compare the methods on the tables")
    r.add_argument("--seeds", type=int, default=5, help="seeds 0..N-1 (default 5)")
    r.add_argument("--trials", type=int, default=50)
    r.add_argument("--problems", nargs="+", default=list(PROBLEMS), choices=list(PROBLEMS))
    r.add_argument("--methods", nargs="+", default=ALL_METHODS, choices=ALL_METHODS + EXTRA_METHODS)
    r.add_argument("--processes", type=int, default=2)
    r.add_argument("--bayes-options", type=json.loads, default={})
    r.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    if args.cmd == "build":
        t0 = time.perf_counter()
        seconds = build(args.problems, args.processes)
        for name in args.problems:
            print(f"{name}: {len(load(name))} configurations (done at {seconds[name]:.0f} s)")
        print(f"built in {time.perf_counter() - t0:.0f} s")
        return
    for name in args.problems:
        load(name)  # fail early, with the build command, when a table is missing
    tasks = [
        (p, m, s, args.trials, args.bayes_options)
        for p in args.problems
        for m in args.methods
        for s in range(args.seeds)
    ]
    tasks.sort(key=lambda t: -_COST.get(t[1], 0))
    t0 = time.perf_counter()
    with mp.get_context("spawn").Pool(args.processes, initializer=_init_worker) as pool:
        runs = pool.map(run_one, tasks, chunksize=1)
    print(f"{len(runs)} runs in {time.perf_counter() - t0:.0f} s\n")
    summary = report(runs, args.methods, args.problems)
    write_json(args.json, args, runs=runs, summary=summary)


if __name__ == "__main__":
    main()
