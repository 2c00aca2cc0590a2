"""What ``bayes``'s GP learns from: the observed trials, their points, and the value transform.

Step 2 of :mod:`hpo.strategies._bayes`: pruned trials count with their last reported value,
failed ones (not interrupted) as the worst value seen; values are minimised, standardised and
Yeo-Johnson-warped, then shifted by the prior mean. Where the values to minimise are all
positive and span two orders of magnitude or more (a loss that approaches 0), a second GP is
fitted to their logarithm, and the model whose evidence is higher (:func:`fit_targets`) is the
one used. :mod:`hpo.strategies._bayes_model` uses the very same functions to draw the model,
so the strategy and its picture cannot drift apart.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from hpo.strategies._bayes_codec import _Codec
from hpo.trial import Direction, FrozenTrial, TrialState

if TYPE_CHECKING:
    from hpo.strategies._gp import GP

__all__ = ["_Transform", "_training_data", "fit_targets", "observed_trials"]

# The values to minimise must span this ratio (largest / smallest, all positive) before their
# logarithm is tried as the GP's target: below it the log is nearly linear over the data and
# could not fit better.
_LOG_SPAN = 100.0
# How much better (in log evidence, nats per observed trial) the log model must explain the
# values to be used. A loss that falls by orders of magnitude wins by ~1 per trial; a smooth
# function that is merely positive (Rosenbrock) by ~0.1-0.4, and modelling its log there cost
# the parallel search its catch-up (benchmarks/README.md).
_LOG_MARGIN = 0.5


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

    Minimised (negated to maximise), its logarithm taken (when ``log``), divided by the
    largest magnitude, standardised, Yeo-Johnson-warped (when ``warp``) and standardised again,
    then shifted by the prior mean, with the constants kept so :meth:`inverse` can map a
    prediction back to objective units.
    """

    def __init__(
        self, values: np.ndarray, sign: float, warp: bool, prior_mean: float, log: bool = False
    ) -> None:
        self.sign = sign
        self.prior_mean = prior_mean
        y = sign * np.asarray(values, dtype=float)
        self.log = bool(log) and loggable(y)
        if self.log:
            y = np.log(y)
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

    def _unit(self, values: np.ndarray) -> np.ndarray:
        y = self.sign * np.asarray(values, dtype=float)
        if self.log:
            y = np.log(y)
        return (y / self.top - self.m1) / self.s1

    def __call__(self, values: np.ndarray) -> np.ndarray:
        z = self._unit(values)
        if self.lmbda is not None:
            z = (_yeo_johnson(z, self.lmbda) - self.m2) / self.s2
        return z - self.prior_mean

    def log_jacobian(self, values: np.ndarray) -> float:
        """``sum(log |d target / d value|)`` over ``values``: what turns the GP's likelihood
        of the targets into a likelihood of the values, so two transforms can be compared."""
        v = np.abs(np.asarray(values, dtype=float))
        z = self._unit(values)
        out = -len(v) * math.log(self.top * self.s1)
        if self.log:
            out -= float(np.log(v).sum())
        if self.lmbda is not None:  # d yj / dz = (1 + |z|)^(+-(lambda - 1))
            power = np.where(z >= 0, self.lmbda - 1, 1 - self.lmbda)
            out += float((power * np.log1p(np.abs(z))).sum()) - len(v) * math.log(self.s2)
        return out

    def inverse(self, t: np.ndarray) -> np.ndarray:
        z = np.asarray(t, dtype=float) + self.prior_mean
        if self.lmbda is not None:
            z = _yeo_johnson_inverse(z * self.s2 + self.m2, self.lmbda)
        y = (z * self.s1 + self.m1) * self.top
        return self.sign * (np.exp(y) if self.log else y)


def loggable(minimised: np.ndarray) -> bool:
    """Whether values to minimise are worth modelling by their logarithm: at least three, all
    positive, the largest at least ``_LOG_SPAN`` times the smallest."""
    y = np.asarray(minimised, dtype=float)
    return bool(
        len(y) >= 3
        and np.all(np.isfinite(y))
        and float(y.min()) > 0
        and float(y.max()) >= _LOG_SPAN * float(y.min())
    )


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


def _values(observed: Sequence[FrozenTrial], sign: float) -> np.ndarray:
    """Each observed trial's value; a failed trial's is the worst value seen."""
    values = np.array([t.value for t in observed if t.value is not None], dtype=float)
    worst = float(values.max() if sign > 0 else values.min())
    return np.array([t.value if t.value is not None else worst for t in observed], dtype=float)


def _training_data(
    codec: _Codec,
    observed: Sequence[FrozenTrial],
    direction: Direction,
    warp: bool,
    prior_mean: float,
    log: bool = False,
) -> tuple[np.ndarray, np.ndarray, _Transform]:
    """The GP's inputs and targets (minimised, their log when ``log`` and the values allow it,
    standardised, warped, shifted by the prior mean) from the trials that have a value or
    failed (see the module docstring, step 2), and the transform that made the targets."""
    sign = 1.0 if direction is Direction.MINIMIZE else -1.0
    raw = _values(observed, sign)
    transform = _Transform(raw, sign, warp, prior_mean, log)
    x = np.array([codec.encode(t.params) for t in observed])
    return x, transform(raw), transform


def fit_targets(
    codec: _Codec,
    observed: Sequence[FrozenTrial],
    direction: Direction,
    *,
    warp: bool,
    prior_mean: float,
    log_warp: bool,
    deterministic: bool,
) -> tuple[np.ndarray, np.ndarray, _Transform, GP]:
    """The GP's data (as :func:`_training_data`) and the GP fitted to them, with the value
    transform chosen by evidence: where ``log_warp`` is on and the values to minimise are
    loggable (:func:`loggable`), a second GP is fitted to targets made from their logarithm,
    and it is used when its log marginal likelihood (with its hyper-prior) plus the
    transform's log Jacobian — a likelihood of the same values, so the two compare — beats
    the plain model's by ``_LOG_MARGIN`` nats per trial. A loss
    whose best values differ by orders of magnitude (1e-3, 1e-5, 1e-9) looks flat to a model
    of the values and stepped to a model of their logarithm; a smooth bowl with its minimum
    at 0 is the opposite, and the evidence tells them apart (benchmarks/README.md)."""
    from hpo.strategies._gp import fit_gp  # scipy: not at import time

    x, y, transform = _training_data(codec, observed, direction, warp, prior_mean)
    gp = fit_gp(x, y, codec.is_cat, deterministic=deterministic)
    raw = _values(observed, transform.sign)
    if not (log_warp and loggable(transform.sign * raw)):
        return x, y, transform, gp
    logged = _Transform(raw, transform.sign, warp, prior_mean, log=True)
    y_log = logged(raw)
    if not np.all(np.isfinite(y_log)):
        return x, y, transform, gp
    gp_log = fit_gp(x, y_log, codec.is_cat, deterministic=deterministic)
    plain = gp.log_posterior + transform.log_jacobian(raw)
    if gp_log.log_posterior + logged.log_jacobian(raw) > plain + _LOG_MARGIN * len(raw):
        return x, y_log, logged, gp_log
    return x, y, transform, gp
