"""The pruner interface: when to stop a running trial early."""

from __future__ import annotations

import abc
import math
import numbers
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from hpo.exceptions import PrunerError
from hpo.trial import Direction, FrozenTrial

if TYPE_CHECKING:
    from hpo.space import SearchSpace
    from hpo.study import Study
    from hpo.trial._trial import Trial

__all__ = ["BasePruner", "Pruner", "epoch_budget"]


class Pruner(Protocol):
    """Anything that decides whether a running trial should stop early.

    ``Trial.should_prune()`` calls ``should_prune(study, trial)`` after the trial has reported
    at least one intermediate value. hpo's own pruners derive from :class:`BasePruner`.
    """

    def should_prune(self, study: Study, trial: Trial) -> bool: ...


class BasePruner(abc.ABC):
    """Stops unpromising trials early, judging only what the study's store holds.

    Rules every pruner keeps:

    * :meth:`prune` is a **pure function** of the trial's stored record (its intermediate
      values), the study's other stored trials (states and intermediate values, running ones
      included), the direction and the study's seed. No state of its own, nothing kept in
      memory between calls: a trial is judged the same in the process that created the study,
      in another process on the same store, or on a Ray worker on another machine.
    * It judges the trial at its **last reported step**; steps are the ``step`` arguments of
      ``trial.report`` (the training loop reports validation accuracy after each epoch, from
      epoch 1). A NaN intermediate value counts as the worst possible value.
    * A pruner is **immutable** once made and can be pickled (the Ray executor ships it to
      the workers). Options are keyword arguments of the constructor; :meth:`options` returns
      them as plain data, stored with the study so that ``load_study`` rebuilds the same one.
    * :meth:`for_budget` fills in what defaults to the study's epoch budget and checks the
      options against it: a setting that could never prune is refused with a
      :class:`~hpo.exceptions.PrunerError` that says how to fix it.
    """

    name: ClassVar[str]

    #: Whether a trial this pruner stops is *paused* rather than ended: its checkpoint is kept
    #: and it may be promoted later (see :meth:`promotable`). ASHA and Hyperband with
    #: ``pause=True``.
    pauses: bool = False

    def options(self) -> dict[str, Any]:
        """The constructor options, as plain data (stored with the study)."""
        return {}

    def describe(self) -> str:
        """One line for people: what this pruner does with these options."""
        opts = ", ".join(f"{k}={v}" for k, v in self.options().items())
        return f"{self.name} ({opts})" if opts else self.name

    def for_budget(self, budget: int | None) -> BasePruner:
        """This pruner for a study whose trials report up to step ``budget`` (``None``: not
        known). Returns a pruner with budget-dependent defaults filled in.

        Raises:
            PrunerError: an option cannot work with this budget (e.g. ASHA's ``min_resource``
                at or above it).
        """
        return self

    def should_prune(self, study: Study, trial: Trial) -> bool:
        """Read the study's trials from its store and judge ``trial`` with :meth:`prune`."""
        history = study.get_trials(cached=True)
        me = _find(history, trial.number)
        if me is None or not me.intermediate:
            return False
        return self.prune(me, history, direction=study.direction, seed=study.seed)

    @abc.abstractmethod
    def prune(
        self,
        trial: FrozenTrial,
        trials: Sequence[FrozenTrial],
        *,
        direction: Direction,
        seed: int,
    ) -> bool:
        """Whether ``trial`` should stop now, at its last reported step.

        Args:
            trial: The running trial's stored record.
            trials: Every trial of the study, ordered by number (``trial`` among them).
            direction: Whether lower or higher values are better.
            seed: The study's seed.
        """

    def promotable(
        self,
        trial: FrozenTrial,
        trials: Sequence[FrozenTrial],
        *,
        direction: Direction,
        seed: int,
    ) -> bool:
        """Whether the paused ``trial`` may go on now, judged at the step it paused at against
        the study's trials as they are now (more may have reached its rung since). False for a
        pruner that never pauses."""
        if not self.pauses or trial.last_step is None:
            return False
        return not self.prune(trial, trials, direction=direction, seed=seed)

    def __repr__(self) -> str:
        opts = ", ".join(f"{k}={v!r}" for k, v in self.options().items())
        return f"{type(self).__name__}({opts})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, BasePruner) or type(other) is not type(self):
            return NotImplemented
        return other.options() == self.options()

    def __hash__(self) -> int:
        return hash((type(self).__name__, tuple(sorted(self.options().items()))))


def _find(trials: Sequence[FrozenTrial], number: int) -> FrozenTrial | None:
    if 0 <= number < len(trials) and trials[number].number == number:
        return trials[number]
    for t in trials:
        if t.number == number:
            return t
    return None


def score(value: float, direction: Direction) -> float:
    """``value`` turned into a score where lower is better; NaN is the worst (+inf)."""
    if math.isnan(value):
        return math.inf
    return value if direction is Direction.MINIMIZE else -value


def check_bool(pruner: str, key: str, value: Any, why: str) -> bool:
    """``value`` as a bool, or a PrunerError naming the option and why."""
    if not isinstance(value, bool):
        raise PrunerError(
            f"pruner {pruner!r}: `{key}` must be true or false ({why}), got {value!r}."
        )
    return value


def check_int(pruner: str, key: str, value: Any, low: int, why: str) -> int:
    """``value`` as an int >= ``low``, or a PrunerError naming the option, the rule and why."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        raise PrunerError(
            f"pruner {pruner!r}: `{key}` must be an integer >= {low} ({why}), got {value!r}."
        )
    return int(value)


def epoch_budget(space: SearchSpace | None, meta: Mapping[str, Any]) -> int | None:
    """The largest step a trial of this study reports, when the study says: the top of a
    searched ``epochs`` parameter, else the space's ``budget: {epochs: N}``, else ``None``."""
    from hpo.space import Categorical, Int

    if space is not None and "epochs" in space:
        p = space["epochs"]
        if isinstance(p, Int):
            return int(p.high)
        if isinstance(p, Categorical) and all(
            isinstance(c, numbers.Integral) and not isinstance(c, bool) for c in p.choices
        ):
            return int(max(p.choices))
    budget = meta.get("budget")
    if isinstance(budget, Mapping):
        epochs = budget.get("epochs")
        if isinstance(epochs, numbers.Integral) and not isinstance(epochs, bool):
            return int(epochs) if int(epochs) >= 1 else None
    return None
