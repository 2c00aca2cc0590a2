"""``bayes``'s view of a search space: params <-> points of the GP's unit box.

Every parameter is one coordinate (see step 2 of :mod:`hpo.strategies._bayes`). Also the table
of every configuration of a small all-discrete space, which ``bayes`` scores exactly.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from hpo.space import Categorical, Float, Int, SearchSpace
from hpo.strategies._base import params_key

__all__ = ["_Codec", "_Table", "_discrete_size"]

_FILL_NUMERIC = 0.5  # an inactive numeric parameter's coordinate
_FILL_CATEGORICAL = -1.0  # an inactive categorical parameter's coordinate
_EXHAUSTIVE = 16  # an integer with at most this many values is searched value by value


def _numeric_choices(p: Categorical) -> bool:
    return all(isinstance(c, (int, float)) and not isinstance(c, bool) for c in p.choices)


class _Codec:
    """Params <-> points of the GP's input box, for one space.

    Floats and integers map through their unit transform (log ranges in log space; an
    integer's coordinate is ordered, so 3 layers sit between 2 and 4). A categorical whose
    choices are all numbers (``batch_size: [32, 64, 128]``) is ordered too when
    ``ordered_choices``: its coordinate is the choice's rank, ``(rank + 1/2) / n``, compared by
    squared distance like a number. Other categoricals are their choice index, compared by
    the Hamming (overlap) distance.
    """

    def __init__(self, space: SearchSpace, ordered_choices: bool = True) -> None:
        self.space = space
        self.names = list(space)
        self.params = [space[n] for n in self.names]
        self.ordered = np.array(
            [
                isinstance(p, Categorical) and ordered_choices and _numeric_choices(p)
                for p in self.params
            ]
        )
        self.is_cat = np.array(
            [
                isinstance(p, Categorical) and not o
                for p, o in zip(self.params, self.ordered, strict=True)
            ]
        )
        # For an ordered categorical: the choice index at each rank, and the rank of each index.
        self._by_rank: dict[int, np.ndarray] = {}
        self._rank: dict[int, np.ndarray] = {}
        for i, p in enumerate(self.params):
            if self.ordered[i]:
                assert isinstance(p, Categorical)
                by_rank = np.argsort(np.array(p.choices, dtype=float), kind="stable")
                self._by_rank[i] = by_rank
                self._rank[i] = np.argsort(by_rank)
        # Parameters others are conditioned on: changing one can change which are active.
        parents = {c.parent for p in self.params for c in p.conditions}
        self.is_parent = np.array([n in parents for n in self.names])
        self.all_discrete = not any(isinstance(p, Float) for p in self.params)

    @property
    def dim(self) -> int:
        return len(self.names)

    def encode(self, params: Mapping[str, Any]) -> np.ndarray:
        x = np.empty(self.dim)
        for i, (n, p) in enumerate(zip(self.names, self.params, strict=True)):
            if n not in params:
                x[i] = _FILL_CATEGORICAL if self.is_cat[i] else _FILL_NUMERIC
            elif isinstance(p, Categorical):
                k = p.index(params[n])
                x[i] = (self._rank[i][k] + 0.5) / len(p.choices) if self.ordered[i] else k
            else:
                x[i] = p.to_unit(params[n])
        return x

    def key(self, params: Mapping[str, Any]) -> bytes:
        """Identifies a configuration (1 and 1.0 of a choice alike; inactive params ignored)."""
        try:
            return self.encode(params).tobytes()
        except (ValueError, KeyError, TypeError):  # not a point of this space
            return params_key(params).encode()

    def decode(self, x: np.ndarray, rng: np.random.Generator) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for i, (n, p) in enumerate(zip(self.names, self.params, strict=True)):
            if not self.space.is_active(n, out):
                continue
            if isinstance(p, Categorical):
                if self.ordered[i]:
                    r = min(max(int(float(x[i]) * len(p.choices)), 0), len(p.choices) - 1)
                    out[n] = p.choices[int(self._by_rank[i][r])]
                    continue
                k = round(x[i])
                out[n] = (
                    p.choices[k]
                    if 0 <= k < len(p.choices)
                    else p.choices[int(rng.integers(len(p.choices)))]
                )
            else:
                out[n] = p.from_unit(float(x[i]))
        return out

    def canonical(
        self, x: np.ndarray, rng: np.random.Generator
    ) -> tuple[dict[str, Any], np.ndarray]:
        params = self.decode(x, rng)
        return params, self.encode(params)

    def discrete_units(self, i: int, x: np.ndarray) -> np.ndarray | None:
        """The coordinates a discrete parameter ``i`` can take, for a sweep from ``x``: every
        choice of a categorical, every value of a small integer range, the neighbourhood and
        a coarse grid of a large one. None for a float."""
        p = self.params[i]
        if isinstance(p, Categorical):
            n = len(p.choices)
            return (np.arange(n) + 0.5) / n if self.ordered[i] else np.arange(n, dtype=float)
        if not isinstance(p, Int):
            return None
        n = p.n_values
        if n <= _EXHAUSTIVE:
            ks = np.arange(n)
        else:
            k = round(float((p.from_unit(x[i]) - p.low) / p.step))
            near = np.arange(k - 4, k + 5)
            spread = np.round(np.linspace(0, n - 1, _EXHAUSTIVE)).astype(int)
            ks = np.unique(np.clip(np.concatenate([near, spread]), 0, n - 1))
        return np.array([p.to_unit(p.low + int(k) * p.step) for k in ks])

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` points drawn as ``space.sample`` draws them (the same random numbers, row by
        row), in canonical encoding: ``encode(space.sample(rng))`` for all ``n`` at once."""
        u = rng.random((n, self.dim))
        out = np.empty_like(u)
        values: dict[str, np.ndarray] = {}  # each parameter's value in every row
        active: dict[str, np.ndarray] = {}  # and whether it is active there
        for i, (name, p) in enumerate(zip(self.names, self.params, strict=True)):
            on = np.ones(n, dtype=bool)
            for c in p.conditions:
                parent = values[c.parent]
                on &= active[c.parent] & np.fromiter(map(c.matches, parent), bool, n)
            if isinstance(p, Categorical):
                k = np.minimum((u[:, i] * len(p.choices)).astype(np.int64), len(p.choices) - 1)
                values[name] = np.array(p.choices, dtype=object)[k]
                if self.ordered[i]:
                    code = (self._rank[i][k] + 0.5) / len(p.choices)
                    out[:, i] = np.where(on, code, _FILL_NUMERIC)
                else:
                    out[:, i] = np.where(on, k, _FILL_CATEGORICAL)
            else:
                assert isinstance(p, (Float, Int))
                v = p.from_unit_array(u[:, i])
                values[name] = v
                out[:, i] = np.where(on, p.to_unit_array(v), _FILL_NUMERIC)
            active[name] = on
        return out


class _Table:
    """Every configuration of a small all-discrete space, encoded once (scored exactly)."""

    def __init__(self, codec: _Codec, points: int) -> None:
        self.params = list(codec.space.grid(points))
        self.x = np.array([codec.encode(q) for q in self.params])
        self.keys = [row.tobytes() for row in self.x]


def _discrete_size(space: SearchSpace) -> tuple[int, int] | None:
    """(number of configurations, grid points that keep every integer value) of an
    all-discrete space, or None when a parameter is a float or an integer range too large to
    count this way."""
    from hpo.space._space import GridIndex

    points = 2
    for p in space.values():
        if isinstance(p, Float):
            return None
        if isinstance(p, Int):
            if p.n_values > 100_000:
                return None
            points = max(points, p.n_values)
    return GridIndex(space, points).size, points
