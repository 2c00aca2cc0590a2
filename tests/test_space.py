from __future__ import annotations

import math
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

import hpo
from hpo.exceptions import SpaceError
from hpo.space._space import GridIndex

MLP = {
    "lr": hpo.Float(1e-4, 1e-1, log=True),
    "layers": hpo.Int(1, 3),
    "units_1": hpo.Int(16, 512, log=True),
    "units_2": hpo.Int(16, 512, log=True, when={"layers": [2, 3]}),
    "units_3": hpo.Int(16, 512, log=True, when={"layers": {">=": 3}}),
    "activation": hpo.Categorical(["relu", "tanh"]),
    "optimizer": hpo.Categorical(["sgd", "adam"]),
    "momentum": hpo.Float(0.0, 0.99, when={"optimizer": "sgd"}),
    "nesterov": hpo.Categorical([True, False], when={"momentum": {">": 0.5}}),
}


def test_active_params_follow_nested_conditions() -> None:
    space = hpo.SearchSpace(MLP)
    rng = np.random.default_rng(0)
    seen_nesterov = False
    for _ in range(300):
        p = space.sample(rng)
        assert ("units_2" in p) == (p["layers"] >= 2)
        assert ("units_3" in p) == (p["layers"] >= 3)
        assert ("momentum" in p) == (p["optimizer"] == "sgd")
        assert ("nesterov" in p) == (p.get("momentum", 0) > 0.5)
        seen_nesterov |= "nesterov" in p
        assert space.check_params(p) == p
    assert seen_nesterov


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"lr": hpo.Float(1.0, 0.1)}, "'lr': `low < high` must hold, got (low=1.0, high=0.1)"),
        ({"lr": hpo.Float(0.1, 0.1)}, "'lr': `low < high`"),
        ({"lr": hpo.Float(0.0, 1.0, log=True)}, "'lr': a log range needs `low > 0`"),
        ({"n": hpo.Int(0, 10, log=True)}, "'n': a log range needs `low > 0`"),
        ({"n": hpo.Int(1, 10, step=2)}, "'n': high - low must be a multiple of step"),
        ({"n": hpo.Int(1.5, 10)}, "'n': low must be an integer"),  # type: ignore[arg-type]
        ({"act": hpo.Categorical([])}, "'act': choices must not be empty"),
        ({"act": hpo.Categorical(["a", "a"])}, "'act': choices must be unique"),
        ({"m": hpo.Float(0, 1, when={"opt": "sgd"})}, "'m': condition on unknown parameter 'opt'"),
        (
            {"m": hpo.Float(0, 1, when={"opt": "sgd"}), "opt": hpo.Categorical(["sgd"])},
            "'m': condition on 'opt', which is defined later",
        ),
        (
            {
                "a": hpo.Float(0, 1, when={"b": {">": 0.5}}),
                "b": hpo.Float(0, 1, when={"a": {">": 0.5}}),
            },
            "conditions form a cycle (a -> b -> a)",
        ),
        ({"a": hpo.Float(0, 1, when={"a": {">": 0.5}})}, "cycle"),
        (
            {"opt": hpo.Categorical(["sgd"]), "m": hpo.Float(0, 1, when={"opt": "adam"})},
            "'m': condition value(s) ['adam'] can never be taken by 'opt'",
        ),
    ],
)
def test_invalid_spaces_name_the_parameter(params: dict, fragment: str) -> None:
    with pytest.raises(SpaceError) as e:
        hpo.SearchSpace(params)
    assert fragment in str(e.value)
    assert "\n" not in str(e.value)


def test_transform_round_trips_and_bounds_are_inclusive() -> None:
    f = hpo.Float(1e-4, 1e-1, log=True)
    for v in (1e-4, 1e-3, 0.05, 1e-1):
        assert math.isclose(f.from_unit(f.to_unit(v)), v, rel_tol=1e-9)
    assert f.from_unit(0.0) == 1e-4 and f.from_unit(1.0) == 1e-1
    i = hpo.Int(1, 4)
    assert {i.from_unit(u) for u in np.linspace(0, 1, 101)} == {1, 2, 3, 4}
    for v in range(1, 5):
        assert i.from_unit(i.to_unit(v)) == v
    s = hpo.Int(0, 20, step=5)
    assert {s.from_unit(u) for u in np.linspace(0, 1, 101)} == {0, 5, 10, 15, 20}
    c = hpo.Categorical(["a", "b", "c"])
    assert [c.from_unit(c.to_unit(x)) for x in "abc"] == ["a", "b", "c"]


def test_log_sampling_is_log_uniform() -> None:
    space = hpo.SearchSpace({"lr": hpo.Float(1e-6, 1.0, log=True)})
    rng = np.random.default_rng(1)
    logs = np.log10([space.sample(rng)["lr"] for _ in range(4000)])
    assert abs(np.median(logs) + 3.0) < 0.15  # uniform in log10 over [-6, 0]
    assert abs(np.mean(logs < -5) - 1 / 6) < 0.03


def test_grid_has_each_active_combination_once() -> None:
    space = hpo.SearchSpace(
        {
            "optimizer": hpo.Categorical(["sgd", "adam"]),
            "momentum": hpo.Float(0.0, 0.9, when={"optimizer": "sgd"}),
            "lr": hpo.Float(1e-3, 1e-1, log=True),
            "layers": hpo.Int(1, 2),
        }
    )
    points = list(space.grid(points=3))
    # sgd: 3 momentum x 3 lr x 2 layers; adam: 3 lr x 2 layers (no copies for momentum)
    assert len(points) == 18 + 6
    keys = {tuple(sorted(p.items())) for p in points}
    assert len(keys) == len(points)
    lrs = sorted({p["lr"] for p in points})
    assert np.allclose(lrs, [1e-3, 1e-2, 1e-1])  # log grid
    assert points == list(space.grid(points=3))  # deterministic order
    assert all("momentum" not in p for p in points if p["optimizer"] == "adam")


def test_the_grid_is_numbered_without_being_made() -> None:
    """index -> point and point -> index in grid() order, nested conditions included; the
    grid of mlp_mnist (3.8e9 points, hundreds of GB when made whole) counts in milliseconds."""
    space = hpo.SearchSpace(
        {
            "opt": hpo.Categorical(["sgd", "adam", "rms"]),
            "m": hpo.Float(0.0, 0.9, when={"opt": "sgd"}),
            "nesterov": hpo.Categorical([False, True], when={"m": {">": 0.1}}),
            "layers": hpo.Int(1, 3),
            "u2": hpo.Int(8, 64, when={"layers": {">=": 2}}),
            "u3": hpo.Int(8, 64, when={"layers": 3, "opt": ["adam", "rms"]}),
            "k": hpo.Categorical([0, 1, True]),
        }
    )
    points = list(space.grid(3))
    assert space.grid_size(3) == len(points)
    assert [space.grid_point(i, 3) for i in range(len(points))] == points
    index = GridIndex(space, 3)
    assert [index.index(p) for p in points] == list(range(len(points)))
    assert index.index({"opt": "adam", "layers": 1, "k": 2}) is None  # not a grid point
    with pytest.raises(IndexError, match="grid index must be in"):
        index.point(len(points))
    big = hpo.load_space("mlp_mnist")
    tracemalloc.start()
    t0 = time.perf_counter()
    try:
        grid = GridIndex(big, 5)
        last = grid.point(grid.size - 1)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert grid.size == 3_836_250_000  # mlp_mnist of issue 16
    assert grid.index(last) == grid.size - 1
    assert time.perf_counter() - t0 < 2 and peak < 5_000_000


def test_check_params_rejects_out_of_range_and_unknown() -> None:
    space = hpo.SearchSpace(MLP)
    with pytest.raises(SpaceError, match="'lr': value 5 is outside"):
        space.check_params(
            {"lr": 5, "layers": 1, "units_1": 16, "activation": "relu", "optimizer": "adam"}
        )
    with pytest.raises(SpaceError, match="unknown parameter"):
        space.check_params({"bogus": 1})
    with pytest.raises(SpaceError, match="'units_1' is active but missing"):
        space.check_params({"lr": 0.01, "layers": 1, "activation": "relu", "optimizer": "adam"})


YAML = """
description: test space
model: mlp
direction: maximize
params:
  lr: {type: float, low: 1e-4, high: 1e-1, log: true}
  layers: {type: int, low: 1, high: 3}
  units_2: {type: int, low: 8, high: 64, when: {layers: {">=": 2}}}
  optimizer: {type: categorical, choices: [sgd, adam]}
  momentum: {type: float, low: 0.0, high: 0.99, when: {optimizer: sgd}}
"""


def test_yaml_space_equals_python_space(tmp_path: Path) -> None:
    f = tmp_path / "space.yaml"
    f.write_text(YAML)
    space = hpo.load_space(str(f))
    same = hpo.SearchSpace(
        {
            "lr": hpo.Float(1e-4, 1e-1, log=True),
            "layers": hpo.Int(1, 3),
            "units_2": hpo.Int(8, 64, when={"layers": {">=": 2}}),
            "optimizer": hpo.Categorical(["sgd", "adam"]),
            "momentum": hpo.Float(0.0, 0.99, when={"optimizer": "sgd"}),
        }
    )
    assert space == same
    assert space.meta["model"] == "mlp" and space.description == "test space"
    # to_dict -> from_dict round trip
    assert hpo.SearchSpace.from_dict(space.to_dict()) == space


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("params: {lr: {type: float, low: 1, high: [}", "broken YAML at line 1"),
        ("params:\n  lr: {type: flaot, low: 0, high: 1}", "'lr': type must be one of"),
        ("params:\n  lr: {type: float, low: abc, high: 1}", "'lr': low must be a number"),
        ("params:\n  lr: {type: float, high: 1}", "'lr': `low` is required"),
        ("params:\n  n: {type: int, low: 1, high: 5, stepp: 2}", "'n': unknown key(s) ['stepp']"),
        ("params:\n  c: {type: categorical, choices: abc}", "'c': choices must be a list"),
        (
            "params:\n  m: {type: float, low: 0, high: 1, when: {opt: sgd}}",
            "unknown parameter 'opt'",
        ),
        ("- just\n- a list", "expected a mapping"),
        ("description: no params", "missing the `params:` section"),
    ],
)
def test_yaml_errors_name_file_and_parameter(tmp_path: Path, text: str, fragment: str) -> None:
    f = tmp_path / "bad.yaml"
    f.write_text(text)
    with pytest.raises(SpaceError) as e:
        hpo.load_space(str(f))
    msg = str(e.value)
    assert msg.startswith(str(f)), msg
    assert fragment in msg, msg


def test_unknown_named_space_lists_the_known_ones() -> None:
    with pytest.raises(SpaceError, match="unknown space 'nope': must be one of"):
        hpo.load_space("nope")
    with pytest.raises(SpaceError, match="does not exist"):
        hpo.load_space("missing/file.yaml")


def test_a_named_space_is_read_into_a_typed_spec_and_gives_back_its_meta() -> None:
    space = hpo.load_space("cnn_mnist")
    spec = space.spec
    assert isinstance(spec, hpo.ExperimentSpec)
    assert (spec.model, spec.dataset, spec.metric) == ("cnn", "mnist", "val_accuracy")
    assert spec.direction is hpo.Direction.MAXIMIZE and spec.trials == 40
    assert (spec.pruner, spec.timeout, spec.epochs) == ("asha", 540, 12)
    assert space.meta["default_pruner"] == "asha" and space.meta["direction"] == "maximize"
    # meta is the spec as a mapping: the YAML's keys, unknown ones kept as given
    meta = {"model": "mlp", "budget": {"epochs": 2}, "owner": "me", "timeout": None}
    again = hpo.ExperimentSpec.from_meta(meta)
    assert again.extra == {"owner": "me"} and again.to_meta() == {
        "model": "mlp",
        "budget": {"epochs": 2},
        "owner": "me",
    }
    assert hpo.SearchSpace({"x": hpo.Float(0, 1)}, meta=meta).spec == again


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("trials: 0", "space meta 'trials': must be an integer >= 1, got 0."),
        ("timeout: -5", "space meta 'timeout': must be seconds > 0, got -5."),
        ("direction: up", "space meta 'direction': must be one of ['minimize', 'maximize']"),
        ("budget: 3", "space meta 'budget': must be a mapping, got 3."),
        ("default_pruner: [asha]", "space meta 'default_pruner': must be a non-empty string"),
    ],
)
def test_a_bad_spec_value_names_file_key_and_value(
    tmp_path: Path, text: str, fragment: str
) -> None:
    f = tmp_path / "bad.yaml"
    f.write_text(f"{text}\nparams:\n  x: {{type: float, low: 0, high: 1}}\n")
    with pytest.raises(SpaceError) as e:
        hpo.load_space(str(f))
    assert str(e.value) == f"{f}: {fragment}" or str(e.value).startswith(f"{f}: {fragment}")


def test_a_stored_spec_with_a_bad_value_still_reads() -> None:
    """A stored study always opens: a value of the wrong type stays in `extra`."""
    spec = hpo.ExperimentSpec.from_meta({"model": "mlp", "trials": "many"}, strict=False)
    assert spec.model == "mlp" and spec.trials is None and spec.extra == {"trials": "many"}
    assert spec.to_meta() == {"model": "mlp", "trials": "many"}
