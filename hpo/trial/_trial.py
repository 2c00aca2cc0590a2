"""The live trial an objective function talks to."""

from __future__ import annotations

import logging
import math
import numbers
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from hpo._observer import notify
from hpo.exceptions import HpoError
from hpo.trial._checkpoints import Checkpointing
from hpo.trial._state import TrialState

if TYPE_CHECKING:
    from hpo.study import Study

__all__ = ["Trial"]

log = logging.getLogger("hpo")

# One writer thread per process for checkpoints saved in the background: the training loop
# hands it a copy of the state and goes on with the next epoch while the file is written.
_WRITER: ThreadPoolExecutor | None = None


def _writer() -> ThreadPoolExecutor:
    global _WRITER
    if _WRITER is None:
        _WRITER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hpo-checkpoint")
    return _WRITER


class Trial:
    """One evaluation of the objective, while it runs.

    An objective reads ``trial.params`` (the active parameters only), reports a metric after
    each epoch with ``trial.report(value, step)``, asks ``trial.should_prune()`` to stop early,
    and may store anything JSON-able with ``trial.set_user_attr(key, value)``. Every call is
    written to the study's store at once, so a crash loses nothing already reported.
    """

    def __init__(
        self,
        study: Study,
        trial_id: int,
        number: int,
        params: Mapping[str, Any],
        *,
        intermediate: Mapping[int, float] | None = None,
        user_attrs: Mapping[str, Any] | None = None,
        checkpoint: Mapping[str, Any] | None = None,
        resumed_from: int | None = None,
    ):
        self._study = study
        self._id = trial_id
        self.number = number
        self.params: Mapping[str, Any] = MappingProxyType(dict(params))
        self._intermediate: dict[int, float] = dict(intermediate or {})
        self._user_attrs: dict[str, Any] = dict(user_attrs or {})
        self.artifacts: dict[str, Any] = {}
        self._ckpt: dict[str, Any] | None = dict(checkpoint) if checkpoint else None
        self._pending: Future[None] | None = None
        self._ckpt_warned = False
        self._save_seconds: float | None = None
        self._resumed_from = resumed_from
        self._pausing = False

    @property
    def study(self) -> Study:
        return self._study

    @property
    def trial_id(self) -> int:
        return self._id

    @property
    def intermediate(self) -> Mapping[int, float]:
        return MappingProxyType(self._intermediate)

    @property
    def user_attrs(self) -> Mapping[str, Any]:
        return MappingProxyType(self._user_attrs)

    def report(self, value: float, step: int, *, attrs: Mapping[str, Any] | None = None) -> None:
        """Record an intermediate value (e.g. validation accuracy after epoch ``step``);
        ``attrs``, user attributes stored in the same write (the built-in loop's per-epoch
        curves: one store write per epoch).

        Raises:
            HpoError: ``step`` is not a non-negative integer, ``value`` is not a number or a
                key of ``attrs`` is not a string.
        """
        if isinstance(step, bool) or not isinstance(step, numbers.Integral) or step < 0:
            raise HpoError(f"trial.report: step must be an integer >= 0, got {step!r}.")
        try:
            v = float(value)
        except (TypeError, ValueError):
            raise HpoError(f"trial.report: value must be a number, got {value!r}.") from None
        if attrs is not None and not all(isinstance(k, str) for k in attrs):
            raise HpoError("trial.report: the keys of attrs must be strings.")
        self._study.store.report(self._id, int(step), v, user=attrs)
        self._intermediate[int(step)] = v
        if attrs:
            self._user_attrs.update(attrs)
        study = self._study
        notify(
            study.observers,
            lambda o: o.on_report(study, self, int(step), v),
            f"trial {self.number}",
        )

    def should_prune(self) -> bool:
        """Whether the study's pruner says to stop this trial now (False without a pruner).

        With a pruner that pauses (``asha``/``hyperband`` with ``pause=True``) a True means
        *pause*: :attr:`pausing` turns True, the objective should save its checkpoint of this
        step (the built-in training loop does) and raise :class:`hpo.TrialPruned`; the trial
        then waits and may go on later from that checkpoint (see
        :meth:`hpo.study.Study.promote_paused`).
        """
        pruner = self._study.pruner
        if pruner is None or not self._intermediate:
            return False
        stop = bool(pruner.should_prune(self._study, self))
        self._pausing = stop and bool(getattr(pruner, "pauses", False))
        return stop

    @property
    def pausing(self) -> bool:
        """Whether the last :meth:`should_prune` said *pause* rather than *stop*: the trial
        ends as pruned, keeps its checkpoint and may be promoted later."""
        return self._pausing

    def set_user_attr(self, key: str, value: Any) -> None:
        """Store a JSON-able value with the trial (train curves, parameter count, ...)."""
        if not isinstance(key, str):
            raise HpoError(f"trial.set_user_attr: key must be a string, got {key!r}.")
        self._user_attrs[key] = value
        self._study.store.set_trial_attrs(self._id, user={key: value})

    def set_user_attrs(self, attrs: Mapping[str, Any]) -> None:
        """Store several attributes in one write (e.g. all of an epoch's curves)."""
        if not all(isinstance(k, str) for k in attrs):
            raise HpoError("trial.set_user_attrs: keys must be strings.")
        self._user_attrs.update(attrs)
        self._study.store.set_trial_attrs(self._id, user=dict(attrs))

    def attach(self, name: str, obj: Any) -> None:
        """Keep an object with the live trial for observers (e.g. the trained model, which the
        MLflow tracker logs as an artifact). Kept in memory only, never in the store."""
        self.artifacts[name] = obj

    # -- checkpoints ---------------------------------------------------------------------
    @property
    def resumed_from(self) -> int | None:
        """The step of the checkpoint this run of the trial resumed from; None for a fresh
        start."""
        return self._resumed_from

    @property
    def checkpoint_info(self) -> dict[str, Any] | None:
        """The trial's checkpoint record (``{"dir", "files", "step", "saved"}``) as this
        process last wrote or read it; None before its first checkpoint."""
        return dict(self._ckpt) if self._ckpt else None

    @property
    def checkpointing(self) -> Checkpointing | None:
        """The study's checkpoint settings in this process (None: no checkpoints kept)."""
        return getattr(self._study, "checkpointing", None)

    def checkpoint(self, state: Any, step: int | None = None, *, background: bool = False) -> bool:
        """Save ``state`` (anything ``torch.save`` takes: state dicts, numbers, RNG states)
        as the trial's checkpoint after ``step`` (default: the last reported step).

        The file goes to ``ROOT/STUDY/trial-N/epoch-STEP.pt`` (written atomically) and the
        store records it, so a rerun, or another worker, can resume the trial from it with
        :meth:`last_checkpoint`. Only the newest ``keep`` files of a trial are kept. Returns
        False, saving nothing, when the study keeps no checkpoints (an in-memory study, a
        PostgreSQL study without a checkpoint location, ``--no-checkpoints``).

        ``background=True`` writes in a thread and returns at once: ``state`` must not change
        afterwards (pass copies). A failed save is a warning, never a failed trial.
        """
        settings = self.checkpointing
        if settings is None:
            return False
        if isinstance(step, bool) or (step is not None and not isinstance(step, numbers.Integral)):
            raise HpoError(f"trial.checkpoint: step must be an integer, got {step!r}.")
        self.wait_checkpoints()
        if step is None:
            step = max(self._intermediate) if self._intermediate else self._saved() + 1
        trial_dir = (self._ckpt or {}).get("dir") or settings.trial_dir(
            self._study.name, self.number
        )
        if background:
            self._pending = _writer().submit(self._save, settings, trial_dir, int(step), state)
        else:
            self._save(settings, trial_dir, int(step), state)
        return True

    def _saved(self) -> int:
        return int((self._ckpt or {}).get("saved", 0))

    def _save(self, settings: Checkpointing, trial_dir: str, step: int, state: Any) -> None:
        name = f"epoch-{step}.pt"
        start = time.perf_counter()
        try:
            Checkpointing.write(trial_dir, name, state)
            files = [f for f in (self._ckpt or {}).get("files", []) if f != name] + [name]
            old, files = files[: -settings.keep], files[-settings.keep :]
            info = {"dir": trial_dir, "files": files, "step": step, "saved": self._saved() + 1}
            self._study.store.set_trial_attrs(self._id, system={"checkpoint": info})
            self._ckpt = info
            Checkpointing.remove(trial_dir, old)
            self._save_seconds = time.perf_counter() - start
        except Exception as e:
            if not self._ckpt_warned:
                self._ckpt_warned = True
                log.warning(
                    "trial %d: could not save its checkpoint of step %d to %s (%s: %s); "
                    "it goes on without it",
                    self.number,
                    step,
                    trial_dir,
                    type(e).__name__,
                    e,
                )

    def would_keep_checkpoint(self, value: float) -> bool:
        """Whether this trial's checkpoint would be kept if it completed now with ``value``
        (it would rank among the study's best ``checkpointing.best``); the built-in loop
        skips writing a last checkpoint that its end would delete at once."""
        ranks = getattr(self._study, "_would_keep_checkpoint", None)
        return bool(ranks(self.number, value)) if callable(ranks) else True

    @property
    def save_seconds(self) -> float | None:
        """Wall time of the last checkpoint written (file, record and old files removed);
        None before the first. The built-in loop spaces its saves by it."""
        return self._save_seconds

    def wait_checkpoints(self) -> None:
        """Wait until checkpoints saved in the background are written and recorded."""
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()

    def last_checkpoint(self, map_location: Any = None) -> Any | None:
        """The state saved by the trial's newest checkpoint, or None when it has none (a
        fresh trial). A resumed trial gets what its interrupted run saved last.

        ``map_location`` is passed to ``torch.load`` (e.g. ``"cpu"``).
        """
        self.wait_checkpoints()
        info = self._ckpt or {}
        files = info.get("files") or []
        if not files:
            return None
        try:
            return Checkpointing.read(str(info["dir"]), files[-1], map_location=map_location)
        except FileNotFoundError:
            log.warning("trial %d: its checkpoint %s is gone", self.number, files[-1])
            return None

    def set_system_attrs(self, attrs: Mapping[str, Any]) -> None:
        """hpo's own bookkeeping (host, device, MLflow run id); not for objectives."""
        self._study.store.set_trial_attrs(self._id, system=dict(attrs))

    def __repr__(self) -> str:
        return f"Trial(number={self.number}, params={dict(self.params)})"


def check_value(value: Any) -> tuple[float | None, str | None]:
    """An objective's return value as a float, or the reason it cannot be one."""
    if value is None:
        return None, "the objective returned None; it must return a number"
    if isinstance(value, bool):
        return None, f"the objective returned a bool ({value}); it must return a number"
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None, (
            f"the objective returned {value!r} ({type(value).__name__}); it must return a number"
        )
    if math.isnan(v):
        return None, "the objective returned NaN"
    if math.isinf(v):
        return None, f"the objective returned {v}"
    return v, None


def outcome(
    value: Any,
    state: TrialState | str | None,
    error: str | None,
    reported: Callable[[], Mapping[int, float]],
) -> tuple[TrialState, float | None, str | None]:
    """How a trial told ``value`` / ``state`` / ``error`` ends: its state, value and error.

    No state: complete with a number, else failed with the reason (None, NaN, infinite, not a
    number). Pruned: the value given, else the last reported one when it is finite
    (``reported`` is asked only then). Failed: no value, ``error`` or "failed".
    """
    st = TrialState(state) if state is not None else None
    if st is TrialState.FAILED:
        return st, None, error or "failed"
    if st is TrialState.PRUNED:
        v = check_value(value)[0] if value is not None else None
        if v is None:
            iv = reported()
            last = iv[max(iv)] if iv else None
            v = last if last is not None and math.isfinite(last) else None
        return st, v, None
    v, reason = check_value(value)
    if reason is None:
        return TrialState.COMPLETE, v, None
    return TrialState.FAILED, None, error or reason
