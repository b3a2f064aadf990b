"""Inverse problems of diffusion: an unknown conductivity field and an unknown heat source,
each from measured values of u, with their exact solutions.

Both are test problems written for pinnlab (the coefficient-identification setting of
Raissi, Perdikaris & Karniadakis 2019, with a field for the coefficient as in the
inverse-problem examples of DeepXDE, Lu et al., SIAM Rev. 63 (2021)). Their data are drawn
from the exact solution at uniform points with a seed, with Gaussian noise of ``noise`` times
the standard deviation of the clean values (0.01 is "1 % noise").
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

import pinnlab as pl
from pinnlab.observations import check_synthetic


@dataclass(frozen=True)
class _Measured(pl.Problem):
    """Shared: ``n_data`` noisy values of the exact solution at uniform points of the domain."""

    n_data: int = 200
    noise: float = 0.0
    data_seed: int = 0

    def check(self):
        check_synthetic(self)

    def observations(self, domain: pl.Domain) -> pl.Observations:
        """u at ``n_data`` uniform points of ``domain``, with the stated noise."""
        return pl.Observations.sample(
            domain, self.exact, self.n_data, noise=self.noise, seed=self.data_seed
        )


def _zero(x: Tensor) -> Tensor:
    return torch.zeros_like(x[:, 0])


@dataclass(frozen=True)
class DiffusionField(_Measured):
    """−∇·(κ(x)∇u) = f on [0, 1]², u = 0 on the boundary, with the conductivity κ(x) > 0
    unknown, from u at ``n_data`` points.

    u = sin(πx) sin(πy) and κ = 1 + ½ exp(−4|x − c|²), c = (½, ½) (a smooth inclusion of
    higher conductivity), so f = −κΔu − ∇κ·∇u = 2π²κu − ∇κ·∇u. Identifiability: with u
    known, κΔu + ∇κ·∇u = −f is a transport equation for κ along ∇u, whose lines all start
    at the maximum of u (where ∇u = 0 and κ = f/(2π²u)); so u alone determines κ. The
    residual reads κ and ∇κ from ``d.field("kappa")``; κ = softplus(c + N(x)) starts at 1.
    """

    id = "diffusion-field"
    dims = "d = 2"
    extra_metric_names = ("kappa_error",)
    dim: int = 2

    def check(self):
        super().check()
        self.require(self.dim == 2, f"dim must be 2, got {self.dim}")

    @staticmethod
    def conductivity(x: Tensor) -> Tensor:
        return 1 + 0.5 * torch.exp(-4 * (x - 0.5).square().sum(dim=1))

    def exact(self, x: Tensor) -> Tensor:
        return torch.sin(math.pi * x[:, 0]) * torch.sin(math.pi * x[:, 1])

    def source(self, x: Tensor) -> Tensor:
        """f = 2π²κu − ∇κ·∇u, ∇κ = −8(κ − 1)(x − c)."""
        kappa = self.conductivity(x)
        s, c = torch.sin(math.pi * x), torch.cos(math.pi * x)
        grad_u = math.pi * torch.stack([c[:, 0] * s[:, 1], s[:, 0] * c[:, 1]], dim=1)
        grad_k = -8 * (kappa - 1)[:, None] * (x - 0.5)
        return 2 * math.pi**2 * kappa * self.exact(x) - (grad_k * grad_u).sum(dim=1)

    def strong_form(self) -> pl.StrongForm:
        def residual(d):
            kappa = d.field("kappa")
            flux = (kappa.grad * d.grad).sum(dim=1)
            return -kappa.u * d.laplacian - flux - self.source(d.x)

        box = pl.Box(2)
        return pl.StrongForm(
            domain=box,
            residual=residual,
            conditions={"boundary": pl.Dirichlet(_zero, lift=0.0)},
            unknowns=[pl.UnknownField("kappa", positive=True, exact=self.conductivity)],
            observations=[self.observations(box)],
        )


@dataclass(frozen=True)
class HeatSource(_Measured):
    """uₜ = Δu + s(x) on [0, 1]^d × [0, ½] with the heat source s unknown, from interior
    temperatures u at ``n_data`` points of space-time; u = exact on the lateral boundary and
    at t = 0.

    u = e^{−π²t} Σᵢ sin(π xᵢ) + ½ Σᵢ sin(2π xᵢ), so s(x) = uₜ − Δu = 2π² Σᵢ sin(2π xᵢ): a
    source and a sink in each coordinate, whose steady response ½ Σᵢ sin(2π xᵢ) is half the
    size of the initial transient (a weaker source would hide in u below the network's
    error: s is u's second derivative). u determines s = uₜ − Δu pointwise; the data (with
    the boundary and initial values) determine u. s = 10·N(x) starts at 0 (the scale of the
    source: with s = N(x), N's weights had to grow to about 20 at Adam's pace, and the run
    settled on a saturated step, 39 % off).
    """

    id = "heat-source"
    dims = "d ≥ 1"
    extra_metric_names = ("source_error",)
    dim: int = 1
    n_data: int = 500

    @staticmethod
    def heat_source(x: Tensor) -> Tensor:
        return 2 * math.pi**2 * torch.sin(2 * math.pi * x).sum(dim=1)

    def exact(self, tx: Tensor) -> Tensor:
        t, x = tx[:, 0], tx[:, 1:]
        transient = torch.exp(-(math.pi**2) * t) * torch.sin(math.pi * x).sum(dim=1)
        return transient + 0.5 * torch.sin(2 * math.pi * x).sum(dim=1)

    def strong_form(self) -> pl.StrongForm:
        domain = pl.SpaceTime(pl.Box(self.dim), 0.0, 0.5)
        return pl.StrongForm(
            domain=domain,
            residual=lambda d: d.dt - d.laplacian - d.unknown("source"),
            conditions={
                "boundary": pl.Dirichlet(self.exact),
                "initial": pl.Dirichlet(self.exact, on="initial"),
            },
            unknowns=[pl.UnknownField("source", init=0.0, scale=10.0, exact=self.heat_source)],
            observations=[self.observations(domain)],
        )
