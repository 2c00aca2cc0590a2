"""The training loop's checkpoints: everything a run needs to go on exactly where it stopped.

After every ``every``-th epoch (and the last) :class:`LoopCheckpoints` saves, through
``trial.checkpoint``: the model's, optimiser's and scheduler's state, the RNG states (torch's
global one, the loop's batch-order generator, CUDA's, numpy's and Python's), the epoch, the
curves so far and the best value. A resumed trial restores all of it before its next epoch,
so its curve, epoch count and result are those of a run that was never interrupted (same
machine, same torch version).

Cost: the state is copied in memory in the training thread (a memcpy), then written by a
background thread while the next epoch trains; the trial waits for the last write before it
ends. ``benchmarks/bench_checkpoint.py`` measures it.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

log = logging.getLogger("hpo.training")

__all__ = ["FORMAT", "LoopCheckpoints"]

FORMAT = "hpo-loop-1"


def _copy(obj: Any) -> Any:
    """A copy of a state dict that training can no longer change: tensors cloned (to the
    CPU), containers rebuilt, everything else (numbers, strings) shared."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().to("cpu", copy=True)
    if isinstance(obj, Mapping):
        return {k: _copy(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_copy(v) for v in obj]
    if isinstance(obj, tuple):
        return tuple(_copy(v) for v in obj)
    return obj


class LoopCheckpoints:
    """Saves and restores the built-in loop's state through ``trial``'s checkpoint API.

    A trial without that API (a plain object that only reports), or a study that keeps no
    checkpoints, makes every method a no-op.
    """

    def __init__(self, trial: Any, epochs: int) -> None:
        self.trial = trial
        self.epochs = epochs
        settings = getattr(trial, "checkpointing", None)
        self.enabled = callable(getattr(trial, "checkpoint", None)) and settings is not None
        self.every = int(getattr(settings, "every", 1)) if self.enabled else 0

    def restore(
        self,
        net: nn.Module,
        optimizer: torch.optim.Optimizer,
        scheduler: Any,
        generator: torch.Generator,
    ) -> dict[str, Any] | None:
        """Load the trial's last checkpoint into the model, optimiser, scheduler and RNGs;
        its ``epoch``, ``history``, ``best`` and ``best_epoch``, or None for a fresh start."""
        last = getattr(self.trial, "last_checkpoint", None)
        if not callable(last):
            return None
        state = last(map_location="cpu")
        if state is None:
            return None
        if not isinstance(state, Mapping) or state.get("format") != FORMAT:
            log.warning("trial %s: its checkpoint is not the training loop's; starting over",
                        getattr(self.trial, "number", "?"))  # fmt: skip
            return None
        try:
            net.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            if scheduler is not None and state.get("scheduler") is not None:
                scheduler.load_state_dict(state["scheduler"])
        except (RuntimeError, KeyError, ValueError) as e:
            log.warning("trial %s: its checkpoint does not fit the model (%s); starting over",
                        getattr(self.trial, "number", "?"), e)  # fmt: skip
            return None
        rng = state["rng"]
        torch.set_rng_state(rng["torch"])
        generator.set_state(rng["generator"])
        if rng.get("cuda") is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(rng["cuda"])
        np.random.set_state(rng["numpy"])
        random.setstate(rng["python"])
        return {
            "epoch": int(state["epoch"]),
            "history": {k: list(v) for k, v in state["history"].items()},
            "best": float(state["best"]),
            "best_epoch": int(state["best_epoch"]),
        }

    def save(
        self,
        epoch: int,
        net: nn.Module,
        optimizer: torch.optim.Optimizer,
        scheduler: Any,
        generator: torch.Generator,
        history: Mapping[str, list[Any]],
        best: float,
        best_epoch: int,
    ) -> None:
        """Checkpoint after ``epoch`` when it is due (every ``every`` epochs, and the last)."""
        if not self.enabled or (epoch % self.every and epoch != self.epochs):
            return
        state = {
            "format": FORMAT,
            "epoch": epoch,
            "model": _copy(net.state_dict()),
            "optimizer": _copy(optimizer.state_dict()),
            "scheduler": None if scheduler is None else _copy(scheduler.state_dict()),
            "rng": {
                "torch": torch.get_rng_state(),
                "generator": generator.get_state(),
                "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None,
                "numpy": np.random.get_state(),
                "python": random.getstate(),
            },
            "history": {k: list(v) for k, v in history.items()},
            "best": best,
            "best_epoch": best_epoch,
        }
        self.trial.checkpoint(state, epoch, background=True)
