"""Store throughput: trials written per second, hpo's store vs Optuna's RDBStorage.

What it measures
    ``--trials`` (default 1,000) trials run back to back in one process, as fast as the store
    allows, on each backend, hpo and Optuna side by side in the same run and on the same
    database:

    ask+tell         hpo: ``study.ask()`` (random strategy, so proposing is negligible) then
                     ``study.tell(trial, 1.0)``. Optuna: ``study.ask()``, one ``suggest_*`` per
                     parameter (Optuna stores each as it is suggested), ``study.tell(trial, 1.0)``
                     with ``RandomSampler(seed=0)``.
    ask+report+tell  the same plus one intermediate value (``trial.report(0.5, 0)``) per trial.

    The space is the 5-parameter "mixed" space of ``benchmarks/_problems.py`` (log float, int,
    log int, categorical, float) for both libraries. Only the trial loop is timed (not study
    creation / schema migration). Reported: trials/s and the ratio hpo / optuna (> 1: hpo
    faster). The order of hpo and Optuna alternates between cases.

Backends
    sqlite       one fresh file in a temporary folder, shared by both libraries (hpo's tables
                 are prefixed ``hpo_``; Optuna's are not; the file is deleted afterwards).
    postgresql   ``--pg`` (default ``postgresql://postgres@127.0.0.1:5432/test``): both
                 libraries in one fresh schema ``hpo_bench_<pid>`` (via ``search_path``),
                 dropped afterwards, so nothing is left in ``public``. ``--no-pg`` skips it.

Commands
    full:   .venv/bin/python benchmarks/bench_store.py --json benchmarks/results/store.json
    quick:  .venv/bin/python benchmarks/bench_store.py --quick      (100 trials)
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _problems import PROBLEMS, optuna_suggest
from _report import write_json

import hpo

SPACE = PROBLEMS["mixed"].space


def run_hpo(url: str, name: str, n: int, report: bool) -> float:
    study = hpo.create_study(space=SPACE, strategy="random", storage=url, name=name, seed=0)
    study.ask()  # warm the connection pool; not timed (its tell is below)
    study.tell(study.trials[0].number, 1.0)
    t0 = time.perf_counter()
    for _ in range(n):
        t = study.ask()
        if report:
            t.report(0.5, 0)
        study.tell(t, 1.0)
    dt = time.perf_counter() - t0
    assert len(study.trials) == n + 1
    study.store.close() if hasattr(study.store, "close") else None
    return n / dt


def run_optuna(url: str, name: str, n: int, report: bool) -> float:
    import optuna

    storage = optuna.storages.RDBStorage(url)
    study = optuna.create_study(
        storage=storage, study_name=name, sampler=optuna.samplers.RandomSampler(seed=0)
    )
    tr = study.ask()
    optuna_suggest(tr, SPACE)
    study.tell(tr, 1.0)
    t0 = time.perf_counter()
    for _ in range(n):
        tr = study.ask()
        optuna_suggest(tr, SPACE)
        if report:
            tr.report(0.5, 0)
        study.tell(tr, 1.0)
    dt = time.perf_counter() - t0
    assert len(study.trials) == n + 1
    storage.engine.dispose()
    return n / dt


@contextlib.contextmanager
def pg_schema(base: str) -> Iterator[str]:
    """A fresh schema in the PostgreSQL database at ``base``; a URL using it; dropped after."""
    import psycopg

    schema = f"hpo_bench_{os.getpid()}"
    conninfo = base.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        conn.execute(f"CREATE SCHEMA {schema}")
    sep = "&" if "?" in base else "?"
    url = f"{base}{sep}options=-csearch_path%3D{schema}"
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    try:
        yield url
    finally:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--trials", type=int, default=1000, help="timed trials per case (1000)")
    ap.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/test")
    ap.add_argument("--no-pg", action="store_true", help="skip PostgreSQL")
    ap.add_argument("--no-sqlite", action="store_true", help="skip SQLite")
    ap.add_argument("--no-report", action="store_true", help="skip the ask+report+tell case")
    ap.add_argument("--quick", action="store_true", help="100 trials (smoke check)")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    if args.quick:
        args.trials = min(args.trials, 100)

    import optuna

    warnings.filterwarnings("ignore")
    optuna.logging.set_verbosity(optuna.logging.WARNING)

    variants = [("ask+tell", False)] + ([] if args.no_report else [("ask+report+tell", True)])
    rows: list[dict[str, Any]] = []
    t_start = time.perf_counter()
    flip = 0

    def bench(backend: str, url: str) -> None:
        nonlocal flip
        for vname, report in variants:
            res: dict[str, float] = {}
            order = ["hpo", "optuna"] if flip % 2 == 0 else ["optuna", "hpo"]
            flip += 1
            for lib in order:
                name = f"bench-{lib}-{vname}-{os.getpid()}"
                fn = run_hpo if lib == "hpo" else run_optuna
                res[lib] = fn(url, name, args.trials, report)
                print(f"{backend:<10} {vname:<16} {lib:<6} {res[lib]:8.1f} trials/s", flush=True)
            rows.append(
                {
                    "backend": backend,
                    "case": vname,
                    "hpo": res["hpo"],
                    "optuna": res["optuna"],
                    "ratio": res["hpo"] / res["optuna"],
                    "order": order,
                }
            )

    if not args.no_sqlite:
        with tempfile.TemporaryDirectory() as d:
            bench("sqlite", f"sqlite:///{d}/bench.db")
    if not args.no_pg:
        with pg_schema(args.pg) as url:
            bench("postgresql", url)
    total = time.perf_counter() - t_start

    lines = [
        f"Trials written per second, {args.trials} trials per case, one process "
        "(higher is better; ratio > 1: hpo faster)",
        "",
        "| backend | case | hpo trials/s | optuna trials/s | hpo / optuna |",
        "|---|---|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['backend']} | {r['case']} | {r['hpo']:.1f} | {r['optuna']:.1f} "
            f"| {r['ratio']:.2f} |"
        )
    lines += ["", f"Total wall time: {total:.0f}s."]
    print("\n" + "\n".join(lines))
    write_json(
        args.json,
        args,
        total_seconds=total,
        rows=rows,
    )


if __name__ == "__main__":
    main()
