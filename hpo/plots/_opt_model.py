"""The model behind the bayes views (surrogate, acquisition, contour, learning).

``bayes``'s own GP, refitted from the study's stored history
(:mod:`hpo.strategies._bayes_model`), and the points along one parameter to ask it about.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from hpo.space import SearchSpace
from hpo.strategies._base import Strategy
from hpo.trial import Direction, FrozenTrial

__all__ = ["fit", "through"]


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


def through(model: Any, base: Mapping[str, Any], name: str, values: Sequence[Any]) -> np.ndarray:
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
