"""Deep Ritz: the energy form's minimiser is the exact solution; the solver trains and fails
clearly where it must."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pytest
import torch
from helpers import tiny_config

import pinnlab as pl
from pinnlab.config import validate
from pinnlab.solvers.deep_ritz import DeepRitz, DeepRitzSettings

EPSILONS = [-0.2, -0.05, 0.05, 0.2]


@dataclass(frozen=True)
class Robin1D(pl.Problem):
    """−u'' + u = x² − 2 on (0, 1), u'(n) = 2x on both ends (Neumann only): u = x²."""

    id = "test-neumann"
    dim: int = 1

    def exact(self, x):
        return x[:, 0] ** 2

    def energy_form(self):
        return pl.EnergyForm(
            domain=pl.Box(1),
            source=lambda x: x[:, 0] ** 2 - 2,
            reaction=1.0,
            conditions={"flux": pl.Neumann(lambda x: 2 * x[:, 0])},
        )


@dataclass(frozen=True)
class RobinSquare(pl.Problem):
    """−∇·(a∇u) + u = f on the unit square with a = 1 + x₀, u = cos x₀ cos x₁, u = g on the
    faces x₀ = 0 and x₁ = 0, and Robin conditions α u + β ∂u/∂n = h on the others (α = 2,
    β = 1 on x₀ = 1; α = 1 + x₀, β = 2 on x₁ = 1)."""

    id = "test-robin-energy"
    dim: int = 2

    def exact(self, x):
        return torch.cos(x[:, 0]) * torch.cos(x[:, 1])

    def energy_form(self):
        box = pl.Box(2)
        c0, c1 = (lambda x: torch.cos(x[:, 0])), (lambda x: torch.cos(x[:, 1]))
        s0, s1 = (lambda x: torch.sin(x[:, 0])), (lambda x: torch.sin(x[:, 1]))
        return pl.EnergyForm(
            domain=box,
            # −∇·((1 + x₀)∇u) + u = (2 (1 + x₀) + 1) u + sin x₀ cos x₁
            source=lambda x: (3 + 2 * x[:, 0]) * self.exact(x) + s0(x) * c1(x),
            diffusion=lambda x: 1 + x[:, 0],
            reaction=1.0,
            conditions={
                "dirichlet": pl.Dirichlet(self.exact, on=box.face(0, "low") | box.face(1, "low")),
                "right": pl.Robin(
                    2.0, 1.0, lambda x: 2 * self.exact(x) - s0(x) * c1(x), on=box.face(0, "high")
                ),
                "top": pl.Robin(
                    lambda x: 1 + x[:, 0],
                    2.0,
                    lambda x: (1 + x[:, 0]) * self.exact(x) - 2 * c0(x) * s1(x),
                    on=box.face(1, "high"),
                ),
            },
        )


def _bump(problem, x):
    """A perturbation that vanishes on the Dirichlet boundary (anything, for Neumann)."""
    if isinstance(problem, Robin1D):
        return torch.sin(3 * x[:, 0]) + x[:, 0]
    if isinstance(problem, RobinSquare):
        return x[:, 0] * x[:, 1] * (2 + torch.cos(3 * x.sum(dim=1)))
    domain = problem.energy_form().domain
    if isinstance(domain, pl.Slit):
        theta = torch.remainder(torch.atan2(x[:, 1], x[:, 0]), 2 * math.pi)
        return (1 - (x * x).sum(dim=1)) * torch.sin(theta / 2) ** 2
    return domain.distance(x) * torch.cos(x.sum(dim=1))


PROBLEMS = [
    pl.problem("poisson-sine", dim=3),
    pl.problem("poisson-harmonic", dim=4),
    pl.problem("poisson-quadratic", dim=3),
    pl.problem("poisson-ball", dim=3),
    pl.problem("poisson-ridge", dim=5),
    pl.problem("poisson-slit"),
    Robin1D(),
    RobinSquare(),
]


@pytest.mark.parametrize("problem", PROBLEMS, ids=lambda p: p.id)
def test_the_exact_solution_minimises_the_energy(problem):
    """E[u* + εφ] > E[u*] for perturbations φ that keep the Dirichlet data (float64, the same
    200,000 Monte Carlo points for every ε)."""
    solver = DeepRitz(problem, validate(DeepRitzSettings, {}), dtype=torch.float64)
    g = torch.Generator().manual_seed(0)
    batch = {
        "interior": solver.spec.domain.sample_interior(200_000, generator=g, dtype=torch.float64)
    }
    for name, c in solver.spec.conditions.items():
        batch[name] = solver.condition_points(c, 20_000, generator=g, dtype=torch.float64)

    def energy(eps: float) -> float:
        net = lambda x: (problem.exact(x) + eps * _bump(problem, x))[:, None]  # noqa: E731
        return float(solver.energy(net, batch).detach())

    e0 = energy(0.0)
    for eps in EPSILONS:
        assert energy(eps) > e0, (problem.id, eps)


def test_deep_ritz_trains_and_reports_its_terms():
    solution = pl.run(tiny_config(method="deep-ritz", dim=2, train={"steps": 30, "lr": 1e-2}))
    h = solution.history
    assert {"loss.energy", "loss.boundary"} <= set(h)
    np.testing.assert_allclose(h["loss"], h["loss.energy"] + 500 * h["loss.boundary"], rtol=1e-5)
    assert h["loss"][-1] < h["loss"][0]
    hard = pl.run(
        tiny_config(
            "poisson-ball", method="deep-ritz", dim=3, net={"width": 8, "depth": 2, "hard_bc": True}
        )
    )
    assert "loss.boundary" not in hard.history


def test_deep_ritz_settings_and_forms():
    with pytest.raises(pl.ConfigError, match="penalty"):
        pl.run(tiny_config(method="deep-ritz", solver={"penalty": -1.0}))
    with pytest.raises(pl.UnknownNameError, match="Did you mean 'boundary'"):
        pl.run(tiny_config(method="deep-ritz", solver={"weights": {"boundry": 1.0}}))
    with pytest.raises(pl.ParameterError, match="reserved"):
        pl.EnergyForm(pl.Box(2), source=lambda x: x[:, 0], conditions={"interior": pl.Neumann(abs)})
    with pytest.raises(pl.ParameterError, match="stationary"):
        pl.EnergyForm(pl.SpaceTime(pl.Box(1)), source=lambda x: x[:, 0])


def test_slit_domain_samples_its_outer_boundary_and_the_slit():
    domain = pl.Slit(pl.Ball(2))
    y = domain.sample_boundary(20_000, generator=torch.Generator().manual_seed(0))
    on_slit = (y[:, 1].abs() < 1e-7) & (y[:, 0] >= 0) & (y[:, 0] <= 1)
    on_circle = ((y * y).sum(dim=1) - 1).abs() < 1e-5
    assert (on_slit | on_circle).all()
    assert abs(on_slit.float().mean().item() - 1 / (1 + 2 * math.pi)) < 0.01
    square = pl.Slit(pl.Box(2, -1.0, 1.0)).sample_boundary(
        4000, generator=torch.Generator().manual_seed(1)
    )
    assert ((square[:, 1] == 0) & (square[:, 0] >= 0)).float().mean() > 0.05
    with pytest.raises(pl.ParameterError, match="2-d Box or Ball"):
        pl.Slit(pl.Box(3))


class _Product(torch.nn.Module):
    """ψ = Πᵢ sin(π xᵢ) · (1 + ε b(x)): the well's ground state, perturbed for ε ≠ 0."""

    def __init__(self, eps: float):
        super().__init__()
        self.eps = torch.nn.Parameter(torch.tensor(eps, dtype=torch.float64))

    def forward(self, x):
        psi = torch.sin(math.pi * x).prod(dim=1)
        return (psi * (1 + self.eps * torch.cos(3 * x.sum(dim=1))))[:, None]


def test_the_rayleigh_quotient_of_the_ground_state_is_its_energy():
    """Eigenvalue form: the quotient of ψ₀ on the fixed sample is E₀ within 4 (delta-method)
    standard errors; perturbed states lie higher."""
    problem = pl.problem("infinite-well", dim=3)
    solver = DeepRitz(problem, validate(DeepRitzSettings, {}), dtype=torch.float64, hard_bc=True)
    exact = solver.metrics(_Product(0.0))
    e0 = 3 * math.pi**2 / 2
    assert solver.has_truth and exact["energy_stderr"] > 0
    assert abs(exact["energy"] - e0) < 4 * exact["energy_stderr"]
    assert exact["energy_rel_error"] < 1e-2
    for eps in EPSILONS:  # the same fixed points for every ε
        assert solver.metrics(_Product(eps))["energy"] > exact["energy"]


def test_deep_ritz_eigenvalue_form_trains_and_needs_the_exact_transform():
    cfg = dict(method="deep-ritz", dim=2, net={"width": 16, "depth": 2, "hard_bc": True})
    solution = pl.run(tiny_config("infinite-well", train={"steps": 200, "lr": 1e-2}, **cfg))
    assert set(solution.metrics) >= {"energy", "energy_stderr", "energy_rel_error"}
    assert "loss.boundary" not in solution.history
    h = solution.history["loss.energy"]
    assert np.mean(h[-20:]) < np.mean(h[:20])  # the quotient falls towards E₀ = π²
    assert solution.metrics["energy"] > math.pi**2 - 4 * solution.metrics["energy_stderr"]
    with pytest.raises(pl.ConfigError, match="penalty would shrink u to zero"):
        pl.run(tiny_config("infinite-well", method="deep-ritz", dim=2))


def test_deep_ritz_with_robin_conditions_reaches_the_solution():
    """The Robin parts enter the energy (and the ENGD Gram matrix): ENGD on a fixed Sobol
    sample reaches the exact solution to the sample's quadrature error."""
    cfg = pl.make_config(
        config={
            "problem": {"id": RobinSquare.id},
            "method": "deep-ritz",
            "solver": {"n_interior": 4096, "n_boundary": 1024, "sampling": "sobol"},
            "net": {"width": 16, "depth": 1, "activation": "tanh"},
            "train": {"phases": [{"optimizer": "engd", "steps": 40}], "eval_every": 40},
            "dtype": "float64",
            "device": "cpu",
        },
        problems_dirs=[RobinSquare],
    )
    solution = pl.run(cfg, problems_dirs=[RobinSquare])
    assert solution.metrics["rel_l2"] < 1e-2, solution.metrics


@pytest.mark.parametrize("alpha,beta,match", [(-1.0, 1.0, "a α/β < 0"), (1.0, 0.0, "β = 0")])
def test_a_robin_condition_without_a_bounded_energy_is_refused(alpha, beta, match):
    @dataclass(frozen=True)
    class Bad(pl.Problem):
        id = "test-bad-robin"
        dim: int = 1

        def energy_form(self):
            return pl.EnergyForm(
                domain=pl.Box(1),
                source=lambda x: x[:, 0],
                conditions={"end": pl.Robin(alpha, beta, lambda x: x[:, 0])},
            )

    with pytest.raises(pl.ConfigError, match=match):
        DeepRitz(Bad(), validate(DeepRitzSettings, {}), dtype=torch.float64)


@dataclass(frozen=True)
class RobinInterval(pl.Problem):
    """−((1 + x) u')' + u = f on (0, 1), u = cos x + x, with Robin conditions at both ends:
    u − 2u' = h₀ at x = 0 (∂u/∂n = −u') and 3u + u' = h₁ at x = 1."""

    id = "test-robin-interval"
    dim: int = 1

    def exact(self, x):
        return torch.cos(x[:, 0]) + x[:, 0]

    def energy_form(self):
        box = pl.Box(1)
        du = lambda x: 1 - torch.sin(x[:, 0])  # noqa: E731
        return pl.EnergyForm(
            domain=box,
            # −((1 + x) u')' = −u' − (1 + x) u'' with u'' = −cos x
            source=lambda x: -du(x) + (1 + x[:, 0]) * torch.cos(x[:, 0]) + self.exact(x),
            diffusion=lambda x: 1 + x[:, 0],
            reaction=1.0,
            conditions={
                "left": pl.Robin(
                    1.0, 2.0, lambda x: self.exact(x) - 2 * du(x), on=box.face(0, "low")
                ),
                "right": pl.Robin(
                    3.0, 1.0, lambda x: 3 * self.exact(x) + du(x), on=box.face(0, "high")
                ),
            },
        )


def test_the_robin_energy_is_stationary_at_the_exact_solution():
    """d/dε E[u* + εφ] = 0 at ε = 0 for perturbations φ free at both Robin ends, with the
    interior integral by the midpoint rule (error ~1e-11), so that a wrong boundary term
    (of size ~0.1 here) cannot hide in Monte Carlo noise."""
    problem = RobinInterval()
    solver = DeepRitz(problem, validate(DeepRitzSettings, {}), dtype=torch.float64)
    n = 200_000
    batch = {"interior": ((torch.arange(n, dtype=torch.float64) + 0.5) / n)[:, None]}
    g = torch.Generator().manual_seed(0)
    for name, c in solver.spec.conditions.items():
        batch[name] = solver.condition_points(c, 8, generator=g, dtype=torch.float64)
    for phi in (lambda x: torch.sin(3 * x) + x, lambda x: torch.ones_like(x), torch.exp):

        def energy(eps: float, phi=phi) -> float:
            net = lambda x: (problem.exact(x) + eps * phi(x[:, 0]))[:, None]  # noqa: E731
            return float(solver.energy(net, batch).detach())

        delta = 1e-3
        variation = (energy(delta) - energy(-delta)) / (2 * delta)
        assert abs(variation) < 1e-7, variation
