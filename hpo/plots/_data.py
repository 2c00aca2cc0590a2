"""What each plot shows, computed once from a study's trials.

Every function here is a pure function of the search space, the direction and the trials; it
returns a small frozen record. The plotly figures (the dashboard, ``hpo plot -o x.html``) and
the matplotlib pictures (``hpo plot -o x.png``) both draw these records, so the page and the
report can never disagree about the data.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from hpo.space import Categorical, Float, Int, Param, SearchSpace
from hpo.trial import Direction, FrozenTrial, TrialState

__all__ = [
    "IMPORTANCE_METHOD",
    "MIN_TRIALS_FOR_IMPORTANCE",
    "Axis",
    "Curve",
    "History",
    "Importance",
    "Parallel",
    "Slice",
    "axis_of",
    "axis_value",
    "curves",
    "finite",
    "history",
    "importance",
    "parallel",
    "slices",
    "value_or_nan",
]


def finite(v: float | None) -> bool:
    return v is not None and math.isfinite(v)


def value_or_nan(v: float | None) -> float:
    return math.nan if v is None else float(v)


def _complete(trials: Sequence[FrozenTrial]) -> list[FrozenTrial]:
    return [t for t in trials if t.state is TrialState.COMPLETE and finite(t.value)]


@dataclass(frozen=True)
class Axis:
    """How a parameter is laid on an axis: linear, log (positive ranges) or categories."""

    name: str
    scale: str  # "linear" | "log" | "category"
    categories: tuple[str, ...] = ()
    low: float | None = None
    high: float | None = None


def axis_of(name: str, param: Param) -> Axis:
    if isinstance(param, Categorical):
        return Axis(name, "category", tuple(str(c) for c in param.choices))
    if isinstance(param, (Float, Int)):
        return Axis(name, "log" if param.log else "linear", (), float(param.low), float(param.high))
    return Axis(name, "linear")


def axis_value(param: Param, v: Any) -> Any:
    """A value as it is laid on the parameter's axis (a category as its string)."""
    return str(v) if isinstance(param, Categorical) else v


# -- optimisation history --------------------------------------------------------------------


@dataclass(frozen=True)
class History:
    """Each completed trial's value in trial order, and the best value so far after it.

    Pruned trials that reported a value are kept apart (``pruned_*``): they never count as the
    best. ``n_failed`` failed trials have no value to show.
    """

    direction: Direction
    numbers: tuple[int, ...]
    values: tuple[float, ...]
    best: tuple[float, ...]
    pruned_numbers: tuple[int, ...] = ()
    pruned_values: tuple[float, ...] = ()
    n_failed: int = 0


def history(trials: Sequence[FrozenTrial], direction: Direction) -> History:
    numbers: list[int] = []
    values: list[float] = []
    best: list[float] = []
    for t in _complete(trials):
        v = float(t.value)  # type: ignore[arg-type]
        numbers.append(t.number)
        values.append(v)
        best.append(v if not best or direction.better(v, best[-1]) else best[-1])
    pruned = [t for t in trials if t.state is TrialState.PRUNED and finite(t.value)]
    return History(
        direction=direction,
        numbers=tuple(numbers),
        values=tuple(values),
        best=tuple(best),
        pruned_numbers=tuple(t.number for t in pruned),
        pruned_values=tuple(float(t.value) for t in pruned),  # type: ignore[arg-type]
        n_failed=sum(1 for t in trials if t.state is TrialState.FAILED),
    )


# -- parallel coordinates --------------------------------------------------------------------


@dataclass(frozen=True)
class Parallel:
    """Completed trials as lines across one axis per parameter, then the value.

    ``columns[i][j]`` is parameter ``axes[i]`` of trial ``numbers[j]``: the raw value for
    numbers, the choice's index for categories, ``None`` where the parameter was inactive.
    """

    numbers: tuple[int, ...]
    values: tuple[float, ...]
    axes: tuple[Axis, ...]
    columns: tuple[tuple[float | None, ...], ...]


def _column(axis: Axis, param: Param, trials: Sequence[FrozenTrial]) -> tuple[float | None, ...]:
    out: list[float | None] = []
    for t in trials:
        if axis.name not in t.params:
            out.append(None)
        elif isinstance(param, Categorical):
            try:
                out.append(float(param.index(t.params[axis.name])))
            except ValueError:  # a value from an older space: show it as inactive
                out.append(None)
        else:
            out.append(float(t.params[axis.name]))
    return tuple(out)


def parallel(trials: Sequence[FrozenTrial], space: SearchSpace) -> Parallel:
    done = _complete(trials)
    axes = tuple(axis_of(n, p) for n, p in space.items())
    return Parallel(
        numbers=tuple(t.number for t in done),
        values=tuple(float(t.value) for t in done),  # type: ignore[arg-type]
        axes=axes,
        columns=tuple(_column(a, space[a.name], done) for a in axes),
    )


# -- slices ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Slice:
    """The value of completed trials against one parameter (where it was active)."""

    axis: Axis
    numbers: tuple[int, ...]
    x: tuple[Any, ...]  # raw values; categories as their string
    y: tuple[float, ...]


def slices(trials: Sequence[FrozenTrial], space: SearchSpace) -> tuple[Slice, ...]:
    done = _complete(trials)
    out = []
    for name, p in space.items():
        axis = axis_of(name, p)
        have = [t for t in done if name in t.params]
        xs = [str(t.params[name]) if axis.scale == "category" else t.params[name] for t in have]
        out.append(
            Slice(
                axis=axis,
                numbers=tuple(t.number for t in have),
                x=tuple(xs),
                y=tuple(float(t.value) for t in have),  # type: ignore[arg-type]
            )
        )
    return tuple(out)


# -- learning curves -------------------------------------------------------------------------


@dataclass(frozen=True)
class Curve:
    """One trial's intermediate values (``trial.report(value, step)``), by step."""

    number: int
    state: TrialState
    steps: tuple[int, ...]
    values: tuple[float | None, ...]  # None where a reported value was NaN or infinite


def curves(trials: Sequence[FrozenTrial]) -> tuple[Curve, ...]:
    return tuple(
        Curve(
            number=t.number,
            state=t.state,
            steps=tuple(t.intermediate),
            values=tuple(v if math.isfinite(v) else None for v in t.intermediate.values()),
        )
        for t in trials
        if t.intermediate
    )


# -- parameter importance --------------------------------------------------------------------

#: How importance is measured, shown under the chart and in the README.
IMPORTANCE_METHOD = (
    "permutation importance of a random-forest surrogate (scikit-learn, 32 trees) fitted to "
    "the completed trials: how much the forest's R² drops when one parameter's column is "
    "shuffled, averaged over 3 shuffles, negative drops set to 0, normalised to sum to 1"
)
MIN_TRIALS_FOR_IMPORTANCE = 4


@dataclass(frozen=True)
class Importance:
    """Each parameter's share of the surrogate's explained variance, largest first.

    ``note`` says why there are no scores (too few completed trials, constant values).
    """

    names: tuple[str, ...]
    scores: tuple[float, ...]
    n_trials: int
    method: str = IMPORTANCE_METHOD
    note: str | None = None


def _encode(space: SearchSpace, trials: Sequence[FrozenTrial]) -> np.ndarray:
    """One numeric column per parameter: log10 on log scales, a choice's index for categories,
    and a value just below the range where the parameter was inactive (trees split it off)."""
    x = np.zeros((len(trials), len(space)))
    for j, (name, p) in enumerate(space.items()):
        if isinstance(p, Categorical):
            inactive = -1.0
        else:
            lo, hi = float(p.low), float(p.high)  # type: ignore[attr-defined]
            if getattr(p, "log", False):
                lo, hi = math.log10(lo), math.log10(hi)
            inactive = lo - max(hi - lo, 1.0)
        for i, t in enumerate(trials):
            if name not in t.params:
                x[i, j] = inactive
                continue
            v = t.params[name]
            if isinstance(p, Categorical):
                try:
                    x[i, j] = float(p.index(v))
                except ValueError:
                    x[i, j] = inactive
            elif getattr(p, "log", False) and float(v) > 0:
                x[i, j] = math.log10(float(v))
            else:
                x[i, j] = float(v)
    return x


def _unit_scaled(v: np.ndarray) -> np.ndarray:
    """``v / max|v|``: the same order and ratios, in [-1, 1]."""
    top = float(np.max(np.abs(v))) if len(v) else 0.0
    return v / top if top > 0 and math.isfinite(top) else v


def importance(trials: Sequence[FrozenTrial], space: SearchSpace, *, seed: int = 0) -> Importance:
    """Permutation importance on a random-forest surrogate (see :data:`IMPORTANCE_METHOD`).

    Deterministic for a given set of trials (the forest and the shuffles are seeded). Why not
    fANOVA: it needs an extra dependency and the forest's own tree structure; permutation
    importance works with any regressor and sklearn ships it.
    """
    done = _complete(trials)
    names = tuple(space)
    if len(done) < MIN_TRIALS_FOR_IMPORTANCE:
        return Importance(
            names,
            (0.0,) * len(names),
            len(done),
            note=f"needs at least {MIN_TRIALS_FOR_IMPORTANCE} completed trials, has {len(done)}",
        )
    # Scaled into [-1, 1] (importance shares do not depend on the scale): values near the
    # float limit would otherwise overflow to inf inside the forest.
    y = _unit_scaled(np.array([float(t.value) for t in done]))  # type: ignore[arg-type]
    if float(np.ptp(y)) == 0.0:
        return Importance(
            names, (0.0,) * len(names), len(done), note="every completed trial has the same value"
        )
    from sklearn.ensemble import RandomForestRegressor
    from sklearn.inspection import permutation_importance

    x = np.apply_along_axis(_unit_scaled, 0, _encode(space, done))
    # 32 trees and 3 shuffles: on 1,000 trials, 0.25 s instead of 0.85 s for 64 trees and 5
    # shuffles, with shares within 0.01 of theirs (benchmarks/README.md, dashboard).
    forest = RandomForestRegressor(n_estimators=32, min_samples_leaf=2, random_state=seed, n_jobs=1)
    forest.fit(x, y)
    result = permutation_importance(forest, x, y, n_repeats=3, random_state=seed, n_jobs=1)
    raw = np.clip(np.asarray(result.importances_mean, dtype=float), 0.0, None)
    total = float(raw.sum())
    scores = raw / total if total > 0 else raw
    order = np.argsort(-scores, kind="stable")
    return Importance(
        names=tuple(names[i] for i in order),
        scores=tuple(float(scores[i]) for i in order),
        n_trials=len(done),
    )
