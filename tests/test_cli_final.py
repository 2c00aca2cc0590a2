"""`hpo run` ends with the final model; `hpo evaluate`, `hpo export`, `hpo show`, `hpo plot
--kind confusion` (issue 16). Real processes, real training on tiny data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _dashboard_server import running_server
from test_cli import hpo

TINY = """
description: a tiny MLP on MNIST for the tests
model: mlp
dataset: mnist
metric: val_accuracy
direction: maximize
trials: 2
default_pruner: median
timeout: 300
budget: {epochs: 2, max_train_images: 300}
params:
  lr: {type: float, low: 5.0e-3, high: 1.0e-2, log: true}
  units: {type: int, low: 32, high: 64}
"""


@pytest.fixture
def work(tmp_path: Path) -> Path:
    (tmp_path / "tiny.yaml").write_text(TINY)
    (tmp_path / "toy.yaml").write_text(
        "direction: minimize\ntrials: 1\nparams:\n  x: {type: float, low: 0, high: 1}\n"
    )
    (tmp_path / "myobj.py").write_text("def f(trial):\n    return trial.params['x']\n")
    return tmp_path


def test_run_ends_with_labelled_test_figures_and_the_model_exports(work: Path) -> None:
    import torch

    from hpo.data import load_mnist
    from hpo.training import load_model, score_model

    out = hpo("run", "--space", "tiny.yaml", "--strategy", "random", cwd=work).stdout
    # The space's defaults: its pruner (the default name stays SPACE-STRATEGY) and timeout.
    assert "pruner" in out and "median" in out
    assert "tiny-random" in out and "tiny-random-median" not in out
    assert "best trial" in out and "validation accuracy" in out
    assert "test accuracy (never seen by the search)" in out
    assert "test split: held out: 1,000 of the 5,000 training images" in out
    assert "the seed's table" in out and "conv net 99.50 %" in out
    assert (work / "hpo-models" / "tiny-random.pt").is_file()

    shown = json.loads(hpo("show", "tiny-random", "--json", cwd=work).stdout)
    ev = shown["evaluation"]
    assert ev["retrained"] and ev["n_train"] == 300 + 800 and ev["n_test"] == 1000
    assert sum(map(sum, ev["confusion"])) == 1000 and 0.5 < ev["test_accuracy"] <= 1.0
    assert "test accuracy" in hpo("show", "tiny-random", cwd=work).stdout
    with running_server(f"sqlite:///{work}/hpo.db") as server:  # the HTTP API's study detail
        detail = server.get("/api/studies/tiny-random")
    assert isinstance(detail, dict) and detail["evaluation"]["test_accuracy"] == ev["test_accuracy"]
    assert (
        detail["evaluation"]["test_split"].startswith("held out")
        and detail["evaluation"]["retrained"]
    )

    # The exported file rebuilds the network and reproduces the stored test accuracy.
    assert "wrote m.pt" in hpo("export", "tiny-random", "-o", "m.pt", cwd=work).stdout
    net = load_model(work / "m.pt")
    data = load_mnist(download=False, cache_dir=work / "no-cache")
    assert data.test_x is not None and data.test_y is not None
    _, acc, confusion = score_model(net, data.test_x, data.test_y, 10)
    assert acc == ev["test_accuracy"] and confusion == ev["confusion"]
    assert net(torch.zeros(2, 1, 28, 28)).shape == (2, 10)

    hpo("plot", "tiny-random", "--kind", "confusion", "-o", "c.html", cwd=work)
    assert '"heatmap"' in (work / "c.html").read_text()

    again = hpo("evaluate", "tiny-random", "--no-retrain", cwd=work).stdout
    assert "repeated on the train split (300 images" in again and "test accuracy" in again


def test_export_and_evaluate_refuse_clearly(work: Path) -> None:
    hpo("run", "--space", "toy.yaml", "--objective", "myobj:f", "--study", "toy", cwd=work)
    for args, fragment in [
        (["export", "toy", "-o", "m.pt"], "has no final model; make one with: hpo evaluate toy"),
        (["evaluate", "toy"], "has no model to evaluate"),
        (["export", "nosuch", "-o", "m.pt"], "no study named 'nosuch'"),
        (["plot", "toy", "--kind", "confusion", "-o", "c.png"], "has no final evaluation"),
    ]:
        proc = hpo(*args, cwd=work, check=False)
        assert proc.returncode == 2, proc.stderr
        assert proc.stderr.count("\n") == 1 and fragment in proc.stderr, proc.stderr
    assert not (work / "m.pt").exists()
