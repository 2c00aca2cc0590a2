"""Study: a search in progress, and the functions that make or reopen one."""

from __future__ import annotations

import contextlib
import datetime as _dt
import logging
import os
import re
import secrets
import socket
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from hpo.exceptions import (
    DuplicatedStudyError,
    HpoError,
    SearchExhausted,
    SpaceError,
    StorageError,
    StudyMismatchError,
    TrialPruned,
)
from hpo.pruners import BasePruner, Pruner, epoch_budget, get_pruner
from hpo.space import Param, SearchSpace, load_space
from hpo.storage import Evaluation, Store, StudyRecord, StudySummary, get_store, mask_url
from hpo.strategies import Strategy, get_strategy
from hpo.trial import Direction, FrozenTrial, TrialState
from hpo.trial._checkpoints import Checkpointing, default_checkpoint_dir
from hpo.trial._trial import Trial, check_value

__all__ = [
    "STUDY_NAME_RULE",
    "Executor",
    "Observer",
    "Pruner",
    "Study",
    "check_study_name",
    "create_study",
    "delete_study",
    "list_studies",
    "load_study",
]

log = logging.getLogger("hpo")

Objective = Callable[[Trial], Any]
Callback = Callable[["Study", FrozenTrial], None]


class Executor(Protocol):
    """Runs a study's trials somewhere (see :mod:`hpo.executors`)."""

    def run(
        self,
        study: Study,
        objective: Objective,
        *,
        n_trials: int | None,
        timeout: float | None,
        max_trials: int | None,
        callbacks: Iterable[Callback],
    ) -> None: ...


class Observer(Protocol):
    """Watches a study (the MLflow tracker is one). Failures are logged, never fatal."""

    def on_trial_end(self, study: Study, frozen: FrozenTrial, trial: Trial | None) -> None: ...


class Study:
    """A search: its space, strategy and direction, and its trials in the store.

    Make one with :func:`create_study` or reopen one with :func:`load_study`. Several
    ``Study`` objects in several processes may work on the same stored study at once.
    """

    #: How often (seconds) a process running trials tells the store they are alive, and how
    #: long a running trial may stay silent before another process calls it interrupted.
    heartbeat_interval: float = 15.0
    stale_after: float = 120.0

    def __init__(
        self,
        store: Store,
        record: StudyRecord,
        space: SearchSpace,
        strategy: Strategy,
        pruner: Pruner | None = None,
    ) -> None:
        self._store = store
        self._record = record
        self.space = space
        self.strategy = strategy
        self.pruner = pruner
        self._finished: dict[int, FrozenTrial] = {}  # finished trials never change: cache them
        self._lock = threading.Lock()
        self._running: set[int] = set()
        self._hb_stop: threading.Event | None = None
        # Called as listener(trial, step, value) after each trial.report (progress display).
        self._report_listeners: list[Callable[[Trial, int, float], None]] = []
        # Called as listener(trial) when a trial of this process starts running.
        self._start_listeners: list[Callable[[Trial], None]] = []
        self.observers: list[Observer] = []
        #: Where and how often trials keep checkpoints (see "Surviving interruptions" in the
        #: README): by default next to a SQLite file store, none for in-memory and PostgreSQL
        #: stores. Set it (or None) before ``optimize``; Ray workers get this process's.
        default_dir = default_checkpoint_dir(store.url)
        self.checkpointing: Checkpointing | None = (
            Checkpointing(default_dir) if default_dir is not None else None
        )
        self._ckpt_cleaned: set[int] = set()

    # -- identity ------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self._record.name

    @property
    def direction(self) -> Direction:
        return self._record.direction

    @property
    def seed(self) -> int:
        return self._record.seed

    @property
    def storage_url(self) -> str:
        return self._store.url

    @property
    def store(self) -> Store:
        return self._store

    @property
    def record(self) -> StudyRecord:
        return self._record

    @property
    def meta(self) -> Mapping[str, Any]:
        return self._record.meta

    def __repr__(self) -> str:
        return (
            f"Study(name={self.name!r}, strategy={self.strategy.name!r}, "
            f"direction={self.direction.value!r}, storage={mask_url(self.storage_url)!r})"
        )

    # -- reading -------------------------------------------------------------------------
    def get_trials(
        self, states: Sequence[TrialState] | None = None, *, cached: bool = False
    ) -> list[FrozenTrial]:
        """All trials ordered by number (only ``states`` if given), read fresh from the store.

        ``cached=True`` reuses finished trials read before (their results never change, only
        hpo's bookkeeping such as the MLflow run id may): what ``ask`` uses to stay fast.
        """
        if not cached:
            out = self._store.get_trials(self._record.id)
            if states is not None:
                out = [t for t in out if t.state in set(states)]
            return out
        with self._lock:
            first_open = 0
            while first_open in self._finished:
                first_open += 1
            fresh = self._store.get_trials(self._record.id, min_number=first_open)
            for t in fresh:
                if t.state.is_finished:
                    self._finished[t.number] = t
            out = [self._finished[n] for n in range(first_open)] + fresh
        if states is not None:
            wanted = set(states)
            out = [t for t in out if t.state in wanted]
        return out

    @property
    def trials(self) -> list[FrozenTrial]:
        return self.get_trials()

    @property
    def best_trial(self) -> FrozenTrial:
        """The best completed trial. Raises HpoError when none has completed yet."""
        best: FrozenTrial | None = None
        for t in self.get_trials(states=[TrialState.COMPLETE]):
            assert t.value is not None  # complete trials always have a value
            if best is None or self.direction.better(t.value, best.value):  # type: ignore[arg-type]
                best = t
        if best is None:
            raise HpoError(f"study {self.name!r} has no completed trial yet.")
        return best

    @property
    def evaluations(self) -> list[Evaluation]:
        """The study's final evaluations (best config tested on unseen data), oldest first."""
        return self._store.get_evaluations(self._record.id)

    @property
    def evaluation(self) -> Evaluation | None:
        """The latest final evaluation, or None when the study has not been evaluated."""
        found = self.evaluations
        return found[-1] if found else None

    @property
    def best_value(self) -> float:
        v = self.best_trial.value
        assert v is not None
        return v

    @property
    def best_params(self) -> dict[str, Any]:
        return dict(self.best_trial.params)

    # -- ask / tell ----------------------------------------------------------------------
    def _rng(self, number: int) -> np.random.Generator:
        return np.random.default_rng([self._record.seed, number])

    def ask(
        self, params: Mapping[str, Any] | None = None, *, max_trials: int | None = None
    ) -> Trial:
        """Start a new trial with the strategy's proposal (or with ``params`` given by you).

        The trial gets the next free number. Its params are chosen from a history that holds
        every trial with a smaller number, running ones included: that is what keeps numbers
        gap-free, parallel proposals apart and a resumed study exact. Processes sharing a
        study take turns to propose (the store's proposal lock: see
        :meth:`hpo.storage.Store.proposal_lock`), so none proposes from a history that another
        makes stale a moment later; without that turn, the loser of the race for a number
        proposed again, and eight processes on one study took 4x the time of one (issue 17).
        Trials themselves run at once.

        ``max_trials`` caps the study's size: the ask fails once the study holds that many
        trials (interrupted ones not counted). The check is atomic with the number allocation,
        so processes sharing a study never overshoot it together.

        Raises:
            SearchExhausted: the strategy has nothing left (e.g. an exhausted grid), or the
                study already holds ``max_trials`` trials.
        """
        fixed = None if params is None else self.space.check_params(params)
        turn = (
            contextlib.nullcontext()
            if fixed is not None
            else self._store.proposal_lock(self._record.id, timeout=self.stale_after)
        )
        with turn:
            return self._ask(fixed, max_trials)

    def _ask(self, fixed: dict[str, Any] | None, max_trials: int | None) -> Trial:
        system = {"host": socket.gethostname(), "pid": os.getpid()}
        for _attempt in range(10_000):
            history = self.get_trials(cached=True)
            number = len(history)
            if max_trials is not None:
                counted = sum(1 for t in history if not t.interrupted)
                if counted >= max_trials:
                    raise SearchExhausted(
                        f"study {self.name!r} has reached its budget of {max_trials} trials."
                    )
            if fixed is not None:
                proposal = fixed
            else:
                proposal = self.space.check_params(
                    self.strategy.propose(
                        self.space,
                        history,
                        direction=self.direction,
                        number=number,
                        seed=self._record.seed,
                        rng=self._rng(number),
                    )
                )
            # Fails only when another process took the number without waiting for its turn
            # (fixed params, a lock wait that timed out): then propose again.
            trial_id = self._store.add_trial(self._record.id, number, proposal, system_attrs=system)
            if trial_id is not None:
                with self._lock:
                    self._running.add(trial_id)
                return Trial(self, trial_id, number, proposal)
        raise StorageError(f"could not allocate a trial number in study {self.name!r}.")

    def tell(
        self,
        trial: Trial | int,
        value: Any = None,
        *,
        state: TrialState | str | None = None,
        error: str | None = None,
    ) -> FrozenTrial:
        """Finish a trial: with its value (complete), as pruned, or as failed with a reason.

        A value that is None, NaN, infinite or not a number fails the trial with that reason.
        Telling a finished trial again raises HpoError; nothing stored changes.
        """
        trial_id, number = self._resolve(trial)
        if isinstance(trial, Trial):
            try:  # a checkpoint written in the background is recorded before the trial ends
                trial.wait_checkpoints()
            except HpoError as e:
                log.warning("trial %d: its last checkpoint was not recorded: %s", number, e)
        st = TrialState(state) if state is not None else None
        v: float | None = None
        if st is TrialState.FAILED:
            v, reason = None, error or "failed"
        elif st is TrialState.PRUNED:
            v = check_value(value)[0] if value is not None else None
            if v is None:
                last = self._last_intermediate(trial)
                v = last
            reason = None
        else:
            v, reason = check_value(value)
            st = TrialState.COMPLETE if reason is None else TrialState.FAILED
        if st is TrialState.FAILED and error is None:
            error = reason
        ok = self._store.finish_trial(
            trial_id, st, value=v, error=error if st is TrialState.FAILED else None
        )
        with self._lock:
            self._running.discard(trial_id)
        if not ok:
            raise HpoError(f"trial {number} of study {self.name!r} has already finished.")
        frozen = self._read_trial(number)
        self.clean_checkpoints()
        self._notify(frozen, trial if isinstance(trial, Trial) else None)
        return frozen

    # -- checkpoints ---------------------------------------------------------------------
    def clean_checkpoints(self) -> list[int]:
        """Delete the checkpoints of finished trials except those of the best
        ``checkpointing.best`` completed ones; the numbers of the trials whose checkpoints
        went. Interrupted trials keep theirs (they resume from them). ``tell`` calls this."""
        settings = self.checkpointing
        if settings is None:
            return []
        trials = self.get_trials(cached=True)

        def files(t: FrozenTrial) -> bool:
            info = t.system_attrs.get("checkpoint")
            return isinstance(info, Mapping) and bool(info.get("files"))

        finished = [
            t
            for t in trials
            if t.state.is_finished
            and not t.interrupted
            and files(t)
            and t.number not in self._ckpt_cleaned
        ]
        if not finished:
            return []
        complete = [t for t in trials if t.state is TrialState.COMPLETE and files(t)]
        sign = -1.0 if self.direction is Direction.MAXIMIZE else 1.0
        complete.sort(key=lambda t: (sign * float(t.value or 0.0), t.number))
        keep = {t.number for t in complete[: settings.best]}
        gone = []
        for t in finished:
            if t.number in keep:
                continue
            info = dict(t.system_attrs["checkpoint"])
            try:
                Checkpointing.remove_tree(str(info["dir"]))
                self._store.annotate_trial(
                    int(t.system_attrs["trial_id"]),
                    {"checkpoint": {**info, "files": [], "deleted": True}},
                )
            except Exception as e:  # a full or gone location: tried again next time
                log.warning("could not delete the checkpoints of trial %d: %s", t.number, e)
                continue
            self._ckpt_cleaned.add(t.number)
            gone.append(t.number)
        return gone

    def resume_interrupted(self, max_trials: int | None = None) -> Trial | None:
        """Take over an interrupted trial that has a checkpoint, if there is one (and the
        study holds fewer than ``max_trials`` trials): it runs again with the same number,
        params and seed, and its objective resumes from ``trial.last_checkpoint()``.
        None when there is nothing to resume (or this study keeps no checkpoints)."""
        if self.checkpointing is None:
            return None
        failed = self._store.get_trials(self._record.id, states=[TrialState.FAILED])
        candidates = [t for t in failed if t.interrupted and _resumable(t)]
        if not candidates:
            return None
        if max_trials is not None:
            interrupted = sum(1 for t in failed if t.interrupted)
            if self._store.count_trials(self._record.id) - interrupted >= max_trials:
                return None
        for t in candidates:
            trial = self._resume(t)
            if trial is not None:
                return trial
        return None

    def _resume(self, frozen: FrozenTrial) -> Trial | None:
        """Put the interrupted ``frozen`` back to running in this process; None when another
        process took it first or its checkpoint is gone."""
        info = dict(frozen.system_attrs.get("checkpoint") or {})
        files = list(info.get("files") or [])
        if not files or self.checkpointing is None:  # --no-checkpoints: start over
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
        history.append(
            {
                "step": step,
                "at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                "host": socket.gethostname(),
                "error": frozen.error,
            }
        )
        trial_id = int(frozen.system_attrs["trial_id"])
        system = {
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "interrupted": False,
            "resumed": history,
        }
        if not self._store.resume_trial(trial_id, system):
            return None
        with self._lock:
            self._running.add(trial_id)
        log.warning(
            "resuming trial %d from its checkpoint of step %d (%s)",
            frozen.number,
            step,
            frozen.error,
        )
        return Trial(
            self,
            trial_id,
            frozen.number,
            frozen.params,
            intermediate=frozen.intermediate,
            user_attrs=frozen.user_attrs,
            checkpoint=info,
            resumed_from=step,
        )

    def _notify(
        self,
        frozen: FrozenTrial,
        trial: Trial | None,
        observers: Sequence[Observer] | None = None,
    ) -> None:
        # The trial is stored before any observer hears of it: an observer can fail (a
        # tracking server down) without losing anything. (`observers`: others than the
        # study's, such as a Ray driver's trackers for trials whose worker died.)
        for obs in list(self.observers if observers is None else observers):
            try:
                obs.on_trial_end(self, frozen, trial)
            except Exception as e:
                log.warning("%s failed on trial %d: %s", type(obs).__name__, frozen.number, e)

    def _resolve(self, trial: Trial | int) -> tuple[int, int]:
        if isinstance(trial, Trial):
            return trial.trial_id, trial.number
        t = self._store.get_trial(self._record.id, int(trial))
        if t is not None and t.trial_id is not None:
            return t.trial_id, t.number
        raise HpoError(f"study {self.name!r} has no trial {trial}.")

    def _last_intermediate(self, trial: Trial | int) -> float | None:
        if isinstance(trial, Trial):
            iv = trial.intermediate
        else:
            iv = self._read_trial(int(trial)).intermediate
        if not iv:
            return None
        v = iv[max(iv)]
        return v if np.isfinite(v) else None

    def _read_trial(self, number: int) -> FrozenTrial:
        t = self._store.get_trial(self._record.id, number)
        if t is not None:
            return t
        raise HpoError(f"study {self.name!r} has no trial {number}.")

    def fail_orphaned_trials(self) -> list[int]:
        """Fail running trials whose process on this machine is gone; their numbers.

        A trial records the host and pid of the process that asked for it. When that process
        was killed (a driver killed mid-study), its trials need not wait ``stale_after``
        seconds for their heartbeats to age: a rerun on the same machine sees at once that the
        process no longer exists and marks them interrupted.
        """
        here = socket.gethostname()
        numbers = []
        for t in self._store.get_trials(self._record.id, states=[TrialState.RUNNING]):
            attrs = t.system_attrs
            pid = attrs.get("pid")
            if attrs.get("host") != here or not isinstance(pid, int) or _alive(pid):
                continue
            if t.trial_id is not None and self._store.finish_trial(
                t.trial_id,
                TrialState.FAILED,
                error=f"interrupted: the process that ran this trial (pid {pid}) stopped",
                system_attrs={"interrupted": True},
            ):
                numbers.append(t.number)
        return numbers

    def _started(self, trial: Trial) -> None:
        for listener in list(self._start_listeners):
            listener(trial)

    def _track_running(self, trial_id: int) -> None:
        """Keep this trial's heartbeat going from this process."""
        with self._lock:
            self._running.add(trial_id)

    def _forget_running(self, trial_id: int) -> None:
        with self._lock:
            self._running.discard(trial_id)

    def fail_stale_trials(self, older_than_seconds: float | None = None) -> list[int]:
        """Fail running trials whose process stopped sending heartbeats; their numbers."""
        age = self.stale_after if older_than_seconds is None else older_than_seconds
        cutoff = _dt.datetime.now(_dt.timezone.utc) - _dt.timedelta(seconds=age)
        return self._store.fail_stale_trials(self._record.id, cutoff)

    def recover_orphans(self) -> list[int]:
        """Mark interrupted every running trial whose process is gone; their numbers.

        Gone means: a process on this machine that no longer exists (found at once), or a
        process anywhere whose heartbeat is older than :attr:`stale_after`. A trial of
        another machine with a fresh heartbeat is left running: its process may be alive
        (see "Resuming" in the README). ``optimize`` calls this first; a caller that counts
        what is done (the CLI's resume line) calls it before counting.
        """
        stale = sorted(self.fail_orphaned_trials() + self.fail_stale_trials())
        if stale:
            log.warning("marked trial(s) %s failed: their process stopped (interrupted)", stale)
        return stale

    # -- the loop ------------------------------------------------------------------------
    def optimize(
        self,
        objective: Objective,
        n_trials: int | None = None,
        *,
        timeout: float | None = None,
        callbacks: Iterable[Callback] = (),
        show_progress: bool = False,
        max_trials: int | None = None,
        executor: Executor | None = None,
    ) -> None:
        """Run ``objective`` on new trials: one after another in this process, or in parallel
        with an ``executor`` such as :class:`hpo.executors.RayExecutor`.

        Stops after ``n_trials`` trials of this call, after ``timeout`` seconds (the running
        trial is finished first), or when the strategy is exhausted, whichever comes first.
        An objective that raises, or returns None, NaN, inf or a non-number, makes a failed
        trial with the reason stored; the study goes on. Raising :class:`hpo.TrialPruned`
        ends the trial as pruned. Ctrl-C marks the running trial failed (interrupted), then
        stops: rerun to resume. ``max_trials`` stops once the *study* holds that many trials
        (interrupted ones not counted), whoever ran them: the budget of a resumable run.
        With an executor, ``n_trials`` counts trials started by this call and trials in
        flight when the timeout passes are finished first.
        """
        if n_trials is not None and (isinstance(n_trials, bool) or n_trials < 0):
            raise HpoError(f"n_trials must be a non-negative integer, got {n_trials!r}.")
        if n_trials is None and timeout is None and max_trials is None:
            log.info("optimize without n_trials or timeout runs until the search is exhausted")
        self.recover_orphans()
        callbacks = list(callbacks)
        progress = None
        if show_progress:
            from hpo._progress import Progress

            progress = Progress(self, total=n_trials, timeout=timeout)
            if max_trials is not None:
                n_done = sum(1 for t in self.get_trials() if not t.interrupted)
                progress.total = max(0, max_trials - n_done)
                if n_trials is not None:
                    progress.total = min(progress.total, n_trials)
            callbacks.append(progress.on_trial)
        start = time.monotonic()
        done = 0
        self._start_heartbeat()
        try:
            if progress is not None:
                progress.start()
            if executor is not None:
                executor.run(
                    self,
                    objective,
                    n_trials=n_trials,
                    timeout=timeout,
                    max_trials=max_trials,
                    callbacks=callbacks,
                )
                return
            while n_trials is None or done < n_trials:
                if timeout is not None and time.monotonic() - start >= timeout:
                    break
                try:
                    trial = self.resume_interrupted(max_trials) or self.ask(max_trials=max_trials)
                except SearchExhausted as e:
                    log.debug("%s", e)
                    break
                self._started(trial)
                frozen = self._run_one(objective, trial)
                done += 1
                for cb in callbacks:
                    cb(self, frozen)
        finally:
            self._stop_heartbeat()
            if progress is not None:
                progress.stop()

    def _run_one(self, objective: Objective, trial: Trial) -> FrozenTrial:
        try:
            value = objective(trial)
        except TrialPruned:
            return self.tell(trial, state=TrialState.PRUNED)
        except KeyboardInterrupt:
            with contextlib.suppress(Exception, KeyboardInterrupt):
                trial.wait_checkpoints()
            self._store.finish_trial(
                trial.trial_id,
                TrialState.FAILED,
                error="interrupted: stopped by Ctrl-C",
                system_attrs={"interrupted": True},
            )
            with self._lock:
                self._running.discard(trial.trial_id)
            with contextlib.suppress(Exception, KeyboardInterrupt):
                self._notify(self._read_trial(trial.number), trial)
            raise
        except StorageError:
            raise
        except Exception as e:
            tb = traceback.format_exc(limit=-8)
            message = f"{type(e).__name__}: {e}"
            log.warning("trial %d failed: %s", trial.number, message)
            with contextlib.suppress(HpoError):
                trial.set_system_attrs({"traceback": tb})
            return self.tell(trial, state=TrialState.FAILED, error=message)
        frozen = self.tell(trial, value)
        if frozen.state is TrialState.FAILED:
            log.warning("trial %d failed: %s", trial.number, frozen.error)
        return frozen

    # -- heartbeats ----------------------------------------------------------------------
    def _start_heartbeat(self) -> None:
        if self._hb_stop is not None:
            return
        stop = threading.Event()
        self._hb_stop = stop

        def beat() -> None:
            while not stop.wait(self.heartbeat_interval):
                with self._lock:
                    ids = list(self._running)
                try:
                    self._store.heartbeat(ids)
                except HpoError as e:  # a missed beat is not worth a dead study
                    log.warning("heartbeat failed: %s", e)

        threading.Thread(target=beat, name="hpo-heartbeat", daemon=True).start()

    def _stop_heartbeat(self) -> None:
        if self._hb_stop is not None:
            self._hb_stop.set()
            self._hb_stop = None


# -- making and reopening studies ---------------------------------------------------------


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


def _as_space(space: SearchSpace | Mapping[str, Any] | str | Path) -> SearchSpace:
    if isinstance(space, SearchSpace):
        return space
    if isinstance(space, (str, Path)):
        return load_space(space)
    if isinstance(space, Mapping):
        if all(isinstance(v, Param) for v in space.values()):
            return SearchSpace(space)
        return SearchSpace.from_dict(space)
    raise SpaceError(f"space must be a SearchSpace, a mapping or a name/path, got {space!r}.")


#: What a new study may be named: what the HTTP API's paths, MLflow's search filters and a
#: shell take without quoting (issue 17). Studies stored before the rule keep their names.
STUDY_NAME_RULE = (
    "1 to 128 characters: letters, digits and _ . : @ + = -, starting with a letter or digit"
)
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:@+=-]{0,127}")


def check_study_name(name: Any) -> str:
    """``name`` if it is a valid name for a new study.

    Raises:
        HpoError: it breaks :data:`STUDY_NAME_RULE`; the message names the rule and the name.
    """
    if not isinstance(name, str) or _NAME_RE.fullmatch(name) is None:
        bad = ""
        if isinstance(name, str) and name:
            odd = sorted({c for c in name if not re.fullmatch(r"[A-Za-z0-9_.:@+=-]", c)})
            if odd:
                bad = f" ({', '.join(map(repr, odd))} not allowed)"
        raise HpoError(f"a study name must be {STUDY_NAME_RULE}; got {name!r}{bad}.")
    return name


def _auto_name() -> str:
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    return f"study-{stamp}-{secrets.token_hex(2)}"


def _describe_difference(stored: Mapping[str, Any], given: Mapping[str, Any]) -> str:
    for k in list(stored) + [k for k in given if k not in stored]:
        if k not in given:
            return f"parameter {k!r} is missing from the given space"
        if k not in stored:
            return f"parameter {k!r} is not in the stored space"
        if stored[k] != given[k]:
            return f"parameter {k!r} differs (stored {stored[k]}, given {given[k]})"
    return "parameter order differs"


def create_study(
    space: SearchSpace | Mapping[str, Any] | str | Path | None = None,
    strategy: str | Strategy = "bayes",
    direction: str | Direction = "minimize",
    storage: str | Store | None = None,
    name: str | None = None,
    seed: int | None = 0,
    *,
    load_if_exists: bool = False,
    pruner: str | Pruner | None = None,
    strategy_options: Mapping[str, Any] | None = None,
    pruner_options: Mapping[str, Any] | None = None,
    meta: Mapping[str, Any] | None = None,
) -> Study:
    """Create a study (or reopen it with ``load_if_exists=True``).

    Args:
        space: A :class:`SearchSpace`, a mapping of parameters, or a named space / YAML path.
            May be omitted when reopening.
        strategy: ``"grid" | "random" | "bayes" | "tpe"`` or a :class:`Strategy`.
        direction: ``"minimize"`` or ``"maximize"``.
        storage: ``None`` (in memory), a URL (``sqlite:///hpo.db``, ``postgresql://...``)
            or a store.
        name: The study's unique name in the store; made up when omitted. A new study's name
            must keep :data:`STUDY_NAME_RULE`.
        seed: Seeds every random choice; ``None`` picks one (and stores it).
        load_if_exists: Reopen an existing study of that name instead of failing. The space
            and direction must match what the study was made with.
        pruner: Stops unpromising trials early: ``"none"`` (the default, also ``None``),
            ``"median"``, ``"asha"``, ``"hyperband"`` or a pruner object (see
            :mod:`hpo.pruners`). Its budget-dependent defaults (ASHA's ``max_resource``) come
            from the space's epoch budget. A new study stores it, so that :func:`load_study`
            prunes the same way; reopening uses the one given here.
        strategy_options: Options of the strategy (e.g. ``{"points": 7}`` for grid).
        pruner_options: Options of a pruner given by name (e.g. ``{"reduction_factor": 3}``).
        meta: Free-form data kept with the study (the CLI stores model, dataset, budget).

    Raises:
        HpoError: a new study's name breaks :data:`STUDY_NAME_RULE`.
        DuplicatedStudyError: the name is taken and ``load_if_exists`` is False.
        StudyMismatchError: reopening with another space or direction.
        PrunerError: unknown pruner or a bad pruner setting.
    """
    store = get_store(storage)
    direction = Direction.parse(direction)
    strat = get_strategy(strategy, **dict(strategy_options or {}))
    prn = get_pruner(pruner, **dict(pruner_options or {}))
    if seed is None:
        seed = int(np.random.SeedSequence().entropy % (2**31))  # type: ignore[operator]
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise HpoError(f"seed must be a non-negative integer or None, got {seed!r}.")
    name = _auto_name() if name is None else name
    sp = _as_space(space) if space is not None else None
    if load_if_exists:
        try:
            record = store.get_study(name)
        except StorageError as e:
            if not isinstance(e, KeyError):
                raise
        else:
            return _reopen(store, record, sp, strat, direction, prn)
    if sp is None:
        raise SpaceError("create_study needs a space for a new study.")
    full_meta = {**sp.meta, **dict(meta or {})}
    if sp.name:
        full_meta.setdefault("space_name", sp.name)
    if sp.description:
        full_meta.setdefault("space_description", sp.description)
    prn = _for_budget(prn, sp, full_meta)
    check_study_name(name)
    # hpo's own pruners are stored (a pruner object of the user's own is not)
    stored = prn if isinstance(prn, BasePruner) else None
    try:
        record = store.create_study(
            name=name,
            direction=direction,
            space=sp.to_dict(),
            strategy=strat.name,
            strategy_options=strat.options(),
            seed=int(seed),
            meta=full_meta,
            pruner=stored.name if stored is not None else None,
            pruner_options=stored.options() if stored is not None else None,
        )
    except DuplicatedStudyError:
        if not load_if_exists:
            raise DuplicatedStudyError(
                f"a study named {name!r} already exists in {mask_url(store.url)}; "
                "pass load_if_exists=True (the CLI resumes it with the same --study) "
                "or choose another name."
            ) from None
        record = store.get_study(name)  # created by another process a moment ago
        return _reopen(store, record, sp, strat, direction, prn)
    return Study(store, record, sp, strat, prn)


def _for_budget(pruner: Pruner, space: SearchSpace | None, meta: Mapping[str, Any]) -> Pruner:
    """The pruner with the study's epoch budget filled in and checked (hpo's own pruners)."""
    if isinstance(pruner, BasePruner):
        return pruner.for_budget(epoch_budget(space, meta))
    return pruner


def _stored_pruner(record: StudyRecord) -> dict[str, Any] | None:
    """The pruner the study was made with: ``{"name": ..., "options": {...}}``, or None."""
    if record.pruner is None:
        return None
    return {"name": record.pruner, "options": dict(record.pruner_options)}


def _reopen(
    store: Store,
    record: StudyRecord,
    space: SearchSpace | None,
    strategy: Strategy,
    direction: Direction,
    pruner: Pruner,
) -> Study:
    stored_space = SearchSpace.from_dict(record.space)
    if space is not None and space.to_dict() != stored_space.to_dict():
        diff = _describe_difference(stored_space.to_dict(), space.to_dict())
        raise StudyMismatchError(
            f"study {record.name!r} was created with a different space: {diff}; "
            "reuse the original space or start a new study name."
        )
    if direction is not record.direction:
        raise StudyMismatchError(
            f"study {record.name!r} was created to {record.direction.value}, not "
            f"{direction.value}; use direction={record.direction.value!r} or a new study name."
        )
    if space is not None:
        stored_space.name, stored_space.description = space.name, space.description
        stored_space.spec = space.spec
    if strategy.name != record.strategy:
        log.info(
            "study %r was made with strategy %r; this process asks %r",
            record.name,
            record.strategy,
            strategy.name,
        )
    pruner = _for_budget(pruner, stored_space, record.meta)
    stored = _stored_pruner(record)
    if isinstance(pruner, BasePruner) and stored is not None and stored["name"] != pruner.name:
        log.info(
            "study %r was made with pruner %r; this process prunes with %r",
            record.name,
            stored["name"],
            pruner.name,
        )
    return Study(store, record, stored_space, strategy, pruner)


def load_study(
    name: str,
    storage: str | Store | None,
    *,
    strategy: str | Strategy | None = None,
    pruner: str | Pruner | None = None,
    pruner_options: Mapping[str, Any] | None = None,
) -> Study:
    """Reopen a stored study, with the strategy and the pruner (and their options) it was
    created with, unless ``strategy`` / ``pruner`` say otherwise (``pruner="none"`` turns
    pruning off).

    Raises:
        StudyNotFoundError: no such study in the store.
        PrunerError: unknown pruner or a bad pruner setting.
    """
    store = get_store(storage)
    record = store.get_study(name)
    space = SearchSpace.from_dict(
        record.space,
        name=record.meta.get("space_name"),
        description=record.meta.get("space_description"),
        spec=record.spec,
    )
    strat = (
        get_strategy(record.strategy, **dict(record.strategy_options))
        if strategy is None
        else get_strategy(strategy)
    )
    stored = _stored_pruner(record)
    if pruner is None and stored is not None:
        prn = get_pruner(stored["name"], **dict(stored.get("options") or {}))
    else:
        prn = get_pruner(pruner, **dict(pruner_options or {}))
    return Study(store, record, space, strat, _for_budget(prn, space, record.meta))


def list_studies(storage: str | Store | None) -> list[StudySummary]:
    """Every study in the store, oldest first, with trial counts and best values."""
    return get_store(storage).list_studies()


def delete_study(
    name: str, storage: str | Store | None, *, checkpoint_dir: str | None = None
) -> list[str]:
    """Delete a study, its trials and their checkpoints (the folders its trials recorded,
    and ``ROOT/NAME`` of the default location or of ``checkpoint_dir``); the checkpoint
    folders removed. Raises StudyNotFoundError."""
    store = get_store(storage)
    record = store.get_study(name)
    folders: set[str] = set()
    for t in store.get_trials(record.id):
        info = t.system_attrs.get("checkpoint")
        if isinstance(info, Mapping) and info.get("dir"):
            folders.add(str(info["dir"]))
    for root in (default_checkpoint_dir(store.url), checkpoint_dir):
        if root is not None:
            folders.add(Checkpointing(root).study_dir(name))
    store.delete_study(name)
    removed = []
    for folder in sorted(folders):
        try:
            if Checkpointing.remove_tree(folder):
                removed.append(folder)
        except Exception as e:
            log.warning("could not delete checkpoints %s: %s", folder, e)
    return removed
