"""The training loop that turns a trial's params into a trained model and a score.

``train_and_evaluate(trial, model=..., data=...)`` builds the model from ``trial.params``,
trains it with the optimiser the params choose, reports validation accuracy each epoch and
returns the best. ``make_objective(space.meta)`` wraps it for a named space.
"""

from __future__ import annotations

from ._config import LR_SCHEDULES, OPTIMIZERS, TrainConfig, make_optimizer, make_scheduler
from ._device import configure_threads, resolve_device, seed_everything
from ._loop import evaluate, train_and_evaluate, train_epoch
from ._objective import Objective, make_objective
from ._protocol import TrialLike

__all__ = [
    "LR_SCHEDULES",
    "OPTIMIZERS",
    "Objective",
    "TrainConfig",
    "TrialLike",
    "configure_threads",
    "evaluate",
    "make_objective",
    "make_optimizer",
    "make_scheduler",
    "resolve_device",
    "seed_everything",
    "train_and_evaluate",
    "train_epoch",
]
