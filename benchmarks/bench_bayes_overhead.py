"""Proposal overhead: wall time of one ``bayes`` proposal given N completed trials, vs Optuna.

What it measures
    For each problem (default: Hartmann-6, 6 floats; "mixed", log float + int + log int +
    categorical + float; see ``benchmarks/_problems.py``) it draws ``--history`` (default 200)
    random param sets (seeded), values from the problem's function, and then times, repeated
    ``--repeats`` times (default 9) and interleaved (the order rotates every repetition):

    hpo-bayes       ``hpo.get_strategy("bayes").propose(space, trials, ...)`` on the 200
                    completed ``FrozenTrial`` s. A proposal is a pure function of the history
                    (no cache), so every call is cold by construction; a new trial-rng per call.
    optuna-gp cold  a *new* ``GPSampler(seed=rep)`` set on an Optuna in-memory study holding the
                    same 200 trials (``add_trials``), then ``study.ask()`` + one ``suggest_*`` per
                    parameter. The GP is fitted inside ``ask()`` (relative sampling), so this is
                    the full proposal, from scratch.
    optuna-gp warm  the same, but one ``GPSampler`` kept across calls: it caches the previous
                    fit's kernel hyper-parameters and starts the next fit from them. A warm-up
                    call precedes the timed ones. The data do not change between calls (the asked
                    trial is told FAIL, which GPSampler ignores), so this is the *best case* for
                    the cache.

    Each timed call covers only the proposal (not building the history, not the tell).
    Reported: median (and min) ms per proposal and the ratios hpo / optuna (cold and warm).
    torch runs with its default thread count unless ``--torch-threads`` is given; hpo's bayes
    always sets one thread during a proposal (its own choice), Optuna uses whatever is set.

Commands
    full:   .venv/bin/python benchmarks/bench_bayes_overhead.py --json benchmarks/results/bayes_overhead.json
    quick:  .venv/bin/python benchmarks/bench_bayes_overhead.py --quick
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _problems import PROBLEMS, Problem, optuna_distributions, optuna_suggest
from _report import write_json

import hpo


def history(prob: Problem, n: int, seed: int) -> list[tuple[dict[str, Any], float]]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        p = prob.space.sample(rng)
        out.append((p, prob.f(p)))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--problems", nargs="+", default=["hartmann6", "mixed"], choices=list(PROBLEMS))
    ap.add_argument("--history", type=int, default=200, help="completed trials (default 200)")
    ap.add_argument("--repeats", type=int, default=9, help="timed calls per method (default 9)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the random history")
    ap.add_argument("--torch-threads", type=int, default=None, help="torch.set_num_threads")
    ap.add_argument("--quick", action="store_true", help="3 repeats, 1 problem (smoke check)")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    if args.quick:
        args.repeats = min(args.repeats, 3)
        args.problems = args.problems[:1]

    import optuna
    import torch

    warnings.filterwarnings("ignore")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if args.torch_threads is not None:
        torch.set_num_threads(args.torch_threads)

    t_start = time.perf_counter()
    results: dict[str, dict[str, list[float]]] = {}
    for pname in args.problems:
        prob = PROBLEMS[pname]
        hist = history(prob, args.history, args.seed)

        # hpo: FrozenTrials straight to the strategy.
        frozen = [
            hpo.FrozenTrial(number=i, state=hpo.TrialState.COMPLETE, params=p, value=v)
            for i, (p, v) in enumerate(hist)
        ]
        strategy = hpo.get_strategy("bayes")
        n = len(frozen)

        # optuna: two in-memory studies with the same trials.
        def make_study(sampler: Any) -> Any:
            st = optuna.create_study(sampler=sampler, direction="minimize")
            st.add_trials(
                [
                    optuna.trial.create_trial(
                        params=p, distributions=optuna_distributions(prob.space, p), value=v
                    )
                    for p, v in hist
                ]
            )
            return st

        cold_study = make_study(optuna.samplers.GPSampler(seed=0))
        warm_study = make_study(optuna.samplers.GPSampler(seed=0))

        def optuna_call(st: Any) -> float:
            t0 = time.perf_counter()
            tr = st.ask()
            optuna_suggest(tr, prob.space)
            dt = time.perf_counter() - t0
            st.tell(tr, state=optuna.trial.TrialState.FAIL)  # ignored by GPSampler
            return dt

        def run_hpo(rep: int) -> float:
            t0 = time.perf_counter()
            strategy.propose(
                prob.space,
                frozen,
                direction=hpo.Direction.MINIMIZE,
                number=n,
                seed=0,
                rng=np.random.default_rng([0, n, rep + 1]),
            )
            return time.perf_counter() - t0

        def run_cold(rep: int) -> float:
            cold_study.sampler = optuna.samplers.GPSampler(seed=rep + 1)
            return optuna_call(cold_study)

        def run_warm(rep: int) -> float:
            return optuna_call(warm_study)

        runners = {"hpo-bayes": run_hpo, "optuna-gp cold": run_cold, "optuna-gp warm": run_warm}
        # Warm-up: imports, torch kernels, and the warm sampler's cache.
        run_hpo(-1)
        run_warm(-1)
        times: dict[str, list[float]] = {k: [] for k in runners}
        names = list(runners)
        for rep in range(args.repeats):
            order = names[rep % 3 :] + names[: rep % 3]
            for k in order:
                times[k].append(runners[k](rep))
            print(
                f"{pname} rep {rep}: "
                + ", ".join(f"{k} {times[k][-1] * 1e3:.0f} ms" for k in names),
                flush=True,
            )
        results[pname] = times

    total = time.perf_counter() - t_start
    lines = [
        f"Wall time of one proposal with {args.history} completed trials, "
        f"{args.repeats} interleaved repeats (torch threads: {torch.get_num_threads()}; "
        "hpo uses 1 during a proposal)",
        "",
        "| problem | hpo-bayes median ms (min) | optuna-gp cold median ms (min) "
        "| optuna-gp warm median ms (min) | hpo / optuna cold | hpo / optuna warm |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    summary = {}
    for pname, times in results.items():
        med = {k: statistics.median(v) * 1e3 for k, v in times.items()}
        mn = {k: min(v) * 1e3 for k, v in times.items()}
        rc = med["hpo-bayes"] / med["optuna-gp cold"]
        rw = med["hpo-bayes"] / med["optuna-gp warm"]
        summary[pname] = {"median_ms": med, "min_ms": mn, "ratio_cold": rc, "ratio_warm": rw}
        lines.append(
            f"| {pname} | {med['hpo-bayes']:.0f} ({mn['hpo-bayes']:.0f}) "
            f"| {med['optuna-gp cold']:.0f} ({mn['optuna-gp cold']:.0f}) "
            f"| {med['optuna-gp warm']:.0f} ({mn['optuna-gp warm']:.0f}) | {rc:.2f} | {rw:.2f} |"
        )
    lines += ["", f"Total wall time: {total:.0f}s."]
    print("\n" + "\n".join(lines))
    write_json(
        args.json,
        args,
        torch_threads=torch.get_num_threads(),
        total_seconds=total,
        summary=summary,
        times_s=results,
    )


if __name__ == "__main__":
    main()
