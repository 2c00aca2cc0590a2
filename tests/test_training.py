"""The training loop on real MNIST images: learning, reporting, divergence, pruning, spaces."""

from __future__ import annotations

import pickle
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import hpo
from hpo import models
from hpo.data import MnistData, load_mnist
from hpo.exceptions import SpaceError, TrialPruned
from hpo.training import (
    TrainConfig,
    configure_threads,
    make_objective,
    make_optimizer,
    make_scheduler,
    train_and_evaluate,
)

SPACES = ("mlp_mnist", "cnn_mnist", "rnn_mnist")
PER_EPOCH = ("train_loss", "train_accuracy", "val_loss", "val_accuracy", "epoch_time")


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> MnistData:
    """1,000 real training images (100 per class) and 1,000 validation images."""
    cache = tmp_path_factory.mktemp("empty-cache")
    return load_mnist(cache_dir=cache, download=False, max_train=1000)


class StubTrial:
    """A trial that records what the loop tells it; prunes after ``prune_after`` reports."""

    def __init__(self, params: Mapping[str, Any], number: int = 0, prune_after: int | None = None):
        self.number = number
        self.params = dict(params)
        self.prune_after = prune_after
        self.reports: list[tuple[int, float]] = []
        self.user_attrs: dict[str, Any] = {}

    def report(self, value: float, step: int) -> None:
        self.reports.append((step, value))

    def should_prune(self) -> bool:
        return self.prune_after is not None and len(self.reports) >= self.prune_after

    def set_user_attr(self, key: str, value: Any) -> None:
        self.user_attrs[key] = value


def real_trial(params: Mapping[str, Any]) -> tuple[hpo.Study, Any]:
    space = hpo.SearchSpace(
        {
            "lr": hpo.Float(1e-4, 1e7, log=True),
            "optimizer": hpo.Categorical(["adam", "sgd"]),
            "batch_size": hpo.Categorical([32, 64]),
        }
    )
    study = hpo.create_study(space=space, strategy="random", direction="maximize")
    return study, study.ask(params)


def test_one_epoch_learns_and_reports_through_the_real_trial(small: MnistData) -> None:
    study, trial = real_trial({"lr": 2e-3, "optimizer": "adam", "batch_size": 32})
    value = train_and_evaluate(trial, model="mlp", data=small, epochs=1)
    assert 0.5 < value <= 1.0  # chance is 0.1
    frozen = study.tell(trial, value)
    assert frozen.state is hpo.TrialState.COMPLETE
    assert set(frozen.intermediate) == {1}
    attrs = frozen.user_attrs
    assert all(len(attrs[k]) == 1 for k in PER_EPOCH)
    assert attrs["val_accuracy"] == [value] and attrs["best_epoch"] == 1
    assert attrs["device"] == "cpu"
    net = models.build_model("mlp", trial.params, (1, 28, 28), 10)
    assert attrs["n_params"] == sum(p.numel() for p in net.parameters())
    # the trained model and an input batch are handed to observers (the MLflow tracker)
    trained, example = trial.artifacts["model"], trial.artifacts["input_example"]
    assert example.shape == (2, 1, 28, 28)
    assert trained(example).shape == (2, 10)


@pytest.mark.parametrize(
    ("model", "params"),
    [
        ("cnn", {"conv_blocks": 1, "filters_1": 8, "dense_units": 32, "batch_size": 64}),
        ("rnn", {"cell": "gru", "hidden_size": 32, "batch_size": 64, "lr": 3e-3}),
    ],
)
def test_cnn_and_rnn_train_above_chance(
    small: MnistData, model: str, params: dict[str, Any]
) -> None:
    trial = StubTrial(params)
    value = train_and_evaluate(trial, model=model, data=small, epochs=1)
    assert value > 0.3
    assert [step for step, _ in trial.reports] == [1]


def test_every_epoch_is_reported_and_the_best_returned(small: MnistData) -> None:
    trial = StubTrial({"layers": 1, "units_1": 64, "epochs": 3, "lr": 3e-3}, number=4)
    best = train_and_evaluate(trial, model="mlp", data=small)
    assert [step for step, _ in trial.reports] == [1, 2, 3]  # epochs param used
    vals = trial.user_attrs["val_accuracy"]
    assert [v for _, v in trial.reports] == vals
    assert best == max(vals) and vals[trial.user_attrs["best_epoch"] - 1] == best
    assert all(len(trial.user_attrs[k]) == 3 for k in PER_EPOCH)
    assert all(t > 0 for t in trial.user_attrs["epoch_time"])
    losses = trial.user_attrs["train_loss"]
    assert losses[-1] < losses[0]
    assert all(0.0 <= a <= 1.0 for a in trial.user_attrs["train_accuracy"])


def test_epochs_argument_overrides_the_param(small: MnistData) -> None:
    trial = StubTrial({"layers": 1, "units_1": 16, "epochs": 5})
    train_and_evaluate(trial, model="mlp", data=small, epochs=1)
    assert len(trial.reports) == 1


def test_same_trial_number_and_seed_give_the_same_result(small: MnistData) -> None:
    params = {"layers": 1, "units_1": 32, "dropout": 0.2}
    runs = [StubTrial(params, number=2), StubTrial(params, number=2), StubTrial(params, number=2)]
    for trial, seed in zip(runs, (0, 0, 1), strict=True):
        train_and_evaluate(trial, model="mlp", data=small, epochs=1, seed=seed)
    a, b, c = (t.user_attrs["train_loss"] for t in runs)
    assert a == b
    assert a != c  # another seed is another run


def test_divergence_raises_floating_point_error_with_the_reason(small: MnistData) -> None:
    study, trial = real_trial({"lr": 1e6, "optimizer": "sgd", "batch_size": 32})
    with pytest.raises(FloatingPointError) as err:
        train_and_evaluate(trial, model="mlp", data=small, epochs=2)
    assert re.fullmatch(
        r"training diverged: loss became (nan|inf|-inf) at epoch 1, batch \d+", str(err.value)
    )
    study.tell(trial, state=hpo.TrialState.FAILED, error=str(err.value))


def test_a_diverging_objective_makes_a_failed_trial_not_a_dead_study(small: MnistData) -> None:
    # SGD at lr 1e6 overflows the default MLP's weights within a few batches (measured: batch 3).
    space = hpo.SearchSpace({"lr": hpo.Categorical([1e6]), "optimizer": hpo.Categorical(["sgd"])})
    study = hpo.create_study(space=space, strategy="random", direction="maximize")

    def objective(trial: Any) -> float:
        return train_and_evaluate(trial, model="mlp", data=small, epochs=1)

    study.optimize(objective, n_trials=1)
    (t,) = study.trials
    assert t.state is hpo.TrialState.FAILED
    assert "FloatingPointError: training diverged: loss became" in (t.error or "")


def test_pruning_stops_after_the_report_and_keeps_the_curves(small: MnistData) -> None:
    trial = StubTrial({"layers": 1, "units_1": 16}, prune_after=1)
    with pytest.raises(TrialPruned):
        train_and_evaluate(trial, model="mlp", data=small, epochs=3)
    assert len(trial.reports) == 1
    assert len(trial.user_attrs["val_accuracy"]) == 1


def test_bad_training_params_raise_space_error(small: MnistData) -> None:
    for params, name in [
        ({"optimizer": "lbfgs"}, "optimizer"),
        ({"lr": 0.0}, "lr"),
        ({"lr": float("inf")}, "lr"),
        ({"batch_size": 0}, "batch_size"),
        ({"optimizer": "sgd", "momentum": 1.0}, "momentum"),
        ({"optimizer": "sgd", "momentum": 0.0, "nesterov": True}, "nesterov"),
        ({"optimizer": "adam", "beta2": 1.0}, "beta2"),
        ({"optimizer": "rmsprop", "alpha": 0.0}, "alpha"),
        ({"activation": "foo"}, "activation"),
        ({"lr_schedule": "step"}, "lr_schedule"),
    ]:
        with pytest.raises(SpaceError, match=f"parameter '{name}'"):
            train_and_evaluate(StubTrial(params), model="mlp", data=small, epochs=1)


def test_each_optimizer_reads_only_its_own_constants() -> None:
    sgd = TrainConfig.from_params({"optimizer": "sgd", "momentum": 0.8, "beta1": 5.0})
    assert (sgd.momentum, sgd.beta1) == (0.8, 0.9)  # beta1 is inactive, not checked
    adam = TrainConfig.from_params({"optimizer": "adam", "beta1": 0.7, "momentum": 7})
    assert (adam.beta1, adam.momentum) == (0.7, 0.0)
    rms = TrainConfig.from_params({"optimizer": "rmsprop", "alpha": 0.95, "momentum": 0.5})
    net = torch.nn.Linear(2, 2)
    opt = make_optimizer(rms, net.parameters())
    assert isinstance(opt, torch.optim.RMSprop)
    assert opt.defaults["alpha"] == 0.95 and opt.defaults["momentum"] == 0.5
    nesterov = make_optimizer(
        TrainConfig.from_params({"optimizer": "sgd", "nesterov": True}), net.parameters()
    )
    assert nesterov.defaults["nesterov"] is True and nesterov.defaults["momentum"] == 0.9


def test_cosine_schedule_decays_to_zero_over_the_run(small: MnistData) -> None:
    net = torch.nn.Linear(2, 2)
    config = TrainConfig.from_params({"lr": 0.1, "lr_schedule": "cosine"})
    opt = make_optimizer(config, net.parameters())
    sched = make_scheduler(config, opt, steps=10)
    assert sched is not None
    lrs = []
    for _ in range(10):
        opt.step()
        sched.step()
        lrs.append(opt.param_groups[0]["lr"])
    assert lrs == sorted(lrs, reverse=True) and lrs[-1] == pytest.approx(0.0, abs=1e-12)
    assert make_scheduler(TrainConfig.from_params({}), opt, steps=10) is None
    trial = StubTrial({"layers": 1, "units_1": 32, "lr": 3e-3, "lr_schedule": "cosine"})
    assert train_and_evaluate(trial, model="mlp", data=small, epochs=2) > 0.5


def test_threads_are_left_alone_when_the_environment_sets_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import hpo.training._device as device

    before = torch.get_num_threads()
    monkeypatch.setattr(device, "_threads_configured", False)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setattr(torch, "set_num_threads", lambda n: pytest.fail("must not be called"))
    assert configure_threads() == before


# -- named spaces and make_objective -----------------------------------------------------


@pytest.mark.parametrize("name", SPACES)
def test_named_spaces_declare_what_the_objective_needs(name: str) -> None:
    space = hpo.load_space(name)
    meta = space.meta
    assert meta["model"] in models.MODELS
    assert (meta["dataset"], meta["metric"], meta["direction"]) == (
        "mnist",
        "val_accuracy",
        "maximize",
    )
    assert meta["trials"] >= 1 and meta["budget"]["epochs"] >= 1
    assert name in hpo.available_spaces()


@pytest.mark.parametrize("name", SPACES)
def test_every_point_of_a_named_space_builds(name: str) -> None:
    space = hpo.load_space(name)
    rng = np.random.default_rng(0)
    for _ in range(25):
        params = space.sample(rng)
        models.build_model(space.meta["model"], params, (1, 28, 28), 10)
        TrainConfig.from_params(params)


def test_make_objective_trains_the_space_model_and_loads_data_once(tmp_path: Path) -> None:
    space = hpo.load_space("cnn_mnist")
    meta = {**space.meta, "budget": {"epochs": 1, "max_train_images": 500}}
    objective = make_objective(meta, seed=0)
    again = make_objective(meta, seed=0)
    assert objective.data is again.data  # one copy per process
    assert len(objective.data.train_y) == 500
    assert objective.data.source.startswith(("embedded:", "cache ", "downloaded"))
    study = hpo.create_study(space=space, strategy="random", direction="maximize", seed=1)
    study.optimize(objective, n_trials=1)
    (t,) = study.trials
    assert t.state is hpo.TrialState.COMPLETE, t.error
    assert 0.0 <= (t.value or 0.0) <= 1.0
    assert len(t.user_attrs["val_accuracy"]) == 1
    clone = pickle.loads(pickle.dumps(objective))
    assert clone.model == "cnn" and clone.data is objective.data


@pytest.mark.parametrize(
    ("meta", "match"),
    [
        ({"model": "vit"}, "space meta 'model': must be one of"),
        ({"model": "mlp", "dataset": "cifar10"}, "space meta 'dataset'"),
        ({"model": "mlp", "metric": "val_loss"}, "space meta 'metric'"),
        ({"model": "mlp", "budget": {"epochs": 0}}, "parameter 'epochs'"),
    ],
)
def test_make_objective_rejects_bad_meta(meta: dict[str, Any], match: str) -> None:
    with pytest.raises(SpaceError, match=re.escape(match)):
        make_objective(meta)
