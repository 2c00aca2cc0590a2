"""The bayes strategy on what broke it: numeric failures (issue 14)."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import numpy as np
import pytest

import hpo

FIXTURES = Path(__file__).parent / "fixtures"


def test_bayes_proposes_after_the_history_that_crashed_a_study() -> None:
    """174 trials of a 6-D Hartmann study whose next ask raised ValueError (infs or NaNs)
    from the kernel fit: unbounded hyper-parameters overflowed exp."""
    history = json.loads((FIXTURES / "bayes_nan_history.json").read_text())
    assert len(history) == 174
    space = hpo.SearchSpace({f"x{i}": hpo.Float(0.0, 1.0) for i in range(6)})
    study = hpo.create_study(space=space, strategy="bayes", direction="minimize", seed=0)
    for params, value in history:
        study.tell(study.ask(params=params), value)
    seen = {json.dumps(p, sort_keys=True) for p, _ in history}
    for _ in range(2):
        trial = study.ask()
        assert set(trial.params) == set(space)
        assert all(0.0 <= v <= 1.0 for v in trial.params.values())
        assert json.dumps(dict(trial.params), sort_keys=True) not in seen
        study.tell(trial, 0.0)


def test_gp_fit_stays_bounded_and_finite_on_degenerate_data() -> None:
    """Duplicated inputs with different values, values 1e12 apart, near-identical points:
    the fit ends with finite, bounded hyper-parameters and a finite posterior."""
    from hpo.strategies._gp import _LS_BOUNDS, fit_gp

    rng = np.random.default_rng(0)
    x = np.repeat(rng.random((5, 3)), 8, axis=0)
    x[::2] += 1e-13
    y = rng.standard_normal(len(x))
    y[0] = 1e12
    y = (y - y.mean()) / y.std()
    gp = fit_gp(x, y, np.zeros(3, dtype=bool))
    assert np.all(np.isfinite(gp.inv_sq_ls))
    assert np.all(np.log(gp.inv_sq_ls) <= _LS_BOUNDS[1] + 1e-9)
    mean, var = gp.posterior(rng.random((50, 3)))
    assert np.all(np.isfinite(mean)) and np.all(np.isfinite(var)) and np.all(var > 0)


def test_bayes_turns_a_model_failure_into_a_logged_seeded_proposal(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Whatever fails inside the model (here a LinAlgError raised where the GP would be fitted),
    ask still proposes: a logged, seeded random point that no trial holds, the same in two
    studies with the same seed. And extreme values (1.7e308 of both signs) are no failure."""
    from hpo.strategies._bayes import BayesStrategy

    class Broken(BayesStrategy):
        def _propose_gp(self, *args: object, **kwargs: object) -> dict:
            raise np.linalg.LinAlgError("injected")

    space = hpo.SearchSpace({"a": hpo.Float(0.0, 1.0), "b": hpo.Int(1, 8)})

    def run(strategy: BayesStrategy) -> list[dict]:
        study = hpo.create_study(space=space, strategy=strategy, seed=3)
        for i in range(6):
            t = study.ask()
            study.tell(t, (-1) ** i * 1.7e308)
        out = []
        for _ in range(3):
            t = study.ask()
            out.append(dict(t.params))
            study.tell(t, math.pi)
        return out

    with caplog.at_level(logging.WARNING, logger="hpo"):
        healthy = run(BayesStrategy(n_initial=3))
    assert not [r for r in caplog.records if "bayes:" in r.getMessage()]
    with caplog.at_level(logging.WARNING, logger="hpo"):
        first = run(Broken(n_initial=3))
    assert sum("injected" in r.getMessage() for r in caplog.records) == 6  # trials 3..8
    assert first == run(Broken(n_initial=3))
    assert first != healthy
    assert len({json.dumps(p, sort_keys=True) for p in first}) == 3
