"""An example user problem file: load it with ``pinnlab --problems docs/examples ...``."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

import pinnlab as pl


@dataclass(frozen=True)
class PoissonProduct(pl.Problem):
    """−Δu = d k²π² u on (0, 1)^d, u = Πᵢ sin(kπ xᵢ), u = 0 on the boundary.

    A manufactured solution: u is a Dirichlet eigenfunction of −Δ on the unit cube with
    eigenvalue d k²π². The boundary data are zero, so the zero function is a lift and
    ``net.hard_bc=true`` can impose them exactly.
    """

    id = "poisson-product"
    dims = "d ≥ 1"
    dim: int = 2
    k: int = 1

    def check(self) -> None:
        self.require(self.k >= 1, f"k must be ≥ 1, got {self.k}")

    def exact(self, x: Tensor) -> Tensor:
        return torch.sin(self.k * math.pi * x).prod(dim=1)

    def source(self, x: Tensor) -> Tensor:
        return self.dim * (self.k * math.pi) ** 2 * self.exact(x)

    def strong_form(self) -> pl.StrongForm:
        def zero(x: Tensor) -> Tensor:
            return torch.zeros_like(x[:, 0])

        return pl.StrongForm(
            domain=pl.Box(self.dim),
            residual=lambda d: -d.laplacian - self.source(d.x),
            conditions={"boundary": pl.Dirichlet(zero, lift=zero)},
        )
