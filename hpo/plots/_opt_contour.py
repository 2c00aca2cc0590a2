"""The contour view: ``bayes``'s GP over two parameters, the others at the best point.

Only scatter traces: the dashboard's vendored plotly.js is the "basic" bundle (no heatmap or
contour), so the grid is drawn as square markers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from hpo.plots._data import Axis, axis_of, axis_value, finite, value_or_nan
from hpo.plots._opt_model import fit, through
from hpo.plots._style import (
    BEST_COLOR,
    Figure,
    axis_type,
    empty_figure,
    figure_layout,
    subplot_grid,
    subplot_ref,
    subplot_title,
)
from hpo.space import SearchSpace
from hpo.strategies._base import Strategy
from hpo.trial import Direction, FrozenTrial

__all__ = ["Contour", "contour", "contour_figure", "default_pair"]


@dataclass(frozen=True)
class Contour:
    direction: Direction
    note: str | None = None
    x_axis: Axis | None = None
    y_axis: Axis | None = None
    gx: tuple[Any, ...] = ()  # grid values along x (categories as strings)
    gy: tuple[Any, ...] = ()
    mean: tuple[tuple[float, ...], ...] = ()  # [iy][ix], value units
    sd: tuple[tuple[float, ...], ...] = ()  # half the width of the +-1 sd band, value units
    obs_x: tuple[Any, ...] = ()
    obs_y: tuple[Any, ...] = ()
    obs_values: tuple[float, ...] = ()
    obs_numbers: tuple[int, ...] = ()
    best: tuple[Any, Any] | None = None


def default_pair(space: SearchSpace) -> tuple[str, str]:
    """The first two parameters that are always active (else the first two)."""
    names = [n for n, p in space.items() if not p.conditions] or list(space)
    if len(names) < 2:
        names = list(space)
    return names[0], names[1] if len(names) > 1 else names[0]


def contour(
    space: SearchSpace,
    trials: Sequence[FrozenTrial],
    direction: Direction,
    strategy: Strategy,
    x: str | None = None,
    y: str | None = None,
    *,
    n: int = 24,
    model: Any = None,
) -> Contour:
    from hpo.strategies._bayes_model import slice_values

    model = model if model is not None else fit(space, trials, direction, strategy)
    if isinstance(model, str):
        return Contour(direction, note=model)
    if len(space) < 2:
        return Contour(direction, note="the space has one parameter: see the surrogate slices")
    dx, dy = default_pair(space)
    x, y = x or dx, y or (dy if dy != x else next(n_ for n_ in space if n_ != x))
    for name in (x, y):
        if name not in space:
            from hpo.exceptions import HpoError

            raise HpoError(
                f"parameter {name!r} is not in the study's space; pick one of {', '.join(space)}."
            )
    px, py = space[x], space[y]
    vx, vy = slice_values(px, n), slice_values(py, n)
    rows = []
    base = model.best_params
    for b in vy:
        start = {**base, y: b}
        rows.append(through(model, start, x, vx))
    pts = np.concatenate(rows)
    mean, lower, upper = model.predict(pts)
    # The band's half width for +-1 sd: (upper - lower) is +-2 sd, so a quarter of it.
    sd = (upper - lower) / 4.0
    shape = (len(vy), len(vx))
    obs = [t for t in model.observed if x in t.params and y in t.params and finite(t.value)]
    return Contour(
        direction=direction,
        x_axis=axis_of(x, px),
        y_axis=axis_of(y, py),
        gx=tuple(axis_value(px, v) for v in vx),
        gy=tuple(axis_value(py, v) for v in vy),
        mean=tuple(tuple(float(v) for v in r) for r in mean.reshape(shape)),
        sd=tuple(tuple(float(v) for v in r) for r in sd.reshape(shape)),
        obs_x=tuple(axis_value(px, t.params[x]) for t in obs),
        obs_y=tuple(axis_value(py, t.params[y]) for t in obs),
        obs_values=tuple(value_or_nan(t.value) for t in obs),
        obs_numbers=tuple(t.number for t in obs),
        best=(axis_value(px, base[x]), axis_value(py, base[y]))
        if x in base and y in base
        else None,
    )


# -- the figure ----------------------------------------------------------------------------


def contour_figure(c: Contour) -> Figure:
    """The GP's mean (left) and uncertainty (right) over two parameters, the others at the
    best point; each grid cell a square marker (the basic plotly bundle has no contour)."""
    title = "Surrogate over two parameters"
    if c.note or c.x_axis is None or c.y_axis is None:
        return empty_figure(title, c.note or "nothing to draw")
    xs = [x for _ in c.gy for x in c.gx]
    ys = [y for y in c.gy for _ in c.gx]
    mean = [v for row in c.mean for v in row]
    sd = [v for row in c.sd for v in row]
    size = max(4, min(14, int(460 / max(len(c.gx), len(c.gy)))))
    layout_axes = subplot_grid(2, cols=2, gap_x=0.16)
    data: list[dict[str, Any]] = []
    for i, (label, z, scale) in enumerate((("mean", mean, "Viridis"), ("sd", sd, "Magma"))):
        xr, yr = subplot_ref(i)
        dom = layout_axes[f"xaxis{xr[1:]}"]["domain"]
        data.append(
            {
                "type": "scatter",
                "mode": "markers",
                "x": xs,
                "y": ys,
                "xaxis": xr,
                "yaxis": yr,
                "name": label,
                "showlegend": False,
                "meta": {"role": f"grid-{label}"},
                "marker": {
                    "symbol": "square",
                    "size": size,
                    "color": z,
                    "colorscale": scale,
                    "reversescale": label == "sd",
                    "line": {"width": 0},
                    "colorbar": {
                        "x": dom[1] + 0.005,
                        "len": 0.9,
                        "thickness": 12,
                        "title": {"text": label},
                    },
                },
                "hovertemplate": f"{c.x_axis.name} %{{x}}<br>{c.y_axis.name} %{{y}}<br>{label} "
                "%{marker.color:.4g}<extra></extra>",
            }
        )
        data.append(
            {
                "type": "scatter",
                "mode": "markers",
                "x": list(c.obs_x),
                "y": list(c.obs_y),
                "customdata": list(c.obs_numbers),
                "xaxis": xr,
                "yaxis": yr,
                "name": "trials",
                "showlegend": i == 0,
                "meta": {"role": "observed"},
                "marker": {"color": "white", "size": 6, "line": {"color": "black", "width": 1}},
                "hovertemplate": "trial %{customdata}<extra></extra>",
            }
        )
        if c.best is not None:
            data.append(
                {
                    "type": "scatter",
                    "mode": "markers",
                    "x": [c.best[0]],
                    "y": [c.best[1]],
                    "xaxis": xr,
                    "yaxis": yr,
                    "name": "best",
                    "showlegend": i == 0,
                    "meta": {"role": "best"},
                    "marker": {
                        "color": BEST_COLOR,
                        "size": 13,
                        "symbol": "star",
                        "line": {"color": "white", "width": 1},
                    },
                }
            )
        layout_axes[f"xaxis{xr[1:]}"].update(
            {"title": {"text": c.x_axis.name}, **axis_type(c.x_axis)}
        )
        layout_axes[f"yaxis{yr[1:]}"].update(
            {"title": {"text": c.y_axis.name}, **axis_type(c.y_axis)}
        )
    notes = [
        subplot_title("posterior mean", "x", "y"),
        subplot_title("uncertainty (sd)", "x2", "y2"),
    ]
    return {
        "data": data,
        "layout": figure_layout(
            f"{title}: {c.x_axis.name} × {c.y_axis.name} (others at the best point)",
            height=460,
            annotations=notes,
            legend={"orientation": "h", "y": -0.18},
            meta={"x": c.x_axis.name, "y": c.y_axis.name},
            **layout_axes,
        ),
    }
