"""The live trial an objective function talks to."""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from hpo.exceptions import HpoError

if TYPE_CHECKING:
    from hpo.study import Study

__all__ = ["Trial"]


class Trial:
    """One evaluation of the objective, while it runs.

    An objective reads ``trial.params`` (the active parameters only), reports a metric after
    each epoch with ``trial.report(value, step)``, asks ``trial.should_prune()`` to stop early,
    and may store anything JSON-able with ``trial.set_user_attr(key, value)``. Every call is
    written to the study's store at once, so a crash loses nothing already reported.
    """

    def __init__(self, study: Study, trial_id: int, number: int, params: Mapping[str, Any]):
        self._study = study
        self._id = trial_id
        self.number = number
        self.params: Mapping[str, Any] = MappingProxyType(dict(params))
        self._intermediate: dict[int, float] = {}
        self._user_attrs: dict[str, Any] = {}
        self.artifacts: dict[str, Any] = {}

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

    def report(self, value: float, step: int) -> None:
        """Record an intermediate value (e.g. validation accuracy after epoch ``step``).

        Raises:
            HpoError: ``step`` is not a non-negative integer or ``value`` is not a number.
        """
        if isinstance(step, bool) or not isinstance(step, numbers.Integral) or step < 0:
            raise HpoError(f"trial.report: step must be an integer >= 0, got {step!r}.")
        try:
            v = float(value)
        except (TypeError, ValueError):
            raise HpoError(f"trial.report: value must be a number, got {value!r}.") from None
        self._intermediate[int(step)] = v
        self._study._store.report(self._id, int(step), v)
        for listener in list(self._study._report_listeners):
            listener(self, int(step), v)

    def should_prune(self) -> bool:
        """Whether the study's pruner says to stop this trial now (False without a pruner)."""
        pruner = self._study.pruner
        if pruner is None or not self._intermediate:
            return False
        return bool(pruner.should_prune(self._study, self))

    def set_user_attr(self, key: str, value: Any) -> None:
        """Store a JSON-able value with the trial (train curves, parameter count, ...)."""
        if not isinstance(key, str):
            raise HpoError(f"trial.set_user_attr: key must be a string, got {key!r}.")
        self._user_attrs[key] = value
        self._study._store.set_trial_attrs(self._id, user={key: value})

    def set_user_attrs(self, attrs: Mapping[str, Any]) -> None:
        """Store several attributes in one write (e.g. all of an epoch's curves)."""
        if not all(isinstance(k, str) for k in attrs):
            raise HpoError("trial.set_user_attrs: keys must be strings.")
        self._user_attrs.update(attrs)
        self._study._store.set_trial_attrs(self._id, user=dict(attrs))

    def attach(self, name: str, obj: Any) -> None:
        """Keep an object with the live trial for observers (e.g. the trained model, which the
        MLflow tracker logs as an artifact). Kept in memory only, never in the store."""
        self.artifacts[name] = obj

    def set_system_attrs(self, attrs: Mapping[str, Any]) -> None:
        """hpo's own bookkeeping (host, device, MLflow run id); not for objectives."""
        self._study._store.set_trial_attrs(self._id, system=dict(attrs))

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
