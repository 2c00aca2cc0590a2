"""The optimiser view of the dashboard (issue 19) in Chromium, against the real server over a
real bayes study: the views render with the right number of points, the surrogate's mean at
the observed trials matches the stored values within the GP's noise, a trial's details and
notes, the contour's parameters and the comparison of two studies. Screenshots go to
test-artifacts/dashboard (see test_dashboard_browser.py for the browser set-up)."""

from __future__ import annotations

import math
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # the helper modules next to this file

import test_dashboard_browser as _shared
from _dashboard_server import MLFLOW_UI, Server, artifacts_dir, running_server

import hpo
from hpo.trial import TrialState

SPACE = hpo.SearchSpace(
    {
        "lr": hpo.Float(1e-4, 1e-1, log=True),
        "layers": hpo.Int(1, 4),
        "units": hpo.Int(16, 512, log=True),
        "dropout": hpo.Float(0.0, 0.5),
        "optimizer": hpo.Categorical(["sgd", "adam"]),
        "momentum": hpo.Float(0.0, 0.99, when={"optimizer": "sgd"}),
        "weight_decay": hpo.Float(1e-6, 1e-2, log=True),
        "batch_size": hpo.Categorical([32, 64, 128]),
    }
)
SHOTS = artifacts_dir("dashboard")
browser = _shared.browser  # the shared fixtures: Chromium, and a page that fails on JS errors
page = _shared.page


def objective(trial: hpo.Trial) -> float:
    """Three epochs of a falling curve; trial 9 fails."""
    p = trial.params
    final = (
        (math.log10(p["lr"]) + 2.5) ** 2
        + 0.05 * p["layers"]
        + 0.3 * abs(math.log2(p["units"] / 128)) / 3
        + (p["dropout"] - 0.2) ** 2
        + 0.2 * p.get("momentum", 0.5)
    )
    for step in (1, 2, 3):
        trial.report(final + 1.0 / step, step)
    if trial.number == 9:
        raise RuntimeError("CUDA out of memory (simulated)")
    return final


@pytest.fixture(scope="module")
def store_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('optimizer-browser')}/hpo.db"
    study = hpo.create_study(
        space=SPACE,
        strategy="bayes",
        storage=url,
        name="tuning",
        seed=1,
        strategy_options={"n_initial": 8, "n_candidates": 256, "n_local": 1},
    )
    study.optimize(objective, n_trials=30)
    study.ask().report(2.0, 1)  # a running trial, one epoch in
    for t in study.trials:  # two GPU workers, as the Ray executor records them
        host, gpu = ("node-1", "0") if t.number % 3 else ("node-2", "0")
        study.store.annotate_trial(
            int(t.system_attrs["trial_id"]), {"worker_host": host, "gpu_ids": [gpu]}
        )
    study.store.annotate_trial(
        int(study.trials[2].system_attrs["trial_id"]), {"mlflow_run_id": "run42"}
    )
    other = hpo.create_study(space=SPACE, strategy="random", storage=url, name="baseline", seed=0)
    other.optimize(objective, n_trials=6)
    return url


@pytest.fixture(scope="module")
def server(store_url: str) -> Iterator[Server]:
    with running_server(store_url, "--poll", "30", "--mlflow-ui", MLFLOW_UI) as s:
        yield s


def open_optimizer(page: Any, server: Server, name: str = "tuning") -> None:
    page.goto(f"{server.url}/#/study/{name}")
    page.wait_for_function("document.body.dataset.optimizer !== undefined", timeout=60_000)


def traces(page: Any, kind: str, role: str) -> list[dict[str, Any]]:
    return list(
        page.evaluate(
            f"""() => document.getElementById('opt-{kind}').data
                .filter((t) => (t.meta || {{}}).role === '{role}')
                .map((t) => ({{x: t.x, y: t.y, param: t.meta.param}}))"""
        )
    )


def test_the_optimizer_views_render_what_the_model_believes(
    page: Any, server: Server, store_url: str
) -> None:
    open_optimizer(page, server)
    trials = hpo.load_study("tuning", storage=store_url).trials
    valued = [t for t in trials if t.value is not None]
    for kind in ("surrogate", "acquisition", "contour", "learning", "edf", "timeline"):
        assert page.locator(f"#opt-{kind} .main-svg").count() > 0, kind
    for kind in ("tpe", "coverage"):
        assert page.locator(f"#opt-{kind}").is_hidden()
    # The observed trials over each slice: one point per trial where the parameter is active.
    observed = {tr["param"]: len(tr["x"]) for tr in traces(page, "surrogate", "observed")}
    assert observed == {n: sum(1 for t in valued if n in t.params) for n in SPACE}
    (running,) = [t for t in trials if t.state is TrialState.RUNNING]
    assert len(traces(page, "acquisition", "running")) == len(running.params)
    # The model's mean at the observed trials matches the stored values within its noise.
    fit = page.evaluate("() => document.getElementById('opt-surrogate').layout.meta.fit")
    stored = {t.number: t.value for t in valued}
    assert sorted(fit["numbers"]) == sorted(stored)
    inside = sum(
        lo <= stored[n] <= hi
        for n, lo, hi in zip(fit["numbers"], fit["lower"], fit["upper"], strict=True)
    )
    assert inside >= 0.9 * len(stored), (inside, len(stored))
    # Workers: a bar per trial, the two GPUs as rows; the running trial's epoch.
    bars = traces(page, "timeline", "trials")
    assert sum(len(b["x"]) for b in bars) == len(trials)
    assert {y.split(" · ")[0] for b in bars for y in b["y"]} == {"node-1", "node-2"}
    assert "epoch 1/3" in page.locator("#opt-timeline").inner_text()
    assert page.locator("#opt-hint").is_visible()
    assert "proposals expect" in page.locator("#opt-hint").inner_text()
    complete = sum(1 for t in trials if t.state is TrialState.COMPLETE)
    assert len(traces(page, "edf", "edf")[0]["x"]) == complete
    page.locator("#optimizer").screenshot(path=str(SHOTS / "optimizer.png"))


def test_trial_details_and_notes(page: Any, server: Server, store_url: str) -> None:
    open_optimizer(page, server)
    page.locator("#trials button.trial-link[data-n='9']").click()
    page.wait_for_selector("#trial-detail:not([hidden]) #plot-trial .main-svg")
    panel = page.locator("#trial-detail")
    assert "Trial 9" in panel.inner_text() and "failed" in panel.inner_text()
    assert "CUDA out of memory" in page.locator("#trial-detail pre.error").inner_text()
    params = page.locator("#trial-detail table[data-part='params'] tr")
    assert params.count() == len(SPACE)
    assert "node-" in page.locator("#trial-detail table[data-part='attrs']").inner_text()
    points = page.evaluate("() => document.getElementById('plot-trial').data[0].x.length")
    assert points == 3
    page.fill("#trial-note", "OOM: halve the batch")
    page.click("#trial-note-save")
    page.wait_for_function(
        "document.getElementById('trial-note-status').textContent.startsWith('saved')"
    )
    page.screenshot(path=str(SHOTS / "trial-detail.png"))
    store = hpo.load_study("tuning", storage=store_url)
    assert store.trials[9].system_attrs["note"] == "OOM: halve the batch"
    # The MLflow link of a trial with a run.
    page.click("#trial-detail-close")
    page.locator("#trials button.trial-link[data-n='2']").click()
    page.wait_for_selector(f"#trial-detail a[href='{MLFLOW_UI}/#/runs/run42']")
    # A note on the study.
    page.fill("#study-note", "bayes, 8 params: lr dominates")
    page.click("#study-note-save")
    page.wait_for_function(
        "document.getElementById('study-note-status').textContent.startsWith('saved')"
    )
    assert store.store.get_study("tuning").user_attrs["note"] == "bayes, 8 params: lr dominates"


def test_contour_parameters_and_comparing_two_studies(page: Any, server: Server) -> None:
    open_optimizer(page, server)
    page.select_option("#opt-x", "dropout")
    page.select_option("#opt-y", "units")
    page.wait_for_function(
        "document.getElementById('opt-contour').layout.meta.x === 'dropout'"
        " && document.getElementById('opt-contour').layout.meta.y === 'units'"
    )
    grid = traces(page, "contour", "grid-mean")[0]
    assert len(grid["x"]) == 24 * 24
    page.select_option("#other-study", "baseline")
    page.wait_for_selector("#compare-studies-table tr[data-row='best value']")
    rows = page.locator("#compare-studies-table tr[data-row]")
    assert rows.count() == 6 + len(SPACE)
    strategy = page.locator("#compare-studies-table tr[data-row='strategy']").inner_text()
    assert "bayes" in strategy and "random" in strategy
    page.locator("#compare-studies").screenshot(path=str(SHOTS / "compare-studies.png"))
