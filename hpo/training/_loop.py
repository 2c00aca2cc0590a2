"""The training loop: build the model from a trial's params, train it, report each epoch.

Rules of :func:`train_and_evaluate`:
    * Data stays in memory as tensors (moved to the device once); each epoch draws one
      ``torch.randperm`` and slices it into batches — no DataLoader, whose per-sample collation
      costs more than the step itself for small in-memory images. The last, smaller batch is
      kept.
    * Epochs count from 1. After each epoch: ``trial.report(val_accuracy, epoch)``, the per-epoch
      user attributes are updated (so a pruned or failed trial keeps its curves), then
      ``trial.should_prune()`` is asked and ``TrialPruned`` raised when it says so (after
      saving a checkpoint when the pruner pauses the trial rather than stopping it).
    * Accuracies are fractions in [0, 1]. ``train_loss``/``train_accuracy`` are running values
      over the epoch's batches (dropout on, weights changing); ``val_*`` are measured after the
      epoch in eval mode without gradients.
    * A non-finite training loss raises ``FloatingPointError("training diverged: loss became nan
      at epoch 2, batch 13")`` (batches count from 1); losses are checked every
      ``CHECK_EVERY`` batches so the check costs no device synchronisation per step.
    * The run is seeded with ``seed + trial.number``: the same trial number and params give the
      same result on the same machine and torch version.
    * The return value is the *best* validation accuracy over the epochs (its epoch is the user
      attribute ``best_epoch``), the value a search should compare.
    * After each epoch's report and pruning check the run is checkpointed when the study keeps
      checkpoints; a resumed trial restores its last checkpoint and goes on from the next epoch (see
      ``_checkpoint.py``).
"""

from __future__ import annotations

import contextlib
import math
import time
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hpo.data import MnistData
from hpo.exceptions import TrialPruned
from hpo.models import build_model
from hpo.trial._trial import Trial

from ._augment import augment_batch
from ._checkpoint import LoopCheckpoints
from ._config import TrainConfig, make_optimizer, make_scheduler
from ._device import configure_threads, resolve_device, seed_everything
from ._protocol import TrialLike

__all__ = ["CHECK_EVERY", "EVAL_BATCH", "evaluate", "train_and_evaluate", "train_epoch"]

CHECK_EVERY = 16
EVAL_BATCH = 1024


def _diverged(losses: list[Tensor], start: int, epoch: int) -> None:
    """Raise FloatingPointError if any of ``losses[start:]`` is not finite."""
    recent = torch.stack(losses[start:])
    finite = torch.isfinite(recent)
    if not bool(finite.all()):
        first = int((~finite).nonzero()[0, 0]) + start
        value = float(recent[first - start])
        raise FloatingPointError(
            f"training diverged: loss became {value} at epoch {epoch}, batch {first + 1}"
        )


def train_epoch(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    x: Tensor,
    y: Tensor,
    batch_size: int,
    generator: torch.Generator,
    epoch: int = 1,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
    config: TrainConfig | None = None,
) -> tuple[float, float]:
    """One pass over ``(x, y)`` in a random order; returns (mean loss, accuracy).

    ``scheduler``, when given, is stepped after every optimiser step. ``config``, when given,
    adds its label smoothing and augmentation (random shifts/rotations of each batch).

    Raises:
        FloatingPointError: the loss became nan or infinite (names the epoch and batch).
    """
    model.train()
    n = len(y)
    perm = torch.randperm(n, device=x.device, generator=generator)
    preds = torch.empty(n, dtype=torch.long, device=x.device)
    losses: list[Tensor] = []
    checked = 0
    # Decided once per epoch, so a run without them pays nothing per batch.
    smoothing = config.label_smoothing if config is not None else 0.0
    augment = config is not None and (config.augment_shift > 0 or config.augment_rotate > 0)
    for start in range(0, n, batch_size):
        idx = perm[start : start + batch_size]
        batch = x[idx]
        if augment:
            assert config is not None
            batch = augment_batch(batch, config.augment_shift, config.augment_rotate, generator)
        logits = model(batch)  # (B, num_classes)
        if smoothing:
            loss = F.cross_entropy(logits, y[idx], label_smoothing=smoothing)
        else:
            loss = F.cross_entropy(logits, y[idx])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        losses.append(loss.detach())
        torch.argmax(logits.detach(), dim=1, out=preds[start : start + batch_size])
        if len(losses) - checked >= CHECK_EVERY:
            _diverged(losses, checked, epoch)
            checked = len(losses)
    if checked < len(losses):
        _diverged(losses, checked, epoch)
    # Every batch is full except maybe the last: weight each mean by its batch's size.
    sizes = torch.full((len(losses),), float(batch_size), device=x.device)
    sizes[-1] = n - batch_size * (len(losses) - 1)
    mean_loss = float((torch.stack(losses) * sizes).sum()) / n
    accuracy = float((preds == y[perm]).sum()) / n
    return mean_loss, accuracy


@torch.no_grad()
def evaluate(
    model: nn.Module, x: Tensor, y: Tensor, batch_size: int = EVAL_BATCH
) -> tuple[float, float]:
    """(mean loss, accuracy) of ``model`` on ``(x, y)`` in eval mode, without gradients."""
    model.eval()
    loss = torch.zeros((), device=x.device)
    correct = torch.zeros((), dtype=torch.long, device=x.device)
    for start in range(0, len(y), batch_size):
        logits = model(x[start : start + batch_size])  # (B, num_classes)
        target = y[start : start + batch_size]
        loss += F.cross_entropy(logits, target, reduction="sum")
        correct += (logits.argmax(dim=1) == target).sum()
    return float(loss) / len(y), float(correct) / len(y)


def _set_attrs(trial: TrialLike, attrs: dict[str, Any]) -> None:
    """Store ``attrs`` with the trial, in one write where it can (``set_user_attrs``)."""
    setter = getattr(trial, "set_user_attrs", None)
    if callable(setter):
        setter(attrs)
    else:
        for key, value in attrs.items():
            trial.set_user_attr(key, value)


def train_and_evaluate(
    trial: TrialLike,
    *,
    model: str,
    data: MnistData,
    epochs: int | None = None,
    device: str | torch.device | None = None,
    seed: int = 0,
) -> float:
    """Train the model ``model`` built from ``trial.params`` on ``data``; return its best
    validation accuracy (a fraction in [0, 1]).

    Args:
        trial: The live trial: its params choose the architecture and the optimiser (see
            ``hpo.models`` and :class:`TrainConfig`); values are reported to it.
        model: A key of ``hpo.models.MODELS`` ("mlp", "cnn", "rnn").
        data: Train and validation tensors; the test split is never touched.
        epochs: Overrides ``trial.params["epochs"]`` (default 3) when given.
        device: "cpu", "cuda", ...; default cuda when available, else cpu.
        seed: Base seed; the run uses ``seed + trial.number``.

    User attributes set on the trial: ``n_params``, ``device``, and after every epoch the lists
    ``train_loss``, ``train_accuracy``, ``val_loss``, ``val_accuracy``, ``epoch_time`` (seconds,
    training and validation), plus ``best_epoch``.

    Raises:
        SpaceError: a param breaks its rule (unknown activation, dropout 1.5, ...).
        FloatingPointError: the loss became nan or infinite.
        TrialPruned: the trial's pruner asked to stop after an epoch.
    """
    config = TrainConfig.from_params(trial.params, epochs=epochs)
    dev = resolve_device(device)
    configure_threads()
    run_seed = seed + trial.number
    seed_everything(run_seed)
    net = build_model(model, trial.params, data.input_shape, data.num_classes).to(dev)
    optimizer = make_optimizer(config, net.parameters())
    steps_per_epoch = -(-len(data.train_y) // config.batch_size)
    scheduler = make_scheduler(config, optimizer, config.epochs * steps_per_epoch)
    generator = torch.Generator(device=dev)
    generator.manual_seed(run_seed)
    train_x, train_y = data.train_x.to(dev), data.train_y.to(dev)
    val_x, val_y = data.val_x.to(dev), data.val_y.to(dev)
    about = {"n_params": sum(p.numel() for p in net.parameters()), "device": str(dev)}
    if isinstance(trial, Trial):
        # Stored with the first epoch's report (one write fewer per trial), or on the way
        # out when the trial ends before it.
        pending_about: dict[str, Any] | None = about
    else:
        _set_attrs(trial, about)
        pending_about = None

    keys = ("train_loss", "train_accuracy", "val_loss", "val_accuracy", "epoch_time")
    history: dict[str, list[Any]] = {k: [] for k in keys}
    best, best_epoch = -math.inf, 0
    # Checkpoints (see _checkpoint.py): a resumed trial goes on after its last saved epoch.
    checkpoints = LoopCheckpoints(trial, config.epochs)
    resumed = checkpoints.restore(net, optimizer, scheduler, generator)
    if resumed is not None:
        history.update(resumed["history"])
        best, best_epoch = resumed["best"], resumed["best_epoch"]
    try:
        for epoch in range((resumed or {}).get("epoch", 0) + 1, config.epochs + 1):
            t0 = time.perf_counter()
            train_loss, train_acc = train_epoch(
                net,
                optimizer,
                train_x,
                train_y,
                config.batch_size,
                generator,
                epoch,
                scheduler,
                config,
            )
            val_loss, val_acc = evaluate(net, val_x, val_y)
            if not math.isfinite(val_loss):
                raise FloatingPointError(
                    f"training diverged: validation loss became {val_loss} after epoch {epoch}"
                )
            row = (train_loss, train_acc, val_loss, val_acc, time.perf_counter() - t0)
            for key, value in zip(keys, row, strict=True):
                history[key].append(value)
            if val_acc > best:
                best, best_epoch = val_acc, epoch
            curves: dict[str, Any] = {k: list(v) for k, v in history.items()}
            curves["best_epoch"] = best_epoch
            if isinstance(trial, Trial):  # the report and the curves: one write per epoch
                if pending_about is not None:
                    curves.update(pending_about)
                trial.report(val_acc, epoch, attrs=curves)
                pending_about = None
            else:
                _set_attrs(trial, curves)
                trial.report(val_acc, epoch)
            if trial.should_prune():
                if getattr(trial, "pausing", False):  # it may go on from here when promoted
                    checkpoints.save(
                        epoch,
                        net,
                        optimizer,
                        scheduler,
                        generator,
                        history,
                        best,
                        best_epoch,
                        due=True,
                    )
                raise TrialPruned()
            checkpoints.save(epoch, net, optimizer, scheduler, generator, history, best, best_epoch)
    except BaseException:
        if pending_about is not None:  # ended before its first report: say what it was
            with contextlib.suppress(Exception):
                _set_attrs(trial, pending_about)
        raise
    if pending_about is not None:  # resumed after its last epoch: nothing was reported
        _set_attrs(trial, pending_about)
    # Observers (the MLflow tracker) may log the trained model; it never enters the store.
    attach = getattr(trial, "attach", None)
    if callable(attach):
        attach("model", net)
        attach("input_example", val_x[:2])
    return best
