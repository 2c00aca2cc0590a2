"""Executors: where a study's trials run.

In-process is the default (``Study.optimize`` without an executor): no start-up cost, one
trial at a time. :class:`RayExecutor` runs several trials at once on Ray, on this machine or
across a cluster, each with its own CPU/GPU request. An executor never chooses params: the
driver asks the study's strategy, the executor runs ``objective(trial)`` somewhere, and the
trial's reports and result go straight to the study's store.
"""

from __future__ import annotations

from hpo.executors._ray import RayExecutor

__all__ = ["RayExecutor"]
