"""What the optimiser thinks (issue 19): bayes's own model refitted from the store, the views
drawn from it, the API that serves them and ``hpo plot`` for them."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))  # the helper module next to this file

from _dashboard_server import MLFLOW_UI, Server, hpo_command, running_server

import hpo
from hpo.plots import _opt_learning
from hpo.plots import _optimizer as opt
from hpo.plots._optimizer_figures import write_optimizer_plot
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
def store_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A SQLite store: a bayes study ("opt-bayes", maximised, with a running trial that has
    reported an epoch, its trials spread over two GPU workers) and a random one."""
    url = f"sqlite:///{tmp_path_factory.mktemp('optimizer')}/hpo.db"
    study = hpo.create_study(
        space=SPACE,
        strategy="bayes",
        direction="maximize",  # the sign must survive the way there and back
        seed=3,
        storage=url,
        name="opt-bayes",
        strategy_options={"n_initial": 6, "n_candidates": 256, "n_local": 2},
    )
    study.optimize(lambda t: objective(t, -1.0), n_trials=24)
    running = study.ask()  # one running trial: fantasised by the believer
    running.report(-5.0, 1)
    for t in study.trials:  # as the Ray executor records them: two hosts, one GPU each
        host, gpu = ("gpu-a", "0") if t.number % 2 == 0 else ("gpu-b", "1")
        study.store.annotate_trial(
            int(t.system_attrs["trial_id"]), {"worker_host": host, "gpu_ids": [gpu]}
        )
    rnd = hpo.create_study(space=SPACE, strategy="random", seed=0, storage=url, name="opt-random")
    rnd.optimize(objective, n_trials=8)
    return url


@pytest.fixture(scope="module")
def bayes_study(store_url: str) -> hpo.Study:
    return hpo.load_study("opt-bayes", storage=store_url)


class _Recording(BayesStrategy):
    """bayes itself, remembering the x and y it fitted its GP to."""

    seen: list[tuple[np.ndarray, np.ndarray]]

    def _propose_gp(self, codec: Any, trials: Any, x: Any, y: Any, *rest: Any) -> Any:
        self.seen.append((x.copy(), y.copy()))
        return super()._propose_gp(codec, trials, x, y, *rest)


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
    assert s.slices[0].running_numbers == (24,)
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
    assert _opt_learning._hint([1e-5] * 10)[0] == "converged"
    assert "0.1%" in _opt_learning._hint([1e-5] * 10)[1]
    assert _opt_learning._hint([0.2] * 10)[0] == "learning"


# -- the API -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(store_url: str) -> Iterator[Server]:
    with running_server(store_url, "--mlflow-ui", MLFLOW_UI) as s:
        yield s


def call(server: Server, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(server.url + path, data=data, method=method)
    req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def role(fig: dict[str, Any], name: str, param: str | None = None) -> list[dict[str, Any]]:
    return [
        tr
        for tr in fig["data"]
        if tr.get("meta", {}).get("role") == name
        and (param is None or tr["meta"].get("param") == param)
    ]


def test_optimizer_api_serves_the_views_of_a_bayes_study(
    server: Server, bayes_study: hpo.Study
) -> None:
    status, body = call(server, "GET", "/api/studies/opt-bayes/optimizer?x=lr&y=dropout")
    assert status == 200, body
    assert body["strategy"] == "bayes"
    assert body["kinds"] == ["surrogate", "acquisition", "contour", "learning", "timeline", "edf"]
    figs = body["figures"]
    trials = bayes_study.trials
    valued = [t for t in trials if t.value is not None and math.isfinite(t.value)]
    # One subplot per parameter; the observed trials drawn where the parameter was active.
    for name in SPACE:
        (obs,) = role(figs["surrogate"], "observed", name)
        assert len(obs["x"]) == sum(1 for t in valued if name in t.params)
        (mean,) = role(figs["surrogate"], "mean", name)
        (acq,) = role(figs["acquisition"], "acquisition", name)
        assert len(mean["x"]) == len(acq["x"]) > 1
    assert figs["surrogate"]["layout"]["meta"]["n_running"] == 1
    assert len(role(figs["acquisition"], "running")) == len(SPACE)  # the running trial, marked
    assert figs["contour"]["layout"]["meta"] == {"x": "lr", "y": "dropout"}
    (grid, _sd) = role(figs["contour"], "grid-mean"), role(figs["contour"], "grid-sd")
    assert len(grid[0]["x"]) == 24 * 24
    assert len(role(figs["contour"], "observed")[0]["x"]) == len(valued)
    assert figs["learning"]["layout"]["meta"]["verdict"] in ("converged", "slowing", "learning")
    # Two workers (GPU 0 on gpu-a, GPU 1 on gpu-b); the running trial's epoch and ETA.
    meta = figs["timeline"]["layout"]["meta"]
    assert sorted(meta["busy"]) == ["gpu-a · gpu 0", "gpu-b · gpu 1"]
    (run,) = meta["running"]
    assert run["number"] == 24 and run["epoch"] == 1 and run["epochs"] == 3
    assert run["eta_s"] is not None and run["eta_s"] >= 0
    bars = sum(len(tr["x"]) for tr in role(figs["timeline"], "trials"))
    assert bars == len(trials)
    assert len(role(figs["edf"], "edf")[0]["x"]) == sum(
        1 for t in trials if t.state is TrialState.COMPLETE
    )
    # Cached per revision: the same figures again (all but the live timeline).
    status, again = call(server, "GET", "/api/studies/opt-bayes/optimizer?x=lr&y=dropout")
    assert again["revision"] == body["revision"]
    assert set(again["cached"]) == set(body["kinds"]) - {"timeline"}
    assert again["figures"]["surrogate"] == figs["surrogate"]


def test_optimizer_api_for_other_strategies_and_bad_input(server: Server) -> None:
    status, body = call(server, "GET", "/api/studies/opt-random/optimizer")
    assert status == 200 and body["kinds"] == ["coverage", "timeline", "edf"]
    cov = role(body["figures"]["coverage"], "coverage")
    assert [tr["meta"]["param"] for tr in cov] == list(SPACE)
    assert sum(role(body["figures"]["coverage"], "coverage", "lr")[0]["y"]) == 8
    status, body = call(server, "GET", "/api/studies/opt-random/optimizer?kind=surrogate&kind=tpe")
    assert status == 200
    assert "'random'" in json.dumps(body["figures"]["surrogate"]["layout"]["annotations"])
    assert len(role(body["figures"]["tpe"], "good")) == len(SPACE)
    (layers,) = role(body["figures"]["tpe"], "good", "layers")  # 4 values: a bar per value
    assert layers["type"] == "bar" and layers["x"] == [1, 2, 3, 4]
    assert abs(sum(layers["y"]) - 1) < 1e-9
    status, body = call(server, "GET", "/api/studies/opt-bayes/optimizer?kind=contour&x=nope")
    assert status == 422 and "'nope' is not a parameter" in body["detail"]
    status, body = call(server, "GET", "/api/studies/opt-bayes/optimizer?kind=bogus")
    assert status == 422 and body["error"] == "ValidationError"
    status, body = call(server, "GET", "/api/studies/missing/optimizer")
    assert status == 404


def test_notes_on_a_study_and_a_trial_are_kept_in_the_store(server: Server, store_url: str) -> None:
    status, body = call(server, "PUT", "/api/studies/opt-random/note", {"note": "lr too wide"})
    assert status == 200 and body["note"] == "lr too wide"
    assert call(server, "GET", "/api/studies/opt-random")[1]["note"] == "lr too wide"
    status, body = call(server, "PUT", "/api/studies/opt-random/trials/2/note", {"note": "odd"})
    assert status == 200 and body["note"] == "odd" and body["state"] == "complete"
    assert call(server, "GET", "/api/studies/opt-random/trials/2")[1]["note"] == "odd"
    store = hpo.load_study("opt-random", storage=store_url).store
    assert store.get_study("opt-random").user_attrs["note"] == "lr too wide"
    # The result itself is untouched; an empty note removes it.
    status, body = call(server, "PUT", "/api/studies/opt-random/note", {"note": ""})
    assert status == 200 and body["note"] is None
    status, body = call(server, "PUT", "/api/studies/opt-random/trials/99/note", {"note": "x"})
    assert status == 404
    status, body = call(server, "PUT", "/api/studies/opt-random/note", {"text": "x"})
    assert status == 422


# -- hpo plot --------------------------------------------------------------------------------


def hpo_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*hpo_command(), *args], capture_output=True, text=True, timeout=300)


def test_hpo_plot_writes_the_optimizer_views(store_url: str, tmp_path: Path) -> None:
    """Three through the command (html, png, contour with --x/--y), the rest through the
    function it calls (the command's start-up costs seconds a call)."""
    for kind, suffix, extra in (
        ("surrogate", "html", []),
        ("contour", "png", ["--x", "layers", "--y", "lr"]),
    ):
        out = tmp_path / f"{kind}.{suffix}"
        proc = hpo_cli(
            "plot", "opt-bayes", "--kind", kind, "-o", str(out), "--storage", store_url, *extra
        )
        assert proc.returncode == 0, proc.stderr
        assert f"wrote {out} ({kind}" in proc.stdout
    assert (tmp_path / "contour.png").read_bytes().startswith(b"\x89PNG")
    assert b"Surrogate" in (tmp_path / "surrogate.html").read_bytes()
    study = hpo.load_study("opt-bayes", storage=store_url)
    for kind in ("acquisition", "learning", "timeline", "edf"):
        png = write_optimizer_plot(study, kind, tmp_path / f"{kind}.png")
        assert png.read_bytes().startswith(b"\x89PNG")
    bad = hpo_cli(
        "plot",
        "opt-random",
        "--kind",
        "surrogate",
        "-o",
        str(tmp_path / "s.png"),
        "--storage",
        store_url,
    )
    assert bad.returncode == 2 and "the surrogate is bayes's model" in bad.stderr
    assert not (tmp_path / "s.png").exists()
    with pytest.raises(hpo.HpoError, match="--x 'nope' is not a parameter"):
        write_optimizer_plot(study, "contour", tmp_path / "c.png", x="nope")


def test_study_notes_on_both_stores(storage_url: str) -> None:
    """Store.annotate_study keeps a note with the study (its user attributes), on SQLite and
    PostgreSQL; what the study was made with is untouched."""
    study = hpo.create_study(space=SPACE, storage=storage_url, name="noted", seed=5)
    store = study.store
    store.annotate_study(study.record.id, {"note": "first"})
    store.annotate_study(study.record.id, {"note": "second", "tag": "x"})
    again = store.get_study("noted")
    assert dict(again.user_attrs) == {"note": "second", "tag": "x"}
    assert again.seed == 5 and dict(again.space) == dict(study.record.space)
    with pytest.raises(hpo.HpoError, match="does not exist"):
        store.annotate_study(10_000, {"note": "x"})
    store.close()
