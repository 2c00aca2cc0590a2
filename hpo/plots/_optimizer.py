"""What the optimiser thinks, computed from a study's stored history (issue 19).

For ``bayes``: the strategy's own GP (:mod:`hpo.strategies._bayes_model`) sliced through the
best point (:func:`surrogate`), a 2-D grid of its mean and uncertainty (:func:`contour`), and
the expected improvement of recent proposals (:func:`learning`). For ``tpe``: the good/bad
densities (:func:`tpe_densities`); for ``random`` and ``grid``: the coverage of each
parameter (:func:`coverage`). For every study: the workers' timeline (:func:`timeline`) and
the empirical distribution of values (:func:`edf`).

Each function returns a small frozen record; :mod:`hpo.plots._optimizer_figures` draws them.
"""

from __future__ import annotations

import datetime as _dt
import itertools
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hpo.plots._data import Axis, axis_of
from hpo.space import Categorical, Float, Int, SearchSpace
from hpo.strategies._base import Strategy
from hpo.trial import Direction, FrozenTrial, TrialState

__all__ = [
    "Contour",
    "Coverage",
    "Edf",
    "Learning",
    "ParamSlice",
    "Surrogate",
    "Timeline",
    "TpeDensities",
    "contour",
    "coverage",
    "edf",
    "fit",
    "learning",
    "surrogate",
    "timeline",
    "tpe_densities",
]

N_CANDIDATES = 2048  # points scored to find the likely next proposal (as bayes does)
LEARNING_WINDOW = 10  # the "last proposals" of the hint
CONVERGED = 1e-3  # relative expected improvement below which a proposal expects nothing
LEARNING_MAX = 20  # proposals whose expected improvement is computed (the most recent)


def _finite(v: float | None) -> bool:
    return v is not None and math.isfinite(v)


def _f(v: float | None) -> float:
    return math.nan if v is None else float(v)


def _shown(p: Any, v: Any) -> Any:
    return str(v) if isinstance(p, Categorical) else v


def fit(
    study_space: SearchSpace,
    trials: Sequence[FrozenTrial],
    direction: Direction,
    strategy: Strategy,
) -> Any:
    """The strategy's fitted GP (a :class:`~hpo.strategies._bayes_model.BayesModel`), or a
    string saying why there is none (not bayes, still in the initial design)."""
    from hpo.strategies._bayes import BayesStrategy
    from hpo.strategies._bayes_model import fit_model, observed_trials

    if not isinstance(strategy, BayesStrategy):
        return f"the study's strategy is {strategy.name!r}; the surrogate is bayes's model"
    model = fit_model(study_space, trials, direction, strategy)
    if model is None:
        n = sum(1 for t in observed_trials(trials) if t.value is not None)
        need = max(strategy.n_initial, 2)
        return (
            f"bayes is still in its initial design ({n} of {need} trials with a value): "
            "it fits its model after that"
        )
    return model


# -- the surrogate, sliced -------------------------------------------------------------------


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


def _through(model: Any, base: Mapping[str, Any], name: str, values: Sequence[Any]) -> np.ndarray:
    """Encoded points: ``base`` with ``name`` set to each value (children switch on or off as
    the space's conditions say; a child switched on takes its default middle value)."""
    space = model.space
    rows = []
    for v in values:
        params = {**base, name: v}
        out: dict[str, Any] = {}
        for n, p in space.items():
            if not space.is_active(n, out):
                continue
            out[n] = params[n] if n in params else p.from_unit(0.5)
        rows.append(model.codec.encode(out))
    return np.array(rows)


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
        xs = _through(model, base, name, values)
        mean, lower, upper = model.predict(xs)
        acq = model.acquisition(xs)
        obs = [t for t in model.observed if name in t.params and _finite(t.value)]
        running = [t for t in model.pending if name in t.params]
        out.append(
            ParamSlice(
                axis=axis_of(name, p),
                x=tuple(_shown(p, v) for v in values),
                mean=tuple(float(v) for v in mean),
                lower=tuple(float(v) for v in lower),
                upper=tuple(float(v) for v in upper),
                acq=tuple(float(v) for v in acq),
                obs_numbers=tuple(t.number for t in obs),
                obs_x=tuple(_shown(p, t.params[name]) for t in obs),
                obs_y=tuple(_f(t.value) for t in obs),
                best_x=_shown(p, base[name]),
                next_x=_shown(p, nxt[name]) if name in nxt else None,
                running_numbers=tuple(t.number for t in running),
                running_x=tuple(_shown(p, t.params[name]) for t in running),
            )
        )
    # The fit at the observed points: mean and mean -/+ 2 noise sd, in value units.
    m, _v = model.gp.posterior(model.x)
    nsd = math.sqrt(model.gp.noise)
    to = model.transform.to_value
    a, b = to(m - 2 * nsd), to(m + 2 * nsd)
    valued = [i for i, t in enumerate(model.observed) if _finite(t.value)]
    return Surrogate(
        direction=direction,
        slices=tuple(out),
        best_number=best.number,
        best_value=_f(best.value) if _finite(best.value) else None,
        next_params=nxt,
        fit_numbers=tuple(model.observed[i].number for i in valued),
        fit_values=tuple(_f(model.observed[i].value) for i in valued),
        fit_mean=tuple(float(v) for v in to(m)[valued]),
        fit_lower=tuple(float(v) for v in np.minimum(a, b)[valued]),
        fit_upper=tuple(float(v) for v in np.maximum(a, b)[valued]),
        noise_sd=nsd,
        n_running=len(model.pending),
        fit_ms=(time.perf_counter() - t0) * 1000,
    )


# -- contour -------------------------------------------------------------------------------


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
        rows.append(_through(model, start, x, vx))
    pts = np.concatenate(rows)
    mean, lower, upper = model.predict(pts)
    # The band's half width for +-1 sd: (upper - lower) is +-2 sd, so a quarter of it.
    sd = (upper - lower) / 4.0
    shape = (len(vy), len(vx))
    obs = [t for t in model.observed if x in t.params and y in t.params and _finite(t.value)]
    return Contour(
        direction=direction,
        x_axis=axis_of(x, px),
        y_axis=axis_of(y, py),
        gx=tuple(_shown(px, v) for v in vx),
        gy=tuple(_shown(py, v) for v in vy),
        mean=tuple(tuple(float(v) for v in r) for r in mean.reshape(shape)),
        sd=tuple(tuple(float(v) for v in r) for r in sd.reshape(shape)),
        obs_x=tuple(_shown(px, t.params[x]) for t in obs),
        obs_y=tuple(_shown(py, t.params[y]) for t in obs),
        obs_values=tuple(_f(t.value) for t in obs),
        obs_numbers=tuple(t.number for t in obs),
        best=(_shown(px, base[x]), _shown(py, base[y])) if x in base and y in base else None,
    )


# -- is it still learning? -----------------------------------------------------------------


@dataclass(frozen=True)
class Learning:
    """The expected improvement of each recent proposal, when it was made.

    For proposal ``n``: the GP with today's kernel hyper-parameters, conditioned on the trials
    that had finished when trial ``n`` started (the history it was proposed from, running
    trials left out), asked how much it expected trial ``n`` to improve on the best value
    then. ``relative`` divides by the magnitude of that best value (by the spread of the
    values when it is 0).
    """

    direction: Direction
    note: str | None = None
    numbers: tuple[int, ...] = ()
    ei: tuple[float, ...] = ()  # value units
    relative: tuple[float, ...] = ()
    best_before: tuple[float, ...] = ()
    hint: str = ""
    verdict: str = ""  # "converged" | "slowing" | "learning" | ""


def _hint(relative: Sequence[float]) -> tuple[str, str]:
    if not relative:
        return "", ""
    last = list(relative[-LEARNING_WINDOW:])
    k = len(last)
    top = max(last)
    if top < CONVERGED:
        return (
            "converged",
            f"the last {k} proposals expect < {CONVERGED:.1%} improvement: the search has "
            "likely converged; more trials are unlikely to help (widen the space or stop).",
        )
    median = float(np.median(last))
    if median < 10 * CONVERGED:
        return (
            "slowing",
            f"the last {k} proposals expect a median improvement of {median:.2%} (at most "
            f"{top:.2%}): the search is slowing down.",
        )
    return (
        "learning",
        f"the last {k} proposals expect a median improvement of {median:.1%}: the search is "
        "still learning.",
    )


def learning(
    space: SearchSpace,
    trials: Sequence[FrozenTrial],
    direction: Direction,
    strategy: Strategy,
    *,
    model: Any = None,
) -> Learning:
    from hpo.strategies._bayes_model import (
        expected_improvement_in_values,
        observed_trials,
        training_data,
    )
    from hpo.strategies._gp import GP

    model = model if model is not None else fit(space, trials, direction, strategy)
    if isinstance(model, str):
        return Learning(direction, note=model)
    n_initial = max(getattr(strategy, "n_initial", 10), 2)
    numbers, eis, rels, bests = [], [], [], []
    ordered = sorted((t for t in trials if t.started_at is not None), key=lambda t: t.number)
    candidates = [t for t in ordered if t.params and not t.interrupted][-LEARNING_MAX:]
    gp = model.gp
    encoded: dict[int, np.ndarray] = {}

    def encode(u: FrozenTrial) -> np.ndarray:
        if u.number not in encoded:
            encoded[u.number] = model.codec.encode(u.params)
        return encoded[u.number]

    for t in candidates:
        before = [
            u
            for u in ordered
            if u.number < t.number
            and u.finished_at is not None
            and t.started_at is not None
            and u.finished_at <= t.started_at
        ]
        if sum(1 for u in observed_trials(before) if u.value is not None) < n_initial:
            continue  # proposed by the initial design, not by the model
        x, y, transform, observed = training_data(
            space,
            before,
            direction,
            strategy,  # type: ignore[arg-type]
            encode=encode,
        )
        prefix = GP(x, y, gp.is_cat, gp.inv_sq_ls, gp.scale, gp.noise)
        xq = encode(t)[None, :]
        ei = float(expected_improvement_in_values(prefix, transform, float(y.min()), xq)[0])
        vals = [_f(u.value) for u in observed if _finite(u.value)]
        best = min(vals) if direction is Direction.MINIMIZE else max(vals)
        # Relative to the best value; to a tenth of the values' spread when the best is
        # near 0 (a loss that reaches 0 would make every expectation look huge).
        scale = max(abs(best), 0.1 * float(np.ptp(vals))) or 1.0
        numbers.append(t.number)
        eis.append(ei)
        rels.append(ei / scale)
        bests.append(best)
    verdict, hint = _hint(rels)
    return Learning(
        direction,
        note=None if numbers else "no proposal made by the model yet",
        numbers=tuple(numbers),
        ei=tuple(eis),
        relative=tuple(rels),
        best_before=tuple(bests),
        hint=hint,
        verdict=verdict,
    )


# -- tpe, random, grid -----------------------------------------------------------------------


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


def _unit(p: Any, v: Any) -> float:
    return float(p.to_unit(v))


def tpe_densities(
    space: SearchSpace, trials: Sequence[FrozenTrial], direction: Direction
) -> TpeDensities:
    """The two densities TPE compares, per parameter: of the best ``gamma`` trials ("good":
    Optuna's default gamma, ``min(ceil(0.1 n), 25)``) and of the rest ("bad"). Parzen
    estimators in the unit space of each parameter (log ranges in log space), with Scott's
    bandwidth; categories and small integer ranges as smoothed frequencies. TPE samples
    where good/bad is largest."""
    done = [t for t in trials if t.state is TrialState.COMPLETE and _finite(t.value)]
    if len(done) < 2:
        return TpeDensities(direction, note="needs at least 2 completed trials")
    sign = 1.0 if direction is Direction.MINIMIZE else -1.0
    done.sort(key=lambda t: sign * _f(t.value))
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

            shown = tuple(_shown(p, c) for c in choices)
            out.append(
                Density(axis_of(name, p), shown, freq(g), freq(b), len(g), len(b), discrete=True)
            )
            continue

        def kde(vals: list[Any], p: Any = p) -> tuple[float, ...]:
            u = np.array([_unit(p, v) for v in vals])
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
            u = np.clip(np.array([_unit(p, v) for v in vals]), 0, 1 - 1e-12)
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


# -- the workers -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Bar:
    lane: str
    number: int
    state: TrialState
    start: _dt.datetime
    end: _dt.datetime
    running: bool


@dataclass(frozen=True)
class RunningTrial:
    number: int
    lane: str
    epoch: int | None
    epochs: int | None
    elapsed_s: float
    eta_s: float | None


@dataclass(frozen=True)
class Timeline:
    lanes: tuple[str, ...]
    bars: tuple[Bar, ...]
    busy: tuple[float, ...]  # per lane: share of its span (first start to last end) busy
    idle: tuple[tuple[str, _dt.datetime, _dt.datetime], ...]  # gaps between trials
    running: tuple[RunningTrial, ...]
    now: _dt.datetime
    note: str | None = None


def _worker(t: FrozenTrial) -> str:
    s = t.system_attrs
    host = s.get("worker_host") or s.get("host") or "?"
    gpus = s.get("gpu_ids")
    if gpus:
        return f"{host} · gpu {','.join(str(g) for g in gpus)}"
    pid = s.get("worker_pid") or s.get("pid")
    return f"{host} · pid {pid}" if pid is not None else str(host)


def _epochs(t: FrozenTrial, done: Sequence[FrozenTrial]) -> int | None:
    for source in (t.params, t.user_attrs):
        v = source.get("epochs")
        if isinstance(v, int) and not isinstance(v, bool) and v > 0:
            return v
    steps = [u.last_step for u in done if u.state is TrialState.COMPLETE and u.last_step]
    return max(set(steps), key=steps.count) if steps else None  # the usual budget


def timeline(trials: Sequence[FrozenTrial], now: _dt.datetime | None = None) -> Timeline:
    """Trials as bars per worker (host and GPU, or host and process), idle gaps between them,
    and the running trials with their epoch and an ETA (mean time per reported epoch times
    the epochs left; the epochs from ``params["epochs"]``, else the usual count of steps of
    completed trials)."""
    now = now or _dt.datetime.now(_dt.timezone.utc)
    started = sorted((t for t in trials if t.started_at is not None), key=lambda t: t.started_at)  # type: ignore[arg-type,return-value]
    if not started:
        return Timeline((), (), (), (), (), now, note="no trial has started yet")
    # Overlapping trials of one worker key (threads of one process) get sub-lanes.
    ends: dict[str, list[_dt.datetime]] = {}
    bars = []
    for t in started:
        key = _worker(t)
        end = t.finished_at or now
        slots = ends.setdefault(key, [])
        for i, free_at in enumerate(slots):
            if free_at <= t.started_at:  # type: ignore[operator]
                slots[i] = end
                slot = i
                break
        else:
            slots.append(end)
            slot = len(slots) - 1
        lane = key if slot == 0 else f"{key} #{slot + 1}"
        bars.append(Bar(lane, t.number, t.state, t.started_at, end, t.finished_at is None))  # type: ignore[arg-type]
    lanes = sorted({b.lane for b in bars})
    busy, idle = [], []
    for lane in lanes:
        mine = sorted((b for b in bars if b.lane == lane), key=lambda b: b.start)
        span = (max(b.end for b in mine) - mine[0].start).total_seconds()
        worked = sum((b.end - b.start).total_seconds() for b in mine)
        busy.append(min(worked / span, 1.0) if span > 0 else 1.0)
        for a, b in itertools.pairwise(mine):
            if b.start > a.end:
                idle.append((lane, a.end, b.start))
    done = [t for t in trials if t.state.is_finished]
    running = []
    lane_of = {b.number: b.lane for b in bars}
    for t in started:
        if t.finished_at is not None:
            continue
        elapsed = (now - t.started_at).total_seconds()  # type: ignore[operator]
        epoch = t.last_step
        total = _epochs(t, done)
        eta = None
        if epoch and total and total >= epoch and elapsed > 0:
            eta = elapsed / epoch * (total - epoch)
        running.append(RunningTrial(t.number, lane_of[t.number], epoch, total, elapsed, eta))
    return Timeline(tuple(lanes), tuple(bars), tuple(busy), tuple(idle), tuple(running), now)


# -- empirical distribution ----------------------------------------------------------------


@dataclass(frozen=True)
class Edf:
    direction: Direction
    values: tuple[float, ...]  # sorted
    fractions: tuple[float, ...]  # share of completed trials with a value <= values[i]


def edf(trials: Sequence[FrozenTrial], direction: Direction) -> Edf:
    vals = sorted(
        _f(t.value) for t in trials if t.state is TrialState.COMPLETE and _finite(t.value)
    )
    n = len(vals)
    return Edf(direction, tuple(vals), tuple((i + 1) / n for i in range(n)))
