"""Plots of a study: the data is computed once, then drawn by plotly or matplotlib.

``history``, ``parallel``, ``importance``, ``slices`` and ``curves`` turn trials into small
frozen records; :func:`figure` turns them into plotly figures (plain dicts) for the dashboard
and ``hpo plot -o x.html``; :func:`write_plot` also draws PNGs with matplotlib. sklearn,
plotly and matplotlib are imported only by the code that needs them.
"""

from __future__ import annotations

from hpo.plots._data import (
    IMPORTANCE_METHOD,
    Axis,
    Curve,
    History,
    Importance,
    Parallel,
    Slice,
    curves,
    history,
    importance,
    parallel,
    slices,
)
from hpo.plots._figures import KINDS, figure
from hpo.plots._write import write_plot

__all__ = [
    "IMPORTANCE_METHOD",
    "KINDS",
    "Axis",
    "Curve",
    "History",
    "Importance",
    "Parallel",
    "Slice",
    "curves",
    "figure",
    "history",
    "importance",
    "parallel",
    "slices",
    "write_plot",
]
