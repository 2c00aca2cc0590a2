"""Parallel trials on Ray: scaling, dispatch overhead against Ray Tune, parallel search quality.

Three measurements, each side by side with its reference in one run:

``scaling``
    CPU-bound trials of about ``--trial-seconds`` each (a pure-Python loop, calibrated on this
    machine first): trials per minute with ``hpo``'s default in-process executor (1 worker)
    and with ``RayExecutor(workers=2)``, same study size (each of ``--trials-scaling``,
    default 20 and 40), SQLite store. The rate is the study's trials over the wall time of
    ``optimize``, which for Ray includes starting and stopping the local Ray instance, as a
    user pays it; the steady-state rate (first trial's start to last trial's end, from the
    store) is printed beside it. ``--scaling-reps`` repetitions (default 2) alternate which
    executor goes first; the median speed-up is reported, and beside it what the machine
    itself allows (the same loop in two plain processes against one). Target: >= 1.7x.

``dispatch``
    ``--trials`` trials of a trivial objective: total wall time of ``hpo`` with
    ``RayExecutor(workers=2)`` (random strategy, SQLite store, every trial written), against a
    plain Ray Tune ``Tuner`` over the same function (``num_samples=--trials``,
    ``max_concurrent_trials=2``, the same uniform parameter); both start and stop their own
    local Ray. Target: hpo no slower.

``quality``
    bayes with 4 concurrent workers against sequential bayes: median final regret after
    ``--budget`` trials over ``--seeds`` seeds on the engine's benchmark problems. The workers
    are simulated deterministically on the real ask/tell API: 4 trials are always running,
    each takes a random time (seeded), and the one that finishes first is told first — exactly
    what the strategy sees with 4 Ray workers, without the noise of real timing. Target:
    parallel regret <= 1.5x sequential, per problem. Beside it, the same two runs of Optuna's
    ``GPSampler`` on the same simulated schedule (the peer: Optuna 5 handles running trials
    with q-log-EI over fantasies of their values); ``--no-peer`` skips it. ``--catch-up K``
    runs hpo's 4-worker studies K trials longer and reports after how many trials their
    median regret reaches sequential's at ``--budget``. ``--problems`` also takes the real-ML
    problems of ``bench_real_ml.py`` (lookup tables: build them first).

Commands
    .venv/bin/python benchmarks/bench_ray.py scaling --json benchmarks/results/ray_scaling.json
    .venv/bin/python benchmarks/bench_ray.py dispatch --json benchmarks/results/ray_dispatch.json
    .venv/bin/python benchmarks/bench_ray.py quality --json benchmarks/results/ray_quality.json
    .venv/bin/python benchmarks/bench_ray.py quality --catch-up 20 --no-peer
    .venv/bin/python benchmarks/bench_ray.py quality --catch-up 20 --no-peer --problems \
        gb_cancer svc_digits mlp_wine rf_diabetes sgd_digits
    quick smoke check of all three: add --quick
"""

from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_v, "1")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

import argparse
import heapq
import itertools
import logging
import math
import multiprocessing as mp
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _problems import PROBLEMS, Problem, optuna_suggest
from _report import write_json

import hpo
from hpo.executors import RayExecutor

SPACE = hpo.SearchSpace({"x": hpo.Float(0.0, 1.0)})
_LOOPS_PER_SECOND = 0.0


# -- objectives (module level: Ray ships them to its workers) ------------------------------


def spin(n: int) -> float:
    acc = 0.0
    for i in range(n):
        acc += (i % 7) * 0.5
    return acc


def busy(trial: hpo.Trial) -> float:
    spin(int(os.environ["HPO_BENCH_LOOPS"]))
    return float(trial.params["x"])


def trivial(trial: hpo.Trial) -> float:
    return float(trial.params["x"]) ** 2


def tune_trivial(config: dict[str, Any]) -> dict[str, float]:
    return {"value": float(config["x"]) ** 2}


def _calibrate(seconds: float) -> int:
    n = 2_000_000
    while True:
        t0 = time.perf_counter()
        spin(n)
        dt = time.perf_counter() - t0
        if dt > 0.5:
            return int(n * seconds / dt)
        n *= 2


# -- scaling --------------------------------------------------------------------------------


def _spin_seconds(loops: int) -> float:
    t0 = time.perf_counter()
    spin(loops)
    return time.perf_counter() - t0


def _ceiling(loops: int) -> float:
    """What the machine itself allows: the same loop in 2 plain processes at once, against 1
    (no Ray, no store). A 2-core machine whose cores slow each other down caps every
    executor's speed-up below 2."""
    with mp.get_context("spawn").Pool(2) as pool:
        one = pool.apply(_spin_seconds, (loops,))
        two = pool.map(_spin_seconds, [loops, loops])
    return 2 * one / max(two)


def _scaling_run(n: int, label: str, tmp: str) -> dict[str, Any]:
    executor = RayExecutor(workers=2) if label == "ray-2" else None
    study = hpo.create_study(
        space=SPACE, strategy="random", storage=f"sqlite:///{tmp}/{label}-{n}.db", name=label
    )
    t0 = time.perf_counter()
    study.optimize(busy, n_trials=n, executor=executor)
    wall = time.perf_counter() - t0
    trials = study.trials
    done = sum(t.state is hpo.TrialState.COMPLETE for t in trials)
    assert done == n, f"{label}: {done}/{n} trials complete"
    # Steady state: from the first trial's start to the last one's end, as the store
    # recorded them (without Ray's start-up and shut-down).
    span = (
        max(t.finished_at for t in trials if t.finished_at)
        - min(t.started_at for t in trials if t.started_at)
    ).total_seconds()
    durations = [t.duration.total_seconds() for t in trials if t.duration]
    return {
        "wall_s": wall,
        "trials_per_min": 60 * n / wall,
        "steady_trials_per_min": 60 * n / span,
        "median_trial_s": statistics.median(durations),
    }


def scaling(args: argparse.Namespace) -> dict[str, Any]:
    loops = _calibrate(args.trial_seconds)
    os.environ["HPO_BENCH_LOOPS"] = str(loops)  # Ray's local workers inherit it
    out: dict[str, Any] = {"loops": loops, "sizes": {}, "ceiling": []}
    for n in args.trials_scaling:
        reps = []
        for r in range(args.scaling_reps):
            # Alternate which goes first, so a drift in the machine's speed hits both alike.
            order = ["in-process", "ray-2"] if r % 2 == 0 else ["ray-2", "in-process"]
            with tempfile.TemporaryDirectory() as tmp:
                row = {label: _scaling_run(n, label, tmp) for label in order}
            row["speedup"] = row["ray-2"]["trials_per_min"] / row["in-process"]["trials_per_min"]
            row["steady_speedup"] = (
                row["ray-2"]["steady_trials_per_min"] / row["in-process"]["steady_trials_per_min"]
            )
            ceiling = _ceiling(loops)
            out["ceiling"].append(ceiling)
            for label in ("in-process", "ray-2"):
                x = row[label]
                print(
                    f"{n:>3} trials, rep {r}, {label:>10}: {x['wall_s']:6.1f} s = "
                    f"{x['trials_per_min']:5.2f} trials/min (steady {x['steady_trials_per_min']:5.2f};"
                    f" median trial {x['median_trial_s']:.2f} s)"
                )
            print(
                f"{n:>3} trials, rep {r}: speed-up {row['speedup']:.2f}x (steady state "
                f"{row['steady_speedup']:.2f}x; two plain processes {ceiling:.2f}x)"
            )
            reps.append(row)
        summary = {
            "reps": reps,
            "speedup": statistics.median(r["speedup"] for r in reps),
            "steady_speedup": statistics.median(r["steady_speedup"] for r in reps),
        }
        print(
            f"{n:>3} trials: median speed-up with 2 workers {summary['speedup']:.2f}x (steady "
            f"state {summary['steady_speedup']:.2f}x; target >= 1.7x)"
        )
        out["sizes"][n] = summary
    print(f"two plain processes vs one, median: {statistics.median(out['ceiling']):.2f}x")
    return out


# -- dispatch overhead ----------------------------------------------------------------------


def dispatch(args: argparse.Namespace) -> dict[str, Any]:
    import ray
    from ray import tune

    n = args.trials_dispatch
    out: dict[str, Any] = {"trials": n}
    with tempfile.TemporaryDirectory() as tmp:
        study = hpo.create_study(
            space=SPACE, strategy="random", storage=f"sqlite:///{tmp}/hpo.db", name="dispatch"
        )
        t0 = time.perf_counter()
        study.optimize(trivial, n_trials=n, executor=RayExecutor(workers=2))
        out["hpo_s"] = time.perf_counter() - t0
        assert sum(t.state is hpo.TrialState.COMPLETE for t in study.trials) == n
        print(f"hpo RayExecutor(workers=2): {n} trials in {out['hpo_s']:.1f} s")

        t0 = time.perf_counter()
        ray.init(
            address="local",
            num_cpus=os.cpu_count(),
            include_dashboard=False,
            logging_level=logging.WARNING,
        )
        tuner = tune.Tuner(
            tune_trivial,
            param_space={"x": tune.uniform(0.0, 1.0)},
            tune_config=tune.TuneConfig(num_samples=n, max_concurrent_trials=2),
            run_config=tune.RunConfig(storage_path=f"{tmp}/tune", verbose=0),
        )
        results = tuner.fit()
        ray.shutdown()
        out["tune_s"] = time.perf_counter() - t0
        assert len(results) == n and not results.errors
        print(f"Ray Tune Tuner (2 concurrent): {n} trials in {out['tune_s']:.1f} s")
    out["ratio"] = out["hpo_s"] / out["tune_s"]
    print(f"hpo / Tune wall time: {out['ratio']:.2f} (target <= 1.0)")
    return out


# -- parallel search quality ----------------------------------------------------------------


def _problem(name: str) -> Problem:
    """A synthetic problem of ``_problems.py``, or a real-ML one of ``_real_ml.py`` (its lookup
    table as the objective, the table's best loss as the optimum; built by
    ``bench_real_ml.py build``)."""
    if name in PROBLEMS:
        return PROBLEMS[name]
    from _real_ml import PROBLEMS as REAL
    from _real_ml import key, load

    table = load(name)
    return Problem(
        name, REAL[name].space, lambda p: table[key(p)], min(table.values()), "lookup table"
    )


class _Hpo:
    """hpo's ask/tell API behind the simulator's two calls."""

    study: Any

    def __init__(self, problem: str, seed: int) -> None:
        self.study = hpo.create_study(space=_problem(problem).space, strategy="bayes", seed=seed)

    def ask(self) -> tuple[Any, dict[str, Any]]:
        trial = self.study.ask()
        return trial, dict(trial.params)

    def tell(self, trial: Any, value: float) -> None:
        self.study.tell(trial, value)


class _Optuna(_Hpo):
    """Optuna's ``GPSampler`` on the same calls (``tell`` is the same in both). The parameters are suggested at ask time, so
    the trial is RUNNING with its params while it is in flight: Optuna 5 scores candidates
    by q-log-EI over 128 quasi-random fantasies of the running trials' values."""

    def __init__(self, problem: str, seed: int) -> None:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.space = _problem(problem).space
        # (On the conditional space it samples the parameters that come and go at random,
        # and would say so for every trial.)
        sampler = optuna.samplers.GPSampler(seed=seed, warn_independent_sampling=False)
        self.study = optuna.create_study(sampler=sampler, direction="minimize")

    def ask(self) -> tuple[Any, dict[str, Any]]:
        trial = self.study.ask()
        return trial, optuna_suggest(trial, self.space)


_METHODS = {"hpo": _Hpo, "optuna": _Optuna}


def _simulate(
    problem: str, seed: int, budget: int, workers: int, method: str = "hpo"
) -> list[float]:
    """Regret after each of the ``budget`` trials (in the order they were asked) of
    ``method`` with ``workers`` trials always in flight (1 = sequential)."""
    import torch

    torch.set_num_threads(1)
    logging.getLogger("hpo").setLevel(logging.ERROR)
    prob = _problem(problem)
    opt = _METHODS[method](problem, seed)
    rng = random.Random(seed)
    clock = 0.0
    running: list[tuple[float, int, Any, dict[str, Any]]] = []
    values = [math.inf] * budget
    asked = 0
    while asked < budget or running:
        while asked < budget and len(running) < workers:
            trial, params = opt.ask()
            heapq.heappush(running, (clock + rng.uniform(0.5, 1.5), asked, trial, params))
            asked += 1
        clock, number, trial, params = heapq.heappop(running)
        values[number] = prob.f(params)
        opt.tell(trial, values[number])
    return [float(v) - prob.optimum for v in itertools.accumulate(values, min)]


def _job(job: tuple[str, str, int, int, int]) -> tuple[str, str, int, int, list[float]]:
    method, problem, seed, budget, workers = job
    return method, problem, workers, seed, _simulate(problem, seed, budget, workers, method)


def quality(args: argparse.Namespace) -> dict[str, Any]:
    methods = ["hpo"] + (["optuna"] if args.peer else [])
    jobs = [
        (m, p, s, args.budget + (args.catch_up if (m, w) == ("hpo", 4) else 0), w)
        for m in methods
        for p in args.problems
        for s in range(args.seeds)
        for w in (4, 1)
    ]
    jobs.sort(key=lambda j: j[0] != "optuna")  # the slowest first: the pool ends together
    runs: dict[tuple[str, str, int], list[list[float]]] = {
        (m, p, w): [] for m in methods for p in args.problems for w in (1, 4)
    }
    t0 = time.perf_counter()
    with mp.get_context("spawn").Pool(args.processes) as pool:
        for method, problem, workers, _seed, regrets in pool.imap_unordered(_job, jobs):
            runs[method, problem, workers].append(regrets)

    def median_at(m: str, p: str, w: int, n: int) -> float:
        return statistics.median(r[n - 1] for r in runs[m, p, w])

    # The 4-worker run proposes its last trial knowing `budget - 3` results at most: what
    # sequential bayes has reached by then shows what the missing results are worth.
    early = args.budget - 3
    out: dict[str, Any] = {"budget": args.budget, "seeds": args.seeds, "problems": {}}
    head = f"\n{'problem':<12} {'sequential':>10} {'4 workers':>10} {'ratio':>6}  <= 1.5"
    head += f"  {f'seq. @{early}':>9} {'ratio':>6}"
    if args.catch_up:
        head += "  4 workers match it at"
    if args.peer:
        head += f"  | optuna-gp: {'sequential':>10} {'4 workers':>10} {'ratio':>6}"
    print(head)
    for p in args.problems:
        row: dict[str, Any] = {}
        line = f"{p:<12}"
        for m in methods:
            seq = median_at(m, p, 1, args.budget)
            par = median_at(m, p, 4, args.budget)
            row[m] = {"sequential": seq, "parallel4": par, "ratio": _ratio(par, seq)}
            line += f" {seq:10.3g} {par:10.3g} {_ratio(par, seq):6.2f}"
            if m == "hpo":
                row["pass"] = _ratio(par, seq) <= 1.5
                seq_early = median_at(m, p, 1, early)
                row[m][f"sequential_at_{early}"] = seq_early
                line += f"  {'yes' if row['pass'] else 'NO':>5}  {seq_early:9.3g}"
                line += f" {_ratio(seq_early, seq):6.2f}"
                if args.catch_up:
                    # The first trials of a longer run are those of a shorter one (a
                    # proposal sees only what came before it), so one run gives every n.
                    last = args.budget + args.catch_up
                    match = next(
                        (n for n in range(1, last + 1) if median_at(m, p, 4, n) <= seq), None
                    )
                    row[m]["parallel4_matches_at"] = match
                    line += f"  {match or f'> {last}':>21}"
                line += "  |            "
        out["problems"][p] = row
        print(line.rstrip(" |"))
    print(f"({time.perf_counter() - t0:.0f} s)")
    return out


def _ratio(a: float, b: float) -> float:
    return a / b if b > 0 else (1.0 if a <= b else math.inf)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("what", choices=["scaling", "dispatch", "quality", "all"])
    ap.add_argument("--quick", action="store_true", help="a smoke check: small and fast")
    ap.add_argument("--trial-seconds", type=float, default=5.0)
    ap.add_argument("--trials-scaling", type=int, nargs="+", default=[20, 40])
    ap.add_argument("--scaling-reps", type=int, default=2)
    ap.add_argument("--trials-dispatch", type=int, default=100)
    ap.add_argument("--budget", type=int, default=40)
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument(
        "--problems",
        nargs="+",
        default=list(PROBLEMS),
        help="synthetic problems (default: all) and/or real-ML ones (gb_cancer, svc_digits, "
        "mlp_wine, rf_diabetes, sgd_digits; their tables built by bench_real_ml.py build)",
    )
    ap.add_argument("--processes", type=int, default=2)
    ap.add_argument(
        "--catch-up",
        type=int,
        default=0,
        help="quality: run the 4-worker studies this many trials longer and report when their "
        "median regret reaches sequential's",
    )
    ap.add_argument(
        "--no-peer", dest="peer", action="store_false", help="quality: skip Optuna's GPSampler"
    )
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    if args.quick:
        args.trial_seconds, args.trials_scaling, args.trials_dispatch = 1.0, [4], 20
        args.scaling_reps = 1
        args.budget, args.seeds, args.problems = 15, 2, ["branin", "mixed"]
    payload: dict[str, Any] = {"machine": f"{os.cpu_count()} CPUs"}
    for what in ["scaling", "dispatch", "quality"]:
        if args.what in (what, "all"):
            print(f"== {what}")
            payload[what] = globals()[what](args)
    write_json(args.json, args, **payload)


if __name__ == "__main__":
    main()
