"""The error the data loaders raise."""

from __future__ import annotations

from hpo.exceptions import HpoError

__all__ = ["DataError"]


class DataError(HpoError, ValueError):
    """A data source is unusable: a folder without the IDX files, a file that is not IDX, a bad
    split fraction. The message is one sentence naming the file or argument and the rule."""
