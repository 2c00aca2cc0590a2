"""An objective for a named space: its spec says which model, data set and budget to use.

Rules of :func:`make_objective`:
    * ``space_meta`` is a named space's spec (``hpo.load_space(...).spec``) or meta:
      ``model`` (a key of ``hpo.models.MODELS``, required), ``dataset`` ("mnist", the
      default), ``metric`` ("val_accuracy", the default; nothing else is measured), ``budget``
      with ``epochs`` (default 3) and ``max_train_images`` (null = all).
    * A trial's own ``epochs`` param, when the space searches it, wins over the budget's.
    * The data are loaded once per process and argument set (every objective made with the same
      ``data_dir``, budget and seed shares one copy); the source is logged once (DEBUG level,
      ``hpo.training`` logger) and kept in ``objective.data.source`` / ``.summary()`` for a
      caller to print.
    * The objective pickles without its data (a Ray worker reloads them locally, once).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from hpo.data import MnistData, load_mnist
from hpo.exceptions import SpaceError
from hpo.models import MODELS
from hpo.space import ExperimentSpec
from hpo.space._values import get_int

from ._config import DEFAULT_EPOCHS
from ._loop import train_and_evaluate
from ._protocol import TrialLike

__all__ = ["DATASETS", "METRICS", "Objective", "make_objective"]

logger = logging.getLogger("hpo.training")

DATASETS: tuple[str, ...] = ("mnist",)
METRICS: tuple[str, ...] = ("val_accuracy",)


@functools.lru_cache(maxsize=4)
def _load(data_dir: str | None, max_train: int | None, seed: int) -> MnistData:
    data = load_mnist(data_dir, max_train=max_train, seed=seed)
    logger.debug("data: %s", data.summary())  # the CLI prints objective.data.summary() itself
    return data


class Objective:
    """``objective(trial) -> best validation accuracy``: trains ``model`` on the space's data."""

    def __init__(
        self,
        model: str,
        *,
        epochs: int,
        max_train: int | None,
        data_dir: str | None,
        device: str | None,
        seed: int,
    ) -> None:
        self.model = model
        self.epochs = epochs
        self.max_train = max_train
        self.data_dir = data_dir
        self.device = device
        self.seed = seed

    @property
    def data(self) -> MnistData:
        """The data set, loaded on first use and shared within the process."""
        return _load(self.data_dir, self.max_train, self.seed)

    def __call__(self, trial: TrialLike) -> float:
        epochs = None if "epochs" in trial.params else self.epochs
        return train_and_evaluate(
            trial,
            model=self.model,
            data=self.data,
            epochs=epochs,
            device=self.device,
            seed=self.seed,
        )

    def __repr__(self) -> str:
        return (
            f"Objective(model={self.model!r}, epochs={self.epochs}, max_train={self.max_train}, "
            f"data_dir={self.data_dir!r}, device={self.device!r}, seed={self.seed})"
        )


def make_objective(
    space_meta: ExperimentSpec | Mapping[str, Any],
    *,
    data_dir: str | Path | None = None,
    device: str | torch.device | None = None,
    seed: int = 0,
) -> Objective:
    """An objective for the experiment ``space_meta``; loads the data now.

    Args:
        space_meta: The named space's :class:`~hpo.space.ExperimentSpec` (``space.spec``) or
            its meta as a mapping: ``model``, ``dataset``, ``metric``, ``budget``.
        data_dir: A folder of MNIST IDX files; default: cache, download, or embedded set.
        device: Training device; default cuda when available, else cpu.
        seed: Seed of the train/validation split and base seed of every trial's run.

    Raises:
        SpaceError: the meta names an unknown model, data set or metric, or a bad budget.
        DataError: ``data_dir`` is unusable.
    """
    spec = (
        space_meta
        if isinstance(space_meta, ExperimentSpec)
        else ExperimentSpec.from_meta(space_meta)
    )
    model = spec.model
    if model not in MODELS:
        raise SpaceError(f"space meta 'model': must be one of {sorted(MODELS)}, got {model!r}.")
    dataset = spec.dataset or "mnist"
    if dataset not in DATASETS:
        raise SpaceError(f"space meta 'dataset': must be one of {list(DATASETS)}, got {dataset!r}.")
    metric = spec.metric or "val_accuracy"
    if metric not in METRICS:
        raise SpaceError(f"space meta 'metric': must be one of {list(METRICS)}, got {metric!r}.")
    budget = spec.budget or {}
    epochs = get_int(budget, "epochs", 1, 10000, DEFAULT_EPOCHS)
    max_train = None
    if budget.get("max_train_images") is not None:
        max_train = get_int(budget, "max_train_images", 1, 10**9, 1)
    objective = Objective(
        str(model),
        epochs=epochs,
        max_train=max_train,
        data_dir=str(Path(data_dir).expanduser().resolve()) if data_dir is not None else None,
        device=str(device) if device is not None else None,
        seed=seed,
    )
    objective.data  # noqa: B018 - load now, so errors and the source show before any trial
    return objective
