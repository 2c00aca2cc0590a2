"""The tpe view: per parameter, the two densities TPE compares (good trials against the rest)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from hpo.plots._data import Axis, axis_of, axis_value, finite, value_or_nan
from hpo.plots._style import (
    BAD_COLOR,
    GOOD_COLOR,
    ROW_PX,
    Figure,
    axis_type,
    empty_figure,
    figure_layout,
    subplot_grid,
    subplot_ref,
    subplot_title,
)
from hpo.space import Categorical, Float, Int, SearchSpace
from hpo.trial import Direction, FrozenTrial, TrialState

__all__ = ["Density", "TpeDensities", "tpe_densities", "tpe_figure"]


@dataclass(frozen=True)
class Density:
    axis: Axis
    x: tuple[Any, ...]  # grid (numbers) or categories
    good: tuple[float, ...]
    bad: tuple[float, ...]
    n_good: int
    n_bad: int
    discrete: bool = False  # frequencies per choice or value (bars), not a density curve


@dataclass(frozen=True)
class TpeDensities:
    direction: Direction
    gamma: int = 0
    densities: tuple[Density, ...] = ()
    note: str | None = None


def tpe_densities(
    space: SearchSpace, trials: Sequence[FrozenTrial], direction: Direction
) -> TpeDensities:
    """The two densities TPE compares, per parameter: of the best ``gamma`` trials ("good":
    Optuna's default gamma, ``min(ceil(0.1 n), 25)``) and of the rest ("bad"). Parzen
    estimators in the unit space of each parameter (log ranges in log space), with Scott's
    bandwidth; categories and small integer ranges as smoothed frequencies. TPE samples
    where good/bad is largest."""
    done = [t for t in trials if t.state is TrialState.COMPLETE and finite(t.value)]
    if len(done) < 2:
        return TpeDensities(direction, note="needs at least 2 completed trials")
    sign = 1.0 if direction is Direction.MINIMIZE else -1.0
    done.sort(key=lambda t: sign * value_or_nan(t.value))
    gamma = min(math.ceil(0.1 * len(done)), 25)
    good, bad = done[:gamma], done[gamma:]
    out = []
    grid = np.linspace(0.0, 1.0, 101)
    for name, p in space.items():
        g = [t.params[name] for t in good if name in t.params]
        b = [t.params[name] for t in bad if name in t.params]
        if isinstance(p, Categorical) or (isinstance(p, Int) and p.n_values <= 16):
            choices = (
                list(p.choices)
                if isinstance(p, Categorical)
                else [p.low + k * p.step for k in range(p.n_values)]
            )

            def freq(vals: list[Any], choices: list[Any] = choices) -> tuple[float, ...]:
                c = np.ones(len(choices))  # one prior count per choice
                for v in vals:
                    if v in choices:
                        c[choices.index(v)] += 1
                return tuple(float(v) for v in c / c.sum())

            shown = tuple(axis_value(p, c) for c in choices)
            out.append(
                Density(axis_of(name, p), shown, freq(g), freq(b), len(g), len(b), discrete=True)
            )
            continue

        def kde(vals: list[Any], p: Any = p) -> tuple[float, ...]:
            u = np.array([float(p.to_unit(v)) for v in vals])
            if len(u) == 0:
                return tuple(float(v) for v in np.ones_like(grid))
            bw = max(1.06 * (float(u.std()) or 0.2) * len(u) ** -0.2, 0.02)
            dens = np.exp(-0.5 * ((grid[:, None] - u[None, :]) / bw) ** 2).sum(1)
            dens /= len(u) * bw * math.sqrt(2 * math.pi)
            return tuple(float(v) for v in dens)

        assert isinstance(p, (Float, Int))
        xs = tuple(float(p.from_unit(float(u))) for u in grid)
        out.append(Density(axis_of(name, p), xs, kde(g), kde(b), len(g), len(b)))
    return TpeDensities(direction, gamma=gamma, densities=tuple(out))


# -- the figure ----------------------------------------------------------------------------


def tpe_figure(d: TpeDensities) -> Figure:
    title = "TPE: density of the best trials (good) and of the rest (bad)"
    if d.note:
        return empty_figure(title, d.note)
    data: list[dict[str, Any]] = []
    notes = []
    layout_axes = subplot_grid(len(d.densities))
    for i, den in enumerate(d.densities):
        xr, yr = subplot_ref(i)
        cat = den.discrete
        for label, ys, color in (("good", den.good, GOOD_COLOR), ("bad", den.bad, BAD_COLOR)):
            trace: dict[str, Any] = {
                "type": "bar" if cat else "scatter",
                "x": list(den.x),
                "y": list(ys),
                "xaxis": xr,
                "yaxis": yr,
                "name": label,
                "legendgroup": label,
                "showlegend": i == 0,
                "meta": {"role": label, "param": den.axis.name},
            }
            if cat:
                trace["marker"] = {"color": color, "opacity": 0.7}
            else:
                trace.update({"mode": "lines", "line": {"color": color, "width": 2}})
            data.append(trace)
        notes.append(
            subplot_title(f"{den.axis.name} ({den.n_good} good / {den.n_bad} bad)", xr, yr)
        )
        layout_axes[f"xaxis{xr[1:]}"].update(axis_type(den.axis))
    rows = math.ceil(len(d.densities) / 3)
    return {
        "data": data,
        "layout": figure_layout(
            f"{title}; gamma = {d.gamma}; TPE samples where good/bad is largest",
            height=ROW_PX * rows + 90,
            annotations=notes,
            barmode="group",
            legend={"orientation": "h", "y": -0.06 if rows > 1 else -0.2},
            **layout_axes,
        ),
    }
