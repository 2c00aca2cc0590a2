"""Is the search still learning? The expected improvement of each recent ``bayes`` proposal.

A search whose last proposals expect almost nothing has likely converged (:func:`learning`
gives the verdict and a one-line hint; :func:`learning_figure` draws it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from hpo.plots._data import finite, value_or_nan
from hpo.plots._opt_model import fit
from hpo.plots._style import Figure, empty_figure, figure_layout
from hpo.space import SearchSpace
from hpo.strategies._base import Strategy
from hpo.trial import Direction, FrozenTrial

__all__ = ["CONVERGED", "Learning", "learning", "learning_figure"]

LEARNING_WINDOW = 10  # the "last proposals" of the hint
CONVERGED = 1e-3  # relative expected improvement below which a proposal expects nothing
LEARNING_MAX = 20  # proposals whose expected improvement is computed (the most recent)


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
            log=model.transform.base.log,  # the final model's choice: no fit per prefix
        )
        prefix = GP(x, y, gp.is_cat, gp.inv_sq_ls, gp.scale, gp.noise)
        xq = encode(t)[None, :]
        ei = float(expected_improvement_in_values(prefix, transform, float(y.min()), xq)[0])
        vals = [value_or_nan(u.value) for u in observed if finite(u.value)]
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


# -- the figure ----------------------------------------------------------------------------


def learning_figure(lr: Learning) -> Figure:
    title = "Is it still learning? Expected improvement of each proposal, when it was made"
    if lr.note and not lr.numbers:
        return empty_figure(title, lr.note)
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
        "layout": figure_layout(
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
