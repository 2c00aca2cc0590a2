"""Trials: the live :class:`Trial` an objective talks to, and immutable :class:`FrozenTrial`."""

from hpo.trial._frozen import FrozenTrial
from hpo.trial._state import Direction, TrialState

__all__ = ["Direction", "FrozenTrial", "Trial", "TrialState"]


def __getattr__(name: str) -> object:
    if name == "Trial":  # the live trial depends on the study module; import it lazily
        from hpo.trial._trial import Trial

        return Trial
    raise AttributeError(name)
