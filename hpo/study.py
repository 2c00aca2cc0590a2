"""Study: a search in progress, and the functions that make or reopen one."""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from hpo._observer import Observer
from hpo.exceptions import (
    HpoError,
    SearchExhausted,
    StorageError,
)
from hpo.executors import _recovery
from hpo.executors._base import Executor
from hpo.executors._inprocess import InProcessExecutor
from hpo.executors._runner import read_trial, trial_ended
from hpo.pruners import Pruner
from hpo.space import SearchSpace
from hpo.storage import Evaluation, Store, StudyRecord, mask_url
from hpo.strategies import Strategy
from hpo.trial import Direction, FrozenTrial, TrialState
from hpo.trial._checkpoints import (
    Checkpointing,
    clean_checkpoints,
    default_checkpoint_dir,
    rank,
)
from hpo.trial._frozen import PAUSED_ATTR
from hpo.trial._trial import Trial, outcome

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
        #: What hears about this study's trials (the MLflow tracker...): see :class:`Observer`.
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
        Interrupted and paused trials are read again each time: they may go on.
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
                if t.state.is_finished and not (t.interrupted or t.paused):
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
        live = trial if isinstance(trial, Trial) else None
        st, v, error = outcome(
            value,
            state,
            error,
            lambda: (
                live.intermediate if live is not None else read_trial(self, number).intermediate
            ),
        )
        pausing = live is not None and live.pausing and self.checkpointing is not None
        system: dict[str, Any] | None = None  # a paused trial waits with its checkpoint
        if st is TrialState.PRUNED and pausing and live is not None:
            system = {PAUSED_ATTR: max(live.intermediate, default=1)}
        # A trial whose checkpoint goes at once (pruned, or completed outside the best K)
        # records that in the same write that finishes it; its files go after.
        dropped = self._dropped_checkpoint(live, st, v, pausing)
        if dropped is not None:
            system = {**(system or {}), "checkpoint": {**dropped, "files": [], "deleted": True}}
        ok = self._store.finish_trial(trial_id, st, value=v, error=error, system_attrs=system)
        if not ok:
            raise HpoError(f"trial {number} of study {self.name!r} has already finished.")
        frozen = read_trial(self, number)
        if dropped is not None:
            self._ckpt_cleaned.add(number)
            try:
                Checkpointing.remove_tree(str(dropped["dir"]))
            except Exception as e:  # recorded as gone; `hpo delete` removes the folder
                log.warning("could not delete the checkpoints of trial %d: %s", number, e)
        else:  # it may displace another trial's kept checkpoint
            self.clean_checkpoints()
        trial_ended(self, frozen, trial if isinstance(trial, Trial) else None)
        return frozen

    # -- checkpoints ---------------------------------------------------------------------
    def _dropped_checkpoint(
        self, live: Trial | None, state: TrialState, value: float | None, pausing: bool
    ) -> dict[str, Any] | None:
        """The checkpoint record of ``live`` when its files go as it finishes with ``state``
        and ``value``: pruned (not paused), or completed and not among the best
        ``checkpointing.best`` completed trials that keep theirs. Ranked against the finished
        trials this process has read (no store read): a better trial it has not seen yet
        only makes it keep the files, and ``clean_checkpoints`` then settles it.
        """
        settings = self.checkpointing
        info = live.checkpoint_info if live is not None else None
        if settings is None or not info or not info.get("files"):
            return None
        if state is TrialState.PRUNED and not pausing:
            return info
        if state is not TrialState.COMPLETE or value is None or live is None:
            return None  # failed (maybe interrupted: it may resume): clean_checkpoints decides
        return None if self._would_keep_checkpoint(live.number, value) else info

    def _would_keep_checkpoint(self, number: int, value: float) -> bool:
        """Whether trial ``number``, completed with ``value``, would rank among the best
        ``checkpointing.best`` completed trials that keep checkpoints, as far as the finished
        trials this process has read tell (no store read)."""
        settings = self.checkpointing
        if settings is None:
            return False
        mine = rank(self.direction, value, number)
        better = 0
        for t in list(self._finished.values()):
            kept = t.system_attrs.get("checkpoint")
            if (
                t.state is TrialState.COMPLETE
                and isinstance(kept, Mapping)
                and kept.get("files")
                and rank(self.direction, t.value, t.number) < mine
            ):
                better += 1
        return better < settings.best

    def clean_checkpoints(self) -> list[int]:
        """Delete the checkpoints of finished trials except those of the best
        ``checkpointing.best`` completed ones; the numbers of the trials whose checkpoints
        went. Interrupted trials keep theirs (they resume from them). ``tell`` calls this."""
        if self.checkpointing is None:
            return []
        return clean_checkpoints(self, self.checkpointing, self._ckpt_cleaned)

    # -- interrupted trials (see hpo.executors._recovery) ---------------------------------
    def resume_interrupted(self, max_trials: int | None = None) -> Trial | None:
        """Take over an interrupted trial that has a checkpoint, if there is one (and the
        study holds fewer than ``max_trials`` trials): it runs again with the same number,
        params and seed, and its objective resumes from ``trial.last_checkpoint()``.
        None when there is nothing to resume (or this study keeps no checkpoints)."""
        return _recovery.resume_interrupted(self, max_trials)

    def promote_paused(self) -> Trial | None:
        """Take over a paused trial that its pruner now promotes (more trials have reached its
        rung, and it ranks among the best ``1/reduction_factor`` there): it goes on from its
        checkpoint with the same number, params and seed. None when no paused trial is
        promotable (or the pruner never pauses). ``optimize`` asks this before every new
        trial, so promotions come first, as in ASHA."""
        return _recovery.promote_paused(self)

    def _resolve(self, trial: Trial | int) -> tuple[int, int]:
        if isinstance(trial, Trial):
            return trial.trial_id, trial.number
        t = self._store.get_trial(self._record.id, int(trial))
        if t is not None and t.trial_id is not None:
            return t.trial_id, t.number
        raise HpoError(f"study {self.name!r} has no trial {trial}.")

    def fail_orphaned_trials(self) -> list[int]:
        """Fail running trials whose process on this machine is gone; their numbers.

        A trial records the host and pid of the process that asked for it. When that process
        was killed (a driver killed mid-study), its trials need not wait ``stale_after``
        seconds for their heartbeats to age: a rerun on the same machine sees at once that the
        process no longer exists and marks them interrupted.
        """
        return _recovery.fail_orphaned_trials(self)

    def fail_stale_trials(self, older_than_seconds: float | None = None) -> list[int]:
        """Fail running trials whose process stopped sending heartbeats; their numbers."""
        return _recovery.fail_stale_trials(self, older_than_seconds)

    def recover_orphans(self) -> list[int]:
        """Mark interrupted every running trial whose process is gone; their numbers.

        Gone means: a process on this machine that no longer exists (found at once), or a
        process anywhere whose heartbeat is older than :attr:`stale_after`. A trial of
        another machine with a fresh heartbeat is left running: its process may be alive
        (see "Resuming" in the README). ``optimize`` calls this first; a caller that counts
        what is done (the CLI's resume line) calls it before counting.
        """
        return _recovery.recover_orphans(self)

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
        observers: Iterable[Observer] = (),
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

        ``callbacks`` (``f(study, frozen)`` after each trial; an exception stops the study)
        and ``observers`` hear this call's trials: they join :attr:`observers` until it
        returns. ``show_progress`` adds a progress display.
        """
        (executor or InProcessExecutor()).run(
            self,
            objective,
            n_trials=n_trials,
            timeout=timeout,
            max_trials=max_trials,
            callbacks=callbacks,
            observers=observers,
            show_progress=show_progress,
        )


# -- making and reopening studies ---------------------------------------------------------


# The functions that make and reopen studies live in hpo/_studies.py (imported last: they
# need the Study class above).
from hpo._studies import (  # noqa: E402
    STUDY_NAME_RULE,
    check_study_name,
    create_study,
    delete_study,
    list_studies,
    load_study,
)
