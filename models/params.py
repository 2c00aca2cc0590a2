"""The params readers builders use; they live in :mod:`hpo.space._values` (re-exported here for
code that imports ``hpo.models.params``)."""

from __future__ import annotations

from hpo.space._values import get_bool, get_choice, get_float, get_int

__all__ = ["get_bool", "get_choice", "get_float", "get_int"]
