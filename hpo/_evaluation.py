"""The final model's evaluation as `hpo run` and `hpo evaluate` report it: the seed's table,
the lines a person reads, and the evaluation at the end of a run."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hpo.storage import Evaluation, mask_url
from hpo.study import Study
from hpo.trial import TrialState

log = logging.getLogger("hpo")

Say = Callable[[str], None]


def _log_say(line: str) -> None:
    log.info("%s", re.sub(r"\[/?[a-z ]*\]", "", line))


def _log_warn(line: str) -> None:
    log.warning("%s", line)


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
    """What a person reads about a final evaluation (rich markup)."""
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


def _evaluate_at_end(
    study: Study, fn: Any, device: str | None, tracking: str, uri: str | None, say: Say, warn: Say
) -> Evaluation | None:
    """The final model of a finished run (skipped when no trial completed; the evaluation
    already made when the best trial was evaluated already)."""
    if not any(t.state is TrialState.COMPLETE for t in study.trials):
        return None
    ev = study.evaluation
    if ev is not None and ev.trial_number == study.best_trial.number and ev.retrained:
        for line in evaluation_lines(study, ev):
            say(line)
        return ev
    return final_evaluation(
        study, data=fn.data, device=device, mlflow=tracking != "off", mlflow_uri=uri,
        log_model=tracking == "model", say=say, warn=warn,
    )  # fmt: skip


def final_evaluation(
    study: Study,
    *,
    data: Any = None,
    data_dir: str | Path | None = None,
    device: str | None = None,
    retrain: bool = True,
    mlflow_uri: str | None = None,
    mlflow: bool = False,
    log_model: bool = True,
    say: Say | None = None,
    warn: Say | None = None,
) -> Evaluation:
    """Train, test, store and report the study's final model; returns the evaluation."""
    from hpo.training import evaluate_study

    say = say or _log_say
    warn = warn or _log_warn
    best = study.best_trial
    what = "retraining" if retrain else "repeating"
    say(
        f"[bold]final model[/] {what} trial {best.number} "
        f"({'train + validation' if retrain else 'train split'}), then testing it ..."
    )
    ev, _ = evaluate_study(study, data=data, data_dir=data_dir, device=device, retrain=retrain)
    for line in evaluation_lines(study, ev):
        say(line)
    if mlflow:
        _log_mlflow(study, ev, mlflow_uri, log_model, say, warn)
    return ev


def _log_mlflow(
    study: Study, ev: Evaluation, mlflow_uri: str | None, log_model: bool, say: Say, warn: Say
) -> None:
    """The final model as a run of the study's MLflow experiment (with the model file unless
    ``log_model`` is false: ``--mlflow-models none``); a failure only warns."""
    from hpo.tracking import MlflowTracker

    tracker = MlflowTracker(mlflow_uri, background=False)
    try:
        path = ev.info.get("model_path") if log_model else None
        tracker.log_final_model(study, ev, path if path and Path(path).is_file() else None)
        tracker.end_study(study, "FINISHED")
        say(f"MLflow: final model logged in {mask_url(tracker.uri)} (run final-model)")
    except Exception as e:
        first = str(e).splitlines()[0][:200] if str(e) else ""
        warn(f"warning: MLflow: the final model was not logged ({type(e).__name__}: "
             f"{first}); it is stored in the study.")  # fmt: skip
