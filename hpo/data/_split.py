"""Deterministic, class-stratified index splits.

Rules:
    * The same labels, fraction (or size) and seed always give the same indices, on any
      machine: only ``numpy.random.default_rng(seed)`` draws them.
    * Each class keeps its share: ``round(fraction * n_class)`` images of every class go to the
      validation side (at least one, and at least one left for training, when a class has two or
      more images).
    * Returned index arrays are sorted, so the original order of the data is kept.
"""

from __future__ import annotations

import numpy as np

__all__ = ["stratified_split", "stratified_subset"]


def stratified_split(
    labels: np.ndarray, val_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Split ``range(len(labels))`` into (train, validation) indices, stratified by label."""
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction!r}.")
    rng = np.random.default_rng(seed)
    train: list[np.ndarray] = []
    val: list[np.ndarray] = []
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        n_val = int(np.floor(val_fraction * len(idx) + 0.5))
        if len(idx) >= 2:
            n_val = min(max(n_val, 1), len(idx) - 1)
        val.append(idx[:n_val])
        train.append(idx[n_val:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(val))


def stratified_subset(labels: np.ndarray, size: int, seed: int) -> np.ndarray:
    """``size`` indices of ``labels`` whose class shares match the whole set's (sorted).

    Each class is shuffled; an image's key is its rank within its class divided by the class
    size; the ``size`` smallest keys win, so every prefix is stratified.
    """
    if size >= len(labels):
        return np.arange(len(labels))
    rng = np.random.default_rng(seed)
    key = np.empty(len(labels), dtype=np.float64)
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        key[idx] = (rng.permutation(len(idx)) + 0.5) / len(idx)
    order = np.argsort(key, kind="stable")
    return np.sort(order[:size])
