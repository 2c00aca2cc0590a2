"""The strategy interface: what to try next."""

from __future__ import annotations

import abc
import json
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from hpo.space import SearchSpace
from hpo.trial import Direction, FrozenTrial

__all__ = ["Strategy", "params_key"]


def params_key(params: Mapping[str, Any]) -> str:
    """A configuration as text, the same for the same params in any order (values by ``str``
    where JSON has no form for them): how a strategy tells a configuration it holds."""
    return json.dumps(sorted(params.items()), default=str)


class Strategy(abc.ABC):
    """Proposes the parameters of the next trial.

    Rules every strategy keeps:

    * :meth:`propose` is a **pure function** of its arguments: the space, the study's trials so
      far (complete, pruned, failed and still running), the direction, the trial number and a
      random generator seeded from ``(study seed, trial number)``. No I/O and no state the store
      cannot rebuild, so a study resumes exactly and any process can ask.
    * It returns only the **active** parameters, each within its range.
    * Trials still running are *pending*: a strategy must not hand out the same point again
      just because its result is not known yet.
    * When nothing is left to try it raises :class:`hpo.exceptions.SearchExhausted`.

    Options are keyword arguments of the constructor; :meth:`options` returns them so the store
    can rebuild the same strategy in another process.
    """

    name: ClassVar[str]

    def __init__(self, **options: Any) -> None:
        if options:
            from hpo.exceptions import StrategyError

            raise StrategyError(f"strategy {self.name!r} takes no option(s) {sorted(options)}.")

    def options(self) -> dict[str, Any]:
        """The constructor options, as plain data (stored with the study)."""
        return {}

    @abc.abstractmethod
    def propose(
        self,
        space: SearchSpace,
        trials: Sequence[FrozenTrial],
        *,
        direction: Direction,
        number: int,
        seed: int,
        rng: np.random.Generator,
    ) -> Mapping[str, Any]:
        """Return the params of trial ``number``.

        Args:
            space: The search space.
            trials: Every earlier trial of the study, ordered by number.
            direction: Whether lower or higher values are better.
            number: The number the new trial will get.
            seed: The study's seed (for sequences shared by all trials, e.g. Sobol points).
            rng: Random state for this trial only, seeded from ``(seed, number)``.

        Raises:
            SearchExhausted: nothing left to propose.
        """

    def __repr__(self) -> str:
        opts = ", ".join(f"{k}={v!r}" for k, v in self.options().items())
        return f"{type(self).__name__}({opts})"
