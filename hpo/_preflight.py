"""What ``run_study`` checks before it stores anything: the executor's settings (a Ray
cluster's address probed), the device, the checkpoint location (made and written to) and a
pruner that pauses trials against it. A bad setting is one ``HpoError`` that says how to fix
it, and the store is left untouched."""

from __future__ import annotations

from typing import Any

from hpo.exceptions import HpoError
from hpo.executors._runner import check_pause

__all__ = ["preflight"]


def preflight(
    url: str,
    pruner: Any,
    *,
    workers: int,
    ray_address: str | None,
    cpus_per_trial: float | None,
    gpus_per_trial: float | None,
    retries: int,
    device: str | None,
    local_device: bool,
    checkpoints: bool,
    checkpoint_dir: str | None,
    checkpoint_every: int,
    checkpoint_keep: int,
    checkpoint_best: int,
    mlflow_uri: str | None = None,
    checkpoint_overhead: float = 0.01,
) -> tuple[Any, Any]:
    """The run's executor (None: in-process) and checkpoint settings (None: none kept),
    checked. ``local_device``: the built-in objective trains in this process or on Ray, so a
    device this machine lacks fails here. ``mlflow_uri`` is the server an
    ``mlflow-artifacts:/FOLDER`` checkpoint location without a host is on.

    Raises:
        HpoError: a setting that cannot work (PrunerError for a pausing pruner without
            checkpoints).
    """
    executor = _executor(workers, ray_address, cpus_per_trial, gpus_per_trial, retries)
    if executor is not None:
        _check_device_for_ray(device, executor.gpus_per_trial)
        executor.preflight()
    elif device is not None and local_device:
        _check_local_device(device)
    checkpointing = _checkpointing(
        url,
        checkpoint_dir,
        checkpoint_every,
        checkpoint_keep,
        checkpoint_best,
        checkpoints,
        mlflow_uri,
        checkpoint_overhead,
    )  # an unwritable or full location fails here
    check_pause(pruner, checkpointing)
    return executor, checkpointing


def _checkpointing(
    url: str,
    folder: str | None,
    every: int,
    keep: int,
    best: int,
    on: bool,
    mlflow: str | None,
    overhead: float,
) -> Any:
    """The run's checkpoint settings, checked (made and written to); None when it keeps
    none: checkpoints off, or a store with no default location and no folder given."""
    from hpo.trial._checkpoints import (
        Checkpointing,
        default_checkpoint_dir,
        mlflow_artifacts_url,
    )

    if not on:
        return None
    if folder is not None and folder.startswith("mlflow-artifacts:"):
        from hpo.tracking import resolve_tracking_uri

        folder = mlflow_artifacts_url(folder, resolve_tracking_uri(mlflow))
    root = folder if folder is not None else default_checkpoint_dir(url)
    if root is None:
        return None
    settings = Checkpointing(root, every=every, keep=keep, best=best, overhead=overhead)
    settings.check()
    return settings


def _executor(
    workers: int, address: str | None, cpus: float | None, gpus: float | None, retries: int
) -> Any:
    """A RayExecutor when the settings ask for parallel or resource-aware trials, else None
    (the in-process loop, which costs no start-up)."""
    if workers == 1 and address is None and cpus is None and gpus is None and not retries:
        return None
    from hpo.executors import RayExecutor

    return RayExecutor(
        workers=workers,
        address=address,
        cpus_per_trial=1.0 if cpus is None else cpus,
        gpus_per_trial=0.0 if gpus is None else gpus,
        retries=retries,
    )


def _check_device_for_ray(device: str | None, gpus_per_trial: float) -> None:
    """On Ray a trial sees only the GPUs it was given, numbered from 0 (none without
    --gpus-per-trial)."""
    if device is None or not device.startswith("cuda"):
        return
    if gpus_per_trial <= 0:
        raise HpoError(
            f"--device {device}: on Ray a trial sees no GPU unless it asks for one; add "
            "--gpus-per-trial (for example 1, or 0.5 to share a card)."
        )
    if ":" not in device:
        return
    index = device.split(":", 1)[1]
    if not index.isdigit() or int(index) >= max(1, int(gpus_per_trial)):
        raise HpoError(
            f"--device {device}: on Ray each trial sees only the GPU(s) it was given, "
            f"numbered from 0 ({gpus_per_trial:g} per trial here); use --device cuda and "
            "--gpus-per-trial to choose how many."
        )


def _check_local_device(device: str) -> None:
    """A device this machine lacks fails at start, not as one failed trial after another."""
    import torch

    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError):
        raise HpoError(f"--device must be cpu, cuda or cuda:N, got {device!r}.") from None
    if dev.type != "cuda":
        return
    if not torch.cuda.is_available():
        why = "this torch is a CPU-only build" if torch.version.cuda is None else "no GPU found"
        raise HpoError(
            f"--device {device}: CUDA is not available on this machine ({why}); use "
            "--device cpu, or leave --device out to train on a GPU when there is one."
        )
    count = torch.cuda.device_count()
    if dev.index is not None and dev.index >= count:
        raise HpoError(f"--device {device}: this machine has {count} GPU(s), numbered from 0.")
