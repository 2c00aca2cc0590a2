"""Searchable model builders: ``mlp``, ``cnn`` and ``rnn``, installed as ``hpo.models``.

Each builder turns a trial's params (plus the data's input shape and class count) into a
``torch.nn.Module`` that maps a batch of inputs to class logits ``(B, num_classes)``:

    model = hpo.models.build_model("cnn", trial.params, input_shape=(1, 28, 28), num_classes=10)

Rules shared by every builder:
    * Params a builder does not know (``lr``, ``optimizer``, ...) are ignored; they belong to the
      training loop. Absent params take documented defaults, so an inactive conditional
      parameter (``units_3`` when ``layers`` is 2) is simply not read.
    * A value that breaks its rule raises :class:`hpo.exceptions.SpaceError` with one sentence
      naming the parameter, the rule and the value.
    * Each builder has a frozen ``<Name>Config`` dataclass (``MLPConfig.from_params(params)``)
      that documents its knobs; see the builder modules for their names, ranges and defaults.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from torch import nn

from hpo.exceptions import SpaceError

from ._cnn import CNN, CNNConfig, build_cnn
from ._layers import ACTIVATIONS, WEIGHT_INITS
from ._mlp import MLP, MLPConfig, build_mlp
from ._rnn import CELLS, RNN, RNNConfig, build_rnn

__all__ = [
    "ACTIVATIONS",
    "CELLS",
    "CNN",
    "MLP",
    "MODELS",
    "RNN",
    "WEIGHT_INITS",
    "Builder",
    "CNNConfig",
    "MLPConfig",
    "RNNConfig",
    "build_cnn",
    "build_mlp",
    "build_model",
    "build_rnn",
]

Builder = Callable[[Mapping[str, Any], tuple[int, ...], int], nn.Module]
"""``builder(params, input_shape, num_classes) -> nn.Module``; input_shape excludes the batch."""

MODELS: dict[str, Builder] = {"mlp": build_mlp, "cnn": build_cnn, "rnn": build_rnn}


def build_model(
    kind: str, params: Mapping[str, Any], input_shape: tuple[int, ...], num_classes: int
) -> nn.Module:
    """Build the model ``kind`` (a key of ``MODELS``) from ``params``.

    Args:
        kind: ``"mlp"``, ``"cnn"`` or ``"rnn"``.
        params: A trial's params; unknown keys are ignored.
        input_shape: One input without the batch dimension, e.g. ``(1, 28, 28)``.
        num_classes: Number of output logits, at least 1.

    Raises:
        SpaceError: ``kind`` is unknown, or a param breaks its rule (the message names it).
        ValueError: ``input_shape`` or ``num_classes`` is unusable (a programming error).
    """
    builder = MODELS.get(kind)
    if builder is None:
        raise SpaceError(f"model: must be one of {sorted(MODELS)}, got {kind!r}.")
    shape = tuple(input_shape)
    if not shape or any(int(d) < 1 for d in shape):
        raise ValueError(
            f"input_shape must be positive sizes without the batch, got {input_shape}."
        )
    if num_classes < 1:
        raise ValueError(f"num_classes must be at least 1, got {num_classes}.")
    return builder(params, shape, num_classes)
