"""hpo: hyperparameter optimisation for deep learning.

>>> import hpo
>>> space = hpo.SearchSpace({"x": hpo.Float(-5, 5)})
>>> study = hpo.create_study(space=space, strategy="random", seed=0)
>>> study.optimize(lambda t: t.params["x"] ** 2, n_trials=20)
>>> round(study.best_value, 3) < 1
True
"""

from __future__ import annotations

from hpo import executors, pruners
from hpo._run import RunResult, run_study
from hpo.exceptions import (
    DuplicatedStudyError,
    HpoError,
    PrunerError,
    SearchExhausted,
    SpaceError,
    StorageError,
    StrategyError,
    StudyMismatchError,
    StudyNotFoundError,
    TrialPruned,
)
from hpo.executors import RayExecutor
from hpo.pruners import ASHA, PRUNERS, Hyperband, MedianPruner, NoPruner, get_pruner
from hpo.space import (
    Categorical,
    ExperimentSpec,
    Float,
    Int,
    SearchSpace,
    available_spaces,
    load_space,
)
from hpo.strategies import STRATEGIES, Strategy, get_strategy
from hpo.study import (
    STUDY_NAME_RULE,
    Study,
    check_study_name,
    create_study,
    delete_study,
    list_studies,
    load_study,
)
from hpo.trial import Direction, FrozenTrial, TrialState
from hpo.trial._checkpoints import Checkpointing
from hpo.trial._trial import Trial

__version__ = "0.1.0"

__all__ = [
    "ASHA",
    "PRUNERS",
    "STRATEGIES",
    "STUDY_NAME_RULE",
    "Categorical",
    "Checkpointing",
    "Direction",
    "DuplicatedStudyError",
    "ExperimentSpec",
    "Float",
    "FrozenTrial",
    "HpoError",
    "Hyperband",
    "Int",
    "MedianPruner",
    "NoPruner",
    "PrunerError",
    "RayExecutor",
    "RunResult",
    "SearchExhausted",
    "SearchSpace",
    "SpaceError",
    "StorageError",
    "Strategy",
    "StrategyError",
    "Study",
    "StudyMismatchError",
    "StudyNotFoundError",
    "Trial",
    "TrialPruned",
    "TrialState",
    "__version__",
    "available_spaces",
    "check_study_name",
    "create_study",
    "delete_study",
    "executors",
    "get_pruner",
    "get_strategy",
    "list_studies",
    "load_space",
    "load_study",
    "pruners",
    "run_study",
]
