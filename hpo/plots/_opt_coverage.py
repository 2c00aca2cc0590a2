"""The coverage view (random and grid): how evenly each parameter's range has been tried."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from hpo.plots._data import Axis, axis_of
from hpo.plots._style import (
    MEAN_COLOR,
    ROW_PX,
    Figure,
    empty_figure,
    figure_layout,
    subplot_grid,
    subplot_ref,
    subplot_title,
)
from hpo.space import Categorical, Float, Int, SearchSpace
from hpo.strategies._base import Strategy
from hpo.trial import FrozenTrial

__all__ = ["Coverage", "ParamCoverage", "coverage", "coverage_figure"]


@dataclass(frozen=True)
class ParamCoverage:
    axis: Axis
    bins: tuple[Any, ...]  # bin centres (numbers) or categories
    counts: tuple[int, ...]
    tried: int  # trials where the parameter was active
    filled: float  # share of bins with at least one trial


@dataclass(frozen=True)
class Coverage:
    params: tuple[ParamCoverage, ...]
    n_trials: int
    grid_size: int | None = None  # grid: how many points the grid has
    n_distinct: int = 0


def coverage(
    space: SearchSpace, trials: Sequence[FrozenTrial], strategy: Strategy | None = None
) -> Coverage:
    """How evenly each parameter's range has been tried (10 bins; log ranges in log space)."""
    tried = [t for t in trials if t.params and not t.interrupted]
    out = []
    for name, p in space.items():
        vals = [t.params[name] for t in tried if name in t.params]
        if isinstance(p, Categorical):
            counts = [sum(1 for v in vals if v == c) for c in p.choices]
            bins: tuple[Any, ...] = tuple(str(c) for c in p.choices)
        else:
            assert isinstance(p, (Float, Int))
            k = min(10, p.n_values) if isinstance(p, Int) else 10
            u = np.clip(np.array([float(p.to_unit(v)) for v in vals]), 0, 1 - 1e-12)
            counts = np.bincount((u * k).astype(int), minlength=k).tolist() if len(u) else [0] * k
            bins = tuple(float(p.from_unit((i + 0.5) / k)) for i in range(k))
        filled = sum(1 for c in counts if c) / max(len(counts), 1)
        out.append(ParamCoverage(axis_of(name, p), bins, tuple(counts), len(vals), filled))
    grid_size = None
    if strategy is not None and strategy.name == "grid":
        size = getattr(strategy, "size", None)
        grid_size = int(size(space)) if callable(size) else None
    distinct = len({tuple(sorted((k, str(v)) for k, v in t.params.items())) for t in tried})
    return Coverage(tuple(out), len(tried), grid_size, distinct)


# -- the figure ----------------------------------------------------------------------------


def coverage_figure(c: Coverage) -> Figure:
    title = f"Coverage: trials per part of each parameter's range ({c.n_trials} trials"
    title += f", {c.n_distinct} distinct"
    title += f" of a {c.grid_size}-point grid)" if c.grid_size else ")"
    if not c.n_trials:
        return empty_figure(title, "no trial yet")
    data: list[dict[str, Any]] = []
    notes = []
    layout_axes = subplot_grid(len(c.params))
    for i, p in enumerate(c.params):
        xr, yr = subplot_ref(i)
        data.append(
            {
                "type": "bar",
                "x": [str(b) if isinstance(b, str) else f"{b:.3g}" for b in p.bins],
                "y": list(p.counts),
                "xaxis": xr,
                "yaxis": yr,
                "showlegend": False,
                "name": p.axis.name,
                "marker": {"color": MEAN_COLOR},
                "meta": {"role": "coverage", "param": p.axis.name},
            }
        )
        notes.append(subplot_title(f"{p.axis.name}: {p.filled:.0%} of bins tried", xr, yr))
    rows = math.ceil(len(c.params) / 3)
    return {
        "data": data,
        "layout": figure_layout(title, height=ROW_PX * rows + 60, annotations=notes, **layout_axes),
    }
