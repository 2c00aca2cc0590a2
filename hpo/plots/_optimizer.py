"""What the optimiser thinks, computed from a study's stored history (issue 19): one module a view.

Each view's data function returns a small frozen record, and its figure function draws it:

- ``bayes``: the strategy's own GP (:mod:`hpo.strategies._bayes_model`, fitted by :func:`fit`)
  sliced through the best point (:func:`surrogate`, also the acquisition view;
  :mod:`hpo.plots._opt_surrogate`), a 2-D grid of its mean and uncertainty (:func:`contour`;
  :mod:`hpo.plots._opt_contour`), and the expected improvement of recent proposals
  (:func:`learning`; :mod:`hpo.plots._opt_learning`).
- ``tpe``: the good/bad densities (:func:`tpe_densities`; :mod:`hpo.plots._opt_tpe`).
- ``random`` and ``grid``: the coverage of each parameter (:func:`coverage`;
  :mod:`hpo.plots._opt_coverage`).
- Every study: the workers' timeline (:func:`timeline`; :mod:`hpo.plots._opt_timeline`) and the
  empirical distribution of values (:func:`edf`; :mod:`hpo.plots._opt_edf`).

:mod:`hpo.plots._optimizer_figures` picks the view by name and writes it to a file.
"""

from __future__ import annotations

from hpo.plots._opt_contour import Contour, contour
from hpo.plots._opt_coverage import Coverage, coverage
from hpo.plots._opt_edf import Edf, edf
from hpo.plots._opt_learning import Learning, learning
from hpo.plots._opt_model import fit
from hpo.plots._opt_surrogate import ParamSlice, Surrogate, surrogate
from hpo.plots._opt_timeline import Timeline, timeline
from hpo.plots._opt_tpe import TpeDensities, tpe_densities

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
