"""The commands. Each parses its options, calls the library and prints."""

from __future__ import annotations

import shlex
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
from hpo.exceptions import HpoError

# -- hpo run ------------------------------------------------------------------------------


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
        help="Where trials keep checkpoints: a folder, an fsspec URL (s3://...) or the MLflow "
        "server's artifact store (mlflow-artifacts:/FOLDER) [default: FILE.checkpoints next "
        "to a SQLite store; none for PostgreSQL].",
        show_default=False,
    ),
    checkpoint_every: int = typer.Option(
        1, "--checkpoint-every", min=1, help="Checkpoint the training loop every N epochs."
    ),
    checkpoint_overhead: float = typer.Option(
        0.01,
        "--checkpoint-overhead",
        min=0.0,
        max=0.99,
        help="The most of its training time the built-in loop spends on checkpoints: where "
        "a save costs more (epochs of ~0.1 s), it saves less often; 0 saves every N epochs.",
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

    con = console()

    def after_search(result: Any) -> None:
        if result.tracker_uri is not None:
            _tracking_summary(con, result.study, result.tracker_uri, storage, mlflow_uri)
        _summary(result.study, storage)

    hpo.run_study(
        space, strategy=strategy, storage=resolve_storage(storage),
        name=study_name, pruner=pruner, pruner_options=_pruner_options(pruner_opts),
        trials=trials, timeout=timeout, seed=seed, direction=direction, objective=objective,
        device=device, data_dir=data_dir, workers=workers, ray_address=ray_address,
        cpus_per_trial=cpus_per_trial, gpus_per_trial=gpus_per_trial, retries=retries,
        checkpoints=not no_checkpoints, checkpoint_dir=checkpoint_dir,
        checkpoint_every=checkpoint_every, checkpoint_overhead=checkpoint_overhead,
        checkpoint_keep=checkpoint_keep,
        checkpoint_best=checkpoint_best, mlflow=not no_mlflow, mlflow_uri=mlflow_uri,
        mlflow_models=mlflow_models, evaluate=evaluate, progress=progress,
        on_search_end=after_search, say=lambda line: con.print(line, soft_wrap=True),
        warn=lambda line: typer.echo(line, err=True),
    )  # fmt: skip


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
