"""Model builders: shapes, every activation and init, and SpaceError for bad values."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import nn

from hpo import models
from hpo.exceptions import SpaceError

ACTIVATIONS, MODELS, WEIGHT_INITS = models.ACTIVATIONS, models.MODELS, models.WEIGHT_INITS
build_model = models.build_model

SHAPE = (1, 28, 28)


def forward(kind: str, params: dict[str, Any], shape: tuple[int, ...] = SHAPE) -> torch.Tensor:
    torch.manual_seed(0)
    net = build_model(kind, params, shape, 10)
    return net(torch.rand(3, *shape))


def test_registry_names_the_three_builders() -> None:
    assert set(MODELS) == {"mlp", "cnn", "rnn"}


COMBOS: list[tuple[str, dict[str, Any]]] = [
    ("mlp", {}),
    ("mlp", {"layers": 1, "units_1": 7}),
    ("mlp", {"layers": 3, "units_1": 64, "units_2": 32, "units_3": 16, "dropout": 0.5}),
    ("mlp", {"layers": 2, "units": 20}),
    ("cnn", {}),
    ("cnn", {"conv_blocks": 1, "filters_1": 8, "pooling": "none", "dense_layers": 0}),
    (
        "cnn",
        {"conv_blocks": 3, "kernel_size": 4, "stride": 2, "batch_norm": True, "pooling": "avg"},
    ),
    ("cnn", {"conv_blocks": 2, "kernel_size": 5, "padding": "valid", "dense_layers": 2}),
    ("cnn", {"conv_blocks": 8, "filters": 4, "pooling": "max"}),  # 1x1 maps survive pooling
    ("rnn", {}),
    ("rnn", {"cell": "gru", "hidden_size": 16, "rnn_layers": 2, "dropout": 0.2}),
    ("rnn", {"cell": "rnn", "bidirectional": True}),
    ("rnn", {"cell": "lstm", "bidirectional": True, "rnn_layers": 3, "hidden_size": 8}),
]


@pytest.mark.parametrize(("kind", "params"), COMBOS)
def test_builds_and_gives_logits_of_the_right_shape(kind: str, params: dict[str, Any]) -> None:
    out = forward(kind, params)
    assert out.shape == (3, 10)
    assert torch.isfinite(out).all()
    out.sum().backward()  # gradients reach every parameter


@pytest.mark.parametrize("kind", sorted(MODELS))
def test_other_image_shapes_and_flat_inputs(kind: str) -> None:
    net = build_model(kind, {}, (3, 20, 24), 4)
    assert net(torch.rand(2, 3, 20, 24)).shape == (2, 4)
    assert net(torch.rand(2, 3 * 20 * 24)).shape == (2, 4)  # flattened images are reshaped


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("kind", ["mlp", "cnn"])
def test_every_activation(kind: str, activation: str) -> None:
    out = forward(kind, {"activation": activation})
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("init", WEIGHT_INITS)
@pytest.mark.parametrize("kind", sorted(MODELS))
def test_every_weight_init(kind: str, init: str) -> None:
    torch.manual_seed(0)
    net = build_model(kind, {"weight_init": init}, SHAPE, 10)
    assert torch.isfinite(net(torch.rand(3, *SHAPE))).all()
    weights = [p for n, p in net.named_parameters() if "weight" in n and p.dim() >= 2]
    assert weights and all(w.std() > 0 for w in weights)


def test_init_schemes_really_differ() -> None:
    torch.manual_seed(0)
    normal = build_model("mlp", {"weight_init": "normal", "units": 256}, SHAPE, 10)
    assert abs(float(normal.hidden[0].linear.weight.detach().std()) - 0.02) < 0.002
    ortho = build_model(
        "mlp", {"weight_init": "orthogonal", "units": 64, "activation": "tanh"}, SHAPE, 10
    )
    w = ortho.hidden[1].linear.weight  # (64, 64)
    gain = nn.init.calculate_gain("tanh")
    assert torch.allclose(w @ w.T, gain**2 * torch.eye(64), atol=1e-4)


def test_biases_start_at_zero_and_lstm_forget_gate_at_one() -> None:
    net = build_model("rnn", {"cell": "lstm", "hidden_size": 8}, SHAPE, 10)
    bias = net.rnn.bias_ih_l0.detach()
    assert torch.equal(bias[8:16], torch.ones(8))
    assert float(bias[:8].abs().sum() + bias[16:].abs().sum()) == 0.0
    mlp = build_model("mlp", {}, SHAPE, 10)
    assert float(mlp.head.bias.detach().abs().sum()) == 0.0


def test_inactive_layer_params_are_ignored() -> None:
    net = build_model(
        "mlp", {"layers": 2, "units_1": 30, "units_2": 20, "units_3": 5000}, SHAPE, 10
    )
    assert [b.linear.out_features for b in net.hidden] == [30, 20]
    cfg = models.CNNConfig.from_params({"conv_blocks": 1, "filters_1": 9, "filters_2": -1})
    assert cfg.filters == (9,)


def test_same_padding_keeps_ceil_of_size_over_stride() -> None:
    net = build_model(
        "cnn", {"conv_blocks": 2, "kernel_size": 4, "stride": 2, "pooling": "none"}, SHAPE, 10
    )
    assert net.features(torch.rand(1, *SHAPE)).shape[-2:] == (7, 7)  # 28 -> 14 -> 7
    valid = build_model("cnn", {"conv_blocks": 1, "kernel_size": 5, "padding": "valid"}, SHAPE, 10)
    assert valid.features(torch.rand(1, *SHAPE)).shape[-2:] == (12, 12)  # (28-5+1)/2


def test_configs_are_frozen_and_typed() -> None:
    cfg = models.MLPConfig.from_params({"layers": 2.0, "units_1": 10, "units_2": 12})
    assert cfg.units == (10, 12)
    with pytest.raises(AttributeError):
        cfg.dropout = 0.5  # type: ignore[misc]
    assert models.RNNConfig.from_params({"bidirectional": 1}).bidirectional is True


BAD: list[tuple[str, dict[str, Any], str, str]] = [
    ("mlp", {"activation": "foo"}, "activation", "must be one of"),
    ("mlp", {"dropout": 1.5}, "dropout", "[0, 1)"),
    ("mlp", {"dropout": -0.1}, "dropout", "[0, 1)"),
    ("mlp", {"layers": 0}, "layers", "[1, 16]"),
    ("mlp", {"layers": 2.5}, "layers", "integer"),
    ("mlp", {"layers": True}, "layers", "integer"),
    ("mlp", {"layers": 2, "units_2": 0}, "units_2", "[1, 16384]"),
    ("mlp", {"weight_init": "zeros"}, "weight_init", "must be one of"),
    ("cnn", {"padding": "full"}, "padding", "must be one of"),
    ("cnn", {"pooling": "median"}, "pooling", "must be one of"),
    ("cnn", {"kernel_size": 0}, "kernel_size", "[1, 11]"),
    ("cnn", {"stride": 9}, "stride", "[1, 4]"),
    ("cnn", {"batch_norm": "yes"}, "batch_norm", "true or false"),
    ("cnn", {"conv_blocks": 2, "filters_2": 2000}, "filters_2", "[1, 1024]"),
    ("cnn", {"conv_blocks": 3, "kernel_size": 11, "padding": "valid"}, "conv_blocks", "shrinks"),
    ("rnn", {"cell": "transformer"}, "cell", "must be one of"),
    ("rnn", {"hidden_size": 0}, "hidden_size", "[1, 4096]"),
    ("rnn", {"rnn_layers": 9}, "rnn_layers", "[1, 8]"),
    ("rnn", {"dropout": float("nan")}, "dropout", "finite"),
]


@pytest.mark.parametrize(("kind", "params", "name", "rule"), BAD)
def test_bad_values_raise_space_error_naming_the_parameter(
    kind: str, params: dict[str, Any], name: str, rule: str
) -> None:
    with pytest.raises(SpaceError) as err:
        build_model(kind, params, SHAPE, 10)
    msg = str(err.value)
    assert f"parameter '{name}'" in msg and rule in msg
    assert "\n" not in msg


def test_message_quotes_the_value() -> None:
    with pytest.raises(
        SpaceError, match=r"^parameter 'activation': must be one of \[.*\], got 'foo'\.$"
    ):
        build_model("mlp", {"activation": "foo"}, SHAPE, 10)


def test_unknown_model_kind() -> None:
    with pytest.raises(SpaceError, match=r"must be one of \['cnn', 'mlp', 'rnn'\], got 'vit'"):
        build_model("vit", {}, SHAPE, 10)


def test_programming_errors_are_value_errors() -> None:
    with pytest.raises(ValueError, match="num_classes"):
        build_model("mlp", {}, SHAPE, 0)
    with pytest.raises(ValueError, match="input_shape"):
        build_model("cnn", {}, (784,), 10)
