"""Shared output of the benchmark scripts: the JSON file every script can write."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def write_json(path: Path | None, args: argparse.Namespace, **payload: Any) -> None:
    """Write ``payload`` plus the command's arguments to ``path`` (if given) and say so."""
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {"args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}}
    data.update(payload)
    path.write_text(json.dumps(data, indent=1))
    print(f"\nwrote {path}")
