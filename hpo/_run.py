"""run_study: what ``hpo run`` does, as one function a pipeline can call.

It loads the space, builds the strategy and the pruner (once, and before any data is loaded, so
a bad name or setting fails fast), names the study, wires the executor (Ray when asked for),
checkpoints and MLflow tracking, runs the search and, for a space with a ``model``, trains and
tests the final model on the test split the search never saw.

What it has to say goes to ``say`` as lines with rich markup (``[bold]...[/]``; the CLI prints
them with rich), warnings to ``warn``; by default both go to the ``hpo`` logger.
"""

from __future__ import annotations

import functools
import importlib
import logging
import re
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hpo._preflight import preflight
from hpo.exceptions import HpoError, PrunerError, SpaceError, StudyNotFoundError
from hpo.pruners import BasePruner, Pruner, epoch_budget, get_pruner
from hpo.space import SearchSpace, load_space
from hpo.storage import Evaluation, Store, get_store, mask_url
from hpo.strategies import get_strategy
from hpo.study import Study, check_study_name, create_study, delete_study
from hpo.trial import TrialState

__all__ = ["REFERENCE", "RunResult", "evaluation_lines", "final_evaluation", "run_study"]

# The final model's report lives in hpo/_evaluation.py; re-exported here for hpo.cli.
from hpo._evaluation import (
    REFERENCE,
    _evaluate_at_end,
    _log_say,
    _log_warn,
    evaluation_lines,
    final_evaluation,
)

log = logging.getLogger("hpo")

Say = Callable[[str], None]


@dataclass(frozen=True)
class RunResult:
    """What :func:`run_study` did.

    Attributes:
        study: The study (created, or resumed).
        created: Whether this run created it.
        searched: Whether trials were started (False: the study already held enough).
        tracker_uri: The MLflow tracking URI the trials were logged to (None: not tracked,
            or nothing was searched).
        evaluation: The final model's evaluation, when one was made or already current.
    """

    study: Study
    created: bool
    searched: bool
    tracker_uri: str | None = None
    evaluation: Evaluation | None = None


def run_study(
    spec_or_space: SearchSpace | str | Path,
    *,
    strategy: str = "bayes",
    storage: str | Store | None = None,
    name: str | None = None,
    pruner: str | None = None,
    pruner_options: Mapping[str, Any] | None = None,
    trials: int | None = None,
    timeout: float | None = None,
    seed: int = 0,
    direction: str | None = None,
    objective: Callable[..., Any] | str | None = None,
    device: str | None = None,
    data_dir: str | Path | None = None,
    workers: int = 1,
    ray_address: str | None = None,
    cpus_per_trial: float | None = None,
    gpus_per_trial: float | None = None,
    retries: int = 0,
    checkpoints: bool = True,
    checkpoint_dir: str | None = None,
    checkpoint_every: int = 1,
    checkpoint_overhead: float = 0.01,
    checkpoint_keep: int = 1,
    checkpoint_best: int = 1,
    mlflow: bool = True,
    mlflow_uri: str | None = None,
    mlflow_models: str = "best",
    evaluate: bool = True,
    progress: bool = False,
    on_search_end: Callable[[RunResult], None] | None = None,
    say: Say | None = None,
    warn: Say | None = None,
) -> RunResult:
    """Run (or resume) a study of a space, the way ``hpo run`` does.

    Args:
        spec_or_space: A :class:`SearchSpace` (its :attr:`~SearchSpace.spec` says the model,
            data set, metric, direction, trials, budget, default pruner and timeout), a named
            space or a path to a YAML file.
        strategy: ``"grid" | "random" | "bayes" | "tpe"``.
        storage: A store URL or a store; ``None`` keeps the study in memory.
        name: The study's name; rerunning with the same name resumes it. Default:
            ``SPACE-STRATEGY`` (``-PRUNER`` added when ``pruner`` is given and not none).
        pruner: ``none | median | asha | hyperband``; default the spec's pruner, else none (a
            default pruner that does not fit the budget is left out, with a note).
        pruner_options: Options of the pruner; ``max_resource`` defaults to the epoch budget.
        trials: The study's total number of trials; default the spec's, else 20.
        timeout: Seconds after which no new trial starts; default the spec's; 0 = none.
        seed: Seeds the search and the training.
        direction: ``minimize | maximize``; default the spec's, else minimize.
        objective: Your own objective (a function of a trial, or ``"package.module:function"``);
            default: train the spec's ``model`` on its data set.
        device: Training device (``cpu``, ``cuda``, ``cuda:1``); default cuda if present.
        data_dir: A folder of MNIST IDX files.
        workers: Trials at once; above 1 (or with any Ray setting) trials run on Ray.
        ray_address: Join a Ray cluster (``auto``, ``HOST:PORT``, ``ray://HOST:PORT``).
        cpus_per_trial: CPUs Ray reserves per trial (default 1).
        gpus_per_trial: GPUs Ray reserves per trial (default 0).
        retries: Times a trial whose Ray worker died is resumed or rerun.
        checkpoints: Keep checkpoints (interrupted trials then resume).
        checkpoint_dir: Where (a folder or fsspec URL); default ``FILE.checkpoints`` next to
            a SQLite store, none for other stores.
        checkpoint_every: Checkpoint the training loop every N epochs.
        checkpoint_overhead: The most of its training time the loop spends on checkpoints
            (it saves less often where a save costs more; 0: every N epochs whatever the
            cost); see :class:`hpo.Checkpointing`.
        checkpoint_keep: Newest checkpoints kept per running trial.
        checkpoint_best: Finished trials whose checkpoints are kept (the best N).
        mlflow: Track trials in MLflow.
        mlflow_uri: The MLflow tracking URI (default: MLflow's own).
        mlflow_models: Trained models to log: ``best``, ``all`` or ``none``.
        evaluate: At the end, retrain the best params on train + validation and test them on
            the test split (spaces with a ``model`` and no ``objective``).
        progress: Show live progress.
        on_search_end: Called when the search is over, before the final evaluation (the CLI
            prints its tables there).
        say: Receives what a person reads (lines with rich markup); default the hpo logger.
        warn: Receives warnings (plain text); default the hpo logger.

    Returns:
        A :class:`RunResult`.

    Raises:
        SpaceError, StrategyError, PrunerError, HpoError: a bad setting, before anything is
            stored or any data loaded. A run that fails before its first trial leaves no
            empty study behind.
    """
    say = say or _log_say
    warn = warn or _log_warn
    sp = spec_or_space if isinstance(spec_or_space, SearchSpace) else load_space(spec_or_space)
    spec = sp.spec
    total = trials if trials is not None else (spec.trials or 20)
    pruner_given = pruner is not None
    # The strategy and the pruner are built once, here: an unknown name or a bad setting
    # fails before the data load, and the study runs with these very objects.
    strat = get_strategy(strategy)
    prn, pruner = _pruner(sp, pruner, dict(pruner_options or {}), say)
    if timeout is None:
        timeout = spec.timeout
    timeout = None if timeout == 0 else timeout
    if name is None:
        # The default name is made of the space's and the strategy's: keep it a valid name.
        name = _default_name(f"{sp.name or _label(sp, spec_or_space)}-{strategy}")
        if pruner_given and pruner != "none":
            name += f"-{pruner}"
    # Parallel settings, the device and the checkpoint location are checked (a cluster
    # address probed, the location written to) before anything is stored.
    url = storage.url if isinstance(storage, Store) else (storage or "sqlite://")
    executor, checkpointing = preflight(
        url, prn, workers=workers, ray_address=ray_address, cpus_per_trial=cpus_per_trial,
        gpus_per_trial=gpus_per_trial, retries=retries, device=device,
        local_device=objective is None, checkpoints=checkpoints, checkpoint_dir=checkpoint_dir,
        checkpoint_every=checkpoint_every, checkpoint_overhead=checkpoint_overhead,
        checkpoint_keep=checkpoint_keep,
        checkpoint_best=checkpoint_best, mlflow_uri=mlflow_uri,
    )  # fmt: skip
    store = get_store(storage)
    created = not _has_study(store, name)
    if created:
        check_study_name(name)  # an existing study keeps the name it has
    fn, source = _objective(sp, spec_or_space, objective, data_dir, device, seed)
    dirn = direction or (spec.direction.value if spec.direction is not None else "minimize")
    study = create_study(
        space=sp, strategy=strat, direction=dirn, storage=store, name=name, seed=seed,
        load_if_exists=True, pruner=prn,
    )  # fmt: skip
    study.checkpointing = checkpointing
    try:
        searched, tracker_uri = _search(
            study, sp, total, strategy, dirn, pruner, source, timeout, progress, executor, fn,
            mlflow, mlflow_uri, mlflow_models, say,
        )  # fmt: skip
    except BaseException:
        if created:
            _drop_if_empty(study, warn)
        raise
    result = RunResult(study, created, searched, tracker_uri)
    if on_search_end is not None:
        on_search_end(result)
    if evaluate and objective is None:
        tracking = "off" if not mlflow else ("metrics" if mlflow_models == "none" else "model")
        ev = _evaluate_at_end(study, fn, device, tracking, mlflow_uri, say, warn)
        result = RunResult(study, created, result.searched, result.tracker_uri, ev)
    return result


def _pruner(
    sp: SearchSpace, pruner: str | None, options: dict[str, Any], say: Say
) -> tuple[Pruner, str]:
    """The run's pruner, fitted to the epoch budget, and its name. The space's default pruner
    that does not fit the budget (a copy of the space cut to 1 epoch) is left out with a note;
    one asked for fails instead."""
    budget = epoch_budget(sp, sp.meta)
    if pruner is None:
        pruner = sp.spec.pruner or "none"
        try:
            return _fit(get_pruner(pruner, **options), budget), pruner.strip().lower()
        except PrunerError as e:
            say(f"pruner: the space's default_pruner is not used ({e})")
            pruner = "none"
    return _fit(get_pruner(pruner, **options), budget), pruner.strip().lower()


def _fit(pruner: Pruner, budget: int | None) -> Pruner:
    return pruner.for_budget(budget) if isinstance(pruner, BasePruner) else pruner


def _objective(
    sp: SearchSpace,
    given: Any,
    objective: Callable[..., Any] | str | None,
    data_dir: str | Path | None,
    device: str | None,
    seed: int,
) -> tuple[Any, str]:
    """The objective and the line that says where its data come from."""
    if isinstance(objective, str):
        return load_objective(objective), f"objective {objective}"
    if objective is not None:
        return objective, f"objective {getattr(objective, '__qualname__', repr(objective))}"
    if sp.spec.model is None:
        raise SpaceError(
            f"space {_label(sp, given)!r} names no `model`; add `model: mlp|cnn|rnn` to it, "
            "or pass --objective package.module:function."
        )
    from hpo.training import make_objective

    fn = make_objective(sp.spec, data_dir=data_dir, device=device, seed=seed)
    source = fn.data.summary() if hasattr(fn.data, "summary") else fn.data.source
    return fn, source


def _label(sp: SearchSpace, given: Any) -> str:
    """How the caller named the space: the name or path given, else the space's name."""
    return str(given) if isinstance(given, (str, Path)) else str(sp.name or "space")


def load_objective(spec: str) -> Any:
    """The function ``package.module:function`` (imported with the working folder on the path).

    Raises:
        HpoError: a malformed spec, a module that cannot be imported or has no such function.
    """
    if ":" not in spec:
        raise HpoError(f"--objective must look like package.module:function, got {spec!r}.")
    mod_name, fn_name = spec.split(":", 1)
    sys.path.insert(0, str(Path.cwd()))
    try:
        module = importlib.import_module(mod_name)
    except ImportError as e:
        raise HpoError(f"--objective {spec!r}: cannot import {mod_name!r} ({e}).") from None
    fn = getattr(module, fn_name, None)
    if not callable(fn):
        raise HpoError(f"--objective {spec!r}: {mod_name!r} has no function {fn_name!r}.")
    return fn


def _search(
    study: Study,
    sp: SearchSpace,
    total: int,
    strategy: str,
    dirn: str,
    pruner: str,
    source: str,
    timeout: float | None,
    progress: bool,
    executor: Any,
    fn: Any,
    mlflow: bool,
    mlflow_uri: str | None,
    mlflow_models: str,
    say: Say,
) -> tuple[bool, str | None]:
    """Run the trials left: whether any were left, and the MLflow URI they were tracked in
    (None: not tracked)."""
    from hpo._progress import Progress

    # Orphans (running trials whose process is gone) are marked interrupted *before* the
    # count: they are not done, and the run replaces them (issue 17).
    study.recover_orphans()
    held = [t for t in study.trials if not t.interrupted]
    running = sum(1 for t in held if t.state is TrialState.RUNNING)
    done = len(held) - running
    say(
        f"[bold]study[/] {study.name}  ·  space {sp.name}  ·  strategy {strategy}  ·  "
        f"{dirn}  ·  store {mask_url(study.storage_url)}"
    )
    say(f"[bold]data[/]  {source}")
    describe = getattr(study.pruner, "describe", None)
    if callable(describe) and pruner != "none":
        say(f"[bold]pruner[/] {describe()}")
    if study.checkpointing is not None:
        say(f"[bold]checkpoints[/] {study.checkpointing.dir}")
    _warn_big_grid(say, study, total - done - running)
    if done + running >= total:
        if running:
            say(
                f"study {study.name!r} holds {done}/{total} finished trials and {running} "
                f"running in another live process or on another machine; nothing to start. "
                f"A trial whose process is gone is marked interrupted once its heartbeat is "
                f"{study.stale_after:.0f} s old: rerun then to replace it."
            )
        else:
            say(
                f"study {study.name!r} already holds {done}/{total} trials; nothing to run. "
                "Raise --trials to continue it, or pass a new --study name."
            )
        return False, None
    if done or running:
        elsewhere = f" ({running} still running elsewhere)" if running else ""
        say(f"resuming: {done}/{total} trials already in the store{elsewhere}")
    tracker = None
    if mlflow:
        from hpo.tracking import MlflowTracker

        tracker = MlflowTracker(mlflow_uri, log_models=mlflow_models)
        study.observers.append(tracker)
    if executor is not None and tracker is not None:
        # Each Ray worker tracks its own trials (the driver those whose worker died).
        executor.worker_observers = functools.partial(
            _worker_trackers, type(tracker), tracker.uri, tracker.log_models
        )
        study.observers.remove(tracker)
    bar = Progress(study, total=total - done - running, timeout=timeout, epochs=sp.spec.epochs)
    start = time.monotonic()
    if progress:
        bar.start()
    outcome = "FAILED"  # how the study's MLflow parent run ends (issue 17)
    try:
        study.optimize(
            fn,
            timeout=timeout,
            max_trials=total,
            observers=[bar] if progress else [],
            executor=executor,
        )
        outcome = "FINISHED"
    except KeyboardInterrupt:
        outcome = "KILLED"
        raise
    finally:
        if progress:
            bar.stop()
        if tracker is not None:
            if outcome == "FINISHED" and tracker.flush(120):
                # Trials a worker's tracker (or a timed-out request) missed, logged now
                # rather than left to `hpo mlflow-sync`.
                tracker.backfill(study)
            tracker.close(timeout=120, status=outcome)
            if executor is not None:  # the workers' trackers logged: end the study here
                tracker.end_study(study, outcome)
    say(f"finished in {time.monotonic() - start:.1f} s")
    return True, tracker.uri if tracker is not None else None


def _warn_big_grid(say: Say, study: Study, budget: int) -> None:
    """A grid far larger than the trials left tries only its first corner (issue 17)."""
    size = getattr(study.strategy, "size", None)
    if not callable(size) or budget <= 0:
        return
    n = size(study.space)
    if n > 10 * budget:
        say(
            f"[yellow]warning:[/] the grid holds {n:,} points but only {budget} trial(s) are "
            "left: they try the first points in a fixed order (the last parameter fastest). "
            "Use --strategy random or bayes, or a smaller grid (fewer params, `points`)."
        )


def _worker_trackers(cls: Any, uri: str, log_models: str) -> list[Any]:
    return [cls(uri, log_models=log_models)]


def _default_name(text: str) -> str:
    """``text`` made a valid study name: other characters become ``-`` (a file ``my
    space.yaml`` gives ``my-space-bayes``)."""
    name = re.sub(r"[^A-Za-z0-9_.:@+=-]", "-", text).lstrip("_.:@+=-")
    return name[:128] or "study"


def _has_study(store: Store, name: str) -> bool:
    try:
        store.get_study(name)
    except StudyNotFoundError:
        return False
    return True


def _drop_if_empty(study: Study, warn: Say) -> None:
    """A run refused before its first trial (a Ray cluster without the GPUs asked for, an
    address that is no Ray head) leaves no empty study behind (issue 17)."""
    try:
        if not study.store.count_trials(study.record.id):
            delete_study(study.name, storage=study.store)
    except HpoError as e:
        warn(f"warning: could not remove the empty study {study.name!r}: {e}")
