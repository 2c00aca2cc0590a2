"""Training knobs read from a trial's params, and the optimiser they make.

Params read (all optional; absent ones take the default):
    optimizer     "sgd", "adam" or "rmsprop", default adam.
    lr            float > 0, default 1e-3.
    weight_decay  float >= 0, default 0 (L2 penalty, as the optimiser's ``weight_decay``).
    momentum      float in [0, 1) — sgd (default 0.9) and rmsprop (default 0).
    nesterov      bool, default false — sgd only; needs momentum > 0.
    beta1, beta2  floats in [0, 1), defaults 0.9 and 0.999 — adam only.
    alpha         float in (0, 1), default 0.99 — rmsprop's smoothing constant.
    batch_size    int in [1, 65536], default 64.
    epochs        int in [1, 10000], default 3 (an ``epochs`` argument of the loop overrides).
    lr_schedule   "constant" (default), "cosine": the learning rate decays from ``lr`` to 0
                  along a half cosine over all the run's steps (Loshchilov & Hutter 2017,
                  without restarts) — short budgets gain most from it — or "onecycle": it
                  warms up to ``lr`` over the first 30 % of the steps, then anneals to about
                  0 (Smith & Topin 2018; momentum is left as the optimiser's constants say).
    label_smoothing  float in [0, 0.5), default 0 — the cross-entropy's target smoothing.
    augment_shift    float in [0, 8] pixels, default 0 — random shift of each training image.
    augment_rotate   float in [0, 45] degrees, default 0 — random rotation of each training
                     image (see ``_augment``; validation and test images are never changed).
A constant of another optimiser (``beta1`` when the optimiser is sgd) is inactive and ignored.
A value that breaks its rule raises ``SpaceError`` naming the parameter.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import torch

from hpo.exceptions import SpaceError
from hpo.space._values import get_bool, get_choice, get_float, get_int

__all__ = ["LR_SCHEDULES", "OPTIMIZERS", "TrainConfig", "make_optimizer", "make_scheduler"]

OPTIMIZERS: tuple[str, ...] = ("sgd", "adam", "rmsprop")
LR_SCHEDULES: tuple[str, ...] = ("constant", "cosine", "onecycle")
DEFAULT_EPOCHS = 3


@dataclass(frozen=True)
class TrainConfig:
    """Optimiser and schedule of one training run; constants of other optimisers stay default."""

    optimizer: str = "adam"
    lr: float = 1e-3
    weight_decay: float = 0.0
    momentum: float = 0.0
    nesterov: bool = False
    beta1: float = 0.9
    beta2: float = 0.999
    alpha: float = 0.99
    batch_size: int = 64
    epochs: int = DEFAULT_EPOCHS
    lr_schedule: str = "constant"
    label_smoothing: float = 0.0
    augment_shift: float = 0.0
    augment_rotate: float = 0.0

    @classmethod
    def from_params(cls, params: Mapping[str, Any], *, epochs: int | None = None) -> TrainConfig:
        """Read and check the training params; ``epochs``, when given, wins over the params'."""
        opt = get_choice(params, "optimizer", OPTIMIZERS, "adam")
        kw: dict[str, Any] = {}
        if opt == "sgd":
            kw["momentum"] = get_float(params, "momentum", 0.0, 1.0, 0.9, high_open=True)
            kw["nesterov"] = get_bool(params, "nesterov", False)
            if kw["nesterov"] and kw["momentum"] == 0.0:
                raise SpaceError("parameter 'nesterov': needs momentum > 0, got momentum=0.0.")
        elif opt == "adam":
            kw["beta1"] = get_float(params, "beta1", 0.0, 1.0, 0.9, high_open=True)
            kw["beta2"] = get_float(params, "beta2", 0.0, 1.0, 0.999, high_open=True)
        else:
            kw["momentum"] = get_float(params, "momentum", 0.0, 1.0, 0.0, high_open=True)
            kw["alpha"] = get_float(params, "alpha", 0.0, 1.0, 0.99, low_open=True, high_open=True)
        if epochs is None:
            epochs = get_int(params, "epochs", 1, 10000, DEFAULT_EPOCHS)
        elif epochs < 1:
            raise SpaceError(f"argument 'epochs': must be at least 1, got {epochs!r}.")
        return cls(
            optimizer=opt,
            lr=get_float(params, "lr", 0.0, math.inf, 1e-3, low_open=True),
            weight_decay=get_float(params, "weight_decay", 0.0, math.inf, 0.0),
            batch_size=get_int(params, "batch_size", 1, 65536, 64),
            epochs=epochs,
            lr_schedule=get_choice(params, "lr_schedule", LR_SCHEDULES, "constant"),
            label_smoothing=get_float(params, "label_smoothing", 0.0, 0.5, 0.0, high_open=True),
            augment_shift=get_float(params, "augment_shift", 0.0, 8.0, 0.0),
            augment_rotate=get_float(params, "augment_rotate", 0.0, 45.0, 0.0),
            **kw,
        )


def make_optimizer(
    config: TrainConfig, parameters: Iterable[torch.nn.Parameter]
) -> torch.optim.Optimizer:
    """The torch optimiser ``config`` describes, over ``parameters``."""
    if config.optimizer == "sgd":
        return torch.optim.SGD(
            parameters,
            lr=config.lr,
            momentum=config.momentum,
            nesterov=config.nesterov,
            weight_decay=config.weight_decay,
        )
    if config.optimizer == "adam":
        return torch.optim.Adam(
            parameters,
            lr=config.lr,
            betas=(config.beta1, config.beta2),
            weight_decay=config.weight_decay,
        )
    return torch.optim.RMSprop(
        parameters,
        lr=config.lr,
        alpha=config.alpha,
        momentum=config.momentum,
        weight_decay=config.weight_decay,
    )


def make_scheduler(
    config: TrainConfig, optimizer: torch.optim.Optimizer, steps: int
) -> torch.optim.lr_scheduler.LRScheduler | None:
    """The per-step learning-rate schedule over ``steps`` optimiser steps; None for constant."""
    if config.lr_schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, steps))
    if config.lr_schedule == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(
            optimizer,
            max_lr=config.lr,
            total_steps=max(2, steps),
            pct_start=0.3,
            cycle_momentum=False,
        )
    return None
