"""The surrogate and acquisition views: ``bayes``'s GP along each parameter.

Each parameter is sliced through the best point: the GP's mean ± 2 sd in the objective's units
(:func:`surrogate_figure`) and its log expected improvement, what bayes maximises, with running
trials fantasised (:func:`acquisition_figure`); the likely next proposal is marked on both.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hpo.plots._data import Axis, axis_of, axis_value, finite, value_or_nan
from hpo.plots._opt_model import fit, through
from hpo.plots._style import (
    BAND_COLOR,
    BEST_COLOR,
    MEAN_COLOR,
    NEXT_COLOR,
    OBS_COLOR,
    ROW_PX,
    RUNNING_COLOR,
    Figure,
    axis_pos,
    axis_type,
    empty_figure,
    figure_layout,
    subplot_grid,
    subplot_ref,
    subplot_title,
    vline,
)
from hpo.space import SearchSpace
from hpo.strategies._base import Strategy
from hpo.trial import Direction, FrozenTrial, TrialState

__all__ = ["ParamSlice", "Surrogate", "acquisition_figure", "surrogate", "surrogate_figure"]

N_CANDIDATES = 2048  # points scored to find the likely next proposal (as bayes does)


@dataclass(frozen=True)
class ParamSlice:
    """The model along one parameter, the others held at the best point."""

    axis: Axis
    x: tuple[Any, ...]  # values visited; categories as strings
    mean: tuple[float, ...]  # posterior mean, value units
    lower: tuple[float, ...]  # mean -/+ 2 sd mapped to value units
    upper: tuple[float, ...]
    acq: tuple[float, ...]  # log expected improvement (model units), what bayes maximises
    obs_numbers: tuple[int, ...]
    obs_x: tuple[Any, ...]
    obs_y: tuple[float, ...]
    best_x: Any
    next_x: Any  # the likely next proposal's value (None: inactive there)
    running_numbers: tuple[int, ...] = ()
    running_x: tuple[Any, ...] = ()


@dataclass(frozen=True)
class Surrogate:
    direction: Direction
    note: str | None = None  # why there is no model
    slices: tuple[ParamSlice, ...] = ()
    best_number: int | None = None
    best_value: float | None = None
    next_params: Mapping[str, Any] = field(default_factory=dict)
    # At each observed trial: the model's mean and its mean -/+ 2 noise sd (value units).
    fit_numbers: tuple[int, ...] = ()
    fit_values: tuple[float, ...] = ()
    fit_mean: tuple[float, ...] = ()
    fit_lower: tuple[float, ...] = ()
    fit_upper: tuple[float, ...] = ()
    noise_sd: float = 0.0  # the GP's noise, in model (standardised) units
    n_running: int = 0
    fit_ms: float = 0.0


def _next_params(model: Any, seed: int, number: int) -> dict[str, Any]:
    """The best of ``N_CANDIDATES`` points under the acquisition (drawn as bayes draws them
    for this trial number) and the best observed point: where the next proposal's local
    searches start. The proposal itself refines this point further."""
    rng = np.random.default_rng([seed, number])
    cands = np.concatenate(
        [model.codec.sample(N_CANDIDATES, rng), model.x[[int(np.argmin(model.y))]]]
    )
    acq = model.acquisition(cands)
    return model.codec.decode(cands[int(np.argmax(acq))], rng)


def _best(model: Any) -> FrozenTrial:
    """The best completed trial (the best pruned one when none completed): the point the
    slices go through. (bayes's incumbent also counts pruned trials' last values.)"""
    order = np.argsort(model.y, kind="stable")
    for i in order:
        if model.observed[int(i)].state is TrialState.COMPLETE:
            return model.observed[int(i)]
    return model.observed[int(order[0])]


def surrogate(
    space: SearchSpace,
    trials: Sequence[FrozenTrial],
    direction: Direction,
    strategy: Strategy,
    *,
    seed: int = 0,
    model: Any = None,
) -> Surrogate:
    from hpo.strategies._bayes_model import slice_values

    t0 = time.perf_counter()
    model = model if model is not None else fit(space, trials, direction, strategy)
    if isinstance(model, str):
        return Surrogate(direction, note=model)
    best = _best(model)
    nxt = _next_params(model, seed, len(trials))
    out = []
    for name, p in space.items():
        base = model.best_params
        if name not in base:  # inactive at the best point: slice through the best trial
            active = [t for t in model.observed if name in t.params]  # where it is active
            if not active:
                continue
            idx = [model.observed.index(t) for t in active]
            base = dict(active[int(np.argmin(model.y[idx]))].params)
        values = slice_values(p)
        xs = through(model, base, name, values)
        mean, lower, upper = model.predict(xs)
        acq = model.acquisition(xs)
        obs = [t for t in model.observed if name in t.params and finite(t.value)]
        running = [t for t in model.pending if name in t.params]
        out.append(
            ParamSlice(
                axis=axis_of(name, p),
                x=tuple(axis_value(p, v) for v in values),
                mean=tuple(float(v) for v in mean),
                lower=tuple(float(v) for v in lower),
                upper=tuple(float(v) for v in upper),
                acq=tuple(float(v) for v in acq),
                obs_numbers=tuple(t.number for t in obs),
                obs_x=tuple(axis_value(p, t.params[name]) for t in obs),
                obs_y=tuple(value_or_nan(t.value) for t in obs),
                best_x=axis_value(p, base[name]),
                next_x=axis_value(p, nxt[name]) if name in nxt else None,
                running_numbers=tuple(t.number for t in running),
                running_x=tuple(axis_value(p, t.params[name]) for t in running),
            )
        )
    # The fit at the observed points: mean and mean -/+ 2 noise sd, in value units.
    m, _v = model.gp.posterior(model.x)
    nsd = math.sqrt(model.gp.noise)
    to = model.transform.to_value
    a, b = to(m - 2 * nsd), to(m + 2 * nsd)
    valued = [i for i, t in enumerate(model.observed) if finite(t.value)]
    return Surrogate(
        direction=direction,
        slices=tuple(out),
        best_number=best.number,
        best_value=value_or_nan(best.value) if finite(best.value) else None,
        next_params=nxt,
        fit_numbers=tuple(model.observed[i].number for i in valued),
        fit_values=tuple(value_or_nan(model.observed[i].value) for i in valued),
        fit_mean=tuple(float(v) for v in to(m)[valued]),
        fit_lower=tuple(float(v) for v in np.minimum(a, b)[valued]),
        fit_upper=tuple(float(v) for v in np.maximum(a, b)[valued]),
        noise_sd=nsd,
        n_running=len(model.pending),
        fit_ms=(time.perf_counter() - t0) * 1000,
    )


# -- the figures ---------------------------------------------------------------------------


def surrogate_figure(s: Surrogate) -> Figure:
    """Per parameter: the GP's mean ± 2 sd through the best point, the observed trials over
    it, the best point and the likely next proposal marked. Traces carry ``meta``:
    ``{"role": "observed" | "mean" | "band" | ..., "param": name}``."""
    title = "Surrogate: the GP's mean ± 2 sd along each parameter, through the best point"
    if s.note:
        return empty_figure(title, s.note)
    data: list[dict[str, Any]] = []
    shapes: list[dict[str, Any]] = []
    notes: list[dict[str, Any]] = []
    layout_axes = subplot_grid(len(s.slices))
    for i, sl in enumerate(s.slices):
        xr, yr = subplot_ref(i)
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
        shapes.append(vline(xr, yr, axis_pos(sl.axis, sl.best_x), BEST_COLOR, "dot"))
        _mark(sl, xr, yr, shapes, notes, layout_axes)
    best = (
        f" · best trial {s.best_number} ({s.best_value:.4g})" if s.best_number is not None else ""
    )
    return {
        "data": data,
        "layout": _layout(
            title + best,
            s,
            shapes,
            notes,
            layout_axes,
            {
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
        ),
    }


def acquisition_figure(s: Surrogate) -> Figure:
    """log expected improvement (what bayes maximises, running trials fantasised) along the
    same slices; the likely next point (purple) and the running trials (green) marked."""
    title = "Acquisition: log expected improvement along each parameter"
    if s.note:
        return empty_figure(title, s.note)
    data: list[dict[str, Any]] = []
    shapes: list[dict[str, Any]] = []
    notes: list[dict[str, Any]] = []
    layout_axes = subplot_grid(len(s.slices))
    for i, sl in enumerate(s.slices):
        xr, yr = subplot_ref(i)
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
                shapes.append(vline(xr, yr, axis_pos(sl.axis, v), RUNNING_COLOR, "dot"))
        _mark(sl, xr, yr, shapes, notes, layout_axes)
        finite = [v for v in sl.acq if math.isfinite(v)]
        if finite and max(finite) - min(finite) > 25:  # log EI plunges near observed points
            top = max(finite)
            layout_axes[f"yaxis{yr[1:]}"]["range"] = [top - 25, top + 1]
    return {
        "data": data,
        "layout": _layout(
            title + " · purple: the likely next point · green: running trials",
            s,
            shapes,
            notes,
            layout_axes,
            {"next": dict(s.next_params)},
        ),
    }


def _mark(
    sl: ParamSlice,
    xr: str,
    yr: str,
    shapes: list[dict[str, Any]],
    notes: list[dict[str, Any]],
    layout_axes: dict[str, Any],
) -> None:
    """What both views mark on a slice's subplot: the likely next point, the parameter's name
    and its axis type."""
    if sl.next_x is not None:
        shapes.append(vline(xr, yr, axis_pos(sl.axis, sl.next_x), NEXT_COLOR))
    notes.append(subplot_title(sl.axis.name, xr, yr))
    layout_axes[f"xaxis{xr[1:]}"].update(axis_type(sl.axis))


def _layout(
    title: str,
    s: Surrogate,
    shapes: list[dict[str, Any]],
    notes: list[dict[str, Any]],
    layout_axes: dict[str, Any],
    meta: dict[str, Any],
) -> dict[str, Any]:
    """The layout of a figure of the slices, three subplots a row."""
    rows = math.ceil(len(s.slices) / 3)
    return figure_layout(
        title,
        height=ROW_PX * rows + 90,
        shapes=shapes,
        annotations=notes,
        legend={"orientation": "h", "y": -0.06 if rows > 1 else -0.2},
        meta=meta,
        **layout_axes,
    )
