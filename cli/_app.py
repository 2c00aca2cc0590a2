from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import typer

from hpo.exceptions import HpoError

__all__ = [
    "DEFAULT_STORAGE",
    "app",
    "existing_storage",
    "fail",
    "main",
    "mlflow_uri_option",
    "sqlite_file",
    "storage_flag",
    "storage_option",
]

DEFAULT_STORAGE = "sqlite:///hpo.db"

app = typer.Typer(
    name="hpo",
    help=(
        "Hyperparameter optimisation for deep learning: searchable PyTorch models, grid / "
        "random / Bayesian search, studies stored in SQL.\n\n"
        "Start with:  hpo run --space cnn_mnist --strategy bayes"
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

F = TypeVar("F", bound=Callable[..., Any])


def _print_version(value: bool) -> None:
    if value:
        from hpo import __version__

        typer.echo(f"hpo {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False,
        "--version",
        callback=_print_version,
        is_eager=True,
        help="Print hpo's version and exit.",
    ),
) -> None:
    pass


def storage_option() -> Any:
    return typer.Option(
        None,
        "--storage",
        envvar="HPO_STORAGE",
        help=f"Study store URL: sqlite:///file.db or postgresql://... [default: {DEFAULT_STORAGE}]",
        show_default=False,
    )


def mlflow_uri_option() -> Any:
    return typer.Option(
        None,
        "--mlflow-uri",
        envvar="MLFLOW_TRACKING_URI",
        help="MLflow tracking server or store [default: sqlite:///mlflow.db here].",
        show_default=False,
    )


def resolve_storage(storage: str | None) -> str:
    return storage or DEFAULT_STORAGE


def existing_storage(storage: str | None) -> str:
    """The store URL for a command that only reads: a SQLite file that does not exist is an
    error, never a new empty store (issue 17).

    Raises:
        HpoError: the URL names a SQLite file that is not there.
    """
    url = resolve_storage(storage)
    path = sqlite_file(url)
    if path is not None and not os.path.exists(path):
        where = "" if storage else " (the default store; pass --storage URL or set HPO_STORAGE)"
        raise HpoError(f"no study store at {path!r}{where}: `hpo run` creates one.")
    return url


def sqlite_file(url: str) -> str | None:
    """The file of a ``sqlite:///FILE`` URL (None for other URLs and in-memory SQLite)."""
    if not url.startswith("sqlite") or "://" not in url:
        return None
    rest = url.split("://", 1)[1].split("?", 1)[0]
    if rest in {"", "/", "/:memory:"}:
        return None
    return os.path.expanduser(rest[1:] if rest.startswith("/") else rest)


def storage_flag(storage: str | None) -> str:
    """`` --storage URL`` for a command printed to be run again (empty for the default store
    or the one $HPO_STORAGE names). A password is shown as *** and must be typed in."""
    from hpo.storage import mask_url

    if not storage or storage == os.environ.get("HPO_STORAGE"):
        return ""
    import shlex

    return f" --storage {shlex.quote(mask_url(storage))}"


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print ``error: message`` on one line and return the Exit to raise."""
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, default=str))


def _setup_logging() -> None:
    level = logging.DEBUG if os.environ.get("HPO_DEBUG") else logging.INFO
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("[hpo] %(message)s"))
    root = logging.getLogger("hpo")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False


_INTERRUPTED = (
    "interrupted: the running trial is marked failed (interrupted) and everything else is "
    "saved; rerun the same command to resume."
)


def main() -> None:
    """Entry point of the ``hpo`` script: maps errors to one line and an exit code."""
    # Importing them registers the commands (`dashboard` and `plot` live in _dashboard,
    # `evaluate` and `export` in _evaluate).
    from hpo.cli import _commands, _dashboard, _evaluate  # noqa: F401

    _setup_logging()
    try:
        # Not standalone: our errors reach the handlers below. Typer then *returns* the code
        # of an Exit (and turns Ctrl-C into Exit(130)) instead of exiting itself.
        rc = app(standalone_mode=False, prog_name="hpo")
        if isinstance(rc, int) and rc:
            if rc == 130:
                typer.echo(_INTERRUPTED, err=True)
            sys.exit(rc)
    except HpoError as e:
        typer.echo(f"error: {e}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        typer.echo(_INTERRUPTED, err=True)
        sys.exit(130)
    except typer.Exit as e:
        sys.exit(e.exit_code)
    except typer.Abort:
        typer.echo("aborted.", err=True)
        sys.exit(1)
    except Exception as e:
        show = getattr(e, "show", None)
        code = getattr(e, "exit_code", None)
        ctx = getattr(e, "ctx", None)
        if type(e).__name__ == "NoArgsIsHelpError" and ctx is not None:
            # `hpo` alone asks for help. Click builds the error from the help text, which
            # Typer's rich formatter prints as it builds it (leaving the message empty).
            text = e.format_message() if hasattr(e, "format_message") else ""
            if text.strip():
                typer.echo(text)
            sys.exit(0)
        if callable(show) and isinstance(code, int):  # click's usage errors (Typer vendors click)
            # One line, as for every other bad input, instead of click's usage block.
            where = f"{ctx.command_path} --help" if ctx is not None else "hpo --help"
            message = e.format_message() if hasattr(e, "format_message") else str(e)
            typer.echo(f"error: {message} (see `{where}`)", err=True)
            sys.exit(code)
        if os.environ.get("HPO_DEBUG"):
            raise
        typer.echo(f"error: {type(e).__name__}: {e} (set HPO_DEBUG=1 for the traceback)", err=True)
        sys.exit(1)
