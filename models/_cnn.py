"""A convolutional network built from a params dict: conv blocks, then a dense head.

Params read (all optional; absent ones take the default):
    conv_blocks    int in [1, 8], default 2 — conv → [batch norm] → activation → [2x2 pool].
    filters_<i>    int in [1, 1024] for i = 1..conv_blocks — output channels of block i.
                   Default: ``filters``, else 32.
    filters        int in [1, 1024] — channels for every block without its own ``filters_<i>``.
    kernel_size    int in [1, 11], default 3.
    stride         int in [1, 4], default 1.
    padding        "same" (output is ceil(input / stride), padding split as TensorFlow does, the
                   extra pixel at the bottom/right) or "valid" (no padding); default same.
    pooling        "max", "avg" or "none", default max — 2x2, stride 2, ceil mode (so a 1-pixel
                   map stays 1 pixel instead of vanishing).
    batch_norm     bool, default false — the conv then has no bias.
    dense_layers   int in [0, 4], default 1 — hidden layers of the head.
    dense_units_<i>, dense_units
                   int in [1, 16384], default 128 — widths of the head, as ``filters_<i>``.
    activation, weight_init
                   as for the MLP; used by the conv blocks and the head.
    dropout        float in [0, 1), default 0 — after each dense layer of the head, or on the
                   flattened features when the head has no hidden layer.
Raises ``SpaceError`` when a value breaks its rule, or when the blocks shrink the image to
nothing (possible with padding "valid").
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from torch import Tensor, nn

from hpo.exceptions import SpaceError
from hpo.space._values import get_bool, get_choice, get_float, get_int

from ._layers import ACTIVATIONS, WEIGHT_INITS, DenseBlock, init_weight, make_activation

__all__ = ["CNN", "CNNConfig", "build_cnn"]

MAX_BLOCKS = 8
MAX_FILTERS = 1024
MAX_DENSE_LAYERS = 4
MAX_UNITS = 16384


@dataclass(frozen=True)
class CNNConfig:
    """Architecture of a :class:`CNN`; ``filters`` has one entry per conv block."""

    filters: tuple[int, ...] = (32, 32)
    kernel_size: int = 3
    stride: int = 1
    padding: str = "same"
    pooling: str = "max"
    batch_norm: bool = False
    dense_units: tuple[int, ...] = (128,)
    activation: str = "relu"
    weight_init: str = "kaiming_uniform"
    dropout: float = 0.0

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> CNNConfig:
        """Read and check the CNN's params (see the module docstring); raises ``SpaceError``."""
        blocks = get_int(params, "conv_blocks", 1, MAX_BLOCKS, 2)
        f = get_int(params, "filters", 1, MAX_FILTERS, 32)
        filters = tuple(
            get_int(params, f"filters_{i}", 1, MAX_FILTERS, f) for i in range(1, blocks + 1)
        )
        dense = get_int(params, "dense_layers", 0, MAX_DENSE_LAYERS, 1)
        u = get_int(params, "dense_units", 1, MAX_UNITS, 128)
        units = tuple(
            get_int(params, f"dense_units_{i}", 1, MAX_UNITS, u) for i in range(1, dense + 1)
        )
        return cls(
            filters=filters,
            kernel_size=get_int(params, "kernel_size", 1, 11, 3),
            stride=get_int(params, "stride", 1, 4, 1),
            padding=get_choice(params, "padding", ("same", "valid"), "same"),
            pooling=get_choice(params, "pooling", ("max", "avg", "none"), "max"),
            batch_norm=get_bool(params, "batch_norm", False),
            dense_units=units,
            activation=get_choice(params, "activation", ACTIVATIONS, "relu"),
            weight_init=get_choice(params, "weight_init", WEIGHT_INITS, "kaiming_uniform"),
            dropout=get_float(params, "dropout", 0.0, 1.0, 0.0, high_open=True),
        )


def _conv_size(size: int, config: CNNConfig) -> tuple[int, int, int]:
    """(output size, padding before, padding after) of one conv along one spatial axis."""
    k, s = config.kernel_size, config.stride
    if config.padding == "valid":
        return ((size - k) // s + 1 if size >= k else 0), 0, 0
    out = math.ceil(size / s)
    total = max((out - 1) * s + k - size, 0)
    return out, total // 2, total - total // 2


class ConvBlock(nn.Module):
    """[zero pad] → conv → [batch norm] → activation → [2x2 pool]."""

    def __init__(
        self, in_ch: int, out_ch: int, pads: tuple[int, int, int, int], config: CNNConfig
    ) -> None:
        super().__init__()
        left, right, top, bottom = pads
        symmetric = left == right and top == bottom
        # Asymmetric "same" padding (even kernel or stride > 1) needs an explicit pad layer.
        self.pad = nn.Identity() if symmetric else nn.ZeroPad2d(pads)
        self.conv = nn.Conv2d(
            in_ch,
            out_ch,
            config.kernel_size,
            stride=config.stride,
            padding=(top, left) if symmetric else 0,
            bias=not config.batch_norm,
        )
        self.norm = nn.BatchNorm2d(out_ch) if config.batch_norm else nn.Identity()
        self.act = make_activation(config.activation)
        self.pool: nn.Module = nn.Identity()
        if config.pooling == "max":
            self.pool = nn.MaxPool2d(2, ceil_mode=True)
        elif config.pooling == "avg":
            self.pool = nn.AvgPool2d(2, ceil_mode=True)
        init_weight(self.conv.weight, config.weight_init, config.activation)
        if self.conv.bias is not None:
            nn.init.zeros_(self.conv.bias)

    def forward(self, x: Tensor) -> Tensor:  # (B, in_ch, H, W) -> (B, out_ch, H', W')
        return self.pool(self.act(self.norm(self.conv(self.pad(x)))))


class CNN(nn.Module):
    """Conv blocks → flatten → dense head giving class logits."""

    def __init__(self, config: CNNConfig, input_shape: tuple[int, ...], num_classes: int) -> None:
        super().__init__()
        if len(input_shape) == 2:
            input_shape = (1, *input_shape)
        if len(input_shape) != 3:
            raise ValueError(f"cnn needs an image input_shape (C, H, W), got {input_shape}.")
        self.config = config
        self.input_shape = input_shape
        ch, h, w = input_shape
        blocks: list[nn.Module] = []
        for i, out_ch in enumerate(config.filters, start=1):
            h, top, bottom = _conv_size(h, config)
            w, left, right = _conv_size(w, config)
            if h < 1 or w < 1:
                raise SpaceError(
                    f"parameter 'conv_blocks': block {i} of {len(config.filters)} shrinks the "
                    f"{input_shape[1]}x{input_shape[2]} input to nothing (kernel_size="
                    f"{config.kernel_size}, stride={config.stride}, padding={config.padding!r}, "
                    f"pooling={config.pooling!r}); use fewer blocks or padding 'same'."
                )
            blocks.append(ConvBlock(ch, out_ch, (left, right, top, bottom), config))
            if config.pooling != "none":
                h, w = math.ceil(h / 2), math.ceil(w / 2)
            ch = out_ch
        self.features = nn.Sequential(*blocks)
        width = ch * h * w
        head: list[nn.Module] = [nn.Flatten()]
        if not config.dense_units and config.dropout > 0:
            head.append(nn.Dropout(config.dropout))
        for units in config.dense_units:
            head.append(
                DenseBlock(width, units, config.activation, config.weight_init, config.dropout)
            )
            width = units
        out = nn.Linear(width, num_classes)
        init_weight(out.weight, config.weight_init, "linear")
        nn.init.zeros_(out.bias)
        self.head = nn.Sequential(*head, out)

    def forward(self, x: Tensor) -> Tensor:  # (B, C, H, W) or (B, C*H*W)
        x = x.view(-1, *self.input_shape)  # (B, C, H, W)
        x = self.features(x)  # (B, filters[-1], H', W')
        return self.head(x)  # (B, num_classes)


def build_cnn(params: Mapping[str, Any], input_shape: tuple[int, ...], num_classes: int) -> CNN:
    """Build a :class:`CNN` from ``params`` for images of ``input_shape`` (C, H, W)."""
    return CNN(CNNConfig.from_params(params), input_shape, num_classes)
