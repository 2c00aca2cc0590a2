"""One contract suite run over every strategy, plus what each one promises on its own."""

from __future__ import annotations

import itertools
import math
import time

import numpy as np
import pytest

import hpo
from hpo.trial import TrialState

ALL = ["grid", "random", "bayes", "tpe"]

CONDITIONAL = hpo.SearchSpace(
    {
        "lr": hpo.Float(1e-4, 1e-1, log=True),
        "layers": hpo.Int(1, 3),
        "units_1": hpo.Int(16, 256, log=True),
        "units_2": hpo.Int(16, 256, log=True, when={"layers": {">=": 2}}),
        "units_3": hpo.Int(16, 256, log=True, when={"layers": {">=": 3}}),
        "activation": hpo.Categorical(["relu", "tanh", "elu"]),
        "optimizer": hpo.Categorical(["sgd", "adam"]),
        "momentum": hpo.Float(0.0, 0.99, when={"optimizer": "sgd"}),
        "dropout": hpo.Float(0.0, 0.5),
    }
)


def dl_objective(trial: hpo.Trial) -> float:
    p = trial.params
    v = (math.log10(p["lr"]) + 2.5) ** 2 + 0.1 * (p["layers"] - 2) ** 2
    v += 0.2 * (p["activation"] != "relu") + (p["dropout"] - 0.2) ** 2
    v += 0.5 * (1 - p["momentum"]) if p["optimizer"] == "sgd" else 0.1
    return v


def _options(name: str) -> dict:
    return {"n_initial": 5, "n_candidates": 256} if name == "bayes" else {}


@pytest.mark.parametrize("name", ALL)
def test_contract_valid_active_params_on_a_conditional_space(name: str) -> None:
    study = hpo.create_study(
        space=CONDITIONAL, strategy=name, seed=0, strategy_options=_options(name)
    )
    study.optimize(dl_objective, n_trials=14)
    assert len(study.trials) == 14
    for t in study.trials:
        assert CONDITIONAL.check_params(t.params) == dict(t.params)  # only active, in range
        assert t.state is TrialState.COMPLETE


@pytest.mark.parametrize("name", ALL)
def test_contract_survives_nan_inf_and_failures(name: str) -> None:
    def obj(trial: hpo.Trial) -> float:
        k = trial.number % 4
        if k == 1:
            return float("nan")
        if k == 2:
            return float("inf")
        if k == 3:
            raise ValueError("diverged")
        return dl_objective(trial)

    study = hpo.create_study(
        space=CONDITIONAL, strategy=name, seed=0, strategy_options=_options(name)
    )
    study.optimize(obj, n_trials=16)
    assert len(study.trials) == 16
    assert sum(t.state is TrialState.FAILED for t in study.trials) == 12


@pytest.mark.parametrize("name", ALL)
def test_contract_same_seed_same_search_and_resume_is_exact(name: str, sqlite_url: str) -> None:
    opts = _options(name)
    a = hpo.create_study(space=CONDITIONAL, strategy=name, seed=7, strategy_options=opts)
    a.optimize(dl_objective, n_trials=9)
    # Same seed, but stopped after 4 trials and resumed from the store in a new Study object.
    b = hpo.create_study(
        space=CONDITIONAL,
        strategy=name,
        seed=7,
        storage=sqlite_url,
        name="r",
        strategy_options=opts,
    )
    b.optimize(dl_objective, n_trials=4)
    c = hpo.load_study("r", storage=sqlite_url)
    c.optimize(dl_objective, n_trials=5)
    assert [dict(t.params) for t in a.trials] == [dict(t.params) for t in c.trials]


@pytest.mark.parametrize("name", ALL)
def test_contract_pending_trials_get_distinct_points(name: str) -> None:
    study = hpo.create_study(
        space=CONDITIONAL, strategy=name, seed=0, strategy_options=_options(name)
    )
    study.optimize(dl_objective, n_trials=6)
    pending = [study.ask() for _ in range(4)]  # four parallel workers, none has told yet
    keys = {tuple(sorted(t.params.items())) for t in pending}
    assert len(keys) == 4


def test_grid_ends_when_exhausted_and_never_repeats() -> None:
    space = hpo.SearchSpace(
        {
            "opt": hpo.Categorical(["sgd", "adam"]),
            "m": hpo.Float(0.0, 0.9, when={"opt": "sgd"}),
            "lr": hpo.Float(1e-3, 1e-1, log=True),
        }
    )
    study = hpo.create_study(space=space, strategy="grid", strategy_options={"points": 3})
    study.optimize(lambda t: 1.0, n_trials=100)
    assert len(study.trials) == 3 * 3 + 3
    assert [dict(t.params) for t in study.trials] == list(space.grid(3))
    with pytest.raises(hpo.SearchExhausted):
        study.ask()


def test_grid_hands_out_interrupted_points_again() -> None:
    space = hpo.SearchSpace({"a": hpo.Categorical([1, 2, 3])})
    study = hpo.create_study(space=space, strategy="grid")
    t0 = study.ask()
    study._store.finish_trial(
        t0.trial_id, TrialState.FAILED, error="interrupted", system_attrs={"interrupted": True}
    )
    study.optimize(lambda t: 1.0)
    assert [t.params["a"] for t in study.trials] == [1, 1, 2, 3]


def test_grid_of_a_huge_space_starts_at_once() -> None:
    """mlp_mnist's grid: the first trials come at once and in grid order, and the strategy
    says how big the grid is (the CLI warns when it dwarfs the budget)."""
    space = hpo.load_space("mlp_mnist")
    study = hpo.create_study(space=space, strategy="grid")
    t0 = time.perf_counter()
    study.optimize(lambda t: 1.0, n_trials=3)
    assert time.perf_counter() - t0 < 5
    assert [dict(t.params) for t in study.trials] == list(itertools.islice(space.grid(5), 3))
    assert study.strategy.size(space) == 3_836_250_000  # type: ignore[attr-defined]


def test_random_is_reproducible_per_trial_number() -> None:
    a = hpo.create_study(space=CONDITIONAL, strategy="random", seed=3)
    b = hpo.create_study(space=CONDITIONAL, strategy="random", seed=3)
    a.optimize(dl_objective, n_trials=10)
    # b asks out of order with failures in between: trial n still gets the same params
    b.optimize(lambda t: float("nan"), n_trials=10)
    assert [dict(t.params) for t in a.trials] == [dict(t.params) for t in b.trials]
    c = hpo.create_study(space=CONDITIONAL, strategy="random", seed=4)
    c.optimize(dl_objective, n_trials=3)
    assert dict(c.trials[0].params) != dict(a.trials[0].params)


def branin(trial: hpo.Trial) -> float:
    x1, x2 = trial.params["x1"], trial.params["x2"]
    b, c, t = 5.1 / (4 * math.pi**2), 5 / math.pi, 1 / (8 * math.pi)
    return (x2 - b * x1**2 + c * x1 - 6) ** 2 + 10 * (1 - t) * math.cos(x1) + 10


BRANIN = hpo.SearchSpace({"x1": hpo.Float(-5, 10), "x2": hpo.Float(0, 15)})


def test_bayes_beats_random_on_branin() -> None:
    regrets: dict[str, list[float]] = {"bayes": [], "random": []}
    for name, seed in itertools.product(regrets, range(3)):
        study = hpo.create_study(
            space=BRANIN,
            strategy=name,
            seed=seed,
            strategy_options={"n_candidates": 512} if name == "bayes" else {},
        )
        study.optimize(branin, n_trials=25)
        regrets[name].append(study.best_value - 0.397887)
    assert np.median(regrets["bayes"]) < 0.05
    assert np.median(regrets["bayes"]) < np.median(regrets["random"]) / 5


def test_bayes_initial_design_is_space_filling_and_parallel_proposals_spread() -> None:
    study = hpo.create_study(
        space=BRANIN,
        strategy="bayes",
        seed=0,
        strategy_options={"n_initial": 8, "n_candidates": 512},
    )
    study.optimize(branin, n_trials=8)
    pts = np.array([[t.params["x1"], t.params["x2"]] for t in study.trials]) / 15.0
    d = np.sqrt(((pts[:, None] - pts[None]) ** 2).sum(-1))
    assert d[np.triu_indices(8, 1)].min() > 0.05  # Sobol: no two initial points close
    study.optimize(branin, n_trials=6)
    pending = [study.ask() for _ in range(4)]
    q = np.array([[t.params["x1"], t.params["x2"]] for t in pending]) / 15.0
    dq = np.sqrt(((q[:, None] - q[None]) ** 2).sum(-1))
    assert dq[np.triu_indices(4, 1)].min() > 0.01  # no batch of near-identical proposals


# -- the GP under bayes -------------------------------------------------------------------


def test_gp_gradients_match_finite_differences() -> None:
    """The fit and the acquisition's local searches use hand-written gradients; check both
    against central differences (numeric and categorical inputs, with and without noise)."""
    from hpo.strategies._gp import (
        _neg_log_posterior,
        fit_gp,
        log_ei_and_grad,
        log_expected_improvement,
    )

    rng = np.random.default_rng(1)
    x = rng.random((30, 4))
    x[:, 3] = rng.integers(0, 3, 30)
    is_cat = np.array([False, False, False, True])
    y = rng.standard_normal(30)
    eye = np.eye(6)
    for deterministic in (False, True):
        f = _neg_log_posterior(x, y, is_cat, deterministic)
        raw = rng.normal(size=6) * 0.5
        value, grad = f(raw)
        numeric = [(f(raw + 1e-6 * e)[0] - f(raw - 1e-6 * e)[0]) / 2e-6 for e in eye]
        np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-5)
    gp = fit_gp(x, y, is_cat)
    xq = rng.random((5, 4))
    xq[:, 3] = 1.0
    for best in (y.min(), y.min() - 5.0, y.min() - 40.0):  # EI from sizeable to ~e^-1000
        value, grad = log_ei_and_grad(gp, xq, best)
        np.testing.assert_allclose(value, log_expected_improvement(*gp.posterior(xq), best))
        assert np.all(grad[:, 3] == 0.0)  # a categorical input does not move continuously
        for j in range(3):
            step = np.zeros(4)
            step[j] = 1e-6
            up = log_expected_improvement(*gp.posterior(xq + step), best)
            down = log_expected_improvement(*gp.posterior(xq - step), best)
            np.testing.assert_allclose(grad[:, j], (up - down) / 2e-6, rtol=1e-4, atol=1e-6)


def test_bayes_candidates_are_the_space_samples_in_one_draw() -> None:
    """The candidates are drawn for all points at once: the same points, encoded the same,
    as one ``space.sample`` after another from the same random numbers."""
    from hpo.strategies._bayes_codec import _Codec

    codec = _Codec(CONDITIONAL)
    many = codec.sample(500, np.random.default_rng(7))
    rng = np.random.default_rng(7)
    one_by_one = np.array([codec.encode(CONDITIONAL.sample(rng)) for _ in range(500)])
    np.testing.assert_allclose(many, one_by_one, rtol=0, atol=1e-12)
    assert {int(v) for v in many[:, 5]} == {0, 1, 2}  # activation, as choice indices
    assert (many[:, 4] == 0.5).any() and (many[:, 4] != 0.5).any()  # units_3 off and on
