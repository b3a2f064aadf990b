"""Periodic 1+1-d benchmarks of physics-informed networks with a computed truth: the
Allen–Cahn equation and the Korteweg–de Vries equation.

Each truth is pinnlab's own ETDRK4 Fourier solve (:mod:`pinnlab.spectral`), computed once per
parameters and cached on disk, evaluable with its derivatives at any (t, x) in float64:
spectral in x, cubic Hermite in t between saved times (with ∂ₜ from the equation at both
ends). Both residuals are written with ``d.partial``; the generic catalogue tests check the
truth against its own equation and data in float64, tests/test_spectral.py its convergence.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
from torch import Tensor

import pinnlab as pl
from pinnlab import spectral

#: The evaluation grid of jaxpi's reference files: 201 times of [0, 1] × 512 points of
#: [−1, 1], both ends included (examples/allen_cahn/data/gen_allen_cahn.m).
GRID_TIMES, GRID_POINTS = 201, 512


class _Periodic(pl.Problem):
    """What the two problems share: one output u(t, x) on [0, 1] × [−1, 1] periodic, the data
    u(0, x) = ``initial``, a :class:`pinnlab.spectral.PeriodicSolution` as the truth and jaxpi's
    evaluation grid."""

    dims: ClassVar[str] = "d = 1"
    #: Settings of the reference solve (its accuracy is measured at the default parameters).
    MODES: ClassVar[int]
    STEPS: ClassVar[int]
    SAVE_EVERY: ClassVar[int]

    def _require_number(self, name: str, *, positive: bool = True) -> None:
        value = getattr(self, name)
        bound = "> 0" if positive else "≥ 0"
        self.require(
            isinstance(value, int | float)
            and math.isfinite(value)
            and (value > 0 if positive else value >= 0),
            f"{name} must be a finite number {bound}, got {value!r}",
        )

    def initial(self, tx: Tensor) -> Tensor:
        """u(0, x) at points (n, 2) = (t, x): (n,) (each problem defines it)."""
        raise NotImplementedError

    def spectral_solution(
        self,
        modes: int | None = None,
        steps: int | None = None,
        save_every: int | None = None,
        *,
        cache: bool = True,
    ) -> spectral.PeriodicSolution:
        """The ETDRK4 solve at ``modes`` grid points in ``steps`` steps, every
        ``save_every``-th saved (defaults: the reference's; each problem defines it)."""
        raise NotImplementedError

    def _form(self, residual) -> pl.StrongForm:
        return pl.StrongForm(
            domain=pl.SpaceTime(pl.Box(1, -1.0, 1.0), 0.0, 1.0),
            residual=residual,
            conditions={
                "initial": pl.Dirichlet(self.initial, on="initial"),
                "periodic": pl.Periodic(-1.0, 1.0),
            },
        )

    @functools.cached_property
    def solution(self) -> spectral.PeriodicSolution:
        """The reference: :meth:`spectral_solution` at its defaults (computed once per
        parameters, then read from the cache)."""
        return self.spectral_solution()

    def exact(self, tx: Tensor) -> Tensor:
        """u of the reference at points (n, 2) = (t, x): (n,); differentiable in t and x to
        any order (:class:`pinnlab.spectral.PeriodicSolution`)."""
        return self.solution.torch(tx)

    def grid(self) -> tuple[np.ndarray, np.ndarray]:
        """The evaluation grid: times (201,) and points (512,)."""
        return np.linspace(0.0, 1.0, GRID_TIMES), np.linspace(-1.0, 1.0, GRID_POINTS)

    def grid_reference(self) -> np.ndarray:
        """u on the evaluation grid: (201, 512)."""
        return self.solution.on_grid(*self.grid())


@dataclass(frozen=True)
class AllenCahn1D(_Periodic):
    """Allen–Cahn equation with periodic boundary conditions:

        u_t = ε u_xx + r(u − u³),  x ∈ [−1, 1], t ∈ [0, 1],  u(0, x) = x² cos πx,

    ε = 1e-4, r = 5: the benchmark of the jaxpi repository (PredictiveIntelligenceLab/jaxpi;
    Wang, Sankaran, Wang & Perdikaris, "An expert's guide to training physics-informed neural
    networks", arXiv:2308.08468, 2023). Published rel. L2 errors (README): 5.37e-5 with
    jaxpi's PINN, 2.24e-5 with PirateNet (Wang, Li, Chen & Perdikaris, arXiv:2402.00326, the
    ``pirate`` branch). Fronts of width √(2ε/r) ≈ 0.006 form between the stable states ±1.

    Its truth is ETDRK4 on 2048 Fourier modes, 2000 steps, spectra saved every 1e-3
    (:mod:`pinnlab.spectral`; a few seconds, then cached). The data's periodic extension has a
    kink (u_x(±1) = ∓2): it is split off as the closed-form heat flow of a periodic parabola
    (:class:`pinnlab.spectral.HeatKink`), and the computed part starts from C² data. A solve
    with twice the modes and steps differs on the evaluation grid (201 × 512) by rel. l2
    2.5e-9, at most 2.8e-7 (near x = ±1 at t ≈ 0.005; 4e-8 for t ≥ 0.05); halving the step
    alone changes it by at most 2e-8.
    """

    id = "allen-cahn-1d"
    #: Accuracy of the computed truth relative to the scale of u and its derivatives: its
    #: values to 3e-7 (against a finer solve), its initial values to 3e-10; its PDE residual
    #: at random points is below 4e-9 of max |u_xx| (1e-12 for t > 0.01), up to 2.5e-7 of it
    #: for t < 5e-3 within 0.01 of x = ±1 (the kink's √t, between the first saved times).
    truth_tolerance: ClassVar[float] = 1e-6
    MODES: ClassVar[int] = 2048
    STEPS: ClassVar[int] = 2000
    SAVE_EVERY: ClassVar[int] = 2
    dim: int = 1
    diffusion: float = 1e-4
    reaction: float = 5.0

    def check(self):
        self.require(self.dim == 1, f"dim must be 1, got {self.dim}")
        self._require_number("diffusion")
        self._require_number("reaction", positive=False)

    def initial(self, tx: Tensor) -> Tensor:
        """x² cos πx at points (n, 2) = (t, x)."""
        x = tx[:, 1]
        return x * x * torch.cos(math.pi * x)

    def strong_form(self) -> pl.StrongForm:
        eps, r = self.diffusion, self.reaction
        return self._form(lambda d: d.partial("t") - eps * d.partial(0, 0) - r * (d.u - d.u**3))

    def spectral_solution(
        self,
        modes: int | None = None,
        steps: int | None = None,
        save_every: int | None = None,
        *,
        cache: bool = True,
    ) -> spectral.PeriodicSolution:
        """ETDRK4 on ``modes`` grid points in ``steps`` steps, every ``save_every``-th saved
        (defaults: the reference's), L = ε∂ₓ², N = r(u − u³), the kink split off."""
        eps, r = self.diffusion, self.reaction
        return spectral.periodic_reference(
            lambda x: x * x * np.cos(np.pi * x),
            lambda k: -eps * k * k,
            lambda t, u: spectral.spectrum(r * u * (1 - u * u)),
            equation={"id": self.id, "diffusion": eps, "reaction": r},
            half_width=1.0,
            horizon=1.0,
            modes=modes or self.MODES,
            steps=steps or self.STEPS,
            save_every=save_every or self.SAVE_EVERY,
            # u₀ = x² cos πx: u_x jumps from −2 (x = 1⁻) to 2 (x = −1⁺).
            known=spectral.HeatKink(half_width=1.0, jump=4.0, diffusion=eps),
            cache=cache,
        )


@dataclass(frozen=True)
class KdV(_Periodic):
    """Korteweg–de Vries equation with periodic boundary conditions:

        u_t + u u_x + δ² u_xxx = 0,  x ∈ [−1, 1], t ∈ [0, 1],  u(0, x) = cos πx,

    δ = 0.022: Zabusky & Kruskal, "Interaction of 'solitons' in a collisionless plasma and the
    recurrence of initial states", Phys. Rev. Lett. 15 (1965) 240 (the cosine steepens, then
    breaks into a train of solitons after t ≈ 1/π); the PINN benchmark of jaxpi's ``pirate``
    branch (PredictiveIntelligenceLab/jaxpi; README: PirateNet, arXiv:2402.00326, rel. L2
    error 4.27e-4).

    Its truth is ETDRK4 with the dispersion −δ²∂ₓ³ in the exact linear part, on 512 Fourier
    modes with the 2/3 rule (the quadratic −(u²/2)_x aliases into no kept mode; the kept
    spectrum ends at 2e-14 of the solution), 10⁴ steps, spectra saved every 1e-3 (about a
    second, then cached). A solve with twice the modes and steps differs on the evaluation
    grid (201 × 512) by rel. l2 1.5e-10, at most 1e-9 (twice the modes alone: 2e-13).
    """

    id = "kdv"
    #: Accuracy of the computed truth relative to the scale of u and its derivatives: its
    #: values to 1e-9 (against a finer solve), its initial values to 1e-15, its PDE residual
    #: at random points to 4e-10 of max |u_xx| (1e-7 of max |u_t|: the Hermite error).
    truth_tolerance: ClassVar[float] = 1e-8
    MODES: ClassVar[int] = 512
    STEPS: ClassVar[int] = 10000
    SAVE_EVERY: ClassVar[int] = 10
    dim: int = 1
    dispersion: float = 0.022

    def check(self):
        self.require(self.dim == 1, f"dim must be 1, got {self.dim}")
        self._require_number("dispersion")

    def initial(self, tx: Tensor) -> Tensor:
        """cos πx at points (n, 2) = (t, x)."""
        return torch.cos(math.pi * tx[:, 1])

    def strong_form(self) -> pl.StrongForm:
        d2 = self.dispersion**2
        return self._form(lambda d: d.partial("t") + d.u * d.partial(0) + d2 * d.partial(0, 0, 0))

    def spectral_solution(
        self,
        modes: int | None = None,
        steps: int | None = None,
        save_every: int | None = None,
        *,
        cache: bool = True,
    ) -> spectral.PeriodicSolution:
        """ETDRK4 on ``modes`` grid points in ``steps`` steps, every ``save_every``-th saved
        (defaults: the reference's), L = −δ²∂ₓ³ (iδ²k³), N = −(u²/2)_x, dealiased."""
        d2 = self.dispersion**2
        modes = modes or self.MODES
        ik = 1j * spectral.rwavenumbers(modes, 1.0)
        return spectral.periodic_reference(
            lambda x: np.cos(np.pi * x),
            lambda k: 1j * d2 * k**3,
            lambda t, u: -0.5 * ik * spectral.spectrum(u * u),
            equation={"id": self.id, "dispersion": self.dispersion},
            half_width=1.0,
            horizon=1.0,
            modes=modes,
            steps=steps or self.STEPS,
            save_every=save_every or self.SAVE_EVERY,
            dealias=True,
            cache=cache,
        )
