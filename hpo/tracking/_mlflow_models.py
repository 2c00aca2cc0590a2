"""The models a tracker puts in MLflow: a trial's trained model (which trials' models are
logged, saved as "pt2" or as a pickle), and the study's final model as a ``final-model`` run
(its test metrics, params, confusion matrix and model file)."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from typing import TYPE_CHECKING, Any

from hpo.trial import FrozenTrial, TrialState

if TYPE_CHECKING:
    from hpo.study import Study

__all__ = ["log_final_run", "log_model", "wants_model"]

log = logging.getLogger("hpo.tracking")


def wants_model(log_models: str, study: Study, frozen: FrozenTrial) -> bool:
    """Whether ``frozen``'s model is logged under the tracker's ``log_models`` setting."""
    if log_models == "all":
        return True
    if log_models != "best" or frozen.state is not TrialState.COMPLETE:
        return False
    assert frozen.value is not None
    try:
        best = study.best_trial
    except Exception:
        return False
    return best.number == frozen.number


def log_model(client: Any, run_id: str, model: Any) -> None:
    """Save as MLflow's "pt2" (torch.export, needs an input example; loads without
    unpickling code), else as a pickle."""
    import mlflow.pytorch

    net, example = model if isinstance(model, tuple) else (model, None)
    tmp = tempfile.mkdtemp(prefix="hpo-model-")
    try:
        path = os.path.join(tmp, "model")
        net = net.to("cpu").eval() if hasattr(net, "to") else net
        try:
            if example is None:
                raise ValueError("no input example")
            if hasattr(example, "detach"):  # MLflow infers a TensorSpec from numpy only
                example = example.detach().cpu().numpy()
            mlflow.pytorch.save_model(net, path, serialization_format="pt2", input_example=example)
        except Exception as e:
            log.debug("pt2 export failed (%s); saving the model as a pickle", e)
            shutil.rmtree(path, ignore_errors=True)
            mlflow.pytorch.save_model(net, path, serialization_format="pickle")
        client.log_artifacts(run_id, path, artifact_path="model")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def log_final_run(
    client: Any, eid: str, parent: str, study: Study, evaluation: Any, model_file: Any = None
) -> str:
    """The ``final-model`` run of :meth:`hpo.tracking.MlflowTracker.log_final_model`, in
    experiment ``eid`` under the study's parent run ``parent``; returns its run id."""
    from mlflow.entities import Metric, Param

    info = evaluation.info
    run = client.create_run(
        eid,
        run_name="final-model",
        tags={
            "mlflow.parentRunId": parent,
            "hpo.kind": "final",
            "hpo.study": study.name,
            "hpo.trial": str(evaluation.trial_number),
            "hpo.retrained": str(evaluation.retrained).lower(),
            "hpo.test_split": str(info.get("test_source", ""))[:5000],
        },
    )
    run_id = str(run.info.run_id)
    now = int(time.time() * 1000)
    metrics = [
        Metric("test_accuracy", float(evaluation.test_accuracy), now, 0),
        Metric("test_loss", float(evaluation.test_loss), now, 0),
        Metric("epochs", float(evaluation.epochs), now, 0),
    ]
    if isinstance(info.get("val_accuracy"), (int, float)):
        metrics.append(Metric("val_accuracy", float(info["val_accuracy"]), now, 0))
    params = [Param(k, str(v)[:6000]) for k, v in dict(info.get("params") or {}).items()]
    client.log_batch(run_id, metrics=metrics, params=params[:100], tags=[])
    client.log_dict(run_id, {"confusion": [list(r) for r in evaluation.confusion]},
                    "confusion.json")  # fmt: skip
    if model_file is not None:
        client.log_artifact(run_id, str(model_file), artifact_path="model")
    client.set_terminated(run_id, status="FINISHED")
    return run_id
