"""Executors: where a study's trials run.

In-process is the default (:class:`InProcessExecutor`, ``Study.optimize`` without an
executor): no start-up cost, one trial at a time. :class:`RayExecutor` runs several trials at
once on Ray, on this machine or across a cluster, each with its own CPU/GPU request. An
executor never chooses params: the driver loop (written once, in :class:`Executor`) asks the
study's strategy, the executor runs ``objective(trial)`` somewhere through
:func:`run_trial`, and the trial's reports and result go straight to the study's store.
"""

from __future__ import annotations

from hpo.executors._base import Executor, Finished
from hpo.executors._inprocess import InProcessExecutor
from hpo.executors._ray import RayExecutor
from hpo.executors._recovery import mark_interrupted
from hpo.executors._runner import run_trial

__all__ = [
    "Executor",
    "Finished",
    "InProcessExecutor",
    "RayExecutor",
    "mark_interrupted",
    "run_trial",
]
