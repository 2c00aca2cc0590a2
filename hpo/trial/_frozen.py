from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from hpo.trial._state import TrialState

__all__ = ["INTERRUPTED_ATTR", "PAUSED_ATTR", "FrozenTrial"]

#: The system attribute that marks a FAILED trial as interrupted (see
#: :attr:`FrozenTrial.interrupted`); written by ``hpo.executors._recovery.mark_interrupted``.
#: A plain attribute, not a state of its own, so stores written before it read as they are.
INTERRUPTED_ATTR = "interrupted"

#: The system attribute that marks a PRUNED trial as paused at a rung (see
#: :attr:`FrozenTrial.paused`): the step it paused at, written by ``Study.tell``; cleared (0)
#: when the trial is promoted and goes on.
PAUSED_ATTR = "paused"

_EMPTY: Mapping[str, Any] = MappingProxyType({})


@dataclass(frozen=True)
class FrozenTrial:
    """An immutable record of one trial, as read from the store.

    Handed to strategies, pruners, the dashboard and the CLI. A later write to the store never
    changes a ``FrozenTrial`` already read: read the study again to see it.

    Attributes:
        number: Position of the trial in its study, from 0, without gaps.
        state: Where the trial is in its life.
        params: The *active* parameters only (inactive conditional ones are absent).
        value: The objective value; ``None`` unless the trial completed (or was pruned after
            reporting, in which case it is the last intermediate value).
        intermediate: Values reported by ``trial.report(value, step)``, keyed by step.
        started_at / finished_at: UTC timestamps; ``finished_at`` is ``None`` while running.
        error: Why the trial failed (exception type and message), ``None`` otherwise.
        user_attrs: What the objective stored with ``trial.set_user_attr``.
        system_attrs: What hpo itself stored (host, device, ``interrupted``...).
        trial_id: The trial's key in its store (``None`` for a trial that was never stored);
            what ``Store`` methods that write a trial take.
    """

    number: int
    state: TrialState
    params: Mapping[str, Any]
    value: float | None = None
    intermediate: Mapping[int, float] = field(default_factory=lambda: MappingProxyType({}))
    started_at: _dt.datetime | None = None
    finished_at: _dt.datetime | None = None
    error: str | None = None
    user_attrs: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)
    system_attrs: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)
    trial_id: int | None = None

    @property
    def duration(self) -> _dt.timedelta | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return self.finished_at - self.started_at

    @property
    def last_step(self) -> int | None:
        return max(self.intermediate) if self.intermediate else None

    @property
    def interrupted(self) -> bool:
        """Whether the trial stopped by no doing of its own (Ctrl-C, its process or worker
        gone): a FAILED trial that counts neither in the budget nor for the model, and may
        resume from its checkpoint. The one way every part of hpo reads it."""
        return bool(self.system_attrs.get(INTERRUPTED_ATTR, False))

    @property
    def paused(self) -> bool:
        """Whether the trial waits at a rung of a pruner that pauses (``pause=True``): PRUNED
        for now, its checkpoint kept, and it goes on from there if it is promoted."""
        return self.state is TrialState.PRUNED and bool(self.system_attrs.get(PAUSED_ATTR))

    @property
    def promotions(self) -> int:
        """How many times the trial went on after a pause at a rung."""
        runs = self.system_attrs.get("resumed") or []
        return sum(1 for r in runs if isinstance(r, Mapping) and r.get("promoted"))

    @property
    def resume_summary(self) -> str:
        """``resumed 2x, promoted, 5 epochs saved`` for a trial that went on from its
        checkpoints (after an interruption, or promoted after a pause); empty otherwise.
        Epochs saved are those it did not train again (the checkpoints' steps)."""
        runs = [r for r in self.system_attrs.get("resumed") or [] if isinstance(r, Mapping)]
        if not runs:
            return ""
        saved = sum(int(r.get("step", 0)) for r in runs)
        promoted = sum(1 for r in runs if r.get("promoted"))
        parts = []
        if len(runs) > promoted:
            n = len(runs) - promoted
            parts.append("resumed" if n == 1 else f"resumed {n}x")
        if promoted:
            parts.append("promoted" if promoted == 1 else f"promoted {promoted}x")
        return f"{', '.join(parts)}, {saved} epoch{'s' if saved != 1 else ''} saved"
