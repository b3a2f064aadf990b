"""Activations with their first two derivatives in closed form, for the jets of every body."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import ClassVar

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


class Activation(nn.Module):
    """An elementwise activation σ with σ' and σ'' in closed form, so that jets propagate
    through it exactly.

    A new activation is a subclass with a ``name`` and a ``closed_form(z) -> (σ, σ', σ'')``;
    it is found by name in the activation registry (``pinnlab.registry.activations``:
    pinnlab's, entry points ``pinnlab.activations``, subclasses in the catalogue folders).
    """

    #: The name a config gives (``net.activation``); empty for an abstract activation.
    name: ClassVar[str] = ""

    @staticmethod
    def closed_form(z: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(σ(z), σ'(z), σ''(z)), elementwise."""
        raise NotImplementedError

    def forward(self, z: Tensor) -> Tensor:
        return self.closed_form(z)[0]

    def forward_jet(self, jet: Jet) -> Jet:
        f0, f1, f2 = self.closed_form(jet.value)
        return jet.elementwise(f0, f1, f2 if jet.order >= 2 else None)

    def extra_repr(self) -> str:
        return self.name


def _closed(name: str, fn: Callable[[Tensor], tuple[Tensor, Tensor, Tensor]]):
    return type(name.capitalize(), (Activation,), {"name": name, "closed_form": staticmethod(fn)})


class Tanh(Activation):
    name = "tanh"
    closed_form = staticmethod(_tanh)

    def forward(self, z: Tensor) -> Tensor:
        return torch.tanh(z)


#: pinnlab's activations by name (the registry adds users').
ACTIVATIONS: dict[str, type[Activation]] = {
    "tanh": Tanh,
    **{
        name: _closed(name, fn)
        for name, fn in (
            ("sin", _sin),
            ("softplus", _softplus),
            ("gelu", _gelu),
            ("silu", _silu),
            ("relu2", _relu2),
        )
    },
}


def activation(spec: str | type[Activation] | Activation) -> Activation:
    """An activation module from a name of pinnlab's (``ACTIVATIONS``), a class (as the
    registry resolves a user's) or an instance."""
    if isinstance(spec, Activation):
        return spec
    if isinstance(spec, type) and issubclass(spec, Activation):
        return spec()
    if spec not in ACTIVATIONS:
        raise unknown_name("activation", spec, ACTIVATIONS)
    return ACTIVATIONS[spec]()
