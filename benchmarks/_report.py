"""Shared output of the benchmark scripts: the JSON file every script can write, and the mean
rank of methods over (problem, seed) pairs that the search-quality suites report."""

from __future__ import annotations

import argparse
import json
import statistics
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any


def write_json(path: Path | None, args: argparse.Namespace, **payload: Any) -> None:
    """Write ``payload`` plus the command's arguments to ``path`` (if given) and say so."""
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {"args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}}
    data.update(payload)
    path.write_text(json.dumps(data, indent=1))
    print(f"\nwrote {path}")


def mean_ranks(runs: Iterable[Mapping[str, Any]], methods: list[str], key: str) -> dict[str, float]:
    """Each method's mean rank of ``run[key]`` (lower is better) over the (problem, seed)
    pairs that every method ran; ties share the average rank, 1 is best."""
    from scipy.stats import rankdata

    rows: dict[tuple[str, int], dict[str, float]] = {}
    for r in runs:
        rows.setdefault((r["problem"], r["seed"]), {})[r["method"]] = float(r[key])
    ranks: dict[str, list[float]] = {m: [] for m in methods}
    for row in rows.values():
        if all(m in row for m in methods):
            for m, v in zip(methods, rankdata([row[m] for m in methods]), strict=True):
                ranks[m].append(float(v))
    return {m: statistics.mean(v) for m, v in ranks.items() if v}
