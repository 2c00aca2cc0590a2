"""Read and check one value of a params dict: the rules every model builder and the training loop
share (they live here, in hpo, so that `hpo.models` depends on hpo and never the other way).

Every reader takes the params mapping, the parameter's name and a default used when the
parameter is absent (a conditional parameter that is inactive, or a knob the space does not
search). A present value that breaks the rule raises :class:`hpo.exceptions.SpaceError` with one
sentence naming the parameter, the rule and the value, for example
``parameter 'activation': must be one of ['relu', 'tanh'], got 'foo'.``
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from hpo.exceptions import SpaceError

__all__ = ["get_bool", "get_choice", "get_float", "get_int"]

T = TypeVar("T")


def get_choice(params: Mapping[str, Any], name: str, choices: Sequence[T], default: T) -> T:
    """``params[name]`` (or ``default``), which must equal one of ``choices``."""
    value = params.get(name, default)
    for choice in choices:
        if type(value) is type(choice) and value == choice:
            return choice
    raise SpaceError(f"parameter {name!r}: must be one of {list(choices)}, got {value!r}.")


def get_int(params: Mapping[str, Any], name: str, low: int, high: int, default: int) -> int:
    """``params[name]`` (or ``default``) as an int in ``[low, high]`` (both inclusive).

    An integral float (``3.0``, as a numeric strategy may give) counts as an int; a bool does not.
    """
    value = params.get(name, default)
    as_int: int | None = None
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        as_int = int(value)
    elif isinstance(value, numbers.Real) and not isinstance(value, bool):
        f = float(value)
        if math.isfinite(f) and f.is_integer():
            as_int = int(f)
    if as_int is None or not low <= as_int <= high:
        raise SpaceError(
            f"parameter {name!r}: must be an integer in [{low}, {high}], got {value!r}."
        )
    return as_int


def get_float(
    params: Mapping[str, Any],
    name: str,
    low: float,
    high: float,
    default: float,
    *,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """``params[name]`` (or ``default``) as a finite float between ``low`` and ``high``.

    Both ends are inclusive unless ``low_open`` / ``high_open`` say otherwise; ``high`` may be
    ``math.inf`` (no upper limit, but the value must still be finite).
    """
    value = params.get(name, default)
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
    f = float(value) if ok else math.nan
    ok = ok and math.isfinite(f)
    ok = ok and (low < f if low_open else low <= f) and (f < high if high_open else f <= high)
    if not ok:
        left = "(" if low_open else "["
        right = ")" if high_open or math.isinf(high) else "]"
        raise SpaceError(
            f"parameter {name!r}: must be a finite number in {left}{low:g}, {high:g}{right}, "
            f"got {value!r}."
        )
    return f


def get_bool(params: Mapping[str, Any], name: str, default: bool) -> bool:
    """``params[name]`` (or ``default``) as a bool; ``0``/``1`` count, other values do not."""
    value = params.get(name, default)
    if isinstance(value, bool):
        return value
    if isinstance(value, numbers.Integral) and int(value) in (0, 1):
        return bool(value)
    raise SpaceError(f"parameter {name!r}: must be true or false, got {value!r}.")
