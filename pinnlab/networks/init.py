"""Weight initialisations, all drawn from an explicit generator, and setting a linear layer."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from ..errors import unknown_name

#: weight initialisation name -> in-place initialiser (biases start at zero). Glorot & Bengio
#: (2010) keep activation variance for tanh-like units; He et al. (2015) for ReLU-like ones.
INITS: dict[str, Callable[..., Tensor]] = {
    "glorot-normal": nn.init.xavier_normal_,
    "glorot-uniform": nn.init.xavier_uniform_,
    "he-normal": nn.init.kaiming_normal_,
}


def _initialise(layers, init: str, generator) -> None:
    if init not in INITS:
        raise unknown_name("initialisation (net.init)", init, INITS)
    for layer in layers:
        INITS[init](layer.weight, generator=generator)
        nn.init.zeros_(layer.bias)


def _set_linear(layer: nn.Linear, weight: Tensor, bias: Tensor | None) -> None:
    with torch.no_grad():
        layer.weight.copy_(weight)
        if bias is not None:
            layer.bias.copy_(bias)
