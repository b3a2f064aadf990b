"""Classical benchmarks of physics-informed networks with closed-form solutions: viscous
Burgers (by the Cole–Hopf integral), the 1-d wave equation and the 2-d Helmholtz equation
(Kovasznay's Navier–Stokes flow is in problems/flow.py).

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
from pinnlab.observations import check_synthetic


def _zero(x: Tensor) -> Tensor:
    return torch.zeros_like(x[:, 0])


#: The Cole–Hopf integral's quadrature: the trapezoidal rule on z ∈ [−Z, Z] with step h. Its
#: integrand is entire and decays like e^{−z²}, so the rule converges geometrically in 1/h;
#: at these values halving h and doubling Z change u by less than 1e-13 (tests/test_burgers.py).
BURGERS_Z, BURGERS_H = 16.0, 0.05
#: Points evaluated at once (each holds one row of 641 quadrature nodes a few times over).
BURGERS_CHUNK = 2048


@dataclass(frozen=True)
class Burgers(pl.Problem):
    """Viscous Burgers equation uₜ + u uₓ = ν uₓₓ on x ∈ [−1, 1], t ∈ [0, 1], ν = 0.01/π,
    u(0, x) = −sin πx, u(t, ±1) = 0: a shock forms at x = 0 from t = 1/π on; |uₓ| peaks at
    152.00516 at t = 1.6037/π (Basdevant et al. below; this quadrature gives 152.005162).

    Raissi, Perdikaris & Karniadakis, J. Comput. Phys. 378 (2019) 686, the continuous-time
    Burgers example (rel. L2 6.7e-4 with a 9 × 20 tanh network and L-BFGS). The truth is the
    Cole–Hopf solution (Cole 1951, Hopf 1950; the quadrature of Basdevant et al., Computers &
    Fluids 14 (1986) 23): with φ₀(y) = exp(−cos(πy)/(2πν)) and η = √(4νt) z,

        u(t, x) = −∫ sin(π(x − η)) φ₀(x − η) e^{−z²} dz / ∫ φ₀(x − η) e^{−z²} dz,

    i.e. u = −Σᵢ softmax(aᵢ) sin(π yᵢ) over quadrature nodes zᵢ with yᵢ = x − √(4νt) zᵢ and
    aᵢ = −zᵢ² − cos(π yᵢ)/(2πν): stable in float64 at any ν and differentiable by autograd
    (the residual check differentiates it twice). The data u(t, ±1) = 0 hold by symmetry.
    """

    id = "burgers"
    dims = "d = 1"
    dim: int = 1
    viscosity: float = 0.01 / math.pi

    def check(self):
        self.require(self.dim == 1, f"dim must be 1, got {self.dim}")
        self.require(
            isinstance(self.viscosity, int | float)
            and math.isfinite(self.viscosity)
            and self.viscosity > 0,
            f"viscosity must be a finite number > 0, got {self.viscosity!r}",
        )

    def initial(self, tx: Tensor) -> Tensor:
        return -torch.sin(math.pi * tx[:, 1])

    def exact(self, tx: Tensor) -> Tensor:
        """u at points (n, 2) = (t, x) by the Cole–Hopf quadrature (chunks of rows)."""
        return torch.cat([self._cole_hopf(c) for c in tx.split(BURGERS_CHUNK)])

    def _cole_hopf(self, tx: Tensor, z_max: float = BURGERS_Z, h: float = BURGERS_H) -> Tensor:
        steps = round(z_max / h)
        z = torch.arange(-steps, steps + 1, dtype=tx.dtype, device=tx.device) * h
        nu = self.viscosity
        t, x = tx[:, :1], tx[:, 1:]
        y = x - torch.sqrt(4 * nu * t) * z
        weights = torch.softmax(-z * z - torch.cos(math.pi * y) / (2 * math.pi * nu), dim=1)
        return -(weights * torch.sin(math.pi * y)).sum(dim=1)

    def strong_form(self) -> pl.StrongForm:
        nu = self.viscosity
        return pl.StrongForm(
            domain=pl.SpaceTime(pl.Box(1, -1.0, 1.0), 0.0, 1.0),
            residual=lambda d: d.partial("t") + d.u * d.partial(0) - nu * d.partial(0, 0),
            conditions={
                "boundary": pl.Dirichlet(_zero, lift=0.0),
                "initial": pl.Dirichlet(self.initial, on="initial"),
            },
        )


@dataclass(frozen=True)
class BurgersInverse(Burgers):
    """Inverse problem: uₜ + λ₁ u uₓ − λ₂ uₓₓ = 0 on x ∈ [−1, 1], t ∈ [0, 1] with λ₁ and λ₂
    unknown, from ``n_data`` values of the Cole–Hopf solution (λ₁ = 1, λ₂ = ``viscosity`` =
    0.01/π, as in burgers) at uniform points (seed ``data_seed``), with Gaussian noise of
    ``noise`` times the standard deviation of the clean values. No initial or boundary data:
    the observations and the equation alone determine u, λ₁ and λ₂.

    Raissi, Perdikaris & Karniadakis, J. Comput. Phys. 378 (2019) 686, the continuous-time
    identification of Burgers' equation (their Table 1, N_u = 2,000 points of a 9 × 20 tanh
    network trained by L-BFGS): λ₁ within 0.096 % and λ₂ within 0.469 % with clean data,
    0.039 % and 0.008 % with 1 % noise (tables/error_lambda_*_table_1.csv of
    github.com/maziarraissi/PINNs). As there, λ₁ starts at 0 and λ₂ = exp(p) at e⁻⁶.
    """

    id = "burgers-inverse"
    extra_metric_names = ("lambda_1_error", "lambda_2_error")

    n_data: int = 2000
    noise: float = 0.0
    data_seed: int = 0

    def check(self):
        super().check()
        check_synthetic(self)

    def observations(self) -> pl.Observations:
        """u at ``n_data`` uniform points of [0, 1] × [−1, 1], with the stated noise."""
        domain = super().strong_form().domain
        return pl.Observations.sample(
            domain, self.exact, self.n_data, noise=self.noise, seed=self.data_seed
        )

    def strong_form(self) -> pl.StrongForm:
        def residual(d):
            l1, l2 = d.unknown("lambda_1"), d.unknown("lambda_2")
            return d.partial("t") + l1 * d.u * d.partial(0) - l2 * d.partial(0, 0)

        return pl.StrongForm(
            domain=super().strong_form().domain,
            residual=residual,
            unknowns=[
                pl.Unknown("lambda_1", init=0.0, exact=1.0),
                pl.Unknown("lambda_2", init=math.exp(-6.0), positive=True, exact=self.viscosity),
            ],
            observations=[self.observations()],
        )


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
            return -d.laplacian - k2 * d.u - self.source(d.x)

        return pl.StrongForm(
            domain=pl.Box(2, -1.0, 1.0),
            residual=residual,
            conditions={"boundary": pl.Dirichlet(self.exact, lift=self._lift())},
        )
