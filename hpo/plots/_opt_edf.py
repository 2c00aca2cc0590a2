"""The edf view: the empirical distribution of the completed trials' values."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from hpo.plots._data import finite, value_or_nan
from hpo.plots._style import MEAN_COLOR, Figure, empty_figure, figure_layout
from hpo.trial import Direction, FrozenTrial, TrialState

__all__ = ["Edf", "edf", "edf_figure"]


@dataclass(frozen=True)
class Edf:
    direction: Direction
    values: tuple[float, ...]  # sorted
    fractions: tuple[float, ...]  # share of completed trials with a value <= values[i]


def edf(trials: Sequence[FrozenTrial], direction: Direction) -> Edf:
    vals = sorted(
        value_or_nan(t.value) for t in trials if t.state is TrialState.COMPLETE and finite(t.value)
    )
    n = len(vals)
    return Edf(direction, tuple(vals), tuple((i + 1) / n for i in range(n)))


# -- the figure ----------------------------------------------------------------------------


def edf_figure(e: Edf) -> Figure:
    title = "Empirical distribution of the values (completed trials)"
    if not e.values:
        return empty_figure(title, "no completed trials yet")
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
        "layout": figure_layout(
            title,
            xaxis={"title": {"text": f"value ({e.direction.value})"}},
            yaxis={"title": {"text": "share of trials ≤ value"}, "range": [0, 1.02]},
            showlegend=False,
        ),
    }
