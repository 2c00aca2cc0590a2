"""RayExecutor: run a study's trials in parallel on Ray, on one machine or a cluster.

How it works
    The driver (the process calling ``optimize``, which runs the loop of
    :meth:`hpo.executors.Executor.run`) keeps up to ``workers`` trials in flight. For each it
    asks the study for a trial — the strategy sees every running trial, so parallel
    proposals stay apart — and submits one Ray *task* with the trial's CPU/GPU request. The
    task opens the study's store and runs the trial with :func:`hpo.executors.run_trial`, as
    in-process: intermediate values, user attributes and the final state go straight to the
    store from wherever the trial runs, so the store stays the single source of truth and a
    pruner on any machine sees the same history. The driver hears the task end, reads the
    trial back and tells its observers (callbacks, progress).

Why Ray core tasks and not Ray Tune
    Ray Tune wraps every trial in an actor, a result pipeline and a checkpoint directory; hpo
    already owns those jobs (store, strategy, tracking), so Tune would be pure overhead. A
    plain task per trial measures faster (``benchmarks/bench_ray.py``: 100 trivial trials on
    two workers against a plain Tune ``Tuner``) and keeps the scheduling in Ray.

Failures
    * The objective raising, returning NaN, etc.: a failed trial, as in-process.
    * The worker process or its node dying mid-trial: the driver marks the trial failed
      ("worker died ..."); with ``retries`` it is marked interrupted and, when it left a
      checkpoint, resumed from it on the next free worker (same number, params and seed);
      without one the same params run again as a new trial (the interrupted one counts
      neither in the budget nor for the model).
    * The driver dying: Ray kills its tasks; a rerun marks the orphaned running trials
      interrupted and resumes with the remaining budget.
    * Ctrl-C: running tasks are cancelled, their trials marked interrupted, and a Ray instance
      the executor started is shut down with all its processes.
"""

from __future__ import annotations

import logging
import math
import os
import socket
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from hpo._observer import Observer, notify
from hpo.exceptions import HpoError
from hpo.executors._base import Executor, Finished
from hpo.executors._ray_cluster import (
    CLUSTER_HELP,
    gist,
    host_port,
    import_ray,
    pickle_by_value,
    probe,
    shareable_url,
)
from hpo.executors._ray_worker import resume_spec, run_in_worker
from hpo.executors._recovery import mark_interrupted
from hpo.executors._runner import read_trial, trial_ended
from hpo.trial import FrozenTrial, TrialState

if TYPE_CHECKING:
    from hpo.study import Study
    from hpo.trial._trial import Trial

__all__ = ["RayExecutor"]

log = logging.getLogger("hpo")

_CLIENT_ATTEMPTS = 3  # connections tried behind a ray:// address (see RayExecutor._connect)


@dataclass
class _Session:
    """What one ``optimize`` call on Ray holds, from ``start`` to ``stop``."""

    ray: Any
    started: bool  # this run started the Ray instance (and must stop it)
    saved_address: str | None
    study: Study | None = None
    task: Any = None
    resources: dict[str, Any] = field(default_factory=dict)
    objective_ref: Any = None
    base: dict[str, Any] = field(default_factory=dict)
    in_flight: dict[Any, tuple[Trial, int]] = field(default_factory=dict)


@dataclass
class RayExecutor(Executor):
    """Run trials in parallel on Ray.

    Args:
        workers: Trials in flight at once.
        cpus_per_trial: CPUs Ray reserves for each trial (fractions allowed); the trial's
            threads are limited to it.
        gpus_per_trial: GPUs Ray reserves for each trial (fractions such as 0.5 share a card;
            above 1, whole numbers). The trial sees only the GPU(s) Ray gave it.
        address: ``None`` starts a local Ray instance for this run and stops it afterwards;
            ``"auto"``, ``"HOST:PORT"`` or ``"ray://HOST:PORT"`` joins an existing cluster.
        retries: How many times params whose worker died are run again as a new trial.
        worker_observers: A picklable factory called once in each worker process, returning
            observers that see the live trial there (the MLflow tracker, which logs the
            trained model, is one). The study's own ``observers`` run in the driver and get
            the finished trial without its in-memory artifacts.
        init_kwargs: Extra keyword arguments for ``ray.init``.
    """

    workers: int = 2
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    address: str | None = None
    retries: int = 0
    worker_observers: Callable[[], Sequence[Observer]] | None = None
    init_kwargs: Mapping[str, Any] = field(default_factory=dict)
    _driver_observers: list[Observer] | None = field(
        default=None, init=False, repr=False, compare=False
    )
    _session: _Session | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if isinstance(self.workers, bool) or not isinstance(self.workers, int) or self.workers < 1:
            raise HpoError(f"workers must be an integer >= 1, got {self.workers!r}.")
        if not _number(self.cpus_per_trial) or self.cpus_per_trial <= 0:
            raise HpoError(f"cpus per trial must be a number > 0, got {self.cpus_per_trial!r}.")
        if not _number(self.gpus_per_trial) or self.gpus_per_trial < 0:
            raise HpoError(f"gpus per trial must be a number >= 0, got {self.gpus_per_trial!r}.")
        if self.gpus_per_trial > 1 and not float(self.gpus_per_trial).is_integer():
            raise HpoError(
                f"gpus per trial above 1 must be a whole number, got {self.gpus_per_trial!r} "
                "(Ray shares a GPU only in fractions of one card)."
            )
        if isinstance(self.retries, bool) or not isinstance(self.retries, int) or self.retries < 0:
            raise HpoError(f"retries must be an integer >= 0, got {self.retries!r}.")
        if self.address is not None:
            host_port(self.address)  # a malformed address fails here, before anything runs

    # -- the executor contract (the loop itself is Executor.run's) -----------------------
    @property
    def capacity(self) -> int:
        return self.workers

    def start(self, study: Study, objective: Callable[[Trial], Any]) -> None:
        """Join or start Ray, check the cluster can run the study's trials, ship the
        objective."""
        storage = shareable_url(study.storage_url)
        ray = import_ray()
        saved_address = os.environ.get("RAY_ADDRESS")
        s = self._session = _Session(ray, self._connect(ray), saved_address, study)
        self._check_cluster(ray, storage)
        pickle_by_value(ray, objective)
        s.task = ray.remote(run_in_worker)
        s.resources = {
            "num_cpus": self.cpus_per_trial,
            "num_gpus": self.gpus_per_trial,
            "max_retries": 0,  # a dead worker's trial is failed or retried by us, visibly
            "retry_exceptions": False,
        }
        s.objective_ref = ray.put(objective)
        s.base = {
            "storage": storage,
            "study": study.name,
            "pruner": study.pruner,
            "observers": self.worker_observers,
            "cpus": self.cpus_per_trial,
            "driver_host": socket.gethostname(),
            "sqlite": storage.startswith("sqlite"),
            "heartbeat_interval": study.heartbeat_interval,
            "checkpointing": study.checkpointing,
        }

    def submit(self, trial: Trial, attempt: int) -> None:
        s = self._live()
        spec = {
            **s.base,
            "trial_id": trial.trial_id,
            "number": trial.number,
            "params": dict(trial.params),
            "resume": resume_spec(trial),
        }
        ref = s.task.options(name=f"hpo-trial-{trial.number}", **s.resources).remote(
            spec, s.objective_ref
        )
        s.in_flight[ref] = (trial, attempt)

    def wait(self) -> list[Finished]:
        s = self._live()
        if not s.in_flight:
            return []
        ready, _ = s.ray.wait(list(s.in_flight), num_returns=1, timeout=1.0)
        out = []
        for ref in ready:
            trial, attempt = s.in_flight.pop(ref)
            out.append(self._collect(s, ref, trial, attempt))
        return out

    def stop(self) -> None:
        s, self._session = self._session, None
        try:
            self._close_driver_observers()  # may wait on MLflow: a 2nd Ctrl-C lands here
        finally:
            if s is not None and s.started:
                s.ray.shutdown()
                # ray.init exports the address of the instance it started; it is gone
                # now, and a later ray.init() in this process must not try to join it.
                if s.saved_address is None:
                    os.environ.pop("RAY_ADDRESS", None)
                else:
                    os.environ["RAY_ADDRESS"] = s.saved_address

    def _live(self) -> _Session:
        if self._session is None or self._session.study is None:
            raise HpoError("RayExecutor: submit or wait before start.")
        return self._session

    def _collect(self, s: _Session, ref: Any, trial: Trial, attempt: int) -> Finished:
        """The finished trial, after making sure the store says it finished, and whether its
        params should run again (its worker died and retries are left). A trial the driver
        finished (its worker never told the store, nor its observers) goes to the driver's
        own observers first."""
        ray, study = s.ray, s.study
        assert study is not None  # _live() checked it
        crashed = cancelled = False
        reason = None
        told = None
        try:
            told = ray.get(ref)
        except ray.exceptions.TaskCancelledError:
            cancelled = True
            reason = "interrupted: the trial's task was cancelled"
        except ray.exceptions.RayTaskError as e:  # hpo's own code failed in the task
            cause = getattr(e, "cause", None) or e
            reason = f"{type(cause).__name__}: {gist(str(cause))}"
        except ray.exceptions.RayError as e:  # the worker process or its node died
            crashed = True
            reason = f"worker died while running this trial ({type(e).__name__})"
        if isinstance(told, FrozenTrial) and told.state is not TrialState.RUNNING:
            # The worker told the store how the trial ended: that is its end, whatever the
            # store holds by now (a paused trial may be promoted, by another process, already).
            return Finished(trial, told, observed=False)
        frozen = read_trial(study, trial.number)
        if frozen.state is not TrialState.RUNNING:
            return Finished(trial, frozen, observed=False)
        retry = crashed and attempt < self.retries
        if retry:
            info = frozen.system_attrs.get("checkpoint") or {}
            how = (
                f"resumed from its checkpoint of step {info.get('step')}"
                if info.get("files") and study.checkpointing is not None
                else "retried as a new trial"
            )
            reason = f"{reason}; {how} ({attempt + 1}/{self.retries})"
        log.warning("trial %d failed: %s", trial.number, reason)
        if retry or cancelled:
            finished = mark_interrupted(study.store, trial.trial_id, str(reason))
        else:
            finished = study.store.finish_trial(trial.trial_id, TrialState.FAILED, error=reason)
        frozen = read_trial(study, trial.number)
        # Not finished here: the worker told the store after all, between the two reads
        # (it and its observers have the trial; the driver must not track it again).
        if finished:
            self._driver_notify(study, frozen)
        return Finished(trial, frozen, retry=retry and finished, observed=False)

    def cancel(self) -> None:
        """Ctrl-C: stop every running trial and mark it interrupted."""
        s = self._session
        if s is None or s.study is None:
            return
        for ref in s.in_flight:
            try:
                s.ray.cancel(ref)
            except Exception as e:  # already done, or the worker is gone
                log.debug("cancel: %s", e)
        if s.in_flight:
            try:
                s.ray.wait(list(s.in_flight), num_returns=len(s.in_flight), timeout=10.0)
            except Exception as e:
                log.debug("wait after cancel: %s", e)
        for trial, _ in s.in_flight.values():  # False: it had finished already
            if mark_interrupted(s.study.store, trial.trial_id, "interrupted: stopped by Ctrl-C"):
                self._driver_notify(s.study, read_trial(s.study, trial.number))
        s.in_flight.clear()

    # -- observers for the trials the driver finishes ------------------------------------
    def _driver_notify(self, study: Study, frozen: FrozenTrial) -> None:
        """A trial whose worker died (or was cancelled) never reached the observers in its
        worker; the driver hands it to its own instances of them (the MLflow tracker), so
        it is tracked like every other trial."""
        if self.worker_observers is None:
            return
        if self._driver_observers is None:
            self._driver_observers = list(self.worker_observers())
        trial_ended(study, frozen, None, observers=self._driver_observers)

    def _close_driver_observers(self) -> None:
        notify(self._driver_observers or [], lambda o: o.close(), "close")
        self._driver_observers = None

    # -- the cluster ---------------------------------------------------------------------
    def preflight(self) -> None:
        """Check, in a few seconds and before anything is stored or started, that the
        cluster address answers (``run`` checks it too).

        Raises:
            HpoError: nothing listens at the address.
        """
        if self.address is not None:
            probe(self.address)

    def _connect(self, ray: Any) -> bool:
        """Join or start Ray; True when this run started it (and must stop it)."""
        if ray.is_initialized():
            return False
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        kwargs: dict[str, Any] = {
            "include_dashboard": False,
            "logging_level": logging.WARNING,
        }
        kwargs.update(self.init_kwargs)
        if self.address is None:
            # Ray starts its workers at nice 15 to keep its own daemons responsive. Here the
            # trials are the run's foreground work, as they are in-process: at nice 15 any
            # other work on the machine took half their CPU (benchmarks/README.md).
            os.environ.setdefault("RAY_worker_niceness", "0")
            need = math.ceil(self.workers * self.cpus_per_trial)
            kwargs.setdefault("num_cpus", max(os.cpu_count() or 1, need))
            ray.init(address="local", **kwargs)
            return True
        self.preflight()
        attempts = _CLIENT_ATTEMPTS if self.address.startswith("ray://") else 1
        attempt = 1
        while True:
            try:
                ray.init(address=self.address, **kwargs)
                return True
            except (ConnectionError, RuntimeError, ValueError) as e:
                # Behind a ray:// address the head's client proxy starts one server process
                # per driver; when that process dies during its start (seen once in CI, on
                # a busy machine), the next connection gets a fresh one. A failed connect
                # has already disconnected, so trying again is safe.
                if attempt < attempts and "client server" in str(e).lower():
                    log.warning("Ray client: %s; connecting again", gist(str(e)))
                    time.sleep(2.0 * attempt)
                    attempt += 1
                    continue
                raise HpoError(
                    f"cannot connect to the Ray cluster at {self.address!r}: "
                    f"{gist(str(e))} ({CLUSTER_HELP})."
                ) from None

    def _check_cluster(self, ray: Any, storage: str) -> None:
        nodes = [n for n in ray.nodes() if n.get("Alive")]
        resources = [n.get("Resources", {}) for n in nodes]
        where = f"{len(nodes)} node(s)"
        most_cpus = max((r.get("CPU", 0.0) for r in resources), default=0.0)
        most_gpus = max((r.get("GPU", 0.0) for r in resources), default=0.0)
        if self.gpus_per_trial > most_gpus:
            raise HpoError(
                f"each trial asks for {self.gpus_per_trial:g} GPU(s), but no node of the Ray "
                f"cluster has that many (most: {most_gpus:g} on {where}); lower "
                "--gpus-per-trial or add a node with GPUs."
            )
        if self.cpus_per_trial > most_cpus:
            raise HpoError(
                f"each trial asks for {self.cpus_per_trial:g} CPU(s), but no node of the Ray "
                f"cluster has that many (most: {most_cpus:g} on {where}); lower "
                "--cpus-per-trial or add a bigger node."
            )
        if storage.startswith("sqlite"):
            here = socket.gethostname()
            others = sorted({str(n.get("NodeManagerHostname")) for n in nodes} - {here})
            if others:
                raise HpoError(
                    f"the study's store is a SQLite file on this machine, but the Ray cluster "
                    f"has nodes on other machines ({', '.join(others)}) that cannot write to "
                    "it; use a shared database: --storage postgresql://USER@HOST:5432/DB."
                )


# -- helpers ------------------------------------------------------------------------------


def _number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)
