"""Search strategies, interchangeable by name: grid, random, bayes, tpe."""

from __future__ import annotations

import importlib
from typing import Any

from hpo.exceptions import StrategyError
from hpo.strategies._base import Strategy

__all__ = ["STRATEGIES", "Strategy", "get_strategy"]

# name -> "module:Class"; imported lazily so `import hpo` does not pay for torch or optuna.
STRATEGIES: dict[str, str] = {
    "bayes": "hpo.strategies._bayes:BayesStrategy",
    "grid": "hpo.strategies._grid:GridStrategy",
    "random": "hpo.strategies._random:RandomStrategy",
    "tpe": "hpo.strategies._tpe:TPEStrategy",
}


def get_strategy(name: str | Strategy, **options: Any) -> Strategy:
    """A strategy by name (``"grid" | "random" | "bayes" | "tpe"``) with its options.

    Raises:
        StrategyError: unknown name or bad option.
    """
    if isinstance(name, Strategy):
        if options:
            raise StrategyError("pass options to the strategy's constructor, not alongside it.")
        return name
    key = str(name).lower()
    if key not in STRATEGIES:
        raise StrategyError(f"strategy must be one of {sorted(STRATEGIES)}, got {name!r}.")
    module, cls_name = STRATEGIES[key].split(":")
    cls = getattr(importlib.import_module(module), cls_name)
    try:
        strategy: Strategy = cls(**options)
    except TypeError as e:
        raise StrategyError(f"bad option for strategy {key!r}: {e}.") from None
    return strategy
