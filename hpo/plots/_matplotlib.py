"""PNG pictures of the plot data with matplotlib, for reports and machines without a browser.

Uses matplotlib's object API with the Agg canvas (no ``pyplot``), so it never touches the
caller's global backend or figure state.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hpo.plots._data import Curve, History, Importance, Parallel, Slice
from hpo.plots._style import BEST_COLOR, STATE_COLORS
from hpo.trial import Direction, TrialState

__all__ = ["save_png"]


def _new(width: float = 8.0, height: float = 4.5) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _history(h: History) -> Any:
    fig = _new()
    ax = fig.add_subplot()
    ax.scatter(h.numbers, h.values, s=14, color=STATE_COLORS[TrialState.COMPLETE], label="value")
    ax.step(h.numbers, h.best, where="post", color=BEST_COLOR, lw=2, label="best so far")
    if h.pruned_numbers:
        ax.scatter(
            h.pruned_numbers,
            h.pruned_values,
            marker="x",
            color=STATE_COLORS[TrialState.PRUNED],
            label="pruned (last reported)",
        )
    ax.set_xlabel("trial")
    ax.set_ylabel("value")
    title = f"Optimisation history ({h.direction.value})"
    if h.n_failed:
        title += f" · {h.n_failed} failed not shown"
    ax.set_title(title, loc="left")
    ax.legend(loc="best", fontsize="small")
    ax.grid(alpha=0.3)
    return fig


def _parallel(p: Parallel, direction: Direction) -> Any:
    """Each axis scaled to [0, 1] (log10 on log scales); inactive values drawn at -0.08."""
    import numpy as np
    from matplotlib import cm, colormaps, colors

    fig = _new(max(8.0, 1.4 * (len(p.axes) + 1)), 4.8)
    ax = fig.add_subplot()
    cols: list[list[float]] = []
    labels: list[tuple[str, str]] = []
    for axis, col in zip(p.axes, p.columns, strict=True):
        present = [v for v in col if v is not None]
        if axis.scale == "category":
            lo, hi = 0.0, float(max(len(axis.categories) - 1, 1))
            labels.append((axis.categories[0], axis.categories[-1]))
        else:
            lo = float(axis.low if axis.low is not None else min(present, default=0.0))
            hi = float(axis.high if axis.high is not None else max(present, default=1.0))
            labels.append((f"{lo:.3g}", f"{hi:.3g}"))
            if axis.scale == "log" and lo > 0:
                lo, hi = math.log10(lo), math.log10(hi)
        span = (hi - lo) or 1.0
        scaled = []
        for v in col:
            if v is None:
                scaled.append(-0.08)
                continue
            x = math.log10(v) if axis.scale == "log" and v > 0 else v
            scaled.append((x - lo) / span)
        cols.append(scaled)
    vals = np.asarray(p.values, dtype=float)
    vlo, vhi = float(vals.min()), float(vals.max())
    cols.append(list((vals - vlo) / ((vhi - vlo) or 1.0)))
    labels.append((f"{vlo:.3g}", f"{vhi:.3g}"))
    norm = colors.Normalize(vlo, vhi)
    cmap = colormaps["viridis" if direction is Direction.MINIMIZE else "viridis_r"]  # dark = best
    xs = list(range(len(cols)))
    for j in np.argsort(-vals if direction is Direction.MINIMIZE else vals):  # best on top
        ax.plot(xs, [c[j] for c in cols], color=cmap(norm(vals[j])), lw=0.9, alpha=0.8)
    names = [a.name for a in p.axes] + ["value"]
    ax.set_xticks(xs, names, rotation=20)
    ax.set_yticks([])
    for x, (lo_text, hi_text) in zip(xs, labels, strict=True):
        ax.axvline(x, color="#444", lw=0.8)
        ax.annotate(hi_text, (x, 1.02), ha="center", fontsize=8)
        ax.annotate(lo_text, (x, -0.13), ha="center", fontsize=8)
    for x, col in enumerate(p.columns):
        if any(v is None for v in col):
            ax.annotate("inactive", (x + 0.04, -0.08), va="center", fontsize=7, color="#777")
    ax.set_ylim(-0.18, 1.08)
    ax.set_title("Parallel coordinates (completed trials)", loc="left")
    fig.colorbar(cm.ScalarMappable(norm=norm, cmap=cmap), ax=ax, label="value")
    return fig


def _importance(imp: Importance) -> Any:
    fig = _new(7.0, 0.5 * len(imp.names) + 1.5)
    ax = fig.add_subplot()
    names, scores = list(reversed(imp.names)), list(reversed(imp.scores))
    bars = ax.barh(names, scores, color=STATE_COLORS[TrialState.COMPLETE])
    ax.bar_label(bars, fmt="%.2f", fontsize=8)
    ax.set_xlim(0, 1)
    ax.set_xlabel("share of importance (permutation, random-forest surrogate)")
    ax.set_title(f"Parameter importance ({imp.n_trials} completed trials)", loc="left")
    return fig


def _slices(sl: Sequence[Slice]) -> Any:
    cols = min(3, len(sl))
    rows = max(1, math.ceil(len(sl) / cols))
    fig = _new(4.0 * cols, 3.0 * rows)
    axes = fig.subplots(rows, cols, squeeze=False, sharey=True)
    color = STATE_COLORS[TrialState.COMPLETE]
    for i, s in enumerate(sl):
        ax = axes[i // cols][i % cols]
        if s.axis.scale == "category":
            pos = {c: k for k, c in enumerate(s.axis.categories)}
            ax.scatter([pos.get(x, -1) for x in s.x], s.y, color=color, alpha=0.7, s=14)
            ax.set_xticks(range(len(s.axis.categories)), s.axis.categories)
        else:
            ax.scatter(s.x, s.y, color=color, alpha=0.7, s=14)
            if s.axis.scale == "log":
                ax.set_xscale("log")
        ax.set_xlabel(s.axis.name)
        ax.grid(alpha=0.3)
    for i in range(len(sl), rows * cols):
        axes[i // cols][i % cols].set_visible(False)
    for r in range(rows):
        axes[r][0].set_ylabel("value")
    fig.suptitle("Slices: value against each parameter", x=0.01, ha="left")
    return fig


def _curves(cs: Sequence[Curve], highlight: Sequence[int]) -> Any:
    fig = _new()
    ax = fig.add_subplot()
    seen: set[TrialState] = set()
    for c in cs:
        ax.plot(
            c.steps,
            [math.nan if v is None else v for v in c.values],
            color=STATE_COLORS[c.state],
            lw=1,
            alpha=0.45,
            label=None if c.state in seen else c.state.value,
        )
        seen.add(c.state)
    by_number = {c.number: c for c in cs}
    for n in highlight:
        picked = by_number.get(n)
        if picked is not None:
            y = [math.nan if v is None else v for v in picked.values]
            ax.plot(picked.steps, y, lw=2.5, marker="o", ms=3, label=f"trial {n}")
    ax.set_xlabel("step")
    ax.set_ylabel("intermediate value")
    ax.set_title("Learning curves (intermediate values)", loc="left")
    ax.legend(loc="best", fontsize="small")
    ax.grid(alpha=0.3)
    return fig


def save_png(kind: str, data: Any, path: Path, **options: Any) -> None:
    """Draw ``data`` (the record of ``kind`` from :mod:`hpo.plots._data`) into ``path``."""
    if kind == "history":
        fig = _history(data)
    elif kind == "parallel":
        fig = _parallel(data, options["direction"])
    elif kind == "importance":
        fig = _importance(data)
    elif kind == "slices":
        fig = _slices(data)
    else:
        fig = _curves(data, options.get("highlight", ()))
    fig.savefig(path, format="png")
