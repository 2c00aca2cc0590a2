"""Exceptions raised by hpo.

Every error a user can cause is an :class:`HpoError`; its message is one sentence that names
what was wrong (the parameter, the rule, the value received) and how to fix it. The CLI turns
an ``HpoError`` into that one line and exit code 2.
"""

from __future__ import annotations

__all__ = [
    "DuplicatedStudyError",
    "HpoError",
    "PrunerError",
    "SearchExhausted",
    "SpaceError",
    "StorageError",
    "StrategyError",
    "StudyMismatchError",
    "StudyNotFoundError",
    "TrialPruned",
]


class HpoError(Exception):
    """Base class of every error hpo raises on purpose."""


class SpaceError(HpoError, ValueError):
    """A search space (or a parameter value) breaks a rule: names the parameter and the file."""


class StrategyError(HpoError, ValueError):
    """An unknown strategy name or a bad strategy option."""


class PrunerError(HpoError, ValueError):
    """An unknown pruner name or a bad pruner option (names the option, the rule and the value)."""


class StorageError(HpoError):
    """The study store could not be opened, read or written (bad URL, unreachable database...)."""


class StudyNotFoundError(StorageError, KeyError):
    """No study with the given name exists in the store."""

    def __str__(self) -> str:  # KeyError quotes its message; we want the plain sentence.
        return str(self.args[0]) if self.args else ""


class DuplicatedStudyError(StorageError):
    """A study with the given name already exists (and ``load_if_exists`` was not set)."""


class StudyMismatchError(HpoError):
    """A study was reopened with a different space, direction or strategy than it was made with."""


class SearchExhausted(HpoError):
    """The strategy has nothing left to propose (for example a grid whose points are all taken)."""


class TrialPruned(Exception):
    """Raise inside an objective to end the trial as *pruned* (stopped early on purpose)."""
