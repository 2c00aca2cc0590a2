"""The confusion matrix of a study's final model on its test split (issue 16).

``hpo plot STUDY --kind confusion -o f.png|html`` draws the latest evaluation's matrix: rows
are the true classes, columns the predicted ones, each cell the number of test images.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hpo.exceptions import HpoError

if TYPE_CHECKING:
    from hpo.storage import Evaluation
    from hpo.study import Study

__all__ = ["CONFUSION", "confusion_figure", "write_confusion"]

CONFUSION = "confusion"


def _title(name: str, ev: Evaluation) -> str:
    return (
        f"{name}: final model (trial {ev.trial_number}) on the test split — "
        f"test accuracy {100 * ev.test_accuracy:.2f} %"
    )


def confusion_figure(name: str, ev: Evaluation) -> dict[str, Any]:
    """A plotly heatmap (a plain dict) of ``ev.confusion``."""
    matrix = [list(row) for row in ev.confusion]
    labels = [str(i) for i in range(len(matrix))]
    return {
        "data": [
            {
                "type": "heatmap",
                "z": matrix,
                "x": labels,
                "y": labels,
                "colorscale": "Blues",
                "text": matrix,
                "texttemplate": "%{text}",
                "hovertemplate": "true %{y}, predicted %{x}: %{z}<extra></extra>",
            }
        ],
        "layout": {
            "title": {"text": _title(name, ev)},
            "xaxis": {"title": {"text": "predicted class"}, "type": "category"},
            "yaxis": {"title": {"text": "true class"}, "type": "category", "autorange": "reversed"},
            "width": 640,
            "height": 600,
        },
    }


def _png(name: str, ev: Evaluation, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    matrix: Sequence[Sequence[int]] = ev.confusion
    n = len(matrix)
    fig, ax = plt.subplots(figsize=(7, 6.2), dpi=100)
    im = ax.imshow(matrix, cmap="Blues")
    top = max((max(r) for r in matrix), default=0)
    for i in range(n):
        for j in range(n):
            v = matrix[i][j]
            ax.text(j, i, str(v), ha="center", va="center", fontsize=8,
                    color="white" if v > top / 2 else "black")  # fmt: skip
    ax.set_xticks(range(n))
    ax.set_yticks(range(n))
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(_title(name, ev), fontsize=9)
    fig.colorbar(im, ax=ax)
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)


def write_confusion(study: Study, path: Path) -> Path:
    """Draw the latest evaluation's confusion matrix into ``path`` (.png or .html).

    Raises:
        HpoError: the study has no final evaluation yet (the message says how to make one).
    """
    ev = study.evaluation
    if ev is None:
        raise HpoError(
            f"study {study.name!r} has no final evaluation to plot; make one with: "
            f"hpo evaluate {study.name}"
        )
    if path.suffix.lower() == ".png":
        _png(study.name, ev, path)
        return path
    import plotly.io as pio

    fig = confusion_figure(study.name, ev)
    pio.write_html(fig, str(path), include_plotlyjs=True, full_html=True, auto_open=False)
    return path
