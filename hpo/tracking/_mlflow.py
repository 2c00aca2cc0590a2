"""MlflowTracker: every study an MLflow experiment, every trial a nested run.

What lands in MLflow
    * experiment = the study's name; one parent run per study (tag ``hpo.kind=study``);
    * one nested run per finished trial (``trial-<n>``): all params; per-epoch metrics with
      their step (the objective's reported values, and every list-of-numbers user attribute
      such as ``train_loss``, ``val_accuracy``, ``epoch_time``); the final ``value``;
      ``duration_s``; tags ``hpo.study``, ``hpo.trial``, ``hpo.strategy``, ``hpo.state``,
      ``hpo.device``, ``hpo.host`` and, for failed or pruned trials, ``hpo.error``. The run's
      status is FINISHED (complete), KILLED (pruned) or FAILED (failed);
    * the trained model of the best trial so far (``log_models="best"``; ``"all"`` logs every
      trial's, ``"none"`` none) as an MLflow model at ``runs:/<run_id>/model``, which
      ``mlflow.pytorch.load_model`` opens. The objective hands the model over with
      ``trial.attach("model", net)`` and a small input batch with
      ``trial.attach("input_example", x[:2])`` (the built-in training loop does both): the
      model is then saved in MLflow's "pt2" format (``torch.export``, batch size dynamic),
      otherwise as a pickle.

Rules
    * The hpo store stays the source of truth. Each tracked trial records its run id in its
      system attributes (``mlflow_run_id``).
    * Tracking never loses or stalls a trial: runs are logged by a background thread after the
      trial is stored, from a bounded queue (a trial that finds it full is left untracked),
      with no long retries. A server that stops answering (dead, or hung: a stopped process
      accepts connections and never replies) trips a circuit breaker: a watchdog probes
      ``/health`` once a request has been pending 0.1 s and opens the breaker when the probe
      gets no answer within 0.5 s. A wait for tracking (``flush``, ``close``, a Ray worker
      after each trial) returns at once while it is open; the queue waits, untouched, until a
      probe 10 s later finds the server back. So a hung server costs a study at most about
      0.6 s per process, once (nothing when the trials outlast the probe). If
      tracking fails, one warning says so; ``hpo mlflow-sync STUDY``
      (:meth:`MlflowTracker.sync`) backfills every trial not yet tracked, and running it twice
      creates no duplicates (runs are found by their ``hpo.study``/``hpo.trial`` tags before
      any is created).
    * The study's parent run is RUNNING while a process tracks the study, and ends when it is
      done: :meth:`MlflowTracker.close` sets FINISHED (or the ``status`` given: ``hpo run``
      passes KILLED on Ctrl-C, FAILED on an error). With several processes on one study, the
      last to finish sets it.
    * All logging for a trial is batched: create run, one ``log_batch`` (chunked at MLflow's
      limits), terminate — three calls, whatever the number of epochs.
    * The study's final model (issue 16) is one more nested run, ``final-model`` (tag
      ``hpo.kind=final``), logged by :meth:`MlflowTracker.log_final_model`: metrics
      ``test_accuracy``, ``test_loss``, ``val_accuracy`` (the search's best, labelled as
      validation), the params, ``confusion.json`` and the model file (``model/STUDY.pt``,
      a state dict plus its config: ``hpo.training.load_model`` opens it).

The tracker's client, experiments and parent runs are in :mod:`hpo.tracking._mlflow_runs`, its
background queue and circuit breaker in :mod:`hpo.tracking._mlflow_queue`, and the logging of
models (a trial's, the final one) in :mod:`hpo.tracking._mlflow_models`.
"""

from __future__ import annotations

import logging
import os
import queue
import time
from typing import TYPE_CHECKING, Any

from hpo._observer import Observer
from hpo.tracking._mlflow_models import log_final_run, log_model, wants_model
from hpo.tracking._mlflow_queue import QUEUE_SIZE, _TrialQueue
from hpo.tracking._mlflow_runs import _MlflowRuns, _ms
from hpo.trial import FrozenTrial, TrialState

if TYPE_CHECKING:
    from hpo.study import Study
    from hpo.trial._trial import Trial

__all__ = ["MlflowTracker", "resolve_tracking_uri"]

#: The longest a run's end spends logging the trials it had not tracked (a slow server); the
#: rest are left to ``hpo mlflow-sync``, which the run's summary prints.
_BACKFILL_S = 60.0

log = logging.getLogger("hpo.tracking")

_STATUS = {
    TrialState.COMPLETE: "FINISHED",
    TrialState.PRUNED: "KILLED",
    TrialState.FAILED: "FAILED",
}
_LOG_MODELS = ("best", "all", "none")
_ENDED = ("FINISHED", "KILLED", "FAILED")


def resolve_tracking_uri(uri: str | None = None) -> str:
    """``uri``, else ``$MLFLOW_TRACKING_URI``, else a local store in the working directory."""
    if uri:
        return uri
    env = os.environ.get("MLFLOW_TRACKING_URI")
    if env:
        return env
    return f"sqlite:///{os.path.abspath('mlflow.db')}"


class MlflowTracker(_MlflowRuns, Observer):
    """Mirror a study's trials to MLflow (see the module docstring for the mapping).

    Args:
        tracking_uri: Where to log; see :func:`resolve_tracking_uri`.
        log_models: ``"best"`` (default), ``"all"`` or ``"none"``.
        timeout: Seconds one HTTP request to a tracking server may take.
        background: Log from a background thread (default). ``False`` logs inline (tests,
            ``sync``).
    """

    def __init__(
        self,
        tracking_uri: str | None = None,
        *,
        log_models: str = "best",
        timeout: float = 10.0,
        background: bool = True,
    ) -> None:
        from hpo.exceptions import HpoError

        if log_models not in _LOG_MODELS:
            raise HpoError(f"log_models must be one of {list(_LOG_MODELS)}, got {log_models!r}.")
        super().__init__(resolve_tracking_uri(tracking_uri), timeout)
        self.log_models = log_models
        self.background = background
        self._best: dict[str, float] = {}
        self._warned = False
        self._delivery = _TrialQueue(self.uri, self._log_safely)
        self._studies: dict[str, Study] = {}  # every study seen, by name: close() ends them
        self.failures = 0
        #: Trials left untracked without a request: queue full, or server down at close.
        self.dropped = 0

    # -- observer ------------------------------------------------------------------------
    def on_trial_end(self, study: Study, frozen: FrozenTrial, trial: Trial | None) -> None:
        model = None
        if trial is not None and self.log_models != "none" and "model" in trial.artifacts:
            model = (trial.artifacts["model"], trial.artifacts.get("input_example"))
        self._studies.setdefault(study.name, study)
        if self.background:
            try:
                self._delivery.put((study, frozen, model))
            except queue.Full:  # the server is down or slow: the trial must not wait for it
                self.dropped += 1
                self._warn(study, f"{QUEUE_SIZE} trials are waiting to be logged")
        else:
            self._log_safely(study, frozen, model)

    def flush(self, timeout: float = 60.0) -> bool:
        """Wait (at most ``timeout`` s) until every queued trial is logged, then settle on
        one parent run per study (see ``_reconcile``). True when done; False at once when the
        server does not answer (the breaker is open), with the trials still queued."""
        if not self._delivery.wait(timeout):
            return False
        if self._parents and not self._delivery.is_down():
            try:
                self._reconcile()
            except Exception as e:  # the server went away: the trials are stored anyway
                log.debug("could not reconcile parent runs: %s", e)
        return True

    def backfill(self, study: Study) -> int:
        """Log the finished trials of ``study`` that have no run yet, when the server answers:
        those a Ray worker's tracker or a timed-out request left behind (for at most a minute).
        Returns how many were logged; the rest, and any failure, are left to
        ``hpo mlflow-sync`` (the run's summary counts them)."""
        missing = [
            t
            for t in study.trials
            if t.state is not TrialState.RUNNING and "mlflow_run_id" not in t.system_attrs
        ]
        if not missing or self._delivery.is_down() or not self._delivery.probe():
            return 0
        try:
            added, _ = self.sync(study, timeout=_BACKFILL_S)
        except Exception as e:
            log.debug("could not backfill %d trial(s): %s", len(missing), e)
            return 0
        if added:
            log.info("MLflow: logged %d trial(s) that the run had not tracked", added)
        return added

    def close(self, timeout: float = 60.0, *, status: str = "FINISHED") -> None:
        """Flush, end the parent run of every study this tracker saw with ``status``
        (FINISHED, KILLED or FAILED), then stop the background thread. A server that does
        not answer is given up on at once: the trials it missed are listed by
        ``hpo mlflow-sync``."""
        done = self.flush(timeout)
        if not done:
            left = self._delivery.pending
            reason = (
                f"{self.uri} does not answer"
                if self._delivery.is_down()
                else f"it did not finish within {timeout:.0f} s"
            )
            # One warning per tracker: when "tracking failed" was already said (with the
            # backfill command), the count of trials left behind is detail, not news.
            log.log(
                logging.INFO if self._warned else logging.WARNING,
                "MLflow tracking stopped with %d trial(s) not logged: %s; run "
                "`hpo mlflow-sync` later to backfill them",
                left,
                reason,
            )
            self._warned = True  # and the failure of a request stuck on the server is no news
        for study in list(self._studies.values()):
            self.end_study(study, status)
        self._delivery.stop(done)

    def end_study(self, study: Study, status: str = "FINISHED") -> bool:
        """Mark the study's parent run ended with ``status`` (FINISHED, KILLED or FAILED);
        for a process whose trials others logged (a Ray driver). Creates nothing. True when
        done; False when the server does not answer or the study has no parent run."""
        from hpo.exceptions import HpoError

        if status not in _ENDED:
            raise HpoError(f"status must be one of {list(_ENDED)}, got {status!r}.")
        self._studies.pop(study.name, None)
        if self._delivery.is_down() or not self._delivery.probe():
            return False
        try:
            run_id = self._parents.get(study.name)
            if run_id is None:
                exp = self.client.get_experiment_by_name(study.name)
                runs = (
                    self._find_runs(exp.experiment_id, self._parent_filter(study.name))
                    if exp is not None
                    else []
                )
                if not runs:
                    return False
                run_id = str(runs[0].info.run_id)
            self.client.set_terminated(run_id, status=status)
        except Exception as e:
            log.debug("could not end the parent run of %s: %s", study.name, e)
            return False
        return True

    def _log_safely(self, study: Study, frozen: FrozenTrial, model: Any) -> bool:
        try:
            self.log_trial(study, frozen, model)
        except Exception as e:
            self.failures += 1
            first = str(e).splitlines()[0][:200] if str(e) else ""
            self._warn(study, f"{type(e).__name__}: {first}")
            log.debug("MLflow tracking failed: %s", e)
            return False
        return True

    def _warn(self, study: Study, why: str) -> None:
        if not self._warned:
            self._warned = True
            log.warning(
                "MLflow tracking failed (%s); trials are still stored. Backfill later with: "
                "hpo mlflow-sync %s",
                why,
                study.name,
            )

    # -- logging one trial -----------------------------------------------------------------
    def log_trial(self, study: Study, frozen: FrozenTrial, model: Any = None) -> str:
        """Log one finished trial as a nested run; returns its run id. Raises on failure."""
        from mlflow.entities import Metric, Param

        if frozen.state is TrialState.RUNNING:
            raise ValueError("only finished trials are tracked")
        eid = self._experiment_id(study.name)
        parent = self._parent_run(study)
        tags = self._tags(study, frozen, parent)
        run = self.client.create_run(
            eid, start_time=_ms(frozen.started_at), run_name=f"trial-{frozen.number}", tags=tags
        )
        run_id = str(run.info.run_id)
        self._logged.setdefault(study.name, []).append(run_id)
        now = _ms(frozen.finished_at) or int(time.time() * 1000)
        metrics = [Metric(k, v, now, step) for k, v, step in self._metrics(study, frozen)]
        params = [Param(k, str(v)[:6000]) for k, v in frozen.params.items()]
        for i in range(0, max(len(metrics), len(params), 1), 1000):
            self.client.log_batch(
                run_id,
                metrics=metrics[i : i + 1000],
                params=params[i : i + 100] if i == 0 else [],
                tags=[],
            )
        if len(params) > 100:
            for j in range(100, len(params), 100):
                self.client.log_batch(run_id, params=params[j : j + 100])
        if model is not None and wants_model(self.log_models, study, frozen):
            log_model(self.client, run_id, model)
        self.client.set_terminated(run_id, status=_STATUS[frozen.state], end_time=now)
        if frozen.trial_id is not None:
            study.store.annotate_trial(frozen.trial_id, {"mlflow_run_id": run_id})
        return run_id

    def _tags(self, study: Study, frozen: FrozenTrial, parent: str) -> dict[str, str]:
        tags = {
            "mlflow.parentRunId": parent,
            "hpo.kind": "trial",
            "hpo.study": study.name,
            "hpo.trial": str(frozen.number),
            "hpo.strategy": study.record.strategy,
            "hpo.state": frozen.state.value,
            "hpo.host": str(
                frozen.system_attrs.get("worker_host", frozen.system_attrs.get("host", ""))
            ),
            "hpo.device": str(
                frozen.user_attrs.get("device", frozen.system_attrs.get("device", "cpu"))
            ),
        }
        if frozen.error:
            tags["hpo.error"] = frozen.error[:5000]
        if frozen.state is TrialState.PRUNED:
            step = frozen.last_step
            tags["hpo.error"] = f"pruned at step {step}" if step is not None else "pruned"
        return tags

    @staticmethod
    def _metrics(study: Study, frozen: FrozenTrial) -> list[tuple[str, float, int]]:
        out: list[tuple[str, float, int]] = []
        name = str(study.meta.get("metric") or "intermediate")
        reported = name if name not in frozen.user_attrs else f"{name}_reported"
        for step, v in frozen.intermediate.items():
            out.append((reported, float(v), int(step)))
        for key, val in frozen.user_attrs.items():
            if (
                isinstance(val, list)
                and val
                and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in val)
            ):
                out.extend((key, float(x), i + 1) for i, x in enumerate(val))
            elif isinstance(val, (int, float)) and not isinstance(val, bool):
                out.append((key, float(val), 0))
        if frozen.value is not None:
            out.append(("value", float(frozen.value), 0))
        if frozen.duration is not None:
            out.append(("duration_s", frozen.duration.total_seconds(), 0))
        return out

    # -- the final model -------------------------------------------------------------------
    def log_final_model(self, study: Study, evaluation: Any, model_file: Any = None) -> str:
        """Log a final evaluation (and the model file, when given) as a nested run of the
        study's parent run; returns its run id. Raises on failure (the caller warns)."""
        eid = self._experiment_id(study.name)
        parent = self._parent_run(study)
        return log_final_run(self.client, eid, parent, study, evaluation, model_file)

    # -- backfill ------------------------------------------------------------------------
    def sync(self, study: Study, *, timeout: float | None = None) -> tuple[int, int]:
        """Log every finished trial that has no MLflow run yet (for at most ``timeout``
        seconds when given: the trials left stay for the next sync).

        Returns ``(backfilled, already_tracked)``. Idempotent: a trial whose run exists (found
        by tags, even if its run id never reached the store) is not logged again.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        eid = self._experiment_id(study.name)
        existing: dict[int, Any] = {}
        for run in self._find_runs(
            eid, f"tags.`hpo.kind` = 'trial' and tags.`hpo.study` = '{study.name}'"
        ):
            if run.info.lifecycle_stage != "active":
                continue
            number = int(run.data.tags.get("hpo.trial", -1))
            complete = run.info.status in ("FINISHED", "KILLED", "FAILED")
            if complete and number not in existing:
                existing[number] = run
            elif not complete:
                self.client.delete_run(run.info.run_id)  # a half-logged run: redo it
        added = tracked = 0
        for t in study.trials:
            if t.state is TrialState.RUNNING:
                continue
            if t.number in existing:
                tracked += 1
                run_id = existing[t.number].info.run_id
                if t.system_attrs.get("mlflow_run_id") != run_id and t.trial_id is not None:
                    study.store.annotate_trial(t.trial_id, {"mlflow_run_id": run_id})
                continue
            if deadline is not None and time.monotonic() > deadline:
                break
            self.log_trial(study, t)
            added += 1
        return added, tracked
