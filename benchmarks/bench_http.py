"""Ask/tell over HTTP vs in-process: round trips per second, side by side in one run.

What it measures
    ``--trials`` (default 500) trials run back to back by one client, the random strategy (so
    proposing costs nothing and the figure is the transport and the store), the 5-parameter
    "mixed" space of ``benchmarks/_problems.py``:

    in-process   ``study.ask()`` then ``study.tell(trial, 1.0)`` on a Study in this process.
    HTTP         the same through the real ``hpo dashboard`` server (a subprocess on a free
                 loopback port) with :class:`hpo.client.Client`: ``POST .../ask`` then
                 ``POST .../trials/N/tell``, one keep-alive connection.

    Cases: ask+tell, and ask+report+tell (one intermediate value per trial: one more round
    trip over HTTP). Both paths write to the same store (one fresh SQLite file; PostgreSQL in
    one fresh schema with ``--pg``), each to its own study; the order of the two alternates
    between cases. Reported: round trips (trials) per second and HTTP / in-process.

Commands
    full:   .venv/bin/python benchmarks/bench_http.py --json benchmarks/results/http.json
    quick:  .venv/bin/python benchmarks/bench_http.py --quick      (100 trials, SQLite only)
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _problems import PROBLEMS
from _report import write_json
from _server import dashboard

import hpo
from hpo.client import Client

SPACE = PROBLEMS["mixed"].space


def run_local(url: str, name: str, n: int, report: bool) -> float:
    study = hpo.create_study(space=SPACE, strategy="random", storage=url, name=name, seed=0)
    study.tell(study.ask(), 1.0)  # warm the connection pool; not timed
    t0 = time.perf_counter()
    for _ in range(n):
        t = study.ask()
        if report:
            t.report(0.5, 1)
        study.tell(t, 1.0)
    dt = time.perf_counter() - t0
    assert len(study.trials) == n + 1
    return n / dt


def run_http(client: Client, name: str, n: int, report: bool) -> float:
    study = client.create_study(SPACE, strategy="random", name=name, seed=0)
    study.tell(study.ask(), 1.0)  # open the connection, warm the server's study; not timed
    t0 = time.perf_counter()
    for _ in range(n):
        t = study.ask()
        if report:
            t.report(0.5, 1)
        study.tell(t, 1.0)
    dt = time.perf_counter() - t0
    assert len(study.trials) == n + 1
    return n / dt


@contextlib.contextmanager
def pg_schema(base: str) -> Iterator[str]:
    """A fresh schema in the PostgreSQL database at ``base``; a URL using it; dropped after."""
    import psycopg

    schema = f"hpo_bench_http_{os.getpid()}"
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
    ap.add_argument("--trials", type=int, default=500, help="timed trials per case (500)")
    ap.add_argument(
        "--pg", default=None, help="also PostgreSQL, e.g. postgresql://postgres@127.0.0.1:5432/test"
    )
    ap.add_argument("--quick", action="store_true", help="100 trials (smoke check)")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    if args.quick:
        args.trials = min(args.trials, 100)

    rows: list[dict[str, Any]] = []
    flip = 0

    def bench(backend: str, url: str) -> None:
        nonlocal flip
        with dashboard(url) as base:
            client = Client(base)
            for case, report in (("ask+tell", False), ("ask+report+tell", True)):
                res: dict[str, float] = {}
                order = ["in-process", "http"] if flip % 2 == 0 else ["http", "in-process"]
                flip += 1
                for how in order:
                    name = f"bench-{how}-{case}-{os.getpid()}"
                    if how == "http":
                        res[how] = run_http(client, name, args.trials, report)
                    else:
                        res[how] = run_local(url, name, args.trials, report)
                    print(
                        f"{backend:<10} {case:<16} {how:<10} {res[how]:8.1f} trials/s", flush=True
                    )
                rows.append(
                    {
                        "backend": backend,
                        "case": case,
                        "in_process": res["in-process"],
                        "http": res["http"],
                        "ratio": res["http"] / res["in-process"],
                        "order": order,
                    }
                )

    t_start = time.perf_counter()
    with tempfile.TemporaryDirectory() as d:
        bench("sqlite", f"sqlite:///{d}/bench.db")
    if args.pg:
        with pg_schema(args.pg) as url:
            bench("postgresql", url)
    total = time.perf_counter() - t_start

    lines = [
        f"Ask/tell round trips per second, {args.trials} trials per case, random strategy "
        "(higher is better)",
        "",
        "| backend | case | in-process trials/s | HTTP trials/s | HTTP / in-process |",
        "|---|---|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['backend']} | {r['case']} | {r['in_process']:.1f} | {r['http']:.1f} "
            f"| {r['ratio']:.2f} |"
        )
    lines += ["", f"Total wall time: {total:.0f}s."]
    print("\n" + "\n".join(lines))
    write_json(args.json, args, total_seconds=total, rows=rows)


if __name__ == "__main__":
    main()
