"""Benchmark problems with known optima, shared by the benchmark scripts.

Every problem is an hpo :class:`~hpo.SearchSpace` plus a function of the *active* params
(a dict, as ``trial.params`` holds it) and its known minimum. Adapters turn the same space
into Optuna define-by-run suggestions, Optuna distributions and scikit-optimize dimensions,
so every method searches exactly the same domain.

Domains:

* ``branin``       x1 in [-5, 10], x2 in [0, 15]; min 0.397887 (three global minima).
* ``hartmann6``    [0, 1]^6; min -3.322368.
* ``rosenbrock4``  [-2.048, 2.048]^4 (the classic domain); min 0 at (1, 1, 1, 1).
* ``ackley5``      [-5, 10]^5 (optimum at 0, a third of the way in, not at the centre); min 0.
* ``mixed``        a deep-learning-shaped synthetic: log lr, int layers, log-int units,
                   categorical activation, float dropout; sum of squares with interactions
                   (the best lr depends on depth, the best dropout on width); min 0.
* ``conditional``  optimizer in {sgd, adam, rmsprop} + log lr + method-specific constants
                   (momentum | beta1, beta2 | alpha), inactive ones absent; min 0 (adam,
                   lr=1e-3, beta1=0.9, beta2=0.999); sgd's best is 0.1, rmsprop's 0.05.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

import hpo


@dataclass(frozen=True)
class Problem:
    name: str
    space: hpo.SearchSpace
    f: Callable[[Mapping[str, Any]], float]
    optimum: float
    domain: str


# -- classic test functions -----------------------------------------------------------------


def _branin(p: Mapping[str, Any]) -> float:
    x1, x2 = p["x1"], p["x2"]
    a, b, c = 1.0, 5.1 / (4 * math.pi**2), 5 / math.pi
    r, s, t = 6.0, 10.0, 1 / (8 * math.pi)
    return a * (x2 - b * x1**2 + c * x1 - r) ** 2 + s * (1 - t) * math.cos(x1) + s


_H_A = np.array(
    [
        [10, 3, 17, 3.5, 1.7, 8],
        [0.05, 10, 17, 0.1, 8, 14],
        [3, 3.5, 1.7, 10, 17, 8],
        [17, 8, 0.05, 10, 0.1, 14],
    ]
)
_H_P = 1e-4 * np.array(
    [
        [1312, 1696, 5569, 124, 8283, 5886],
        [2329, 4135, 8307, 3736, 1004, 9991],
        [2348, 1451, 3522, 2883, 3047, 6650],
        [4047, 8828, 8732, 5743, 1091, 381],
    ]
)
_H_ALPHA = np.array([1.0, 1.2, 3.0, 3.2])


def _hartmann6(p: Mapping[str, Any]) -> float:
    x = np.array([p[f"x{i}"] for i in range(6)])
    return float(-(_H_ALPHA * np.exp(-(_H_A * (x - _H_P) ** 2).sum(1))).sum())


def _rosenbrock(p: Mapping[str, Any]) -> float:
    x = np.array([p[f"x{i}"] for i in range(4)])
    return float((100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2).sum())


def _ackley(p: Mapping[str, Any]) -> float:
    x = np.array([p[f"x{i}"] for i in range(5)])
    d = len(x)
    return float(
        -20 * math.exp(-0.2 * math.sqrt((x**2).sum() / d))
        - math.exp(np.cos(2 * math.pi * x).sum() / d)
        + 20
        + math.e
    )


# -- deep-learning-shaped synthetics ---------------------------------------------------------

_ACT_PENALTY = {"gelu": 0.0, "relu": 0.05, "tanh": 0.3, "sigmoid": 1.0}


def _mixed(p: Mapping[str, Any]) -> float:
    lr, layers, units = p["lr"], p["layers"], p["units"]
    act, dropout = p["act"], p["dropout"]
    # Deeper nets want a smaller learning rate: the best log10(lr) moves by 0.15 per layer.
    best_log_lr = math.log10(2e-3) - 0.15 * (layers - 4)
    width = math.log2(units) - 8.0  # 256 units is best
    return (
        0.5 * (math.log10(lr) - best_log_lr) ** 2
        + 0.08 * (layers - 4) ** 2
        + 0.3 * width**2
        + _ACT_PENALTY[act]
        # Wider nets want a little more dropout.
        + 2.0 * (dropout - 0.25 - 0.05 * width) ** 2
    )


def _conditional(p: Mapping[str, Any]) -> float:
    opt, lr = p["optimizer"], p["lr"]
    if opt == "sgd":
        m = p["momentum"]
        # The effective step lr / (1 - momentum) should be 1; momentum itself near 0.9.
        return 0.1 + 0.5 * math.log10(lr / (1.0 - m)) ** 2 + 1.0 * (m - 0.9) ** 2
    if opt == "adam":
        b1, b2 = p["beta1"], p["beta2"]
        return (
            0.5 * (math.log10(lr) + 3.0) ** 2
            + 3.0 * (b1 - 0.9) ** 2
            + 0.25 * (math.log10(1.0 - b2) + 3.0) ** 2
        )
    a = p["alpha"]
    return 0.05 + 0.5 * (math.log10(lr) + 3.5) ** 2 + 0.25 * (math.log10(1.0 - a) + 2.0) ** 2


def _styblinski_tang(p: Mapping[str, Any]) -> float:
    # One global basin at x_i = -2.9035 in a corner; 2^d - 1 local ones (x_i near +2.75) hold
    # most of the box and are only 14 % (per dimension) worse.
    return 0.5 * sum(v**4 - 16.0 * v**2 + 5.0 * v for v in p.values())


def _trap(p: Mapping[str, Any]) -> float:
    # Branch "wide" is easy and smooth, and its best (0.1) is what random points of it find
    # at once; branch "narrow" is worse almost everywhere (0.45 on average) but holds the
    # optimum 0 in a disc of radius ~0.12 (4.6 % of it is below 0.1). A shared log learning
    # rate adds a mild bowl to both.
    lr_term = 0.02 * (math.log10(p["lr"]) + 2.5) ** 2
    if p["branch"] == "wide":
        return 0.1 + 0.1 * (p["w"] - 0.3) ** 2 + lr_term
    d2 = (p["u"] - 0.7) ** 2 + (p["v"] - 0.3) ** 2
    return 0.6 * (1.0 - math.exp(-d2 / (2 * 0.2**2))) + lr_term


def _box(names: list[str], low: float, high: float) -> hpo.SearchSpace:
    return hpo.SearchSpace({n: hpo.Float(low, high) for n in names})


PROBLEMS: dict[str, Problem] = {
    "branin": Problem(
        "branin",
        hpo.SearchSpace({"x1": hpo.Float(-5, 10), "x2": hpo.Float(0, 15)}),
        _branin,
        0.39788735772973816,
        "x1 in [-5,10], x2 in [0,15]",
    ),
    "hartmann6": Problem(
        "hartmann6",
        _box([f"x{i}" for i in range(6)], 0, 1),
        _hartmann6,
        -3.32236801141551,
        "[0,1]^6",
    ),
    "rosenbrock4": Problem(
        "rosenbrock4",
        _box([f"x{i}" for i in range(4)], -2.048, 2.048),
        _rosenbrock,
        0.0,
        "[-2.048,2.048]^4",
    ),
    "ackley5": Problem(
        "ackley5", _box([f"x{i}" for i in range(5)], -5, 10), _ackley, 0.0, "[-5,10]^5"
    ),
    "mixed": Problem(
        "mixed",
        hpo.SearchSpace(
            {
                "lr": hpo.Float(1e-5, 1e-1, log=True),
                "layers": hpo.Int(1, 8),
                "units": hpo.Int(16, 1024, log=True),
                "act": hpo.Categorical(["relu", "tanh", "gelu", "sigmoid"]),
                "dropout": hpo.Float(0.0, 0.6),
            }
        ),
        _mixed,
        0.0,
        "lr [1e-5,0.1] log, layers 1..8, units 16..1024 log, act 4 choices, dropout [0,0.6]",
    ),
    "conditional": Problem(
        "conditional",
        hpo.SearchSpace(
            {
                "optimizer": hpo.Categorical(["sgd", "adam", "rmsprop"]),
                "lr": hpo.Float(1e-5, 1.0, log=True),
                "momentum": hpo.Float(0.0, 0.99, when={"optimizer": "sgd"}),
                "beta1": hpo.Float(0.5, 0.999, when={"optimizer": "adam"}),
                "beta2": hpo.Float(0.9, 0.9999, when={"optimizer": "adam"}),
                "alpha": hpo.Float(0.8, 0.999, when={"optimizer": "rmsprop"}),
            }
        ),
        _conditional,
        0.0,
        "optimizer {sgd,adam,rmsprop}, lr [1e-5,1] log, momentum|beta1,beta2|alpha",
    ),
    "styblinski4": Problem(
        "styblinski4",
        _box([f"x{i}" for i in range(4)], -5, 5),
        _styblinski_tang,
        -39.16616570377142 * 4,
        "[-5,5]^4",
    ),
    "trap": Problem(
        "trap",
        hpo.SearchSpace(
            {
                "branch": hpo.Categorical(["wide", "narrow"]),
                "lr": hpo.Float(1e-4, 1e-1, log=True),
                "w": hpo.Float(0.0, 1.0, when={"branch": "wide"}),
                "u": hpo.Float(0.0, 1.0, when={"branch": "narrow"}),
                "v": hpo.Float(0.0, 1.0, when={"branch": "narrow"}),
            }
        ),
        _trap,
        0.0,
        "branch {wide,narrow}, lr [1e-4,0.1] log, w | u,v: a conditional space with a trap",
    ),
}


# -- adapters ---------------------------------------------------------------------------------


def optuna_suggest(trial: Any, space: hpo.SearchSpace) -> dict[str, Any]:
    """Define-by-run: suggest each parameter of ``space`` only when it is active."""
    out: dict[str, Any] = {}
    for n, p in space.items():
        if not space.is_active(n, out):
            continue
        if isinstance(p, hpo.Categorical):
            out[n] = trial.suggest_categorical(n, list(p.choices))
        elif isinstance(p, hpo.Int):
            out[n] = trial.suggest_int(n, p.low, p.high, step=p.step, log=p.log)
        else:
            out[n] = trial.suggest_float(n, p.low, p.high, log=p.log)
    return out


def optuna_distributions(space: hpo.SearchSpace, params: Mapping[str, Any]) -> dict[str, Any]:
    """Optuna distributions of the params present in ``params``."""
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    out: dict[str, Any] = {}
    for n in params:
        p = space[n]
        if isinstance(p, hpo.Categorical):
            out[n] = CategoricalDistribution(list(p.choices))
        elif isinstance(p, hpo.Int):
            out[n] = IntDistribution(p.low, p.high, log=p.log, step=p.step)
        else:
            out[n] = FloatDistribution(p.low, p.high, log=p.log)
    return out


def skopt_dimensions(space: hpo.SearchSpace) -> list[Any]:
    """Flattened skopt dimensions: every parameter always present (inactive ones ignored)."""
    from skopt.space import Categorical, Integer, Real

    dims: list[Any] = []
    for n, p in space.items():
        if isinstance(p, hpo.Categorical):
            dims.append(Categorical(list(p.choices), name=n))
        elif isinstance(p, hpo.Int):
            dims.append(Integer(p.low, p.high, prior="log-uniform" if p.log else "uniform", name=n))
        else:
            dims.append(Real(p.low, p.high, prior="log-uniform" if p.log else "uniform", name=n))
    return dims


def skopt_params(space: hpo.SearchSpace, x: list[Any]) -> dict[str, Any]:
    """skopt's flat point -> the active params (plain Python types)."""
    out: dict[str, Any] = {}
    for (n, p), v in zip(space.items(), x, strict=True):
        if not space.is_active(n, out):
            continue
        if isinstance(p, hpo.Categorical):
            out[n] = v.item() if hasattr(v, "item") else v
        elif isinstance(p, hpo.Int):
            out[n] = int(v)
        else:
            out[n] = float(v)
    return out


def ax_parameters(space: hpo.SearchSpace) -> list[Any]:
    """Ax (``ax.api``) parameter configs of the flattened space, as for skopt: every parameter
    always present (inactive ones ignored). Numeric choices are ordered choices, string and
    boolean ones unordered; int and float ranges keep their log scale."""
    from ax.api.configs import ChoiceParameterConfig, RangeParameterConfig

    out: list[Any] = []
    for n, p in space.items():
        if isinstance(p, hpo.Categorical):
            values = list(p.choices)
            if all(isinstance(v, bool) for v in values):
                kind, ordered = "bool", False
            elif all(isinstance(v, str) for v in values):
                kind, ordered = "str", False
            elif all(isinstance(v, int) for v in values):
                kind, ordered = "int", True
            else:
                kind, ordered, values = "float", True, [float(v) for v in values]
            out.append(
                ChoiceParameterConfig(
                    name=n, values=values, parameter_type=kind, is_ordered=ordered
                )
            )
        else:
            out.append(
                RangeParameterConfig(
                    name=n,
                    bounds=(p.low, p.high),
                    parameter_type="int" if isinstance(p, hpo.Int) else "float",
                    scaling="log" if p.log else "linear",
                )
            )
    return out


def ax_minimize(
    space: hpo.SearchSpace, f: Callable[[dict[str, Any]], float], n_trials: int, seed: int
) -> None:
    """Run Ax's default generation strategy (Sobol, then BoTorch's GP with log noisy EI) for
    ``n_trials`` sequential trials of ``f`` on the active params of each proposal."""
    import logging

    from ax.api.client import Client

    client = Client(random_seed=seed)
    for name in list(logging.root.manager.loggerDict):  # Ax logs every trial at INFO
        if name.split(".")[0] in ("ax", "botorch", "gpytorch", "linear_operator"):
            logging.getLogger(name).setLevel(logging.ERROR)
    client.configure_experiment(parameters=ax_parameters(space))
    client.configure_optimization(objective="-loss")
    for _ in range(n_trials):
        for index, raw in client.get_next_trials(max_trials=1).items():
            params: dict[str, Any] = {}
            for n, _ in space.items():
                if space.is_active(n, params):
                    params[n] = raw[n]
            client.complete_trial(trial_index=index, raw_data={"loss": float(f(params))})
