"""The final model (issue 16): `hpo evaluate`, `hpo export`, and the end of `hpo run`.

The best configuration is retrained on train + validation and tested on the test split the
search never saw; validation and test figures are always labelled as such, and printed next to
the test-set table of the talk this project grew from.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import typer

from hpo._evaluation import REFERENCE, _pct, evaluation_lines
from hpo._evaluation import final_evaluation as _final_evaluation
from hpo.cli._app import app, existing_storage, mlflow_uri_option, storage_option
from hpo.cli._format import console
from hpo.exceptions import HpoError

__all__ = ["REFERENCE", "evaluation_json", "evaluation_lines", "final_evaluation"]


def evaluation_json(ev: Any) -> dict[str, Any] | None:
    """The evaluation as JSON (``hpo show --json``, the HTTP API); None when there is none."""
    if ev is None:
        return None
    return {
        "trial": ev.trial_number,
        "created_at": ev.created_at.isoformat(),
        "test_accuracy": ev.test_accuracy,
        "test_loss": ev.test_loss,
        "epochs": ev.epochs,
        "retrained": ev.retrained,
        "confusion": [list(r) for r in ev.confusion],
        **{k: v for k, v in ev.info.items()},
    }


def final_evaluation(study: Any, **kwargs: Any) -> Any:
    """Train, test, store and print the study's final model (:func:`hpo._run.final_evaluation`
    with the CLI's console); returns the evaluation."""
    con = console()
    return _final_evaluation(
        study,
        say=lambda line: con.print(line, soft_wrap=True),
        warn=lambda line: typer.echo(line, err=True),
        **kwargs,
    )


@app.command()
def evaluate(
    study: str = typer.Argument(..., help="The study's name (see `hpo studies`)."),
    storage: str = storage_option(),
    retrain: bool = typer.Option(
        True,
        "--retrain/--no-retrain",
        help="Retrain the best params on train + validation (default), or repeat the best "
        "trial's own run on the train split.",
    ),
    data_dir: Path = typer.Option(
        None, "--data-dir", help="The MNIST IDX folder the study searched on, if it used one."
    ),
    device: str = typer.Option(None, "--device", help="Training device [default: cuda if any]."),
    mlflow_uri: str = mlflow_uri_option(),
    mlflow: bool = typer.Option(
        False, "--mlflow/--no-mlflow", help="Also log the final model to MLflow."
    ),
) -> None:
    """Train the best configuration, test it on the test split the search never saw, store
    the result with the study and write the model to hpo-models/STUDY.pt."""
    import hpo

    s = hpo.load_study(study, storage=existing_storage(storage))
    final_evaluation(
        s, data_dir=data_dir, device=device, retrain=retrain, mlflow_uri=mlflow_uri,
        mlflow=mlflow or mlflow_uri is not None,
    )  # fmt: skip


@app.command()
def export(
    study: str = typer.Argument(..., help="The study's name (see `hpo studies`)."),
    output: Path = typer.Option(..., "--output", "-o", help="The model file to write (.pt)."),
    storage: str = storage_option(),
) -> None:
    """Write the study's final model (state dict + the config to rebuild it) to a file;
    load it with hpo.training.load_model(path)."""
    import hpo

    s = hpo.load_study(study, storage=existing_storage(storage))
    ev = s.evaluation
    src = Path(ev.info["model_path"]) if ev is not None and ev.info.get("model_path") else None
    if src is None or not src.is_file():
        missing = f" (its file {str(src)!r} is gone)" if src is not None else ""
        raise HpoError(
            f"study {s.name!r} has no final model{missing}; make one with: hpo evaluate {s.name}"
        )
    assert ev is not None
    if not output.parent.is_dir():
        raise HpoError(f"folder {str(output.parent)!r} does not exist; create it first.")
    shutil.copyfile(src, output)
    typer.echo(
        f"wrote {output} (study {s.name!r}, trial {ev.trial_number}, test accuracy "
        f"{_pct(ev.test_accuracy)}); load it with hpo.training.load_model({str(output)!r})"
    )
