"""ExperimentSpec: what a named space says beyond its parameters, parsed once and typed.

A space's YAML holds, next to ``params:``, the experiment it is made for: which model to build,
on which data set, the metric and its direction, how many trials, the per-trial budget, the
pruner to use unless told otherwise, and a time limit::

    model: cnn
    dataset: mnist
    metric: val_accuracy
    direction: maximize
    trials: 40
    default_pruner: asha
    timeout: 540
    budget: {epochs: 12, max_train_images: null}

:class:`ExperimentSpec` is that block, read once (``load_space(...).spec``). Keys it does not
know are kept in ``extra``, so :meth:`ExperimentSpec.to_meta` gives back the mapping it was made
from (the ``meta`` that older code, the store and the HTTP API read).
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from hpo.exceptions import HpoError, SpaceError
from hpo.trial import Direction

__all__ = ["ExperimentSpec"]

# The typed fields and the YAML key each is read from (the pruner's key says it is a default:
# `--pruner` and `pruner=` choose another).
_KEYS = {
    "model": "model",
    "dataset": "dataset",
    "metric": "metric",
    "direction": "direction",
    "trials": "trials",
    "budget": "budget",
    "pruner": "default_pruner",
    "timeout": "timeout",
}


def _text(key: str, v: Any) -> str:
    if not isinstance(v, str) or not v:
        raise SpaceError(f"space meta {key!r}: must be a non-empty string, got {v!r}.")
    return v


def _direction(key: str, v: Any) -> Direction:
    try:
        return Direction.parse(v)
    except HpoError:
        raise SpaceError(
            f"space meta {key!r}: must be one of ['minimize', 'maximize'], got {v!r}."
        ) from None


def _trials(key: str, v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 1:
        raise SpaceError(f"space meta {key!r}: must be an integer >= 1, got {v!r}.")
    return int(v)


def _budget(key: str, v: Any) -> dict[str, Any]:
    if not isinstance(v, Mapping):
        raise SpaceError(f"space meta {key!r}: must be a mapping, got {v!r}.")
    return {str(k): x for k, x in v.items()}


def _timeout(key: str, v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0:
        raise SpaceError(f"space meta {key!r}: must be seconds > 0, got {v!r}.")
    return v  # as written (540 stays 540 in the meta it gives back)


_PARSE = {
    "model": _text,
    "dataset": _text,
    "metric": _text,
    "direction": _direction,
    "trials": _trials,
    "budget": _budget,
    "pruner": _text,
    "timeout": _timeout,
}


@dataclass(frozen=True)
class ExperimentSpec:
    """The experiment a space is made for. Every field is ``None`` where the space does not say.

    Attributes:
        model: The model builder (a key of ``hpo.models.MODELS``: ``mlp``, ``cnn``, ``rnn``).
        dataset: The data set the objective trains on (``mnist``; the objective's default).
        metric: What a trial's value measures (``val_accuracy``; the objective's default).
        direction: Whether a larger or a smaller value is better.
        trials: The study's total number of trials.
        budget: Per-trial budget: ``epochs``, ``max_train_images`` (checked by the objective).
        pruner: The pruner used unless one is asked for (YAML key ``default_pruner``).
        timeout: Seconds after which no new trial starts.
        extra: Every other key of the mapping it was read from, as given.
    """

    model: str | None = None
    dataset: str | None = None
    metric: str | None = None
    direction: Direction | None = None
    trials: int | None = None
    budget: Mapping[str, Any] | None = None
    pruner: str | None = None
    timeout: float | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_meta(cls, meta: Mapping[str, Any] | None, *, strict: bool = True) -> ExperimentSpec:
        """Read a space's meta (a YAML file's keys but ``params``, ``name`` and ``description``).

        ``None`` values count as absent. With ``strict=False`` (what a stored study's meta is
        read with) a value of the wrong type is kept in ``extra`` instead of raising.

        Raises:
            SpaceError: a value of the wrong type; the message names the key and the value.
        """
        if meta is None:
            return cls()
        if not isinstance(meta, Mapping):
            raise SpaceError(f"space meta must be a mapping, got {meta!r}.")
        values: dict[str, Any] = {}
        extra: dict[str, Any] = {}
        keys = {key: name for name, key in _KEYS.items()}
        for key, v in meta.items():
            name = keys.get(str(key))
            if name is None:
                extra[str(key)] = v
                continue
            if v is None:
                continue
            try:
                values[name] = _PARSE[name](str(key), v)
            except SpaceError:
                if strict:
                    raise
                extra[str(key)] = v
        return cls(**values, extra=extra)

    def to_meta(self) -> dict[str, Any]:
        """The spec as the plain mapping it was read from (the YAML's keys)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            if f.name == "extra":
                continue
            v = getattr(self, f.name)
            if v is None:
                continue
            if isinstance(v, Direction):
                v = v.value
            elif isinstance(v, Mapping):
                v = dict(v)
            out[_KEYS[f.name]] = v
        out.update(self.extra)
        return out

    @property
    def epochs(self) -> int | None:
        """The budget's ``epochs`` when it is a whole number >= 1, else None."""
        epochs = (self.budget or {}).get("epochs")
        if isinstance(epochs, numbers.Integral) and not isinstance(epochs, bool):
            return int(epochs) if int(epochs) >= 1 else None
        return None
