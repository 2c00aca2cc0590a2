"""The seed's table, measured: ``hpo run`` with a space's defaults against a hand-set network,
both tested on the same held-out images that no search saw (issue 16).

For each space and seed it runs, as a user would, ``hpo run --space SPACE --strategy bayes
--seed SEED`` in a fresh process (the space's default pruner, timeout and epochs; MLflow off;
the final model retrained on train + validation and tested at the end), then reads the stored
evaluation. In the same run it trains a hand-set network — what a person writes in five
minutes — on the same train + validation images and tests it on the same test split.

    OMP_NUM_THREADS=1 python benchmarks/bench_final_eval.py                      # cnn + mlp, seed 0
    python benchmarks/bench_final_eval.py --spaces mlp_mnist --seeds 0,1 --json out.json
    python benchmarks/bench_final_eval.py --spaces cnn_mnist --device cuda        # on a GPU

Reported per space and seed: wall time of the whole command (search + final model), trials
(complete / pruned), the best validation accuracy, the final model's test accuracy, and the
hand-set network's test accuracy and training time.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

#: Hand-set networks (params as a space would give them) and their epochs.
HAND_SET: dict[str, tuple[str, dict[str, Any], int]] = {
    # Two conv blocks of 32/64 3x3 filters, max pool, a dense layer of 128, dropout 0.25,
    # Adam 1e-3, batch 64, 15 epochs: the Keras MNIST example, more or less.
    "cnn_mnist": (
        "cnn",
        {"conv_blocks": 2, "filters_1": 32, "filters_2": 64, "kernel_size": 3,
         "dense_units": 128, "dropout": 0.25, "lr": 1e-3, "batch_size": 64},
        15,
    ),
    # Two hidden layers of 256 ReLU units, Adam 1e-3, batch 64, 20 epochs.
    "mlp_mnist": (
        "mlp",
        {"layers": 2, "units": 256, "activation": "relu", "lr": 1e-3, "batch_size": 64},
        20,
    ),
    # One LSTM layer of 128 units, Adam 1e-3, batch 64, 10 epochs.
    "rnn_mnist": (
        "rnn",
        {"cell": "lstm", "hidden_size": 128, "rnn_layers": 1, "lr": 1e-3, "batch_size": 64},
        10,
    ),
}  # fmt: skip


def _hand_set(space: str, seed: int, device: str | None) -> dict[str, Any]:
    from hpo.data import load_mnist
    from hpo.training import train_final

    kind, params, epochs = HAND_SET[space]
    data = load_mnist(seed=seed)  # the same sources and split as `hpo run`
    t0 = time.perf_counter()
    final = train_final(params, model=kind, data=data, epochs=epochs, device=device, seed=seed)
    return {
        "params": params,
        "epochs": epochs,
        "test_accuracy": final.test_accuracy,
        "test_loss": final.test_loss,
        "seconds": round(time.perf_counter() - t0, 1),
        "n_train": final.info["n_train"],
        "test_source": final.info["test_source"],
    }


def _search(space: str, seed: int, device: str | None, workdir: Path) -> dict[str, Any]:
    import hpo
    from hpo.trial import TrialState

    name = f"{space}-bayes-s{seed}"
    storage = f"sqlite:///{workdir / 'bench.db'}"
    cmd = [sys.executable, "-m", "hpo.cli", "run", "--space", space, "--strategy", "bayes",
           "--seed", str(seed), "--study", name, "--storage", storage, "--no-mlflow",
           "--no-progress"]  # fmt: skip
    if device:
        cmd += ["--device", device]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"hpo run failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    study = hpo.load_study(name, storage=storage)
    ev = study.evaluation
    assert ev is not None, proc.stdout[-2000:]
    states = [t.state for t in study.trials]
    times = [t.duration.total_seconds() for t in study.trials if t.duration is not None]
    return {
        "command": " ".join(cmd[2:]),
        "wall_s": round(wall, 1),
        "trials": len(states),
        "complete": states.count(TrialState.COMPLETE),
        "pruned": states.count(TrialState.PRUNED),
        "search_s": round(sum(times), 1),
        "best_trial": ev.trial_number,
        "val_accuracy": study.best_value,
        "test_accuracy": ev.test_accuracy,
        "test_loss": ev.test_loss,
        "final_epochs": ev.epochs,
        "final_train_s": ev.info.get("train_seconds"),
        "test_source": ev.info.get("test_source"),
        "params": dict(study.best_params),
        "stdout_tail": proc.stdout[-1500:],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--spaces", default="cnn_mnist,mlp_mnist", help="comma-separated spaces")
    ap.add_argument("--seeds", default="0", help="comma-separated seeds")
    ap.add_argument("--device", default=None, help="cpu, cuda, ... [default: as hpo run]")
    ap.add_argument("--no-hand-set", action="store_true", help="skip the hand-set baselines")
    ap.add_argument("--json", default=None, help="also write the results here")
    args = ap.parse_args()
    spaces = [s.strip() for s in args.spaces.split(",") if s.strip()]
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    os.environ.setdefault("HPO_OFFLINE", "1")
    machine = (
        f"{platform.machine()}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}, "
        f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '-')}"
    )
    print(f"machine: {machine}", flush=True)
    rows = []
    with tempfile.TemporaryDirectory(prefix="hpo-final-") as tmp:
        for space in spaces:
            for seed in seeds:
                load0 = os.getloadavg()[0]
                found = _search(space, seed, args.device, Path(tmp))
                hand = None if args.no_hand_set else _hand_set(space, seed, args.device)
                row = {"space": space, "seed": seed, "load_1min_start": round(load0, 1),
                       "load_1min_end": round(os.getloadavg()[0], 1), "hpo": found,
                       "hand_set": hand}  # fmt: skip
                rows.append(row)
                hand_txt = (
                    f"hand-set {100 * hand['test_accuracy']:.2f} % ({hand['seconds']:.0f} s)"
                    if hand
                    else "hand-set skipped"
                )
                print(
                    f"{space} seed {seed}: {found['wall_s']:.0f} s, {found['trials']} trials "
                    f"({found['complete']} complete, {found['pruned']} pruned); best validation "
                    f"{100 * found['val_accuracy']:.2f} %; final model test "
                    f"{100 * found['test_accuracy']:.2f} % ({found['final_epochs']} epochs, "
                    f"{found['final_train_s']} s); {hand_txt}; load {load0:.1f}",
                    flush=True,
                )
                print(f"  test split: {found['test_source']}", flush=True)
                print(f"  best params: {found['params']}", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": machine, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
