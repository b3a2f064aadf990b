"""Activations with their first two derivatives in closed form, for the jets of every body."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor, nn

from ..derivatives.jets import Jet
from ..errors import unknown_name


def _tanh(z):
    t = torch.tanh(z)
    d1 = 1 - t * t
    return t, d1, -2 * t * d1


def _sin(z):
    s = torch.sin(z)
    return s, torch.cos(z), -s


def _softplus(z):
    s = torch.sigmoid(z)
    return nn.functional.softplus(z), s, s * (1 - s)


def _gelu(z):
    # gelu(z) = z Φ(z): gelu' = Φ + z φ, gelu'' = φ (2 − z²)
    phi = torch.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)
    cdf = 0.5 * (1 + torch.erf(z / math.sqrt(2)))
    return z * cdf, cdf + z * phi, phi * (2 - z * z)


def _silu(z):
    s = torch.sigmoid(z)
    d1 = s * (1 + z * (1 - s))
    return z * s, d1, s * (1 - s) * (2 + z * (1 - 2 * s))


def _relu2(z):
    r = torch.relu(z)
    return r * r, 2 * r, 2 * (z > 0).to(z.dtype)


#: activation name -> z ↦ (σ(z), σ'(z), σ''(z)).
ACTIVATIONS: dict[str, Callable[[Tensor], tuple[Tensor, Tensor, Tensor]]] = {
    "tanh": _tanh,
    "sin": _sin,
    "softplus": _softplus,
    "gelu": _gelu,
    "silu": _silu,
    "relu2": _relu2,
}


class Activation(nn.Module):
    """An elementwise activation with its first two derivatives in closed form."""

    def __init__(self, name: str):
        super().__init__()
        if name not in ACTIVATIONS:
            raise unknown_name("activation", name, ACTIVATIONS)
        self.name = name
        self._fn = ACTIVATIONS[name]

    def forward(self, z: Tensor) -> Tensor:
        if self.name == "tanh":
            return torch.tanh(z)
        return self._fn(z)[0]

    def forward_jet(self, jet: Jet) -> Jet:
        f0, f1, f2 = self._fn(jet.value)
        return jet.elementwise(f0, f1, f2 if jet.order >= 2 else None)

    def extra_repr(self) -> str:
        return self.name
