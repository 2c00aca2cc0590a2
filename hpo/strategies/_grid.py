from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from hpo.exceptions import SearchExhausted, StrategyError
from hpo.space import SearchSpace
from hpo.space._space import GridIndex
from hpo.strategies._base import Strategy, params_key
from hpo.trial import Direction, FrozenTrial

__all__ = ["GridStrategy"]


class GridStrategy(Strategy):
    """Every active combination of the space, once, in a fixed order.

    Continuous ranges are cut into ``points`` values (default 5; a log grid on log ranges);
    integer ranges with at most ``points`` values keep all of them; categoricals keep all
    choices. Conditional parameters are only combined where they are active, so no point is
    repeated for the sake of an inactive parameter.

    The grid is numbered, never made (see :class:`hpo.space._space.GridIndex`): a grid of
    10^8 points costs no more memory than one of ten. :meth:`size` counts it.

    A point is handed out once: trial ``n`` takes the first point that no earlier trial holds.
    Because the store only accepts trial ``n`` after it has every trial before ``n`` (see
    ``Study.ask``), two processes can never hold the same point. A point whose trial was
    *interrupted* (Ctrl-C, a killed worker) is handed out again; a point whose objective failed
    is not (it would fail again). When every point is taken the study ends.
    """

    name = "grid"

    def __init__(self, points: int = 5) -> None:
        if isinstance(points, bool) or not isinstance(points, int) or points < 2:
            raise StrategyError(f"grid option `points` must be an integer >= 2, got {points!r}.")
        self.points = points
        # The index of the last space seen: a cache the space rebuilds, not search state.
        self._cache: tuple[int, GridIndex] | None = None

    def options(self) -> dict[str, Any]:
        return {"points": self.points}

    def _grid(self, space: SearchSpace) -> GridIndex:
        sig = hash(space)
        if self._cache is None or self._cache[0] != sig:
            self._cache = (sig, GridIndex(space, self.points))
        return self._cache[1]

    def size(self, space: SearchSpace) -> int:
        """How many points the grid of ``space`` holds (counted, not made)."""
        return self._grid(space).size

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
        # The grid is never made whole (issue 17): the taken points are turned into indices,
        # and the first index no trial holds is turned into a point.
        grid = self._grid(space)
        held = [t.params for t in trials if not t.interrupted]
        taken = {params_key(p) for p in held}
        taken_at = {i for i in map(grid.index, held) if i is not None}
        i = 0
        while i < grid.size:
            if i not in taken_at:
                point = grid.point(i)
                if params_key(point) not in taken:
                    return point
            i += 1
        raise SearchExhausted(f"the grid of {grid.size} points is exhausted.")
