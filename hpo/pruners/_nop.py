from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from hpo.pruners._base import BasePruner
from hpo.trial import Direction, FrozenTrial

if TYPE_CHECKING:
    from hpo.study import Study
    from hpo.trial._trial import Trial

__all__ = ["NoPruner"]


class NoPruner(BasePruner):
    """Never prunes: every trial runs to the end (the default)."""

    name = "none"

    def describe(self) -> str:
        return "none: every trial runs to the end"

    def should_prune(self, study: Study, trial: Trial) -> bool:
        return False  # not even a read of the store

    def prune(
        self,
        trial: FrozenTrial,
        trials: Sequence[FrozenTrial],
        *,
        direction: Direction,
        seed: int,
    ) -> bool:
        return False
