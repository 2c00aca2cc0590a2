"""RayExecutor: run a study's trials in parallel on Ray, on one machine or a cluster.

How it works
    The driver (the process calling ``optimize``) keeps up to ``workers`` trials in flight.
    For each it asks the study for a trial — the strategy sees every running trial, so
    parallel proposals stay apart — and submits one Ray *task* with the trial's CPU/GPU
    request. The task opens the study's store, runs ``objective(trial)`` and tells the result
    itself: intermediate values, user attributes and the final state go straight to the store
    from wherever the trial runs, so the store stays the single source of truth and a pruner
    on any machine sees the same history. The driver hears the task end, reads the trial back
    and runs callbacks and observers.

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
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from hpo.exceptions import HpoError, SearchExhausted
from hpo.trial import FrozenTrial, TrialState

if TYPE_CHECKING:
    from hpo.study import Observer, Study
    from hpo.trial._trial import Trial

__all__ = ["RayExecutor"]

log = logging.getLogger("hpo")

_CLUSTER_HELP = "start one with `ray start --head`, or check the address"
_CLIENT_ATTEMPTS = 3  # connections tried behind a ray:// address (see RayExecutor._connect)


@dataclass
class RayExecutor:
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
    _driver_observers: list[Observer] | None = field(default=None, init=False, repr=False)

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
            _host_port(self.address)  # a malformed address fails here, before anything runs

    # -- the driver loop -----------------------------------------------------------------
    def run(
        self,
        study: Study,
        objective: Callable[[Trial], Any],
        *,
        n_trials: int | None = None,
        timeout: float | None = None,
        max_trials: int | None = None,
        callbacks: Iterable[Callable[[Study, FrozenTrial], None]] = (),
    ) -> None:
        """Run trials until ``n_trials`` were started, ``timeout`` passed, the study holds
        ``max_trials`` or the strategy is exhausted; trials in flight are finished first."""
        storage = shareable_url(study.storage_url)
        callbacks = list(callbacks)
        ray = _import_ray()
        saved_address = os.environ.get("RAY_ADDRESS")
        started = self._connect(ray)
        try:
            self._check_cluster(ray, storage)
            _pickle_by_value(ray, objective)
            task = ray.remote(_run_trial)
            resources = {
                "num_cpus": self.cpus_per_trial,
                "num_gpus": self.gpus_per_trial,
                "max_retries": 0,  # a dead worker's trial is failed or retried by us, visibly
                "retry_exceptions": False,
            }
            objective_ref = ray.put(objective)
            base: dict[str, Any] = {
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
            in_flight: dict[Any, tuple[Trial, int]] = {}
            # Trials asked in this run and not yet collected, submitted or not: Ctrl-C must
            # leave none of them running in the store.
            mine: dict[int, Trial] = {}

            def submit(trial: Trial, attempt: int) -> None:
                spec = {
                    **base,
                    "trial_id": trial.trial_id,
                    "number": trial.number,
                    "params": dict(trial.params),
                    "resume": _resume_spec(trial),
                }
                ref = task.options(name=f"hpo-trial-{trial.number}", **resources).remote(
                    spec, objective_ref
                )
                in_flight[ref] = (trial, attempt)
                study._started(trial)

            def ask(**kw: Any) -> Trial:
                trial = study.ask(**kw)
                mine[trial.trial_id] = trial
                return trial

            t0 = time.monotonic()
            asked = 0
            exhausted = False
            try:
                while True:
                    while len(in_flight) < self.workers and not exhausted:
                        if n_trials is not None and asked >= n_trials:
                            break
                        if timeout is not None and time.monotonic() - t0 >= timeout:
                            break
                        try:
                            trial = study.resume_interrupted(max_trials) or ask(
                                max_trials=max_trials
                            )
                            mine[trial.trial_id] = trial
                        except SearchExhausted as e:
                            log.debug("%s", e)
                            exhausted = True
                            break
                        asked += 1
                        submit(trial, 0)
                    if not in_flight:
                        break
                    ready, _ = ray.wait(list(in_flight), num_returns=1, timeout=1.0)
                    for ref in ready:
                        trial, attempt = in_flight[ref]
                        frozen, retry, by_driver = self._collect(ray, study, ref, trial, attempt)
                        del in_flight[ref]
                        mine.pop(trial.trial_id, None)
                        if retry:
                            # Resume from its last checkpoint, else its params as a new trial.
                            again = study._resume(frozen) or ask(params=trial.params)
                            mine[again.trial_id] = again
                            submit(again, attempt + 1)
                        if by_driver:
                            self._driver_notify(study, frozen)
                        study._notify(frozen, None)
                        for cb in callbacks:
                            cb(study, frozen)
            except KeyboardInterrupt:
                self._cancel(ray, study, in_flight, mine)
                raise
        finally:
            try:
                self._close_driver_observers()  # may wait on MLflow: a 2nd Ctrl-C lands here
            finally:
                if started:
                    ray.shutdown()
                    # ray.init exports the address of the instance it started; it is gone
                    # now, and a later ray.init() in this process must not try to join it.
                    if saved_address is None:
                        os.environ.pop("RAY_ADDRESS", None)
                    else:
                        os.environ["RAY_ADDRESS"] = saved_address

    def _collect(
        self, ray: Any, study: Study, ref: Any, trial: Trial, attempt: int
    ) -> tuple[FrozenTrial, bool, bool]:
        """The finished trial, after making sure the store says it finished; whether its
        params should run again (its worker died and retries are left); and whether the
        driver finished it (its worker never told the store, nor its observers)."""
        crashed = False
        reason = None
        try:
            ray.get(ref)
        except ray.exceptions.TaskCancelledError:
            reason = "interrupted: the trial's task was cancelled"
        except ray.exceptions.RayTaskError as e:  # hpo's own code failed in the task
            cause = getattr(e, "cause", None) or e
            reason = f"{type(cause).__name__}: {_gist(str(cause))}"
        except ray.exceptions.RayError as e:  # the worker process or its node died
            crashed = True
            reason = f"worker died while running this trial ({type(e).__name__})"
        study._forget_running(trial.trial_id)
        frozen = study._read_trial(trial.number)
        if frozen.state is not TrialState.RUNNING:
            return frozen, False, False
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
        interrupted = retry or (reason or "").startswith("interrupted")
        finished = study._store.finish_trial(
            trial.trial_id,
            TrialState.FAILED,
            error=reason,
            system_attrs={"interrupted": True} if interrupted else None,
        )
        # Not finished here: the worker told the store after all, between the two reads
        # (it and its observers have the trial; the driver must not track it again).
        return study._read_trial(trial.number), retry and finished, finished

    def _cancel(
        self,
        ray: Any,
        study: Study,
        in_flight: Mapping[Any, tuple[Trial, int]],
        mine: Mapping[int, Trial],
    ) -> None:
        """Ctrl-C: stop every running trial and mark it interrupted."""
        for ref in in_flight:
            try:
                ray.cancel(ref)
            except Exception as e:  # already done, or the worker is gone
                log.debug("cancel: %s", e)
        if in_flight:
            try:
                ray.wait(list(in_flight), num_returns=len(in_flight), timeout=10.0)
            except Exception as e:
                log.debug("wait after cancel: %s", e)
        for trial in mine.values():
            stopped = study._store.finish_trial(  # False: it had finished already
                trial.trial_id,
                TrialState.FAILED,
                error="interrupted: stopped by Ctrl-C",
                system_attrs={"interrupted": True},
            )
            study._forget_running(trial.trial_id)
            if stopped:
                self._driver_notify(study, study._read_trial(trial.number))

    # -- observers for the trials the driver finishes ------------------------------------
    def _driver_notify(self, study: Study, frozen: FrozenTrial) -> None:
        """A trial whose worker died (or was cancelled) never reached the observers in its
        worker; the driver hands it to its own instances of them (the MLflow tracker), so
        it is tracked like every other trial."""
        if self.worker_observers is None:
            return
        if self._driver_observers is None:
            self._driver_observers = list(self.worker_observers())
        study._notify(frozen, None, observers=self._driver_observers)

    def _close_driver_observers(self) -> None:
        for obs in self._driver_observers or []:
            close = getattr(obs, "close", None) or getattr(obs, "flush", None)
            if callable(close):
                try:
                    close()
                except Exception as e:
                    log.warning("%s failed to close: %s", type(obs).__name__, e)
        self._driver_observers = None

    # -- the cluster ---------------------------------------------------------------------
    def preflight(self) -> None:
        """Check, in a few seconds and before anything is stored or started, that the
        cluster address answers (``run`` checks it too).

        Raises:
            HpoError: nothing listens at the address.
        """
        if self.address is not None:
            _probe(self.address)

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
                    log.warning("Ray client: %s; connecting again", _gist(str(e)))
                    time.sleep(2.0 * attempt)
                    attempt += 1
                    continue
                raise HpoError(
                    f"cannot connect to the Ray cluster at {self.address!r}: "
                    f"{_gist(str(e))} ({_CLUSTER_HELP})."
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


# -- in the worker ------------------------------------------------------------------------

_STUDIES: dict[tuple[str, str], Study] = {}


def _run_trial(spec: Mapping[str, Any], objective: Callable[[Trial], Any]) -> str:
    """One trial, in a Ray worker: run the objective and tell the store. Returns the state."""
    import ray

    from hpo.study import load_study
    from hpo.trial._trial import Trial

    if spec["sqlite"] and socket.gethostname() != spec["driver_host"]:
        raise HpoError(
            f"this trial was scheduled on {socket.gethostname()!r}, which cannot reach the "
            f"SQLite store on {spec['driver_host']!r}; use --storage postgresql://..."
        )
    key = (spec["storage"], spec["study"])
    study = _STUDIES.get(key)
    if study is None:
        study = load_study(spec["study"], storage=spec["storage"])
        study.heartbeat_interval = spec["heartbeat_interval"]
        if spec["observers"] is not None:
            study.observers.extend(spec["observers"]())
        _STUDIES[key] = study
    study.pruner = spec["pruner"]
    study.checkpointing = spec.get("checkpointing")
    _limit_threads(spec["cpus"])
    trial = Trial(study, spec["trial_id"], spec["number"], spec["params"], **spec["resume"])
    gpu_ids = [str(g) for g in ray.get_gpu_ids()]
    if not gpu_ids:
        # Ray (>= 2.50) leaves CUDA_VISIBLE_DEVICES alone for a task that asked for no GPU,
        # so the objective would see, and use, cards that other trials reserved.
        os.environ["CUDA_VISIBLE_DEVICES"] = ""
    trial.set_system_attrs(
        {
            "executor": "ray",
            "worker_host": socket.gethostname(),
            "worker_pid": os.getpid(),
            "node_id": ray.get_runtime_context().get_node_id(),
            "node_ip": ray.util.get_node_ip_address(),
            "gpu_ids": gpu_ids,
            # Ray sets CUDA_VISIBLE_DEVICES to these GPUs: "cuda" in the trial is one of them.
            "device": "cuda" if gpu_ids else "cpu",
        }
    )
    study._track_running(trial.trial_id)
    study._start_heartbeat()
    frozen = study._run_one(objective, trial)
    for obs in study.observers:  # a tracker logs in the background: let it finish first
        flush = getattr(obs, "flush", None)
        if callable(flush):
            flush()
    return frozen.state.value


def _resume_spec(trial: Trial) -> dict[str, Any]:
    """What a worker needs to go on with a resumed trial (empty for a fresh one)."""
    if trial.resumed_from is None:
        return {}
    return {
        "intermediate": dict(trial.intermediate),
        "user_attrs": dict(trial.user_attrs),
        "checkpoint": dict(trial._ckpt or {}),
        "resumed_from": trial.resumed_from,
    }


def _limit_threads(cpus: float) -> None:
    n = max(1, int(cpus))
    os.environ["OMP_NUM_THREADS"] = str(n)
    torch = sys.modules.get("torch")
    if torch is not None and torch.get_num_threads() != n:
        torch.set_num_threads(n)


# -- helpers ------------------------------------------------------------------------------


def shareable_url(url: str) -> str:
    """The study's storage URL as workers must open it (an absolute SQLite path).

    Raises:
        HpoError: the study lives in memory, which no other process can reach.
    """
    if url in ("sqlite://", "sqlite:///:memory:"):
        raise HpoError(
            "an in-memory study cannot be shared with Ray workers; give it a storage: "
            "sqlite:///hpo.db (one machine) or postgresql://USER@HOST/DB (a cluster)."
        )
    if url.startswith("sqlite"):
        scheme, rest = url.split("://", 1)
        path = rest[1:] if rest.startswith("/") else rest
        return f"{scheme}:///{os.path.abspath(os.path.expanduser(path))}"
    return url


def _host_port(address: str) -> tuple[str, int] | None:
    """``(host, port)`` of a ``HOST:PORT`` or ``ray://HOST:PORT`` address; None for auto.

    Raises:
        HpoError: the address has neither form.
    """
    if address == "auto":
        return None
    rest = address[len("ray://") :] if address.startswith("ray://") else address
    host, sep, port = rest.rpartition(":")
    if not sep or not host or not port.isdigit() or "/" in rest or not 0 < int(port) < 65536:
        raise HpoError(
            "the Ray address must be auto, HOST:PORT (the head's GCS port, 6379 by default) "
            f"or ray://HOST:PORT (its client port, 10001), got {address!r}."
        )
    return host.strip("[]"), int(port)


# HTTP/2's client connection preface and an empty SETTINGS frame: how a gRPC client opens.
_H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"


def _probe(address: str, timeout: float = 5.0) -> None:
    """Fail at once when nothing listens at the address, or when what listens is no Ray
    head: Ray itself retries a dead GCS address for minutes before it gives up (14 min
    measured here), and hangs as long on a port where, say, a web server listens (issue 17).

    Both of a head's ports (the GCS, and the client server behind ``ray://``) speak gRPC, so
    they answer HTTP/2's connection preface with a SETTINGS frame; anything else does not.
    """
    hp = _host_port(address)
    if hp is None:
        return
    try:
        with socket.create_connection(hp, timeout=timeout) as conn:
            conn.settimeout(timeout)
            reply = b""
            try:
                conn.sendall(_H2_PREFACE)
                while len(reply) < 9:
                    chunk = conn.recv(9 - len(reply))
                    if not chunk:
                        break
                    reply += chunk
            except TimeoutError:
                pass
    except OSError as e:
        raise HpoError(
            f"cannot connect to the Ray cluster at {address!r}: nothing answers at "
            f"{hp[0]}:{hp[1]} ({e.strerror or type(e).__name__}); {_CLUSTER_HELP}."
        ) from None
    if len(reply) < 9 or reply[3] != 0x04:  # byte 3 of a frame header: its type (4: SETTINGS)
        heard = (
            f"it answered {reply[:12].decode('latin-1')!r}..."
            if reply.startswith(b"HTTP/")
            else "it does not answer as a Ray head does"
            if reply
            else f"it sent nothing back within {timeout:g} s"
        )
        raise HpoError(
            f"cannot connect to the Ray cluster at {address!r}: something listens at "
            f"{hp[0]}:{hp[1]}, but it is not a Ray head ({heard}); give the head's GCS "
            "port (6379 by default) or ray://HOST:10001."
        )


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise HpoError(
            "parallel trials need Ray, which is not installed: pip install 'hpo[ray]'."
        ) from None
    return ray


def _pickle_by_value(ray: Any, objective: Any) -> None:
    """Ship the objective's own module by value when workers may not be able to import it
    (a script or a module in the current folder, not an installed package)."""
    module = sys.modules.get(getattr(objective, "__module__", "") or "")
    if module is None or module.__name__ == "__main__" or module.__name__.startswith("hpo"):
        return
    path = getattr(module, "__file__", None) or ""
    if "site-packages" in path or "dist-packages" in path:
        return
    try:
        ray.cloudpickle.register_pickle_by_value(module)
    except Exception as e:
        log.debug("cannot pickle %s by value: %s", module.__name__, e)


def _number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _gist(text: str) -> str:
    """The last non-empty line of a message or traceback: where the reason is."""
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1] if lines else text
