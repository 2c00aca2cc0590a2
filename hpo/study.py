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
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hpo._observer import Observer
from hpo.exceptions import (
    DuplicatedStudyError,
    HpoError,
    SearchExhausted,
    SpaceError,
    StorageError,
    StudyMismatchError,
)
from hpo.executors import _recovery
from hpo.executors._base import Executor
from hpo.executors._inprocess import InProcessExecutor
from hpo.executors._runner import read_trial, trial_ended
from hpo.pruners import BasePruner, Pruner, epoch_budget, get_pruner
from hpo.space import Param, SearchSpace, load_space
from hpo.storage import Evaluation, Store, StudyRecord, StudySummary, get_store, mask_url
from hpo.strategies import Strategy, get_strategy
from hpo.trial import Direction, FrozenTrial, TrialState
from hpo.trial._checkpoints import Checkpointing, clean_checkpoints, default_checkpoint_dir
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
        if not ok:
            raise HpoError(f"trial {number} of study {self.name!r} has already finished.")
        frozen = read_trial(self, number)
        self.clean_checkpoints()
        trial_ended(self, frozen, trial if isinstance(trial, Trial) else None)
        return frozen

    # -- checkpoints ---------------------------------------------------------------------
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
            iv = read_trial(self, int(trial)).intermediate
        if not iv:
            return None
        v = iv[max(iv)]
        return v if np.isfinite(v) else None

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
