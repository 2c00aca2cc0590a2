"""Training throughput: hpo's ``train_and_evaluate`` against a plain hand-written PyTorch loop.

Same network (built by ``hpo.models`` from the same params and seed), same optimiser, batch
size, data and epochs; every variant also measures validation accuracy after each epoch, as
``train_and_evaluate`` does. Variants run interleaved (their order rotates every repetition)
so drifting machine load hits them alike. Reported per variant: images per second of wall time
and images per CPU-second (epochs x training images / time of the whole run: model build,
training and evaluation), medians over the repetitions, and the median of the per-repetition
ratios ours / plain (target: >= 0.95).

On a shared machine, run with ``OMP_NUM_THREADS=1``: one thread never spin-waits, so its CPU
time measures the work done whatever else runs, and the CPU-time ratio is the one to trust;
the wall-clock figures are only meaningful on an otherwise idle machine.

A third variant, the usual tutorial loop over ``DataLoader(TensorDataset(...))``, shows what
index-based batching of in-memory tensors saves.

    python benchmarks/bench_training.py                 # cnn and mlp, 7 repetitions
    OMP_NUM_THREADS=1 python benchmarks/bench_training.py --model cnn --reps 9 --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from hpo import models
from hpo.data import MnistData, load_mnist
from hpo.training import configure_threads, train_and_evaluate

NETWORKS: dict[str, dict[str, Any]] = {
    # The defaults of the named spaces' typical good trials (see search_spaces/).
    "cnn": {"conv_blocks": 2, "filters_1": 16, "filters_2": 32, "dense_units": 128, "lr": 2e-3},
    "mlp": {"layers": 2, "units_1": 256, "units_2": 128, "lr": 1e-3},
}


_STORE = tempfile.mkdtemp(prefix="hpo-bench-training-")


_STUDIES: dict[str, Any] = {}


def _study(model: str, params: dict[str, Any], storage: str | None = "file") -> Any:
    """One study per network in a SQLite file store, made once (outside the timed runs) as
    ``hpo run`` makes one for all its trials. Making a store per run would time its engine's
    start: every SQL statement compiled afresh, ~19 ms a run that no trial of a study pays."""
    import hpo

    key = f"{model}-{sorted(params.items())}-{storage}"
    if key not in _STUDIES:
        space = hpo.SearchSpace(
            {k: hpo.Categorical([v]) for k, v in params.items()}  # one point: these params
        )
        _STUDIES[key] = hpo.create_study(
            space=space,
            strategy="random",
            direction="maximize",
            storage=f"sqlite:///{_STORE}/hpo.db" if storage == "file" else None,
            name=f"bench-{time.perf_counter_ns()}",
        )
    return _STUDIES[key]


def ours(model: str, params: dict[str, Any], data: MnistData, epochs: int) -> float:
    """The framework as a user runs it: a new trial of a study in a SQLite file store (its
    params asked from the strategy, every report and per-epoch attribute written, a checkpoint
    after each epoch, the result told), trained by ``train_and_evaluate``."""
    study = _study(model, params)
    trial = study.ask()
    value = train_and_evaluate(trial, model=model, data=data, epochs=epochs, device="cpu")
    study.tell(trial, value)
    return value


def ours_in_memory(model: str, params: dict[str, Any], data: MnistData, epochs: int) -> float:
    """As :func:`ours` in an in-memory study: the same loop and store calls, no file writes
    and no checkpoints: what the loop costs apart from making the trial durable."""
    study = _study(model, params, storage=None)
    trial = study.ask()
    value = train_and_evaluate(trial, model=model, data=data, epochs=epochs, device="cpu")
    study.tell(trial, value)
    return value


def _evaluate(net: torch.nn.Module, data: MnistData) -> float:
    net.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(data.val_y), 1024):
            correct += int(
                (net(data.val_x[i : i + 1024]).argmax(1) == data.val_y[i : i + 1024]).sum()
            )
    return correct / len(data.val_y)


def plain(model: str, params: dict[str, Any], data: MnistData, epochs: int) -> float:
    torch.manual_seed(0)
    net = models.build_model(model, params, (1, 28, 28), 10)
    opt = torch.optim.Adam(net.parameters(), lr=params["lr"])
    bs = params["batch_size"]
    x, y = data.train_x, data.train_y
    best = 0.0
    for _ in range(epochs):
        net.train()
        perm = torch.randperm(len(y))
        for i in range(0, len(y), bs):
            idx = perm[i : i + bs]
            loss = F.cross_entropy(net(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        best = max(best, _evaluate(net, data))
    return best


def dataloader(model: str, params: dict[str, Any], data: MnistData, epochs: int) -> float:
    torch.manual_seed(0)
    net = models.build_model(model, params, (1, 28, 28), 10)
    opt = torch.optim.Adam(net.parameters(), lr=params["lr"])
    loader = DataLoader(
        TensorDataset(data.train_x, data.train_y), batch_size=params["batch_size"], shuffle=True
    )
    best = 0.0
    for _ in range(epochs):
        net.train()
        for xb, yb in loader:
            loss = F.cross_entropy(net(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
        best = max(best, _evaluate(net, data))
    return best


VARIANTS: dict[str, Callable[[str, dict[str, Any], MnistData, int], float]] = {
    "plain loop": plain,
    "hpo train_and_evaluate": ours,
    "hpo, in-memory study": ours_in_memory,
    "DataLoader loop": dataloader,
}


def bench(model: str, batch_size: int, data: MnistData, epochs: int, reps: int) -> dict[str, Any]:
    params = {**NETWORKS[model], "batch_size": batch_size}
    names = list(VARIANTS)
    rates: dict[str, list[float]] = {n: [] for n in names}
    cpu_rates: dict[str, list[float]] = {n: [] for n in names}
    accs: dict[str, list[float]] = {n: [] for n in names}
    for name in names:  # warm-up: allocator, kernels, threads
        VARIANTS[name](model, params, data, 1)
    images = epochs * len(data.train_y)
    for rep in range(reps):
        order = names[rep % len(names) :] + names[: rep % len(names)]
        for name in order:
            t0, c0 = time.perf_counter(), time.process_time()
            acc = VARIANTS[name](model, params, data, epochs)
            rates[name].append(images / (time.perf_counter() - t0))
            cpu_rates[name].append(images / (time.process_time() - c0))
            accs[name].append(acc)

    def ratios(r: dict[str, list[float]], ours: str = "hpo train_and_evaluate") -> list[float]:
        return [o / p for o, p in zip(r[ours], r["plain loop"], strict=True)]

    return {
        "model": model,
        "batch_size": batch_size,
        "params": params,
        "images_per_s": {n: statistics.median(r) for n, r in rates.items()},
        "images_per_cpu_s": {n: statistics.median(r) for n, r in cpu_rates.items()},
        "all_images_per_s": rates,
        "all_images_per_cpu_s": cpu_rates,
        "best_val_accuracy": {n: statistics.median(a) for n, a in accs.items()},
        "ratio_wall": statistics.median(ratios(rates)),
        "ratio_cpu": statistics.median(ratios(cpu_rates)),
        "ratios_wall": ratios(rates),
        "ratios_cpu": ratios(cpu_rates),
        "ratio_cpu_in_memory": statistics.median(ratios(cpu_rates, "hpo, in-memory study")),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", choices=[*NETWORKS, "all"], default="all")
    ap.add_argument("--batch-size", type=int, nargs="+", default=[64])
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--json", help="also write the results to this JSON file")
    args = ap.parse_args()

    threads = configure_threads()
    data = load_mnist(download=False)
    print(f"data: {data.summary()}")
    print(
        f"torch {torch.__version__}, {threads} threads, {os.cpu_count()} CPUs "
        f"({platform.processor() or platform.machine()}), load average before: "
        f"{', '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )
    print(f"{args.epochs} epoch(s) per run, {args.reps} interleaved repetitions, medians shown\n")
    results = []
    header = (
        f"{'model':5}  {'batch':>5}  {'variant':24}  {'images/s':>9}  {'images/CPU-s':>12}  val acc"
    )
    print(header)
    print("-" * len(header))
    for model in NETWORKS if args.model == "all" else [args.model]:
        for bs in args.batch_size:
            r = bench(model, bs, data, args.epochs, args.reps)
            results.append(r)
            for name, rate in r["images_per_s"].items():
                print(
                    f"{model:5}  {bs:>5}  {name:24}  {rate:>9,.0f}  "
                    f"{r['images_per_cpu_s'][name]:>12,.0f}  {r['best_val_accuracy'][name]:.3f}"
                )
            for clock in ("wall", "cpu"):
                per_rep = ", ".join(f"{x:.2f}" for x in r[f"ratios_{clock}"])
                print(
                    f"{'':5}  {'':>5}  ratio ours / plain ({clock} clock): "
                    f"{r[f'ratio_{clock}']:.3f}  (per repetition: {per_rep})"
                )
            print(
                f"{'':5}  {'':>5}  ratio in-memory study / plain (cpu clock): "
                f"{r['ratio_cpu_in_memory']:.3f}"
            )
            print()
    print(f"load average after: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(
                {"threads": threads, "torch": torch.__version__, "results": results}, f, indent=2
            )


if __name__ == "__main__":
    main()
