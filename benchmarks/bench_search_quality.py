"""Search quality: median final regret after N trials, hpo vs Optuna GP and TPE vs skopt GP.

What it measures
    For each problem (see ``benchmarks/_problems.py`` for the exact domains: Branin 2-D,
    Hartmann-6 on [0,1]^6, Rosenbrock-4 on [-2.048,2.048]^4, Ackley-5 on [-5,10]^5,
    Styblinski-Tang-4 on [-5,5]^4 (one global basin in a corner, 15 local ones), two
    deep-learning-shaped synthetics "mixed" and "conditional", and "trap", a conditional space
    whose easy branch hides the optimum in the other) and each method, run
    ``--trials`` (default 40) evaluations for each of ``--seeds`` seeds (default 5: seeds
    0..4) and record the final regret = best value found - known optimum. The table shows the
    median regret over seeds, and each method's mean rank of the final regret over all
    (problem, seed) pairs (ties share the average rank; 1 is best).

Methods (side by side, same run)
    hpo-bayes, hpo-random, hpo-tpe  ``hpo.create_study(strategy=..., seed=seed)`` in memory.
    optuna-gp  ``optuna.samplers.GPSampler(seed=seed)``, define-by-run: a conditional
               parameter is suggested only when active.
    optuna-tpe ``optuna.samplers.TPESampler(seed=seed)``, define-by-run likewise.
    skopt-gp   ``skopt.Optimizer(dims, base_estimator="GP", n_initial_points=10,
               random_state=seed)`` ask/tell; conditional params flattened (always present,
               ignored by the function when inactive); log ints as Integer(prior=
               "log-uniform"), log floats as Real(prior="log-uniform").

Targets (the "pass" columns), per problem
    vs GP:     median(hpo-bayes) <= min(median(optuna-gp), median(skopt-gp)), a tie allowed
               within 1e-9 absolute or 5% relative.
    vs random: median(hpo-bayes) < median(hpo-random).

Runs are spread over ``--processes`` worker processes (default 2, one per core here), each
with one BLAS/torch thread. Wall times per run are reported too but are only indicative
(runs share the machine).

Commands
    full, as in benchmarks/README.md (measured: 16.5 min on 2 quiet cores for 20 seeds;
    skopt-gp ~10 s/run dominates):
        .venv/bin/python benchmarks/bench_search_quality.py --seeds 20 --json benchmarks/results/search_quality.json
    smoke check (2 seeds, 3 problems):
        .venv/bin/python benchmarks/bench_search_quality.py --quick
    try a bayes option (only hpo-bayes, e.g. on two problems):
        .venv/bin/python benchmarks/bench_search_quality.py --methods hpo-bayes --problems branin mixed \\
            --bayes-options '{"deterministic": true}'
    one table from runs saved separately (e.g. the peers once, hpo-bayes after a change; the
    runs are deterministic given the seed, only the wall times depend on when they ran):
        .venv/bin/python benchmarks/bench_search_quality.py --merge peers.json bayes.json
"""

from __future__ import annotations

import os

# One thread per worker process: set before numpy / torch are imported.
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

from _problems import PROBLEMS, optuna_suggest, skopt_dimensions, skopt_params
from _report import mean_ranks, write_json

ALL_METHODS = ["hpo-bayes", "hpo-random", "hpo-tpe", "optuna-gp", "optuna-tpe", "skopt-gp"]
QUICK_PROBLEMS = ["branin", "hartmann6", "conditional"]
# Rough relative cost, so the slowest runs start first and the two workers finish together.
_COST = {
    "optuna-gp": 4,
    "hpo-bayes": 3,
    "skopt-gp": 2,
    "optuna-tpe": 1,
    "hpo-tpe": 1,
    "hpo-random": 0,
}


def _init_worker() -> None:
    import torch

    torch.set_num_threads(1)
    warnings.filterwarnings("ignore")
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)


def run_one(task: tuple[str, str, int, int, dict[str, Any]]) -> dict[str, Any]:
    """One (problem, method, seed) run; returns the values in trial order."""
    pname, method, seed, n_trials, bayes_options = task
    prob = PROBLEMS[pname]
    t0 = time.perf_counter()
    values: list[float] = []
    if method.startswith("hpo-"):
        import hpo

        study = hpo.create_study(
            space=prob.space,
            strategy=method[4:],
            direction="minimize",
            seed=seed,
            strategy_options=bayes_options if method == "hpo-bayes" else None,
        )
        study.optimize(lambda t: prob.f(t.params), n_trials=n_trials)
        values = [float(t.value) for t in study.trials if t.value is not None]
    elif method in ("optuna-gp", "optuna-tpe"):
        import optuna

        sampler = (
            optuna.samplers.GPSampler(seed=seed)
            if method == "optuna-gp"
            else optuna.samplers.TPESampler(seed=seed)
        )
        study = optuna.create_study(sampler=sampler, direction="minimize")
        study.optimize(lambda tr: prob.f(optuna_suggest(tr, prob.space)), n_trials=n_trials)
        values = [float(t.value) for t in study.trials if t.value is not None]
    elif method == "skopt-gp":
        import skopt

        opt = skopt.Optimizer(
            skopt_dimensions(prob.space),
            base_estimator="GP",
            n_initial_points=10,
            random_state=seed,
        )
        for _ in range(n_trials):
            x = opt.ask()
            y = prob.f(skopt_params(prob.space, x))
            opt.tell(x, y)
            values.append(float(y))
    else:
        raise ValueError(method)
    elapsed = time.perf_counter() - t0
    return {
        "problem": pname,
        "method": method,
        "seed": seed,
        "values": values,
        "regret": min(values) - prob.optimum,
        "seconds": elapsed,
    }


def _fmt(x: float) -> str:
    if x == 0:
        return "0"
    if abs(x) >= 1e3 or abs(x) < 1e-3:
        return f"{x:.2e}"
    return f"{x:.4g}"


def _tie_or_better(a: float, b: float) -> bool:
    """a <= b, allowing a tie within 1e-9 absolute or 5% relative (regrets are >= 0)."""
    return a <= b or abs(a - b) <= 1e-9 or abs(a - b) <= 0.05 * abs(b)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, default=5, help="seeds 0..N-1 (default 5)")
    ap.add_argument("--trials", type=int, default=40, help="evaluations per run (default 40)")
    ap.add_argument("--problems", nargs="+", default=list(PROBLEMS), choices=list(PROBLEMS))
    ap.add_argument("--methods", nargs="+", default=ALL_METHODS, choices=ALL_METHODS)
    ap.add_argument("--processes", type=int, default=2, help="worker processes (default 2)")
    ap.add_argument("--quick", action="store_true", help="2 seeds, 3 problems (smoke check)")
    ap.add_argument("--json", type=Path, default=None, help="also write all results here")
    ap.add_argument(
        "--merge",
        type=Path,
        nargs="+",
        default=None,
        help="run nothing: build the table from these --json files (same trials and seeds)",
    )
    ap.add_argument(
        "--bayes-options",
        type=json.loads,
        default={},
        help="JSON strategy options for hpo-bayes, e.g. '{\"deterministic\": true}'",
    )
    args = ap.parse_args()
    if args.quick:
        args.seeds = min(args.seeds, 2)
        args.problems = [p for p in args.problems if p in QUICK_PROBLEMS] or QUICK_PROBLEMS

    results: list[dict[str, Any]] = []
    if args.merge:
        total = 0.0
        trials: set[int] = set()
        for path in args.merge:
            data = json.loads(path.read_text())
            if "hpo-bayes" in data["args"]["methods"]:
                args.bayes_options = data["args"]["bayes_options"]
            trials.add(data["args"]["trials"])
            results += data["runs"]
            total += data["total_seconds"]
        if len(trials) != 1:
            sys.exit(f"--merge: the files ran different numbers of trials {sorted(trials)}")
        args.merge = [str(p) for p in args.merge]  # as written to --json
        args.trials = trials.pop()
        have = {(r["problem"], r["method"]) for r in results}
        args.problems = [p for p in PROBLEMS if any(h[0] == p for h in have)]
        args.methods = [m for m in ALL_METHODS if any(h[1] == m for h in have)]
        counts = {
            len({r["seed"] for r in results if (r["problem"], r["method"]) == h}) for h in have
        }
        if len(counts) != 1 or len(have) != len(args.problems) * len(args.methods):
            sys.exit("--merge: every (problem, method) must have the same seeds in the files")
        args.seeds = counts.pop()
    else:
        tasks = [
            (p, m, s, args.trials, args.bayes_options)
            for p in args.problems
            for m in args.methods
            for s in range(args.seeds)
        ]
        tasks.sort(key=lambda t: -_COST.get(t[1], 0))
        t_start = time.perf_counter()
        with mp.get_context("fork").Pool(args.processes, initializer=_init_worker) as pool:
            for i, r in enumerate(pool.imap_unordered(run_one, tasks, chunksize=1), 1):
                results.append(r)
                print(
                    f"[{i}/{len(tasks)} {time.perf_counter() - t_start:6.0f}s] {r['problem']:<12} "
                    f"{r['method']:<10} seed={r['seed']} regret={_fmt(r['regret'])} "
                    f"({r['seconds']:.1f}s)",
                    flush=True,
                )
        total = time.perf_counter() - t_start

    def regrets(p: str, m: str) -> list[float]:
        rs = sorted(
            (r for r in results if r["problem"] == p and r["method"] == m), key=lambda r: r["seed"]
        )
        return [r["regret"] for r in rs]

    med = {(p, m): statistics.median(regrets(p, m)) for p in args.problems for m in args.methods}

    # -- the table -----------------------------------------------------------------------
    gp_methods = [m for m in ("optuna-gp", "skopt-gp") if m in args.methods]
    has_targets = "hpo-bayes" in args.methods
    head = ["problem", *args.methods]
    if has_targets:
        head += ["bayes <= GP (5%)", "bayes < random", "pass"]
    lines = [
        f"Median final regret after {args.trials} trials over {args.seeds} seeds "
        f"(best found - known optimum; lower is better); hpo-bayes options: "
        f"{args.bayes_options or 'defaults'}",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|",
    ]
    summary: dict[str, dict[str, Any]] = {}
    failing: list[str] = []
    for p in args.problems:
        row = [p] + [_fmt(med[p, m]) for m in args.methods]
        if has_targets:
            b = med[p, "hpo-bayes"]
            ok_gp = _tie_or_better(b, min(med[p, m] for m in gp_methods)) if gp_methods else None
            ok_rand = b < med[p, "hpo-random"] if "hpo-random" in args.methods else None
            ok = bool(ok_gp is not False and ok_rand is not False)
            if not ok:
                failing.append(p)
            yn = {True: "yes", False: "NO", None: "-"}
            row += [yn[ok_gp], yn[ok_rand], "PASS" if ok else "FAIL"]
            summary[p] = {"bayes_le_gp": ok_gp, "bayes_lt_random": ok_rand, "pass": ok}
        lines.append("| " + " | ".join(row) + " |")

    ranks = mean_ranks(results, args.methods, "regret")
    secs = {
        m: statistics.median([r["seconds"] for r in results if r["method"] == m])
        for m in args.methods
    }
    lines += [
        "",
        "Mean rank of the final regret over (problem, seed), 1 is best: "
        + ", ".join(f"{m} {ranks[m]:.2f}" for m in sorted(ranks, key=ranks.__getitem__)),
        "",
        "Median wall seconds per run (indicative; 2 runs share 2 cores): "
        + ", ".join(f"{m} {secs[m]:.1f}s" for m in args.methods),
        f"Total wall time: {total:.0f}s ({total / 60:.1f} min), {len(results)} runs, "
        + (
            f"{len(args.merge)} separate commands."
            if args.merge
            else f"{args.processes} processes."
        ),
    ]
    if failing:
        lines += ["", "Per-seed regrets where hpo-bayes misses a target (seeds 0..N-1):", ""]
        lines += ["| problem | method | " + " | ".join(f"s{s}" for s in range(args.seeds)) + " |"]
        lines += ["|---|---|" + "---:|" * args.seeds]
        for p in failing:
            for m in args.methods:
                lines.append(f"| {p} | {m} | " + " | ".join(_fmt(x) for x in regrets(p, m)) + " |")
    print("\n" + "\n".join(lines))

    write_json(
        args.json,
        args,
        total_seconds=total,
        domains={p: PROBLEMS[p].domain for p in args.problems},
        median_regret={f"{p}/{m}": med[p, m] for p in args.problems for m in args.methods},
        targets=summary,
        mean_rank=ranks,
        runs=results,
    )


if __name__ == "__main__":
    main()
