"""Real machine-learning tuning problems, precomputed into lookup tables (issue 14 item 4).

Each problem is a scikit-learn model on a data set that ships with scikit-learn, with the
kind of search space people really tune: integers with a few values, numeric choices on a
log scale (``learning_rate: [0.01, 0.03, 0.1, 0.3, 1]``), true categoricals, and conditional
parameters. Every configuration of the (discrete) space is trained once by ``build`` and its
validation loss stored, so a 50-trial search costs lookups only and many seeds and methods
are affordable; the landscape is the real one (stepped, noisy from training, with ties).

The value is a validation loss to minimise on one fixed, stratified split (seed 0): log loss
for the classifiers that give probabilities, error rate for SVC, mean squared error for the
regressor. The table's minimum is the optimum, so regret = best value found - table minimum.

Tables: ``benchmarks/results/real_ml/<problem>.json`` (git-ignored), written by::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_real_ml.py build
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

import hpo

TABLES = Path(__file__).resolve().parent / "results" / "real_ml"


def key(params: Mapping[str, Any]) -> str:
    """A configuration's key in a table (numbers as floats, so 1 and 1.0 are one key)."""

    def norm(v: Any) -> Any:
        if isinstance(v, bool) or v is None or isinstance(v, str):
            return v
        if isinstance(v, (int, float, np.integer, np.floating)):
            return float(v)
        return v

    return json.dumps({k: norm(params[k]) for k in sorted(params)})


@dataclass(frozen=True)
class RealProblem:
    name: str
    space: hpo.SearchSpace
    evaluate: Callable[[dict[str, Any]], float]
    about: str


# -- data --------------------------------------------------------------------------------------


def _split(loader: Callable[..., Any], classify: bool, n_max: int | None = None) -> tuple:
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    x, y = loader(return_X_y=True)
    if n_max is not None and len(x) > n_max:
        x, _, y, _ = train_test_split(
            x, y, train_size=n_max, random_state=0, stratify=y if classify else None
        )
    xtr, xva, ytr, yva = train_test_split(
        x, y, test_size=0.3, random_state=0, stratify=y if classify else None
    )
    scaler = StandardScaler().fit(xtr)
    return scaler.transform(xtr), scaler.transform(xva), ytr, yva


_DATA: dict[str, tuple] = {}


def _data(name: str) -> tuple:
    if name not in _DATA:
        from sklearn import datasets

        loaders = {
            "cancer": (datasets.load_breast_cancer, True, None),
            "digits": (datasets.load_digits, True, 1000),
            "wine": (datasets.load_wine, True, None),
            "diabetes": (datasets.load_diabetes, False, None),
        }
        loader, classify, n_max = loaders[name]
        _DATA[name] = _split(loader, classify, n_max)
    return _DATA[name]


def _log_loss(model: Any, xva: np.ndarray, yva: np.ndarray) -> float:
    from sklearn.metrics import log_loss

    proba = np.clip(model.predict_proba(xva), 1e-6, 1.0)
    return float(log_loss(yva, proba, labels=model.classes_))


# -- problems ----------------------------------------------------------------------------------


def _gb_cancer(p: dict[str, Any]) -> float:
    from sklearn.ensemble import GradientBoostingClassifier

    xtr, xva, ytr, yva = _data("cancer")
    model = GradientBoostingClassifier(
        n_estimators=int(p["n_estimators"]),
        learning_rate=float(p["learning_rate"]),
        max_depth=int(p["max_depth"]),
        subsample=float(p["subsample"]),
        min_samples_leaf=int(p["min_samples_leaf"]),
        random_state=0,
    ).fit(xtr, ytr)
    return _log_loss(model, xva, yva)


def _svc_digits(p: dict[str, Any]) -> float:
    from sklearn.svm import SVC

    xtr, xva, ytr, yva = _data("digits")
    kw: dict[str, Any] = {"kernel": p["kernel"], "C": float(p["C"])}
    if "gamma" in p:
        kw["gamma"] = float(p["gamma"])
    if "degree" in p:
        kw["degree"] = int(p["degree"])
    model = SVC(**kw, max_iter=20_000).fit(xtr, ytr)
    return float(np.mean(model.predict(xva) != yva))


def _mlp_wine(p: dict[str, Any]) -> float:
    from sklearn.neural_network import MLPClassifier

    xtr, xva, ytr, yva = _data("wine")
    model = MLPClassifier(
        hidden_layer_sizes=(int(p["units"]),) * int(p["layers"]),
        activation=p["activation"],
        alpha=float(p["alpha"]),
        learning_rate_init=float(p["learning_rate_init"]),
        batch_size=int(p["batch_size"]),
        max_iter=40,
        random_state=0,
    ).fit(xtr, ytr)
    return _log_loss(model, xva, yva)


def _rf_diabetes(p: dict[str, Any]) -> float:
    from sklearn.ensemble import RandomForestRegressor

    xtr, xva, ytr, yva = _data("diabetes")
    model = RandomForestRegressor(
        n_estimators=int(p["n_estimators"]),
        max_depth=int(p["max_depth"]),
        max_features=float(p["max_features"]),
        min_samples_leaf=int(p["min_samples_leaf"]),
        bootstrap=bool(p["bootstrap"]),
        random_state=0,
    ).fit(xtr, ytr)
    return float(np.mean((model.predict(xva) - yva) ** 2))


def _sgd_digits(p: dict[str, Any]) -> float:
    from sklearn.linear_model import SGDClassifier

    xtr, xva, ytr, yva = _data("digits")
    kw: dict[str, Any] = {}
    if "l1_ratio" in p:
        kw["l1_ratio"] = float(p["l1_ratio"])
    model = SGDClassifier(
        loss=p["loss"],
        penalty=p["penalty"],
        alpha=float(p["alpha"]),
        average=bool(p["average"]),
        class_weight=None if p["class_weight"] == "none" else "balanced",
        max_iter=30,
        tol=None,
        random_state=0,
        **kw,
    ).fit(xtr, ytr)
    return float(np.mean(model.predict(xva) != yva))


PROBLEMS: dict[str, RealProblem] = {
    p.name: p
    for p in (
        RealProblem(
            "gb_cancer",
            hpo.SearchSpace(
                {
                    "n_estimators": hpo.Categorical([20, 50, 100]),
                    "learning_rate": hpo.Categorical([0.01, 0.03, 0.1, 0.2, 0.5, 1.0]),
                    "max_depth": hpo.Int(1, 4),
                    "subsample": hpo.Categorical([0.5, 1.0]),
                    "min_samples_leaf": hpo.Categorical([1, 5, 20]),
                }
            ),
            _gb_cancer,
            "GradientBoostingClassifier, breast cancer, validation log loss",
        ),
        RealProblem(
            "svc_digits",
            hpo.SearchSpace(
                {
                    "kernel": hpo.Categorical(["linear", "rbf", "poly"]),
                    "C": hpo.Categorical([1e-3, 1e-2, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 100.0, 1e3]),
                    "gamma": hpo.Categorical(
                        [1e-5, 1e-4, 3e-4, 1e-3, 3e-3, 0.01, 0.03, 0.1, 0.3, 1.0],
                        when={"kernel": ["rbf", "poly"]},
                    ),
                    "degree": hpo.Int(2, 4, when={"kernel": "poly"}),
                }
            ),
            _svc_digits,
            "SVC, digits (1,000 images), validation error; gamma|degree conditional",
        ),
        RealProblem(
            "mlp_wine",
            hpo.SearchSpace(
                {
                    "layers": hpo.Int(1, 3),
                    "units": hpo.Categorical([8, 32, 128]),
                    "activation": hpo.Categorical(["relu", "tanh"]),
                    "alpha": hpo.Categorical([1e-5, 1e-3, 1e-1, 1.0]),
                    "learning_rate_init": hpo.Categorical([1e-4, 1e-3, 1e-2, 1e-1]),
                    "batch_size": hpo.Categorical([32, 128]),
                }
            ),
            _mlp_wine,
            "MLPClassifier (40 epochs), wine, validation log loss",
        ),
        RealProblem(
            "rf_diabetes",
            hpo.SearchSpace(
                {
                    "n_estimators": hpo.Categorical([10, 25, 50, 100]),
                    "max_depth": hpo.Categorical([2, 4, 8, 16]),
                    "max_features": hpo.Categorical([0.2, 0.4, 0.6, 0.8, 1.0]),
                    "min_samples_leaf": hpo.Categorical([1, 2, 4, 8, 16]),
                    "bootstrap": hpo.Categorical([True, False]),
                }
            ),
            _rf_diabetes,
            "RandomForestRegressor, diabetes, validation MSE",
        ),
        RealProblem(
            "sgd_digits",
            hpo.SearchSpace(
                {
                    "loss": hpo.Categorical(["hinge", "log_loss", "modified_huber"]),
                    "penalty": hpo.Categorical(["l2", "l1", "elasticnet"]),
                    "l1_ratio": hpo.Categorical([0.15, 0.5, 0.85], when={"penalty": "elasticnet"}),
                    "alpha": hpo.Categorical([1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 0.1, 1.0]),
                    "average": hpo.Categorical([False, True]),
                    "class_weight": hpo.Categorical(["none", "balanced"]),
                }
            ),
            _sgd_digits,
            "SGDClassifier (30 epochs), digits, validation error; l1_ratio conditional",
        ),
    )
}


def table_path(name: str) -> Path:
    return TABLES / f"{name}.json"


def _configs(name: str) -> list[dict[str, Any]]:
    prob = PROBLEMS[name]
    points = max([2] + [p.n_values for p in prob.space.values() if isinstance(p, hpo.Int)])
    return [dict(q) for q in prob.space.grid(points)]


def _evaluate_chunk(task: tuple[str, int, int]) -> list[tuple[str, float]]:
    import warnings

    name, start, stop = task
    prob = PROBLEMS[name]
    out = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for params in _configs(name)[start:stop]:
            v = prob.evaluate(params)
            out.append((key(params), v if math.isfinite(v) else 1e3))
    return out


def build(names: list[str], processes: int = 2) -> dict[str, float]:
    """Train every configuration of each problem (spread over ``processes``); write the
    tables; return each problem's build time in seconds (wall, all chunks)."""
    import multiprocessing as mp

    tasks = []
    for name in names:
        n = len(_configs(name))
        tasks += [(name, a, min(a + 40, n)) for a in range(0, n, 40)]
    results: dict[str, dict[str, float]] = {name: {} for name in names}
    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    with mp.get_context("spawn").Pool(processes) as pool:
        for task, rows in zip(tasks, pool.imap(_evaluate_chunk, tasks), strict=True):
            results[task[0]].update(rows)
            seconds[task[0]] = time.perf_counter() - t0
    TABLES.mkdir(parents=True, exist_ok=True)
    for name in names:
        table = {"problem": name, "values": results[name]}
        table_path(name).write_text(json.dumps(table))
    return seconds


def load(name: str) -> dict[str, float]:
    path = table_path(name)
    if not path.exists():
        raise SystemExit(
            f"no table for {name!r} at {path}; build it first: "
            "OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_real_ml.py build"
        )
    values: dict[str, float] = json.loads(path.read_text())["values"]
    return values
