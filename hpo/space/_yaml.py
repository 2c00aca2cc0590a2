"""Load search spaces from YAML: a named space shipped in ``hpo.search_spaces`` or a file."""

from __future__ import annotations

import importlib.resources
from pathlib import Path
from typing import Any

import yaml

from hpo.exceptions import SpaceError
from hpo.space._space import SearchSpace
from hpo.space._spec import ExperimentSpec

__all__ = ["available_spaces", "load_space", "space_from_yaml"]

_PACKAGE = "hpo.search_spaces"


def available_spaces() -> dict[str, str]:
    """Named spaces shipped with hpo: ``{name: one-line description}``."""
    out: dict[str, str] = {}
    root = importlib.resources.files(_PACKAGE)
    for entry in sorted(root.iterdir(), key=lambda e: e.name):
        if entry.name.endswith((".yaml", ".yml")):
            name = entry.name.rsplit(".", 1)[0]
            try:
                data = yaml.safe_load(entry.read_text(encoding="utf-8")) or {}
                out[name] = str(data.get("description", "")).strip()
            except yaml.YAMLError:
                out[name] = "(unreadable)"
    return out


def load_space(name_or_path: str | Path) -> SearchSpace:
    """Load a named space (``"cnn_mnist"``) or a YAML file (``"path/to/space.yaml"``).

    Raises:
        SpaceError: unknown name, unreadable file, broken YAML or an invalid parameter; the
            message names the file and the parameter.
    """
    s = str(name_or_path)
    path = Path(s)
    if path.suffix in {".yaml", ".yml"} or path.exists() or "/" in s:
        if not path.is_file():
            raise SpaceError(f"space file {s!r} does not exist.")
        return space_from_yaml(path.read_text(encoding="utf-8"), source=str(path))
    root = importlib.resources.files(_PACKAGE)
    for ext in (".yaml", ".yml"):
        entry = root / f"{s}{ext}"
        if entry.is_file():
            return space_from_yaml(entry.read_text(encoding="utf-8"), source=f"{s}{ext}")
    names = sorted(available_spaces())
    raise SpaceError(f"unknown space {s!r}: must be one of {names} or a path to a YAML file.")


def space_from_yaml(text: str, source: str = "<string>") -> SearchSpace:
    """Parse a space from YAML text; ``source`` names the file in errors."""
    try:
        data: Any = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise SpaceError(f"{source}: broken YAML{where}: {problem}.") from None
    if not isinstance(data, dict):
        raise SpaceError(f"{source}: expected a mapping with a `params:` section, got {data!r}.")
    params = data.get("params")
    if params is None:
        # A bare mapping of parameters is accepted too.
        if all(isinstance(v, dict) and "type" in v for v in data.values()):
            params, data = data, {}
        else:
            raise SpaceError(f"{source}: missing the `params:` section.")
    meta = {k: v for k, v in data.items() if k not in {"params", "name", "description"}}
    try:
        spec = ExperimentSpec.from_meta(meta)  # parsed once: everything but the parameters
        return SearchSpace.from_dict(
            params,
            name=data.get("name") or Path(source).stem,
            description=data.get("description"),
            spec=spec,
        )
    except SpaceError as e:
        raise SpaceError(f"{source}: {e}") from None
