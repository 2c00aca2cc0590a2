"""hpo.run_study: what `hpo run` does, called from Python (no CLI, real store)."""

from __future__ import annotations

from pathlib import Path

import pytest

import hpo

SPACE = """
description: a quadratic, for run_study
direction: minimize
trials: 4
default_pruner: median
budget: {epochs: 3}
params:
  x: {type: float, low: 0, high: 1}
"""


def objective(trial: hpo.Trial) -> float:
    for step in range(3):
        trial.report((trial.params["x"] - 0.3) ** 2 + 1 / (step + 1), step)
    return float((trial.params["x"] - 0.3) ** 2)


def test_run_study_runs_resumes_and_stores_the_space_pruner(tmp_path: Path) -> None:
    f = tmp_path / "quad.yaml"
    f.write_text(SPACE)
    url = f"sqlite:///{tmp_path / 'hpo.db'}"
    said: list[str] = []
    ended: list[hpo.RunResult] = []
    result = hpo.run_study(
        str(f), strategy="random", storage=url, objective=objective, mlflow=False,
        say=said.append, on_search_end=ended.append,
    )  # fmt: skip
    study = result.study
    assert study.name == "quad-random"  # SPACE-STRATEGY; no pruner suffix unless asked for
    assert result.created and result.searched and result.tracker_uri is None
    assert ended == [result] and result.evaluation is None  # a custom objective: no final model
    assert len(study.trials) == 4 and study.record.pruner == "median"
    assert study.direction is hpo.Direction.MINIMIZE
    assert any(line.startswith("[bold]study[/] quad-random") for line in said)
    assert any(line.startswith("[bold]pruner[/] median") for line in said)
    # the strategy and pruner the run built are the ones the study runs with
    assert study.strategy.name == "random" and isinstance(study.pruner, hpo.MedianPruner)
    said.clear()
    again = hpo.run_study(
        str(f), strategy="random", storage=url, objective=objective, mlflow=False, say=said.append
    )
    assert not again.created and not again.searched and len(again.study.trials) == 4
    assert any("already holds 4/4 trials; nothing to run" in line for line in said)


def test_run_study_checks_settings_before_storing_anything(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'hpo.db'}"
    space = hpo.SearchSpace({"x": hpo.Float(0, 1)}, name="plain")
    with pytest.raises(hpo.StrategyError):
        hpo.run_study(space, strategy="nope", storage=url, objective=objective)
    with pytest.raises(hpo.PrunerError):
        hpo.run_study(space, pruner="asha", pruner_options={"bogus": 1}, storage=url,
                      objective=objective)  # fmt: skip
    with pytest.raises(hpo.SpaceError, match="names no `model`"):
        hpo.run_study(space, storage=url)
    assert hpo.list_studies(url) == []
