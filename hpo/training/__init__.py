"""The training loop that turns a trial's params into a trained model and a score.

``train_and_evaluate(trial, model=..., data=...)`` builds the model from ``trial.params``,
trains it with the optimiser the params choose, reports validation accuracy each epoch and
returns the best. ``make_objective(space.spec)`` wraps it for a named space.
``evaluate_study(study)`` retrains the best configuration on train + validation, tests it on
the test split the search never saw and stores the result; ``load_model(path)`` rebuilds a
saved final model.
"""

from __future__ import annotations

from ._config import LR_SCHEDULES, OPTIMIZERS, TrainConfig, make_optimizer, make_scheduler
from ._device import configure_threads, resolve_device, seed_everything
from ._final import (
    MODEL_DIR,
    FinalModel,
    evaluate_study,
    load_model,
    model_path,
    read_model_file,
    save_model,
    score_model,
    train_final,
)
from ._loop import evaluate, train_and_evaluate, train_epoch
from ._objective import Objective, make_objective
from ._protocol import TrialLike

__all__ = [
    "LR_SCHEDULES",
    "MODEL_DIR",
    "OPTIMIZERS",
    "FinalModel",
    "Objective",
    "TrainConfig",
    "TrialLike",
    "configure_threads",
    "evaluate",
    "evaluate_study",
    "load_model",
    "make_objective",
    "make_optimizer",
    "make_scheduler",
    "model_path",
    "read_model_file",
    "resolve_device",
    "save_model",
    "score_model",
    "seed_everything",
    "train_and_evaluate",
    "train_epoch",
    "train_final",
]
