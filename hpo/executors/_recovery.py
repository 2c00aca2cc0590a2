"""Interrupted trials: how one is marked, found when its process is gone, and resumed.

A trial is *interrupted* when it stopped by no doing of its own: Ctrl-C, its process or Ray
worker gone. It is stored as FAILED with the system attribute ``interrupted`` set
(:attr:`hpo.FrozenTrial.interrupted`), written by :func:`mark_interrupted` only (and by a
store's ``fail_stale_trials``, which marks trials whose heartbeat stopped in one statement),
and cleared when it resumes. An interrupted trial counts neither in the budget nor for the
model; one with a checkpoint resumes from it (same number, params and seed).

A *paused* trial (a pruner with ``pause=True`` stopped it at a rung: PRUNED, with the system
attribute ``paused``) goes on the same way when its pruner promotes it
(:func:`promote_paused`).
"""

from __future__ import annotations

import datetime as _dt
import logging
import os
import socket
from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING

from hpo.trial import FrozenTrial, TrialState
from hpo.trial._checkpoints import Checkpointing
from hpo.trial._frozen import INTERRUPTED_ATTR, PAUSED_ATTR

if TYPE_CHECKING:
    from hpo.storage import Store
    from hpo.study import Study
    from hpo.trial._trial import Trial

__all__ = [
    "fail_orphaned_trials",
    "fail_stale_trials",
    "mark_interrupted",
    "promote_paused",
    "recover_orphans",
    "resume",
    "resume_interrupted",
]

log = logging.getLogger("hpo")


def mark_interrupted(store: Store, trial_id: int, error: str) -> bool:
    """Finish a running trial as interrupted: failed with ``error``, not by its own doing.
    False when it had finished already (nothing is written then)."""
    return store.finish_trial(
        trial_id, TrialState.FAILED, error=error, system_attrs={INTERRUPTED_ATTR: True}
    )


def fail_orphaned_trials(study: Study) -> list[int]:
    """Mark interrupted the running trials whose process on this machine is gone; their
    numbers (see :meth:`hpo.study.Study.fail_orphaned_trials`)."""
    here = socket.gethostname()
    numbers = []
    for t in study.store.get_trials(study.record.id, states=[TrialState.RUNNING]):
        attrs = t.system_attrs
        pid = attrs.get("pid")
        if attrs.get("host") != here or not isinstance(pid, int) or _alive(pid):
            continue
        if t.trial_id is not None and mark_interrupted(
            study.store,
            t.trial_id,
            f"interrupted: the process that ran this trial (pid {pid}) stopped",
        ):
            numbers.append(t.number)
    return numbers


def fail_stale_trials(study: Study, older_than_seconds: float | None = None) -> list[int]:
    """Mark interrupted the running trials whose heartbeat is older than
    ``older_than_seconds`` (default ``study.stale_after``); their numbers."""
    age = study.stale_after if older_than_seconds is None else older_than_seconds
    cutoff = _dt.datetime.now(_dt.timezone.utc) - _dt.timedelta(seconds=age)
    return study.store.fail_stale_trials(study.record.id, cutoff)


def recover_orphans(study: Study) -> list[int]:
    """Mark interrupted every running trial whose process is gone (see
    :meth:`hpo.study.Study.recover_orphans`); their numbers."""
    stale = sorted(study.fail_orphaned_trials() + study.fail_stale_trials())
    if stale:
        log.warning("marked trial(s) %s failed: their process stopped (interrupted)", stale)
    return stale


def resume_interrupted(study: Study, max_trials: int | None = None) -> Trial | None:
    """Take over an interrupted trial that has a checkpoint (see
    :meth:`hpo.study.Study.resume_interrupted`); None when there is none to take."""
    if study.checkpointing is None:
        return None
    failed = study.store.get_trials(study.record.id, states=[TrialState.FAILED])
    candidates = [t for t in failed if t.interrupted and _resumable(t)]
    if not candidates:
        return None
    if max_trials is not None:
        interrupted = sum(1 for t in failed if t.interrupted)
        if study.store.count_trials(study.record.id) - interrupted >= max_trials:
            return None
    for t in candidates:
        trial = resume(study, t)
        if trial is not None:
            return trial
    return None


def promote_paused(study: Study, busy: Collection[int] = ()) -> Trial | None:
    """Take over a paused trial that the study's pruner now promotes (see
    :meth:`hpo.study.Study.promote_paused`); None when there is none. Trials paused at higher
    rungs are looked at first (they are closest to the end), then the oldest.

    ``busy``: ids of trials this process handed out and has not collected yet. A Ray worker
    can pause a trial in the store before its driver hears the task end; such a trial is
    promoted only after the driver has collected it, never twice at once."""
    from hpo.pruners import BasePruner

    pruner = study.pruner
    if not isinstance(pruner, BasePruner) or not pruner.pauses or study.checkpointing is None:
        return None
    trials = study.get_trials(cached=True)
    paused = [t for t in trials if t.paused and t.trial_id not in busy and _resumable(t)]
    paused.sort(key=lambda t: (-(t.last_step or 0), t.number))
    for t in paused:
        if not pruner.promotable(t, trials, direction=study.direction, seed=study.seed):
            continue
        trial = resume(study, t, promoted=True)
        if trial is not None:
            return trial
    return None


def resume(study: Study, frozen: FrozenTrial, *, promoted: bool = False) -> Trial | None:
    """Put the interrupted (or, ``promoted``, the paused) ``frozen`` back to running in this
    process, to go on from its last checkpoint; None when another process took it first, its
    checkpoint is gone or the study keeps no checkpoints here."""
    from hpo.trial._trial import Trial

    info = dict(frozen.system_attrs.get("checkpoint") or {})
    files = list(info.get("files") or [])
    if not files or study.checkpointing is None:  # --no-checkpoints: start over
        return None
    try:
        if not Checkpointing.exists(str(info["dir"]), files[-1]):
            log.warning(
                "trial %d cannot resume: its checkpoint %s is gone", frozen.number, files[-1]
            )
            return None
    except Exception as e:  # an unreachable location: run new trials instead
        log.warning("trial %d cannot resume: %s", frozen.number, e)
        return None
    step = int(info.get("step", 0))
    history = list(frozen.system_attrs.get("resumed") or [])
    entry: dict[str, object] = {
        "step": step,
        "at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "host": socket.gethostname(),
        "error": frozen.error,
    }
    if promoted:
        entry["promoted"] = True
    history.append(entry)
    trial_id = int(frozen.system_attrs["trial_id"])
    system = {
        "host": socket.gethostname(),
        "pid": os.getpid(),
        INTERRUPTED_ATTR: False,
        PAUSED_ATTR: 0,
        "resumed": history,
    }
    if not study.store.resume_trial(trial_id, system):
        return None
    if promoted:
        log.info("promoting paused trial %d: it goes on from step %d", frozen.number, step)
    else:
        log.warning(
            "resuming trial %d from its checkpoint of step %d (%s)",
            frozen.number,
            step,
            frozen.error,
        )
    return Trial(
        study,
        trial_id,
        frozen.number,
        frozen.params,
        intermediate=frozen.intermediate,
        user_attrs=frozen.user_attrs,
        checkpoint=info,
        resumed_from=step,
    )


def _resumable(t: FrozenTrial) -> bool:
    info = t.system_attrs.get("checkpoint")
    return isinstance(info, Mapping) and bool(info.get("files"))


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True
