"""What the optimiser thinks (issue 19): bayes's own model refitted from the store, the views
drawn from it, the API that serves them and ``hpo plot`` for them."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pytest

import hpo
from hpo.plots import _optimizer as opt
from hpo.strategies._bayes import BayesStrategy
from hpo.strategies._bayes_model import fit_model, training_data
from hpo.strategies._gp import fit_gp
from hpo.trial import Direction, FrozenTrial, TrialState

SPACE = hpo.SearchSpace(
    {
        "lr": hpo.Float(1e-4, 1e-1, log=True),
        "layers": hpo.Int(1, 4),
        "optimizer": hpo.Categorical(["sgd", "adam"]),
        "momentum": hpo.Float(0.0, 0.99, when={"optimizer": "sgd"}),
        "dropout": hpo.Float(0.0, 0.5),
    }
)


def loss(p: Mapping[str, Any]) -> float:
    return (
        (math.log10(p["lr"]) + 2.2) ** 2
        + 0.1 * p["layers"]
        + 0.3 * p.get("momentum", 0.5)
        + (p["dropout"] - 0.2) ** 2
    )


def objective(trial: hpo.Trial, sign: float = 1.0) -> float:
    """Reports 3 epochs; trial 4 is pruned, trial 7 fails (bayes counts both)."""
    value = sign * loss(trial.params)
    for step in (1, 2, 3):
        trial.report(value + sign / step, step)
        if trial.number == 4 and step == 2:
            raise hpo.TrialPruned()
    if trial.number == 7:
        raise RuntimeError("diverged (simulated)")
    return value


@pytest.fixture(scope="module")
def bayes_study() -> hpo.Study:
    study = hpo.create_study(
        space=SPACE,
        strategy="bayes",
        direction="maximize",  # the sign must survive the way there and back
        seed=3,
        strategy_options={"n_initial": 6, "n_candidates": 256, "n_local": 2},
    )
    study.optimize(lambda t: objective(t, -1.0), n_trials=24)
    study.ask()  # one running trial: fantasised by the believer
    return study


class _Recording(BayesStrategy):
    """bayes itself, remembering the x and y it fitted its GP to."""

    seen: list[tuple[np.ndarray, np.ndarray]]

    def _propose_gp(self, codec: Any, trials: Any, observed: Any, x: Any, y: Any, rng: Any) -> Any:
        self.seen.append((x.copy(), y.copy()))
        return super()._propose_gp(codec, trials, observed, x, y, rng)


def _recorded(study: hpo.Study, trials: Sequence[FrozenTrial]) -> tuple[np.ndarray, np.ndarray]:
    rec = _Recording(**study.strategy.options())
    rec.seen = []
    rec.propose(
        study.space,
        trials,
        direction=study.direction,
        number=len(trials),
        seed=study.record.seed,
        rng=np.random.default_rng(0),
    )
    assert len(rec.seen) == 1
    return rec.seen[0]


def test_the_surrogate_is_the_model_bayes_fits(bayes_study: hpo.Study) -> None:
    """Drift guard: the data preparation mirrored in _bayes_model gives the very x and y
    that BayesStrategy.propose fits, so the GP is the same GP (same predictions, exactly)."""
    trials = bayes_study.trials
    states = {t.state for t in trials}
    assert {TrialState.PRUNED, TrialState.FAILED, TrialState.RUNNING} <= states
    x_strategy, y_strategy = _recorded(bayes_study, trials)
    strategy = bayes_study.strategy
    assert isinstance(strategy, BayesStrategy)
    x, y, _transform, _observed = training_data(SPACE, trials, bayes_study.direction, strategy)
    assert np.array_equal(x, x_strategy)
    assert np.array_equal(y, y_strategy)
    model = fit_model(SPACE, trials, bayes_study.direction, strategy)
    assert model is not None
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):  # as propose fits it (BLAS threads change the rounding)
        theirs = fit_gp(x_strategy, y_strategy, model.codec.is_cat, deterministic=False)
        probe = model.codec.sample(64, np.random.default_rng(1))
        ours_m, ours_v = model.gp.posterior(probe)
        their_m, their_v = theirs.posterior(probe)
    assert np.array_equal(ours_m, their_m) and np.array_equal(ours_v, their_v)
    # Without warping too (a different branch of the preparation).
    plain = BayesStrategy(n_initial=6, warp=False, prior_mean=0.5)
    x2, y2, _t, _o = training_data(SPACE, trials, bayes_study.direction, plain)
    rec = _Recording(n_initial=6, warp=False, prior_mean=0.5, n_candidates=64, n_local=1)
    rec.seen = []
    rec.propose(
        SPACE,
        trials,
        direction=bayes_study.direction,
        number=len(trials),
        seed=0,
        rng=np.random.default_rng(0),
    )
    assert np.array_equal(x2, rec.seen[0][0]) and np.array_equal(y2, rec.seen[0][1])


def test_transform_maps_model_units_back_to_stored_values(bayes_study: hpo.Study) -> None:
    trials = bayes_study.trials
    strategy = bayes_study.strategy
    assert isinstance(strategy, BayesStrategy)
    _x, y, transform, observed = training_data(SPACE, trials, bayes_study.direction, strategy)
    back = transform.to_value(y)
    for t, v in zip(observed, back, strict=True):
        if t.value is not None:
            assert v == pytest.approx(t.value, rel=1e-9, abs=1e-9)


def test_surrogate_mean_at_observed_points_is_within_the_noise(bayes_study: hpo.Study) -> None:
    trials = bayes_study.trials
    s = opt.surrogate(SPACE, trials, bayes_study.direction, bayes_study.strategy, seed=3)
    assert s.note is None and s.n_running == 1
    assert len(s.fit_values) == sum(1 for t in trials if t.value is not None)
    inside = sum(
        lo <= v <= hi for v, lo, hi in zip(s.fit_values, s.fit_lower, s.fit_upper, strict=True)
    )
    assert inside >= 0.9 * len(s.fit_values)
    # The best trial is the best stored value (maximised), and every slice passes through it.
    best = max((t for t in trials if t.state is TrialState.COMPLETE), key=lambda t: t.value or 0)
    assert s.best_number == best.number
    assert [sl.axis.name for sl in s.slices] == list(SPACE)
    for sl in s.slices:
        assert len(sl.x) == len(sl.mean) == len(sl.lower) == len(sl.upper) == len(sl.acq)
        assert all(lo <= m <= hi for lo, m, hi in zip(sl.lower, sl.mean, sl.upper, strict=True))
        assert len(sl.running_x) == 1
    assert SPACE.check_params(dict(s.next_params))


def test_bayes_views_say_why_before_the_model_exists() -> None:
    study = hpo.create_study(space=SPACE, strategy="bayes", seed=0)
    study.optimize(objective, n_trials=3)
    s = opt.surrogate(SPACE, study.trials, study.direction, study.strategy)
    assert s.note and "initial design (3 of 10" in s.note
    r = opt.surrogate(SPACE, study.trials, Direction.MINIMIZE, hpo.get_strategy("random"))
    assert r.note and "'random'" in r.note


def test_learning_hint_follows_the_expected_improvement(bayes_study: hpo.Study) -> None:
    lr = opt.learning(SPACE, bayes_study.trials, bayes_study.direction, bayes_study.strategy)
    assert lr.numbers and all(n >= 6 for n in lr.numbers)
    assert all(e >= 0 for e in lr.ei)
    assert lr.verdict in ("converged", "slowing", "learning") and lr.hint
    assert opt._hint([1e-5] * 10)[0] == "converged"
    assert "0.1%" in opt._hint([1e-5] * 10)[1]
    assert opt._hint([0.2] * 10)[0] == "learning"
