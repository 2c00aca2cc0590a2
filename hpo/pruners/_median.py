from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from typing import Any

from hpo.exceptions import PrunerError
from hpo.pruners._base import BasePruner, check_int, score
from hpo.trial import Direction, FrozenTrial, TrialState

__all__ = ["MedianPruner"]


class MedianPruner(BasePruner):
    """Stop a trial whose best value so far is worse than the median of the completed trials'
    values at the same step (the median stopping rule of Google Vizier, Golovin et al. 2017;
    Optuna's ``MedianPruner``, Ray Tune's ``MedianStoppingRule``).

    A trial at step ``s`` is pruned when all of these hold:

    * ``s > warmup_steps`` (with the training loop's epochs counted from 1, every trial trains
      at least ``warmup_steps`` epochs);
    * at least ``warmup_trials`` trials have *completed*;
    * at least ``min_trials`` completed trials reported a value at exactly step ``s``;
    * the trial's best value over its steps up to ``s`` is strictly worse than the median of
      those completed trials' values at ``s``.

    Only completed trials set the bar: they are the full curves the median describes. Because
    trials that survive the bar are the better ones, the bar rises as the study goes on.

    Args:
        warmup_trials: Completed trials needed before anything is pruned (default 5).
        warmup_steps: Steps during which no trial is pruned (default 0).
        min_trials: Completed trials that must have reported at a step to judge it (default 1).
    """

    name = "median"

    def __init__(self, warmup_trials: int = 5, warmup_steps: int = 0, min_trials: int = 1) -> None:
        self.warmup_trials = check_int(
            self.name, "warmup_trials", warmup_trials, 0, "completed trials before any pruning"
        )
        self.warmup_steps = check_int(
            self.name, "warmup_steps", warmup_steps, 0, "steps every trial runs unjudged"
        )
        self.min_trials = check_int(
            self.name, "min_trials", min_trials, 1, "completed trials a median needs at a step"
        )

    def options(self) -> dict[str, Any]:
        return {
            "warmup_trials": self.warmup_trials,
            "warmup_steps": self.warmup_steps,
            "min_trials": self.min_trials,
        }

    def describe(self) -> str:
        return (
            "median: stop a trial worse than the median of the completed trials at the same "
            f"step, once {self.warmup_trials} trials completed, after step {self.warmup_steps}"
        )

    def for_budget(self, budget: int | None) -> MedianPruner:
        if budget is not None and self.warmup_steps >= budget:
            raise PrunerError(
                f"pruner 'median': `warmup_steps` must be below the epoch budget ({budget}) or "
                f"no step is ever judged, got warmup_steps={self.warmup_steps}; use a value "
                f"from 0 to {budget - 1}."
            )
        return self

    def prune(
        self,
        trial: FrozenTrial,
        trials: Sequence[FrozenTrial],
        *,
        direction: Direction,
        seed: int,
    ) -> bool:
        step = trial.last_step
        if step is None or step <= self.warmup_steps:
            return False
        completed = [t for t in trials if t.state is TrialState.COMPLETE]
        if len(completed) < self.warmup_trials:
            return False
        at_step = [
            score(t.intermediate[step], direction) for t in completed if step in t.intermediate
        ]
        if not at_step or len(at_step) < self.min_trials:
            return False
        median = statistics.median(at_step)
        if math.isnan(median):  # +inf and -inf in the middle: no meaningful bar
            return False
        best = min(score(v, direction) for s, v in trial.intermediate.items() if s <= step)
        return best > median
