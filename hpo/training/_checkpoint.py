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
import time
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

log = logging.getLogger("hpo.training")

__all__ = ["FORMAT", "LoopCheckpoints"]

FORMAT = "hpo-loop-2"


_TENSOR = "__hpo_tensor__"


def _skeleton(obj: Any, found: list[torch.Tensor]) -> Any:
    """``obj`` (a state dict) with each tensor replaced by a marker holding its index in
    ``found``; containers rebuilt, everything else (numbers, strings) shared."""
    if isinstance(obj, torch.Tensor):
        found.append(obj)
        return (_TENSOR, len(found) - 1)
    if isinstance(obj, Mapping):
        return {k: _skeleton(v, found) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_skeleton(v, found) for v in obj]
    if isinstance(obj, tuple):
        return tuple(_skeleton(v, found) for v in obj)
    return obj


def _pack(obj: Any) -> dict[str, Any]:
    """A copy of ``obj`` that training can no longer change, cheap to write: every tensor is
    copied into one flat CPU buffer per dtype (one memcpy each, and ``torch.save`` then
    writes a few large buffers instead of dozens of small ones: a third less time for an
    MLP's state)."""
    found: list[torch.Tensor] = []
    skeleton = _skeleton(obj, found)
    by_dtype: dict[torch.dtype, list[int]] = {}
    for i, t in enumerate(found):
        by_dtype.setdefault(t.dtype, []).append(i)
    flat = {
        str(dtype).removeprefix("torch."): torch.cat(
            [found[i].detach().reshape(-1).to("cpu") for i in idx]
        )
        for dtype, idx in by_dtype.items()
    }
    layout = [(str(t.dtype).removeprefix("torch."), tuple(t.shape)) for t in found]
    return {"skeleton": skeleton, "flat": flat, "layout": layout}


def _unpack(packed: Mapping[str, Any]) -> Any:
    """The state :func:`_pack` copied, its tensors views of the flat buffers."""
    offsets = dict.fromkeys(packed["flat"], 0)
    tensors = []
    for dtype, shape in packed["layout"]:
        n = int(np.prod(shape)) if shape else 1
        start = offsets[dtype]
        tensors.append(packed["flat"][dtype][start : start + n].reshape(shape))
        offsets[dtype] = start + n

    def fill(obj: Any) -> Any:
        if isinstance(obj, tuple) and len(obj) == 2 and obj[0] == _TENSOR:
            return tensors[obj[1]]
        if isinstance(obj, Mapping):
            return {k: fill(v) for k, v in obj.items()}
        if isinstance(obj, list):
            return [fill(v) for v in obj]
        if isinstance(obj, tuple):
            return tuple(fill(v) for v in obj)
        return obj

    return fill(packed["skeleton"])


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
        self.overhead = float(getattr(settings, "overhead", 0.0)) if self.enabled else 0.0
        self._saved_at = 0  # the epoch of the last save (or of the checkpoint resumed from)
        self._pack_seconds = 0.0  # main-thread time of the last save

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
            states = _unpack(state["states"])
            net.load_state_dict(states["model"])
            optimizer.load_state_dict(states["optimizer"])
            if scheduler is not None and states.get("scheduler") is not None:
                scheduler.load_state_dict(states["scheduler"])
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
        self._saved_at = int(state["epoch"])
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
        *,
        due: bool = False,
    ) -> None:
        """Checkpoint after ``epoch`` when it is due: every ``every`` epochs unless saving
        would cost more than ``overhead`` of the training since the last save (see
        :class:`hpo.Checkpointing`); after the last epoch when the trial's value ``best``
        ranks it among the trials that keep theirs; always when ``due`` (a trial the pruner
        pauses here)."""
        if not self.enabled:
            return
        if not (due or epoch == self.epochs) and (
            epoch % self.every or self._too_soon(epoch, history)
        ):
            return
        if epoch == self.epochs and not due:
            # The end: a checkpoint the trial's completion would delete at once (it is not
            # among the best kept) is not worth writing.
            keeps = getattr(self.trial, "would_keep_checkpoint", None)
            if callable(keeps) and not keeps(best):
                return
        start = time.perf_counter()
        state = {
            "format": FORMAT,
            "epoch": epoch,
            "states": _pack(
                {
                    "model": net.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "scheduler": None if scheduler is None else scheduler.state_dict(),
                }
            ),
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
        self._saved_at = epoch
        self._pack_seconds = time.perf_counter() - start

    def _too_soon(self, epoch: int, history: Mapping[str, list[Any]]) -> bool:
        """Whether one save (its main-thread part and its last write) costs more than
        ``overhead`` of the training time since the last save."""
        if self.overhead <= 0 or not self._saved_at:
            return False
        written = getattr(self.trial, "save_seconds", None)
        if written is None:
            return False
        trained = sum(float(t) for t in history.get("epoch_time", [])[self._saved_at : epoch])
        return (self._pack_seconds + float(written)) > self.overhead * trained
