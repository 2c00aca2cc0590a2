"""`hpo plot` and the plot data it shares with the dashboard (hpo.plots)."""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # the helper module next to this file

from _dashboard_server import SPACE, counts, fill_study, hpo_command

import hpo
from hpo.plots import KINDS, curves, figure, history, importance, parallel, slices

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def store_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('plot')}/hpo.db"
    fill_study(url, "demo", n_trials=16)
    hpo.create_study(space=SPACE, strategy="random", storage=url, name="empty")
    return url


def run_hpo(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*hpo_command(), *args], capture_output=True, text=True, timeout=300)


def run_main(monkeypatch: pytest.MonkeyPatch, *args: str) -> int:
    """The `hpo` entry point in this process (the same code as the script, imports warm)."""
    from hpo.cli import main

    monkeypatch.setattr(sys, "argv", ["hpo", *args])
    # main() points the "hpo" logger at this test's stderr: put it back as it was afterwards.
    log = logging.getLogger("hpo")
    saved = (list(log.handlers), log.level, log.propagate)
    try:
        with pytest.raises(SystemExit) as e:
            main()
            raise SystemExit(0)
    finally:
        log.handlers[:] = saved[0]
        log.setLevel(saved[1])
        log.propagate = saved[2]
    return int(e.value.code or 0)


def figure_json(html: str) -> list[dict[str, object]]:
    """The traces plotly.io.write_html put into the page."""
    m = re.search(r"Plotly\.newPlot\(\s*\"[^\"]+\",\s*(\[.*?\]),\s*\{", html, re.S)
    assert m, "no Plotly.newPlot call in the html"
    return list(json.loads(m.group(1)))


@pytest.mark.parametrize("kind", ["history", "parallel", "importance", "slices", "curves"])
def test_plot_writes_png_and_html(
    kind: str,
    store_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from matplotlib.image import imread

    png, html = tmp_path / f"{kind}.png", tmp_path / f"{kind}.html"
    for out in (png, html):
        rc = run_main(
            monkeypatch, "plot", "demo", "--kind", kind, "-o", str(out), "--storage", store_url
        )
        assert rc == 0, capsys.readouterr().err
        assert f"wrote {out}" in capsys.readouterr().out

    data = png.read_bytes()
    assert data.startswith(PNG_MAGIC) and len(data) > 10_000
    height, width = imread(str(png)).shape[:2]
    assert width >= 600 and height >= 300

    page = html.read_text()
    assert '<script src="http' not in page  # plotly.js is inline: the file opens offline
    assert "demo: " in page  # the title names the study
    traces = figure_json(page)
    study = hpo.load_study("demo", storage=store_url)
    n_complete = counts(study.trials)["complete"]
    if kind == "history":
        assert len(traces[0]["x"]) == n_complete  # type: ignore[arg-type]
    elif kind == "parallel":
        lines = [t["meta"]["trials"] for t in traces if "meta" in t]
        assert sum(len(group) for group in lines) == n_complete  # type: ignore[arg-type]
    elif kind == "importance":
        assert traces[0]["y"][-1] == "lr"  # type: ignore[index]
    elif kind == "slices":
        assert len(traces) == len(SPACE)
    else:
        best = study.best_trial.number
        assert traces[-1]["name"] == f"trial {best} (complete)"  # best highlighted by default


def test_plot_highlight_option(
    store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "curves.html"
    rc = run_main(
        monkeypatch,
        "plot",
        "demo",
        "-k",
        "curves",
        "-o",
        str(out),
        "--storage",
        store_url,
        "--highlight",
        "2,3",
    )
    assert rc == 0
    names = [t["name"] for t in figure_json(out.read_text())]
    assert names[-2:] == ["trial 2 (complete)", "trial 3 (pruned)"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["demo", "--kind", "pie", "-o", "x.png"],
            "error: --kind must be one of history, parallel, importance, slices, curves, "
            "confusion; got 'pie'.",
        ),
        (["nope", "--kind", "history", "-o", "x.png"], "error: no study named 'nope'"),
        (
            ["demo", "--kind", "history", "-o", "x.pdf"],
            "error: the output file must end in .png or .html, got 'x.pdf'.",
        ),
        (
            ["demo", "--kind", "history", "-o", "missing-dir/x.png"],
            "error: folder 'missing-dir' does not exist; create it first.",
        ),
        (
            ["empty", "--kind", "history", "-o", "x.png"],
            "error: study 'empty' has no completed trial to plot yet.",
        ),
        (
            ["empty", "--kind", "curves", "-o", "x.html"],
            "error: study 'empty': no trial has reported intermediate values (trial.report).",
        ),
        (
            ["demo", "--kind", "curves", "-o", "x.png", "--highlight", "one"],
            "error: --highlight must be trial numbers separated by commas, got 'one'.",
        ),
    ],
)
def test_plot_errors_are_one_line(
    args: list[str],
    message: str,
    store_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    rc = run_main(monkeypatch, "plot", *args, "--storage", store_url)
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1, err
    assert err[0].startswith(message), err
    assert not list(tmp_path.iterdir())  # nothing written


def test_the_real_command(store_url: str, tmp_path: Path) -> None:
    """The installed entry point, once each way: success, and a one-line error with exit 2."""
    out = tmp_path / "h.png"
    ok = run_hpo("plot", "demo", "--kind", "history", "-o", str(out), "--storage", store_url)
    assert ok.returncode == 0, ok.stderr
    assert out.read_bytes().startswith(PNG_MAGIC)
    bad = run_hpo("plot", "demo", "--kind", "nope", "-o", str(out), "--storage", store_url)
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == [
        "error: --kind must be one of history, parallel, importance, slices, curves, confusion; "
        "got 'nope'."
    ]
    helped = run_hpo("--help")
    assert "dashboard" in helped.stdout and "plot" in helped.stdout


# -- the data under every picture ---------------------------------------------------------------


def _study() -> hpo.Study:
    study = hpo.create_study(space=SPACE, strategy="random", seed=3)
    from _dashboard_server import objective

    study.optimize(objective, n_trials=30)
    return study


def test_history_best_so_far() -> None:
    study = _study()
    h = history(study.trials, hpo.Direction.MINIMIZE)
    complete = [t for t in study.trials if t.state is hpo.TrialState.COMPLETE]
    assert h.numbers == tuple(t.number for t in complete)
    assert all(b == min(h.values[: i + 1]) for i, b in enumerate(h.best))
    assert h.pruned_numbers == (3,) and h.n_failed == 1
    up = history(study.trials, hpo.Direction.MAXIMIZE)
    assert all(b == max(up.values[: i + 1]) for i, b in enumerate(up.best))


def test_parallel_marks_inactive_params() -> None:
    study = _study()
    p = parallel(study.trials, study.space)
    names = [a.name for a in p.axes]
    momentum = p.columns[names.index("momentum")]
    optimizer = p.columns[names.index("optimizer")]
    assert all((m is None) == (o == 1.0) for m, o in zip(momentum, optimizer, strict=True))  # adam
    fig = figure("parallel", study.trials, study.space, study.direction)
    inactive = [a for a in fig["layout"]["annotations"] if a["text"] == "inactive"]
    assert [a["x"] for a in inactive] == [names.index("momentum")]  # only momentum has it
    # Every adam trial's line crosses the momentum axis at the "inactive" tick.
    at = names.index("momentum")
    for trace in fig["data"][:-1]:
        for k, n in enumerate(trace["meta"]["trials"]):
            y = trace["y"][k * (len(names) + 2) + at]  # each line: one point per axis, a gap
            adam = study.trials[n].params["optimizer"] == "adam"
            assert (y == inactive[0]["y"]) == adam


def test_importance_finds_the_parameter_that_matters() -> None:
    """The objective is 10·(log10 lr + 2)² plus small terms: lr must come first, by far."""
    study = _study()
    imp = importance(study.trials, study.space)
    assert imp.names[0] == "lr" and imp.scores[0] > 0.8
    assert sum(imp.scores) == pytest.approx(1.0)
    again = importance(study.trials, study.space)
    assert again == imp  # seeded: the same trials give the same answer


def test_importance_needs_enough_trials() -> None:
    study = hpo.create_study(space=SPACE, strategy="random")
    study.optimize(lambda t: 1.0, n_trials=2)
    assert "needs at least" in (importance(study.trials, study.space).note or "")
    study.optimize(lambda t: 1.0, n_trials=4)
    assert importance(study.trials, study.space).note == "every completed trial has the same value"


def test_slices_and_curves() -> None:
    study = _study()
    sl = {s.axis.name: s for s in slices(study.trials, study.space)}
    assert sl["lr"].axis.scale == "log" and sl["optimizer"].axis.scale == "category"
    assert len(sl["momentum"].numbers) < len(sl["lr"].numbers)  # only where it was active
    cs = {c.number: c for c in curves(study.trials)}
    assert cs[3].state is hpo.TrialState.PRUNED and cs[3].steps == (1, 2)
    assert cs[6].values[1] is None  # the NaN report
    fig = figure("curves", study.trials, study.space, study.direction, highlight=[6])
    assert fig["data"][-1]["meta"] == {"trials": [6], "highlight": True}


@pytest.mark.parametrize("kind", KINDS)
def test_every_figure_is_valid_plotly(kind: str) -> None:
    """plotly's own validator accepts each figure dict (what the page and the html draw)."""
    import plotly.graph_objects as go

    study = _study()
    go.Figure(figure(kind, study.trials, study.space, study.direction, highlight=[1, 3]))
    empty = hpo.create_study(space=SPACE, strategy="random")
    go.Figure(figure(kind, empty.trials, empty.space, empty.direction))
