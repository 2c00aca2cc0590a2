"""``hpo dashboard`` (the web page and HTTP API) and ``hpo plot`` (the same plots as files)."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from hpo.cli._app import app, existing_storage, resolve_storage, storage_option
from hpo.exceptions import HpoError


@app.command()
def dashboard(
    storage: str = storage_option(),
    host: str = typer.Option(
        "127.0.0.1", "--host", help="Address to listen on; anything but loopback needs a token."
    ),
    port: int = typer.Option(8080, "--port", min=0, max=65535, help="Port (0: a free one)."),
    token: str = typer.Option(
        None,
        "--token",
        envvar="HPO_TOKEN",
        help="Writes (create, ask, tell, report) need 'Authorization: Bearer TOKEN'.",
        show_default=False,
    ),
    token_reads: bool = typer.Option(
        False,
        "--token-reads",
        help="Reads need the token too (the page asks for it): for servers on shared networks.",
    ),
    mlflow_ui: str = typer.Option(
        None,
        "--mlflow-ui",
        envvar="HPO_MLFLOW_UI",
        help="Base URL of the MLflow UI (e.g. http://127.0.0.1:5000): trials link to their run.",
        show_default=False,
    ),
    poll: float = typer.Option(
        2.0, "--poll", min=0.25, help="Seconds between the page's checks for new trials."
    ),
) -> None:
    """Serve the live dashboard and the HTTP API (its OpenAPI schema at /openapi.json)."""
    from hpo.server import serve

    url = resolve_storage(storage)

    def ready(address: str) -> None:
        from hpo.storage import mask_url

        auth = (
            ("reads and writes need the token" if token_reads else "writes need the token")
            if token
            else "no token: writes are open to this machine"
        )
        typer.echo(f"hpo dashboard on {address}/  ·  API schema {address}/openapi.json")
        typer.echo(f"store {mask_url(url)}  ·  {auth}  ·  Ctrl-C to stop")
        sys.stdout.flush()

    serve(
        url,
        host=host,
        port=port,
        token=token,
        token_reads=token_reads,
        mlflow_ui=mlflow_ui,
        poll_interval=poll,
        on_ready=ready,
    )
    typer.echo("dashboard stopped")


@app.command()
def plot(
    study: str = typer.Argument(..., help="The study's name (see `hpo studies`)."),
    kind: str = typer.Option(
        ...,
        "--kind",
        "-k",
        help="history, parallel, importance, slices, curves, or confusion (the final model's "
        "test split); or what the optimiser thinks: surrogate, acquisition, contour, learning "
        "(bayes), tpe, coverage, timeline or edf.",
    ),
    output: Path = typer.Option(
        ..., "--output", "-o", help="The file to write: .png (matplotlib) or .html (plotly)."
    ),
    storage: str = storage_option(),
    highlight: str = typer.Option(
        None,
        "--highlight",
        help="Trials to draw on top of the curves, e.g. 3,7 [default: the best trial].",
        show_default=False,
    ),
    x: str = typer.Option(
        None, "--x", help="contour: the parameter across [default: the first].", show_default=False
    ),
    y: str = typer.Option(
        None, "--y", help="contour: the parameter up [default: the second].", show_default=False
    ),
) -> None:
    """Write a study's plot to a PNG or self-contained HTML file."""
    import hpo
    from hpo.plots import KINDS, write_plot
    from hpo.plots._optimizer_figures import OPTIMIZER_KINDS, write_optimizer_plot

    kinds = (*KINDS, "confusion", *OPTIMIZER_KINDS)
    if kind not in kinds:  # before opening the store: a typo answers at once
        raise HpoError(f"--kind must be one of {', '.join(kinds)}; got {kind!r}.")
    if kind != "contour" and (x is not None or y is not None):
        raise HpoError(f"--x and --y are for --kind contour, not {kind!r}.")
    if kind in OPTIMIZER_KINDS:
        s = hpo.load_study(study, storage=existing_storage(storage))
        out = write_optimizer_plot(s, kind, output, x=x, y=y)
        typer.echo(f"wrote {out} ({kind} of study {s.name!r}, {len(s.trials)} trials)")
        return
    numbers = None
    if highlight is not None:
        try:
            numbers = [int(x) for x in highlight.split(",") if x.strip()]
        except ValueError:
            raise HpoError(
                f"--highlight must be trial numbers separated by commas, got {highlight!r}."
            ) from None
    s = hpo.load_study(study, storage=existing_storage(storage))
    out = write_plot(s, kind, output, highlight=numbers)
    typer.echo(f"wrote {out} ({kind} of study {s.name!r}, {len(s.trials)} trials)")
