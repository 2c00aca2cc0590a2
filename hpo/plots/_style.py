"""The look every plotly figure shares: colours, the layout, the empty figure, subplot grids.

Figures are plain dicts (``{"data": [...], "layout": {...}}``): the server sends them to the page
as JSON, ``hpo plot`` writes them to HTML. The optimiser views draw several subplots into one
figure with :func:`subplot_grid` (plotly.js's basic bundle has no ``make_subplots``).
"""

from __future__ import annotations

import math
from typing import Any

from hpo.plots._data import Axis
from hpo.trial import TrialState

__all__ = [
    "BAD_COLOR",
    "BAND_COLOR",
    "BEST_COLOR",
    "GOOD_COLOR",
    "MEAN_COLOR",
    "NEXT_COLOR",
    "OBS_COLOR",
    "ROW_PX",
    "RUNNING_COLOR",
    "STATE_COLORS",
    "Figure",
    "axis_pos",
    "axis_type",
    "empty_figure",
    "figure_layout",
    "subplot_grid",
    "subplot_ref",
    "subplot_title",
    "vline",
]

STATE_COLORS = {
    TrialState.COMPLETE: "#4c78a8",
    TrialState.PRUNED: "#f58518",
    TrialState.FAILED: "#e45756",
    TrialState.RUNNING: "#54a24b",
}
BEST_COLOR = "#e45756"
MEAN_COLOR = "#4c78a8"
BAND_COLOR = "rgba(76,120,168,0.18)"
OBS_COLOR = "#333333"
NEXT_COLOR = "#9467bd"
RUNNING_COLOR = STATE_COLORS[TrialState.RUNNING]
GOOD_COLOR = "#2ca02c"
BAD_COLOR = "#d62728"
ROW_PX = 230  # height of one row of subplots
_FONT = {"family": "system-ui, -apple-system, Segoe UI, sans-serif", "size": 12}

Figure = dict[str, Any]


def figure_layout(title: str, **extra: Any) -> dict[str, Any]:
    return {
        "title": {"text": title, "x": 0.01, "font": {"size": 14}},
        "font": _FONT,
        "margin": {"l": 60, "r": 20, "t": 40, "b": 50},
        # plotly.js's own defaults (white, light grid) both in the page and in `hpo plot`'s
        # html: plotly.py would otherwise apply its grey "plotly" template to the file only.
        "template": "none",
        "hovermode": "closest",
        **extra,
    }


def empty_figure(title: str, message: str) -> Figure:
    return {
        "data": [],
        "layout": figure_layout(
            title,
            xaxis={"visible": False},
            yaxis={"visible": False},
            annotations=[
                {
                    "text": message,
                    "xref": "paper",
                    "yref": "paper",
                    "x": 0.5,
                    "y": 0.5,
                    "showarrow": False,
                    "font": {"size": 13, "color": "#888"},
                }
            ],
        ),
    }


# -- subplots (the optimiser views) --------------------------------------------------------


def subplot_grid(n: int, cols: int = 3, gap_x: float = 0.07, gap_y: float = 0.1) -> dict[str, Any]:
    """Layout axes for ``n`` subplots, ``cols`` per row: keys xaxis, xaxis2... with domains."""
    rows = max(1, math.ceil(n / cols))
    cols = min(cols, n) or 1
    w = (1 - gap_x * (cols - 1)) / cols
    h = (1 - gap_y * (rows - 1)) / rows
    out: dict[str, Any] = {}
    for i in range(n):
        r, c = divmod(i, cols)
        k = "" if i == 0 else str(i + 1)
        x0 = c * (w + gap_x)
        y1 = 1 - r * (h + gap_y)
        out[f"xaxis{k}"] = {"domain": [x0, x0 + w], "anchor": f"y{k}"}
        out[f"yaxis{k}"] = {"domain": [max(y1 - h, 0.0), y1], "anchor": f"x{k}"}
    return out


def subplot_ref(i: int) -> tuple[str, str]:
    k = "" if i == 0 else str(i + 1)
    return f"x{k}", f"y{k}"


def axis_type(axis: Axis) -> dict[str, Any]:
    if axis.scale == "log":
        return {"type": "log"}
    if axis.scale == "category":
        return {
            "type": "category",
            "categoryorder": "array",
            "categoryarray": list(axis.categories),
        }
    return {}


def axis_pos(axis: Axis, v: Any) -> Any:
    """Where a shape goes on ``axis``: a category's index (a category named "32" would be
    read as index 32), else the value."""
    if axis.scale == "category" and str(v) in axis.categories:
        return axis.categories.index(str(v))
    return v


def vline(xref: str, yref: str, x: Any, color: str, dash: str = "dash") -> dict[str, Any]:
    return {
        "type": "line",
        "xref": xref,
        "yref": f"{yref} domain",
        "x0": x,
        "x1": x,
        "y0": 0,
        "y1": 1,
        "line": {"color": color, "width": 1.5, "dash": dash},
    }


def subplot_title(text: str, xref: str, yref: str) -> dict[str, Any]:
    return {
        "text": f"<b>{text}</b>",
        "xref": f"{xref} domain",
        "yref": f"{yref} domain",
        "x": 0.5,
        "y": 1.0,
        "yanchor": "bottom",
        "showarrow": False,
        "font": {"size": 12},
    }
