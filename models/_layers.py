"""Pieces every builder shares: activations, weight initialisation, a dense block.

Rules:
    * ``ACTIVATIONS`` and ``WEIGHT_INITS`` are the only accepted names; the builders check them
      through :mod:`.params` so a bad name raises ``SpaceError``.
    * :func:`init_weight` fills a weight in place and scales it for the nonlinearity that follows
      (``torch.nn.init.calculate_gain``); biases are always set to zero by the builders.
    * ``normal`` is N(0, 0.02²), the small fixed-scale init of GPT-2 / nanoGPT: it ignores fan-in,
      so it is the scheme a search should learn to avoid for deep, wide nets.
"""

from __future__ import annotations

from torch import Tensor, nn

__all__ = [
    "ACTIVATIONS",
    "WEIGHT_INITS",
    "DenseBlock",
    "init_weight",
    "make_activation",
    "zero_bias",
]

ACTIVATIONS: tuple[str, ...] = (
    "relu",
    "tanh",
    "sigmoid",
    "softplus",
    "leaky_relu",
    "elu",
    "gelu",
)
WEIGHT_INITS: tuple[str, ...] = (
    "xavier_uniform",
    "xavier_normal",
    "kaiming_uniform",
    "kaiming_normal",
    "orthogonal",
    "normal",
)

_LEAKY_SLOPE = 0.01
_NORMAL_STD = 0.02
# torch.nn.init knows gains for these names only; softplus, elu and gelu behave like relu for
# positive inputs, so they borrow its gain (as Keras/He et al. practice does).
_GAIN_NAME = {
    "relu": "relu",
    "tanh": "tanh",
    "sigmoid": "sigmoid",
    "softplus": "relu",
    "leaky_relu": "leaky_relu",
    "elu": "relu",
    "gelu": "relu",
    "linear": "linear",
}


def make_activation(name: str) -> nn.Module:
    """A fresh activation module for one of ``ACTIVATIONS``."""
    if name == "relu":
        return nn.ReLU()
    if name == "tanh":
        return nn.Tanh()
    if name == "sigmoid":
        return nn.Sigmoid()
    if name == "softplus":
        return nn.Softplus()
    if name == "leaky_relu":
        return nn.LeakyReLU(_LEAKY_SLOPE)
    if name == "elu":
        return nn.ELU()
    if name == "gelu":
        return nn.GELU()
    raise ValueError(f"activation must be one of {list(ACTIVATIONS)}, got {name!r}.")


def init_weight(weight: Tensor, scheme: str, nonlinearity: str) -> None:
    """Fill ``weight`` in place with ``scheme``, scaled for ``nonlinearity`` (or ``"linear"``).

    Works on any weight of 2 or more dimensions (linear, conv, one gate of a recurrent layer).
    """
    gain_name = _GAIN_NAME[nonlinearity]
    param = _LEAKY_SLOPE if gain_name == "leaky_relu" else None
    gain = nn.init.calculate_gain(gain_name, param)  # type: ignore[arg-type]
    if scheme == "xavier_uniform":
        nn.init.xavier_uniform_(weight, gain=gain)
    elif scheme == "xavier_normal":
        nn.init.xavier_normal_(weight, gain=gain)
    elif scheme in ("kaiming_uniform", "kaiming_normal"):
        fn = nn.init.kaiming_uniform_ if scheme == "kaiming_uniform" else nn.init.kaiming_normal_
        fn(weight, a=param or 0.0, nonlinearity=gain_name)  # type: ignore[arg-type]
    elif scheme == "orthogonal":
        nn.init.orthogonal_(weight, gain=gain)
    elif scheme == "normal":
        nn.init.normal_(weight, mean=0.0, std=_NORMAL_STD)
    else:
        raise ValueError(f"weight_init must be one of {list(WEIGHT_INITS)}, got {scheme!r}.")


def zero_bias(module: nn.Module) -> None:
    """Set every bias of ``module`` (and its children) to zero."""
    for name, p in module.named_parameters():
        if name.rsplit(".", 1)[-1].startswith("bias"):  # bias, bias_ih_l0, ...
            nn.init.zeros_(p)


class DenseBlock(nn.Module):
    """Linear → activation → dropout, initialised with ``weight_init`` for ``activation``."""

    def __init__(
        self, in_features: int, out_features: int, activation: str, weight_init: str, dropout: float
    ) -> None:
        super().__init__()
        self.linear = nn.Linear(in_features, out_features)
        self.act = make_activation(activation)
        self.drop = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        init_weight(self.linear.weight, weight_init, activation)
        nn.init.zeros_(self.linear.bias)

    def forward(self, x: Tensor) -> Tensor:  # (B, in_features) -> (B, out_features)
        return self.drop(self.act(self.linear(x)))
