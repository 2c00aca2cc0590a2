"""Write a study's plot to a file: ``.html`` with plotly, ``.png`` with matplotlib."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hpo.exceptions import HpoError
from hpo.plots import _data, _figures
from hpo.plots._confusion import CONFUSION, write_confusion

if TYPE_CHECKING:
    from hpo.study import Study

__all__ = ["write_plot"]

SUFFIXES = (".html", ".png")


def _data_for(kind: str, study: Study, trials: Sequence[Any]) -> Any:
    if kind == "history":
        return _data.history(trials, study.direction)
    if kind == "parallel":
        return _data.parallel(trials, study.space)
    if kind == "importance":
        return _data.importance(trials, study.space)
    if kind == "slices":
        return _data.slices(trials, study.space)
    return _data.curves(trials)


def _why_empty(kind: str, data: Any, study: Study) -> str | None:
    name = study.name
    if (
        kind in ("history", "parallel")
        and not data.numbers
        and not getattr(data, "pruned_numbers", ())
    ):
        return f"study {name!r} has no completed trial to plot yet."
    if kind == "slices" and not any(s.numbers for s in data):
        return f"study {name!r} has no completed trial to plot yet."
    if kind == "importance" and data.note:
        return f"study {name!r}: parameter importance {data.note}."
    if kind == "curves" and not data:
        return f"study {name!r}: no trial has reported intermediate values (trial.report)."
    return None


def write_plot(
    study: Study, kind: str, path: str | Path, *, highlight: Sequence[int] | None = None
) -> Path:
    """Draw plot ``kind`` of ``study`` into ``path`` (``.html``: plotly, self-contained;
    ``.png``: matplotlib) and return the path.

    ``highlight`` picks the trials drawn on top of the learning curves (default: the best).

    Raises:
        HpoError: an unknown kind or file type, or nothing to plot yet (the message says why).
    """
    kinds = (*_figures.KINDS, CONFUSION)
    if kind not in kinds:
        raise HpoError(f"--kind must be one of {', '.join(kinds)}; got {kind!r}.")
    out = Path(path)
    if out.suffix.lower() not in SUFFIXES:
        raise HpoError(f"the output file must end in .png or .html, got {str(out)!r}.")
    if not out.parent.is_dir():
        raise HpoError(f"folder {str(out.parent)!r} does not exist; create it first.")
    if kind == CONFUSION:  # the final model's test split (issue 16), not the trials
        return write_confusion(study, out)
    trials = study.trials
    data = _data_for(kind, study, trials)
    reason = _why_empty(kind, data, study)
    if reason:
        raise HpoError(reason)
    if highlight is None:
        best = _data.history(trials, study.direction)
        highlight = [best.numbers[best.values.index(best.best[-1])]] if best.numbers else []
    if out.suffix.lower() == ".png":
        from hpo.plots._matplotlib import save_png

        save_png(kind, data, out, direction=study.direction, highlight=list(highlight))
        return out
    fig = _figures.figure(
        kind,
        trials,
        study.space,
        study.direction,
        highlight=highlight,
        importance_data=data if kind == "importance" else None,
    )
    fig["layout"]["title"]["text"] = f"{study.name}: {fig['layout']['title']['text']}"
    import plotly.io as pio

    # The plotly.js bundle is written into the file: it opens offline, anywhere.
    pio.write_html(fig, str(out), include_plotlyjs=True, full_html=True, auto_open=False)
    return out
