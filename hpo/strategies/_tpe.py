from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from hpo.exceptions import StrategyError
from hpo.space import Categorical, Float, Int, Param, SearchSpace
from hpo.strategies._base import Strategy
from hpo.trial import Direction, FrozenTrial, TrialState

__all__ = ["TPEStrategy"]


def _distribution(p: Param) -> Any:
    """Translate one hpo parameter to Optuna (the one place the two spaces meet)."""
    import optuna.distributions as d

    if isinstance(p, Float):
        return d.FloatDistribution(float(p.low), float(p.high), log=p.log)
    if isinstance(p, Int):
        return d.IntDistribution(int(p.low), int(p.high), log=p.log, step=int(p.step))
    if isinstance(p, Categorical):
        return d.CategoricalDistribution(list(p.choices))
    raise TypeError(p)


class TPEStrategy(Strategy):
    """Tree-structured Parzen estimator, through Optuna's ``TPESampler``.

    The Optuna study is rebuilt in memory from our history on every proposal (so the strategy
    stays a pure function of the history). Running trials are passed as running, and the
    sampler's ``constant_liar`` keeps parallel workers apart. ``multivariate`` and ``group``
    model parameters jointly, which suits conditional spaces.
    """

    name = "tpe"

    def __init__(self, n_startup_trials: int = 10, multivariate: bool = True) -> None:
        if isinstance(n_startup_trials, bool) or not isinstance(n_startup_trials, int):
            raise StrategyError(
                f"tpe option `n_startup_trials` must be an integer, got {n_startup_trials!r}."
            )
        if n_startup_trials < 0:
            raise StrategyError(
                f"tpe option `n_startup_trials` must be >= 0, got {n_startup_trials}."
            )
        self.n_startup_trials = n_startup_trials
        self.multivariate = bool(multivariate)

    def options(self) -> dict[str, Any]:
        return {"n_startup_trials": self.n_startup_trials, "multivariate": self.multivariate}

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
        import warnings

        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        dists = {n: _distribution(p) for n, p in space.items()}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            sampler = optuna.samplers.TPESampler(
                n_startup_trials=self.n_startup_trials,
                multivariate=self.multivariate,
                group=self.multivariate,
                constant_liar=True,
                seed=int(rng.integers(2**31 - 1)),
            )
        study = optuna.create_study(direction=direction.value, sampler=sampler)
        states = {
            TrialState.COMPLETE: optuna.trial.TrialState.COMPLETE,
            TrialState.PRUNED: optuna.trial.TrialState.PRUNED,
            TrialState.FAILED: optuna.trial.TrialState.FAIL,
            TrialState.RUNNING: optuna.trial.TrialState.RUNNING,
        }
        for t in trials:
            params = {k: v for k, v in t.params.items() if k in dists}
            value = t.value if t.state in (TrialState.COMPLETE, TrialState.PRUNED) else None
            state = states[t.state]
            if state == optuna.trial.TrialState.PRUNED and value is None:
                state = optuna.trial.TrialState.FAIL
            if state == optuna.trial.TrialState.COMPLETE and value is None:
                continue
            study.add_trial(
                optuna.trial.create_trial(
                    params=params,
                    distributions={k: dists[k] for k in params},
                    value=value,
                    state=state,
                    intermediate_values=dict(t.intermediate)
                    if state != states[TrialState.FAILED]
                    else None,
                )
            )
        ot = study.ask()
        out: dict[str, Any] = {}
        for n, p in space.items():
            if not space.is_active(n, out):
                continue
            if isinstance(p, Float):
                out[n] = ot.suggest_float(n, p.low, p.high, log=p.log)
            elif isinstance(p, Int):
                out[n] = ot.suggest_int(n, p.low, p.high, log=p.log, step=p.step)
            elif isinstance(p, Categorical):
                out[n] = ot.suggest_categorical(n, list(p.choices))
        return out
