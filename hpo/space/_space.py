"""SearchSpace: named, ordered parameters with (possibly nested) conditions."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from hpo.exceptions import SpaceError
from hpo.space._params import Categorical, Float, Int, Param
from hpo.space._spec import ExperimentSpec

__all__ = ["GridIndex", "SearchSpace"]

_TYPES: dict[str, type[Param]] = {"float": Float, "int": Int, "categorical": Categorical}


class SearchSpace(Mapping[str, Param]):
    """An ordered mapping of parameter names to parameters.

    Order matters: a parameter may only be conditioned on parameters defined before it, so
    walking the space in order always decides a parent before its children.

    Args:
        params: ``{name: hpo.Float(...) | hpo.Int(...) | hpo.Categorical(...)}``.
        name: Optional name (named spaces carry theirs).
        description: One line shown by ``hpo spaces``.
        meta: Everything else a named space declares (model, dataset, metric, direction,
            budget...), read into :attr:`spec`. Not part of the space's identity.
        spec: The experiment, already read (instead of ``meta``).

    Raises:
        SpaceError: a parameter breaks a rule; the message names it.
    """

    def __init__(
        self,
        params: Mapping[str, Param],
        *,
        name: str | None = None,
        description: str | None = None,
        meta: Mapping[str, Any] | None = None,
        spec: ExperimentSpec | None = None,
    ) -> None:
        if not isinstance(params, Mapping):
            raise SpaceError(f"a search space is a mapping of names to parameters, got {params!r}.")
        if not params:
            raise SpaceError("a search space needs at least one parameter.")
        self._params: dict[str, Param] = {}
        for pname, p in params.items():
            if not isinstance(pname, str) or not pname:
                raise SpaceError(f"parameter names must be non-empty strings, got {pname!r}.")
            if not isinstance(p, Param):
                raise SpaceError(
                    f"parameter {pname!r}: expected hpo.Float, hpo.Int or hpo.Categorical, "
                    f"got {p!r}."
                )
            p.validate(pname)
            self._params[pname] = p
        self._check_conditions()
        self.name = name
        self.description = description
        #: The experiment the space is made for (model, data set, metric, trials, budget...).
        self.spec = spec if spec is not None else ExperimentSpec.from_meta(meta)

    @property
    def meta(self) -> dict[str, Any]:
        """:attr:`spec` as a plain mapping (the YAML's keys), for code that reads ``meta``."""
        return self.spec.to_meta()

    @meta.setter
    def meta(self, value: Mapping[str, Any] | None) -> None:
        self.spec = ExperimentSpec.from_meta(value)

    # -- Mapping protocol ----------------------------------------------------------------
    def __getitem__(self, key: str) -> Param:
        return self._params[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._params)

    def __len__(self) -> int:
        return len(self._params)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SearchSpace) and self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return hash(repr(self.to_dict()))

    def __repr__(self) -> str:
        inner = ", ".join(f"{k!r}: {v!r}" for k, v in self._params.items())
        return f"SearchSpace({{{inner}}})"

    # -- rules ---------------------------------------------------------------------------
    def _check_conditions(self) -> None:
        names = list(self._params)
        # A cycle first (its own message), then order: parents must come before children.
        graph = {n: [c.parent for c in self._params[n].conditions] for n in names}
        for start in names:
            stack, seen = [(start, [start])], set()
            while stack:
                node, path = stack.pop()
                for parent in graph.get(node, []):
                    if parent == start:
                        cycle = " -> ".join([*path, parent])
                        raise SpaceError(f"parameter {start!r}: conditions form a cycle ({cycle}).")
                    if parent in graph and parent not in seen:
                        seen.add(parent)
                        stack.append((parent, [*path, parent]))
        position = {n: i for i, n in enumerate(names)}
        for n in names:
            p = self._params[n]
            for c in p.conditions:
                if c.parent not in position:
                    raise SpaceError(
                        f"parameter {n!r}: condition on unknown parameter {c.parent!r} "
                        f"(known: {names})."
                    )
                if position[c.parent] > position[n]:
                    raise SpaceError(
                        f"parameter {n!r}: condition on {c.parent!r}, which is defined later; "
                        f"define {c.parent!r} before {n!r}."
                    )
                parent_param = self._params[c.parent]
                if c.op == "in":
                    bad = [v for v in c.operand if not parent_param.contains(v)]
                    if bad:
                        raise SpaceError(
                            f"parameter {n!r}: condition value(s) {bad} can never be taken by "
                            f"{c.parent!r} ({parent_param.to_dict()})."
                        )

    # -- activity ------------------------------------------------------------------------
    def is_active(self, name: str, assigned: Mapping[str, Any]) -> bool:
        """Whether ``name`` is active given the values already assigned to earlier params.

        A parameter is active when every parent is active (present in ``assigned``) and
        satisfies its condition. Conditions therefore nest.
        """
        return all(
            c.parent in assigned and c.matches(assigned[c.parent])
            for c in self._params[name].conditions
        )

    def active_names(self, params: Mapping[str, Any]) -> list[str]:
        assigned: dict[str, Any] = {}
        for n in self._params:
            if self.is_active(n, assigned) and n in params:
                assigned[n] = params[n]
        return list(assigned)

    def check_params(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Return ``params`` restricted to the active ones, in space order.

        Raises:
            SpaceError: an active parameter is missing or out of range, or an unknown
                parameter is given.
        """
        unknown = [k for k in params if k not in self._params]
        if unknown:
            raise SpaceError(f"unknown parameter(s) {unknown}; the space has {list(self._params)}.")
        out: dict[str, Any] = {}
        for n, p in self._params.items():
            if not self.is_active(n, out):
                continue
            if n not in params:
                raise SpaceError(f"parameter {n!r} is active but missing.")
            v = params[n]
            if not p.contains(v):
                raise SpaceError(f"parameter {n!r}: value {v!r} is outside {p.to_dict()}.")
            if isinstance(p, Int):
                v = int(v)
            elif isinstance(p, Float):
                v = float(v)
            elif isinstance(p, Categorical):
                v = p.choices[p.index(v)]
            out[n] = v
        return out

    # -- sampling ------------------------------------------------------------------------
    def from_units(self, units: Mapping[str, float] | np.ndarray) -> dict[str, Any]:
        """Decode a point of the unit box (one coordinate per parameter, in order)."""
        out: dict[str, Any] = {}
        for i, (n, p) in enumerate(self._params.items()):
            u = units[i] if isinstance(units, np.ndarray) else units[n]
            if self.is_active(n, out):
                out[n] = p.from_unit(float(u))
        return out

    def sample(self, rng: np.random.Generator) -> dict[str, Any]:
        """Draw the active parameters uniformly (log-uniformly on log ranges)."""
        return self.from_units(rng.random(len(self._params)))

    def grid(self, points: int = 5) -> Iterator[dict[str, Any]]:
        """Every active combination, once each, in a fixed order (the last parameter fastest).

        Continuous ranges are cut into ``points`` values (a log grid for log ranges); integer
        ranges with at most ``points`` values keep them all.
        """
        names = list(self._params)
        values = {n: self._params[n].grid_values(points) for n in names}

        def rec(i: int, assigned: dict[str, Any]) -> Iterator[dict[str, Any]]:
            if i == len(names):
                yield dict(assigned)
                return
            n = names[i]
            if not self.is_active(n, assigned):
                yield from rec(i + 1, assigned)
                return
            for v in values[n]:
                assigned[n] = v
                yield from rec(i + 1, assigned)
                del assigned[n]

        yield from rec(0, {})

    def grid_size(self, points: int = 5) -> int:
        """How many points :meth:`grid` yields, counted without making them."""
        return GridIndex(self, points).size

    def grid_point(self, index: int, points: int = 5) -> dict[str, Any]:
        """The ``index``-th point of :meth:`grid`, made without the ones before it."""
        return GridIndex(self, points).point(index)

    # -- serialisation -------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The parameters as plain data (what a YAML file's ``params:`` holds)."""
        return {n: p.to_dict() for n, p in self._params.items()}

    @classmethod
    def from_dict(
        cls,
        params: Mapping[str, Any],
        *,
        name: str | None = None,
        description: str | None = None,
        meta: Mapping[str, Any] | None = None,
        spec: ExperimentSpec | None = None,
    ) -> SearchSpace:
        """Build a space from plain data: ``{name: {type: float, low: .., high: ..}, ...}``."""
        if not isinstance(params, Mapping):
            raise SpaceError(f"`params` must be a mapping of parameter names, got {params!r}.")
        built: dict[str, Param] = {}
        for pname, entry in params.items():
            built[str(pname)] = _param_from_dict(str(pname), entry)
        return cls(built, name=name, description=description, meta=meta, spec=spec)


def _num(name: str, key: str, v: Any) -> Any:
    # YAML 1.1 reads `1e-4` (no dot) as a string; accept any string that is a number.
    if isinstance(v, str):
        try:
            f = float(v)
        except ValueError:
            raise SpaceError(f"parameter {name!r}: {key} must be a number, got {v!r}.") from None
        return int(f) if f.is_integer() and "." not in v and "e" not in v.lower() else f
    return v


def _param_from_dict(name: str, spec: Any) -> Param:
    if not isinstance(spec, Mapping):
        raise SpaceError(
            f"parameter {name!r}: expected a mapping with a `type` "
            f"(float, int or categorical), got {spec!r}."
        )
    kind = spec.get("type")
    if kind not in _TYPES:
        raise SpaceError(f"parameter {name!r}: type must be one of {sorted(_TYPES)}, got {kind!r}.")
    allowed = {
        "float": {"type", "low", "high", "log", "when"},
        "int": {"type", "low", "high", "log", "step", "when"},
        "categorical": {"type", "choices", "when"},
    }[kind]
    extra = sorted(set(spec) - allowed)
    if extra:
        raise SpaceError(
            f"parameter {name!r}: unknown key(s) {extra} for type {kind}; "
            f"allowed: {sorted(allowed)}."
        )
    when = spec.get("when")
    try:
        if kind == "float":
            for k in ("low", "high"):
                if k not in spec:
                    raise SpaceError(f"parameter {name!r}: `{k}` is required for type float.")
            return Float(
                _num(name, "low", spec["low"]),
                _num(name, "high", spec["high"]),
                log=spec.get("log", False),
                when=when,
            )
        if kind == "int":
            for k in ("low", "high"):
                if k not in spec:
                    raise SpaceError(f"parameter {name!r}: `{k}` is required for type int.")
            return Int(
                _num(name, "low", spec["low"]),
                _num(name, "high", spec["high"]),
                log=spec.get("log", False),
                step=_num(name, "step", spec.get("step", 1)),
                when=when,
            )
        if "choices" not in spec:
            raise SpaceError(f"parameter {name!r}: `choices` is required for type categorical.")
        return Categorical(spec["choices"], when=when)
    except SpaceError as e:
        msg = str(e)
        raise SpaceError(
            msg if msg.startswith("parameter ") else f"parameter {name!r}: {msg}"
        ) from None


_MISSING = object()


class GridIndex:
    """The grid of a space as a numbered sequence: index -> point and point -> index, in the
    order of :meth:`SearchSpace.grid`, without making the points in between (issue 17: the
    grid of ``mlp_mnist`` holds about 2.6e8 points; making them all took 23.7 GB).

    A mixed-radix number whose digits are the parameters' grid positions, except that a
    digit exists only where its parameter is active: the weight of a choice is the number of
    completions below it, counted once per distinct assignment of the parents that later
    conditions look at (memoised, so a space without conditions costs one count per param).
    """

    def __init__(self, space: SearchSpace, points: int) -> None:
        self.space = space
        self.names = list(space)
        self.values = [space[n].grid_values(points) for n in self.names]
        # For each position k, the earlier parameters that a condition at k or later reads:
        # the only part of an assignment the count of completions from k depends on.
        n = len(self.names)
        self._parents: list[tuple[str, ...]] = []
        for k in range(n + 1):
            later = {c.parent for name in self.names[k:] for c in space[name].conditions}
            self._parents.append(tuple(p for p in self.names[:k] if p in later))
        self._memo: dict[tuple[Any, ...], int] = {}
        self.size = self._count(0, {})

    def _count(self, k: int, assigned: dict[str, Any]) -> int:
        """How many grid points complete ``assigned`` (params before position ``k``)."""
        if k == len(self.names):
            return 1
        key = (k, *(_hashable(assigned.get(p, _MISSING)) for p in self._parents[k]))
        hit = self._memo.get(key)
        if hit is not None:
            return hit
        name = self.names[k]
        if not self.space.is_active(name, assigned):
            total = self._count(k + 1, assigned)
        else:
            total = 0
            for v in self.values[k]:
                assigned[name] = v
                total += self._count(k + 1, assigned)
            del assigned[name]
        self._memo[key] = total
        return total

    def point(self, index: int) -> dict[str, Any]:
        """The ``index``-th point (0-based).

        Raises:
            IndexError: ``index`` is outside ``[0, size)``.
        """
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < self.size:
            raise IndexError(f"grid index must be in [0, {self.size}), got {index!r}.")
        assigned: dict[str, Any] = {}
        for k, name in enumerate(self.names):
            if not self.space.is_active(name, assigned):
                continue
            for v in self.values[k]:
                assigned[name] = v
                below = self._count(k + 1, assigned)
                if index < below:
                    break
                index -= below
        return assigned

    def index(self, params: Mapping[str, Any]) -> int | None:
        """The index of ``params`` in the grid, or None when it is not a grid point."""
        assigned: dict[str, Any] = {}
        index = 0
        for k, name in enumerate(self.names):
            if not self.space.is_active(name, assigned):
                if name in params:
                    return None
                continue
            if name not in params:
                return None
            for v in self.values[k]:
                assigned[name] = v
                if _same(v, params[name]):
                    break
                index += self._count(k + 1, assigned)
            else:
                return None
        return None if len(params) != len(assigned) else index


def _hashable(v: Any) -> Any:
    # Grid values are numbers, strings, booleans or None; keep 1, 1.0 and True apart.
    return (type(v).__name__, v) if v is not _MISSING else v


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b
