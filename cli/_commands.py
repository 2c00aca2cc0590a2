"""The commands. Each parses its options, calls the library and prints."""

from __future__ import annotations

import functools
import importlib
import re
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import typer

from hpo.cli._app import (
    app,
    existing_storage,
    mlflow_uri_option,
    print_json,
    resolve_storage,
    storage_flag,
    storage_option,
)
from hpo.cli._evaluate import evaluation_json, evaluation_lines
from hpo.cli._format import (
    best_yaml,
    console,
    params_text,
    studies_table,
    trial_rows,
    trial_text,
    trials_table,
)
from hpo.exceptions import HpoError, SpaceError

# -- hpo run ------------------------------------------------------------------------------


def _load_objective(spec: str) -> Any:
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


@app.command()
def run(
    space: str = typer.Option(
        ..., "--space", "-s", help="A named space (see `hpo spaces`) or a path to a YAML file."
    ),
    strategy: str = typer.Option(
        "bayes", "--strategy", help="Search strategy: grid, random, bayes or tpe."
    ),
    pruner: str = typer.Option(
        None,
        "--pruner",
        help="Stop unpromising trials early: none, median, asha or hyperband "
        "[default: the space's `default_pruner`, else none].",
        show_default=False,
    ),
    pruner_opts: list[str] = typer.Option(
        None,
        "--pruner-opt",
        help="A pruner option KEY=VALUE, repeatable (e.g. --pruner-opt reduction_factor=3); "
        "max_resource defaults to the space's epoch budget.",
        show_default=False,
    ),
    trials: int = typer.Option(
        None,
        "--trials",
        "-n",
        min=1,
        help="The study's total number of trials [default: the space's `trials`, else 20].",
        show_default=False,
    ),
    timeout: float = typer.Option(
        None,
        "--timeout",
        min=0,
        help="Stop starting new trials after this many seconds [default: the space's "
        "`timeout`, else none; 0 = none].",
        show_default=False,
    ),
    study_name: str = typer.Option(
        None,
        "--study",
        help="Study name; rerunning with the same name resumes it [default: SPACE-STRATEGY].",
        show_default=False,
    ),
    storage: str = storage_option(),
    seed: int = typer.Option(0, "--seed", min=0, help="Seeds the search and the training."),
    device: str = typer.Option(
        None, "--device", help="Training device (cpu, cuda, cuda:1) [default: cuda if present]."
    ),
    data_dir: Path = typer.Option(
        None,
        "--data-dir",
        help="A folder of MNIST IDX files (train-images-idx3-ubyte[.gz], ...).",
    ),
    objective: str = typer.Option(
        None,
        "--objective",
        help="Your own objective, package.module:function taking a trial, returning a float.",
    ),
    direction: str = typer.Option(
        None, "--direction", help="minimize or maximize [default: the space's, else minimize]."
    ),
    progress: bool = typer.Option(
        True, "--progress/--no-progress", help="Show live progress (plain lines off a terminal)."
    ),
    mlflow_uri: str = mlflow_uri_option(),
    no_mlflow: bool = typer.Option(False, "--no-mlflow", help="Turn MLflow tracking off."),
    mlflow_models: str = typer.Option(
        "best", "--mlflow-models", help="Trained models to log to MLflow: best, all or none."
    ),
    workers: int = typer.Option(
        1,
        "--workers",
        "-w",
        min=1,
        help="Trials at once. Above 1, they run on Ray (a local instance unless --ray-address).",
    ),
    ray_address: str = typer.Option(
        None,
        "--ray-address",
        help="Join a Ray cluster: auto, HOST:PORT or ray://HOST:PORT [default: start one here].",
    ),
    cpus_per_trial: float = typer.Option(
        None, "--cpus-per-trial", help="CPUs Ray reserves per trial [default: 1]."
    ),
    gpus_per_trial: float = typer.Option(
        None,
        "--gpus-per-trial",
        help="GPUs Ray reserves per trial; 0.5 shares a card [default: 0].",
    ),
    retries: int = typer.Option(
        0,
        "--retries",
        min=0,
        help="When a trial's Ray worker dies: resume it from its last checkpoint, else run "
        "its params again, up to this many times.",
    ),
    checkpoint_dir: str = typer.Option(
        None,
        "--checkpoint-dir",
        help="Where trials keep checkpoints: a folder or an fsspec URL [default: "
        "FILE.checkpoints next to a SQLite store; none for PostgreSQL].",
        show_default=False,
    ),
    checkpoint_every: int = typer.Option(
        1, "--checkpoint-every", min=1, help="Checkpoint the training loop every N epochs."
    ),
    checkpoint_keep: int = typer.Option(
        1, "--checkpoint-keep", min=1, help="Newest checkpoints kept per running trial."
    ),
    checkpoint_best: int = typer.Option(
        1,
        "--checkpoint-best",
        min=0,
        help="Finished trials whose checkpoints are kept: the best N (the rest are deleted).",
    ),
    no_checkpoints: bool = typer.Option(
        False, "--no-checkpoints", help="Keep no checkpoints (interrupted trials restart)."
    ),
    evaluate: bool = typer.Option(
        True,
        "--evaluate/--no-evaluate",
        help="At the end, retrain the best params on train + validation and test them on the "
        "test split the search never saw (spaces with a `model`).",
    ),
) -> None:
    """Run (or resume) a study: search SPACE with STRATEGY and print the best trials."""
    import hpo

    sp = hpo.load_space(space)
    meta = dict(sp.meta)
    url = resolve_storage(storage)
    total = trials if trials is not None else int(meta.get("trials") or 20)
    pruner_given = pruner is not None
    pruner, timeout = _space_defaults(sp, pruner, timeout, pruner_opts)
    pruner_options = _pruner_options(pruner_opts)
    hpo.get_strategy(strategy)  # an unknown name fails before the data load, like a pruner's
    _check_pruner(pruner, pruner_options, sp)  # a bad setting fails before the data load
    if study_name is None:
        # The default name is made of the space's and the strategy's: keep it a valid name.
        name = _default_name(f"{sp.name or Path(space).stem}-{strategy}")
        if pruner_given and pruner.strip().lower() != "none":
            name += f"-{pruner.strip().lower()}"
    else:
        name = study_name  # an explicit name is kept as given (and checked below)
    # Parallel settings are checked (and a cluster address probed) before anything is stored.
    executor = _executor(workers, ray_address, cpus_per_trial, gpus_per_trial, retries)
    if executor is not None:
        _check_device_for_ray(device, executor.gpus_per_trial)
        executor.preflight()
    elif device is not None and objective is None:
        _check_local_device(device)
    checkpointing = _checkpointing(
        url, checkpoint_dir, checkpoint_every, checkpoint_keep, checkpoint_best, no_checkpoints
    )  # an unwritable or full location fails here, before anything is stored
    from hpo.storage import get_store

    store = get_store(url)
    created = not _has_study(store, name)
    if created:
        hpo.check_study_name(name)  # an existing study keeps the name it has
    if objective is not None:
        fn = _load_objective(objective)
        source = f"objective {objective}"
    else:
        if "model" not in meta:
            raise SpaceError(
                f"space {space!r} names no `model`; add `model: mlp|cnn|rnn` to it, "
                "or pass --objective package.module:function."
            )
        from hpo.training import make_objective

        fn = make_objective(meta, data_dir=data_dir, device=device, seed=seed)
        source = fn.data.summary() if hasattr(fn.data, "summary") else fn.data.source
    dirn = direction or meta.get("direction") or "minimize"
    study = hpo.create_study(
        space=sp,
        strategy=strategy,
        direction=dirn,
        storage=store,
        name=name,
        seed=seed,
        load_if_exists=True,
        pruner=pruner,
        pruner_options=pruner_options,
    )
    study.checkpointing = checkpointing
    try:
        _run_study(
            study, sp, meta, url, total, strategy, dirn, pruner, source, timeout, progress,
            executor, fn, no_mlflow, mlflow_uri, mlflow_models, storage,
        )  # fmt: skip
    except BaseException:
        if created:
            _drop_if_empty(study)
        raise
    _summary(study, storage)
    if evaluate and objective is None:
        tracking = "off" if no_mlflow else ("metrics" if mlflow_models == "none" else "model")
        _evaluate_at_end(study, fn, device, tracking, mlflow_uri)


def _space_defaults(
    sp: Any, pruner: str | None, timeout: float | None, opts: list[str] | None
) -> tuple[str, Any]:
    """The space's ``default_pruner`` and ``timeout`` (issue 16) where the flags are absent. A
    default pruner that does not fit the budget (a copy of the space cut to 1 epoch) is left
    out with a note; one asked for with --pruner fails instead."""
    from hpo.exceptions import PrunerError

    if pruner is None:
        pruner = str(sp.meta.get("default_pruner") or "none")
        try:
            _check_pruner(pruner, _pruner_options(opts), sp)
        except PrunerError as e:
            console().print(f"pruner: the space's default_pruner is not used ({e})")
            pruner = "none"
    if timeout is None and sp.meta.get("timeout") is not None:
        value = sp.meta["timeout"]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            raise SpaceError(f"space meta 'timeout': must be seconds > 0, got {value!r}.")
        timeout = float(value)
    return pruner, (None if timeout == 0 else timeout)


def _evaluate_at_end(
    study: Any, fn: Any, device: str | None, tracking: str, uri: str | None
) -> None:
    """The final model of a finished run (skipped when no trial completed, or when the best
    trial was evaluated already)."""
    from hpo.cli._evaluate import evaluation_lines, final_evaluation
    from hpo.trial import TrialState

    if not any(t.state is TrialState.COMPLETE for t in study.trials):
        return
    ev = study.evaluation
    if ev is not None and ev.trial_number == study.best_trial.number and ev.retrained:
        for line in evaluation_lines(study, ev):
            console().print(line, soft_wrap=True)
        return
    final_evaluation(
        study, data=fn.data, device=device, mlflow=tracking != "off", mlflow_uri=uri,
        log_model=tracking == "model",
    )  # fmt: skip


def _checkpointing(
    url: str, folder: str | None, every: int, keep: int, best: int, off: bool
) -> Any:
    """The run's checkpoint settings, checked (made and written to); None when it keeps
    none: --no-checkpoints, or a store with no default location and no --checkpoint-dir."""
    from hpo.trial._checkpoints import Checkpointing, default_checkpoint_dir

    if off:
        return None
    root = folder if folder is not None else default_checkpoint_dir(url)
    if root is None:
        return None
    settings = Checkpointing(root, every=every, keep=keep, best=best)
    settings.check()
    return settings


def _default_name(text: str) -> str:
    """``text`` made a valid study name: other characters become ``-`` (a file ``my
    space.yaml`` gives ``my-space-bayes``)."""
    name = re.sub(r"[^A-Za-z0-9_.:@+=-]", "-", text).lstrip("_.:@+=-")
    return name[:128] or "study"


def _has_study(store: Any, name: str) -> bool:
    from hpo.exceptions import StudyNotFoundError

    try:
        store.get_study(name)
    except StudyNotFoundError:
        return False
    return True


def _drop_if_empty(study: Any) -> None:
    """A run refused before its first trial (a Ray cluster without the GPUs asked for, an
    address that is no Ray head) leaves no empty study behind (issue 17)."""
    import hpo

    try:
        if not study.store.count_trials(study.record.id):
            hpo.delete_study(study.name, storage=study.store)
    except HpoError as e:
        typer.echo(f"warning: could not remove the empty study {study.name!r}: {e}", err=True)


def _run_study(
    study: Any,
    sp: Any,
    meta: dict[str, Any],
    url: str,
    total: int,
    strategy: str,
    dirn: str,
    pruner: str,
    source: str,
    timeout: float | None,
    progress: bool,
    executor: Any,
    fn: Any,
    no_mlflow: bool,
    mlflow_uri: str | None,
    mlflow_models: str,
    storage: str | None,
) -> None:
    from hpo._progress import Progress
    from hpo.storage import mask_url
    from hpo.trial import TrialState

    # Orphans (running trials whose process is gone) are marked interrupted *before* the
    # count: they are not done, and the run replaces them (issue 17).
    study.recover_orphans()
    held = [t for t in study.trials if not t.interrupted]
    running = sum(1 for t in held if t.state is TrialState.RUNNING)
    done = len(held) - running
    con = console()
    con.print(
        f"[bold]study[/] {study.name}  ·  space {sp.name}  ·  strategy {strategy}  ·  "
        f"{dirn}  ·  store {mask_url(study.storage_url)}"
    )
    con.print(f"[bold]data[/]  {source}")
    describe = getattr(study.pruner, "describe", None)
    if callable(describe) and pruner.strip().lower() != "none":
        con.print(f"[bold]pruner[/] {describe()}")
    if study.checkpointing is not None:
        con.print(f"[bold]checkpoints[/] {study.checkpointing.dir}", soft_wrap=True)
    _warn_big_grid(con, study, total - done - running)
    if done + running >= total:
        if running:
            con.print(
                f"study {study.name!r} holds {done}/{total} finished trials and {running} "
                f"running in another live process or on another machine; nothing to start. "
                f"A trial whose process is gone is marked interrupted once its heartbeat is "
                f"{study.stale_after:.0f} s old: rerun then to replace it.",
                soft_wrap=True,
            )
        else:
            con.print(
                f"study {study.name!r} already holds {done}/{total} trials; nothing to run. "
                "Raise --trials to continue it, or pass a new --study name."
            )
        return
    if done or running:
        elsewhere = f" ({running} still running elsewhere)" if running else ""
        con.print(f"resuming: {done}/{total} trials already in the store{elsewhere}")
    epochs = (meta.get("budget") or {}).get("epochs") if isinstance(meta, dict) else None
    tracker = None
    if not no_mlflow:
        from hpo.tracking import MlflowTracker

        tracker = MlflowTracker(mlflow_uri, log_models=mlflow_models)
        study.observers.append(tracker)
    if executor is not None and tracker is not None:
        # Each Ray worker tracks its own trials (the driver those whose worker died).
        executor.worker_observers = functools.partial(
            _worker_trackers, type(tracker), tracker.uri, tracker.log_models
        )
        study.observers.remove(tracker)
    bar = Progress(study, total=total - done - running, timeout=timeout, epochs=epochs)
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
            tracker.close(timeout=120, status=outcome)
            if executor is not None:  # the workers' trackers logged: end the study here
                tracker.end_study(study, outcome)
    con.print(f"finished in {time.monotonic() - start:.1f} s")
    if tracker is not None:
        _tracking_summary(con, study, tracker.uri, storage, mlflow_uri)


def _warn_big_grid(con: Any, study: Any, budget: int) -> None:
    """A grid far larger than the trials left tries only its first corner (issue 17)."""
    size = getattr(study.strategy, "size", None)
    if not callable(size) or budget <= 0:
        return
    n = size(study.space)
    if n > 10 * budget:
        con.print(
            f"[yellow]warning:[/] the grid holds {n:,} points but only {budget} trial(s) are "
            "left: they try the first points in a fixed order (the last parameter fastest). "
            "Use --strategy random or bayes, or a smaller grid (fewer params, `points`).",
            soft_wrap=True,
        )


def _tracking_summary(
    con: Any, study: Any, uri: str, storage: str | None, mlflow_uri: str | None
) -> None:
    """Where the trials are tracked, and how many are not: counted from the store, where
    every tracker records its run id, so trials that a Ray worker's (or the driver's)
    tracker failed to log count as well as the ones this process missed."""
    from hpo.storage import mask_url
    from hpo.trial import TrialState

    finished = [t for t in study.trials if t.state is not TrialState.RUNNING]
    missing = sum(1 for t in finished if "mlflow_run_id" not in t.system_attrs)
    uri = mask_url(uri)
    where = f"{uri} (experiment {study.name!r})"
    if not missing:
        how = (
            "open it in a browser"
            if uri.startswith("http")
            else f"open it with: mlflow ui --backend-store-uri {uri}"
        )
        con.print(f"MLflow: tracked in {where}; {how}", soft_wrap=True)
        return
    flag = (f" --storage {mask_url(storage)}" if storage else "") + (
        f" --mlflow-uri {mask_url(mlflow_uri)}" if mlflow_uri else ""
    )
    con.print(
        f"MLflow: {missing} of {len(finished)} finished trials have no run in {where}; "
        f"backfill them with: hpo mlflow-sync {study.name}{flag}",
        soft_wrap=True,
    )


def _executor(
    workers: int, address: str | None, cpus: float | None, gpus: float | None, retries: int
) -> Any:
    """A RayExecutor when the flags ask for parallel or resource-aware trials, else None (the
    in-process loop, which costs no start-up)."""
    if workers == 1 and address is None and cpus is None and gpus is None and not retries:
        return None
    from hpo.executors import RayExecutor

    return RayExecutor(
        workers=workers,
        address=address,
        cpus_per_trial=1.0 if cpus is None else cpus,
        gpus_per_trial=0.0 if gpus is None else gpus,
        retries=retries,
    )


def _check_device_for_ray(device: str | None, gpus_per_trial: float) -> None:
    """On Ray a trial sees only the GPUs it was given, numbered from 0 (none without
    --gpus-per-trial)."""
    if device is None or not device.startswith("cuda"):
        return
    if gpus_per_trial <= 0:
        raise HpoError(
            f"--device {device}: on Ray a trial sees no GPU unless it asks for one; add "
            "--gpus-per-trial (for example 1, or 0.5 to share a card)."
        )
    if ":" not in device:
        return
    index = device.split(":", 1)[1]
    if not index.isdigit() or int(index) >= max(1, int(gpus_per_trial)):
        raise HpoError(
            f"--device {device}: on Ray each trial sees only the GPU(s) it was given, "
            f"numbered from 0 ({gpus_per_trial:g} per trial here); use --device cuda and "
            "--gpus-per-trial to choose how many."
        )


def _check_local_device(device: str) -> None:
    """A device this machine lacks fails at start, not as one failed trial after another."""
    import torch

    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError):
        raise HpoError(f"--device must be cpu, cuda or cuda:N, got {device!r}.") from None
    if dev.type != "cuda":
        return
    if not torch.cuda.is_available():
        why = "this torch is a CPU-only build" if torch.version.cuda is None else "no GPU found"
        raise HpoError(
            f"--device {device}: CUDA is not available on this machine ({why}); use "
            "--device cpu, or leave --device out to train on a GPU when there is one."
        )
    count = torch.cuda.device_count()
    if dev.index is not None and dev.index >= count:
        raise HpoError(f"--device {device}: this machine has {count} GPU(s), numbered from 0.")


def _worker_trackers(cls: Any, uri: str, log_models: str) -> list[Any]:
    return [cls(uri, log_models=log_models)]


def _pruner_options(pairs: list[str] | None) -> dict[str, Any]:
    """``["reduction_factor=3", ...]`` as ``{"reduction_factor": 3}`` (values read as YAML)."""
    import yaml

    out: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, text = pair.partition("=")
        if not sep or not key.strip():
            raise HpoError(f"--pruner-opt must look like KEY=VALUE, got {pair!r}.")
        try:
            out[key.strip()] = yaml.safe_load(text) if text.strip() else None
        except yaml.YAMLError:
            raise HpoError(f"--pruner-opt {pair!r}: cannot read the value {text!r}.") from None
    return out


def _check_pruner(name: str, options: dict[str, Any], space: Any) -> None:
    from hpo.pruners import BasePruner, epoch_budget, get_pruner

    pruner = get_pruner(name, **options)
    if isinstance(pruner, BasePruner):
        pruner.for_budget(epoch_budget(space, space.meta))


def _summary(study: Any, storage: str | None) -> None:
    from hpo.trial import TrialState

    con = console()
    trials = study.trials
    con.print(trials_table(study, trials, limit=10))
    complete = [t for t in trials if t.state is TrialState.COMPLETE]
    if complete:
        best = study.best_trial
        what = "validation accuracy" if study.meta.get("metric") == "val_accuracy" else "value"
        con.print(
            f"[bold green]best[/] trial {best.number}: {what} {best.value:.6g}  "
            f"{params_text(best.params)}"
        )
    flag = storage_flag(storage)
    con.print(
        f"reopen with: hpo show {shlex.quote(study.name)}{flag}   ·   "
        f"best params: hpo best {shlex.quote(study.name)}{flag}",
        soft_wrap=True,
    )


# -- read commands ------------------------------------------------------------------------


@app.command()
def spaces(json_out: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """List the named search spaces shipped with hpo."""
    import hpo

    found = hpo.available_spaces()
    if json_out:
        print_json(found)
        return
    width = max(map(len, found), default=0)
    for name, desc in found.items():
        typer.echo(f"{name.ljust(width)}  {desc}")


@app.command()
def studies(
    storage: str = storage_option(),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """List the studies in the store."""
    import hpo

    try:
        summaries = hpo.list_studies(existing_storage(storage))
    except HpoError as e:  # no store here: nothing to list, and none is made
        if json_out:
            print_json([])
        else:
            typer.echo(f"no studies: {e}")
        return
    if json_out:
        print_json(
            [
                {
                    "name": s.study.name,
                    "space": s.study.meta.get("space_name"),
                    "strategy": s.study.strategy,
                    "direction": s.study.direction.value,
                    "n_trials": s.n_trials,
                    "states": {k.value: v for k, v in s.states.items()},
                    "best_value": s.best_value,
                    "created_at": s.study.created_at.isoformat(),
                    "last_activity": s.last_activity.isoformat() if s.last_activity else None,
                }
                for s in summaries
            ]
        )
        return
    if not summaries:
        typer.echo(f"no studies in {resolve_storage(storage)}")
        return
    console().print(studies_table(summaries))


@app.command()
def show(
    study: str = typer.Argument(..., help="The study's name (see `hpo studies`)."),
    storage: str = storage_option(),
    limit: int = typer.Option(None, "--limit", min=1, help="Show only the best N trials."),
    trial: int = typer.Option(
        None,
        "--trial",
        "-t",
        min=0,
        help="Show one trial in full: params, state, where it ran, its intermediate values "
        "and the traceback of a failure.",
        show_default=False,
    ),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Show a study's trials, best first: state, value, duration, where they ran, params."""
    import hpo

    s = hpo.load_study(study, storage=existing_storage(storage))
    trials = s.trials
    if trial is not None:
        found = [t for t in trials if t.number == trial]
        if not found:
            raise HpoError(
                f"study {s.name!r} has no trial {trial} (its trials are 0-{len(trials) - 1})."
                if trials
                else f"study {s.name!r} has no trials yet."
            )
        if json_out:
            row = trial_rows(s, found)[0]
            row["traceback"] = found[0].system_attrs.get("traceback")
            print_json(row)
        else:
            typer.echo(trial_text(found[0]), nl=False)
        return
    if json_out:
        print_json(
            {
                "name": s.name,
                "strategy": s.record.strategy,
                "direction": s.direction.value,
                "space": s.space.to_dict(),
                "trials": trial_rows(s, trials),
                "evaluation": evaluation_json(s.evaluation),
            }
        )
        return
    console().print(trials_table(s, trials, limit=limit))
    ev = s.evaluation
    for line in evaluation_lines(s, ev) if ev is not None else []:
        console().print(line, soft_wrap=True)


@app.command()
def best(
    study: str = typer.Argument(..., help="The study's name."),
    storage: str = storage_option(),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Print the best trial's params as YAML, ready to reuse."""
    import hpo

    s = hpo.load_study(study, storage=existing_storage(storage))
    t = s.best_trial
    if json_out:
        print_json({"number": t.number, "value": t.value, "params": dict(t.params)})
        return
    typer.echo(best_yaml(s, t), nl=False)


@app.command("mlflow-sync")
def mlflow_sync(
    study: str = typer.Argument(..., help="The study's name."),
    storage: str = storage_option(),
    mlflow_uri: str = mlflow_uri_option(),
) -> None:
    """Log to MLflow every finished trial not tracked yet (safe to run again)."""
    import hpo
    from hpo.tracking import MlflowTracker

    s = hpo.load_study(study, storage=existing_storage(storage))
    tracker = MlflowTracker(mlflow_uri, background=False)
    try:
        added, tracked = tracker.sync(s)
    except Exception as e:
        raise HpoError(f"cannot reach MLflow at {tracker.uri}: {str(e).splitlines()[0]}") from e
    typer.echo(f"backfilled {added} trial(s); {tracked} were already tracked in {tracker.uri}")


@app.command()
def delete(
    study: str = typer.Argument(..., help="The study's name."),
    storage: str = storage_option(),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
    checkpoint_dir: str = typer.Option(
        None,
        "--checkpoint-dir",
        help="Also look for the study's checkpoints here (those its trials recorded, and "
        "the default location, are always removed).",
        show_default=False,
    ),
) -> None:
    """Delete a study, all its trials and their checkpoints."""
    import hpo

    url = existing_storage(storage)
    hpo.load_study(study, storage=url)  # fails clearly if it does not exist
    if not yes and not typer.confirm(f"delete study {study!r} and all its trials?"):
        typer.echo("not deleted.")  # the user's answer, not an error: exit 0
        return
    removed = hpo.delete_study(study, storage=url, checkpoint_dir=checkpoint_dir)
    typer.echo(f"deleted study {study!r}")
    for folder in removed:
        typer.echo(f"deleted checkpoints {folder}")
