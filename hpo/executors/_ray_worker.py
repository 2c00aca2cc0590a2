"""The Ray side of :class:`hpo.executors.RayExecutor`: one trial in a worker process."""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from hpo._observer import notify
from hpo.exceptions import HpoError
from hpo.executors._runner import Heartbeat, run_trial

if TYPE_CHECKING:
    from hpo.study import Study
    from hpo.trial import FrozenTrial
    from hpo.trial._trial import Trial

__all__ = ["resume_spec", "run_in_worker"]

_STUDIES: dict[tuple[str, str], tuple[Study, Heartbeat]] = {}


def run_in_worker(spec: Mapping[str, Any], objective: Callable[[Trial], Any]) -> FrozenTrial:
    """One trial, in a Ray worker: run the objective and tell the store. Returns the trial as
    the worker told it (the store may have moved on: a paused trial promoted again)."""
    import ray

    from hpo.study import load_study
    from hpo.trial._trial import Trial

    if spec["sqlite"] and socket.gethostname() != spec["driver_host"]:
        raise HpoError(
            f"this trial was scheduled on {socket.gethostname()!r}, which cannot reach the "
            f"SQLite store on {spec['driver_host']!r}; use --storage postgresql://..."
        )
    key = (spec["storage"], spec["study"])
    if key not in _STUDIES:
        study = load_study(spec["study"], storage=spec["storage"])
        study.heartbeat_interval = spec["heartbeat_interval"]
        if spec["observers"] is not None:
            study.observers.extend(spec["observers"]())
        heartbeat = Heartbeat(study)
        heartbeat.start()
        _STUDIES[key] = (study, heartbeat)
    study, heartbeat = _STUDIES[key]
    study.pruner = spec["pruner"]
    study.checkpointing = spec.get("checkpointing")
    _limit_threads(spec["cpus"])
    trial = Trial(study, spec["trial_id"], spec["number"], spec["params"], **spec["resume"])
    gpu_ids = [str(g) for g in ray.get_gpu_ids()]
    if not gpu_ids:
        # Ray (>= 2.50) leaves CUDA_VISIBLE_DEVICES alone for a task that asked for no GPU,
        # so the objective would see, and use, cards that other trials reserved.
        os.environ["CUDA_VISIBLE_DEVICES"] = ""
    trial.set_system_attrs(
        {
            "executor": "ray",
            "worker_host": socket.gethostname(),
            "worker_pid": os.getpid(),
            "node_id": ray.get_runtime_context().get_node_id(),
            "node_ip": ray.util.get_node_ip_address(),
            "gpu_ids": gpu_ids,
            # Ray sets CUDA_VISIBLE_DEVICES to these GPUs: "cuda" in the trial is one of them.
            "device": "cuda" if gpu_ids else "cpu",
        }
    )
    frozen = run_trial(study, objective, trial, heartbeat)
    # A tracker logs in the background: let it finish before the driver hears "done".
    notify(study.observers, lambda o: o.flush(), "flush")
    return frozen


def resume_spec(trial: Trial) -> dict[str, Any]:
    """What a worker needs to go on with a resumed trial (empty for a fresh one)."""
    if trial.resumed_from is None:
        return {}
    return {
        "intermediate": dict(trial.intermediate),
        "user_attrs": dict(trial.user_attrs),
        "checkpoint": dict(trial._ckpt or {}),
        "resumed_from": trial.resumed_from,
    }


def _limit_threads(cpus: float) -> None:
    n = max(1, int(cpus))
    os.environ["OMP_NUM_THREADS"] = str(n)
    torch = sys.modules.get("torch")
    if torch is not None and torch.get_num_threads() != n:
        torch.set_num_threads(n)
