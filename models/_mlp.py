"""A fully connected network (multi-layer perceptron) built from a params dict.

Params read (all optional; absent ones take the default):
    layers       int in [1, 16], default 2 — hidden layers.
    units_<i>    int in [1, 16384] for i = 1..layers — width of hidden layer i; a ``units_<i>``
                 beyond ``layers`` is ignored (it is inactive). Default: ``units``, else 128.
    units        int in [1, 16384] — width for every hidden layer without its own ``units_<i>``.
    activation   one of ``ACTIVATIONS``, default relu.
    weight_init  one of ``WEIGHT_INITS``, default kaiming_uniform.
    dropout      float in [0, 1), default 0 — after every hidden activation.
Other keys (optimiser, lr, ...) are ignored: they belong to the training loop.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from torch import Tensor, nn

from hpo.space._values import get_choice, get_float, get_int

from ._layers import ACTIVATIONS, WEIGHT_INITS, DenseBlock, init_weight

__all__ = ["MLP", "MLPConfig", "build_mlp"]

MAX_LAYERS = 16
MAX_UNITS = 16384


@dataclass(frozen=True)
class MLPConfig:
    """Architecture of an :class:`MLP`; ``units`` has one width per hidden layer."""

    units: tuple[int, ...] = (128, 128)
    activation: str = "relu"
    weight_init: str = "kaiming_uniform"
    dropout: float = 0.0

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> MLPConfig:
        """Read and check the MLP's params (see the module docstring); raises ``SpaceError``."""
        layers = get_int(params, "layers", 1, MAX_LAYERS, 2)
        width = get_int(params, "units", 1, MAX_UNITS, 128)
        units = tuple(
            get_int(params, f"units_{i}", 1, MAX_UNITS, width) for i in range(1, layers + 1)
        )
        return cls(
            units=units,
            activation=get_choice(params, "activation", ACTIVATIONS, "relu"),
            weight_init=get_choice(params, "weight_init", WEIGHT_INITS, "kaiming_uniform"),
            dropout=get_float(params, "dropout", 0.0, 1.0, 0.0, high_open=True),
        )


class MLP(nn.Module):
    """Flatten → ``len(units)`` dense blocks → linear head giving class logits."""

    def __init__(self, config: MLPConfig, input_shape: tuple[int, ...], num_classes: int) -> None:
        super().__init__()
        self.config = config
        width = math.prod(input_shape)
        blocks: list[nn.Module] = []
        for units in config.units:
            blocks.append(
                DenseBlock(width, units, config.activation, config.weight_init, config.dropout)
            )
            width = units
        self.hidden = nn.Sequential(*blocks)
        self.head = nn.Linear(width, num_classes)
        init_weight(self.head.weight, config.weight_init, "linear")
        nn.init.zeros_(self.head.bias)

    def forward(self, x: Tensor) -> Tensor:  # (B, C, H, W) or (B, F)
        x = x.flatten(1)  # (B, C*H*W)
        x = self.hidden(x)  # (B, units[-1])
        return self.head(x)  # (B, num_classes)


def build_mlp(params: Mapping[str, Any], input_shape: tuple[int, ...], num_classes: int) -> MLP:
    """Build an :class:`MLP` from ``params`` for inputs of ``input_shape`` (without batch)."""
    return MLP(MLPConfig.from_params(params), input_shape, num_classes)
