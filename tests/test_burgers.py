"""The Cole–Hopf truth of the Burgers benchmark: its quadrature's convergence and the published
value of the steepest gradient."""

from __future__ import annotations

import math

import torch

import pinnlab as pl
from pinnlab.parts import sample

BURGERS = pl.catalogue()["burgers"]()


def points(n: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    t = torch.rand(n, generator=g, dtype=torch.float64)
    x = 2 * torch.rand(n, generator=g, dtype=torch.float64) - 1
    return torch.stack([t, x], dim=1)


def test_quadrature_has_converged():
    """Halving the step and doubling the range of the trapezoidal rule change u by < 1e-13;
    a rule 4× coarser still agrees to 1e-12 (geometric convergence), one that cuts the range
    to |z| ≤ 4 does not (the check can fail)."""
    tx = points(4000)
    u = BURGERS.exact(tx)
    finer = BURGERS._cole_hopf(tx, z_max=32.0, h=0.025)
    assert float((finer - u).abs().max()) < 1e-13
    assert float((BURGERS._cole_hopf(tx, h=0.2) - u).abs().max()) < 1e-12
    assert float((BURGERS._cole_hopf(tx, z_max=4.0) - u).abs().max()) > 1e-3


def test_steepest_gradient_is_basdevant_et_al():
    """max |uₓ| = 152.00516 at t = 1.6037/π, at x = 0 (Basdevant et al., Computers & Fluids 14
    (1986) 23, ν = 0.01/π)."""
    x = torch.linspace(-2e-3, 2e-3, 4001, dtype=torch.float64, requires_grad=True)
    t = torch.full_like(x, 1.6037 / math.pi)
    (ux,) = torch.autograd.grad(BURGERS.exact(torch.stack([t, x], dim=1)).sum(), x)
    assert abs(float(ux.abs().max()) - 152.00516) < 1e-4
    assert abs(float(x.detach()[ux.abs().argmax()])) < 1e-5


def test_data_and_symmetry():
    """u(0, x) = −sin πx, u(t, ±1) = 0 and u(t, −x) = −u(t, x)."""
    tx = points(500, seed=1)
    at_zero = torch.stack([torch.zeros_like(tx[:, 1]), tx[:, 1]], dim=1)
    assert torch.allclose(BURGERS.exact(at_zero), -torch.sin(math.pi * tx[:, 1]), atol=1e-14)
    domain = BURGERS.strong_form().domain
    y, _ = sample(domain, "boundary", 200, generator=torch.Generator().manual_seed(2))
    assert float(BURGERS.exact(y.double()).abs().max()) < 1e-12
    mirrored = tx * torch.tensor([1.0, -1.0], dtype=torch.float64)
    assert torch.allclose(BURGERS.exact(mirrored), -BURGERS.exact(tx), atol=1e-13)
