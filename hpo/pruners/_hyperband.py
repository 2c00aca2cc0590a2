from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from hpo.exceptions import PrunerError
from hpo.pruners._asha import (
    check_pause,
    check_resources,
    resolve_max,
    resource_options,
    rungs,
    successive_halving_prune,
)
from hpo.pruners._base import BasePruner
from hpo.trial import Direction, FrozenTrial

__all__ = ["Hyperband"]


class Hyperband(BasePruner):
    """Hyperband (Li et al. 2018) run asynchronously: several ASHA brackets side by side.

    ASHA's one weakness is its bet that a trial's first epochs predict its last. Hyperband
    hedges the bet: bracket ``b`` is an ASHA whose first rung is at ``min_resource *
    reduction_factor**b``, for ``b = 0 .. s`` where ``s`` is the largest with
    ``min_resource * reduction_factor**s <= max_resource``; as in ASHA, a rung is only placed
    where its survivors can train ``reduction_factor`` times longer. Bracket 0 is the most
    aggressive (judged after ``min_resource`` steps); the last one never prunes: its trials all
    run to the end (plain search, Hyperband's most conservative bracket). Trials are compared
    only with trials of their own bracket.

    Each trial's bracket is drawn from ``(study seed, trial number)`` by a hash, so it is the
    same in every process and on every machine, with the weights of Hyperband's bracket sizes
    (``ceil((s+1) / (s-b+1) * reduction_factor**(s-b))``, as Optuna's ``HyperbandPruner``):
    aggressive brackets get more trials, because their trials are cheap.

    Args:
        reduction_factor: η, as in :class:`ASHA` (default 3, as in the Hyperband paper, Ray
            Tune and Optuna).
        min_resource: The first rung of the most aggressive bracket (default 1).
        max_resource: The step a full trial reaches. Default: the study's epoch budget; a
            study without one must give it.
        pause: Pause instead of stop, as in :class:`ASHA`: a trial waits at its rung and goes
            on from its checkpoint when promoted (Ray Tune's HyperBand scheduler does the same).
    """

    name = "hyperband"

    def __init__(
        self,
        reduction_factor: int = 3,
        min_resource: int = 1,
        max_resource: int | None = None,
        pause: bool = False,
    ) -> None:
        self.reduction_factor, self.min_resource, self.max_resource = check_resources(
            self.name, reduction_factor, min_resource, max_resource
        )
        self.pauses = check_pause(self.name, pause)
        self._assigned: dict[tuple[int, int], int] = {}  # (seed, number) -> bracket

    def options(self) -> dict[str, Any]:
        return resource_options(self)

    def for_budget(self, budget: int | None) -> Hyperband:
        big = resolve_max(
            self.name, self.min_resource, self.reduction_factor, self.max_resource, budget
        )
        if big is None:
            raise PrunerError(
                "pruner 'hyperband' needs `max_resource`, the step a full trial reaches, and "
                "this study has no epoch budget to take it from; pass max_resource=N "
                "(`--pruner-opt max_resource=N`) or give the space `budget: {epochs: N}`."
            )
        return Hyperband(self.reduction_factor, self.min_resource, big, self.pauses)

    def describe(self) -> str:
        parts = ["[" + ", ".join(map(str, r)) + "]" if r else "[no pruning]" for r in self.brackets]
        return (
            f"hyperband: {len(parts)} brackets with rungs at steps {' '.join(parts)} of "
            f"{self._max()}, trials shared {':'.join(map(str, self.weights))}; the best "
            f"1/{self.reduction_factor} at each rung go on"
            + (", the others wait (paused)" if self.pauses else "")
        )

    # -- brackets ----------------------------------------------------------------------------
    def _max(self) -> int:
        if self.max_resource is None:
            raise PrunerError(
                "pruner 'hyperband' has no `max_resource`; make it with max_resource=N or let "
                "create_study fill it in from the space's epoch budget."
            )
        return self.max_resource

    def _s(self) -> int:
        s, r = 0, self.min_resource
        while r * self.reduction_factor <= self._max():
            r *= self.reduction_factor
            s += 1
        return s

    @property
    def brackets(self) -> list[list[int]]:
        """Each bracket's rung steps, most aggressive first (the last may have none)."""
        big = self._max()
        return [
            rungs(self.min_resource * self.reduction_factor**b, self.reduction_factor, big, big)
            for b in range(self._s() + 1)
        ]

    @property
    def weights(self) -> list[int]:
        """How many trials of every ``sum(weights)`` each bracket gets, on average."""
        s, eta = self._s(), self.reduction_factor
        return [-(-(s + 1) * eta ** (s - b) // (s - b + 1)) for b in range(s + 1)]

    def bracket(self, number: int, seed: int) -> int:
        """The bracket of trial ``number`` in a study seeded ``seed`` (same in every process)."""
        b = self._assigned.get((seed, number))
        if b is None:
            b = self._assigned[(seed, number)] = self._draw(number, seed)
        return b

    def _draw(self, number: int, seed: int) -> int:
        weights = self.weights
        digest = hashlib.sha256(f"hpo.hyperband:{seed}:{number}".encode()).digest()
        u = int.from_bytes(digest[:8], "big") % sum(weights)
        for b, w in enumerate(weights):
            if u < w:
                return b
            u -= w
        raise AssertionError("unreachable: u < sum(weights)")

    def prune(
        self,
        trial: FrozenTrial,
        trials: Sequence[FrozenTrial],
        *,
        direction: Direction,
        seed: int,
    ) -> bool:
        b = self.bracket(trial.number, seed)
        if not rungs(
            self.min_resource * self.reduction_factor**b,
            self.reduction_factor,
            self._max(),
            self._max(),
        ):
            return False
        rivals = [
            t for t in trials if t.number != trial.number and self.bracket(t.number, seed) == b
        ]
        return successive_halving_prune(
            trial,
            rivals,
            min_resource=self.min_resource * self.reduction_factor**b,
            reduction_factor=self.reduction_factor,
            max_resource=self.max_resource,
            direction=direction,
            pause=self.pauses,
        )
