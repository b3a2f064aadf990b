"""The finite-difference baseline: second-order convergence, exactness on quadratics, the cost
model and the refusals."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch

import pinnlab as pl
from pinnlab.studies.grid import GridModel, GridSolve, convergence, fit_grid, solve_grid


@dataclass(frozen=True)
class _Local(pl.Problem):
    """−Δu = 1 on the unit square with u = 0 on the boundary; variants drop what the grid
    solver needs (no exact solution, a variable coefficient, a Neumann condition)."""

    id = "test-grid-local"
    variant: str = "no-exact"

    def energy_form(self) -> pl.EnergyForm:
        one = lambda x: torch.ones_like(x[:, 0])  # noqa: E731
        zero = lambda x: torch.zeros_like(x[:, 0])  # noqa: E731
        conditions = {
            "boundary": pl.Neumann(zero) if self.variant == "neumann" else pl.Dirichlet(zero)
        }
        diffusion = one if self.variant == "variable" else 1.0
        return pl.EnergyForm(pl.Box(2), one, diffusion=diffusion, conditions=conditions)


@dataclass(frozen=True)
class _LocalExact(_Local):
    def exact(self, x):
        return torch.zeros_like(x[:, 0])


@pytest.mark.parametrize(("dim", "sizes"), [(1, (8, 16, 32)), (2, (8, 16, 32)), (3, (6, 12, 24))])
def test_sine_converges_at_second_order(dim, sizes):
    solves = convergence(pl.problem("poisson-sine", dim=dim), sizes)
    assert [s.n for s in solves] == list(sizes)
    assert [s.unknowns for s in solves] == [n**dim for n in sizes]
    errors = [s.rel_l2 for s in solves]
    assert errors == sorted(errors, reverse=True) and errors[-1] < 1e-4
    assert all(s.max_abs > 0 and s.seconds > 0 for s in solves)
    model = fit_grid(solves)
    assert model.dim == dim
    assert 1.8 <= model.order <= 2.2


@pytest.mark.parametrize(("dim", "sizes"), [(2, (8, 16, 32)), (3, (6, 10, 16))])
def test_ball_converges(dim, sizes):
    solves = convergence(pl.problem("poisson-ball", dim=dim), sizes)
    # Only nodes inside the ball are unknowns: about its share of the bounding box.
    share = pl.Ball(dim).volume / 2**dim
    assert all(0.5 * share < s.unknowns / s.n**dim < 1.0 for s in solves)
    assert fit_grid(solves).order >= 1.5
    assert solves[-1].rel_l2 < 1e-2


@pytest.mark.parametrize(("dim", "n"), [(2, 9), (3, 5)])
def test_quadratic_is_exact(dim, n):
    solve = solve_grid(pl.problem("poisson-quadratic", dim=dim), n)
    assert solve.rel_l2 < 1e-10 and solve.max_abs < 1e-10


def test_conjugate_gradients_above_the_direct_limit():
    """Above 50,000 unknowns CG takes over and keeps the second-order error."""
    p = pl.problem("poisson-sine", dim=2)
    coarse, fine = solve_grid(p, 32), solve_grid(p, 230)
    assert fine.unknowns == 230**2 > 50_000
    assert fine.rel_l2 == pytest.approx(coarse.rel_l2 * (33 / 231) ** 2, rel=0.05)


def test_model_from_synthetic_solves():
    solves = [
        GridSolve(
            dim=2,
            n=n,
            unknowns=n**2,
            rel_l2=3.0 * n**-2.0,
            rel_l2_centered=0.0,
            max_abs=0.0,
            seconds=1e-6 * n**3,
        )
        for n in (8, 16, 32, 64)
    ]
    model = fit_grid(solves)
    assert model.order == pytest.approx(2.0, rel=1e-9)
    assert model.constant == pytest.approx(3.0, rel=1e-9)
    assert model.time_exponent == pytest.approx(1.5, rel=1e-9)
    assert model.seconds_per_unknown == pytest.approx(1e-6, rel=1e-6)
    assert model.points_for(3e-4, 5) == pytest.approx(100.0**5, rel=1e-6)
    assert model.points_for(3e-4, 1) == pytest.approx(100.0, rel=1e-6)
    assert model.seconds_for(3e-4, 5) == pytest.approx(1e-6 * (100.0**5) ** 1.5, rel=1e-6)
    direct = GridModel(dim=2, constant=3.0, order=2.0, seconds_per_unknown=1.0, time_exponent=1.0)
    assert direct.points_for(3e-4, 5) == pytest.approx(100.0**5, rel=1e-6)


def test_fit_needs_one_dimension_and_two_sizes():
    one = GridSolve(
        dim=2, n=8, unknowns=64, rel_l2=1e-3, rel_l2_centered=1e-3, max_abs=1e-3, seconds=1e-3
    )
    with pytest.raises(pl.ConfigError, match="two distinct"):
        fit_grid([one, one])
    with pytest.raises(pl.ConfigError, match="one dimension"):
        fit_grid([one, GridSolve(3, 8, 512, 1e-3, 1e-3, 1e-3, 1e-3)])


@pytest.mark.parametrize(
    ("problem", "n", "match"),
    [
        (pl.problem("poisson-sine", dim=2), 1, "n ≥ 2"),
        (pl.problem("poisson-sine", dim=3), 200, "5,000,000"),
        (pl.problem("heat-norm", dim=2), 8, "energy form"),
        (_Local(variant="no-exact"), 8, "exact solution"),
        (_LocalExact(variant="variable"), 8, "constant numeric diffusion"),
        (_LocalExact(variant="neumann"), 8, "Neumann"),
    ],
)
def test_refusals(problem, n, match):
    with pytest.raises(pl.ConfigError, match=match):
        solve_grid(problem, n)
