"""Where and how training runs: the device, torch's thread count, the seeds."""

from __future__ import annotations

import os
import random

import numpy as np
import torch

__all__ = ["configure_threads", "resolve_device", "seed_everything"]

_THREAD_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "TORCH_NUM_THREADS")
_threads_configured = False


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """``device`` when given ("cpu", "cuda", "cuda:1"), else cuda when available, else cpu."""
    if device is not None:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def configure_threads() -> int:
    """Let torch use every core this process may run on, once per process; returns the count.

    Leaves torch alone when ``OMP_NUM_THREADS``, ``MKL_NUM_THREADS`` or ``TORCH_NUM_THREADS`` is
    set: a scheduler (Ray gives each worker ``OMP_NUM_THREADS``) or the user has decided.
    """
    global _threads_configured
    if not _threads_configured:
        _threads_configured = True
        if not any(os.environ.get(k) for k in _THREAD_ENV):
            try:
                cores = len(os.sched_getaffinity(0))
            except AttributeError:  # not on Linux
                cores = os.cpu_count() or 1
            torch.set_num_threads(max(1, cores))
    return torch.get_num_threads()


def seed_everything(seed: int) -> None:
    """Seed Python's, numpy's and torch's global random generators (CUDA's included)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
