"""Parameter types: Float, Int and Categorical, each optionally conditional (``when=``).

Parameters are plain descriptions; they are checked when a :class:`~hpo.SearchSpace` binds them
to a name, so every error can name the parameter at fault.

Each type maps to and from the unit interval ``[0, 1]`` (``to_unit`` / ``from_unit``). Random
search draws ``u ~ U(0, 1)``; the Gaussian process works in the same box. Bounds are inclusive
everywhere: ``Float(0, 1)`` may return 0.0 or 1.0, ``Int(1, 4)`` any of 1, 2, 3, 4.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from hpo.exceptions import SpaceError

__all__ = ["Categorical", "Condition", "Float", "Int", "Param"]

# Comparison operators a condition may use besides plain equality / membership.
_OPS: dict[str, Any] = {
    ">=": lambda a, b: a >= b,
    ">": lambda a, b: a > b,
    "<=": lambda a, b: a <= b,
    "<": lambda a, b: a < b,
    "!=": lambda a, b: a != b,
}


@dataclass(frozen=True)
class Condition:
    """``parent`` must satisfy ``op`` against ``operand`` for the child to be active.

    ``op`` is ``"in"`` (operand: a tuple of allowed values) or one of ``>=, >, <=, <, !=``.
    """

    parent: str
    op: str
    operand: Any

    def matches(self, value: Any) -> bool:
        if self.op == "in":
            return bool(value in self.operand)
        try:
            return bool(_OPS[self.op](value, self.operand))
        except TypeError:
            return False

    def to_yaml_value(self) -> Any:
        if self.op == "in":
            ops = list(self.operand)
            return ops[0] if len(ops) == 1 else ops
        return {self.op: self.operand}


def _parse_conditions(when: Mapping[str, Any] | None) -> tuple[Condition, ...]:
    if when is None:
        return ()
    if not isinstance(when, Mapping):
        raise SpaceError(f"`when` must be a mapping like {{'optimizer': 'sgd'}}, got {when!r}.")
    out = []
    for parent, spec in when.items():
        if isinstance(spec, Mapping):
            if len(spec) != 1 or next(iter(spec)) not in _OPS:
                raise SpaceError(
                    f"condition on {parent!r} must be a value, a list of values or one of "
                    f"{{op: value}} with op in {sorted(_OPS)}, got {dict(spec)!r}."
                )
            op, operand = next(iter(spec.items()))
            out.append(Condition(str(parent), str(op), operand))
        elif isinstance(spec, (list, tuple, set, frozenset)):
            out.append(Condition(str(parent), "in", tuple(spec)))
        else:
            out.append(Condition(str(parent), "in", (spec,)))
    return tuple(out)


def _is_number(x: Any) -> bool:
    return isinstance(x, numbers.Real) and not isinstance(x, bool)


@dataclass(frozen=True, init=False)
class Param:
    """Base class of parameter types. ``when`` makes the parameter conditional."""

    kind: ClassVar[str] = ""
    conditions: tuple[Condition, ...] = field(default=())

    def __init__(self, when: Mapping[str, Any] | None = None) -> None:
        object.__setattr__(self, "conditions", _parse_conditions(when))

    # -- rules ---------------------------------------------------------------------------
    def validate(self, name: str) -> None:
        """Raise :class:`SpaceError` naming ``name`` when the parameter breaks a rule."""
        raise NotImplementedError

    def contains(self, value: Any) -> bool:
        raise NotImplementedError

    # -- unit-box transform --------------------------------------------------------------
    def to_unit(self, value: Any) -> float:
        raise NotImplementedError

    def from_unit(self, u: float) -> Any:
        raise NotImplementedError

    def grid_values(self, points: int) -> list[Any]:
        """The values a grid search tries: ``points`` for a continuous range."""
        raise NotImplementedError

    # -- serialisation -------------------------------------------------------------------
    def _body(self) -> dict[str, Any]:
        raise NotImplementedError

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"type": self.kind, **self._body()}
        if self.conditions:
            d["when"] = {c.parent: c.to_yaml_value() for c in self.conditions}
        return d

    @property
    def when(self) -> dict[str, Any] | None:
        if not self.conditions:
            return None
        return {c.parent: c.to_yaml_value() for c in self.conditions}


@dataclass(frozen=True, init=False)
class Float(Param):
    """A real number in ``[low, high]``; ``log=True`` samples uniformly in log space."""

    kind: ClassVar[str] = "float"
    low: float = 0.0
    high: float = 1.0
    log: bool = False

    def __init__(
        self, low: float, high: float, log: bool = False, when: Mapping[str, Any] | None = None
    ) -> None:
        super().__init__(when)
        object.__setattr__(self, "low", low)
        object.__setattr__(self, "high", high)
        object.__setattr__(self, "log", log)

    def validate(self, name: str) -> None:
        if not _is_number(self.low) or not _is_number(self.high):
            raise SpaceError(
                f"parameter {name!r}: low and high must be numbers, "
                f"got (low={self.low!r}, high={self.high!r})."
            )
        if not (math.isfinite(self.low) and math.isfinite(self.high)):
            raise SpaceError(
                f"parameter {name!r}: low and high must be finite, "
                f"got (low={self.low}, high={self.high})."
            )
        if not self.low < self.high:
            raise SpaceError(
                f"parameter {name!r}: `low < high` must hold, "
                f"got (low={self.low}, high={self.high})."
            )
        if not isinstance(self.log, bool):
            raise SpaceError(f"parameter {name!r}: log must be true or false, got {self.log!r}.")
        if self.log and self.low <= 0:
            raise SpaceError(
                f"parameter {name!r}: a log range needs `low > 0`, got low={self.low}."
            )

    def contains(self, value: Any) -> bool:
        return _is_number(value) and self.low <= float(value) <= self.high

    def to_unit(self, value: Any) -> float:
        v = float(value)
        if self.log:
            lo, hi = math.log(self.low), math.log(self.high)
            return (math.log(v) - lo) / (hi - lo)
        return (v - self.low) / (self.high - self.low)

    def from_unit(self, u: float) -> float:
        u = min(max(float(u), 0.0), 1.0)
        if u == 0.0 or u == 1.0:  # the bounds exactly, without a round trip through exp/log
            return float(self.low if u == 0.0 else self.high)
        if self.log:
            lo, hi = math.log(self.low), math.log(self.high)
            v = math.exp(lo + u * (hi - lo))
        else:
            v = self.low + u * (self.high - self.low)
        return min(max(v, float(self.low)), float(self.high))

    def from_unit_array(self, u: np.ndarray) -> np.ndarray:
        """:meth:`from_unit` for many points at once (what the GP's candidates need)."""
        u = np.clip(np.asarray(u, dtype=float), 0.0, 1.0)
        if self.log:
            lo, hi = math.log(self.low), math.log(self.high)
            v = np.exp(lo + u * (hi - lo))
        else:
            v = self.low + u * (self.high - self.low)
        v = np.where(u == 0.0, float(self.low), np.where(u == 1.0, float(self.high), v))
        return np.clip(v, float(self.low), float(self.high))

    def to_unit_array(self, values: np.ndarray) -> np.ndarray:
        """:meth:`to_unit` for many values at once."""
        v = np.asarray(values, dtype=float)
        if self.log:
            lo, hi = math.log(self.low), math.log(self.high)
            return (np.log(v) - lo) / (hi - lo)
        return (v - self.low) / (self.high - self.low)

    def grid_values(self, points: int) -> list[Any]:
        if self.log:
            return [float(x) for x in np.geomspace(self.low, self.high, points)]
        return [float(x) for x in np.linspace(self.low, self.high, points)]

    def _body(self) -> dict[str, Any]:
        d: dict[str, Any] = {"low": self.low, "high": self.high}
        if self.log:
            d["log"] = True
        return d


@dataclass(frozen=True, init=False)
class Int(Param):
    """An integer in ``[low, high]`` (both included) on a grid of ``step``; ``log`` for scales."""

    kind: ClassVar[str] = "int"
    low: int = 0
    high: int = 1
    log: bool = False
    step: int = 1

    def __init__(
        self,
        low: int,
        high: int,
        log: bool = False,
        step: int = 1,
        when: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(when)
        object.__setattr__(self, "low", low)
        object.__setattr__(self, "high", high)
        object.__setattr__(self, "log", log)
        object.__setattr__(self, "step", step)

    def validate(self, name: str) -> None:
        for what, v in (("low", self.low), ("high", self.high), ("step", self.step)):
            if not isinstance(v, numbers.Integral) or isinstance(v, bool):
                raise SpaceError(f"parameter {name!r}: {what} must be an integer, got {v!r}.")
        if not self.low < self.high:
            raise SpaceError(
                f"parameter {name!r}: `low < high` must hold, "
                f"got (low={self.low}, high={self.high})."
            )
        if self.step < 1:
            raise SpaceError(f"parameter {name!r}: step must be >= 1, got step={self.step}.")
        if (self.high - self.low) % self.step:
            raise SpaceError(
                f"parameter {name!r}: high - low must be a multiple of step, "
                f"got (low={self.low}, high={self.high}, step={self.step})."
            )
        if not isinstance(self.log, bool):
            raise SpaceError(f"parameter {name!r}: log must be true or false, got {self.log!r}.")
        if self.log and self.low <= 0:
            raise SpaceError(
                f"parameter {name!r}: a log range needs `low > 0`, got low={self.low}."
            )
        if self.log and self.step != 1:
            raise SpaceError(
                f"parameter {name!r}: log and step cannot be combined, got step={self.step}."
            )

    @property
    def n_values(self) -> int:
        return (self.high - self.low) // self.step + 1

    def contains(self, value: Any) -> bool:
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            return False
        f = float(value)
        if not f.is_integer():
            return False
        v = int(f)
        return self.low <= v <= self.high and (v - self.low) % self.step == 0

    # Integers live on [low - 1/2, high + 1/2] in the box (log-scaled for log ranges), so each
    # integer owns an equal share of the interval and rounding is unbiased.
    def _edges(self) -> tuple[float, float]:
        lo, hi = self.low - 0.5 * self.step, self.high + 0.5 * self.step
        if self.log:
            return math.log(lo), math.log(hi)
        return lo, hi

    def to_unit(self, value: Any) -> float:
        lo, hi = self._edges()
        v = math.log(float(value)) if self.log else float(value)
        return (v - lo) / (hi - lo)

    def from_unit(self, u: float) -> int:
        u = min(max(float(u), 0.0), 1.0)
        lo, hi = self._edges()
        x = lo + u * (hi - lo)
        if self.log:
            x = math.exp(x)
        k = round((x - self.low) / self.step)
        k = min(max(k, 0), self.n_values - 1)
        return int(self.low + k * self.step)

    def from_unit_array(self, u: np.ndarray) -> np.ndarray:
        """:meth:`from_unit` for many points at once (what the GP's candidates need)."""
        lo, hi = self._edges()
        x = lo + np.clip(np.asarray(u, dtype=float), 0.0, 1.0) * (hi - lo)
        if self.log:
            x = np.exp(x)
        k = np.clip(np.round((x - self.low) / self.step), 0, self.n_values - 1)
        return (self.low + k * self.step).astype(np.int64)

    def to_unit_array(self, values: np.ndarray) -> np.ndarray:
        """:meth:`to_unit` for many values at once."""
        lo, hi = self._edges()
        v = np.asarray(values, dtype=float)
        return ((np.log(v) if self.log else v) - lo) / (hi - lo)

    def grid_values(self, points: int) -> list[Any]:
        if self.n_values <= points:
            return list(range(self.low, self.high + 1, self.step))
        raw = (
            np.geomspace(self.low, self.high, points)
            if self.log
            else np.linspace(self.low, self.high, points)
        )
        out: list[int] = []
        for x in raw:
            k = round((float(x) - self.low) / self.step)
            v = int(self.low + k * self.step)
            if v not in out:
                out.append(v)
        return out

    def _body(self) -> dict[str, Any]:
        d: dict[str, Any] = {"low": self.low, "high": self.high}
        if self.log:
            d["log"] = True
        if self.step != 1:
            d["step"] = self.step
        return d


@dataclass(frozen=True, init=False)
class Categorical(Param):
    """One of a list of choices (strings, numbers, booleans or None)."""

    kind: ClassVar[str] = "categorical"
    choices: tuple[Any, ...] = ()

    def __init__(self, choices: Sequence[Any], when: Mapping[str, Any] | None = None) -> None:
        super().__init__(when)
        if isinstance(choices, (str, bytes)) or not isinstance(choices, Sequence):
            # Kept as-is so validate() can name the parameter in its error.
            object.__setattr__(self, "choices", choices)
        else:
            object.__setattr__(self, "choices", tuple(choices))

    def validate(self, name: str) -> None:
        if not isinstance(self.choices, tuple):
            raise SpaceError(f"parameter {name!r}: choices must be a list, got {self.choices!r}.")
        if len(self.choices) == 0:
            raise SpaceError(f"parameter {name!r}: choices must not be empty.")
        for c in self.choices:
            if c is not None and not isinstance(c, (str, int, float, bool)):
                raise SpaceError(
                    f"parameter {name!r}: choices must be strings, numbers, booleans or null, "
                    f"got {c!r}."
                )
        if len(set(map(repr, self.choices))) != len(self.choices):
            raise SpaceError(
                f"parameter {name!r}: choices must be unique, got {list(self.choices)}."
            )

    def index(self, value: Any) -> int:
        for i, c in enumerate(self.choices):
            if (c == value and type(c) is type(value)) or (c is None and value is None):
                return i
        for i, c in enumerate(self.choices):  # 1 == 1.0 when types differ (e.g. JSON floats)
            if c == value:
                return i
        raise ValueError(value)

    def contains(self, value: Any) -> bool:
        try:
            self.index(value)
        except ValueError:
            return False
        return True

    def to_unit(self, value: Any) -> float:
        return (self.index(value) + 0.5) / len(self.choices)

    def from_unit(self, u: float) -> Any:
        k = len(self.choices)
        return self.choices[min(max(int(float(u) * k), 0), k - 1)]

    def grid_values(self, points: int) -> list[Any]:
        return list(self.choices)

    def _body(self) -> dict[str, Any]:
        return {"choices": list(self.choices)}
