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

from hpo.cli._app import app, existing_storage, mlflow_uri_option, storage_option
from hpo.cli._format import console
from hpo.exceptions import HpoError

__all__ = ["REFERENCE", "evaluation_json", "evaluation_lines", "final_evaluation"]

#: The seed's table: MNIST test accuracy (t10k, trained on the 60,000 training images).
REFERENCE: tuple[tuple[str, float], ...] = (
    ("logistic regression", 0.925),
    ("MLP", 0.982),
    ("ReLU + dropout MLP", 0.990),
    ("conv net", 0.995),
)


def _pct(v: Any) -> str:
    return f"{100 * float(v):.2f} %" if isinstance(v, (int, float)) else "-"


def evaluation_lines(study: Any, ev: Any) -> list[str]:
    """What a user reads about a final evaluation (rich markup)."""
    info = ev.info
    how = (
        f"trial {ev.trial_number}'s params retrained on train + validation "
        f"({info.get('n_train', '?'):,} images, {ev.epochs} epochs"
        if ev.retrained
        else f"trial {ev.trial_number}'s own run repeated on the train split "
        f"({info.get('n_train', '?'):,} images, {ev.epochs} epochs"
    )
    secs = info.get("train_seconds")
    how += f", {secs:.0f} s on {info.get('device', 'cpu')})" if secs is not None else ")"
    ref = ", ".join(f"{name} {100 * acc:.2f} %" for name, acc in REFERENCE)
    lines = [
        f"[bold]final model[/]  {how}",
        f"  validation accuracy (best trial, used by the search): {_pct(info.get('val_accuracy'))}",
        f"  [bold green]test accuracy[/] (never seen by the search): {_pct(ev.test_accuracy)}"
        f"   test loss {ev.test_loss:.4f}",
        f"  test split: {info.get('test_source', '?')}",
        f"  the seed's table (MNIST t10k test, 60,000 training images): {ref}",
    ]
    if info.get("model_path"):
        lines.append(
            f"  model: {info['model_path']}  (hpo export {study.name} -o model.pt; "
            "hpo.training.load_model(path))"
        )
    return lines


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


def _log_mlflow(study: Any, ev: Any, mlflow_uri: str | None, log_model: bool = True) -> None:
    """The final model as a run of the study's MLflow experiment (with the model file unless
    ``log_model`` is false: ``--mlflow-models none``); a failure only warns."""
    from hpo.storage import mask_url
    from hpo.tracking import MlflowTracker

    tracker = MlflowTracker(mlflow_uri, background=False)
    try:
        path = ev.info.get("model_path") if log_model else None
        tracker.log_final_model(study, ev, path if path and Path(path).is_file() else None)
        tracker.end_study(study, "FINISHED")
        console().print(f"MLflow: final model logged in {mask_url(tracker.uri)} (run final-model)")
    except Exception as e:
        first = str(e).splitlines()[0][:200] if str(e) else ""
        typer.echo(f"warning: MLflow: the final model was not logged ({type(e).__name__}: "
                   f"{first}); it is stored in the study.", err=True)  # fmt: skip


def final_evaluation(
    study: Any,
    *,
    data: Any = None,
    data_dir: Path | None = None,
    device: str | None = None,
    retrain: bool = True,
    mlflow_uri: str | None = None,
    mlflow: bool = False,
    log_model: bool = True,
) -> Any:
    """Train, test, store and print the study's final model; returns the evaluation."""
    from hpo.training import evaluate_study

    con = console()
    best = study.best_trial
    what = "retraining" if retrain else "repeating"
    con.print(
        f"[bold]final model[/] {what} trial {best.number} "
        f"({'train + validation' if retrain else 'train split'}), then testing it ..."
    )
    ev, _ = evaluate_study(study, data=data, data_dir=data_dir, device=device, retrain=retrain)
    for line in evaluation_lines(study, ev):
        con.print(line, soft_wrap=True)
    if mlflow:
        _log_mlflow(study, ev, mlflow_uri, log_model)
    return ev


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
