"""Composition: modules in sequence (Chain) and a network plus a separable part (Additive)."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ..derivatives.jets import Jet, MixedBasis, column, coordinatewise_jet, propagate
from .activations import Activation
from .activations import activation as activation_module
from .base import Network, has_readout, periodic_columns
from .inputs import InputMap, _mapped


class Chain(nn.Sequential, Network):
    """Modules applied in order; jets are propagated through each."""

    def forward_jet(self, jet: Jet) -> Jet:
        for module in self:
            jet = propagate(module, jet)
        return jet

    def readout(self, x: Tensor) -> Tensor:
        """The last module's readout (see ``has_readout``)."""
        for module in self[:-1]:
            x = module(x)
        return self[-1].readout(x)

    def has_readout(self) -> bool:
        return has_readout(self[-1])

    def periodic_columns(self) -> frozenset[int]:
        """Periodic where its first module (an embedding) makes it so."""
        return periodic_columns(self[0])

    def set_readout(self, weight: Tensor, bias: Tensor) -> None:
        self[-1].set_readout(weight, bias)

    def zero_output_(self) -> Chain:
        """The last module's output set to zero: u ≡ 0."""
        self[-1].zero_output_()
        return self


class Additive(Network):
    """u(x) = N(x) + Σᵢ hᵢ(xᵢ): a network plus one small network per input coordinate.

    hᵢ(t) = Σⱼ cᵢⱼ σ(aᵢⱼ t + bᵢⱼ) has one hidden layer of K units (a neural additive model,
    Agarwal et al., NeurIPS 2021). A network N(x) = g(Wx + b) of width w has a Hessian of rank
    ≤ w, so it cannot represent Σᵢ sin(π xᵢ/2) (Hessian of rank d) once d ≫ w — the best it can
    do on [0, 1]^1000 is about the best affine function (centred error 0.20). The additive part
    carries the separable part of u at cost n·d·K, and its Hessian is diagonal: the jet along
    directions V is J_k = Σᵢ hᵢ'(xᵢ) V_kᵢ, S = Σᵢ hᵢ''(xᵢ) Σ_k w_k V_kᵢ² — no reduction
    needed. N keeps its first-layer reduction; the two jets meet at the output.
    """

    def __init__(
        self,
        net: nn.Module,
        in_dim: int,
        out_dim: int,
        units: int,
        activation: str | type[Activation] = "tanh",
        *,
        generator: torch.Generator,
        input_map: InputMap | None = None,
    ):
        super().__init__()
        self.net = net
        self.input_map = input_map
        self.act = activation_module(activation)
        new = dict(generator=generator, device=generator.device)
        # Unit slopes and offsets spread over [−1, 1] (the mapped inputs' range); outputs of
        # size 1/√(d K) so that the sum over d coordinates starts at the scale of one unit.
        # (Training c at unit scale behind a fixed factor 1/√(d K) instead slows the additive
        # part by that factor under Adam: on poisson-sine at d = 1,000 it learned nothing in
        # 1,000 steps.)
        self.a = nn.Parameter(torch.randn(in_dim, units, **new))
        self.b = nn.Parameter(2 * torch.rand(in_dim, units, **new) - 1)
        self.c = nn.Parameter(
            torch.randn(in_dim, units, out_dim, **new) / math.sqrt(in_dim * units)
        )

    def separable(self, x: Tensor) -> Tensor:
        """Σᵢ hᵢ(xᵢ): (n, out)."""
        t, _ = _mapped(self.input_map, x)
        z = t.unsqueeze(2) * self.a + self.b
        return torch.einsum("ndk,dko->no", self.act(z), self.c)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x) + self.separable(x)

    def zero_output_(self) -> Additive:
        """N's output layer and the output coefficients c of every hᵢ set to zero: u ≡ 0."""
        self.net.zero_output_()
        nn.init.zeros_(self.c)
        return self

    def _separable_jet(self, jet: Jet) -> Jet:
        t, dt = _mapped(self.input_map, jet.value)
        f0, f1, f2 = self.act.closed_form(t.unsqueeze(2) * self.a + self.b)
        c = self.c
        value = torch.einsum("ndk,dko->no", f0, c)
        h1 = torch.einsum("ndk,dko->ndo", f1 * self.a, c) * column(dt)  # hᵢ'(xᵢ)

        def second(q: Tensor | None) -> Tensor:
            scale = column(dt) ** 2 if q is None else q.unsqueeze(2) * column(dt) ** 2
            return torch.einsum("ndk,dko->no", f2 * scale * self.a.square(), c)

        return coordinatewise_jet(jet, value, h1, second)

    def forward_jet(self, jet: Jet) -> Jet:
        if jet.basis is not None:
            raise MixedBasis  # the input arrived reduced: the coordinates are lost
        return propagate(self.net, jet) + self._separable_jet(jet)
