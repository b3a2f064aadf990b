"""Output transforms around a network: hard Dirichlet conditions and a fixed affine rescaling."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from ..derivatives.jets import Jet, propagate
from ..domains import Domain
from .base import Network, has_readout, periodic_columns


class DirichletTransform(Network):
    """u(x) = g(x) + φ(x) N(x): imposes u = g exactly where φ = 0 (the domain's boundary).

    φ is the domain's ``distance`` function (smooth, vanishing on the boundary), g the boundary
    data extended inside (``lift``: a function, or a constant such as 0) (Lagaris et al., IEEE
    TNN 9 (1998); Sukumar & Srivastava, CMAME 389 (2022)). Jets go through N reduced where it
    admits the first-layer reduction, φ and g along the input axes, and meet at the output by
    the product rule Δ(φN) = NΔφ + 2∇φ·∇N + φΔN.

    ``shift`` (a buffer, 0 unless a solver sets it) is a constant added to N: u = g + φ(c + N).
    In high dimension u/φ can be far from the unit scale N starts at: ≈ 10² on poisson-ball at
    d = 10,000, which Adam would reach one learning rate per step.
    """

    def __init__(self, net: nn.Module, domain: Domain, lift: Callable[[Tensor], Tensor] | float):
        super().__init__()
        self.net = net
        self.domain = domain
        self.lift = lift
        self.register_buffer("shift", torch.zeros(1))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # Solutions written before the shift existed had none: it was 0.
        state_dict.setdefault(prefix + "shift", torch.zeros_like(self.shift))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def _g(self, x: Tensor) -> Tensor:
        g = self.lift(x)
        return g.unsqueeze(1) if g.dim() == 1 else g

    def forward(self, x: Tensor) -> Tensor:
        u = self.domain.distance(x).unsqueeze(1) * (self.net(x) + self.shift)
        return u + (self._g(x) if callable(self.lift) else self.lift)

    def forward_jet(self, jet: Jet) -> Jet:
        u = self.domain.distance_jet(jet) * (propagate(self.net, jet) + self.shift)
        return u + (propagate(self._g, jet) if callable(self.lift) else self.lift)

    # No readout: u = g + φ(c + W ψ + b) is not W' ψ' + b' for features ψ' of N alone.

    def periodic_columns(self) -> frozenset[int]:
        return periodic_columns(self.net)

    def zero_output_(self) -> DirichletTransform:
        """N's output set to zero: u = g + φ c (the lift where ``shift`` c is 0)."""
        self.net.zero_output_()
        return self


class OutputAffine(Network):
    """u(x) = shift + scale ⊙ N(x), with fixed per-output shift and scale (buffers).

    Lets N work at unit scale when the solution does not: Σᵢ sin(π xᵢ/2) on [0, 1]^100 has
    mean ≈ 64 and standard deviation ≈ 3, which Adam would otherwise spend thousands of steps
    reaching with an output bias that moves about one learning rate per step.
    """

    def __init__(self, net: nn.Module, shift: Tensor, scale: Tensor):
        super().__init__()
        self.net = net
        self.register_buffer("shift", shift)
        self.register_buffer("scale", scale)

    def forward(self, x: Tensor) -> Tensor:
        return self.shift + self.scale * self.net(x)

    def forward_jet(self, jet: Jet) -> Jet:
        return propagate(self.net, jet) * self.scale + self.shift

    def has_readout(self) -> bool:
        return has_readout(self.net)

    def readout(self, x: Tensor) -> Tensor:
        """The wrapped network's readout: u = shift + scale (W φ + b) is linear in it too."""
        return self.net.readout(x)

    def set_readout(self, weight: Tensor, bias: Tensor) -> None:
        """u = weight · readout(x) + bias: the wrapped network's (W, b) with shift and scale
        divided out."""
        scale = self.scale.reshape(-1, 1)
        self.net.set_readout(weight / scale, (bias - self.shift) / self.scale)

    def periodic_columns(self) -> frozenset[int]:
        return periodic_columns(self.net)

    def zero_output_(self) -> OutputAffine:
        """N's output set to zero: u = shift."""
        self.net.zero_output_()
        return self
