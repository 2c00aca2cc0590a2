"""Pruners, interchangeable by name: none, median, asha, hyperband.

A pruner stops unpromising trials early (``trial.should_prune()``, asked by the training loop
after every epoch), judging only the intermediate values in the study's store, so it decides
the same in-process, in another process and on Ray workers on other machines.

>>> import hpo
>>> hpo.pruners.get_pruner("asha", reduction_factor=3)
ASHA(reduction_factor=3, min_resource=1, max_resource=None)
"""

from __future__ import annotations

import inspect
from typing import Any

from hpo.exceptions import PrunerError
from hpo.pruners._asha import ASHA
from hpo.pruners._base import BasePruner, Pruner, epoch_budget
from hpo.pruners._hyperband import Hyperband
from hpo.pruners._median import MedianPruner
from hpo.pruners._nop import NoPruner

__all__ = [
    "ASHA",
    "PRUNERS",
    "BasePruner",
    "Hyperband",
    "MedianPruner",
    "NoPruner",
    "Pruner",
    "epoch_budget",
    "get_pruner",
]

# name -> class; all light (no torch), so imported eagerly.
PRUNERS: dict[str, type[BasePruner]] = {
    "none": NoPruner,
    "median": MedianPruner,
    "asha": ASHA,
    "hyperband": Hyperband,
}


def get_pruner(name: str | Pruner | None, **options: Any) -> Pruner:
    """A pruner by name (``"none" | "median" | "asha" | "hyperband"``) with its options, or
    the pruner object given (``None`` is ``"none"``).

    Raises:
        PrunerError: unknown name, unknown option or a bad option value.
    """
    if name is None:
        name = "none"
    if not isinstance(name, str):
        if not callable(getattr(name, "should_prune", None)):
            raise PrunerError(
                f"pruner must be one of {sorted(PRUNERS)} or an object with a "
                f"should_prune(study, trial) method, got {name!r}."
            )
        if options:
            raise PrunerError("pass options to the pruner's constructor, not alongside it.")
        return name
    key = name.strip().lower()
    if key not in PRUNERS:
        raise PrunerError(f"pruner must be one of {sorted(PRUNERS)}, got {name!r}.")
    cls = PRUNERS[key]
    known = [
        p.name
        for p in inspect.signature(cls).parameters.values()
        if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    ]
    unknown = sorted(set(options) - set(known))
    if unknown:
        takes = f"its options are {known}" if known else "it takes no options"
        raise PrunerError(f"pruner {key!r} has no option {unknown[0]!r}; {takes}.")
    return cls(**options)
