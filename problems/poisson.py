"""Poisson problems −Δu = f with Dirichlet data, in any dimension, each with its exact solution.

Every problem here offers the strong form (residual −Δu − f, Dirichlet data u = g on the
boundary), the energy form (u minimises ∫ ½|∇u|² − f u among functions with the data: deep
Ritz) and its exact solution, checked against its own equation in float64 by the tests.
"""

from __future__ import annotations

import functools
import math
import operator
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

import pinnlab as pl
from pinnlab import finite_differences, montecarlo
from pinnlab.observations import check_synthetic


@dataclass(frozen=True)
class _BoxPoisson(pl.Problem):
    """Shared strong form on the unit cube: −Δu = f in (0, 1)^d, u = exact on the boundary."""

    def source(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    def exact(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    def _data(self) -> pl.Dirichlet:
        """u = exact on the faces; the lift blends the data of the faces (``Box.extension``)."""
        return pl.Dirichlet(self.exact, lift=pl.Box(self.dim).extension(self.exact))

    def strong_form(self) -> pl.StrongForm:
        return pl.StrongForm(
            domain=pl.Box(self.dim, 0.0, 1.0),
            residual=lambda d: -d.laplacian - self.source(d.x),
            conditions={"boundary": self._data()},
        )

    def energy_form(self) -> pl.EnergyForm:
        return pl.EnergyForm(
            domain=pl.Box(self.dim, 0.0, 1.0),
            source=self.source,
            conditions={"boundary": self._data()},
        )


@dataclass(frozen=True)
class PoissonSine(_BoxPoisson):
    """−Δu = (π²/4) Σᵢ sin(π xᵢ/2) on [0, 1]^d, u = Σᵢ sin(π xᵢ/2), Dirichlet data.

    The PNd problem of PINNacle (Hao et al., NeurIPS 2024, Datasets & Benchmarks), d = 5 there.
    In high dimension u concentrates around its mean d·2/π: the best constant reaches
    rel_l2 ≈ 0.48/√d, so read the centred metrics too.
    """

    id = "poisson-sine"
    dims = "d ≥ 1"
    exchangeable = True

    def source(self, x):
        return (math.pi**2 / 4) * torch.sin(math.pi * x / 2).sum(dim=1)

    def exact(self, x):
        return torch.sin(math.pi * x / 2).sum(dim=1)


@dataclass(frozen=True)
class PoissonMultiscale(_BoxPoisson):
    """−Δu = f on (0, 1)^d, u = Σᵢ Σₖ sin(2π mₖ xᵢ) / d with the wave numbers mₖ = 4^k,
    k = 0 … scales − 1 (1, 4, 16 by default), Dirichlet data: equal amplitude at every scale,
    one scale per band 4^k ≤ |m| < 4^(k+1), so that the error in each band says which scales
    a network has learned (spectral bias: Rahaman et al., "On the spectral bias of neural
    networks", ICML 2019; Tancik et al., NeurIPS 2020, for the Fourier-feature cure).
    f = Σᵢ Σₖ (2π mₖ)² sin(2π mₖ xᵢ) / d.
    """

    id = "poisson-multiscale"
    dims = "d ≥ 1"
    dim: int = 1
    scales: int = 3

    def check(self):
        self.require(self.scales >= 1, f"scales must be ≥ 1, got {self.scales}")

    @property
    def modes(self) -> list[int]:
        """The wave numbers mₖ = 4^k."""
        return [4**k for k in range(self.scales)]

    def _waves(self, x: Tensor, power: int) -> Tensor:
        m = torch.as_tensor(self.modes, dtype=x.dtype, device=x.device)
        arg = 2 * math.pi * x[:, :, None] * m
        return ((2 * math.pi * m) ** power * torch.sin(arg)).sum(dim=(1, 2)) / self.dim

    def exact(self, x):
        return self._waves(x, 0)

    def source(self, x):
        return self._waves(x, 2)


@dataclass(frozen=True)
class PoissonHarmonic(_BoxPoisson):
    """−Δu = 0 on (0, 1)^d, u = Σₖ x₂ₖ₋₁ x₂ₖ (k = 1 … d/2), Dirichlet data.

    E & Yu, "The deep Ritz method", Commun. Math. Stat. 6 (2018), §3.1 (d = 10 there).
    """

    id = "poisson-harmonic"
    dims = "even d ≥ 2"
    dim: int = 10

    def check(self):
        self.require(self.dim % 2 == 0, f"dim must be even, got {self.dim}")

    def source(self, x):
        return torch.zeros_like(x[:, 0])

    def exact(self, x):
        return (x[:, 0::2] * x[:, 1::2]).sum(dim=1)


@dataclass(frozen=True)
class PoissonQuadratic(_BoxPoisson):
    """−Δu = −2d on (0, 1)^d, u = Σₖ xₖ², Dirichlet data.

    E & Yu, "The deep Ritz method", Commun. Math. Stat. 6 (2018), §3.1 (d = 100 there).
    """

    id = "poisson-quadratic"
    dims = "d ≥ 1"
    dim: int = 100

    def source(self, x):
        return torch.full_like(x[:, 0], -2.0 * self.dim)

    def exact(self, x):
        return (x * x).sum(dim=1)


@dataclass(frozen=True)
class PoissonBall(pl.Problem):
    """−Δu = f in the unit ball of R^d, u = 0 on the sphere, anisotropic and inseparable:

        u(x) = (1 − |x|²) Σ_{i<d} cᵢ sin(xᵢ + cos x_{i+1} + x_{i+1} cos xᵢ),  cᵢ ~ N(0, 1)

    drawn from ``coef_seed``; f = −Δu in closed form.
    Hu, Shukla, Karniadakis & Kawaguchi, "Tackling the curse of dimensionality with
    physics-informed neural networks", Neural Networks (2024) (SDGD), two-body example.
    """

    id = "poisson-ball"
    dims = "d ≥ 2"
    dim: int = 10
    coef_seed: int = 0

    def check(self):
        self.require(self.dim >= 2, f"dim must be ≥ 2, got {self.dim}")
        _ = self._coefficients  # draw now, outside any torch.func transform

    def coefficients(self, like: Tensor) -> Tensor:
        """c₁ … c_{d−1} in the dtype and on the device of ``like``."""
        return self._coefficients.to(device=like.device, dtype=like.dtype)

    @functools.cached_property
    def _coefficients(self) -> Tensor:
        # Drawn once, outside any traced function (torch.func transforms forbid fresh draws).
        g = torch.Generator().manual_seed(self.coef_seed)
        return torch.randn(self.dim - 1, generator=g, dtype=torch.float64)

    def _parts(self, x: Tensor):
        xi, xn = x[:, :-1], x[:, 1:]
        a = xi + torch.cos(xn) + xn * torch.cos(xi)
        return xi, xn, a, self.coefficients(x)

    def exact(self, x):
        _, _, a, c = self._parts(x)
        return (1 - (x * x).sum(dim=1)) * (c * torch.sin(a)).sum(dim=1)

    def source(self, x):
        """f = −Δu, with Δ[(1 − |x|²) ψ] = (1 − |x|²) Δψ − 4 x·∇ψ − 2d ψ."""
        xi, xn, a, c = self._parts(x)
        da_i = 1 - xn * torch.sin(xi)  # ∂aᵢ/∂xᵢ
        da_n = torch.cos(xi) - torch.sin(xn)  # ∂aᵢ/∂x_{i+1}
        lap_a = -xn * torch.cos(xi) - torch.cos(xn)
        sin_a, cos_a = torch.sin(a), torch.cos(a)
        psi = (c * sin_a).sum(dim=1)
        lap_psi = (c * (-sin_a * (da_i**2 + da_n**2) + cos_a * lap_a)).sum(dim=1)
        x_grad_psi = (c * cos_a * (xi * da_i + xn * da_n)).sum(dim=1)
        r = 1 - (x * x).sum(dim=1)
        return -(r * lap_psi - 4 * x_grad_psi - 2 * self.dim * psi)

    def strong_form(self) -> pl.StrongForm:
        return pl.StrongForm(
            domain=pl.Ball(self.dim),
            residual=lambda d: -d.laplacian - self.source(d.x),
            conditions={"boundary": pl.Dirichlet(_zero, lift=0.0)},
        )

    def energy_form(self) -> pl.EnergyForm:
        return pl.EnergyForm(
            domain=pl.Ball(self.dim),
            source=self.source,
            conditions={"boundary": pl.Dirichlet(_zero, lift=0.0)},
        )


def _zero(x: Tensor) -> Tensor:
    return torch.zeros_like(x[:, 0])


@dataclass(frozen=True)
class PoissonSlit(pl.Problem):
    """−Δu = 0 on the unit disk slit along the positive x-axis, u = r^{1/2} sin(θ/2) (θ ∈
    [0, 2π) from the slit), Dirichlet data on the circle and on the slit (where u = 0).

    The classic crack singularity: ∇u ~ r^{−1/2} at the tip, so u is not in H² and the error
    concentrates there. E & Yu, "The deep Ritz method", Commun. Math. Stat. 6 (2018), §3.2
    treat the same singularity on the slit square.
    """

    id = "poisson-slit"
    dims = "d = 2"

    def check(self):
        self.require(self.dim == 2, f"dim must be 2, got {self.dim}")

    def exact(self, x):
        r = torch.linalg.vector_norm(x[:, :2], dim=1)
        theta = torch.remainder(torch.atan2(x[:, 1], x[:, 0]), 2 * math.pi)
        return r.sqrt() * torch.sin(theta / 2)

    def lift(self, x):
        """r sin(θ/2): the data (sin(θ/2) on the circle, 0 on the slit) extended linearly in r
        — not the solution, whose r^{1/2} the slit's distance function supplies (Slit.distance:
        u = lift + φN then has N = 1/((1 + r^{1/2})(1 + r)), bounded)."""
        r = torch.linalg.vector_norm(x[:, :2], dim=1)
        theta = torch.remainder(torch.atan2(x[:, 1], x[:, 0]), 2 * math.pi)
        return r * torch.sin(theta / 2)

    def _domain(self) -> pl.Slit:
        return pl.Slit(pl.Ball(2))

    def strong_form(self) -> pl.StrongForm:
        return pl.StrongForm(
            domain=self._domain(),
            residual=lambda d: -d.laplacian,
            conditions={"boundary": pl.Dirichlet(self.exact, lift=self.lift)},
        )

    def energy_form(self) -> pl.EnergyForm:
        return pl.EnergyForm(
            domain=self._domain(),
            source=_zero,
            conditions={"boundary": pl.Dirichlet(self.exact, lift=self.lift)},
        )


def _extrapolated_reference(
    key: dict, domain, seed: int, grid, *, order: float, why: str = ""
) -> pl.Reference:
    """The reference of a 5-point finite-difference solve on [−1, 1]²: ``grid(n)`` (nodal
    values, (n + 1)²) at n = ``key["grid"]`` and n/2, Richardson-extrapolated for an error
    of order h^order, (2^p u_h − u_2h)/(2^p − 1), at the coarse nodes, and interpolated
    (bilinear) at ``key["points"]`` points of ``domain`` drawn with ``seed``; cached on disk.
    """
    from scipy.interpolate import RegularGridInterpolator

    n = key["grid"]
    g = torch.Generator().manual_seed(seed)
    x = domain.sample_interior(key["points"], generator=g, dtype=torch.float64)

    def compute():
        fine, coarse = grid(n), grid(n // 2)
        r = 2.0**order
        extrapolated = (r * fine[::2, ::2] - coarse) / (r - 1)
        nodes = np.linspace(-1.0, 1.0, n // 2 + 1)
        return {"value": RegularGridInterpolator((nodes, nodes), extrapolated)(x.numpy())}

    cached = montecarlo.cached({**key, "seed": seed, "version": 1}, compute)
    value = torch.from_numpy(cached["value"])
    return pl.Reference(
        t=0.0,
        x=x,
        value=value,
        stderr=torch.zeros_like(value),
        source=f"5-point finite differences, n = {n} and {n // 2}, Richardson-extrapolated"
        + (f" {why}" if why else ""),
    )


#: Nodes per side of the finest finite-difference grid of poisson-slit-square's reference.
REFERENCE_GRID = 1024
REFERENCE_POINTS = 4096
REFERENCE_SEED = 20261128


def slit_square_grid(n: int) -> np.ndarray:
    """The 5-point finite-difference solution of −Δu = 1 on (−1, 1)² \\ [0, 1) × {0}, u = 0 on
    the boundary and the slit, on the (n + 1)² nodes xᵢ = −1 + 2i/n (n even: the slit lies on
    the grid line j = n/2). Returns U[i, j] ≈ u(xᵢ, yⱼ); a sparse direct solve (scipy)."""
    if n < 4 or n % 2:
        raise pl.ParameterError(f"the slit-square grid needs an even n ≥ 4, got {n}.")
    i, j = np.meshgrid(np.arange(n + 1), np.arange(n + 1), indexing="ij")
    free = (i > 0) & (i < n) & (j > 0) & (j < n)  # the square's boundary is data
    free &= ~((j == n // 2) & (i >= n // 2))  # so are the nodes on the slit (tip included)
    return finite_differences.poisson_grid(free, 2.0 / n)


@dataclass(frozen=True)
class PoissonSlitSquare(pl.Problem):
    """−Δu = 1 on the slit square (−1, 1)² \\ [0, 1) × {0}, u = 0 on the boundary and the slit.

    E & Yu, "The deep Ritz method", Commun. Math. Stat. 6 (2018), §3.2 (their own 2-d example;
    no closed form). The reference is computed here: 5-point finite differences on grids of
    ``REFERENCE_GRID`` and half as many nodes per side, Richardson-extrapolated for the O(h)
    error that the crack's r^{1/2} singularity leaves (the grid's rel_l2 differences halve:
    3.0e-3, 1.5e-3, 7.5e-4 from n = 256 to 1024), and interpolated bilinearly at
    ``REFERENCE_POINTS`` fixed points; cached on disk.
    """

    id = "poisson-slit-square"
    dims = "d = 2"

    def check(self):
        self.require(self.dim == 2, f"dim must be 2, got {self.dim}")

    def _domain(self) -> pl.Slit:
        return pl.Slit(pl.Box(2, -1.0, 1.0))

    def _source(self, x: Tensor) -> Tensor:
        return torch.ones_like(x[:, 0])

    def strong_form(self) -> pl.StrongForm:
        return pl.StrongForm(
            domain=self._domain(),
            residual=lambda d: -d.laplacian - 1.0,
            conditions={"boundary": pl.Dirichlet(_zero, lift=0.0)},
        )

    def energy_form(self) -> pl.EnergyForm:
        return pl.EnergyForm(
            domain=self._domain(),
            source=self._source,
            conditions={"boundary": pl.Dirichlet(_zero, lift=0.0)},
        )

    def reference(self) -> pl.Reference:
        key = {"problem": self.id, "grid": REFERENCE_GRID, "points": REFERENCE_POINTS}
        return _extrapolated_reference(
            key, self._domain(), REFERENCE_SEED, slit_square_grid, order=1.0
        )


@dataclass(frozen=True)
class PoissonRidge(_BoxPoisson):
    """−Δu = f on (0, 1)^d with u a sum of K ridge waves, Dirichlet data:

        u(x) = Σₖ aₖ sin(ω vₖᵀx + φₖ),   f = −Δu = ω² u   (|vₖ| = 1),

    unit directions vₖ, amplitudes aₖ ~ U(½, 3/2) and phases φₖ ~ U(0, 2π) drawn from
    ``coef_seed``; ω is ``frequency``. For x uniform on the cube, vₖᵀx has standard deviation
    1/√12 at every d, so ω vₖᵀx spreads over a few radians in any dimension: unlike
    Σᵢ sin(π xᵢ/2), u does not concentrate, no constant comes close (rel_l2 of the best
    constant stays O(1)) and rel_l2 measures learning. Written for pinnlab as a
    high-dimensional test; ridge functions as in Barron, IEEE Trans. Inf. Theory 39 (1993).
    """

    id = "poisson-ridge"
    dims = "d ≥ 1"
    dim: int = 1000
    waves: int = 4
    frequency: float = 4.0
    coef_seed: int = 0

    def check(self):
        self.require(self.waves >= 1, f"waves must be ≥ 1, got {self.waves}")
        self.require(self.frequency > 0, f"frequency must be > 0, got {self.frequency}")
        _ = self._coefficients  # draw now, outside any torch.func transform

    @functools.cached_property
    def _coefficients(self) -> tuple[Tensor, Tensor, Tensor]:
        g = torch.Generator().manual_seed(self.coef_seed)
        v = torch.randn(self.waves, self.dim, generator=g, dtype=torch.float64)
        v = v / torch.linalg.vector_norm(v, dim=1, keepdim=True)
        a = 0.5 + torch.rand(self.waves, generator=g, dtype=torch.float64)
        phase = 2 * math.pi * torch.rand(self.waves, generator=g, dtype=torch.float64)
        return v, a, phase

    def relevant_directions(self) -> Tensor:
        """V (K, d): u depends on x through Vx only (``pinnlab.analysis.feature_angles``)."""
        return self._coefficients[0]

    def coefficients(self, like: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(v (K, d), a (K,), φ (K,)) in the dtype and on the device of ``like``."""
        return tuple(c.to(device=like.device, dtype=like.dtype) for c in self._coefficients)

    def exact(self, x):
        v, a, phase = self.coefficients(x)
        return (a * torch.sin(self.frequency * (x @ v.T) + phase)).sum(dim=1)

    def source(self, x):
        return self.frequency**2 * self.exact(x)


@dataclass(frozen=True)
class PoissonFlux(pl.Problem):
    """−Δu = f on [0, 1]^d, u = Σᵢ sin(π xᵢ/2) + x₀², ∂u/∂n = 2 on x₀ = 1, Dirichlet data elsewhere.

    f = (π²/4) Σᵢ sin(π xᵢ/2) − 2. The flux holds on the face x₀ = 1, where
    ∂u/∂x₀ = (π/2) cos(π/2) + 2 = 2; u = exact on the other 2d − 1 faces (a union of faces).
    The PINN fits the residual ∂u/∂n − 2 there; deep Ritz minimises
    ∫ ½|∇u|² − f u dx − ∫_{x₀=1} 2u ds (the natural condition) with the Dirichlet penalty.
    No lift: ``net.hard_bc`` imposes data on the whole boundary only. A mixed-condition test
    written for pinnlab.
    """

    id = "poisson-flux"
    dims = "d ≥ 1"

    def source(self, x):
        return (math.pi**2 / 4) * torch.sin(math.pi * x / 2).sum(dim=1) - 2.0

    def exact(self, x):
        return torch.sin(math.pi * x / 2).sum(dim=1) + x[:, 0] ** 2

    def _conditions(self) -> dict:
        """u = exact on every face but x₀ = 1 (a union of faces), ∂u/∂n = 2 on x₀ = 1."""
        box = pl.Box(self.dim)
        rest = [box.face(0, "low")]
        rest += [box.face(i, side) for i in range(1, self.dim) for side in ("low", "high")]
        return {
            "dirichlet": pl.Dirichlet(self.exact, on=functools.reduce(operator.or_, rest)),
            "flux": pl.Neumann(lambda x: torch.full_like(x[:, 0], 2.0), on=box.face(0, "high")),
        }

    def strong_form(self) -> pl.StrongForm:
        return pl.StrongForm(
            domain=pl.Box(self.dim, 0.0, 1.0),
            residual=lambda d: -d.laplacian - self.source(d.x),
            conditions=self._conditions(),
        )

    def energy_form(self) -> pl.EnergyForm:
        return pl.EnergyForm(
            domain=pl.Box(self.dim, 0.0, 1.0), source=self.source, conditions=self._conditions()
        )


#: The L-shape (−1, 1)² \ [0, 1]² of DeepXDE's Poisson example, counter-clockwise from the
#: lower left: edge 0 is y = −1, edge 1 x = 1 (y ≤ 0), edge 2 y = 0 (x ≥ 0), edge 3 x = 0
#: (y ≥ 0), edge 4 y = 1 (x ≤ 0), edge 5 x = −1; the re-entrant corner (0, 0) joins edges 2, 3.
L_SHAPE = ((-1.0, -1.0), (1.0, -1.0), (1.0, 0.0), (0.0, 0.0), (0.0, 1.0), (-1.0, 1.0))
#: The edges of the L-shape where u = 0 (the others carry the flux ∂u/∂n = g).
L_SHAPE_DIRICHLET = (1, 2, 3, 4)
L_SHAPE_NEUMANN = (0, 5)
#: Nodes per side of the finest grid of poisson-lshape's reference, its points and their seed.
LSHAPE_GRID = 512
LSHAPE_POINTS = 4096
LSHAPE_SEED = 20261204
#: The rate of the 5-point scheme's error at the re-entrant corner (u ~ r^{2/3}): h^{4/3} in
#: the l2 norm (measured: 1.333 from n = 32 to 1024), h^{2/3} in the max norm beside the corner.
LSHAPE_ORDER = 4.0 / 3.0


def lshape_grid(n: int, flux: float = 0.0) -> np.ndarray:
    """The 5-point finite-difference solution of −Δu = 1 on the L-shape (−1, 1)² \\ [0, 1]²
    with u = 0 on the edges x = 1, y = 0 (x ≥ 0), x = 0 (y ≥ 0), y = 1 and ∂u/∂n = ``flux`` on
    x = −1 and y = −1 (ghost nodes: second order), on the (n + 1)² nodes xᵢ = −1 + 2i/n of
    the square (n even: the cut lies on grid lines; zero on the nodes of [0, 1]²). Returns
    U[i, j] ≈ u(xᵢ, yⱼ); a sparse direct solve (scipy)."""
    if n < 4 or n % 2:
        raise pl.ParameterError(f"the L-shape grid needs an even n ≥ 4, got {n}.")
    i, j = np.meshgrid(np.arange(n + 1), np.arange(n + 1), indexing="ij")
    # Unknowns: the L's nodes off the Dirichlet edges; those on x = −1 and y = −1 (the grid's
    # edges) take their flux by ghost nodes, the corner (−1, −1) one for each edge.
    free = ~((i >= n // 2) & (j >= n // 2)) & (i < n) & (j < n)
    return finite_differences.poisson_grid(free, 2.0 / n, flux=flux)


@dataclass(frozen=True)
class PoissonLShape(pl.Problem):
    """−Δu = 1 on the L-shape (−1, 1)² \\ [0, 1]², u = 0 on the four edges x = 1, y = 0,
    x = 0, y = 1 (those of the cut and the two beside them), ∂u/∂n = ``flux`` on x = −1 and
    y = −1 (0 by default): mixed conditions on named edges of a ``pl.Polygon``.

    The domain and the equation are those of the L-shaped Poisson example of DeepXDE (Lu,
    Meng, Mao & Karniadakis, SIAM Rev. 63 (2021) 208), where u = 0 on the whole boundary;
    here the two outer edges away from the cut carry a Neumann condition instead, which keeps
    the classic singularity u ~ r^{2/3} sin(2θ/3) at the re-entrant corner (two Dirichlet
    edges at the angle 3π/2) and adds right-angled corners where the two kinds meet (regular
    there). No closed form. The reference is computed here: 5-point finite differences on
    grids of ``LSHAPE_GRID`` and half as many cells a side (Neumann edges by ghost nodes),
    Richardson-extrapolated for the h^{4/3} error of the corner (the grids' rel. l2
    differences fall at the rate 1.333 from n = 32 to 1024; the extrapolated ones at ≈ 1.7),
    interpolated bilinearly at ``LSHAPE_POINTS`` fixed points: it agrees with the same
    reference from n = 1024 and 512 to rel. l2 1.1e-5 there (max 6.5e-5 against max u ≈ 0.79,
    mostly the interpolation's error); about 2 s on one core, cached on disk. Deep Ritz
    takes the flux as the natural condition (−∫ g u ds in the energy).
    """

    id = "poisson-lshape"
    dims = "d = 2"
    flux: float = 0.0

    def check(self):
        self.require(self.dim == 2, f"dim must be 2, got {self.dim}")
        self.require(
            isinstance(self.flux, int | float) and math.isfinite(self.flux),
            f"flux must be a finite number, got {self.flux!r}",
        )

    def _domain(self) -> pl.Polygon:
        return pl.Polygon(L_SHAPE)

    def _source(self, x: Tensor) -> Tensor:
        return torch.ones_like(x[:, 0])

    def _conditions(self) -> dict:
        """u = 0 on edges 1–4 (a union of edges), ∂u/∂n = flux on edges 0 and 5."""
        domain = self._domain()
        dirichlet = functools.reduce(operator.or_, map(domain.edge, L_SHAPE_DIRICHLET))
        neumann = functools.reduce(operator.or_, map(domain.edge, L_SHAPE_NEUMANN))
        flux = float(self.flux)
        return {
            "dirichlet": pl.Dirichlet(_zero, on=dirichlet),
            "flux": pl.Neumann(lambda x: torch.full_like(x[:, 0], flux), on=neumann),
        }

    def strong_form(self) -> pl.StrongForm:
        return pl.StrongForm(
            domain=self._domain(),
            residual=lambda d: -d.laplacian - 1.0,
            conditions=self._conditions(),
        )

    def energy_form(self) -> pl.EnergyForm:
        return pl.EnergyForm(
            domain=self._domain(), source=self._source, conditions=self._conditions()
        )

    def reference(self) -> pl.Reference:
        flux = float(self.flux)
        key = {"problem": self.id, "flux": flux, "grid": LSHAPE_GRID, "points": LSHAPE_POINTS}
        return _extrapolated_reference(
            key,
            self._domain(),
            LSHAPE_SEED,
            lambda n: lshape_grid(n, flux),
            order=LSHAPE_ORDER,
            why="for the h^{4/3} error of the re-entrant corner",
        )


@dataclass(frozen=True)
class PoissonKappa(pl.Problem):
    """Inverse problem: −κΔu = f on [0, 1]^d with the conductivity κ unknown, u = Σᵢ sin(π xᵢ)
    on the boundary, and ``n_data`` measured values of u inside.

    f = κ* π² Σᵢ sin(π xᵢ) with the true κ* = ``kappa``, so u = Σᵢ sin(π xᵢ). The data are u
    at ``n_data`` uniform points (seed ``data_seed``) with Gaussian noise of ``noise`` times
    the standard deviation of the clean values (Raissi, Perdikaris & Karniadakis 2019's
    convention: 0.01 is 1 % noise). κ is identifiable: for κ ≠ κ*, the solution with the same
    boundary data is g + (κ*/κ)(u − g), g the harmonic extension of the data, and u − g is
    a good part of u (each term sin(π xᵢ) vanishes on the faces xᵢ ∈ {0, 1}), which the
    interior values tell apart. κ starts at 1 (a log parametrisation: κ = exp(p)). A test
    problem written for pinnlab.
    """

    id = "poisson-kappa"
    dims = "d ≥ 1"
    extra_metric_names = ("kappa_error",)
    exchangeable = True  # u, f and the cube are; the data points are not, and need not be

    kappa: float = 2.0
    n_data: int = 200
    noise: float = 0.0
    data_seed: int = 0

    def check(self):
        self.require(
            isinstance(self.kappa, int | float) and math.isfinite(self.kappa) and self.kappa > 0,
            f"kappa must be a finite number > 0, got {self.kappa!r}",
        )
        check_synthetic(self)

    def exact(self, x: Tensor) -> Tensor:
        return torch.sin(math.pi * x).sum(dim=1)

    def source(self, x: Tensor) -> Tensor:
        return self.kappa * math.pi**2 * torch.sin(math.pi * x).sum(dim=1)

    def observations(self) -> pl.Observations:
        """u at ``n_data`` uniform points of the cube, with the stated noise."""
        return pl.Observations.sample(
            pl.Box(self.dim), self.exact, self.n_data, noise=self.noise, seed=self.data_seed
        )

    def strong_form(self) -> pl.StrongForm:
        box = pl.Box(self.dim, 0.0, 1.0)
        return pl.StrongForm(
            domain=box,
            residual=lambda d: -d.unknown("kappa") * d.laplacian - self.source(d.x),
            conditions={"boundary": pl.Dirichlet(self.exact, lift=box.extension(self.exact))},
            unknowns=[pl.Unknown("kappa", init=1.0, positive=True, exact=self.kappa)],
            observations=[self.observations()],
        )
