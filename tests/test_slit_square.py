"""poisson-slit-square: the finite-difference reference of E & Yu's slit-square example."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

import pinnlab as pl


def _module():
    return sys.modules[pl.catalogue()["poisson-slit-square"].__module__]


def test_the_grid_solution_converges_at_first_order():
    """The crack leaves an O(h) error: differences between successive grids halve."""
    grid = _module().slit_square_grid
    u = {n: grid(n) for n in (32, 64, 128)}
    diff = [np.linalg.norm(u[2 * n][::2, ::2] - u[n]) / np.linalg.norm(u[n]) for n in (32, 64)]
    assert 1.6 < diff[0] / diff[1] < 2.6
    # The extrapolation removes most of the first-order error.
    r64 = 2 * u[64][::2, ::2] - u[32]
    r128 = 2 * u[128][::2, ::2] - u[64]
    assert np.linalg.norm(r128[::2, ::2] - r64) < 0.5 * diff[1] * np.linalg.norm(u[64])


def test_the_grid_solution_has_the_problem_s_structure():
    u = _module().slit_square_grid(64)
    assert (u[1:-1, 1:-1][u[1:-1, 1:-1] != 0] > 0).all()  # −Δu = 1 > 0: positive inside
    assert np.allclose(u, u[:, ::-1])  # symmetric about the slit's line
    assert np.all(u[32:, 32] == 0) and np.all(u[0] == 0) and np.all(u[:, -1] == 0)
    assert u[16, 32] > 0.1  # the left half of y = 0 is not a boundary
    with pytest.raises(pl.ParameterError, match="even n"):
        _module().slit_square_grid(33)


def test_the_reference_is_cached_and_used_by_the_metrics(monkeypatch):
    monkeypatch.setattr(_module(), "REFERENCE_GRID", 64)
    monkeypatch.setattr(_module(), "REFERENCE_POINTS", 256)
    problem = pl.problem("poisson-slit-square")
    ref = problem.reference()
    assert ref.x.shape == (256, 2) and torch.isfinite(ref.value).all()
    assert (ref.value >= 0).all() and ref.value.max() > 0.1
    assert torch.equal(problem.reference().value, ref.value)  # from the cache
    sol = pl.solve(
        "poisson-slit-square",
        method="deep-ritz",
        net={"width": 8, "depth": 2},
        train={"steps": 3},
        solver={"n_interior": 64, "n_boundary": 64},
    )
    assert {"ref_rel_l2", "ref_rel_l1"} <= set(sol.metrics)


def test_the_slit_distance_vanishes_on_the_whole_boundary_and_only_there():
    domain = pl.Slit(pl.Box(2, -1.0, 1.0))
    g = torch.Generator().manual_seed(0)
    boundary = domain.sample_boundary(512, generator=g, dtype=torch.float64)
    inside = domain.sample_interior(512, generator=g, dtype=torch.float64)
    assert domain.distance(boundary).abs().max() < 1e-12
    assert (domain.distance(inside) > 0).all()
    # Beside the slit it grows like |η| (not like |η|^{1/2}), without cancellation in float32.
    x = torch.tensor([[0.5, 1e-3], [0.5, 2e-3], [0.5, 1e-5]], dtype=torch.float32)
    phi = domain.distance(x)
    assert 1.9 < float(phi[1] / phi[0]) < 2.1 and phi[2] > 0
    x.requires_grad_(True)
    (grad,) = torch.autograd.grad(domain.distance(x).sum(), x)
    assert torch.isfinite(grad).all()
