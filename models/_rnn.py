"""A recurrent network that reads an image as a sequence of rows, built from a params dict.

A (C, H, W) image is read as H time steps of C*W features (MNIST: 28 rows of 28 pixels). The
final hidden state of the last layer (both directions when bidirectional) feeds a linear head.

Params read (all optional; absent ones take the default):
    cell           "rnn" (tanh), "lstm" or "gru", default lstm.
    hidden_size    int in [1, 4096], default 128.
    rnn_layers     int in [1, 8], default 1 — stacked recurrent layers.
    bidirectional  bool, default false.
    weight_init    one of ``WEIGHT_INITS``, default orthogonal — applied to each gate's input and
                   recurrent matrix separately, and to the head.
    dropout        float in [0, 1), default 0 — between stacked layers and before the head.
The LSTM's forget-gate bias starts at 1 (Jozefowicz et al. 2015) so early gradients flow;
every other bias starts at 0.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from torch import Tensor, nn

from hpo.space._values import get_bool, get_choice, get_float, get_int

from ._layers import WEIGHT_INITS, init_weight, zero_bias

__all__ = ["RNN", "RNNConfig", "build_rnn"]

CELLS: tuple[str, ...] = ("rnn", "lstm", "gru")
_GATES = {"rnn": 1, "lstm": 4, "gru": 3}


@dataclass(frozen=True)
class RNNConfig:
    """Architecture of an :class:`RNN`."""

    cell: str = "lstm"
    hidden_size: int = 128
    rnn_layers: int = 1
    bidirectional: bool = False
    weight_init: str = "orthogonal"
    dropout: float = 0.0

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> RNNConfig:
        """Read and check the RNN's params (see the module docstring); raises ``SpaceError``."""
        return cls(
            cell=get_choice(params, "cell", CELLS, "lstm"),
            hidden_size=get_int(params, "hidden_size", 1, 4096, 128),
            rnn_layers=get_int(params, "rnn_layers", 1, 8, 1),
            bidirectional=get_bool(params, "bidirectional", False),
            weight_init=get_choice(params, "weight_init", WEIGHT_INITS, "orthogonal"),
            dropout=get_float(params, "dropout", 0.0, 1.0, 0.0, high_open=True),
        )


class RNN(nn.Module):
    """Rows of the image → stacked rnn/lstm/gru → final hidden state → linear head."""

    def __init__(self, config: RNNConfig, input_shape: tuple[int, ...], num_classes: int) -> None:
        super().__init__()
        if len(input_shape) == 2:
            input_shape = (1, *input_shape)
        if len(input_shape) != 3:
            raise ValueError(f"rnn needs an image input_shape (C, H, W), got {input_shape}.")
        self.config = config
        self.input_shape = input_shape
        ch, _, w = input_shape
        kind = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[config.cell]
        self.rnn = kind(
            ch * w,
            config.hidden_size,
            num_layers=config.rnn_layers,
            batch_first=True,
            bidirectional=config.bidirectional,
            # torch warns when dropout is set on a single layer: it would do nothing.
            dropout=config.dropout if config.rnn_layers > 1 else 0.0,
        )
        self.directions = 2 if config.bidirectional else 1
        self.drop = nn.Dropout(config.dropout) if config.dropout > 0 else nn.Identity()
        self.head = nn.Linear(self.directions * config.hidden_size, num_classes)
        self._init_weights()

    def _init_weights(self) -> None:
        c = self.config
        zero_bias(self.rnn)
        for name, p in self.rnn.named_parameters():
            if name.startswith("weight"):
                for gate in p.data.chunk(_GATES[c.cell], dim=0):
                    init_weight(gate, c.weight_init, "tanh")
            elif c.cell == "lstm" and name.startswith("bias_ih"):
                p.data[c.hidden_size : 2 * c.hidden_size].fill_(1.0)  # gates: input, forget, ...
        init_weight(self.head.weight, c.weight_init, "linear")
        nn.init.zeros_(self.head.bias)

    def forward(self, x: Tensor) -> Tensor:  # (B, C, H, W) or (B, C*H*W)
        ch, h, w = self.input_shape
        x = x.reshape(-1, ch, h, w).transpose(1, 2).reshape(-1, h, ch * w)  # (B, T=H, C*W)
        _, state = self.rnn(x)  # h_n: (layers*D, B, hidden)
        h_n = state[0] if isinstance(state, tuple) else state  # an LSTM also returns c_n
        last = h_n[-self.directions :].transpose(0, 1)  # (B, D, hidden)
        last = last.reshape(last.shape[0], -1)  # (B, D*hidden)
        return self.head(self.drop(last))  # (B, num_classes)


def build_rnn(params: Mapping[str, Any], input_shape: tuple[int, ...], num_classes: int) -> RNN:
    """Build an :class:`RNN` from ``params`` for images of ``input_shape`` (C, H, W)."""
    return RNN(RNNConfig.from_params(params), input_shape, num_classes)
