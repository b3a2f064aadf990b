"""Classical benchmarks of physics-informed networks with closed-form solutions: the 1-d wave
equation, the 2-d Helmholtz equation and Kovasznay's Navier–Stokes flow.

Their residuals are written with ``d.partial`` (second derivatives in time, in each space
axis, of each output), and every exact solution is checked against its own equation and
conditions in float64 by the tests.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor

import pinnlab as pl


@dataclass(frozen=True)
class Wave1D(pl.Problem):
    """u_tt = 4 u_xx on x ∈ [0, 1], t ∈ [0, 1], u = sin(πx) cos(2πt) + ½ sin(4πx) cos(8πt).

    Wang, Yu & Perdikaris, "When and why PINNs fail to train: a neural tangent kernel
    perspective", J. Comput. Phys. 449 (2022), the 1-d wave equation (c = 2): u = 0 at x = 0
    and x = 1, u(0, x) = sin(πx) + ½ sin(4πx) and the initial velocity u_t(0, x) = 0 (a general
    condition on the initial slice). The two modes have time scales a factor 4 apart and the
    residual is of size (8π)²/2 ≈ 316 against data of size 1: the stiffness the paper
    analyses.
    """

    id = "wave-1d"
    dims = "d = 1"
    dim: int = 1

    #: The wave speed c of u_tt = c² u_xx.
    SPEED: ClassVar[float] = 2.0

    def check(self):
        self.require(self.dim == 1, f"dim must be 1, got {self.dim}")

    def exact(self, tx: Tensor) -> Tensor:
        """u at points (n, 2) = (t, x)."""
        t, x = tx[:, 0], tx[:, 1]
        c = self.SPEED
        return torch.sin(math.pi * x) * torch.cos(c * math.pi * t) + 0.5 * torch.sin(
            4 * math.pi * x
        ) * torch.cos(4 * c * math.pi * t)

    def strong_form(self) -> pl.StrongForm:
        c2 = self.SPEED**2
        return pl.StrongForm(
            domain=pl.SpaceTime(pl.Box(1, 0.0, 1.0), 0.0, 1.0),
            residual=lambda d: d.partial("t", "t") - c2 * d.partial(0, 0),
            conditions={
                # The data are 0 at x = 0 and x = 1: a zero lift (net.hard_bc: u = φ·N).
                "boundary": pl.Dirichlet(self.exact, lift=0.0),
                "initial": pl.Dirichlet(self.exact, on="initial"),
                "velocity": pl.Condition(lambda d: d.partial("t"), on="initial"),
            },
        )


@dataclass(frozen=True)
class Helmholtz2D(pl.Problem):
    """−Δu − k²u = f on [−1, 1]², u = sin(a₁πx) sin(a₂πy), Dirichlet data (0 for integer aᵢ).

    Wang, Teng & Perdikaris, "Understanding and mitigating gradient flow pathologies in
    physics-informed neural networks", SIAM J. Sci. Comput. 43 (2021), the Helmholtz example
    (a₁ = 1, a₂ = 4, k = 1): f = ((a₁² + a₂²)π² − k²) u. The residual is of size ≈ 17π² ≈ 168
    against data of size 1, the imbalance of gradients the paper studies.
    """

    id = "helmholtz-2d"
    dims = "d = 2"
    dim: int = 2
    a1: float = 1.0
    a2: float = 4.0
    k: float = 1.0

    def check(self):
        self.require(self.dim == 2, f"dim must be 2, got {self.dim}")
        for name in ("a1", "a2", "k"):
            value = getattr(self, name)
            self.require(
                isinstance(value, int | float) and math.isfinite(value),
                f"{name} must be a finite number, got {value!r}",
            )

    def exact(self, x: Tensor) -> Tensor:
        return torch.sin(self.a1 * math.pi * x[:, 0]) * torch.sin(self.a2 * math.pi * x[:, 1])

    def source(self, x: Tensor) -> Tensor:
        """f = −Δu − k²u = ((a₁² + a₂²)π² − k²) u."""
        return ((self.a1**2 + self.a2**2) * math.pi**2 - self.k**2) * self.exact(x)

    def _lift(self):
        """0 where the data vanish (integer a₁ and a₂), else the box's blend of the data."""
        if float(self.a1).is_integer() and float(self.a2).is_integer():
            return 0.0
        return pl.Box(2, -1.0, 1.0).extension(self.exact)

    def strong_form(self) -> pl.StrongForm:
        k2 = self.k**2

        def residual(d):
            return -(d.partial(0, 0) + d.partial(1, 1)) - k2 * d.u - self.source(d.x)

        return pl.StrongForm(
            domain=pl.Box(2, -1.0, 1.0),
            residual=residual,
            conditions={"boundary": pl.Dirichlet(self.exact, lift=self._lift())},
        )


#: The rectangle [−0.5, 1] × [−0.5, 1.5] of Kovasznay's flow, counter-clockwise from the
#: lower left: edge 0 is y = −0.5, edge 1 the outflow x = 1, edge 2 y = 1.5, edge 3 the
#: inflow x = −0.5.
KOVASZNAY_RECTANGLE = ((-0.5, -0.5), (1.0, -0.5), (1.0, 1.5), (-0.5, 1.5))


@dataclass(frozen=True)
class Kovasznay(pl.Problem):
    """Steady incompressible Navier–Stokes flow behind a grid at Re = 20 (Kovasznay's solution):

        u ∂ₓu + v ∂ᵧu + ∂ₓp − (∂ₓ²u + ∂ᵧ²u)/Re = 0,
        u ∂ₓv + v ∂ᵧv + ∂ᵧp − (∂ₓ²v + ∂ᵧ²v)/Re = 0,   ∂ₓu + ∂ᵧv = 0

    on [−0.5, 1] × [−0.5, 1.5], with λ = Re/2 − √(Re²/4 + 4π²) and

        u = 1 − e^{λx} cos 2πy,  v = λ/(2π) e^{λx} sin 2πy,  p = ½(1 − e^{2λx}).

    Kovasznay, "Laminar flow behind a two-dimensional grid", Proc. Cambridge Philos. Soc. 44
    (1948); the PINN setting of DeepXDE's example. Three outputs (u, v, p) and three named
    residuals (momentum_x, momentum_y, continuity); u and v are given on the whole boundary,
    each by a condition of its own output, and p on the outflow edge x = 1 (which fixes the
    pressure's constant). pl.Box has one interval for every axis, so the rectangle is a
    pl.Polygon. ``rel_l2_velocity`` (the error of (u, v) together, the literature's figure)
    is what a run tracks; ``rel_l2_u``, ``rel_l2_v`` and ``rel_l2_p`` are reported beside it.
    """

    id = "kovasznay"
    dims = "d = 2"
    extra_metric_names: ClassVar[tuple[str, ...]] = (
        "rel_l2_velocity",
        "rel_l2_u",
        "rel_l2_v",
        "rel_l2_p",
    )
    dim: int = 2
    re: float = 20.0

    def check(self):
        self.require(self.dim == 2, f"dim must be 2, got {self.dim}")
        self.require(
            isinstance(self.re, int | float) and math.isfinite(self.re) and self.re > 0,
            f"re must be a finite number > 0, got {self.re!r}",
        )

    @property
    def lam(self) -> float:
        """λ = Re/2 − √(Re²/4 + 4π²)."""
        return self.re / 2 - math.sqrt(self.re**2 / 4 + 4 * math.pi**2)

    def exact(self, x: Tensor) -> Tensor:
        """(u, v, p) at points (n, 2): (n, 3)."""
        lam = self.lam
        e = torch.exp(lam * x[:, 0])
        angle = 2 * math.pi * x[:, 1]
        u = 1 - e * torch.cos(angle)
        v = lam / (2 * math.pi) * e * torch.sin(angle)
        p = 0.5 * (1 - e * e)
        return torch.stack([u, v, p], dim=1)

    def _component(self, j: int):
        return lambda x: self.exact(x)[:, j]

    def strong_form(self) -> pl.StrongForm:
        nu = 1.0 / self.re

        def residual(d):
            u, v = d.u[:, 0], d.u[:, 1]
            ux, vx, px = d.partial(0).unbind(1)
            uy, vy, py = d.partial(1).unbind(1)
            uxx, vxx, _ = d.partial(0, 0).unbind(1)
            uyy, vyy, _ = d.partial(1, 1).unbind(1)
            return {
                "momentum_x": u * ux + v * uy + px - nu * (uxx + uyy),
                "momentum_y": u * vx + v * vy + py - nu * (vxx + vyy),
                "continuity": ux + vy,
            }

        domain = pl.Polygon(KOVASZNAY_RECTANGLE)
        return pl.StrongForm(
            domain=domain,
            residual=residual,
            conditions={
                "u": pl.Dirichlet(self._component(0), output=0),
                "v": pl.Dirichlet(self._component(1), output=1),
                "p": pl.Dirichlet(self._component(2), on=domain.edge(1), output=2),
            },
            outputs=3,
        )

    def extra_metrics(self, solution) -> dict[str, float]:
        """Relative l2 errors of (u, v) together and of u, v and p apart, on the test set."""
        from pinnlab.metrics import test_points

        x = test_points(self)
        true = self.exact(x)
        predicted = torch.as_tensor(solution(x.numpy()), dtype=torch.float64).reshape(true.shape)
        e = predicted - true

        def rel(cols) -> float:
            return float(e[:, cols].norm() / true[:, cols].norm())

        return {
            "rel_l2_velocity": rel(slice(0, 2)),
            "rel_l2_u": rel(slice(0, 1)),
            "rel_l2_v": rel(slice(1, 2)),
            "rel_l2_p": rel(slice(2, 3)),
        }
