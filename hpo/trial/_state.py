from __future__ import annotations

import enum

__all__ = ["Direction", "TrialState"]


class TrialState(str, enum.Enum):
    """The life of a trial: RUNNING, then exactly one of the three finished states."""

    RUNNING = "running"
    COMPLETE = "complete"
    PRUNED = "pruned"
    FAILED = "failed"

    @property
    def is_finished(self) -> bool:
        return self is not TrialState.RUNNING

    def __str__(self) -> str:
        return self.value


class Direction(str, enum.Enum):
    """Whether the objective is to be minimised or maximised."""

    MINIMIZE = "minimize"
    MAXIMIZE = "maximize"

    @classmethod
    def parse(cls, value: str | Direction) -> Direction:
        if isinstance(value, Direction):
            return value
        try:
            return cls(str(value).lower())
        except ValueError:
            from hpo.exceptions import HpoError

            raise HpoError(
                f"direction must be one of ['minimize', 'maximize'], got {value!r}."
            ) from None

    def better(self, a: float, b: float) -> bool:
        """True when ``a`` is strictly better than ``b``."""
        return a < b if self is Direction.MINIMIZE else a > b

    def __str__(self) -> str:
        return self.value
