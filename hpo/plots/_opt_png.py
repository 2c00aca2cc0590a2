"""The optimiser views' plotly figures drawn with matplotlib, for ``hpo plot -o view.png``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hpo.plots._style import Figure

__all__ = ["save_png"]


def _mpl_color(c: Any) -> Any:
    """plotly's ``rgba(r,g,b,a)`` as matplotlib's (r, g, b, a) in [0, 1]; others as given."""
    if isinstance(c, str) and c.startswith("rgba("):
        r, g, b, a = (float(v) for v in c[5:-1].split(","))
        return (r / 255, g / 255, b / 255, a)
    return c


def _mpl_x(values: Sequence[Any], cats: dict[str, int]) -> list[Any]:
    out: list[Any] = []
    for v in values:
        if isinstance(v, str):
            out.append(cats.setdefault(v, len(cats)))
        else:
            out.append(v)
    return out


def save_png(fig: Figure, path: str | Path) -> None:
    """Draw one of these figures with matplotlib: its scatter (lines, markers, filled bands)
    and bar traces, subplot by subplot. Less polished than the HTML, enough for a report."""
    import datetime as _dt

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    layout = fig["layout"]
    height = float(layout.get("height", 450))
    mfig = plt.figure(figsize=(12, max(3.5, height / 80)), dpi=100)
    axes: dict[str, Any] = {}
    cats: dict[str, dict[str, int]] = {}

    def axis_for(xr: str) -> Any:
        if xr in axes:
            return axes[xr]
        k = xr[1:]
        xd = layout.get(f"xaxis{k}", {}).get("domain", [0, 1])
        yd = layout.get(f"yaxis{k}", {}).get("domain", [0, 1])
        ax = mfig.add_axes(
            (0.06 + xd[0] * 0.9, 0.08 + yd[0] * 0.8, (xd[1] - xd[0]) * 0.9, (yd[1] - yd[0]) * 0.8)
        )
        xa, ya = layout.get(f"xaxis{k}", {}), layout.get(f"yaxis{k}", {})
        if xa.get("type") == "log":
            ax.set_xscale("log")
        if ya.get("type") == "log":
            ax.set_yscale("log")
        axes[xr] = ax
        return ax

    for note in layout.get("annotations", []):
        ref = str(note.get("xref", "")).split(" ")[0]
        if ref.startswith("x"):
            axis_for(ref).set_title(
                str(note["text"]).replace("<b>", "").replace("</b>", ""), fontsize=9
            )
    prev: dict[str, tuple[list[Any], list[Any]]] = {}
    for tr in fig["data"]:
        xr = tr.get("xaxis", "x")
        ax = axis_for(xr)
        c = cats.setdefault(xr, {})
        xs = tr.get("x", [])
        if layout.get(f"xaxis{xr[1:]}", {}).get("type") == "date" and tr.get("base") is not None:
            base = [_dt.datetime.fromisoformat(b) for b in tr["base"]]
            widths = [_dt.timedelta(milliseconds=w) for w in xs]
            ys = _mpl_x(tr.get("y", []), c)
            ax.barh(
                ys,
                widths,
                left=base,
                color=_mpl_color(tr.get("marker", {}).get("color")),
                label=tr.get("name"),
            )
            ax.set_yticks(list(c.values()), list(c.keys()), fontsize=7)
            continue
        x = _mpl_x(xs, c)
        y = tr.get("y", [])
        marker = tr.get("marker", {})
        color = marker.get("color") if isinstance(marker.get("color"), str) else None
        if tr["type"] == "bar":
            ax.bar(x, y, color=color, alpha=0.7, label=tr.get("name"))
        elif tr.get("fill") == "tonexty" and xr in prev:
            _px, py = prev[xr]
            ax.fill_between(x, py, y, color="#4c78a8", alpha=0.2, label=tr.get("name"))
        elif isinstance(marker.get("color"), list):
            ax.scatter(
                x,
                y,
                c=marker["color"],
                marker="s",
                s=marker.get("size", 6) ** 2 / 2,
                cmap="viridis",
            )
        else:
            mode = tr.get("mode", "lines")
            if "lines" in mode and tr.get("line", {}).get("width", 1) != 0:
                ax.plot(x, y, color=tr.get("line", {}).get("color"), label=tr.get("name"))
            if "markers" in mode:
                ax.scatter(x, y, s=12, color=color or "#333", label=tr.get("name"), zorder=3)
        prev[xr] = (x, y)
        if c:
            ax.set_xticks(list(c.values()), list(c.keys()), fontsize=7)
    mfig.suptitle(str(layout.get("title", {}).get("text", ""))[:150], fontsize=10)
    mfig.savefig(str(path))
    plt.close(mfig)
