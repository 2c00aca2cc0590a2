"""The ``hpo`` command (Typer). Commands are thin: parse, call the library, print.

Exit codes: 0 success, 1 failure (an unexpected error), 2 bad usage or input (a clear
one-line message), 130 interrupted by Ctrl-C (the study is saved; rerun to resume).
"""

from __future__ import annotations

from hpo.cli._app import app, main

__all__ = ["app", "main"]
