from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from hpo.space import SearchSpace
from hpo.strategies._base import Strategy
from hpo.trial import Direction, FrozenTrial

__all__ = ["RandomStrategy"]


class RandomStrategy(Strategy):
    """Uniform random search (log-uniform on log ranges).

    Trial ``n`` of a study with seed ``s`` always gets the same params, whatever ran before it
    and in whichever process: its draw depends only on ``(s, n)``.
    """

    name = "random"

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
        return space.sample(rng)
