"""The store interface: the single source of truth of studies and trials."""

from __future__ import annotations

import abc
import contextlib
import datetime as _dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from hpo.space import ExperimentSpec
from hpo.trial import Direction, FrozenTrial, TrialState

__all__ = ["Evaluation", "Store", "StudyRecord", "StudySummary"]


@dataclass(frozen=True)
class StudyRecord:
    """What a study was created with. Never changes after creation, but for ``user_attrs``:
    a person's notes (:meth:`Store.annotate_study`).

    ``pruner`` / ``pruner_options`` are the pruner it was made with (``None``: none stored).
    ``meta`` is the free-form data kept with it; for code that read the pruner there, it also
    holds ``{"pruner": {"name": ..., "options": ...}}`` when a pruner is stored. :attr:`spec`
    reads the experiment (model, data set, metric, budget...) out of ``meta``.
    """

    id: int
    name: str
    direction: Direction
    space: Mapping[str, Any]
    strategy: str
    strategy_options: Mapping[str, Any]
    seed: int
    created_at: _dt.datetime
    meta: Mapping[str, Any] = field(default_factory=dict)
    user_attrs: Mapping[str, Any] = field(default_factory=dict)
    pruner: str | None = None
    pruner_options: Mapping[str, Any] = field(default_factory=dict)

    @property
    def spec(self) -> ExperimentSpec:
        """The experiment the study was made for, read from ``meta`` (a value of the wrong
        type stays in ``extra``: a stored study always opens)."""
        return ExperimentSpec.from_meta(self.meta, strict=False)


@dataclass(frozen=True)
class StudySummary:
    """A study and how far it got, for listings (``hpo studies``, the dashboard)."""

    study: StudyRecord
    n_trials: int
    states: Mapping[TrialState, int]
    best_value: float | None
    last_activity: _dt.datetime | None


@dataclass(frozen=True)
class Evaluation:
    """A study's final model tested on data the search never saw (issue 16).

    ``trial_number`` is the trial whose params were used; ``retrained`` says whether the model
    was trained afresh on train + validation for ``epochs`` epochs (else the trial's own run).
    Accuracies are fractions in [0, 1]; ``confusion[i][j]`` counts test images of class ``i``
    predicted as ``j``. ``info`` holds the rest: ``test_source`` (which test split),
    ``n_test``, ``n_train``, ``val_accuracy`` (the trial's best validation accuracy),
    ``seconds``, ``device``, ``model_path``, ``params``, ``model``.
    """

    id: int
    trial_number: int
    created_at: _dt.datetime
    test_accuracy: float
    test_loss: float
    epochs: int
    retrained: bool
    confusion: Sequence[Sequence[int]]
    info: Mapping[str, Any] = field(default_factory=dict)


class Store(abc.ABC):
    """Where studies and trials live.

    Rules every implementation keeps:

    * **Thread- and process-safe.** Any number of threads and processes may read and write the
      same study at once; nothing written is lost.
    * **Atomic trial numbers.** :meth:`add_trial` succeeds for exactly one caller per
      ``(study, number)``; numbers in a study run 0, 1, 2, ... without gaps.
    * **Finished trials are immutable.** :meth:`finish_trial` only changes a RUNNING trial;
      reports and attributes on a finished trial are refused.
    * **Records are snapshots.** A :class:`FrozenTrial` or :class:`StudyRecord` already returned
      never changes; read again to see later writes.
    * **Ids are never reused**, even after a study is deleted.

    Every method raises :class:`hpo.exceptions.StorageError` (with a sentence a user
    understands) when the database cannot be reached or written.
    """

    url: str

    # -- studies -------------------------------------------------------------------------
    @abc.abstractmethod
    def create_study(
        self,
        *,
        name: str,
        direction: Direction,
        space: Mapping[str, Any],
        strategy: str,
        strategy_options: Mapping[str, Any],
        seed: int,
        meta: Mapping[str, Any],
        pruner: str | None = None,
        pruner_options: Mapping[str, Any] | None = None,
    ) -> StudyRecord:
        """Create a study; ``pruner`` and its options are stored next to the strategy's.

        Raises:
            DuplicatedStudyError: a study named ``name`` exists already.
        """

    @abc.abstractmethod
    def get_study(self, name: str) -> StudyRecord:
        """Raises: StudyNotFoundError: no study is named ``name``."""

    @abc.abstractmethod
    def list_studies(self) -> list[StudySummary]:
        """All studies, oldest first, with counts of trials by state."""

    @abc.abstractmethod
    def delete_study(self, name: str) -> None:
        """Delete a study and all its trials. Raises StudyNotFoundError."""

    # -- trials --------------------------------------------------------------------------
    @abc.abstractmethod
    def get_trials(
        self,
        study_id: int,
        *,
        states: Sequence[TrialState] | None = None,
        min_number: int = 0,
    ) -> list[FrozenTrial]:
        """Trials of a study ordered by number (only ``states`` if given, from ``min_number``)."""

    @abc.abstractmethod
    def get_trial(self, study_id: int, number: int) -> FrozenTrial | None:
        """Trial ``number`` of a study, or ``None`` when the study has no such trial."""

    @abc.abstractmethod
    def count_trials(self, study_id: int) -> int:
        """How many trials the study has (the next free trial number)."""

    @abc.abstractmethod
    def add_trial(
        self,
        study_id: int,
        number: int,
        params: Mapping[str, Any],
        *,
        state: TrialState = TrialState.RUNNING,
        system_attrs: Mapping[str, Any] | None = None,
    ) -> int | None:
        """Insert trial ``number`` and return its id, or ``None`` if the number is taken."""

    @abc.abstractmethod
    def report(
        self, trial_id: int, step: int, value: float, *, user: Mapping[str, Any] | None = None
    ) -> None:
        """Record an intermediate value (overwrites the same step), and with it, in the same
        write, the ``user`` attributes given (merged as :meth:`set_trial_attrs` does).
        Refused once finished."""

    @abc.abstractmethod
    def set_trial_attrs(
        self,
        trial_id: int,
        *,
        user: Mapping[str, Any] | None = None,
        system: Mapping[str, Any] | None = None,
    ) -> None:
        """Merge attributes into the trial's user or system attributes."""

    @abc.abstractmethod
    def annotate_trial(self, trial_id: int, system: Mapping[str, Any]) -> None:
        """Merge hpo's own bookkeeping (e.g. the MLflow run id) into a trial's system
        attributes, finished or not. Results (state, value, params, intermediate values,
        user attributes) stay immutable once finished."""

    def annotate_study(self, study_id: int, attrs: Mapping[str, Any]) -> None:
        """Merge ``attrs`` (a person's note: ``{"note": text}``) into a study's user
        attributes. Everything the study was created with stays as it was."""
        from hpo.exceptions import StorageError

        raise StorageError(f"{type(self).__name__} keeps no study annotations.")

    @abc.abstractmethod
    def heartbeat(self, trial_ids: Sequence[int]) -> None:
        """Tell the store that these running trials are still alive."""

    @abc.abstractmethod
    def finish_trial(
        self,
        trial_id: int,
        state: TrialState,
        *,
        value: float | None = None,
        error: str | None = None,
        system_attrs: Mapping[str, Any] | None = None,
    ) -> bool:
        """Move a RUNNING trial to ``state``. Returns False if it had already finished."""

    def resume_trial(self, trial_id: int, system_attrs: Mapping[str, Any]) -> bool:
        """Put an interrupted (FAILED) or paused (PRUNED) trial back to RUNNING for a new
        owner, merging ``system_attrs`` (its new host and pid) into its system attributes; its
        number, params, intermediate values and user attributes stay. Atomic: of several
        callers resuming the same trial exactly one gets True. False when it is not FAILED or
        PRUNED (the caller decides which trials may go on)."""
        raise NotImplementedError(f"{type(self).__name__} cannot resume trials")

    @abc.abstractmethod
    def fail_stale_trials(self, study_id: int, older_than: _dt.datetime) -> list[int]:
        """Fail RUNNING trials whose last heartbeat is before ``older_than``; their numbers."""

    # -- final evaluations -------------------------------------------------------------
    @abc.abstractmethod
    def add_evaluation(
        self,
        study_id: int,
        *,
        trial_number: int,
        test_accuracy: float,
        test_loss: float,
        epochs: int,
        retrained: bool,
        confusion: Sequence[Sequence[int]],
        info: Mapping[str, Any],
    ) -> Evaluation:
        """Record a final evaluation of the study; returns it as stored."""

    @abc.abstractmethod
    def get_evaluations(self, study_id: int) -> list[Evaluation]:
        """The study's final evaluations, oldest first (the last is the current one)."""

    def proposal_lock(
        self, study_id: int, *, timeout: float
    ) -> contextlib.AbstractContextManager[None]:
        """Take the study's turn to propose: held by one caller at a time, across threads,
        processes and machines, and let go when its holder dies. ``Study.ask`` holds it from
        reading the history to adding the trial. After ``timeout`` seconds of waiting (a
        holder that hangs), it goes on without the turn: correctness never depends on it,
        only the cost of a lost race. The default takes no turn."""
        return contextlib.nullcontext()

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""
