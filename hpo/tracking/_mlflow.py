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
"""

from __future__ import annotations

import logging
import os
import queue
import shutil
import tempfile
import threading
import time
import urllib.request
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from hpo._observer import Observer
from hpo.trial import FrozenTrial, TrialState

if TYPE_CHECKING:
    from hpo.study import Study
    from hpo.trial._trial import Trial

__all__ = ["MlflowTracker", "resolve_tracking_uri"]

log = logging.getLogger("hpo.tracking")

_STATUS = {
    TrialState.COMPLETE: "FINISHED",
    TrialState.PRUNED: "KILLED",
    TrialState.FAILED: "FAILED",
}
_LOG_MODELS = ("best", "all", "none")
_ENDED = ("FINISHED", "KILLED", "FAILED")
#: Trials waiting to be logged, at most; a trial that finds the queue full is left untracked.
QUEUE_SIZE = 1000
#: A request pending this long makes the watchdog ask the server's /health whether it lives.
_STALL_S = 0.1
#: How long that probe waits for an answer (a live server answers /health in milliseconds,
#: whatever else it is doing); and how long the breaker stays open before the next probe.
_PROBE_TIMEOUT_S = 0.5
_COOLDOWN_S = 10.0


def resolve_tracking_uri(uri: str | None = None) -> str:
    """``uri``, else ``$MLFLOW_TRACKING_URI``, else a local store in the working directory."""
    if uri:
        return uri
    env = os.environ.get("MLFLOW_TRACKING_URI")
    if env:
        return env
    return f"sqlite:///{os.path.abspath('mlflow.db')}"


def _ms(t: Any) -> int | None:
    return None if t is None else int(t.timestamp() * 1000)


class MlflowTracker(Observer):
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
        self.uri = resolve_tracking_uri(tracking_uri)
        self.log_models = log_models
        self.timeout = timeout
        self.background = background
        self._client: Any = None
        self._experiments: dict[str, str] = {}
        self._parents: dict[str, str] = {}
        self._logged: dict[str, list[str]] = {}  # the trial runs this tracker made, by study
        self._best: dict[str, float] = {}
        self._warned = False
        self._queue: queue.Queue[tuple[Study, FrozenTrial, Any] | None] = queue.Queue(QUEUE_SIZE)
        self._worker: threading.Thread | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._busy_since: float | None = None  # when the item being logged was taken up
        self._down_until = 0.0  # the breaker: open (no requests) until this monotonic time
        self._studies: dict[str, Study] = {}  # every study seen, by name: close() ends them
        self.failures = 0
        #: Trials left untracked without a request: queue full, or server down at close.
        self.dropped = 0

    # -- plumbing ------------------------------------------------------------------------
    @property
    def client(self) -> Any:
        if self._client is None:
            # Fail fast on a dead server instead of MLflow's default minutes of retries.
            os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
            os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", str(int(self.timeout)))
            os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
            from mlflow.tracking import MlflowClient

            # MLflow's own chatter (table creation, pip-requirement notes) is not our user's.
            logging.getLogger("mlflow").setLevel(logging.WARNING)
            logging.getLogger("alembic").setLevel(logging.WARNING)
            logging.getLogger("mlflow.utils.requirements_utils").setLevel(logging.ERROR)
            self._client = MlflowClient(tracking_uri=self.uri)
        return self._client

    def _experiment_id(self, name: str) -> str:
        if name in self._experiments:
            return self._experiments[name]
        exp = self.client.get_experiment_by_name(name)
        if exp is None:
            try:
                eid = self.client.create_experiment(name, tags={"hpo.study": name})
            except Exception:
                exp = self.client.get_experiment_by_name(name)  # made by another process
                if exp is None:
                    raise
                eid = exp.experiment_id
        else:
            eid = exp.experiment_id
        self._experiments[name] = eid
        return eid

    def _find_runs(self, eid: str, filter_string: str) -> list[Any]:
        runs = self.client.search_runs([eid], filter_string=filter_string, max_results=1000)
        # Every process must order them alike, oldest first: parent runs share their start
        # time (the study's creation), so when each was made (its tag; 0 for runs made
        # before the tag existed), then the run id, decide.
        return sorted(
            runs,
            key=lambda r: (
                int(r.data.tags.get("hpo.created_ns", "0")),
                r.info.start_time or 0,
                r.info.run_id,
            ),
        )

    @staticmethod
    def _parent_filter(name: str) -> str:
        return f"tags.`hpo.kind` = 'study' and tags.`hpo.study` = '{name}'"

    def _parent_run(self, study: Study) -> str:
        name = study.name
        if name in self._parents:
            return self._parents[name]
        eid = self._experiment_id(name)
        flt = self._parent_filter(name)
        runs = self._find_runs(eid, flt)
        if not runs:
            rec = study.record
            self.client.create_run(
                eid,
                start_time=_ms(rec.created_at),
                run_name=name,
                tags={
                    "hpo.kind": "study",
                    "hpo.study": name,
                    "hpo.strategy": rec.strategy,
                    "hpo.direction": rec.direction.value,
                    "hpo.storage": _mask(study.storage_url),
                    "hpo.created_ns": str(time.time_ns()),
                },
            )
            # Two processes may both have created one: all agree on the first in order. (One
            # that looked before the other's run existed picked its own; _reconcile, at the
            # next flush, moves its trials to the survivor.)
            runs = self._find_runs(eid, flt)
            self._delete_runs(runs[1:])
        elif runs[0].info.status != "RUNNING":  # a run of the study ended; this one goes on
            self.client.update_run(runs[0].info.run_id, status="RUNNING")
        run_id = str(runs[0].info.run_id)
        self._parents[name] = run_id
        return run_id

    def _delete_runs(self, runs: Sequence[Any]) -> None:
        for extra in runs:
            try:
                self.client.delete_run(extra.info.run_id)
            except Exception as e:  # another process deleted it first
                log.debug("could not delete duplicate parent run: %s", e)

    def _reconcile(self) -> None:
        """Make this tracker's trial runs point at the one parent run every process agrees
        on, should processes that started a study at once have picked different ones."""
        for name, chosen in list(self._parents.items()):
            runs = self._find_runs(self._experiment_id(name), self._parent_filter(name))
            if not runs:
                continue
            self._delete_runs(runs[1:])
            survivor = str(runs[0].info.run_id)
            if survivor != chosen:
                for run_id in self._logged.get(name, []):
                    self.client.set_tag(run_id, "mlflow.parentRunId", survivor)
                self._parents[name] = survivor

    # -- observer ------------------------------------------------------------------------
    def on_trial_end(self, study: Study, frozen: FrozenTrial, trial: Trial | None) -> None:
        model = None
        if trial is not None and self.log_models != "none" and "model" in trial.artifacts:
            model = (trial.artifacts["model"], trial.artifacts.get("input_example"))
        self._studies.setdefault(study.name, study)
        if self.background:
            self._ensure_worker()
            try:
                self._queue.put_nowait((study, frozen, model))
            except queue.Full:  # the server is down or slow: the trial must not wait for it
                self.dropped += 1
                self._warn(study, f"{QUEUE_SIZE} trials are waiting to be logged")
        else:
            self._log_safely(study, frozen, model)

    def _ensure_worker(self) -> None:
        with self._lock:
            if self._worker is None or not self._worker.is_alive():
                self._stop = threading.Event()
                self._worker = threading.Thread(
                    target=self._work,
                    args=(self._queue, self._stop),
                    name="hpo-mlflow",
                    daemon=True,
                )
                self._worker.start()
                threading.Thread(
                    target=self._watch,
                    args=(self._worker, self._stop),
                    name="hpo-mlflow-watch",
                    daemon=True,
                ).start()

    def _watch(self, worker: threading.Thread, stop: threading.Event) -> None:
        """Open the breaker as soon as a request hangs, while the trials run: a study that
        then waits for tracking (close, a Ray worker's flush) finds it open and goes on."""
        while worker.is_alive() and not stop.is_set():
            if not self._is_down():
                self._stalled()
            time.sleep(0.02)

    def _work(
        self, q: queue.Queue[tuple[Study, FrozenTrial, Any] | None], stop: threading.Event
    ) -> None:
        while True:
            item = q.get()
            try:
                if item is None:
                    return
                while self._is_down() and not stop.is_set():  # breaker open: wait, probe again
                    time.sleep(min(0.5, max(0.01, self._down_until - time.monotonic())))
                    if not self._is_down() and not self._probe():
                        self._trip()
                if stop.is_set():  # given up on (close): left to `hpo mlflow-sync`
                    continue
                self._busy_since = time.monotonic()
                ok = self._log_safely(*item)
                if not ok and not self._probe():
                    self._trip()
            finally:
                self._busy_since = None
                q.task_done()

    # -- the circuit breaker ---------------------------------------------------------------
    def _is_down(self) -> bool:
        return time.monotonic() < self._down_until

    def _trip(self) -> None:
        self._down_until = time.monotonic() + _COOLDOWN_S

    def _probe(self) -> bool:
        """Whether the tracking server answers ``/health`` within a second. Stores that are
        not servers (a local ``sqlite:`` or file store) cannot hang that way: always True."""
        if not self.uri.startswith(("http://", "https://")):
            return True
        try:
            with urllib.request.urlopen(
                self.uri.rstrip("/") + "/health", timeout=_PROBE_TIMEOUT_S
            ) as r:
                return bool(200 <= r.status < 300)
        except Exception as e:  # refused, timed out, an HTTP error: not answering as it should
            log.debug("MLflow health probe failed: %s", e)
            return False

    def _stalled(self) -> bool:
        """A request has been pending a while and the server does not answer a probe: open
        the breaker (True). A slow but live server (a model upload) is waited for."""
        busy = self._busy_since
        if busy is None or time.monotonic() - busy < _STALL_S:
            return False
        if self._probe():
            self._busy_since = time.monotonic()  # alive: probe again only after another stall
            return False
        self._trip()
        return True

    def flush(self, timeout: float = 60.0) -> bool:
        """Wait (at most ``timeout`` s) until every queued trial is logged, then settle on
        one parent run per study (see ``_reconcile``). True when done; False at once when the
        server does not answer (the breaker is open), with the trials still queued."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks:
            if self._is_down() or time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        if self._parents and not self._is_down():
            try:
                self._reconcile()
            except Exception as e:  # the server went away: the trials are stored anyway
                log.debug("could not reconcile parent runs: %s", e)
        return True

    def close(self, timeout: float = 60.0, *, status: str = "FINISHED") -> None:
        """Flush, end the parent run of every study this tracker saw with ``status``
        (FINISHED, KILLED or FAILED), then stop the background thread. A server that does
        not answer is given up on at once: the trials it missed are listed by
        ``hpo mlflow-sync``."""
        done = self.flush(timeout)
        if not done:
            left = self._queue.unfinished_tasks
            reason = (
                f"{self.uri} does not answer"
                if self._is_down()
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
            self._warned = True
        for study in list(self._studies.values()):
            self.end_study(study, status)
        if self._worker is not None and self._worker.is_alive():
            if done:
                self._queue.put(None)
                self._worker.join(timeout=5)
            else:
                # A thread stuck on a hung server is a daemon (it never holds the process up);
                # told to stop, it logs nothing more, and a later trial gets a fresh queue.
                self._stop.set()
                self._warned = True  # said above; the stuck request's failure is no news
                self._queue = queue.Queue(QUEUE_SIZE)
        self._worker = None

    def end_study(self, study: Study, status: str = "FINISHED") -> bool:
        """Mark the study's parent run ended with ``status`` (FINISHED, KILLED or FAILED);
        for a process whose trials others logged (a Ray driver). Creates nothing. True when
        done; False when the server does not answer or the study has no parent run."""
        from hpo.exceptions import HpoError

        if status not in _ENDED:
            raise HpoError(f"status must be one of {list(_ENDED)}, got {status!r}.")
        self._studies.pop(study.name, None)
        if self._is_down() or not self._probe():
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
        if model is not None and self._wants_model(study, frozen):
            self._log_model(run_id, model)
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

    def _wants_model(self, study: Study, frozen: FrozenTrial) -> bool:
        if self.log_models == "all":
            return True
        if self.log_models != "best" or frozen.state is not TrialState.COMPLETE:
            return False
        assert frozen.value is not None
        try:
            best = study.best_trial
        except Exception:
            return False
        return best.number == frozen.number

    def _log_model(self, run_id: str, model: Any) -> None:
        """Save as MLflow's "pt2" (torch.export, needs an input example; loads without
        unpickling code), else as a pickle."""
        import mlflow.pytorch

        net, example = model if isinstance(model, tuple) else (model, None)
        tmp = tempfile.mkdtemp(prefix="hpo-model-")
        try:
            path = os.path.join(tmp, "model")
            net = net.to("cpu").eval() if hasattr(net, "to") else net
            try:
                if example is None:
                    raise ValueError("no input example")
                if hasattr(example, "detach"):  # MLflow infers a TensorSpec from numpy only
                    example = example.detach().cpu().numpy()
                mlflow.pytorch.save_model(
                    net, path, serialization_format="pt2", input_example=example
                )
            except Exception as e:
                log.debug("pt2 export failed (%s); saving the model as a pickle", e)
                shutil.rmtree(path, ignore_errors=True)
                mlflow.pytorch.save_model(net, path, serialization_format="pickle")
            self.client.log_artifacts(run_id, path, artifact_path="model")
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    # -- the final model -------------------------------------------------------------------
    def log_final_model(self, study: Study, evaluation: Any, model_file: Any = None) -> str:
        """Log a final evaluation (and the model file, when given) as a nested run of the
        study's parent run; returns its run id. Raises on failure (the caller warns)."""
        from mlflow.entities import Metric, Param

        eid = self._experiment_id(study.name)
        parent = self._parent_run(study)
        info = evaluation.info
        run = self.client.create_run(
            eid,
            run_name="final-model",
            tags={
                "mlflow.parentRunId": parent,
                "hpo.kind": "final",
                "hpo.study": study.name,
                "hpo.trial": str(evaluation.trial_number),
                "hpo.retrained": str(evaluation.retrained).lower(),
                "hpo.test_split": str(info.get("test_source", ""))[:5000],
            },
        )
        run_id = str(run.info.run_id)
        now = int(time.time() * 1000)
        metrics = [
            Metric("test_accuracy", float(evaluation.test_accuracy), now, 0),
            Metric("test_loss", float(evaluation.test_loss), now, 0),
            Metric("epochs", float(evaluation.epochs), now, 0),
        ]
        if isinstance(info.get("val_accuracy"), (int, float)):
            metrics.append(Metric("val_accuracy", float(info["val_accuracy"]), now, 0))
        params = [Param(k, str(v)[:6000]) for k, v in dict(info.get("params") or {}).items()]
        self.client.log_batch(run_id, metrics=metrics, params=params[:100], tags=[])
        self.client.log_dict(run_id, {"confusion": [list(r) for r in evaluation.confusion]},
                             "confusion.json")  # fmt: skip
        if model_file is not None:
            self.client.log_artifact(run_id, str(model_file), artifact_path="model")
        self.client.set_terminated(run_id, status="FINISHED")
        return run_id

    # -- backfill ------------------------------------------------------------------------
    def sync(self, study: Study) -> tuple[int, int]:
        """Log every finished trial that has no MLflow run yet.

        Returns ``(backfilled, already_tracked)``. Idempotent: a trial whose run exists (found
        by tags, even if its run id never reached the store) is not logged again.
        """
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
            self.log_trial(study, t)
            added += 1
        return added, tracked


def _mask(url: str) -> str:
    from hpo.storage import mask_url

    return mask_url(url)
