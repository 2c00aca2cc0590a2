"""MLflow tracking overhead per trial, side by side with tracking off, in one run.

Each measured trial carries what a default ``cnn_mnist`` trial logs: its params, 10 epochs of
per-epoch metrics (val accuracy reported each epoch, plus train/val loss and accuracy and epoch
time as lists) and tags; no model artifact. The objective itself does no work, so the
difference between "tracking on" and "tracking off" is the tracking cost alone. Tracking is
logged inline (``background=False``) so its whole cost is counted; the default background mode
takes it off the trial's path entirely (its time on that path is reported too).

The cost is set against the wall time of one real default ``cnn_mnist`` trial on this machine
(measured here, same run), which gives the overhead in percent. Target: <= 5 %.

    .venv/bin/python benchmarks/bench_tracking.py --trials 20 --reps 5

``--hung`` measures instead what a hung tracking server (every process of ``mlflow server``
stopped with SIGSTOP: connections are accepted and never answered) costs a whole study: the
wall time of the same study (trials of ``--trial-seconds`` each, close included) with tracking
off, with tracking to the hung server, and with tracking to it while every trial waits for its
logging as a Ray worker does. Target: within 10 % of tracking off (issue 17).

    .venv/bin/python benchmarks/bench_tracking.py --hung --trials 20 --trial-seconds 0.5
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import hpo
from hpo.tracking import MlflowTracker


def fake_objective(trial: hpo.Trial) -> float:
    curves: dict[str, list[float]] = {
        k: [] for k in ("train_loss", "train_accuracy", "val_loss", "val_accuracy", "epoch_time")
    }
    for epoch in range(1, 11):
        for k in curves:
            curves[k].append(0.5 + 0.01 * epoch)
        trial.report(0.9 + 0.005 * epoch, epoch)
    for k, v in curves.items():
        trial.set_user_attr(k, v)
    trial.set_user_attr("n_params", 12345)
    trial.set_user_attr("device", "cpu")
    return 0.95


def per_trial(tracker: MlflowTracker | None, n: int, storage: str, name: str) -> float:
    space = hpo.load_space("cnn_mnist")
    study = hpo.create_study(
        space=space,
        strategy="random",
        storage=storage,
        name=name,
        direction="maximize",
        meta={"metric": "val_accuracy"},
    )
    if tracker is not None:
        study.observers.append(tracker)
    study.optimize(fake_objective, n_trials=2)  # warm-up: imports, experiment, parent run
    if tracker is not None:
        tracker.flush()
    t0 = time.perf_counter()
    study.optimize(fake_objective, n_trials=n)
    if tracker is not None:
        tracker.close()
    return (time.perf_counter() - t0) / n


def cnn_trial_seconds() -> float:
    """Wall time of one default cnn_mnist trial (the space's budget, a mid-space point)."""
    from hpo.training import make_objective

    space = hpo.load_space("cnn_mnist")
    objective = make_objective(space.meta, device="cpu")
    study = hpo.create_study(space=space, strategy="random", direction="maximize")
    params = {
        "optimizer": "adam",
        "lr": 1e-3,
        "batch_size": 64,
        "conv_blocks": 2,
        "filters_1": 16,
        "filters_2": 32,
        "kernel_size": 3,
        "pooling": "max",
        "batch_norm": True,
        "activation": "relu",
        "dense_units": 128,
        "dropout": 0.25,
    }
    import numpy as np

    full = dict(space.sample(np.random.default_rng(0)))  # any other knob: a random value
    full.update({k: v for k, v in params.items() if k in space})
    full = {k: full.get(k, p.from_unit(0.5)) for k, p in space.items()}
    trial = study.ask(space.check_params(full))
    t0 = time.perf_counter()
    study.tell(trial, objective(trial))
    return time.perf_counter() - t0


def start_server(root: Path) -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
            "--backend-store-uri",
            f"sqlite:///{root}/server.db",
            "--artifacts-destination",
            str(root / "artifacts"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its uvicorn worker and job runners stop (and hang) with it
    )
    for _ in range(400):
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2):
                return proc, url
        except OSError:
            time.sleep(0.5)
    proc.kill()
    raise RuntimeError("mlflow server did not start")


def _group(proc: subprocess.Popen[bytes], sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    _group(proc, signal.SIGCONT)
    _group(proc, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=20)
    _group(proc, signal.SIGKILL)


def hung_study(
    tracker: MlflowTracker | None, n: int, seconds: float, storage: str, name: str, flush: bool
) -> float:
    """Wall time of a study of ``n`` trials of ``seconds`` each, the tracker closed at the end
    (what ``hpo run`` does). ``flush``: every trial waits for its logging (a Ray worker)."""

    def objective(trial: hpo.Trial) -> float:
        time.sleep(seconds)
        return fake_objective(trial)

    study = hpo.create_study(
        space=hpo.load_space("cnn_mnist"),
        strategy="random",
        storage=storage,
        name=name,
        direction="maximize",
        meta={"metric": "val_accuracy"},
    )
    if tracker is not None:
        study.observers.append(tracker)
    callbacks = [lambda s, t: tracker.flush()] if flush and tracker is not None else []
    t0 = time.perf_counter()
    study.optimize(objective, n_trials=n, callbacks=callbacks)
    if tracker is not None:
        tracker.close(timeout=120)
    return time.perf_counter() - t0


def hung(args: argparse.Namespace, root: Path) -> None:
    proc, url = start_server(root)
    storage = f"sqlite:///{root}/hpo.db"
    try:
        # warm-up with the server alive: MLflow's imports, the experiment
        warm = MlflowTracker(url)
        hung_study(warm, 2, 0.0, storage, "warm", False)
        _group(proc, signal.SIGSTOP)
        modes: dict[str, tuple[Any, bool]] = {
            "tracking off": (lambda: None, False),
            "hung server, in-process (background logging)": (lambda: MlflowTracker(url), False),
            "hung server, every trial waits for its logging (a Ray worker)": (
                lambda: MlflowTracker(url),
                True,
            ),
        }
        times: dict[str, list[float]] = {m: [] for m in modes}
        for rep in range(args.reps):
            for i, (mode, (make, flush)) in enumerate(modes.items()):
                t = hung_study(
                    make(), args.trials, args.trial_seconds, storage, f"h{rep}-{i}", flush
                )
                times[mode].append(t)
    finally:
        stop_server(proc)
    off = statistics.median(times["tracking off"])
    print(
        f"\n{args.trials} trials of {args.trial_seconds} s per study, median of {args.reps}; "
        "the tracking server stopped with SIGSTOP\n"
    )
    print("| mode | study wall time | vs tracking off |")
    print("|---|---|---|")
    for mode, ts in times.items():
        t = statistics.median(ts)
        print(f"| {mode} | {t:.2f} s | {100 * (t - off) / off:+.1f} % |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--trials", type=int, default=30)
    ap.add_argument("--reps", type=int, default=5, help="interleaved repetitions")
    ap.add_argument("--skip-cnn", action="store_true", help="do not time a real cnn trial")
    ap.add_argument("--hung", action="store_true", help="a hung server against tracking off")
    ap.add_argument("--trial-seconds", type=float, default=0.5, help="with --hung")
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="hpo-bench-tracking-"))
    os.chdir(root)
    if args.hung:
        hung(args, root)
        return
    proc, url = start_server(root)
    modes = {
        "tracking off": lambda: None,
        "local store (sqlite:///mlflow.db), inline": lambda: MlflowTracker(
            f"sqlite:///{root}/mlflow.db", background=False
        ),
        "tracking server, inline": lambda: MlflowTracker(url, background=False),
        "tracking server, background (default; flush included)": lambda: MlflowTracker(url),
    }
    times: dict[str, list[float]] = {m: [] for m in modes}
    try:
        storage = f"sqlite:///{root}/hpo.db"
        for rep in range(args.reps):  # interleaved, order rotating: drift hits all alike
            names = list(modes)
            names = names[rep % len(names) :] + names[: rep % len(names)]
            for i, name in enumerate(names):
                times[name].append(per_trial(modes[name](), args.trials, storage, f"r{rep}-{i}"))
    finally:
        stop_server(proc)
    off = statistics.median(times["tracking off"])
    rows = [(m, statistics.median(ts), statistics.median(ts) - off) for m, ts in times.items()]
    cnn = None if args.skip_cnn else cnn_trial_seconds()
    print(
        f"\n{args.trials} trials per repetition, median of {args.reps}; a default cnn_mnist trial took "
        f"{'-' if cnn is None else f'{cnn:.1f} s'} on this machine\n"
    )
    print("| mode | time per trial | tracking cost per trial | % of a cnn_mnist trial |")
    print("|---|---|---|---|")
    for name, t, cost in rows:
        pct = "-" if cnn is None else f"{100 * cost / cnn:.2f} %"
        print(f"| {name} | {1000 * t:.1f} ms | {1000 * cost:.1f} ms | {pct} |")


if __name__ == "__main__":
    main()
