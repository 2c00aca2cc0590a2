"""Bayesian optimisation with a Gaussian process (Snoek, Larochelle & Adams, 2012).

How a proposal is made, from the study's history alone:

1. **Initial design.** Until ``n_initial`` trials have a value, trial ``n`` takes point ``n`` of
   a scrambled Sobol sequence seeded by the study: space-filling, and distinct across
   parallel workers because trial numbers are.
2. **Data.** Every param set is encoded in the unit box: one coordinate per parameter. Floats
   and integers through their unit transform (log ranges in log space), ordered; numeric
   categoricals (``batch_size: [32, 64, 128]``) by the rank of their choice, ordered too
   (``ordered_choices``, default on); other categoricals as their index, compared by the
   Hamming (overlap) distance. Inactive conditional parameters take a fixed filler value,
   so two trials differing only in inactive parameters are the same point. Values are
   standardised (negated to maximise) and power-transformed (Yeo-Johnson), so the region
   near the best values is not squeezed flat by a few bad trials. Pruned trials count with
   their last reported value (pessimistic: they were stopped for looking bad); failed trials
   (not interrupted ones) count as the worst value seen, which steers the search away from
   regions that crash or diverge.
3. **Model.** A GP with a Matérn-5/2 ARD kernel, hyper-parameters fitted by MAP
   (:mod:`hpo.strategies._gp`).
4. **Pending trials.** Trials still running are *fantasised* as exact observations at the GP's
   posterior mean (the "kriging believer"), and the incumbent counts them too, so the
   expected improvement at and near a running trial's point collapses and parallel workers
   spread out instead of all proposing the same point, without being pushed away from the
   best region.
5. **Acquisition.** log expected improvement, scored on ``n_candidates`` uniform points,
   then maximised by ``n_local`` + 1 local searches started from the best candidate, from
   others drawn in proportion to their expected improvement, and from the best point observed.
   Each local search alternates preconditioned L-BFGS-B over the active float coordinates
   with a sweep over the discrete ones — every choice of a categorical, every value of a
   small integer range, the neighbourhood and a coarse grid of a large one — until the sweep
   no longer moves (as Optuna's GPSampler does). An all-discrete space of at most
   20,000 configurations is scored exactly instead, every configuration once.
6. **No repeats.** No configuration that a trial holds (complete, pruned, failed, running or
   asked) is proposed again, Sobol phase included: the best *new* configuration wins (after
   the local optima, their one-parameter neighbours and the candidates). Only a ``noisy``
   objective may be evaluated again where expected improvement chooses it. An all-discrete
   space whose configurations are all taken raises :class:`~hpo.exceptions.SearchExhausted`,
   which ends the study as an exhausted grid does.
7. **Never a crash.** Any numeric failure of the model is logged and the proposal is a
   seeded random configuration no trial holds.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from hpo.exceptions import SearchExhausted, StrategyError
from hpo.space import Categorical, Float, Int, SearchSpace
from hpo.strategies._base import Strategy
from hpo.trial import Direction, FrozenTrial, TrialState

if TYPE_CHECKING:
    from hpo.strategies._gp import GP, Acquisition

__all__ = ["BayesStrategy", "Surrogate", "fit_surrogate"]

log = logging.getLogger("hpo")

_FILL_NUMERIC = 0.5  # an inactive numeric parameter's coordinate
_FILL_CATEGORICAL = -1.0  # an inactive categorical parameter's coordinate
_MAX_SWEEPS = 4  # rounds of discrete sweeps + continuous search per local search
_EXHAUSTIVE = 16  # an integer with at most this many values is searched value by value
_EXACT_LIMIT = 20_000  # an all-discrete space this small is scored configuration by configuration
_SAME_POINT = 0.95  # kernel correlation at which a proposal counts as a running trial's point


def _key(params: Mapping[str, Any]) -> str:
    return json.dumps(sorted(params.items()), default=str)


def _numeric_choices(p: Categorical) -> bool:
    return all(isinstance(c, (int, float)) and not isinstance(c, bool) for c in p.choices)


class _Codec:
    """Params <-> points of the GP's input box, for one space.

    Floats and integers map through their unit transform (log ranges in log space; an
    integer's coordinate is ordered, so 3 layers sit between 2 and 4). A categorical whose
    choices are all numbers (``batch_size: [32, 64, 128]``) is ordered too when
    ``ordered_choices``: its coordinate is the choice's rank, ``(rank + 1/2) / n``, compared by
    squared distance like a number. Other categoricals are their choice index, compared by
    the Hamming (overlap) distance.
    """

    def __init__(self, space: SearchSpace, ordered_choices: bool = True) -> None:
        self.space = space
        self.names = list(space)
        self.params = [space[n] for n in self.names]
        self.ordered = np.array(
            [
                isinstance(p, Categorical) and ordered_choices and _numeric_choices(p)
                for p in self.params
            ]
        )
        self.is_cat = np.array(
            [
                isinstance(p, Categorical) and not o
                for p, o in zip(self.params, self.ordered, strict=True)
            ]
        )
        # For an ordered categorical: the choice index at each rank, and the rank of each index.
        self._by_rank: dict[int, np.ndarray] = {}
        self._rank: dict[int, np.ndarray] = {}
        for i, p in enumerate(self.params):
            if self.ordered[i]:
                assert isinstance(p, Categorical)
                by_rank = np.argsort(np.array(p.choices, dtype=float), kind="stable")
                self._by_rank[i] = by_rank
                self._rank[i] = np.argsort(by_rank)
        # Parameters others are conditioned on: changing one can change which are active.
        parents = {c.parent for p in self.params for c in p.conditions}
        self.is_parent = np.array([n in parents for n in self.names])
        self.all_discrete = not any(isinstance(p, Float) for p in self.params)

    @property
    def dim(self) -> int:
        return len(self.names)

    def encode(self, params: Mapping[str, Any]) -> np.ndarray:
        x = np.empty(self.dim)
        for i, (n, p) in enumerate(zip(self.names, self.params, strict=True)):
            if n not in params:
                x[i] = _FILL_CATEGORICAL if self.is_cat[i] else _FILL_NUMERIC
            elif isinstance(p, Categorical):
                k = p.index(params[n])
                x[i] = (self._rank[i][k] + 0.5) / len(p.choices) if self.ordered[i] else k
            else:
                x[i] = p.to_unit(params[n])
        return x

    def key(self, params: Mapping[str, Any]) -> bytes:
        """Identifies a configuration (1 and 1.0 of a choice alike; inactive params ignored)."""
        try:
            return self.encode(params).tobytes()
        except (ValueError, KeyError, TypeError):  # not a point of this space
            return _key(params).encode()

    def decode(self, x: np.ndarray, rng: np.random.Generator) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for i, (n, p) in enumerate(zip(self.names, self.params, strict=True)):
            if not self.space.is_active(n, out):
                continue
            if isinstance(p, Categorical):
                if self.ordered[i]:
                    r = min(max(int(float(x[i]) * len(p.choices)), 0), len(p.choices) - 1)
                    out[n] = p.choices[int(self._by_rank[i][r])]
                    continue
                k = round(x[i])
                out[n] = (
                    p.choices[k]
                    if 0 <= k < len(p.choices)
                    else p.choices[int(rng.integers(len(p.choices)))]
                )
            else:
                out[n] = p.from_unit(float(x[i]))
        return out

    def canonical(
        self, x: np.ndarray, rng: np.random.Generator
    ) -> tuple[dict[str, Any], np.ndarray]:
        params = self.decode(x, rng)
        return params, self.encode(params)

    def discrete_units(self, i: int, x: np.ndarray) -> np.ndarray | None:
        """The coordinates a discrete parameter ``i`` can take, for a sweep from ``x``: every
        choice of a categorical, every value of a small integer range, the neighbourhood and
        a coarse grid of a large one. None for a float."""
        p = self.params[i]
        if isinstance(p, Categorical):
            n = len(p.choices)
            return (np.arange(n) + 0.5) / n if self.ordered[i] else np.arange(n, dtype=float)
        if not isinstance(p, Int):
            return None
        n = p.n_values
        if n <= _EXHAUSTIVE:
            ks = np.arange(n)
        else:
            k = round(float((p.from_unit(x[i]) - p.low) / p.step))
            near = np.arange(k - 4, k + 5)
            spread = np.round(np.linspace(0, n - 1, _EXHAUSTIVE)).astype(int)
            ks = np.unique(np.clip(np.concatenate([near, spread]), 0, n - 1))
        return np.array([p.to_unit(p.low + int(k) * p.step) for k in ks])

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` points drawn as ``space.sample`` draws them (the same random numbers, row by
        row), in canonical encoding: ``encode(space.sample(rng))`` for all ``n`` at once."""
        u = rng.random((n, self.dim))
        out = np.empty_like(u)
        values: dict[str, np.ndarray] = {}  # each parameter's value in every row
        active: dict[str, np.ndarray] = {}  # and whether it is active there
        for i, (name, p) in enumerate(zip(self.names, self.params, strict=True)):
            on = np.ones(n, dtype=bool)
            for c in p.conditions:
                parent = values[c.parent]
                on &= active[c.parent] & np.fromiter(map(c.matches, parent), bool, n)
            if isinstance(p, Categorical):
                k = np.minimum((u[:, i] * len(p.choices)).astype(np.int64), len(p.choices) - 1)
                values[name] = np.array(p.choices, dtype=object)[k]
                if self.ordered[i]:
                    code = (self._rank[i][k] + 0.5) / len(p.choices)
                    out[:, i] = np.where(on, code, _FILL_NUMERIC)
                else:
                    out[:, i] = np.where(on, k, _FILL_CATEGORICAL)
            else:
                assert isinstance(p, (Float, Int))
                v = p.from_unit_array(u[:, i])
                values[name] = v
                out[:, i] = np.where(on, p.to_unit_array(v), _FILL_NUMERIC)
            active[name] = on
        return out


class _Table:
    """Every configuration of a small all-discrete space, encoded once (scored exactly)."""

    def __init__(self, codec: _Codec, points: int) -> None:
        self.params = list(codec.space.grid(points))
        self.x = np.array([codec.encode(q) for q in self.params])
        self.keys = [row.tobytes() for row in self.x]


def _discrete_size(space: SearchSpace) -> tuple[int, int] | None:
    """(number of configurations, grid points that keep every integer value) of an
    all-discrete space, or None when a parameter is a float or an integer range too large to
    count this way."""
    from hpo.space._space import GridIndex

    points = 2
    for p in space.values():
        if isinstance(p, Float):
            return None
        if isinstance(p, Int):
            if p.n_values > 100_000:
                return None
            points = max(points, p.n_values)
    return GridIndex(space, points).size, points


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


class Surrogate:
    """The GP that ``bayes`` fits to a study, for drawing it (see :func:`fit_surrogate`)."""

    def __init__(self, codec: _Codec, gp: GP, transform: _Transform) -> None:
        self.codec = codec
        self.gp = gp
        self.transform = transform

    def predict(
        self, params: Sequence[Mapping[str, Any]]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The model's prediction at each param set, in objective units: (mean, lower,
        upper), where lower/upper is the band of one posterior standard deviation mapped
        back through the value transform (the transform is monotone but not linear, so the
        band is not symmetric around the mean)."""
        xq = np.array([self.codec.encode(q) for q in params]).reshape(len(params), -1)
        mean, var = self.gp.posterior(xq)
        sd = np.sqrt(var)
        a, b = self.transform.inverse(mean - sd), self.transform.inverse(mean + sd)
        return self.transform.inverse(mean), np.minimum(a, b), np.maximum(a, b)


def fit_surrogate(
    space: SearchSpace,
    trials: Sequence[FrozenTrial],
    direction: Direction | str,
    *,
    warp: bool = True,
    prior_mean: float = 1.0,
    deterministic: bool = False,
    ordered_choices: bool = True,
) -> Surrogate | None:
    """Fit the model ``bayes`` would fit to this history (same encoding, value transform,
    kernel and hyper-parameter fit); None when fewer than two trials have a value.

    Raises:
        numpy.linalg.LinAlgError: no usable model (rare; see :func:`fit_gp`).
    """
    from hpo.strategies._gp import fit_gp

    direction = Direction(direction)
    codec = _Codec(space, ordered_choices)
    observed = [
        t
        for t in trials
        if (t.state in (TrialState.COMPLETE, TrialState.PRUNED) and t.value is not None)
        or (t.state is TrialState.FAILED and not t.interrupted)
    ]
    if sum(1 for t in observed if t.value is not None) < 2:
        return None
    x, y, transform = _training_data(codec, observed, direction, warp, prior_mean)
    gp = fit_gp(x, y, codec.is_cat, deterministic=deterministic)
    return Surrogate(codec, gp, transform)


class BayesStrategy(Strategy):
    """Gaussian-process Bayesian optimisation (see the module docstring for the method).

    Args:
        n_initial: Trials taken from the space-filling (Sobol) design before the GP is used.
        n_candidates: Points scored by the acquisition function per proposal.
        n_local: Local searches (L-BFGS-B on the float coordinates alternating with sweeps
            over the integer and categorical ones) started from the best-scored candidate and
            from candidates drawn in proportion to their expected improvement; one more starts
            from the best point observed.
        deterministic: Treat the objective as noise-free (fits no noise term).
        noisy: The objective is noisy: a configuration already evaluated may be proposed
            again when expected improvement (measured from the best posterior mean, not the
            best noisy value) prefers it to every new one. Off (the default), no
            configuration that a trial holds — complete, pruned, failed, running or just
            asked — is proposed again, and an all-discrete space that is used up ends the
            study as grid does.
        ordered_choices: Model a categorical whose choices are all numbers
            (``batch_size: [32, 64, 128]``) as ordered, by rank, like an integer: 64 is
            between 32 and 128 (default). Off: as unordered choices (Hamming distance).
        warp: Power-transform the values before fitting (see step 2 above).
        prior_mean: What the model expects far from every trial, in standard deviations
            worse than the average trial (default 1). With a prior mean at the average
            (0), every unexplored corner of the box looks like an average trial with a large
            uncertainty, and expected improvement sent up to a quarter of a 40-trial search
            to corners (learning rates at their bounds); one standard deviation worse keeps
            exploration where the data leave room for it and cut the median regret on
            every benchmark problem but Branin, most on Hartmann-6 (benchmarks/README.md).
    """

    name = "bayes"

    def __init__(
        self,
        n_initial: int = 10,
        n_candidates: int = 2048,
        n_local: int = 10,
        deterministic: bool = False,
        warp: bool = True,
        prior_mean: float = 1.0,
        noisy: bool = False,
        ordered_choices: bool = True,
    ) -> None:
        for key, v, low in (
            ("n_initial", n_initial, 1),
            ("n_candidates", n_candidates, 16),
            ("n_local", n_local, 0),
        ):
            if isinstance(v, bool) or not isinstance(v, int) or v < low:
                raise StrategyError(f"bayes option `{key}` must be an integer >= {low}, got {v!r}.")
        self.n_initial = n_initial
        self.n_candidates = n_candidates
        self.n_local = n_local
        if (
            isinstance(prior_mean, bool)
            or not isinstance(prior_mean, (int, float))
            or not math.isfinite(prior_mean)
        ):
            raise StrategyError(
                f"bayes option `prior_mean` must be a finite number, got {prior_mean!r}."
            )
        self.deterministic = bool(deterministic)
        self.warp = bool(warp)
        self.prior_mean = float(prior_mean)
        self.noisy = bool(noisy)
        self.ordered_choices = bool(ordered_choices)
        if self.noisy and self.deterministic:
            raise StrategyError(
                "bayes options `noisy` and `deterministic` contradict each other; set one."
            )
        # Caches the space rebuilds (not search state): its size and its table of configs.
        self._sizes: dict[int, tuple[int, int] | None] = {}
        self._tables: dict[tuple[int, bool], _Table] = {}

    def options(self) -> dict[str, Any]:
        return {
            "n_initial": self.n_initial,
            "n_candidates": self.n_candidates,
            "n_local": self.n_local,
            "deterministic": self.deterministic,
            "warp": self.warp,
            "prior_mean": self.prior_mean,
            "noisy": self.noisy,
            "ordered_choices": self.ordered_choices,
        }

    def _size(self, space: SearchSpace) -> tuple[int, int] | None:
        sig = hash(space)
        if sig not in self._sizes:
            self._sizes[sig] = _discrete_size(space)
        return self._sizes[sig]

    def _table(self, codec: _Codec, points: int) -> _Table:
        sig = (hash(codec.space), self.ordered_choices)
        if sig not in self._tables:
            self._tables.clear()
            self._tables[sig] = _Table(codec, points)
        return self._tables[sig]

    # -- the proposal --------------------------------------------------------------------
    def propose(
        self,
        space: SearchSpace,
        trials: Sequence[FrozenTrial],
        *,
        direction: Direction,
        number: int,
        seed: int,
        rng: np.random.Generator,
    ) -> Mapping[str, Any]:
        codec = _Codec(space, self.ordered_choices)
        held = [t for t in trials if not t.interrupted and (t.params or not space)]
        taken = {codec.key(t.params) for t in held}
        running = {codec.key(t.params) for t in held if t.state is TrialState.RUNNING}
        # Re-proposing a configuration is allowed only for a noisy objective, and never one
        # that is running (or asked) right now.
        avoid = running if self.noisy else taken
        size = self._size(space)
        table = None
        if size is not None:
            n_configs, points = size
            if len(avoid) >= n_configs:
                raise SearchExhausted(
                    f"bayes: all {n_configs} configurations of the space are taken."
                )
            if n_configs <= _EXACT_LIMIT:
                table = self._table(codec, points)
        observed = [
            t
            for t in trials
            if (t.state in (TrialState.COMPLETE, TrialState.PRUNED) and t.value is not None)
            or (t.state is TrialState.FAILED and not t.interrupted)
        ]
        n_valued = sum(1 for t in observed if t.value is not None)
        if n_valued < max(self.n_initial, 2):
            return self._sobol(codec, seed, number, rng, taken, table)

        from threadpoolctl import threadpool_limits

        try:
            # The matrices are small: one BLAS thread is far faster than two (no hand-offs).
            with threadpool_limits(limits=1), np.errstate(all="ignore"):
                return self._propose_model(codec, trials, observed, direction, rng, avoid, table)
        except SearchExhausted:
            raise
        except Exception as e:  # a strategy must never end a study (issue 14)
            log.warning(
                "bayes: the model failed at trial %d (%s: %s); proposing a seeded random "
                "point instead.",
                number,
                type(e).__name__,
                e,
            )
            return self._fallback(codec, taken, np.random.default_rng([seed, number, 1]), table)

    def _propose_model(
        self,
        codec: _Codec,
        trials: Sequence[FrozenTrial],
        observed: Sequence[FrozenTrial],
        direction: Direction,
        rng: np.random.Generator,
        avoid: set[bytes],
        table: _Table | None,
    ) -> Mapping[str, Any]:
        x, y, _ = _training_data(codec, observed, direction, self.warp, self.prior_mean)
        return self._propose_gp(codec, trials, x, y, rng, avoid, table)

    @staticmethod
    def _fallback(
        codec: _Codec, taken: set[bytes], rng: np.random.Generator, table: _Table | None
    ) -> dict[str, Any]:
        """A random point no trial holds yet (seeded by the trial, so resumes are exact)."""
        params = codec.space.sample(rng)
        for _ in range(200):
            if codec.key(params) not in taken:
                return params
            params = codec.space.sample(rng)
        if table is not None:
            free = [i for i, k in enumerate(table.keys) if k not in taken]
            if free:
                return dict(table.params[free[int(rng.integers(len(free)))]])
        return params

    def _propose_gp(
        self,
        codec: _Codec,
        trials: Sequence[FrozenTrial],
        x: np.ndarray,
        y: np.ndarray,
        rng: np.random.Generator,
        avoid: set[bytes],
        table: _Table | None,
    ) -> Mapping[str, Any]:
        from hpo.strategies._gp import Acquisition, fit_gp

        gp = fit_gp(x, y, codec.is_cat, deterministic=self.deterministic)
        # The incumbent: the best value seen, or for a noisy objective the best posterior
        # mean at an evaluated point (a lucky noisy value is no target to improve on).
        best = float(gp.posterior(x)[0].min()) if self.noisy else float(y.min())
        pending = [t for t in trials if t.state is TrialState.RUNNING and t.params]
        acqf = Acquisition(gp, best)
        if not pending:
            return self._maximise(codec, acqf, x, y, rng, avoid, table)[0]
        # Running trials (parallel workers). First the point a sequential search would try
        # now: unless a running trial already sits on it (kernel correlation >= 0.95), it is
        # the proposal, so one worker always follows the sequential path and keeps refining
        # the best region. Otherwise the kriging believer: each running trial is fantasised
        # as scoring what the model expects, exactly, and the incumbent counts the belief
        # too; the expected improvement at and next to it collapses, so this worker goes
        # where nobody is looking yet. (Fantasising a pessimistic value instead — once "no
        # better than the average so far" — repelled every worker from the best region:
        # with 4 workers it cost Branin 600x in regret; local penalisation and fantasies
        # with noise measured worse; benchmarks/README.md.)
        xp = np.array([codec.encode(t.params) for t in pending])
        params, xc = self._maximise(codec, acqf, x, y, rng, avoid, table)
        if gp.correlation(xc, xp) < _SAME_POINT:
            return params
        mp, _ = gp.posterior(xp)
        believer = gp.condition_on(xp, mp)
        best = min(best, float(mp.min()))
        return self._maximise(codec, Acquisition(believer, best), x, y, rng, avoid, table)[0]

    def _maximise(
        self,
        codec: _Codec,
        acqf: Acquisition,
        x: np.ndarray,
        y: np.ndarray,
        rng: np.random.Generator,
        avoid: set[bytes],
        table: _Table | None,
    ) -> tuple[dict[str, Any], np.ndarray]:
        """The params of highest acquisition that no trial holds yet, and their encoding."""
        if table is not None:
            # A small all-discrete space: every configuration no trial holds, scored exactly.
            free = np.array([k not in avoid for k in table.keys])
            idx = np.flatnonzero(free)
            if idx.size == 0:
                raise SearchExhausted("bayes: every configuration of the space is taken.")
            acq = acqf(table.x[idx])
            best = int(idx[int(np.argmax(acq))])
            return dict(table.params[best]), table.x[best]
        space = codec.space
        cands = codec.sample(self.n_candidates, rng)
        acq = acqf(cands)
        order = np.argsort(-acq)
        # Local searches start from the best candidate, from others drawn with probability
        # proportional to their expected improvement (diverse starts rather than one cluster;
        # the roulette of Optuna's GPSampler), and from the best point observed (fine
        # convergence near an incumbent needs a start there; one is enough: a second start
        # next to an incumbent mostly repeats the first, while a start drawn from the EI
        # roulette is a chance to find a different basin).
        top = acq[order[0]]
        p_sel = np.exp(acq - top) if math.isfinite(top) else np.zeros(len(acq))
        p_sel[~np.isfinite(p_sel)] = 0.0
        p_sel[order[0]] = 0.0
        n_more = min(self.n_local - 1, int(np.count_nonzero(p_sel > 0)))
        picks = [int(order[0])]
        if n_more > 0:
            more = rng.choice(len(cands), size=n_more, replace=False, p=p_sel / p_sel.sum())
            picks += [int(i) for i in more]
        starts = [cands[i] for i in picks]
        starts.append(x[int(np.argmin(y))])
        refined: list[tuple[float, dict[str, Any], np.ndarray]] = []
        for x0 in starts:
            params, xc = codec.canonical(self._local_search(codec, acqf, x0, rng), rng)
            refined.append((float(acqf(xc)[0]), params, xc))
        refined.sort(key=lambda t: -t[0])
        for _a, params, xc in refined:
            if codec.key(params) not in avoid:
                return params, xc
        # Every local optimum is a configuration some trial holds (a stepped, discrete
        # landscape near the incumbent): the best *new* configuration among their
        # one-parameter neighbours and the candidates wins.
        rows = [self._neighbours(codec, xc, rng) for _a, _p, xc in refined[:3]]
        pool = np.concatenate([*rows, cands[order[: max(64, self.n_local)]]])
        acq_pool = acqf(pool)
        for k in np.argsort(-acq_pool):
            params, xc = codec.canonical(pool[k], rng)
            if codec.key(params) not in avoid:
                return params, xc
        for k in order:
            params = codec.decode(cands[k], rng)
            if codec.key(params) not in avoid:
                return params, codec.encode(params)
        params = space.sample(rng)
        return params, codec.encode(params)

    @staticmethod
    def _neighbours(codec: _Codec, x0: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Every point that differs from ``x0`` in one active discrete parameter."""
        params = codec.decode(x0, rng)
        rows = [x0[None, :]]
        for i, name in enumerate(codec.names):
            units = codec.discrete_units(i, x0) if name in params else None
            if units is None:
                continue
            block = np.repeat(x0[None, :], len(units), axis=0)
            block[:, i] = units
            if codec.is_parent[i]:
                block = np.array([codec.canonical(r, rng)[1] for r in block])
            rows.append(block)
        return np.concatenate(rows)

    def _sobol(
        self,
        codec: _Codec,
        seed: int,
        number: int,
        rng: np.random.Generator,
        taken: set[bytes],
        table: _Table | None,
    ) -> dict[str, Any]:
        """Point ``number`` of the study's scrambled Sobol sequence; when a trial already
        holds it (a small discrete space, params given by hand), the next points of the
        sequence, then a seeded random point no trial holds."""
        from scipy.stats import qmc

        m = max(1, math.ceil(math.log2(number + 1)))
        sobol = qmc.Sobol(d=codec.dim, scramble=True, seed=np.random.default_rng([seed, 7919]))
        points = sobol.random_base2(m)
        params = codec.space.from_units(points[number])
        if codec.key(params) not in taken:
            return params
        more = qmc.Sobol(d=codec.dim, scramble=True, seed=np.random.default_rng([seed, 7919]))
        points = more.random_base2(max(1, math.ceil(math.log2(number + 65))))
        for k in range(number + 1, number + 65):
            params = codec.space.from_units(points[k])
            if codec.key(params) not in taken:
                return params
        return self._fallback(codec, taken, rng, table)

    def _local_search(
        self, codec: _Codec, acqf: Acquisition, x0: np.ndarray, rng: np.random.Generator
    ) -> np.ndarray:
        """Maximise EI from ``x0``: L-BFGS-B over the continuous coordinates, then a sweep
        over each discrete one (integers and categoricals), repeated while the sweep moves.

        Integers are searched on their own grid rather than relaxed to reals and rounded:
        rounding a relaxed optimum moves the point off the optimum of every continuous
        coordinate that interacts with the integer (the best learning rate depends on the
        number of layers), which cost the mixed benchmark most of its final regret."""
        x = self._lbfgs(codec, acqf, x0, rng)
        for _ in range(_MAX_SWEEPS):
            x, moved = self._sweep(codec, acqf, x, rng)
            if not moved:
                break
            x = self._lbfgs(codec, acqf, x, rng)
        return x

    @staticmethod
    def _sweep(
        codec: _Codec, acqf: Acquisition, x0: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, bool]:
        """One pass over the discrete coordinates of ``x0`` (in space order), each set to the
        value of highest EI with the others fixed. Categoricals and integers with at most
        ``_EXHAUSTIVE`` values try every value; larger integers their neighbours up to 4
        steps away and ``_EXHAUSTIVE`` values spread over the range."""
        params, x = codec.canonical(x0, rng)
        current = float(acqf(x)[0])
        moved = False
        for i in range(codec.dim):
            units = codec.discrete_units(i, x) if codec.names[i] in params else None
            if units is None:
                continue  # continuous, or inactive here
            rows = np.repeat(x[None, :], len(units), axis=0)
            rows[:, i] = units
            if codec.is_parent[i]:  # other parameters may switch on or off
                rows = np.array([codec.canonical(r, rng)[1] for r in rows])
            a = acqf(rows)
            j = int(np.argmax(a))
            if a[j] > current and not np.array_equal(rows[j], x):
                x, current, moved = rows[j], float(a[j]), True
                if codec.is_parent[i]:
                    params = codec.decode(x, rng)
        return x, moved

    @staticmethod
    def _lbfgs(
        codec: _Codec, acqf: Acquisition, x0: np.ndarray, rng: np.random.Generator
    ) -> np.ndarray:
        """L-BFGS-B on the active float coordinates of ``x0``; the rest stay fixed.

        Preconditioned: it works in ``z = x / lengthscale``, where the kernel (and so the
        acquisition) is equally curved in every direction, which makes L-BFGS converge in
        far fewer steps when length scales differ by orders of magnitude.
        """
        import scipy.optimize

        active = set(codec.space.active_names(codec.decode(x0, rng)))
        free = np.array(
            [
                i
                for i, (name, p) in enumerate(zip(codec.names, codec.params, strict=True))
                if isinstance(p, Float) and name in active
            ],
            dtype=int,
        )
        if free.size == 0:
            return x0
        ls = 1.0 / np.sqrt(acqf.gp.inv_sq_ls[free])  # length scales of the free coordinates
        xt = x0.copy()

        def f(z: np.ndarray) -> tuple[float, np.ndarray]:
            xt[free] = z * ls
            value, grad = acqf.value_and_grad(xt[None, :])
            return -float(value[0]), -grad[0, free] * ls

        res = scipy.optimize.minimize(
            f,
            x0[free] / ls,
            jac=True,
            method="L-BFGS-B",
            bounds=[(0.0, 1.0 / s) for s in ls],
            options={"maxiter": 200, "gtol": 1e-2},
        )
        out = x0.copy()
        if np.all(np.isfinite(res.x)):
            out[free] = np.clip(res.x * ls, 0.0, 1.0)
        return out
