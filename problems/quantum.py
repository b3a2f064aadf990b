"""Quantum ground states: H = −½Δ + V in atomic units (ħ = m = 1; energies in hartree).

Each problem offers the Hamiltonian form (the ``vmc`` solver minimises its Rayleigh quotient)
with its exact ground-state energy E₀, and its exact ground state as ``ground_state(x)`` =
log ψ₀(x) (unnormalised), whose local energy Hψ₀/ψ₀ the tests check to be E₀ everywhere.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

import pinnlab as pl


def _positive(value: float) -> bool:
    return math.isfinite(value) and value > 0


@dataclass(frozen=True)
class HarmonicOscillator(pl.Problem):
    """V = ½ ω² |x|² on R^d: ψ₀ = exp(−ω|x|²/2), E₀ = d ω / 2 (any textbook, e.g. Griffiths,
    Introduction to Quantum Mechanics, §2.3, in d independent coordinates)."""

    id = "harmonic-oscillator"
    dims = "d ≥ 1"
    dim: int = 10
    omega: float = 1.0

    def check(self):
        self.require(_positive(self.omega), f"omega must be > 0, got {self.omega}")

    def hamiltonian_form(self) -> pl.HamiltonianForm:
        return pl.HamiltonianForm(
            dim=self.dim,
            potential=lambda x: 0.5 * self.omega**2 * x.square().sum(dim=1),
            ground_energy=0.5 * self.dim * self.omega,
            length=1 / math.sqrt(self.omega),
        )

    def ground_state(self, x: Tensor) -> Tensor:
        return -0.5 * self.omega * x.square().sum(dim=1)


@dataclass(frozen=True)
class InfiniteWell(pl.Problem):
    """V = 0 in the box [0, L]^d with hard walls (ψ = 0 on its boundary):
    ψ₀ = Πᵢ sin(π xᵢ / L), E₀ = d π² / (2 L²) (Griffiths, §2.2, per coordinate)."""

    id = "infinite-well"
    dims = "d ≥ 1"
    dim: int = 10
    length: float = 1.0

    def check(self):
        self.require(_positive(self.length), f"length must be > 0, got {self.length}")

    def hamiltonian_form(self) -> pl.HamiltonianForm:
        return pl.HamiltonianForm(
            dim=self.dim,
            potential=lambda x: torch.zeros_like(x[:, 0]),
            domain=pl.Box(self.dim, 0.0, self.length),
            ground_energy=self.dim * math.pi**2 / (2 * self.length**2),
            length=self.length,
        )

    def energy_form(self) -> pl.EnergyForm:
        """E₀ as the minimum of ∫ ½|∇ψ|² / ∫ ψ² with ψ = 0 on the walls (deep Ritz)."""
        zero = 0.0
        return pl.EnergyForm(
            domain=pl.Box(self.dim, 0.0, self.length),
            source=lambda x: torch.zeros_like(x[:, 0]),
            diffusion=0.5,
            reaction=zero,
            conditions={"boundary": pl.Dirichlet(lambda x: torch.zeros_like(x[:, 0]), lift=zero)},
            eigenvalue=True,
            exact_eigenvalue=self.dim * math.pi**2 / (2 * self.length**2),
        )

    def ground_state(self, x: Tensor) -> Tensor:
        return torch.log(torch.sin(math.pi * x / self.length)).sum(dim=1)


@dataclass(frozen=True)
class Hydrogen(pl.Problem):
    """A hydrogen-like atom with a fixed nucleus of charge Z at the origin: V = −Z/|x| in R³,
    ψ₀ = exp(−Z r) (the 1s orbital, with Kato's cusp ∂ψ/∂r = −Z ψ at r = 0), E₀ = −Z²/2
    (−0.5 hartree for hydrogen; Griffiths, §4.2). V is infinite at the nucleus."""

    id = "hydrogen"
    dims = "d = 3"
    dim: int = 3
    charge: float = 1.0

    def check(self):
        self.require(self.dim == 3, f"dim must be 3, got {self.dim}")
        self.require(_positive(self.charge), f"charge must be > 0, got {self.charge}")

    def hamiltonian_form(self) -> pl.HamiltonianForm:
        return pl.HamiltonianForm(
            dim=3,
            potential=lambda x: -self.charge / x.norm(dim=1),
            ground_energy=-0.5 * self.charge**2,
            length=1 / self.charge,
        )

    def ground_state(self, x: Tensor) -> Tensor:
        return -self.charge * x.norm(dim=1)
