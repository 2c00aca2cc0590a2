"""The study's final model: the best configuration retrained, tested on unseen data, saved.

Rules:
    * :func:`train_final` trains the model ``params`` describe. ``retrain=True`` (the default)
      trains on train + validation together — the search is over, validation has done its job —
      for ``epochs`` epochs (the trial's best epoch count); ``retrain=False`` repeats the trial's
      own run: the train split only, the same seed. Either way it is seeded with
      ``seed + trial_number`` and then tested once on the test split, which no search ever saw.
    * Test figures: accuracy (a fraction), mean cross-entropy loss, and the confusion matrix
      (``confusion[i][j]``: test images of class ``i`` predicted as ``j``).
    * :func:`evaluate_study` does it for a study's best completed trial, writes the model to
      ``MODEL_DIR/STUDY.pt`` and stores the result with the study (``Store.add_evaluation``).
    * :func:`save_model` writes a state dict plus what rebuilds the network (model kind, params,
      input shape, class count) and the figures; :func:`load_model` rebuilds it in eval mode.
      The file loads with ``torch.load(weights_only=True)``: no pickled code.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hpo.data import MnistData
from hpo.exceptions import HpoError
from hpo.models import build_model

from ._config import TrainConfig, make_optimizer, make_scheduler
from ._device import configure_threads, resolve_device, seed_everything
from ._loop import EVAL_BATCH, train_epoch

__all__ = [
    "FORMAT",
    "MODEL_DIR",
    "FinalModel",
    "evaluate_study",
    "load_model",
    "model_path",
    "read_model_file",
    "save_model",
    "score_model",
    "train_final",
]

FORMAT = "hpo-model/1"
MODEL_DIR = "hpo-models"


@dataclass
class FinalModel:
    """A trained final model and its test figures."""

    model: nn.Module
    kind: str
    params: dict[str, Any]
    input_shape: tuple[int, ...]
    num_classes: int
    epochs: int
    retrained: bool
    test_accuracy: float
    test_loss: float
    confusion: list[list[int]]
    info: dict[str, Any] = field(default_factory=dict)


@torch.no_grad()
def score_model(
    model: nn.Module, x: Tensor, y: Tensor, num_classes: int
) -> tuple[float, float, list[list[int]]]:
    """(mean loss, accuracy, confusion matrix) of ``model`` on ``(x, y)`` in eval mode."""
    model.eval()
    loss = torch.zeros((), device=x.device)
    counts = torch.zeros(num_classes * num_classes, dtype=torch.long, device=x.device)
    for start in range(0, len(y), EVAL_BATCH):
        logits = model(x[start : start + EVAL_BATCH])  # (B, num_classes)
        target = y[start : start + EVAL_BATCH]
        loss += F.cross_entropy(logits, target, reduction="sum")
        pred = logits.argmax(dim=1)
        counts += torch.bincount(target * num_classes + pred, minlength=num_classes**2)
    matrix = counts.view(num_classes, num_classes).cpu()
    accuracy = float(matrix.diagonal().sum()) / max(1, len(y))
    return float(loss) / max(1, len(y)), accuracy, matrix.tolist()


def train_final(
    params: Mapping[str, Any],
    *,
    model: str,
    data: MnistData,
    epochs: int,
    retrain: bool = True,
    device: str | torch.device | None = None,
    seed: int = 0,
    trial_number: int = 0,
) -> FinalModel:
    """Train the final model and test it on ``data``'s test split (see the module rules).

    Raises:
        HpoError: ``data`` has no test split.
        FloatingPointError: the training loss became nan or infinite.
    """
    if data.test_x is None or data.test_y is None:
        raise HpoError("no test split: this data source has none (load it with test_holdout > 0).")
    config = TrainConfig.from_params(params, epochs=epochs)
    dev = resolve_device(device)
    configure_threads()
    run_seed = seed + trial_number
    seed_everything(run_seed)
    net = build_model(model, params, data.input_shape, data.num_classes).to(dev)
    x, y = data.train_x, data.train_y
    if retrain:
        x, y = torch.cat([x, data.val_x]), torch.cat([y, data.val_y])
    x, y = x.to(dev), y.to(dev)
    optimizer = make_optimizer(config, net.parameters())
    steps_per_epoch = -(-len(y) // config.batch_size)
    scheduler = make_scheduler(config, optimizer, config.epochs * steps_per_epoch)
    generator = torch.Generator(device=dev)
    generator.manual_seed(run_seed)
    t0 = time.perf_counter()
    for epoch in range(1, config.epochs + 1):
        train_epoch(net, optimizer, x, y, config.batch_size, generator, epoch, scheduler, config)
    seconds = time.perf_counter() - t0
    loss, accuracy, confusion = score_model(
        net, data.test_x.to(dev), data.test_y.to(dev), data.num_classes
    )
    return FinalModel(
        model=net,
        kind=model,
        params=dict(params),
        input_shape=tuple(data.input_shape),
        num_classes=data.num_classes,
        epochs=config.epochs,
        retrained=retrain,
        test_accuracy=accuracy,
        test_loss=loss,
        confusion=confusion,
        info={
            "test_source": data.test_source,
            "n_test": len(data.test_y),
            "n_train": len(y),
            "train_seconds": round(seconds, 2),
            "device": str(dev),
            "seed": run_seed,
        },
    )


def model_path(study_name: str, folder: str | Path = MODEL_DIR) -> Path:
    """Where a study's final model is written: ``folder/STUDY.pt`` (odd characters -> ``_``)."""
    return Path(folder) / (re.sub(r"[^A-Za-z0-9_.=+@-]", "_", study_name) + ".pt")


def save_model(path: str | Path, final: FinalModel, **extra: Any) -> Path:
    """Write ``final`` as a state dict plus the config to rebuild it; returns the path."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu() for k, v in final.model.state_dict().items()}
    payload = {
        "format": FORMAT,
        "model": final.kind,
        "params": dict(final.params),
        "input_shape": list(final.input_shape),
        "num_classes": final.num_classes,
        "epochs": final.epochs,
        "retrained": final.retrained,
        "test_accuracy": final.test_accuracy,
        "test_loss": final.test_loss,
        "test_source": final.info.get("test_source"),
        **extra,
        "state_dict": state,
    }
    tmp = out.with_name(out.name + ".tmp")
    torch.save(payload, tmp)
    tmp.replace(out)
    return out


def read_model_file(path: str | Path) -> dict[str, Any]:
    """The saved payload (state dict and config); raises HpoError for a file that is not one."""
    p = Path(path)
    if not p.is_file():
        raise HpoError(f"no model file at {str(p)!r}; write one with `hpo export STUDY -o FILE`.")
    try:
        payload = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:
        raise HpoError(f"{str(p)!r} is not an hpo model file ({type(e).__name__}).") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise HpoError(f"{str(p)!r} is not an hpo model file (no format {FORMAT!r}).")
    return payload


def load_model(path: str | Path, device: str | torch.device = "cpu") -> nn.Module:
    """Rebuild the network saved at ``path`` (by ``hpo export`` or ``hpo run``), in eval mode.

    The module maps images ``(B, 1, 28, 28)`` in [0, 1] to class logits ``(B, 10)``.
    """
    payload = read_model_file(path)
    net = build_model(
        str(payload["model"]),
        payload["params"],
        tuple(payload["input_shape"]),
        int(payload["num_classes"]),
    )
    net.load_state_dict(payload["state_dict"])
    return net.to(device).eval()


def _best_epochs(trial: Any, default: int) -> int:
    best = trial.user_attrs.get("best_epoch")
    if isinstance(best, int) and best >= 1:
        return best
    return default


def evaluate_study(
    study: Any,
    *,
    data: MnistData | None = None,
    data_dir: str | Path | None = None,
    device: str | torch.device | None = None,
    retrain: bool = True,
    model_dir: str | Path | None = MODEL_DIR,
) -> tuple[Any, FinalModel]:
    """Train, test and store the final model of ``study``'s best completed trial.

    Args:
        study: An :class:`hpo.Study` made for a named space (its spec names a ``model``).
        data: The data the search used (default: loaded as the search loaded it, from
            ``data_dir`` or the default sources, with the study's seed and budget).
        device: Training device; default cuda when available, else cpu.
        retrain: Train on train + validation (default) or repeat the trial's own run.
        model_dir: Folder for ``STUDY.pt``; None writes no file.

    Returns:
        (the stored :class:`hpo.storage.Evaluation`, the :class:`FinalModel`).

    Raises:
        HpoError: the study names no model (a custom objective) or has no completed trial.
    """
    from ._objective import make_objective

    spec = study.record.spec
    kind = spec.model
    if not kind:
        raise HpoError(
            f"study {study.name!r} has no model to evaluate: it ran a custom objective "
            "(only studies of a space with `model: mlp|cnn|rnn` are evaluated)."
        )
    trial = study.best_trial
    seed = int(study.record.seed)
    if data is None:
        data = make_objective(spec, data_dir=data_dir, device=device, seed=seed).data
    budget = spec.budget or {}
    trial_epochs = int(trial.params.get("epochs", budget.get("epochs") or 3))
    epochs = _best_epochs(trial, trial_epochs) if retrain else trial_epochs
    final = train_final(
        trial.params,
        model=str(kind),
        data=data,
        epochs=epochs,
        retrain=retrain,
        device=device,
        seed=seed,
        trial_number=trial.number,
    )
    path = None
    if model_dir is not None:
        path = save_model(
            model_path(study.name, model_dir), final, study=study.name, trial=trial.number
        )
    info = {
        **final.info,
        "val_accuracy": trial.value,
        "model": kind,
        "params": dict(trial.params),
        "model_path": str(path.resolve()) if path is not None else None,
        "n_params": sum(p.numel() for p in final.model.parameters()),
    }
    if not math.isfinite(final.test_loss):
        raise FloatingPointError(f"the final model's test loss is {final.test_loss}")
    evaluation = study.store.add_evaluation(
        study.record.id,
        trial_number=trial.number,
        test_accuracy=final.test_accuracy,
        test_loss=final.test_loss,
        epochs=final.epochs,
        retrained=final.retrained,
        confusion=final.confusion,
        info=info,
    )
    return evaluation, final
