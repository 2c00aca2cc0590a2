"""Plotly figures of the plot data, as plain dicts (``{"data": [...], "layout": {...}}``).

Plain dicts, not ``plotly.graph_objects``: the server sends them to the page as JSON and the
page draws them with plotly.js (``Plotly.react``); ``hpo plot -o x.html`` hands the same dict
to ``plotly.io.write_html``, which also validates it. Building dicts needs no plotly import.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hpo.plots._data import (
    IMPORTANCE_METHOD,
    Axis,
    Curve,
    History,
    Importance,
    Slice,
    curves,
    history,
    importance,
    parallel,
    slices,
)
from hpo.plots._parallel import parallel_figure
from hpo.plots._style import BEST_COLOR, STATE_COLORS, Figure, empty_figure, figure_layout
from hpo.space import SearchSpace
from hpo.trial import Direction, FrozenTrial, TrialState

__all__ = [
    "KINDS",
    "STATE_COLORS",
    "curves_figure",
    "figure",
    "history_figure",
    "importance_figure",
    "parallel_figure",
    "slices_figure",
]

#: The plots, in the order the dashboard shows them.
KINDS = ("history", "parallel", "importance", "slices", "curves")

# The colours of the highlighted learning curves, in turn.
_HIGHLIGHT = ["#d62728", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22"]


def history_figure(h: History) -> Figure:
    title = f"Optimisation history ({h.direction.value})"
    if not h.numbers and not h.pruned_numbers:
        return empty_figure(title, "no completed trials yet")
    data: list[dict[str, Any]] = [
        {
            "type": "scatter",
            "mode": "markers",
            "name": "value",
            "x": list(h.numbers),
            "y": list(h.values),
            "marker": {"color": STATE_COLORS[TrialState.COMPLETE], "size": 6},
            "hovertemplate": "trial %{x}<br>value %{y:.6g}<extra></extra>",
        },
        {
            "type": "scatter",
            "mode": "lines",
            "name": "best so far",
            "x": list(h.numbers),
            "y": list(h.best),
            "line": {"color": BEST_COLOR, "shape": "hv", "width": 2},
            "hovertemplate": "after trial %{x}<br>best %{y:.6g}<extra></extra>",
        },
    ]
    if h.pruned_numbers:
        data.append(
            {
                "type": "scatter",
                "mode": "markers",
                "name": "pruned (last reported)",
                "x": list(h.pruned_numbers),
                "y": list(h.pruned_values),
                "marker": {"color": STATE_COLORS[TrialState.PRUNED], "symbol": "x", "size": 7},
                "hovertemplate": "trial %{x} (pruned)<br>last %{y:.6g}<extra></extra>",
            }
        )
    if h.n_failed:
        title += f" · {h.n_failed} failed trial(s) not shown"
    return {
        "data": data,
        "layout": figure_layout(
            title,
            xaxis={"title": {"text": "trial"}},
            yaxis={"title": {"text": "value"}},
            legend={"orientation": "h", "y": -0.2},
        ),
    }


def importance_figure(imp: Importance) -> Figure:
    title = f"Parameter importance ({imp.n_trials} completed trials)"
    if imp.note:
        return empty_figure(title, imp.note)
    names = list(reversed(imp.names))  # largest on top
    scores = list(reversed(imp.scores))
    fig: Figure = {
        "data": [
            {
                "type": "bar",
                "orientation": "h",
                "name": "importance",
                "x": scores,
                "y": names,
                "marker": {"color": STATE_COLORS[TrialState.COMPLETE]},
                "text": [f"{s:.2f}" for s in scores],
                "textposition": "auto",
                "hovertemplate": "%{y}: %{x:.3f}<extra></extra>",
            }
        ],
        "layout": figure_layout(
            title,
            xaxis={"title": {"text": "share of importance"}, "range": [0, 1]},
            yaxis={"automargin": True},
        ),
    }
    fig["layout"]["meta"] = {"method": IMPORTANCE_METHOD}
    return fig


def _slice_axis(axis: Axis) -> dict[str, Any]:
    """The x axis of one slice, as ``relayout`` keys (the dropdown switches between them)."""
    keys: dict[str, Any] = {
        "xaxis.title.text": axis.name,
        "xaxis.type": {"log": "log", "category": "category"}.get(axis.scale, "linear"),
        "xaxis.autorange": True,
    }
    if axis.scale == "category":
        keys["xaxis.categoryorder"] = "array"
        keys["xaxis.categoryarray"] = list(axis.categories)
    return keys


def slices_figure(sl: Sequence[Slice]) -> Figure:
    """The value of completed trials against one parameter at a time, with a dropdown to pick
    the parameter: one set of markers on screen, however many parameters the space has (a
    grid of 1,000 trials × 15 parameters would be 15,000 SVG markers to draw)."""
    title = "Slice: value against a parameter"
    if not any(s.numbers for s in sl):
        return empty_figure(title, "no completed trials yet")
    shown = next(i for i, s in enumerate(sl) if s.numbers)
    data: list[dict[str, Any]] = [
        {
            "type": "scatter",
            "mode": "markers",
            "name": s.axis.name,
            "x": list(s.x),
            "y": list(s.y),
            "customdata": list(s.numbers),
            "visible": i == shown,
            "marker": {"color": STATE_COLORS[TrialState.COMPLETE], "size": 6, "opacity": 0.75},
            "hovertemplate": f"trial %{{customdata}}<br>{s.axis.name} %{{x}}"
            "<br>value %{y:.6g}<extra></extra>",
        }
        for i, s in enumerate(sl)
    ]
    buttons = [
        {
            "label": f"{s.axis.name} ({len(s.numbers)})",
            "method": "update",
            "args": [{"visible": [j == i for j in range(len(sl))]}, _slice_axis(s.axis)],
        }
        for i, s in enumerate(sl)
    ]
    first = _slice_axis(sl[shown].axis)
    xaxis: dict[str, Any] = {"title": {"text": first["xaxis.title.text"]}}
    xaxis.update({k.split(".", 1)[1]: v for k, v in first.items() if k.count(".") == 1})
    return {
        "data": data,
        "layout": figure_layout(
            title,
            showlegend=False,
            xaxis=xaxis,
            yaxis={"title": {"text": "value"}},
            updatemenus=[
                {
                    "buttons": buttons,
                    "active": shown,
                    "direction": "down",
                    "showactive": True,
                    "x": 1.0,
                    "xanchor": "right",
                    "y": 1.14,
                    "yanchor": "top",
                }
            ],
        ),
    }


def _joined(cs: Sequence[Curve]) -> tuple[list[Any], list[Any], list[Any]]:
    """Many curves as one trace: points separated by gaps (None). One trace draws a thousand
    curves far faster than a thousand traces."""
    xs: list[Any] = []
    ys: list[Any] = []
    ids: list[Any] = []
    for c in cs:
        xs.extend(c.steps)
        ys.extend(c.values)
        ids.extend([c.number] * len(c.steps))
        xs.append(None)
        ys.append(None)
        ids.append(None)
    return xs, ys, ids


def curves_figure(
    cs: Sequence[Curve], highlight: Sequence[int] = (), *, only_highlighted: bool = False
) -> Figure:
    """All learning curves by state, the ``highlight``-ed trials drawn on top in colour.

    ``only_highlighted`` draws just those (the compare view). Trace ``meta`` holds the trial
    numbers a trace draws, so the page can count and pick them.
    """
    title = "Learning curves (intermediate values)"
    if not cs:
        return empty_figure(title, "no trial has reported intermediate values yet")
    wanted = list(dict.fromkeys(int(n) for n in highlight))
    data: list[dict[str, Any]] = []
    if not only_highlighted:
        for state in (
            TrialState.COMPLETE,
            TrialState.PRUNED,
            TrialState.FAILED,
            TrialState.RUNNING,
        ):
            group = [c for c in cs if c.state is state]
            if not group:
                continue
            xs, ys, ids = _joined(group)
            trace = {
                "type": "scatter",
                "mode": "lines",
                "name": f"{state.value} ({len(group)})",
                "x": xs,
                "y": ys,
                "customdata": ids,
                "meta": {"trials": [c.number for c in group], "state": state.value},
                "connectgaps": False,
                "opacity": 0.45,
                "line": {"color": STATE_COLORS[state], "width": 1},
                "hovertemplate": "trial %{customdata}<br>step %{x}<br>%{y:.6g}<extra></extra>",
            }
            if any(len(c.steps) == 1 for c in group):
                # A line through one point draws nothing: such curves get a marker.
                trace["mode"] = "lines+markers"
                sizes: list[int] = []
                for one in group:  # as _joined lays the points out: the steps, then a gap
                    sizes.extend([5 if len(one.steps) == 1 else 0] * len(one.steps) + [0])
                trace["marker"] = {"size": sizes, "color": STATE_COLORS[state]}
            data.append(trace)
    by_number = {c.number: c for c in cs}
    for i, n in enumerate(wanted):
        c = by_number.get(n)
        if c is None:
            continue
        data.append(
            {
                "type": "scatter",
                "mode": "lines+markers",
                "name": f"trial {n} ({c.state.value})",
                "x": list(c.steps),
                "y": list(c.values),
                "meta": {"trials": [n], "highlight": True},
                "line": {"color": _HIGHLIGHT[i % len(_HIGHLIGHT)], "width": 3},
                "marker": {"size": 5},
                "hovertemplate": f"trial {n}<br>step %{{x}}<br>%{{y:.6g}}<extra></extra>",
            }
        )
    if only_highlighted and not data:
        return empty_figure(title, "the selected trials reported no intermediate values")
    return {
        "data": data,
        "layout": figure_layout(
            title,
            xaxis={"title": {"text": "step"}},
            yaxis={"title": {"text": "intermediate value"}},
            legend={"orientation": "h", "y": -0.2},
        ),
    }


def figure(
    kind: str,
    trials: Sequence[FrozenTrial],
    space: SearchSpace,
    direction: Direction,
    *,
    highlight: Sequence[int] = (),
    only_highlighted: bool = False,
    importance_data: Importance | None = None,
) -> Figure:
    """The figure of ``kind`` (one of :data:`KINDS`) for these trials.

    ``importance_data`` reuses an importance already computed (the server caches it: it is
    the one plot that costs more than reading the trials).
    """
    if kind == "history":
        return history_figure(history(trials, direction))
    if kind == "parallel":
        return parallel_figure(parallel(trials, space), direction)
    if kind == "importance":
        return importance_figure(importance_data or importance(trials, space))
    if kind == "slices":
        return slices_figure(slices(trials, space))
    if kind == "curves":
        return curves_figure(curves(trials), highlight, only_highlighted=only_highlighted)
    from hpo.exceptions import HpoError

    raise HpoError(f"plot kind must be one of {list(KINDS)}, got {kind!r}.")
