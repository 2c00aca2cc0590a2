"""Tables and text for the CLI (rich on a terminal, plain text in pipes)."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from typing import Any

import yaml
from rich.console import Console
from rich.table import Table

from hpo.storage import StudySummary
from hpo.trial import Direction, FrozenTrial, TrialState

__all__ = [
    "best_yaml",
    "console",
    "params_text",
    "studies_table",
    "trial_rows",
    "trial_text",
    "trials_table",
    "where_ran",
]

_STATE_STYLE = {
    TrialState.COMPLETE: "green",
    TrialState.PRUNED: "yellow",
    TrialState.FAILED: "red",
    TrialState.RUNNING: "cyan",
}


def console() -> Console:
    import sys

    # Off a terminal (pipes, CI logs) rich would wrap tables at 80 columns; give them room.
    width = None if sys.stdout.isatty() else 200
    return Console(highlight=False, soft_wrap=False, width=width)


def _num(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def params_text(params: Mapping[str, Any]) -> str:
    return " ".join(f"{k}={_num(v)}" for k, v in params.items())


def _duration(t: FrozenTrial) -> str:
    d = t.duration
    if d is None:
        return "-"
    s = d.total_seconds()
    return f"{s:.1f}s" if s < 120 else f"{s / 60:.1f}m"


def sort_trials(trials: Sequence[FrozenTrial], direction: Direction) -> list[FrozenTrial]:
    """Completed trials best first, then pruned, running and failed ones by number."""
    sign = 1.0 if direction is Direction.MINIMIZE else -1.0
    rank = {
        TrialState.COMPLETE: 0,
        TrialState.PRUNED: 1,
        TrialState.RUNNING: 2,
        TrialState.FAILED: 3,
    }

    def key(t: FrozenTrial) -> tuple[int, float, int]:
        v = sign * t.value if t.value is not None else math.inf
        return (rank[t.state], v if t.state is TrialState.COMPLETE else 0.0, t.number)

    return sorted(trials, key=key)


def trials_table(study: Any, trials: Sequence[FrozenTrial], limit: int | None = None) -> Table:
    ordered = sort_trials(trials, study.direction)
    counts = {s: sum(1 for t in trials if t.state is s) for s in TrialState}
    title = (
        f"{study.name}: {len(trials)} trials ("
        + ", ".join(f"{n} {s.value}" for s, n in counts.items() if n)
        + f"), {study.direction.value}"
    )
    table = Table(title=title, title_justify="left")
    for col, just in (
        ("#", "right"),
        ("state", "left"),
        ("value", "right"),
        ("duration", "right"),
        ("host", "left"),
        ("node", "left"),
        ("device", "left"),
        ("params / error", "left"),
    ):
        table.add_column(col, justify=just)  # type: ignore[arg-type]
    shown = ordered[:limit] if limit else ordered
    for t in shown:
        style = _STATE_STYLE[t.state]
        detail = params_text(t.params)
        if t.state is TrialState.FAILED and t.error:
            detail = f"{detail}  [red]{t.error[:160]}[/]"
        if t.state is TrialState.PRUNED and t.last_step is not None:
            how = "paused" if t.paused else "pruned"
            detail = f"{detail}  [yellow]{how} at step {t.last_step}[/]"
        resumed = resume_text(t)
        if resumed:
            detail = f"{detail}  [cyan]{resumed}[/]"
        table.add_row(
            str(t.number),
            f"[{style}]{'paused' if t.paused else t.state.value}[/]",
            "-" if t.value is None else f"{t.value:.6g}",
            _duration(t),
            *where_ran(t),
            detail,
        )
    if limit and len(ordered) > limit:
        table.caption = f"{len(ordered) - limit} more: hpo show {study.name}"
    return table


def resume_text(t: FrozenTrial) -> str:
    """``resumed 2x, 5 epochs saved`` for a trial resumed from checkpoints; else empty."""
    return t.resume_summary


def checkpoint_lines(t: FrozenTrial) -> list[str]:
    """Where a trial's checkpoints are, and each time it resumed from one."""
    lines = []
    info = t.system_attrs.get("checkpoint")
    if isinstance(info, dict):
        files = info.get("files") or []
        where = f"{info.get('dir')}/{files[-1]}" if files else "deleted"
        lines.append(f"checkpoint: step {info.get('step')} ({info.get('saved', 0)} saved): {where}")
    for r in t.system_attrs.get("resumed") or []:
        if isinstance(r, dict):
            how = "promoted" if r.get("promoted") else "resumed"
            lines.append(
                f"{how} from step {r.get('step')} at {r.get('at')} on {r.get('host')}"
                + (f" (after: {r['error']})" if r.get("error") else "")
            )
    text = resume_text(t)
    if text:
        lines.append(text)
    return lines


def where_ran(t: FrozenTrial) -> tuple[str, str, str]:
    """Host, Ray node (its id's first 8 characters) and device of a trial, ``-`` if unknown.

    The host is the machine that ran the objective (a Ray worker's), else the one that asked
    for the trial; the device is what Ray gave the trial, else what the training loop used.
    """
    sa, ua = t.system_attrs, t.user_attrs
    host = sa.get("worker_host") or sa.get("host") or "-"
    node = str(sa.get("node_id") or "-")[:8]
    device = sa.get("device") or ua.get("device") or "-"
    gpus = sa.get("gpu_ids")
    if device == "cuda" and gpus:
        device = f"cuda (GPU {','.join(map(str, gpus))})"
    return str(host), node, str(device)


def trial_text(t: FrozenTrial) -> str:
    """One trial in full, for ``hpo show STUDY --trial N``."""
    host, node, device = where_ran(t)
    lines = [
        f"trial {t.number}: {t.state.value}"
        + (" (interrupted)" if t.interrupted else "")
        + (f" (paused at step {t.last_step})" if t.paused else ""),
        f"value: {'-' if t.value is None else f'{t.value:.6g}'}",
        f"started: {t.started_at:%Y-%m-%d %H:%M:%S} UTC" if t.started_at else "started: -",
        f"duration: {_duration(t)}",
        f"host: {host}  node: {node}  device: {device}",
        "params:",
        *[f"  {k}: {_num(v)}" for k, v in t.params.items()],
    ]
    if t.intermediate:
        lines.append("intermediate values (step: value):")
        lines += [f"  {step}: {v:.6g}" for step, v in t.intermediate.items()]
    else:
        lines.append("intermediate values: none")
    lines += checkpoint_lines(t)
    if t.user_attrs:
        lines.append("user attributes: " + ", ".join(sorted(t.user_attrs)))
    if t.error:
        lines.append(f"error: {t.error}")
    tb = t.system_attrs.get("traceback")
    if tb:
        lines += ["traceback:", *[f"  {ln}" for ln in str(tb).rstrip().splitlines()]]
    return "\n".join(lines) + "\n"


def trial_rows(study: Any, trials: Sequence[FrozenTrial]) -> list[dict[str, Any]]:
    return [
        {
            "number": t.number,
            "state": t.state.value,
            "value": t.value,
            "params": dict(t.params),
            "intermediate": {str(k): v for k, v in t.intermediate.items()},
            "last_step": t.last_step,
            "started_at": t.started_at.isoformat() if t.started_at else None,
            "finished_at": t.finished_at.isoformat() if t.finished_at else None,
            "duration_s": t.duration.total_seconds() if t.duration else None,
            "error": t.error,
            "user_attrs": dict(t.user_attrs),
            "system_attrs": {k: v for k, v in t.system_attrs.items() if k != "traceback"},
        }
        for t in sort_trials(trials, study.direction)
    ]


def studies_table(summaries: Sequence[StudySummary]) -> Table:
    table = Table()
    for col in (
        "study",
        "space",
        "strategy",
        "direction",
        "trials",
        "best",
        "created",
        "last activity",
    ):
        table.add_column(col)
    now = dt.datetime.now(dt.timezone.utc)
    for s in summaries:
        states = ", ".join(f"{n} {st.value}" for st, n in s.states.items()) or "0"
        last = "-"
        if s.last_activity is not None:
            ago = (now - s.last_activity).total_seconds()
            last = (
                f"{ago / 60:.0f} min ago" if ago < 86400 else s.last_activity.strftime("%Y-%m-%d")
            )
        table.add_row(
            s.study.name,
            str(s.study.meta.get("space_name", "-")),
            s.study.strategy,
            s.study.direction.value,
            f"{s.n_trials} ({states})",
            "-" if s.best_value is None else f"{s.best_value:.6g}",
            s.study.created_at.strftime("%Y-%m-%d %H:%M"),
            last,
        )
    return table


def best_yaml(study: Any, trial: FrozenTrial) -> str:
    metric = study.record.spec.metric or "value"
    head = (
        f"# best of study {study.name}: {metric} = {trial.value:.6g} "
        f"(trial {trial.number}, {study.direction.value})\n"
    )
    return head + yaml.safe_dump(dict(trial.params), sort_keys=False)
