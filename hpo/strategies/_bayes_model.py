"""What ``bayes`` believes: its Gaussian process, refitted from a study's stored history.

The dashboard's optimiser view and ``hpo plot --kind surrogate|acquisition|contour|learning``
draw this model. It is the strategy's own model, not a second one: the same encoding
(:class:`~hpo.strategies._bayes_codec._Codec`), the same observed trials, training data and
value transform (:mod:`hpo.strategies._bayes_data`: ``observed_trials``, ``_training_data``,
``_Transform``), the same choice of GP (``fit_targets``: the values or their logarithm) and the same
:class:`~hpo.strategies._gp.Acquisition`, with running trials fantasised by the same kriging
believer. Only the incumbent is mirrored here, and ``tests/test_optimizer.py`` checks that the
model gets the very ``x`` and ``y`` the strategy fits, so the two cannot drift apart unnoticed.

Unlike the strategy, the model also maps its beliefs back to the objective's own units: the
inverse of the value transform (the logarithm, standardising and Yeo-Johnson are monotone, so a
quantile maps to a quantile: mean ± 2 sd in model units becomes a band in value units).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from hpo.space import Categorical, Float, Int, SearchSpace
from hpo.strategies._bayes import BayesStrategy
from hpo.strategies._bayes_codec import _Codec
from hpo.strategies._bayes_data import _training_data, _Transform, observed_trials
from hpo.strategies._gp import GP, Acquisition, fit_gp
from hpo.trial import Direction, FrozenTrial, TrialState

__all__ = ["BayesModel", "Transform", "fit_model", "observed_trials", "training_data"]

_GH_NODES, _GH_WEIGHTS = np.polynomial.hermite_e.hermegauss(40)  # E[g(Z)], Z ~ N(0, 1)


@dataclass(frozen=True)
class Transform:
    """Objective value <-> model units: the strategy's own transform (``_Transform``: sign,
    scale, standardise, Yeo-Johnson, standardise, prior mean), with the values seen kept to
    bound extrapolation when mapping back."""

    base: _Transform
    low: float = -math.inf  # the values seen (times sign)
    high: float = math.inf

    @property
    def sign(self) -> float:
        return self.base.sign

    @property
    def prior_mean(self) -> float:
        return self.base.prior_mean

    def to_value(self, m: np.ndarray) -> np.ndarray:
        """Model units -> the objective's units (monotone, so quantiles map to quantiles).

        Far beyond the values seen, the inverse power transform has a pole (it maps a finite
        model value to an infinite one): results are kept within the values seen widened by
        their spread on each side."""
        with np.errstate(all="ignore"):
            raw = self.sign * self.base.inverse(np.asarray(m, dtype=float))
        span = self.high - self.low
        raw = np.clip(np.nan_to_num(raw, nan=self.high + span), self.low - span, self.high + span)
        return self.sign * raw


def training_data(
    space: SearchSpace,
    trials: Sequence[FrozenTrial],
    direction: Direction,
    strategy: BayesStrategy,
    *,
    encode: Callable[[FrozenTrial], np.ndarray] | None = None,
    log: bool | None = None,
) -> tuple[np.ndarray, np.ndarray, Transform, list[FrozenTrial]]:
    """``x`` and ``y`` exactly as ``BayesStrategy.propose`` builds them, the transform that
    made ``y`` (to map beliefs back to values), and the observed trials (rows of ``x``).

    ``encode`` (a trial -> its ``_Codec.encode``-d params) lets a caller that builds many
    histories reuse the encodings. ``log`` fixes whether the values' logarithm is modelled;
    None chooses as the strategy does (:func:`fit_targets`: it fits the GP)."""
    return _prepared(space, trials, direction, strategy, encode=encode, log=log)[:4]


def _prepared(
    space: SearchSpace,
    trials: Sequence[FrozenTrial],
    direction: Direction,
    strategy: BayesStrategy,
    *,
    encode: Callable[[FrozenTrial], np.ndarray] | None = None,
    log: bool | None = None,
) -> tuple[np.ndarray, np.ndarray, Transform, list[FrozenTrial], GP | None]:
    """:func:`training_data`, and the strategy's GP when choosing the transform fitted it."""
    codec = _Codec(space, strategy.ordered_choices)
    observed = observed_trials(trials)
    # The strategy's own functions: the same x, y, value transform and GP it fits.
    gp: GP | None = None
    if log is None:
        x, y, base, gp = strategy.fit(codec, observed, direction)
    else:
        x, y, base = _training_data(
            codec, observed, direction, strategy.warp, strategy.prior_mean, log
        )
    if encode is not None:  # the same rows, from the caller's cache
        x = np.array([encode(t) for t in observed]).reshape(len(observed), codec.dim)
    raw = base.sign * np.array([t.value for t in observed if t.value is not None], dtype=float)
    low, high = (float(raw.min()), float(raw.max())) if len(raw) else (-math.inf, math.inf)
    transform = Transform(base, low, high)
    return x, y, transform, observed, gp


@dataclass
class BayesModel:
    """The fitted GP of a ``bayes`` study and what it needs to speak in the study's terms."""

    space: SearchSpace
    codec: _Codec
    gp: GP
    x: np.ndarray
    y: np.ndarray
    transform: Transform
    observed: list[FrozenTrial]
    pending: list[FrozenTrial]
    acquisition: Acquisition  # what the next proposal maximises (believer when trials run)
    best_params: dict[str, Any]

    # -- beliefs in value units ----------------------------------------------------------
    def predict(self, xq: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Posterior mean and the mean ∓ 2 sd band at encoded points, in value units
        (``lower`` and ``upper`` are the band's ends, whichever direction)."""
        m, var = self.gp.posterior(np.atleast_2d(xq))
        sd = np.sqrt(var)
        to = self.transform.to_value
        a, b = to(m - 2 * sd), to(m + 2 * sd)
        return to(m), np.minimum(a, b), np.maximum(a, b)

    def model_posterior(self, xq: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mean and sd in model units (what the GP itself holds)."""
        m, var = self.gp.posterior(np.atleast_2d(xq))
        return m, np.sqrt(var)

    def expected_improvement(self, xq: np.ndarray, gp: GP | None = None) -> np.ndarray:
        """Expected improvement over the best observed value, in the objective's units
        (Gauss-Hermite quadrature through the inverse transform; always >= 0)."""
        return expected_improvement_in_values(
            gp or self.gp, self.transform, float(self.y.min()), np.atleast_2d(xq)
        )

    def encode(self, params: Mapping[str, Any]) -> np.ndarray:
        return self.codec.encode(params)


def expected_improvement_in_values(
    gp: GP, transform: Transform, best_model: float, xq: np.ndarray
) -> np.ndarray:
    m, var = gp.posterior(xq)
    sd = np.sqrt(var)
    f = m[:, None] + sd[:, None] * _GH_NODES[None, :]  # (points, nodes), model units
    to = transform.to_value
    best = float(to(np.array([best_model]))[0])
    vals = to(f.reshape(-1)).reshape(f.shape)
    gain = np.maximum(transform.sign * (best - vals), 0.0)
    return (gain @ _GH_WEIGHTS) / math.sqrt(2 * math.pi)


def fit_model(
    space: SearchSpace,
    trials: Sequence[FrozenTrial],
    direction: Direction,
    strategy: BayesStrategy,
) -> BayesModel | None:
    """The strategy's GP fitted to ``trials``, or None while it still uses its initial
    design (fewer than ``n_initial`` trials with a value) — the same rule as ``propose``."""
    from threadpoolctl import threadpool_limits

    observed = observed_trials(trials)
    n_valued = sum(1 for t in observed if t.value is not None)
    if n_valued < max(strategy.n_initial, 2):
        return None
    codec = _Codec(space, strategy.ordered_choices)
    with threadpool_limits(limits=1), np.errstate(all="ignore"):
        x, y, transform, observed, fitted = _prepared(space, trials, direction, strategy)
        gp = fitted or fit_gp(x, y, codec.is_cat, deterministic=strategy.deterministic)
        # The incumbent as BayesStrategy._propose_gp takes it (noisy: the best posterior mean).
        best = float(gp.posterior(x)[0].min()) if strategy.noisy else float(y.min())
        pending = [t for t in trials if t.state is TrialState.RUNNING and t.params]
        acqf = Acquisition(gp, best)
        if pending:  # the kriging believer, as BayesStrategy._propose_gp fantasises them
            xp = np.array([codec.encode(t.params) for t in pending])
            mp, _ = gp.posterior(xp)
            acqf = Acquisition(gp.condition_on(xp, mp), min(best, float(mp.min())))
    best_trial = next(
        (
            observed[int(i)]
            for i in np.argsort(y, kind="stable")
            if observed[int(i)].state is TrialState.COMPLETE
        ),
        observed[int(np.argmin(y))],
    )
    return BayesModel(
        space=space,
        codec=codec,
        gp=gp,
        x=x,
        y=y,
        transform=transform,
        observed=observed,
        pending=pending,
        acquisition=acqf,
        best_params=dict(best_trial.params),
    )


def slice_values(p: Any, n: int = 60) -> list[Any]:
    """The values a slice along parameter ``p`` visits."""
    if isinstance(p, Categorical):
        return list(p.choices)
    if isinstance(p, Int) and p.n_values <= n:
        return [p.low + k * p.step for k in range(p.n_values)]
    assert isinstance(p, (Float, Int))
    out = [p.from_unit(float(u)) for u in np.linspace(0.0, 1.0, n)]
    return list(dict.fromkeys(out))  # integers: no repeats
