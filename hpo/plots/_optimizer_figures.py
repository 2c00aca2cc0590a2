"""The optimiser's views by name: the figure of each, and ``hpo plot`` of them to a file.

Each view lives in its own module, its data and its plotly figure (plain dicts) together:
:mod:`~hpo.plots._opt_surrogate` (surrogate, acquisition), :mod:`~hpo.plots._opt_contour`,
:mod:`~hpo.plots._opt_learning`, :mod:`~hpo.plots._opt_tpe`, :mod:`~hpo.plots._opt_coverage`,
:mod:`~hpo.plots._opt_timeline`, :mod:`~hpo.plots._opt_edf`. Only scatter and bar traces: the
dashboard's vendored plotly.js is the "basic" bundle (no heatmap or contour). ``hpo plot``
writes the same dicts to HTML, and draws them with matplotlib for PNG (:func:`save_png`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hpo.plots._opt_contour import contour, contour_figure
from hpo.plots._opt_coverage import coverage, coverage_figure
from hpo.plots._opt_edf import edf, edf_figure
from hpo.plots._opt_learning import learning, learning_figure
from hpo.plots._opt_png import save_png
from hpo.plots._opt_surrogate import acquisition_figure, surrogate, surrogate_figure
from hpo.plots._opt_timeline import timeline, timeline_figure
from hpo.plots._opt_tpe import tpe_densities, tpe_figure
from hpo.plots._style import Figure

__all__ = [
    "OPTIMIZER_KINDS",
    "acquisition_figure",
    "contour_figure",
    "coverage_figure",
    "default_kinds",
    "edf_figure",
    "learning_figure",
    "optimizer_figure",
    "save_png",
    "surrogate_figure",
    "timeline_figure",
    "tpe_figure",
    "write_optimizer_plot",
]

#: The optimiser's views (``hpo plot --kind``, the dashboard's optimiser section).
OPTIMIZER_KINDS = (
    "surrogate",
    "acquisition",
    "contour",
    "learning",
    "tpe",
    "coverage",
    "timeline",
    "edf",
)


def optimizer_figure(
    kind: str,
    space: Any,
    trials: Sequence[Any],
    direction: Any,
    strategy: Any,
    *,
    seed: int = 0,
    x: str | None = None,
    y: str | None = None,
    model: Any = None,
    memo: dict[str, Any] | None = None,
) -> Figure:
    """The figure of optimiser view ``kind`` (one of :data:`OPTIMIZER_KINDS`). ``model`` reuses
    a fit (:func:`hpo.plots._optimizer.fit`) for the bayes views; ``memo`` (a dict kept for
    one revision) shares the slices between the surrogate and the acquisition."""
    if kind in ("surrogate", "acquisition"):
        memo = memo if memo is not None else {}
        if "surrogate" not in memo:
            memo["surrogate"] = surrogate(
                space, trials, direction, strategy, seed=seed, model=model
            )
        s = memo["surrogate"]
        return surrogate_figure(s) if kind == "surrogate" else acquisition_figure(s)
    if kind == "contour":
        return contour_figure(contour(space, trials, direction, strategy, x, y, model=model))
    if kind == "learning":
        return learning_figure(learning(space, trials, direction, strategy, model=model))
    if kind == "tpe":
        return tpe_figure(tpe_densities(space, trials, direction))
    if kind == "coverage":
        return coverage_figure(coverage(space, trials, strategy))
    if kind == "timeline":
        return timeline_figure(timeline(trials))
    if kind == "edf":
        return edf_figure(edf(trials, direction))
    from hpo.exceptions import HpoError

    raise HpoError(f"--kind must be one of {', '.join(OPTIMIZER_KINDS)}; got {kind!r}.")


def default_kinds(strategy_name: str) -> tuple[str, ...]:
    """The views that say something for a study of this strategy."""
    if strategy_name == "bayes":
        return ("surrogate", "acquisition", "contour", "learning", "timeline", "edf")
    if strategy_name == "tpe":
        return ("tpe", "timeline", "edf")
    return ("coverage", "timeline", "edf")


def write_optimizer_plot(
    study: Any, kind: str, path: str | Path, *, x: str | None = None, y: str | None = None
) -> Path:
    """Draw optimiser view ``kind`` of ``study`` into ``path`` (.html: plotly; .png:
    matplotlib). Raises HpoError for a bad kind, file type, folder or parameter, or when the
    view has nothing to show yet (the message says why)."""
    from hpo.exceptions import HpoError

    if kind not in OPTIMIZER_KINDS:
        raise HpoError(f"--kind must be one of {', '.join(OPTIMIZER_KINDS)}; got {kind!r}.")
    out = Path(path)
    if out.suffix.lower() not in (".html", ".png"):
        raise HpoError(f"the output file must end in .png or .html, got {str(out)!r}.")
    if not out.parent.is_dir():
        raise HpoError(f"folder {str(out.parent)!r} does not exist; create it first.")
    for name, flag in ((x, "--x"), (y, "--y")):
        if name is not None and name not in study.space:
            raise HpoError(
                f"{flag} {name!r} is not a parameter of study {study.name!r}; pick one of "
                f"{', '.join(study.space)}."
            )
    fig = optimizer_figure(
        kind,
        study.space,
        study.trials,
        study.direction,
        study.strategy,
        seed=study.record.seed,
        x=x,
        y=y,
    )
    if not fig["data"]:
        why = fig["layout"].get("annotations", [{}])[0].get("text", "nothing to draw")
        raise HpoError(f"study {study.name!r}: no {kind} view yet: {why}.")
    fig["layout"]["title"]["text"] = f"{study.name}: {fig['layout']['title']['text']}"
    if out.suffix.lower() == ".png":
        save_png(fig, out)
        return out
    import plotly.io as pio

    pio.write_html(fig, str(out), include_plotlyjs=True, full_html=True, auto_open=False)
    return out
