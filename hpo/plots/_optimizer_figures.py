"""Plotly figures (plain dicts) of what the optimiser thinks: :mod:`hpo.plots._optimizer`.

Only scatter and bar traces: the dashboard's vendored plotly.js is the "basic" bundle (no
heatmap or contour), so the 2-D view draws its grid as square markers. ``hpo plot`` writes
the same dicts to HTML, and draws them with matplotlib for PNG (:func:`save_png`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hpo.plots._data import Axis
from hpo.plots._figures import BEST_COLOR, STATE_COLORS, Figure, _empty, _layout
from hpo.plots._optimizer import (
    CONVERGED,
    Contour,
    Coverage,
    Edf,
    Learning,
    Surrogate,
    Timeline,
    TpeDensities,
)
from hpo.trial import TrialState

__all__ = [
    "OPTIMIZER_KINDS",
    "acquisition_figure",
    "contour_figure",
    "coverage_figure",
    "edf_figure",
    "learning_figure",
    "save_png",
    "surrogate_figure",
    "timeline_figure",
    "tpe_figure",
]

#: The optimiser's views (``hpo plot --kind``, the dashboard's optimiser section).
OPTIMIZER_KINDS = (
    "surrogate",
    "acquisition",
    "contour",
    "learning",
    "tpe",
    "coverage",
    "timeline",
    "edf",
)

MEAN_COLOR = "#4c78a8"
BAND_COLOR = "rgba(76,120,168,0.18)"
OBS_COLOR = "#333333"
NEXT_COLOR = "#9467bd"
RUNNING_COLOR = STATE_COLORS[TrialState.RUNNING]
GOOD_COLOR = "#2ca02c"
BAD_COLOR = "#d62728"
_ROW_PX = 230


def _grid(n: int, cols: int = 3, gap_x: float = 0.07, gap_y: float = 0.1) -> dict[str, Any]:
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


def _ref(i: int) -> tuple[str, str]:
    k = "" if i == 0 else str(i + 1)
    return f"x{k}", f"y{k}"


def _axis_type(axis: Axis) -> dict[str, Any]:
    if axis.scale == "log":
        return {"type": "log"}
    if axis.scale == "category":
        return {
            "type": "category",
            "categoryorder": "array",
            "categoryarray": list(axis.categories),
        }
    return {}


def _pos(axis: Axis, v: Any) -> Any:
    """Where a shape goes on ``axis``: a category's index (a category named "32" would be
    read as index 32), else the value."""
    if axis.scale == "category" and str(v) in axis.categories:
        return axis.categories.index(str(v))
    return v


def _vline(xref: str, yref: str, x: Any, color: str, dash: str = "dash") -> dict[str, Any]:
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


def _title(text: str, xref: str, yref: str) -> dict[str, Any]:
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


# -- the surrogate ---------------------------------------------------------------------------


def surrogate_figure(s: Surrogate) -> Figure:
    """Per parameter: the GP's mean ± 2 sd through the best point, the observed trials over
    it, the best point and the likely next proposal marked. Traces carry ``meta``:
    ``{"role": "observed" | "mean" | "band" | ..., "param": name}``."""
    title = "Surrogate: the GP's mean ± 2 sd along each parameter, through the best point"
    if s.note:
        return _empty(title, s.note)
    data: list[dict[str, Any]] = []
    shapes: list[dict[str, Any]] = []
    notes: list[dict[str, Any]] = []
    layout_axes = _grid(len(s.slices))
    for i, sl in enumerate(s.slices):
        xr, yr = _ref(i)
        name = sl.axis.name
        common = {"xaxis": xr, "yaxis": yr, "showlegend": i == 0}
        data += [
            {
                "type": "scatter",
                "mode": "lines",
                "x": list(sl.x),
                "y": list(sl.lower),
                "line": {"width": 0},
                "hoverinfo": "skip",
                "name": "lower",
                "meta": {"role": "lower", "param": name},
                **common,
                "showlegend": False,
            },
            {
                "type": "scatter",
                "mode": "lines",
                "x": list(sl.x),
                "y": list(sl.upper),
                "fill": "tonexty",
                "fillcolor": BAND_COLOR,
                "line": {"width": 0},
                "name": "mean ± 2 sd",
                "legendgroup": "band",
                "meta": {"role": "band", "param": name},
                "hoverinfo": "skip",
                **common,
            },
            {
                "type": "scatter",
                "mode": "lines+markers" if sl.axis.scale == "category" else "lines",
                "x": list(sl.x),
                "y": list(sl.mean),
                "name": "GP mean",
                "legendgroup": "mean",
                "line": {"color": MEAN_COLOR, "width": 2},
                "meta": {"role": "mean", "param": name},
                "hovertemplate": f"{name} %{{x}}<br>mean %{{y:.4g}}<extra></extra>",
                **common,
            },
            {
                "type": "scatter",
                "mode": "markers",
                "x": list(sl.obs_x),
                "y": list(sl.obs_y),
                "customdata": list(sl.obs_numbers),
                "name": "trials",
                "legendgroup": "obs",
                "marker": {"color": OBS_COLOR, "size": 5, "opacity": 0.55},
                "meta": {"role": "observed", "param": name},
                "hovertemplate": f"trial %{{customdata}}<br>{name} %{{x}}<br>value %{{y:.4g}}"
                "<extra></extra>",
                **common,
            },
        ]
        shapes.append(_vline(xr, yr, _pos(sl.axis, sl.best_x), BEST_COLOR, "dot"))
        if sl.next_x is not None:
            shapes.append(_vline(xr, yr, _pos(sl.axis, sl.next_x), NEXT_COLOR))
        notes.append(_title(name, xr, yr))
        layout_axes[f"xaxis{xr[1:]}"].update(_axis_type(sl.axis))
    rows = math.ceil(len(s.slices) / 3)
    best = (
        f" · best trial {s.best_number} ({s.best_value:.4g})" if s.best_number is not None else ""
    )
    return {
        "data": data,
        "layout": _layout(
            title + best,
            height=_ROW_PX * rows + 90,
            shapes=shapes,
            annotations=notes,
            legend={"orientation": "h", "y": -0.06 if rows > 1 else -0.2},
            meta={
                "next": dict(s.next_params),
                "n_running": s.n_running,
                # The model at each observed trial: its mean and mean -/+ 2 noise sd.
                "fit": {
                    "numbers": list(s.fit_numbers),
                    "values": list(s.fit_values),
                    "mean": list(s.fit_mean),
                    "lower": list(s.fit_lower),
                    "upper": list(s.fit_upper),
                    "noise_sd": s.noise_sd,
                },
            },
            **layout_axes,
        ),
    }


def acquisition_figure(s: Surrogate) -> Figure:
    """log expected improvement (what bayes maximises, running trials fantasised) along the
    same slices; the likely next point (purple) and the running trials (green) marked."""
    title = "Acquisition: log expected improvement along each parameter"
    if s.note:
        return _empty(title, s.note)
    data: list[dict[str, Any]] = []
    shapes: list[dict[str, Any]] = []
    notes: list[dict[str, Any]] = []
    layout_axes = _grid(len(s.slices))
    for i, sl in enumerate(s.slices):
        xr, yr = _ref(i)
        name = sl.axis.name
        data.append(
            {
                "type": "scatter",
                "mode": "lines+markers" if sl.axis.scale == "category" else "lines",
                "x": list(sl.x),
                "y": list(sl.acq),
                "xaxis": xr,
                "yaxis": yr,
                "name": "log EI",
                "showlegend": i == 0,
                "legendgroup": "acq",
                "line": {"color": "#f58518", "width": 2},
                "meta": {"role": "acquisition", "param": name},
                "hovertemplate": f"{name} %{{x}}<br>log EI %{{y:.3g}}<extra></extra>",
            }
        )
        if sl.running_x:
            low = min((v for v in sl.acq if math.isfinite(v)), default=0.0)
            data.append(
                {
                    "type": "scatter",
                    "mode": "markers",
                    "x": list(sl.running_x),
                    "y": [low] * len(sl.running_x),
                    "customdata": list(sl.running_numbers),
                    "xaxis": xr,
                    "yaxis": yr,
                    "name": "running trials",
                    "showlegend": i == 0,
                    "legendgroup": "running",
                    "marker": {"color": RUNNING_COLOR, "size": 10, "symbol": "triangle-up"},
                    "meta": {"role": "running", "param": name},
                    "hovertemplate": "running trial %{customdata}<br>%{x}<extra></extra>",
                }
            )
            for v in sl.running_x:
                shapes.append(_vline(xr, yr, _pos(sl.axis, v), RUNNING_COLOR, "dot"))
        if sl.next_x is not None:
            shapes.append(_vline(xr, yr, _pos(sl.axis, sl.next_x), NEXT_COLOR))
        notes.append(_title(name, xr, yr))
        layout_axes[f"xaxis{xr[1:]}"].update(_axis_type(sl.axis))
        finite = [v for v in sl.acq if math.isfinite(v)]
        if finite and max(finite) - min(finite) > 25:  # log EI plunges near observed points
            top = max(finite)
            layout_axes[f"yaxis{yr[1:]}"]["range"] = [top - 25, top + 1]
    rows = math.ceil(len(s.slices) / 3)
    return {
        "data": data,
        "layout": _layout(
            title + " · purple: the likely next point · green: running trials",
            height=_ROW_PX * rows + 90,
            shapes=shapes,
            annotations=notes,
            legend={"orientation": "h", "y": -0.06 if rows > 1 else -0.2},
            meta={"next": dict(s.next_params)},
            **layout_axes,
        ),
    }


# -- contour -------------------------------------------------------------------------------


def contour_figure(c: Contour) -> Figure:
    """The GP's mean (left) and uncertainty (right) over two parameters, the others at the
    best point; each grid cell a square marker (the basic plotly bundle has no contour)."""
    title = "Surrogate over two parameters"
    if c.note or c.x_axis is None or c.y_axis is None:
        return _empty(title, c.note or "nothing to draw")
    xs = [x for _ in c.gy for x in c.gx]
    ys = [y for y in c.gy for _ in c.gx]
    mean = [v for row in c.mean for v in row]
    sd = [v for row in c.sd for v in row]
    size = max(4, min(14, int(460 / max(len(c.gx), len(c.gy)))))
    layout_axes = _grid(2, cols=2, gap_x=0.16)
    data: list[dict[str, Any]] = []
    for i, (label, z, scale) in enumerate((("mean", mean, "Viridis"), ("sd", sd, "Magma"))):
        xr, yr = _ref(i)
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
            {"title": {"text": c.x_axis.name}, **_axis_type(c.x_axis)}
        )
        layout_axes[f"yaxis{yr[1:]}"].update(
            {"title": {"text": c.y_axis.name}, **_axis_type(c.y_axis)}
        )
    notes = [_title("posterior mean", "x", "y"), _title("uncertainty (sd)", "x2", "y2")]
    return {
        "data": data,
        "layout": _layout(
            f"{title}: {c.x_axis.name} × {c.y_axis.name} (others at the best point)",
            height=460,
            annotations=notes,
            legend={"orientation": "h", "y": -0.18},
            meta={"x": c.x_axis.name, "y": c.y_axis.name},
            **layout_axes,
        ),
    }


# -- still learning? -----------------------------------------------------------------------


def learning_figure(lr: Learning) -> Figure:
    title = "Is it still learning? Expected improvement of each proposal, when it was made"
    if lr.note and not lr.numbers:
        return _empty(title, lr.note)
    pct = [max(v * 100, 1e-6) for v in lr.relative]
    colors = {"converged": "#54a24b", "slowing": "#f58518", "learning": "#4c78a8"}
    return {
        "data": [
            {
                "type": "scatter",
                "mode": "lines+markers",
                "x": list(lr.numbers),
                "y": pct,
                "name": "expected improvement",
                "meta": {"role": "ei"},
                "customdata": list(lr.ei),
                "line": {"color": "#4c78a8"},
                "marker": {"size": 6},
                "hovertemplate": "trial %{x}<br>expected %{y:.3g}% "
                "(%{customdata:.4g} in value)<extra></extra>",
            },
            {
                "type": "scatter",
                "mode": "lines",
                "name": f"{CONVERGED:.1%}",
                "x": [min(lr.numbers), max(lr.numbers)],
                "y": [CONVERGED * 100] * 2,
                "line": {"color": "#888", "dash": "dash", "width": 1},
                "meta": {"role": "threshold"},
                "hoverinfo": "skip",
            },
        ],
        "layout": _layout(
            title,
            xaxis={"title": {"text": "trial"}},
            yaxis={"title": {"text": "expected improvement (% of best)"}, "type": "log"},
            showlegend=False,
            annotations=[
                {
                    "text": lr.hint,
                    "xref": "paper",
                    "yref": "paper",
                    "x": 0,
                    "y": 1.0,
                    "xanchor": "left",
                    "yanchor": "bottom",
                    "showarrow": False,
                    "font": {"size": 12, "color": colors.get(lr.verdict, "#333")},
                }
            ],
            margin={"l": 60, "r": 20, "t": 60, "b": 50},
            meta={"hint": lr.hint, "verdict": lr.verdict},
        ),
    }


# -- tpe and coverage ------------------------------------------------------------------------


def tpe_figure(d: TpeDensities) -> Figure:
    title = "TPE: density of the best trials (good) and of the rest (bad)"
    if d.note:
        return _empty(title, d.note)
    data: list[dict[str, Any]] = []
    notes = []
    layout_axes = _grid(len(d.densities))
    for i, den in enumerate(d.densities):
        xr, yr = _ref(i)
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
        notes.append(_title(f"{den.axis.name} ({den.n_good} good / {den.n_bad} bad)", xr, yr))
        layout_axes[f"xaxis{xr[1:]}"].update(_axis_type(den.axis))
    rows = math.ceil(len(d.densities) / 3)
    return {
        "data": data,
        "layout": _layout(
            f"{title}; gamma = {d.gamma}; TPE samples where good/bad is largest",
            height=_ROW_PX * rows + 90,
            annotations=notes,
            barmode="group",
            legend={"orientation": "h", "y": -0.06 if rows > 1 else -0.2},
            **layout_axes,
        ),
    }


def coverage_figure(c: Coverage) -> Figure:
    title = f"Coverage: trials per part of each parameter's range ({c.n_trials} trials"
    title += f", {c.n_distinct} distinct"
    title += f" of a {c.grid_size}-point grid)" if c.grid_size else ")"
    if not c.n_trials:
        return _empty(title, "no trial yet")
    data: list[dict[str, Any]] = []
    notes = []
    layout_axes = _grid(len(c.params))
    for i, p in enumerate(c.params):
        xr, yr = _ref(i)
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
        notes.append(_title(f"{p.axis.name}: {p.filled:.0%} of bins tried", xr, yr))
    rows = math.ceil(len(c.params) / 3)
    return {
        "data": data,
        "layout": _layout(title, height=_ROW_PX * rows + 60, annotations=notes, **layout_axes),
    }


# -- the workers -----------------------------------------------------------------------------


def _iso(t: Any) -> str:
    return str(t.isoformat())


def _ms(a: Any, b: Any) -> float:
    return float((b - a).total_seconds() * 1000.0)


def _dur(s: float | None) -> str:
    if s is None:
        return "?"
    if s < 120:
        return f"{s:.0f} s"
    if s < 7200:
        return f"{s / 60:.1f} min"
    return f"{s / 3600:.1f} h"


def timeline_figure(tl: Timeline) -> Figure:
    """One row per worker (host and GPU, or host and process): each trial a bar coloured by
    state, idle gaps in grey; the row's label says how busy it was. Running trials' hover
    gives their epoch and ETA."""
    title = "Workers: trials over time"
    if tl.note:
        return _empty(title, tl.note)
    label = {ln: f"{ln} · {b:.0%} busy" for ln, b in zip(tl.lanes, tl.busy, strict=True)}
    eta = {r.number: r for r in tl.running}
    data: list[dict[str, Any]] = []
    for state in TrialState:
        bars = [b for b in tl.bars if b.state is state]
        if not bars:
            continue
        text = []
        for b in bars:
            r = eta.get(b.number)
            if r is not None:
                ep = f"epoch {r.epoch}/{r.epochs or '?'}" if r.epoch else "no epoch yet"
                text.append(
                    f"trial {b.number} · running {_dur(r.elapsed_s)} · {ep} · ETA {_dur(r.eta_s)}"
                )
            else:
                text.append(f"trial {b.number} · {state.value} · {_dur(_ms(b.start, b.end) / 1e3)}")
        data.append(
            {
                "type": "bar",
                "orientation": "h",
                "name": state.value,
                "y": [label[b.lane] for b in bars],
                "x": [_ms(b.start, b.end) for b in bars],
                "base": [_iso(b.start) for b in bars],
                "customdata": [b.number for b in bars],
                "text": text,
                "textposition": "none",
                "hovertemplate": "%{text}<extra></extra>",
                "marker": {"color": STATE_COLORS[state], "line": {"width": 0.5, "color": "white"}},
                "meta": {"role": "trials", "state": state.value},
            }
        )
    if tl.idle:
        data.append(
            {
                "type": "bar",
                "orientation": "h",
                "name": "idle",
                "y": [label[ln] for ln, _a, _b in tl.idle],
                "x": [_ms(a, b) for _ln, a, b in tl.idle],
                "base": [_iso(a) for _ln, a, _b in tl.idle],
                "text": [f"idle {_dur(_ms(a, b) / 1e3)}" for _ln, a, b in tl.idle],
                "textposition": "none",
                "hovertemplate": "%{text}<extra></extra>",
                "marker": {"color": "rgba(180,180,180,0.35)"},
                "meta": {"role": "idle"},
            }
        )
    busy = sum(tl.busy) / len(tl.busy) if tl.busy else 0.0
    running = ", ".join(
        f"#{r.number} epoch {r.epoch or 0}/{r.epochs or '?'} ETA {_dur(r.eta_s)}"
        for r in tl.running[:6]
    )
    sub = f" · {len(tl.lanes)} workers, {busy:.0%} busy on average"
    if running:
        sub += f" · running: {running}"
    return {
        "data": data,
        "layout": _layout(
            title + sub,
            barmode="overlay",
            height=max(260, 34 * len(tl.lanes) + 140),
            xaxis={"type": "date", "title": {"text": "time (UTC)"}},
            yaxis={"automargin": True, "categoryorder": "category descending"},
            legend={"orientation": "h", "y": -0.25},
            meta={
                "running": [
                    {
                        "number": r.number,
                        "worker": r.lane,
                        "epoch": r.epoch,
                        "epochs": r.epochs,
                        "elapsed_s": r.elapsed_s,
                        "eta_s": r.eta_s,
                    }
                    for r in tl.running
                ],
                "busy": dict(zip(tl.lanes, tl.busy, strict=True)),
            },
        ),
    }


def edf_figure(e: Edf) -> Figure:
    title = "Empirical distribution of the values (completed trials)"
    if not e.values:
        return _empty(title, "no completed trials yet")
    return {
        "data": [
            {
                "type": "scatter",
                "mode": "lines",
                "x": list(e.values),
                "y": list(e.fractions),
                "line": {"shape": "hv", "color": MEAN_COLOR, "width": 2},
                "name": "EDF",
                "meta": {"role": "edf"},
                "hovertemplate": "%{y:.0%} of trials have value ≤ %{x:.4g}<extra></extra>",
            }
        ],
        "layout": _layout(
            title,
            xaxis={"title": {"text": f"value ({e.direction.value})"}},
            yaxis={"title": {"text": "share of trials ≤ value"}, "range": [0, 1.02]},
            showlegend=False,
        ),
    }


# -- PNG through matplotlib ------------------------------------------------------------------


def _mpl_color(c: Any) -> Any:
    """plotly's ``rgba(r,g,b,a)`` as matplotlib's (r, g, b, a) in [0, 1]; others as given."""
    if isinstance(c, str) and c.startswith("rgba("):
        r, g, b, a = (float(v) for v in c[5:-1].split(","))
        return (r / 255, g / 255, b / 255, a)
    return c


def _mpl_x(values: Sequence[Any], cats: dict[str, int]) -> list[Any]:
    out: list[Any] = []
    for v in values:
        if isinstance(v, str):
            out.append(cats.setdefault(v, len(cats)))
        else:
            out.append(v)
    return out


def save_png(fig: Figure, path: str | Path) -> None:
    """Draw one of these figures with matplotlib: its scatter (lines, markers, filled bands)
    and bar traces, subplot by subplot. Less polished than the HTML, enough for a report."""
    import datetime as _dt

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    layout = fig["layout"]
    height = float(layout.get("height", 450))
    mfig = plt.figure(figsize=(12, max(3.5, height / 80)), dpi=100)
    axes: dict[str, Any] = {}
    cats: dict[str, dict[str, int]] = {}

    def axis_for(xr: str) -> Any:
        if xr in axes:
            return axes[xr]
        k = xr[1:]
        xd = layout.get(f"xaxis{k}", {}).get("domain", [0, 1])
        yd = layout.get(f"yaxis{k}", {}).get("domain", [0, 1])
        ax = mfig.add_axes(
            (0.06 + xd[0] * 0.9, 0.08 + yd[0] * 0.8, (xd[1] - xd[0]) * 0.9, (yd[1] - yd[0]) * 0.8)
        )
        xa, ya = layout.get(f"xaxis{k}", {}), layout.get(f"yaxis{k}", {})
        if xa.get("type") == "log":
            ax.set_xscale("log")
        if ya.get("type") == "log":
            ax.set_yscale("log")
        axes[xr] = ax
        return ax

    for note in layout.get("annotations", []):
        ref = str(note.get("xref", "")).split(" ")[0]
        if ref.startswith("x"):
            axis_for(ref).set_title(
                str(note["text"]).replace("<b>", "").replace("</b>", ""), fontsize=9
            )
    prev: dict[str, tuple[list[Any], list[Any]]] = {}
    for tr in fig["data"]:
        xr = tr.get("xaxis", "x")
        ax = axis_for(xr)
        c = cats.setdefault(xr, {})
        xs = tr.get("x", [])
        if layout.get(f"xaxis{xr[1:]}", {}).get("type") == "date" and tr.get("base") is not None:
            base = [_dt.datetime.fromisoformat(b) for b in tr["base"]]
            widths = [_dt.timedelta(milliseconds=w) for w in xs]
            ys = _mpl_x(tr.get("y", []), c)
            ax.barh(
                ys,
                widths,
                left=base,
                color=_mpl_color(tr.get("marker", {}).get("color")),
                label=tr.get("name"),
            )
            ax.set_yticks(list(c.values()), list(c.keys()), fontsize=7)
            continue
        x = _mpl_x(xs, c)
        y = tr.get("y", [])
        marker = tr.get("marker", {})
        color = marker.get("color") if isinstance(marker.get("color"), str) else None
        if tr["type"] == "bar":
            ax.bar(x, y, color=color, alpha=0.7, label=tr.get("name"))
        elif tr.get("fill") == "tonexty" and xr in prev:
            _px, py = prev[xr]
            ax.fill_between(x, py, y, color="#4c78a8", alpha=0.2, label=tr.get("name"))
        elif isinstance(marker.get("color"), list):
            ax.scatter(
                x,
                y,
                c=marker["color"],
                marker="s",
                s=marker.get("size", 6) ** 2 / 2,
                cmap="viridis",
            )
        else:
            mode = tr.get("mode", "lines")
            if "lines" in mode and tr.get("line", {}).get("width", 1) != 0:
                ax.plot(x, y, color=tr.get("line", {}).get("color"), label=tr.get("name"))
            if "markers" in mode:
                ax.scatter(x, y, s=12, color=color or "#333", label=tr.get("name"), zorder=3)
        prev[xr] = (x, y)
        if c:
            ax.set_xticks(list(c.values()), list(c.keys()), fontsize=7)
    mfig.suptitle(str(layout.get("title", {}).get("text", ""))[:150], fontsize=10)
    mfig.savefig(str(path))
    plt.close(mfig)


# -- one entry point -------------------------------------------------------------------------


def optimizer_figure(
    kind: str,
    space: Any,
    trials: Sequence[Any],
    direction: Any,
    strategy: Any,
    *,
    seed: int = 0,
    x: str | None = None,
    y: str | None = None,
    model: Any = None,
    memo: dict[str, Any] | None = None,
) -> Figure:
    """The figure of optimiser view ``kind`` (one of :data:`OPTIMIZER_KINDS`). ``model`` reuses
    a fit (:func:`hpo.plots._optimizer.fit`) for the bayes views; ``memo`` (a dict kept for
    one revision) shares the slices between the surrogate and the acquisition."""
    from hpo.plots import _optimizer as o

    if kind in ("surrogate", "acquisition"):
        memo = memo if memo is not None else {}
        if "surrogate" not in memo:
            memo["surrogate"] = o.surrogate(
                space, trials, direction, strategy, seed=seed, model=model
            )
        s = memo["surrogate"]
        return surrogate_figure(s) if kind == "surrogate" else acquisition_figure(s)
    if kind == "contour":
        return contour_figure(o.contour(space, trials, direction, strategy, x, y, model=model))
    if kind == "learning":
        return learning_figure(o.learning(space, trials, direction, strategy, model=model))
    if kind == "tpe":
        return tpe_figure(o.tpe_densities(space, trials, direction))
    if kind == "coverage":
        return coverage_figure(o.coverage(space, trials, strategy))
    if kind == "timeline":
        return timeline_figure(o.timeline(trials))
    if kind == "edf":
        return edf_figure(o.edf(trials, direction))
    from hpo.exceptions import HpoError

    raise HpoError(f"--kind must be one of {', '.join(OPTIMIZER_KINDS)}; got {kind!r}.")


def default_kinds(strategy_name: str) -> tuple[str, ...]:
    """The views that say something for a study of this strategy."""
    if strategy_name == "bayes":
        return ("surrogate", "acquisition", "contour", "learning", "timeline", "edf")
    if strategy_name == "tpe":
        return ("tpe", "timeline", "edf")
    return ("coverage", "timeline", "edf")


def write_optimizer_plot(
    study: Any, kind: str, path: str | Path, *, x: str | None = None, y: str | None = None
) -> Path:
    """Draw optimiser view ``kind`` of ``study`` into ``path`` (.html: plotly; .png:
    matplotlib). Raises HpoError for a bad kind, file type, folder or parameter, or when the
    view has nothing to show yet (the message says why)."""
    from hpo.exceptions import HpoError

    if kind not in OPTIMIZER_KINDS:
        raise HpoError(f"--kind must be one of {', '.join(OPTIMIZER_KINDS)}; got {kind!r}.")
    out = Path(path)
    if out.suffix.lower() not in (".html", ".png"):
        raise HpoError(f"the output file must end in .png or .html, got {str(out)!r}.")
    if not out.parent.is_dir():
        raise HpoError(f"folder {str(out.parent)!r} does not exist; create it first.")
    for name, flag in ((x, "--x"), (y, "--y")):
        if name is not None and name not in study.space:
            raise HpoError(
                f"{flag} {name!r} is not a parameter of study {study.name!r}; pick one of "
                f"{', '.join(study.space)}."
            )
    fig = optimizer_figure(
        kind,
        study.space,
        study.trials,
        study.direction,
        study.strategy,
        seed=study.record.seed,
        x=x,
        y=y,
    )
    if not fig["data"]:
        why = fig["layout"].get("annotations", [{}])[0].get("text", "nothing to draw")
        raise HpoError(f"study {study.name!r}: no {kind} view yet: {why}.")
    fig["layout"]["title"]["text"] = f"{study.name}: {fig['layout']['title']['text']}"
    if out.suffix.lower() == ".png":
        save_png(fig, out)
        return out
    import plotly.io as pio

    pio.write_html(fig, str(out), include_plotlyjs=True, full_html=True, auto_open=False)
    return out
