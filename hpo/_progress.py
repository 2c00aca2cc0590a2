"""Live progress of a study: trials done, the running trial's epoch, best so far, time left.

On a terminal it is a rich progress bar; otherwise (CI logs, pipes) one plain line per
finished trial, so logs stay readable.
"""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, Any, TextIO

from hpo._observer import Observer
from hpo.trial import Direction, FrozenTrial, TrialState

if TYPE_CHECKING:
    from hpo.study import Study
    from hpo.trial._trial import Trial

__all__ = ["Progress", "format_duration"]


def format_duration(seconds: float | None) -> str:
    if seconds is None or seconds != seconds:
        return "--:--"
    s = round(seconds)
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


class Progress(Observer):
    """Observer of one ``optimize`` call (see ``Study.optimize(show_progress=True)``): pass
    it in ``observers=``, :meth:`start` it before and :meth:`close` it after."""

    def __init__(
        self,
        study: Study,
        total: int | None,
        timeout: float | None = None,
        *,
        stream: TextIO | None = None,
        already_done: int = 0,
        epochs: int | None = None,
    ) -> None:
        self.study = study
        self.total = total
        self.timeout = timeout
        self.stream = stream or sys.stderr
        self.already = already_done
        self.epochs = epochs
        self.done = 0
        self.best: FrozenTrial | None = None
        self.running: Trial | None = None
        self.in_flight: set[int] = set()  # numbers of this run's trials now running
        self.step: int | None = None
        self.t0 = time.monotonic()
        self.durations: list[float] = []
        self._live: Any = None
        self._task: Any = None
        self.interactive = bool(getattr(self.stream, "isatty", lambda: False)())
        try:
            self.best = study.best_trial
        except Exception:
            self.best = None

    @classmethod
    def for_run(
        cls, study: Study, n_trials: int | None, timeout: float | None, max_trials: int | None
    ) -> Progress:
        """The display of an ``optimize`` call: its total is what is left of ``max_trials``
        (interrupted trials not counted), at most ``n_trials``."""
        progress = cls(study, total=n_trials, timeout=timeout)
        if max_trials is not None:
            n_done = sum(1 for t in study.get_trials() if not t.interrupted)
            progress.total = max(0, max_trials - n_done)
            if n_trials is not None:
                progress.total = min(progress.total, n_trials)
        return progress

    # -- lifecycle -----------------------------------------------------------------------
    def start(self) -> None:
        """Show the display (a rich bar on a terminal; plain lines need no start)."""
        if not self.interactive:
            return
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, TextColumn
        from rich.progress import Progress as RichProgress

        self._live = RichProgress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[status]}"),
            console=Console(file=self.stream),
            transient=False,
        )
        self._live.start()
        self._task = self._live.add_task(
            self.study.name, total=self.total, completed=0, status=self._status()
        )

    def stop(self) -> None:
        if self._live is not None:
            self._live.update(self._task, status=self._status(final=True))
            self._live.stop()
            self._live = None

    def close(self) -> None:
        self.stop()

    # -- events --------------------------------------------------------------------------
    def on_trial_start(self, study: Study, trial: Trial) -> None:
        self.running, self.step = trial, None
        self.in_flight.add(trial.number)
        self._refresh()

    def on_report(self, study: Study, trial: Trial, step: int, value: float) -> None:
        self.running, self.step = trial, step
        self._refresh()

    def on_trial_end(self, study: Study, frozen: FrozenTrial, trial: Trial | None) -> None:
        self._ended(study, frozen)

    def _ended(self, study: Study, trial: FrozenTrial) -> None:
        self.running = None
        self.in_flight.discard(trial.number)
        if trial.interrupted:
            # Not done: its params run again as a new trial (a Ray worker died, --retries),
            # or the run is stopping (Ctrl-C). Counting it made "10/8 done" (issue 17).
            if not self.interactive:
                print(
                    f"[hpo] trial {trial.number} interrupted ({(trial.error or '')[:120]})",
                    file=self.stream,
                    flush=True,
                )
            return
        # A promoted trial (it paused at a rung and went on) was counted when it paused.
        self.done += 0 if trial.promotions else 1
        if self.total is not None and self.done > self.total:
            # Trials of another process went stale during the run and were replaced here.
            self.total = self.done
            if self._live is not None:
                self._live.update(self._task, total=self.total)
        if trial.duration is not None:
            self.durations.append(trial.duration.total_seconds())
        if (
            trial.state is TrialState.COMPLETE
            and trial.value is not None
            and (
                self.best is None
                or self.best.value is None
                or study.direction.better(trial.value, self.best.value)
            )
        ):
            self.best = trial
        if self.interactive:
            self._refresh(advance=True)
        else:
            what = f"{trial.state.value}"
            if trial.value is not None:
                what += f" value={trial.value:.6g}"
            if trial.state is TrialState.FAILED and trial.error:
                what += f" ({trial.error[:120]})"
            if trial.paused:
                what = "paused"
            if trial.state is TrialState.PRUNED and trial.last_step is not None:
                what += f" at step {trial.last_step}"
            resumed = trial.system_attrs.get("resumed")
            if isinstance(resumed, list) and resumed and isinstance(resumed[-1], dict):
                how = "promoted" if resumed[-1].get("promoted") else "resumed"
                what += f" ({how} from step {resumed[-1].get('step')})"
            total = "?" if self.total is None else str(self.total)
            print(
                f"[hpo] trial {trial.number} {what} | {self.done}/{total} done | "
                f"{self._best_text()} | {self._time_text()}",
                file=self.stream,
                flush=True,
            )

    # -- text ----------------------------------------------------------------------------
    def _best_text(self) -> str:
        if self.best is None or self.best.value is None:
            return "best: -"
        arrow = "max" if self.study.direction is Direction.MAXIMIZE else "min"
        return f"best ({arrow}) {self.best.value:.6g} (#{self.best.number})"

    def eta(self) -> float | None:
        elapsed = time.monotonic() - self.t0
        left = None
        if self.total is not None and self.done:
            left = max(self.total - self.done, 0) * (elapsed / self.done)
        if self.timeout is not None:
            t_left = max(self.timeout - elapsed, 0.0)
            left = t_left if left is None else min(left, t_left)
        return left

    def _time_text(self) -> str:
        elapsed = time.monotonic() - self.t0
        return f"{format_duration(elapsed)} elapsed, ~{format_duration(self.eta())} left"

    def _status(self, final: bool = False) -> str:
        parts = []
        if len(self.in_flight) > 1 and not final:
            numbers = sorted(self.in_flight)
            shown = ", ".join(f"#{n}" for n in numbers[:6]) + (" ..." if len(numbers) > 6 else "")
            parts.append(f"running {shown}")
        elif self.running is not None and not final:
            run = f"trial #{self.running.number}"
            if self.step is not None:
                # Objectives report after each epoch (counted from 1) when a budget is known.
                run += f" epoch {self.step}/{self.epochs}" if self.epochs else f" step {self.step}"
            parts.append(run)
        parts.append(self._best_text())
        parts.append(self._time_text())
        return " · ".join(parts)

    def _refresh(self, advance: bool = False) -> None:
        if self._live is not None:
            self._live.update(self._task, advance=1 if advance else 0, status=self._status())
