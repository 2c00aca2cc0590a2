"""The timeline view: the workers' trials over time, idle gaps, running trials' ETAs."""

from __future__ import annotations

import datetime as _dt
import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from hpo.plots._style import STATE_COLORS, Figure, empty_figure, figure_layout
from hpo.trial import FrozenTrial, TrialState

__all__ = ["Bar", "RunningTrial", "Timeline", "timeline", "timeline_figure"]


@dataclass(frozen=True)
class Bar:
    lane: str
    number: int
    state: TrialState
    start: _dt.datetime
    end: _dt.datetime
    running: bool


@dataclass(frozen=True)
class RunningTrial:
    number: int
    lane: str
    epoch: int | None
    epochs: int | None
    elapsed_s: float
    eta_s: float | None


@dataclass(frozen=True)
class Timeline:
    lanes: tuple[str, ...]
    bars: tuple[Bar, ...]
    busy: tuple[float, ...]  # per lane: share of its span (first start to last end) busy
    idle: tuple[tuple[str, _dt.datetime, _dt.datetime], ...]  # gaps between trials
    running: tuple[RunningTrial, ...]
    now: _dt.datetime
    note: str | None = None


def _worker(t: FrozenTrial) -> str:
    s = t.system_attrs
    host = s.get("worker_host") or s.get("host") or "?"
    gpus = s.get("gpu_ids")
    if gpus:
        return f"{host} · gpu {','.join(str(g) for g in gpus)}"
    pid = s.get("worker_pid") or s.get("pid")
    return f"{host} · pid {pid}" if pid is not None else str(host)


def _epochs(t: FrozenTrial, done: Sequence[FrozenTrial]) -> int | None:
    for source in (t.params, t.user_attrs):
        v = source.get("epochs")
        if isinstance(v, int) and not isinstance(v, bool) and v > 0:
            return v
    steps = [u.last_step for u in done if u.state is TrialState.COMPLETE and u.last_step]
    return max(set(steps), key=steps.count) if steps else None  # the usual budget


def timeline(trials: Sequence[FrozenTrial], now: _dt.datetime | None = None) -> Timeline:
    """Trials as bars per worker (host and GPU, or host and process), idle gaps between them,
    and the running trials with their epoch and an ETA (mean time per reported epoch times
    the epochs left; the epochs from ``params["epochs"]``, else the usual count of steps of
    completed trials)."""
    now = now or _dt.datetime.now(_dt.timezone.utc)
    started = sorted((t for t in trials if t.started_at is not None), key=lambda t: t.started_at)  # type: ignore[arg-type,return-value]
    if not started:
        return Timeline((), (), (), (), (), now, note="no trial has started yet")
    # Overlapping trials of one worker key (threads of one process) get sub-lanes.
    ends: dict[str, list[_dt.datetime]] = {}
    bars = []
    for t in started:
        key = _worker(t)
        end = t.finished_at or now
        slots = ends.setdefault(key, [])
        for i, free_at in enumerate(slots):
            if free_at <= t.started_at:  # type: ignore[operator]
                slots[i] = end
                slot = i
                break
        else:
            slots.append(end)
            slot = len(slots) - 1
        lane = key if slot == 0 else f"{key} #{slot + 1}"
        bars.append(Bar(lane, t.number, t.state, t.started_at, end, t.finished_at is None))  # type: ignore[arg-type]
    lanes = sorted({b.lane for b in bars})
    busy, idle = [], []
    for lane in lanes:
        mine = sorted((b for b in bars if b.lane == lane), key=lambda b: b.start)
        span = (max(b.end for b in mine) - mine[0].start).total_seconds()
        worked = sum((b.end - b.start).total_seconds() for b in mine)
        busy.append(min(worked / span, 1.0) if span > 0 else 1.0)
        for a, b in itertools.pairwise(mine):
            if b.start > a.end:
                idle.append((lane, a.end, b.start))
    done = [t for t in trials if t.state.is_finished]
    running = []
    lane_of = {b.number: b.lane for b in bars}
    for t in started:
        if t.finished_at is not None:
            continue
        elapsed = (now - t.started_at).total_seconds()  # type: ignore[operator]
        epoch = t.last_step
        total = _epochs(t, done)
        eta = None
        if epoch and total and total >= epoch and elapsed > 0:
            eta = elapsed / epoch * (total - epoch)
        running.append(RunningTrial(t.number, lane_of[t.number], epoch, total, elapsed, eta))
    return Timeline(tuple(lanes), tuple(bars), tuple(busy), tuple(idle), tuple(running), now)


# -- the figure ----------------------------------------------------------------------------


def _iso(t: Any) -> str:
    return str(t.isoformat())


def _ms(a: Any, b: Any) -> float:
    return float((b - a).total_seconds() * 1000.0)


def _dur(s: float | None) -> str:
    if s is None:
        return "?"
    if s < 120:
        return f"{s:.0f} s"
    if s < 7200:
        return f"{s / 60:.1f} min"
    return f"{s / 3600:.1f} h"


def timeline_figure(tl: Timeline) -> Figure:
    """One row per worker (host and GPU, or host and process): each trial a bar coloured by
    state, idle gaps in grey; the row's label says how busy it was. Running trials' hover
    gives their epoch and ETA."""
    title = "Workers: trials over time"
    if tl.note:
        return empty_figure(title, tl.note)
    label = {ln: f"{ln} · {b:.0%} busy" for ln, b in zip(tl.lanes, tl.busy, strict=True)}
    eta = {r.number: r for r in tl.running}
    data: list[dict[str, Any]] = []
    for state in TrialState:
        bars = [b for b in tl.bars if b.state is state]
        if not bars:
            continue
        text = []
        for b in bars:
            r = eta.get(b.number)
            if r is not None:
                ep = f"epoch {r.epoch}/{r.epochs or '?'}" if r.epoch else "no epoch yet"
                text.append(
                    f"trial {b.number} · running {_dur(r.elapsed_s)} · {ep} · ETA {_dur(r.eta_s)}"
                )
            else:
                text.append(f"trial {b.number} · {state.value} · {_dur(_ms(b.start, b.end) / 1e3)}")
        data.append(
            {
                "type": "bar",
                "orientation": "h",
                "name": state.value,
                "y": [label[b.lane] for b in bars],
                "x": [_ms(b.start, b.end) for b in bars],
                "base": [_iso(b.start) for b in bars],
                "customdata": [b.number for b in bars],
                "text": text,
                "textposition": "none",
                "hovertemplate": "%{text}<extra></extra>",
                "marker": {"color": STATE_COLORS[state], "line": {"width": 0.5, "color": "white"}},
                "meta": {"role": "trials", "state": state.value},
            }
        )
    if tl.idle:
        data.append(
            {
                "type": "bar",
                "orientation": "h",
                "name": "idle",
                "y": [label[ln] for ln, _a, _b in tl.idle],
                "x": [_ms(a, b) for _ln, a, b in tl.idle],
                "base": [_iso(a) for _ln, a, _b in tl.idle],
                "text": [f"idle {_dur(_ms(a, b) / 1e3)}" for _ln, a, b in tl.idle],
                "textposition": "none",
                "hovertemplate": "%{text}<extra></extra>",
                "marker": {"color": "rgba(180,180,180,0.35)"},
                "meta": {"role": "idle"},
            }
        )
    busy = sum(tl.busy) / len(tl.busy) if tl.busy else 0.0
    running = ", ".join(
        f"#{r.number} epoch {r.epoch or 0}/{r.epochs or '?'} ETA {_dur(r.eta_s)}"
        for r in tl.running[:6]
    )
    sub = f" · {len(tl.lanes)} workers, {busy:.0%} busy on average"
    if running:
        sub += f" · running: {running}"
    return {
        "data": data,
        "layout": figure_layout(
            title + sub,
            barmode="overlay",
            height=max(260, 34 * len(tl.lanes) + 140),
            xaxis={"type": "date", "title": {"text": "time (UTC)"}},
            yaxis={"automargin": True, "categoryorder": "category descending"},
            legend={"orientation": "h", "y": -0.25},
            meta={
                "running": [
                    {
                        "number": r.number,
                        "worker": r.lane,
                        "epoch": r.epoch,
                        "epochs": r.epochs,
                        "elapsed_s": r.elapsed_s,
                        "eta_s": r.eta_s,
                    }
                    for r in tl.running
                ],
                "busy": dict(zip(tl.lanes, tl.busy, strict=True)),
            },
        ),
    }
