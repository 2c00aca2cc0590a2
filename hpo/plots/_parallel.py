"""The parallel-coordinates figure: one line per completed trial, drawn as SVG lines."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from hpo.plots._data import Axis, Parallel
from hpo.plots._style import Figure, empty_figure, figure_layout
from hpo.trial import Direction

__all__ = ["parallel_figure"]

# Viridis, sampled: the colour of a line by its value's rank (darkest = best).
_VIRIDIS = ["#440154", "#46327e", "#365c8d", "#277f8e", "#1fa187", "#4ac16d", "#a0da39", "#fde725"]
_INACTIVE = -0.12  # where an inactive parameter sits on its axis (below the range)


def _fmt(v: float) -> str:
    return f"{v:.3g}"


def _scaled(
    axis: Axis, column: Sequence[float | None]
) -> tuple[list[float], list[float], list[str]]:
    """A column on its axis scaled to [0, 1] (log10 on log scales; categories evenly spaced),
    with the tick positions and labels of the axis."""
    if axis.scale == "category":
        k = max(len(axis.categories) - 1, 1)
        ticks = [i / k for i in range(len(axis.categories))]
        labels = list(axis.categories)
        ys = [_INACTIVE if v is None else v / k for v in column]
    else:
        log = axis.scale == "log"

        def tr(v: float) -> float:
            return math.log10(v) if log and v > 0 else v

        present = [v for v in column if v is not None]
        lo = tr(axis.low if axis.low is not None else min(present, default=0.0))
        hi = tr(axis.high if axis.high is not None else max(present, default=1.0))
        span = (hi - lo) or 1.0
        ticks = [0.0, 0.5, 1.0]
        labels = [_fmt(10 ** (lo + span * t) if log else lo + span * t) for t in ticks]
        ys = [_INACTIVE if v is None else (tr(v) - lo) / span for v in column]
    if any(v is None for v in column):
        ticks.insert(0, _INACTIVE)
        labels.insert(0, "inactive")
    return ys, ticks, labels


def parallel_figure(p: Parallel, direction: Direction) -> Figure:
    """Parallel coordinates drawn with SVG lines, not plotly's WebGL ``parcoords``: this draws
    a thousand trials in tens of milliseconds with no GPU (headless browsers, remote desktops),
    where ``parcoords`` spent 1.5 s in software WebGL on the build machine. Lines are binned by
    the rank of their value into 8 colours; the best trials are drawn last, on top.

    Each line trace's ``meta.trials`` lists the trial numbers it draws.
    """
    title = "Parallel coordinates (completed trials)"
    if not p.numbers:
        return empty_figure(title, "no completed trials yet")
    names = [a.name for a in p.axes] + ["value"]
    columns: list[list[float]] = []
    annotations: list[dict[str, Any]] = []
    shapes: list[dict[str, Any]] = []
    value_axis = Axis("value", "linear", (), min(p.values), max(p.values))
    for i, (axis, col) in enumerate(
        zip([*p.axes, value_axis], [*p.columns, p.values], strict=True)
    ):
        ys, ticks, labels = _scaled(axis, col)
        columns.append(ys)
        shapes.append(
            {
                "type": "line",
                "x0": i,
                "x1": i,
                "y0": min(ticks),
                "y1": 1,
                "xref": "x",
                "yref": "y",
                "line": {"color": "#444", "width": 1},
                "layer": "above",
            }
        )
        annotations.append(
            {
                "x": i,
                "y": 1.06,
                "text": f"<b>{axis.name}</b>",
                "showarrow": False,
                "xref": "x",
                "yref": "y",
                "yanchor": "bottom",
            }
        )
        annotations.extend(
            {
                "x": i,
                "y": t,
                "text": label,
                "showarrow": False,
                "xref": "x",
                "yref": "y",
                "xanchor": "right",
                "xshift": -4,
                "font": {"size": 10, "color": "#555"},
            }
            for t, label in zip(ticks, labels, strict=True)
        )
    # Rank the trials from worst to best; cut the ranks into colour bins.
    sign = 1.0 if direction is Direction.MINIMIZE else -1.0
    order = sorted(range(len(p.numbers)), key=lambda j: -sign * p.values[j])
    bins = min(len(_VIRIDIS), len(order))
    data: list[dict[str, Any]] = []
    for b in range(bins):
        members = order[b * len(order) // bins : (b + 1) * len(order) // bins]
        line_x: list[Any] = []
        line_y: list[Any] = []
        ids: list[Any] = []
        for j in members:
            line_x.extend([*range(len(names)), None])
            line_y.extend([*(c[j] for c in columns), None])
            ids.extend([*([p.numbers[j]] * len(names)), None])
        data.append(
            {
                "type": "scatter",
                "mode": "lines",
                "x": line_x,
                "y": line_y,
                "customdata": ids,
                "meta": {"trials": [p.numbers[j] for j in members]},
                "line": {"color": _VIRIDIS[bins - 1 - b if bins > 1 else 0], "width": 1.2},
                "opacity": 0.75,
                "showlegend": False,
                "hovertemplate": "trial %{customdata}<extra></extra>",
            }
        )
    lo, hi = min(p.values), max(p.values)
    data.append(  # no line: carries the colour bar
        {
            "type": "scatter",
            "mode": "markers",
            "x": [None],
            "y": [None],
            "showlegend": False,
            "hoverinfo": "skip",
            "marker": {
                "color": [lo],
                "cmin": lo,
                "cmax": hi if hi > lo else lo + 1,
                "colorscale": "Viridis",
                "reversescale": direction is Direction.MAXIMIZE,  # darkest = best
                "showscale": True,
                "colorbar": {"title": {"text": "value"}, "thickness": 12},
            },
        }
    )
    layout = figure_layout(
        title,
        xaxis={"visible": False, "range": [-0.6, len(names) - 0.7], "fixedrange": True},
        yaxis={"visible": False, "range": [_INACTIVE - 0.08, 1.16], "fixedrange": True},
        shapes=shapes,
        annotations=annotations,
        meta={"axes": names},
        margin={"l": 30, "r": 20, "t": 40, "b": 20},
    )
    return {"data": data, "layout": layout}
