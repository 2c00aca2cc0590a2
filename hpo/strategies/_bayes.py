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
   near the best values is not squeezed flat by a few bad trials. Where the values to
   minimise are all positive and span two orders of magnitude (a loss approaching 0), a
   second model is fitted to their logarithm and used when its evidence is decisively
   higher (``log_warp``). Pruned trials count with
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

This module is the strategy (steps 1, 4, 6 and 7); the other parts live apart: the encoding
in :mod:`hpo.strategies._bayes_codec`, the training data and value transform in
:mod:`hpo.strategies._bayes_data`, the GP and the acquisition in :mod:`hpo.strategies._gp`,
the maximisation of the acquisition in :mod:`hpo.strategies._bayes_search`, and the model as
the optimiser view draws it in :mod:`hpo.strategies._bayes_model`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from hpo.exceptions import SearchExhausted, StrategyError
from hpo.space import SearchSpace
from hpo.strategies._base import Strategy
from hpo.strategies._bayes_codec import _Codec, _discrete_size, _Table
from hpo.strategies._bayes_data import _Transform, fit_targets, observed_trials
from hpo.strategies._bayes_search import maximise
from hpo.trial import Direction, FrozenTrial, TrialState

if TYPE_CHECKING:
    from hpo.strategies._gp import GP

__all__ = ["BayesStrategy"]

log = logging.getLogger("hpo")

_EXACT_LIMIT = 20_000  # an all-discrete space this small is scored configuration by configuration
_SAME_POINT = 0.95  # kernel correlation at which a proposal counts as a running trial's point


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
        cost_aware: Maximise expected improvement *per second* instead of expected
            improvement (Snoek et al. 2012): a second GP learns each completed trial's
            log duration from its params, and a point's log EI is lowered by the log seconds
            it is predicted to take. For spaces where cost varies a lot with the params
            (layers, units, epochs, batch size) and the budget is time, not trials. Off by
            default: on a trial budget it spends trials on cheap points (benchmarks/README.md).
        warp: Power-transform the values before fitting (see step 2 above).
        log_warp: Where the values to minimise are all positive and the largest is at least
            100 times the smallest (a loss that approaches 0), also fit the GP to their
            logarithm, and use it when its evidence (log marginal likelihood with the
            transform's Jacobian) beats the plain model's by 0.5 nats per trial. A model of
            the values sees 1e-3, 1e-5 and 1e-9 as the same; one of their logarithm tells
            them apart (benchmarks/README.md).
            Costs a second kernel fit on such studies.
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
        log_warp: bool = True,
        prior_mean: float = 1.0,
        noisy: bool = False,
        ordered_choices: bool = True,
        cost_aware: bool = False,
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
        self.log_warp = bool(log_warp)
        self.prior_mean = float(prior_mean)
        self.noisy = bool(noisy)
        self.ordered_choices = bool(ordered_choices)
        self.cost_aware = bool(cost_aware)
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
            "log_warp": self.log_warp,
            "prior_mean": self.prior_mean,
            "noisy": self.noisy,
            "ordered_choices": self.ordered_choices,
            "cost_aware": self.cost_aware,
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
        observed = observed_trials(trials)
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
        x, y, _, gp = self.fit(codec, observed, direction)
        return self._propose_gp(codec, trials, x, y, gp, rng, avoid, table)

    def fit(
        self, codec: _Codec, observed: Sequence[FrozenTrial], direction: Direction
    ) -> tuple[np.ndarray, np.ndarray, _Transform, GP]:
        """The GP's data, value transform and fitted GP with this strategy's settings
        (:func:`~hpo.strategies._bayes_data.fit_targets`); the optimiser view calls it too."""
        return fit_targets(
            codec,
            observed,
            direction,
            warp=self.warp,
            prior_mean=self.prior_mean,
            log_warp=self.log_warp,
            deterministic=self.deterministic,
        )

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
        gp: GP,
        rng: np.random.Generator,
        avoid: set[bytes],
        table: _Table | None,
    ) -> Mapping[str, Any]:
        from hpo.strategies._gp import Acquisition, CostAwareAcquisition

        def best_new(acqf: Acquisition) -> tuple[dict[str, Any], np.ndarray]:
            return maximise(
                codec,
                acqf,
                x,
                y,
                rng,
                avoid,
                table,
                n_candidates=self.n_candidates,
                n_local=self.n_local,
            )

        # The incumbent: the best value seen, or for a noisy objective the best posterior
        # mean at an evaluated point (a lucky noisy value is no target to improve on).
        best = float(gp.posterior(x)[0].min()) if self.noisy else float(y.min())
        pending = [t for t in trials if t.state is TrialState.RUNNING and t.params]
        cost = self._cost_model(codec, trials) if self.cost_aware else None
        acqf = Acquisition(gp, best) if cost is None else CostAwareAcquisition(gp, best, *cost)
        if not pending:
            return best_new(acqf)[0]
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
        params, xc = best_new(acqf)
        if gp.correlation(xc, xp) < _SAME_POINT:
            return params
        mp, _ = gp.posterior(xp)
        believer = gp.condition_on(xp, mp)
        best = min(best, float(mp.min()))
        return best_new(
            Acquisition(believer, best)
            if cost is None
            else CostAwareAcquisition(believer, best, *cost)
        )[0]

    @staticmethod
    def _cost_model(codec: _Codec, trials: Sequence[FrozenTrial]) -> tuple[GP, float] | None:
        """A GP of the standardised log duration of the completed trials, and the standard
        deviation that turns its mean back into log seconds; None until three completed
        trials have a duration (then every point costs the same: plain EI)."""
        from hpo.strategies._gp import fit_gp

        timed = [
            (t.params, t.duration.total_seconds())
            for t in trials
            if t.state is TrialState.COMPLETE and t.duration is not None
        ]
        timed = [(p, s) for p, s in timed if s > 0 and math.isfinite(s)]
        if len(timed) < 3:
            return None
        xc = np.array([codec.encode(p) for p, _ in timed])
        log_s = np.log([s for _, s in timed])
        sd = float(log_s.std())
        if not sd > 1e-6:
            return None  # every trial took the same time: cost tells nothing
        return fit_gp(xc, (log_s - log_s.mean()) / sd, codec.is_cat), sd

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
