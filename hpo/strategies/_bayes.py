"""Bayesian optimisation with a Gaussian process (Snoek, Larochelle & Adams, 2012).

How a proposal is made, from the study's history alone:

1. **Initial design.** Until ``n_initial`` trials have a value, trial ``n`` takes point ``n`` of
   a scrambled Sobol sequence seeded by the study: space-filling, and distinct across
   parallel workers because trial numbers are.
2. **Data.** Every param set is encoded in the unit box: one coordinate per parameter (numeric
   ones through their unit transform — log ranges in log space — categoricals as their index,
   compared by Hamming distance). Inactive conditional parameters take a fixed filler value,
   so two trials differing only in inactive parameters are the same point. Values are
   standardised (negated to maximise). Pruned trials count with their last reported value
   (pessimistic: they were stopped for looking bad); failed trials (not interrupted ones)
   count as the worst value seen, which steers the search away from regions that crash or
   diverge.
3. **Model.** A GP with a Matérn-5/2 ARD kernel, hyper-parameters fitted by MAP
   (:mod:`hpo.strategies._gp`).
4. **Pending trials.** Trials still running are *fantasised* as exact observations at the GP's
   posterior mean, but no better than the average value so far (a "kriging believer" kept
   from optimism), so the expected improvement at and near a running trial's point collapses
   and parallel workers spread out instead of all proposing the same point.
5. **Acquisition.** log expected improvement, maximised over ``n_candidates`` points (half
   uniform, half perturbations of the best points), then refined by L-BFGS-B over the active
   numeric coordinates of the best few. A proposal equal to an earlier trial's params is
   skipped in favour of the next best.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from hpo.exceptions import StrategyError
from hpo.space import Categorical, SearchSpace
from hpo.strategies._base import Strategy
from hpo.trial import Direction, FrozenTrial, TrialState

__all__ = ["BayesStrategy"]

_FILL_NUMERIC = 0.5  # an inactive numeric parameter's coordinate
_FILL_CATEGORICAL = -1.0  # an inactive categorical parameter's coordinate


def _key(params: Mapping[str, Any]) -> str:
    return json.dumps(sorted(params.items()), default=str)


class _Codec:
    """Params <-> points of the GP's input box, for one space."""

    def __init__(self, space: SearchSpace) -> None:
        self.space = space
        self.names = list(space)
        self.params = [space[n] for n in self.names]
        self.is_cat = np.array([isinstance(p, Categorical) for p in self.params])

    @property
    def dim(self) -> int:
        return len(self.names)

    def encode(self, params: Mapping[str, Any]) -> np.ndarray:
        x = np.empty(self.dim)
        for i, (n, p) in enumerate(zip(self.names, self.params, strict=True)):
            if n not in params:
                x[i] = _FILL_CATEGORICAL if self.is_cat[i] else _FILL_NUMERIC
            elif isinstance(p, Categorical):
                x[i] = p.index(params[n])
            else:
                x[i] = p.to_unit(params[n])
        return x

    def decode(self, x: np.ndarray, rng: np.random.Generator) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for i, (n, p) in enumerate(zip(self.names, self.params, strict=True)):
            if not self.space.is_active(n, out):
                continue
            if isinstance(p, Categorical):
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


class BayesStrategy(Strategy):
    """Gaussian-process Bayesian optimisation (see the module docstring for the method).

    Args:
        n_initial: Trials taken from the space-filling (Sobol) design before the GP is used.
        n_candidates: Points scored by the acquisition function per proposal.
        deterministic: Treat the objective as noise-free (fits no noise term).
    """

    name = "bayes"

    def __init__(
        self, n_initial: int = 10, n_candidates: int = 2048, deterministic: bool = False
    ) -> None:
        for key, v, low in (("n_initial", n_initial, 1), ("n_candidates", n_candidates, 16)):
            if isinstance(v, bool) or not isinstance(v, int) or v < low:
                raise StrategyError(f"bayes option `{key}` must be an integer >= {low}, got {v!r}.")
        self.n_initial = n_initial
        self.n_candidates = n_candidates
        self.deterministic = bool(deterministic)

    def options(self) -> dict[str, Any]:
        return {
            "n_initial": self.n_initial,
            "n_candidates": self.n_candidates,
            "deterministic": self.deterministic,
        }

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
        codec = _Codec(space)
        observed = [
            t
            for t in trials
            if (t.state in (TrialState.COMPLETE, TrialState.PRUNED) and t.value is not None)
            or (t.state is TrialState.FAILED and not t.interrupted)
        ]
        n_valued = sum(1 for t in observed if t.value is not None)
        if n_valued < max(self.n_initial, 2):
            return self._sobol(codec, seed, number, rng)

        sign = 1.0 if direction is Direction.MINIMIZE else -1.0
        values = np.array([sign * t.value for t in observed if t.value is not None])
        worst = float(values.max())
        x = np.array([codec.encode(t.params) for t in observed])
        y = np.array([sign * t.value if t.value is not None else worst for t in observed])
        mu, sd = float(y.mean()), float(y.std()) or 1.0
        y = (y - mu) / sd

        import torch

        # The matrices are small: one thread is ~30x faster than two (no OpenMP hand-offs).
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            return self._propose_gp(codec, trials, observed, x, y, rng)
        finally:
            torch.set_num_threads(threads)

    def _propose_gp(
        self,
        codec: _Codec,
        trials: Sequence[FrozenTrial],
        observed: Sequence[FrozenTrial],
        x: np.ndarray,
        y: np.ndarray,
        rng: np.random.Generator,
    ) -> Mapping[str, Any]:
        import torch

        from hpo.strategies._gp import fit_gp, log_expected_improvement

        space = codec.space
        gp = fit_gp(x, y, codec.is_cat, deterministic=self.deterministic)
        best = float(y.min())
        pending = [t for t in trials if t.state is TrialState.RUNNING and t.params]
        if pending:
            xp = torch.as_tensor(np.array([codec.encode(t.params) for t in pending]))
            with torch.no_grad():
                mp, _ = gp.posterior(xp)
            # Believe the model, but never that a running trial beats the average so far.
            mp = mp.clamp_min(float(y.mean()))
            gp = gp.condition_on(xp, mp)

        taken = {_key(t.params) for t in trials if not t.interrupted}
        cands = self._candidates(codec, x, y, rng)
        with torch.no_grad():
            m, v = gp.posterior(torch.as_tensor(cands))
            acq = log_expected_improvement(m, v, best).numpy()
        order = np.argsort(-acq)
        refined: list[tuple[float, dict[str, Any]]] = []
        for i in order[:5]:
            xr = self._refine(codec, gp, cands[i], best)
            params, xc = codec.canonical(xr, rng)
            with torch.no_grad():
                mm, vv = gp.posterior(torch.as_tensor(xc[None, :]))
                a = float(log_expected_improvement(mm, vv, best)[0])
            refined.append((a, params))
        refined.sort(key=lambda t: -t[0])
        for _a, params in refined:
            if _key(params) not in taken:
                return params
        for i in order:
            params = codec.decode(cands[i], rng)
            if _key(params) not in taken:
                return params
        return space.sample(rng)

    def _sobol(
        self, codec: _Codec, seed: int, number: int, rng: np.random.Generator
    ) -> dict[str, Any]:
        from scipy.stats import qmc

        m = max(1, math.ceil(math.log2(number + 1)))
        sobol = qmc.Sobol(d=codec.dim, scramble=True, seed=np.random.default_rng([seed, 7919]))
        points = sobol.random_base2(m)
        return codec.space.from_units(points[number])

    def _candidates(
        self, codec: _Codec, x: np.ndarray, y: np.ndarray, rng: np.random.Generator
    ) -> np.ndarray:
        n_random = self.n_candidates // 2
        out = [codec.encode(codec.space.sample(rng)) for _ in range(n_random)]
        top = x[np.argsort(y)[: min(5, len(y))]]
        n_local = self.n_candidates - n_random
        for j in range(n_local):
            base = top[j % len(top)].copy()
            scale = 0.02 if j % 3 == 0 else (0.08 if j % 3 == 1 else 0.2)
            num = ~codec.is_cat
            base[num] = np.clip(base[num] + rng.normal(0, scale, num.sum()), 0.0, 1.0)
            for i in np.flatnonzero(codec.is_cat):
                if rng.random() < 1.0 / codec.dim:
                    p = codec.params[i]
                    assert isinstance(p, Categorical)
                    base[i] = rng.integers(len(p.choices))
            out.append(codec.canonical(base, rng)[1])
        return np.array(out)

    @staticmethod
    def _refine(codec: _Codec, gp: Any, x0: np.ndarray, best: float) -> np.ndarray:
        """L-BFGS-B on the active numeric coordinates of ``x0``; the rest stay fixed."""
        import scipy.optimize
        import torch

        from hpo.strategies._gp import log_expected_improvement

        active = set(codec.space.active_names(codec.decode(x0, np.random.default_rng(0))))
        free = np.array(
            [i for i in range(codec.dim) if not codec.is_cat[i] and codec.names[i] in active],
            dtype=int,
        )
        if free.size == 0:
            return x0
        base = torch.as_tensor(x0.copy())

        def f(z: np.ndarray) -> tuple[float, np.ndarray]:
            zt = torch.tensor(z, dtype=torch.float64, requires_grad=True)
            xt = base.clone()
            xt[free] = zt
            m, v = gp.posterior(xt[None, :])
            loss = -log_expected_improvement(m, v, best)[0]
            loss.backward()
            assert zt.grad is not None
            return float(loss.item()), zt.grad.numpy().copy()

        res = scipy.optimize.minimize(
            f,
            x0[free],
            jac=True,
            method="L-BFGS-B",
            bounds=[(0.0, 1.0)] * free.size,
            options={"maxiter": 50},
        )
        out = x0.copy()
        if np.all(np.isfinite(res.x)):
            out[free] = res.x
        return out
