"""What the training loop needs from a trial: the live ``hpo.Trial`` satisfies it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

__all__ = ["TrialLike"]


class TrialLike(Protocol):
    """The part of a live trial an objective talks to."""

    @property
    def number(self) -> int:
        """The trial's number in its study (0, 1, ...)."""
        ...

    @property
    def params(self) -> Mapping[str, Any]:
        """The trial's active parameters."""
        ...

    def report(self, value: float, step: int) -> None:
        """Record an intermediate value (here: validation accuracy after epoch ``step``)."""

    def should_prune(self) -> bool:
        """True when the study's pruner wants this trial stopped now."""
        ...

    def set_user_attr(self, key: str, value: Any) -> None:
        """Store a JSON-able value with the trial."""
