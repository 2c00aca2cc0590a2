"""What ``bayes``'s GP learns from: the observed trials, their points, and the value transform.

Step 2 of :mod:`hpo.strategies._bayes`: pruned trials count with their last reported value,
failed ones (not interrupted) as the worst value seen; values are minimised, standardised and
Yeo-Johnson-warped, then shifted by the prior mean. :mod:`hpo.strategies._bayes_model` uses the
very same functions to draw the model, so the strategy and its picture cannot drift apart.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from hpo.strategies._bayes_codec import _Codec
from hpo.trial import Direction, FrozenTrial, TrialState

__all__ = ["_Transform", "_training_data", "observed_trials"]


def observed_trials(trials: Sequence[FrozenTrial]) -> list[FrozenTrial]:
    """The trials the GP learns from: complete or pruned with a value, and failed (not
    interrupted) ones."""
    return [
        t
        for t in trials
        if (t.state in (TrialState.COMPLETE, TrialState.PRUNED) and t.value is not None)
        or (t.state is TrialState.FAILED and not t.interrupted)
    ]


def _yeo_johnson(x: np.ndarray, lmbda: float) -> np.ndarray:
    """The Yeo-Johnson power transform (as ``scipy.stats.yeojohnson`` computes it)."""
    pos = x >= 0
    out = np.empty_like(x)
    lp, ln = np.log1p(x[pos]), np.log1p(-x[~pos])
    out[pos] = lp if abs(lmbda) < 1e-16 else np.expm1(lmbda * lp) / lmbda
    out[~pos] = -ln if abs(lmbda - 2) < 1e-16 else -np.expm1((2 - lmbda) * ln) / (2 - lmbda)
    return out


def _yeo_johnson_lambda(x: np.ndarray) -> float:
    """The maximum-likelihood lambda: ``scipy.stats.yeojohnson_normmax``'s bounded search with
    its bounds and tolerance, on a plain NumPy log-likelihood (scipy's own, with its array-API
    dispatch, took 1.5 ms a call and a tenth of a proposal)."""
    from scipy import optimize

    n = len(x)
    shift = float(np.sum(np.sign(x) * np.log1p(np.abs(x))))

    def neg_llf(lmbda: float) -> float:
        var = float(np.var(_yeo_johnson(x, lmbda)))
        if not var >= np.finfo(float).tiny:
            return np.inf
        return -(-0.5 * n * math.log(var) + (lmbda - 1) * shift)

    eps = np.finfo(float).eps
    log1p_max_x = math.log1p(20 * float(np.max(np.abs(x))))
    lb = (math.log(np.finfo(float).tiny) - math.log(eps)) / 2 / log1p_max_x
    ub = (math.log(np.finfo(float).max) + math.log(eps)) / 2 / log1p_max_x
    if np.all(x < 0):
        lb, ub = 2 - ub, 2 - lb
    elif np.any(x < 0):
        lb, ub = max(2 - ub, lb), min(2 - lb, ub)
    return float(optimize.fminbound(neg_llf, lb, ub, xtol=1.48e-08))


class _Transform:
    """Objective values -> the GP's targets, and back (for drawing the surrogate).

    Minimised (negated to maximise), divided by the largest magnitude, standardised,
    Yeo-Johnson-warped (when ``warp``) and standardised again, then shifted by the prior
    mean, with the constants kept so :meth:`inverse` can map a
    prediction back to objective units.
    """

    def __init__(self, values: np.ndarray, sign: float, warp: bool, prior_mean: float) -> None:
        self.sign = sign
        self.prior_mean = prior_mean
        y = sign * np.asarray(values, dtype=float)
        top = float(np.max(np.abs(y))) if len(y) else 0.0
        self.top = top if top > 0 and math.isfinite(top) else 1.0
        y = y / self.top
        self.m1, self.s1 = float(y.mean()), float(y.std()) or 1.0
        z = (y - self.m1) / self.s1
        self.lmbda: float | None = None
        self.m2, self.s2 = 0.0, 1.0
        if warp and len(z) >= 3 and float(z.std()) > 0:
            with np.errstate(all="ignore"):
                lmbda = _yeo_johnson_lambda(z)
                w = _yeo_johnson(z, lmbda)
            if np.all(np.isfinite(w)) and float(w.std()) > 0:
                self.lmbda = lmbda
                self.m2, self.s2 = float(w.mean()), float(w.std())

    def __call__(self, values: np.ndarray) -> np.ndarray:
        z = (self.sign * np.asarray(values, dtype=float) / self.top - self.m1) / self.s1
        if self.lmbda is not None:
            z = (_yeo_johnson(z, self.lmbda) - self.m2) / self.s2
        return z - self.prior_mean

    def inverse(self, t: np.ndarray) -> np.ndarray:
        z = np.asarray(t, dtype=float) + self.prior_mean
        if self.lmbda is not None:
            z = _yeo_johnson_inverse(z * self.s2 + self.m2, self.lmbda)
        return self.sign * (z * self.s1 + self.m1) * self.top


def _yeo_johnson_inverse(w: np.ndarray, lmbda: float) -> np.ndarray:
    out = np.empty_like(w)
    pos = w >= 0
    with np.errstate(all="ignore"):
        if abs(lmbda) < 1e-16:
            out[pos] = np.expm1(w[pos])
        else:
            out[pos] = np.power(np.maximum(lmbda * w[pos] + 1, 0.0), 1 / lmbda) - 1
        if abs(lmbda - 2) < 1e-16:
            out[~pos] = -np.expm1(-w[~pos])
        else:
            a = 2 - lmbda
            out[~pos] = 1 - np.power(np.maximum(1 - a * w[~pos], 0.0), 1 / a)
    return out


def _training_data(
    codec: _Codec,
    observed: Sequence[FrozenTrial],
    direction: Direction,
    warp: bool,
    prior_mean: float,
) -> tuple[np.ndarray, np.ndarray, _Transform]:
    """The GP's inputs and targets (minimised, standardised, warped, shifted by the prior
    mean) from the trials that have a value or failed (see the module docstring, step 2), and
    the transform that made the targets."""
    sign = 1.0 if direction is Direction.MINIMIZE else -1.0
    values = np.array([t.value for t in observed if t.value is not None], dtype=float)
    worst = float(values.max() if sign > 0 else values.min())
    raw = np.array([t.value if t.value is not None else worst for t in observed], dtype=float)
    transform = _Transform(raw, sign, warp, prior_mean)
    x = np.array([codec.encode(t.params) for t in observed])
    return x, transform(raw), transform
