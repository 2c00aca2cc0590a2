"""Checkpoint overhead of the training loop, per epoch, for the default spaces' networks.

Each repetition trains the same trial (same params and seed, a study in a SQLite file store)
twice, interleaved: with the default checkpoints (every epoch, to a local folder next to the
store) and without (``study.checkpointing = None``). Reported per model:

* ``epoch_s``: the median epoch time without checkpoints (the loop's ``epoch_time``);
* ``blocked``: time the training thread spends on checkpoints per epoch (copying the state in
  memory, handing it to the writer, and waiting for the last write before the trial ends),
  as a share of the epoch: what checkpoints add to a trial's wall time on an idle core;
* ``write_ms``: wall time of one background write (``torch.save`` + rename + the store's
  record), overlapped with the next epoch;
* ``cpu``: the median over repetitions of (CPU time with / without - 1): every thread's work,
  the writer's included, as a share of the run (noisier: it includes model build and data).

Target: ``blocked`` <= 3 % of epoch time. Run with ``OMP_NUM_THREADS=1`` on a shared machine.
``--overhead 0`` saves after every epoch whatever it costs (the figure of issue 18); the
default spaces' setting (``--checkpoint-overhead 0.01``) saves less often where a save costs
more than 1 % of the training since the last one; ``saved`` says how many epochs were saved.

    OMP_NUM_THREADS=1 python benchmarks/bench_checkpoint.py              # cnn, mlp, rnn
    OMP_NUM_THREADS=1 python benchmarks/bench_checkpoint.py --model mlp --reps 7 --overhead 0
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import statistics
import tempfile
import time
from typing import Any

import hpo
from hpo.data import MnistData, load_mnist
from hpo.training import _checkpoint, train_and_evaluate
from hpo.trial import _trial

NETWORKS: dict[str, dict[str, Any]] = {
    # Typical good trials of the named spaces (cnn and mlp as in bench_training.py).
    "cnn": {"conv_blocks": 2, "filters_1": 16, "filters_2": 32, "dense_units": 128, "lr": 2e-3},
    "mlp": {"layers": 2, "units_1": 256, "units_2": 128, "lr": 1e-3},
    "rnn": {"cell": "lstm", "hidden_size": 64, "rnn_layers": 1, "lr": 2e-3},
}

_STORE = tempfile.mkdtemp(prefix="hpo-bench-checkpoint-")
_timings: dict[str, list[float]] = {k: [] for k in ("blocked", "write", "blocked_cpu", "write_cpu")}


_depth = [0]


def _timed(key: str, fn: Any) -> Any:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        outer = key != "blocked" or _depth[0] == 0  # a wait inside a save is counted once
        _depth[0] += key == "blocked"
        t0, c0 = time.perf_counter(), time.thread_time()
        try:
            return fn(*args, **kwargs)
        finally:
            _depth[0] -= key == "blocked"
            if outer:
                _timings[key].append(time.perf_counter() - t0)
                _timings[key + "_cpu"].append(time.thread_time() - c0)

    return wrapper


# Measure, not change: the training thread's share (the loop's save call and the wait at the
# trial's end) and the writer thread's write, by wrapping the real functions.
_checkpoint.LoopCheckpoints.save = _timed("blocked", _checkpoint.LoopCheckpoints.save)  # type: ignore[method-assign]
_trial.Trial.wait_checkpoints = _timed("blocked", _trial.Trial.wait_checkpoints)  # type: ignore[method-assign]
_trial.Trial._save = _timed("write", _trial.Trial._save)  # type: ignore[method-assign]


def run_once(
    model: str, data: MnistData, epochs: int, checkpoints: bool, overhead: float | None = None
) -> dict[str, Any]:
    params = NETWORKS[model]
    space = hpo.SearchSpace({k: hpo.Categorical([v]) for k, v in params.items()})
    study = hpo.create_study(
        space=space,
        strategy="random",
        direction="maximize",
        storage=f"sqlite:///{_STORE}/hpo.db",
        name=f"bench-{time.perf_counter_ns()}",
    )
    if not checkpoints:
        study.checkpointing = None
    elif overhead is not None and study.checkpointing is not None:
        study.checkpointing = dataclasses.replace(study.checkpointing, overhead=overhead)
    for v in _timings.values():
        v.clear()
    trial = study.ask()
    c0 = time.process_time()
    value = train_and_evaluate(trial, model=model, data=data, epochs=epochs, device="cpu")
    frozen = study.tell(trial, value)  # waits for the last background write
    cpu = time.process_time() - c0
    return {
        "cpu": cpu,
        "epoch_times": list(frozen.user_attrs["epoch_time"]),
        "blocked": sum(_timings["blocked"]),
        "writes": list(_timings["write"]),
        "work_cpu": sum(_timings["blocked_cpu"]) + sum(_timings["write_cpu"]),
        "value": value,
        "saved": (frozen.system_attrs.get("checkpoint") or {}).get("saved", 0),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", choices=sorted(NETWORKS), action="append")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--max-train", type=int, default=None, help="default: all images found")
    ap.add_argument(
        "--overhead", type=float, default=None, help="checkpoint overhead budget (default: hpo's)"
    )
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args()
    os.environ.setdefault("HPO_OFFLINE", "1")
    data = load_mnist(max_train=args.max_train)
    print(f"data: {data.summary()}")
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '-')}, "
        f"load {os.getloadavg()[0]:.1f}"
    )
    results = {}
    for model in args.model or ["cnn", "mlp", "rnn"]:
        run_once(model, data, 1, True)  # warm-up: imports, allocator, first write
        with_ck: list[dict[str, Any]] = []
        without: list[dict[str, Any]] = []
        for rep in range(args.reps):
            order = (True, False) if rep % 2 == 0 else (False, True)
            for ck in order:
                (with_ck if ck else without).append(
                    run_once(model, data, args.epochs, ck, args.overhead)
                )
        if args.overhead == 0:
            assert all(r["saved"] == args.epochs for r in with_ck)
        assert [r["value"] for r in with_ck] == [r["value"] for r in without]  # same training
        epoch_s = statistics.median(t for r in without for t in r["epoch_times"])
        blocked = statistics.median(r["blocked"] / args.epochs for r in with_ck)
        write = statistics.median(w for r in with_ck for w in r["writes"])
        # CPU time of checkpointing (both threads) per epoch, against a run's CPU per epoch.
        epoch_cpu = statistics.median(r["cpu"] / args.epochs for r in without)
        work = statistics.median(r["work_cpu"] / args.epochs for r in with_ck)
        cpu = statistics.median(
            a["cpu"] / b["cpu"] - 1 for a, b in zip(with_ck, without, strict=True)
        )
        results[model] = {
            "epoch_s": epoch_s,
            "blocked_ms_per_epoch": blocked * 1e3,
            "blocked_pct": 100 * blocked / epoch_s,
            "write_ms": write * 1e3,
            "epoch_cpu_s": epoch_cpu,
            "work_cpu_ms_per_epoch": work * 1e3,
            "work_pct": 100 * work / epoch_cpu,
            "cpu_pct": 100 * cpu,
            "saved": statistics.median(r["saved"] for r in with_ck),
        }
        r = results[model]
        print(
            f"{model}: epoch {r['epoch_s']:.3f} s ({r['epoch_cpu_s']:.3f} s CPU)  "
            f"checkpoint work {r['work_cpu_ms_per_epoch']:.2f} ms CPU = {r['work_pct']:.2f} %  "
            f"blocked {r['blocked_ms_per_epoch']:.2f} ms = {r['blocked_pct']:.2f} %  "
            f"write {r['write_ms']:.1f} ms (background)  run cpu {r['cpu_pct']:+.2f} %  "
            f"saved {r['saved']:g} of {args.epochs} epochs",
            flush=True,
        )
    print(f"load at the end {os.getloadavg()[0]:.1f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
