"""Making, reopening, listing and deleting studies: ``create_study``, ``load_study``,
``list_studies``, ``delete_study`` and the study-name rule (re-exported by :mod:`hpo.study`)."""

from __future__ import annotations

import datetime as _dt
import logging
import re
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from hpo.exceptions import (
    DuplicatedStudyError,
    HpoError,
    SpaceError,
    StorageError,
    StudyMismatchError,
)
from hpo.pruners import BasePruner, Pruner, epoch_budget, get_pruner
from hpo.space import Param, SearchSpace, load_space
from hpo.storage import Store, StudyRecord, StudySummary, get_store, mask_url
from hpo.strategies import Strategy, get_strategy
from hpo.study import Study
from hpo.trial import Direction
from hpo.trial._checkpoints import Checkpointing, default_checkpoint_dir, study_folder

log = logging.getLogger("hpo")


def _as_space(space: SearchSpace | Mapping[str, Any] | str | Path) -> SearchSpace:
    if isinstance(space, SearchSpace):
        return space
    if isinstance(space, (str, Path)):
        return load_space(space)
    if isinstance(space, Mapping):
        if all(isinstance(v, Param) for v in space.values()):
            return SearchSpace(space)
        return SearchSpace.from_dict(space)
    raise SpaceError(f"space must be a SearchSpace, a mapping or a name/path, got {space!r}.")


#: What a new study may be named: what the HTTP API's paths, MLflow's search filters and a
#: shell take without quoting (issue 17). Studies stored before the rule keep their names.
STUDY_NAME_RULE = (
    "1 to 128 characters: letters, digits and _ . : @ + = -, starting with a letter or digit"
)
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:@+=-]{0,127}")


def check_study_name(name: Any) -> str:
    """``name`` if it is a valid name for a new study.

    Raises:
        HpoError: it breaks :data:`STUDY_NAME_RULE`; the message names the rule and the name.
    """
    if not isinstance(name, str) or _NAME_RE.fullmatch(name) is None:
        bad = ""
        if isinstance(name, str) and name:
            odd = sorted({c for c in name if not re.fullmatch(r"[A-Za-z0-9_.:@+=-]", c)})
            if odd:
                bad = f" ({', '.join(map(repr, odd))} not allowed)"
        raise HpoError(f"a study name must be {STUDY_NAME_RULE}; got {name!r}{bad}.")
    return name


def _auto_name() -> str:
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    return f"study-{stamp}-{secrets.token_hex(2)}"


def _describe_difference(stored: Mapping[str, Any], given: Mapping[str, Any]) -> str:
    for k in list(stored) + [k for k in given if k not in stored]:
        if k not in given:
            return f"parameter {k!r} is missing from the given space"
        if k not in stored:
            return f"parameter {k!r} is not in the stored space"
        if stored[k] != given[k]:
            return f"parameter {k!r} differs (stored {stored[k]}, given {given[k]})"
    return "parameter order differs"


def create_study(
    space: SearchSpace | Mapping[str, Any] | str | Path | None = None,
    strategy: str | Strategy = "bayes",
    direction: str | Direction = "minimize",
    storage: str | Store | None = None,
    name: str | None = None,
    seed: int | None = 0,
    *,
    load_if_exists: bool = False,
    pruner: str | Pruner | None = None,
    strategy_options: Mapping[str, Any] | None = None,
    pruner_options: Mapping[str, Any] | None = None,
    meta: Mapping[str, Any] | None = None,
) -> Study:
    """Create a study (or reopen it with ``load_if_exists=True``).

    Args:
        space: A :class:`SearchSpace`, a mapping of parameters, or a named space / YAML path.
            May be omitted when reopening.
        strategy: ``"grid" | "random" | "bayes" | "tpe"`` or a :class:`Strategy`.
        direction: ``"minimize"`` or ``"maximize"``.
        storage: ``None`` (in memory), a URL (``sqlite:///hpo.db``, ``postgresql://...``)
            or a store.
        name: The study's unique name in the store; made up when omitted. A new study's name
            must keep :data:`STUDY_NAME_RULE`.
        seed: Seeds every random choice; ``None`` picks one (and stores it).
        load_if_exists: Reopen an existing study of that name instead of failing. The space
            and direction must match what the study was made with.
        pruner: Stops unpromising trials early: ``"none"`` (the default, also ``None``),
            ``"median"``, ``"asha"``, ``"hyperband"`` or a pruner object (see
            :mod:`hpo.pruners`). Its budget-dependent defaults (ASHA's ``max_resource``) come
            from the space's epoch budget. A new study stores it, so that :func:`load_study`
            prunes the same way; reopening uses the one given here.
        strategy_options: Options of the strategy (e.g. ``{"points": 7}`` for grid).
        pruner_options: Options of a pruner given by name (e.g. ``{"reduction_factor": 3}``).
        meta: Free-form data kept with the study (the CLI stores model, dataset, budget).

    Raises:
        HpoError: a new study's name breaks :data:`STUDY_NAME_RULE`.
        DuplicatedStudyError: the name is taken and ``load_if_exists`` is False.
        StudyMismatchError: reopening with another space or direction.
        PrunerError: unknown pruner or a bad pruner setting.
    """
    store = get_store(storage)
    direction = Direction.parse(direction)
    strat = get_strategy(strategy, **dict(strategy_options or {}))
    prn = get_pruner(pruner, **dict(pruner_options or {}))
    if seed is None:
        seed = int(np.random.SeedSequence().entropy % (2**31))  # type: ignore[operator]
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise HpoError(f"seed must be a non-negative integer or None, got {seed!r}.")
    name = _auto_name() if name is None else name
    sp = _as_space(space) if space is not None else None
    if load_if_exists:
        try:
            record = store.get_study(name)
        except StorageError as e:
            if not isinstance(e, KeyError):
                raise
        else:
            return _reopen(store, record, sp, strat, direction, prn)
    if sp is None:
        raise SpaceError("create_study needs a space for a new study.")
    full_meta = {**sp.meta, **dict(meta or {})}
    if sp.name:
        full_meta.setdefault("space_name", sp.name)
    if sp.description:
        full_meta.setdefault("space_description", sp.description)
    prn = _for_budget(prn, sp, full_meta)
    check_study_name(name)
    # hpo's own pruners are stored (a pruner object of the user's own is not)
    stored = prn if isinstance(prn, BasePruner) else None
    try:
        record = store.create_study(
            name=name,
            direction=direction,
            space=sp.to_dict(),
            strategy=strat.name,
            strategy_options=strat.options(),
            seed=int(seed),
            meta=full_meta,
            pruner=stored.name if stored is not None else None,
            pruner_options=stored.options() if stored is not None else None,
        )
    except DuplicatedStudyError:
        if not load_if_exists:
            raise DuplicatedStudyError(
                f"a study named {name!r} already exists in {mask_url(store.url)}; "
                "pass load_if_exists=True (the CLI resumes it with the same --study) "
                "or choose another name."
            ) from None
        record = store.get_study(name)  # created by another process a moment ago
        return _reopen(store, record, sp, strat, direction, prn)
    return Study(store, record, sp, strat, prn)


def _for_budget(pruner: Pruner, space: SearchSpace | None, meta: Mapping[str, Any]) -> Pruner:
    """The pruner with the study's epoch budget filled in and checked (hpo's own pruners)."""
    if isinstance(pruner, BasePruner):
        return pruner.for_budget(epoch_budget(space, meta))
    return pruner


def _stored_pruner(record: StudyRecord) -> dict[str, Any] | None:
    """The pruner the study was made with: ``{"name": ..., "options": {...}}``, or None."""
    if record.pruner is None:
        return None
    return {"name": record.pruner, "options": dict(record.pruner_options)}


def _reopen(
    store: Store,
    record: StudyRecord,
    space: SearchSpace | None,
    strategy: Strategy,
    direction: Direction,
    pruner: Pruner,
) -> Study:
    stored_space = SearchSpace.from_dict(record.space)
    if space is not None and space.to_dict() != stored_space.to_dict():
        diff = _describe_difference(stored_space.to_dict(), space.to_dict())
        raise StudyMismatchError(
            f"study {record.name!r} was created with a different space: {diff}; "
            "reuse the original space or start a new study name."
        )
    if direction is not record.direction:
        raise StudyMismatchError(
            f"study {record.name!r} was created to {record.direction.value}, not "
            f"{direction.value}; use direction={record.direction.value!r} or a new study name."
        )
    if space is not None:
        stored_space.name, stored_space.description = space.name, space.description
        stored_space.spec = space.spec
    if strategy.name != record.strategy:
        log.info(
            "study %r was made with strategy %r; this process asks %r",
            record.name,
            record.strategy,
            strategy.name,
        )
    pruner = _for_budget(pruner, stored_space, record.meta)
    stored = _stored_pruner(record)
    if isinstance(pruner, BasePruner) and stored is not None and stored["name"] != pruner.name:
        log.info(
            "study %r was made with pruner %r; this process prunes with %r",
            record.name,
            stored["name"],
            pruner.name,
        )
    return Study(store, record, stored_space, strategy, pruner)


def load_study(
    name: str,
    storage: str | Store | None,
    *,
    strategy: str | Strategy | None = None,
    pruner: str | Pruner | None = None,
    pruner_options: Mapping[str, Any] | None = None,
) -> Study:
    """Reopen a stored study, with the strategy and the pruner (and their options) it was
    created with, unless ``strategy`` / ``pruner`` say otherwise (``pruner="none"`` turns
    pruning off).

    Raises:
        StudyNotFoundError: no such study in the store.
        PrunerError: unknown pruner or a bad pruner setting.
    """
    store = get_store(storage)
    record = store.get_study(name)
    space = SearchSpace.from_dict(
        record.space,
        name=record.meta.get("space_name"),
        description=record.meta.get("space_description"),
        spec=record.spec,
    )
    strat = (
        get_strategy(record.strategy, **dict(record.strategy_options))
        if strategy is None
        else get_strategy(strategy)
    )
    stored = _stored_pruner(record)
    if pruner is None and stored is not None:
        prn = get_pruner(stored["name"], **dict(stored.get("options") or {}))
    else:
        prn = get_pruner(pruner, **dict(pruner_options or {}))
    return Study(store, record, space, strat, _for_budget(prn, space, record.meta))


def list_studies(storage: str | Store | None) -> list[StudySummary]:
    """Every study in the store, oldest first, with trial counts and best values."""
    return get_store(storage).list_studies()


def delete_study(
    name: str, storage: str | Store | None, *, checkpoint_dir: str | None = None
) -> list[str]:
    """Delete a study, its trials and their checkpoints (the folders its trials recorded,
    and ``ROOT/NAME`` of the default location or of ``checkpoint_dir``); the checkpoint
    folders removed. Raises StudyNotFoundError."""
    store = get_store(storage)
    record = store.get_study(name)
    folders: set[str] = set()
    for t in store.get_trials(record.id):
        info = t.system_attrs.get("checkpoint")
        if isinstance(info, Mapping) and info.get("dir"):
            # The study's whole folder goes (also where folders are not removed with their
            # last file, as on an MLflow server).
            folders.add(study_folder(str(info["dir"])))
    for root in (default_checkpoint_dir(store.url), checkpoint_dir):
        if root is not None:
            folders.add(Checkpointing(root).study_dir(name))
    store.delete_study(name)
    removed = []
    for folder in sorted(folders):
        try:
            if Checkpointing.remove_tree(folder):
                removed.append(folder)
        except Exception as e:
            log.warning("could not delete checkpoints %s: %s", folder, e)
    return removed
