"""The study store: studies, trials and their history in SQL (SQLAlchemy 2 + Alembic)."""

from __future__ import annotations

from hpo.storage._base import Evaluation, Store, StudyRecord, StudySummary
from hpo.storage._sql import SQLStore, mask_url

__all__ = [
    "Evaluation",
    "SQLStore",
    "Store",
    "StudyRecord",
    "StudySummary",
    "get_store",
    "mask_url",
]


def get_store(storage: str | Store | None) -> Store:
    """A store from a URL (``None`` = in memory), or the store itself."""
    if isinstance(storage, Store):
        return storage
    return SQLStore(storage)
