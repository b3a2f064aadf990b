"""The DeepXDE bridge: its derivatives are pinnlab's, its model is the catalogue's problem."""

from __future__ import annotations

import importlib.util
import math
import sys
from dataclasses import dataclass

import pytest
import torch

import pinnlab as pl
from pinnlab import metrics
from pinnlab.errors import FormError, PinnlabError, UnknownNameError
from pinnlab.interop import DeepXDEDerivatives, import_deepxde, to_deepxde
from pinnlab.interop.deepxde import default_device
from pinnlab.networks import MLP, build_network
from pinnlab.solvers.pinn import PINN, PINNSettings

needs_deepxde = pytest.mark.skipif(
    importlib.util.find_spec("deepxde") is None,
    reason="deepxde is not installed (pip install -e '.[dev]')",
)


@dataclass(frozen=True)
class Heat(pl.Problem):
    """∂ₜu = Δu on (0, 1) × (0, 1)^d, u = e^{−π²t/4} Σᵢ sin(π xᵢ/2); data on every part."""

    id = "test-heat"

    def exact(self, p):
        return torch.exp(-(math.pi**2) * p[:, 0] / 4) * torch.sin(math.pi * p[:, 1:] / 2).sum(1)

    def strong_form(self):
        data = pl.Dirichlet(self.exact)
        return pl.StrongForm(
            domain=pl.SpaceTime(pl.Box(self.dim)),
            residual=lambda d: {"heat": d.dt - d.laplacian},  # a named residual
            conditions={
                "boundary": data,
                "initial": pl.Dirichlet(self.exact, on="initial"),
                "final": pl.Dirichlet(self.exact, on="final"),
            },
        )


@needs_deepxde
@pytest.mark.parametrize("outputs", [1, 2])
@pytest.mark.parametrize("time_dependent", [False, True])
def test_adapter_matches_pinnlab_derivatives(time_dependent, outputs):
    """u, ∇u, Δu, ∂ₜu and tr(B Bᵀ∇²u) by deepxde.grad equal pinnlab's reference in float64."""
    dde = import_deepxde()
    g = torch.Generator().manual_seed(0)
    d, n = 3, 16
    dim = d + int(time_dependent)
    net = MLP(dim, outputs, 8, 2, "tanh", generator=g).double()
    points = torch.rand(n, dim, generator=g, dtype=torch.float64)
    ref = pl.Derivatives(net, points, method="reverse", time_dependent=time_dependent)

    # DeepXDE's layout puts time last.
    x = (torch.roll(points, -1, 1) if time_dependent else points).clone().requires_grad_(True)
    y = net(torch.roll(x, 1, 1) if time_dependent else x)
    ours = DeepXDEDerivatives(x, y, time_dependent=time_dependent)
    names = ["points", "x", "u", "grad", "laplacian"] + (["t", "dt"] if time_dependent else [])
    try:
        for name in names:
            torch.testing.assert_close(getattr(ours, name), getattr(ref, name), msg=name)
        for factor in (
            torch.randn(d, 2, generator=g, dtype=torch.float64),
            torch.randn(n, d, 2, generator=g, dtype=torch.float64),
        ):
            torch.testing.assert_close(ours.trace(factor), ref.trace(factor))
    finally:
        dde.grad.clear()


@needs_deepxde
def test_poisson_sine_model_is_the_catalogue_problem():
    """Same points, same start, same residual as pinnlab; the exact solution zeroes it; it trains."""
    dde = import_deepxde()
    problem = pl.problem("poisson-sine", dim=2)
    form = problem.strong_form()
    dx = to_deepxde(problem, n_interior=32, n_boundary=16, width=16, depth=2, seed=3)

    # Same points (pinnlab's first batch for the seed) and same initial weights.
    batch = PINN(problem, PINNSettings(n_interior=32, n_boundary=16), dtype=torch.float32).points(
        torch.Generator().manual_seed(3)
    )
    data = dx.model.data
    assert data.num_bcs == [16]
    torch.testing.assert_close(torch.from_numpy(data.train_x_bc), batch["boundary"])
    torch.testing.assert_close(torch.from_numpy(data.train_x_all[16:]), batch["residual"])
    init = build_network(2, 1, width=16, depth=2, generator=torch.Generator().manual_seed(3))
    for key, value in init.state_dict().items():
        torch.testing.assert_close(dx.network().state_dict()[key], value)

    try:
        # The exact solution makes DeepXDE's residual vanish (float64).
        x = metrics.test_points(problem)[:64].requires_grad_(True)
        (r,) = data.pde(x, problem.exact(x).unsqueeze(1))
        assert r.shape == (64, 1) and r.abs().max() < 1e-10
        dde.grad.clear()
        # On the network, DeepXDE's residual is pinnlab's.
        x = metrics.test_points(problem, dtype=torch.float32)[:64].requires_grad_(True)
        (r,) = data.pde(x, dx.net(x))
        d = pl.Derivatives(dx.network(), x.detach(), method="reverse")
        torch.testing.assert_close(r[:, 0], form.residual(d), rtol=1e-4, atol=1e-4)
    finally:
        dde.grad.clear()

    # Training runs, leaves torch's defaults alone, and the boundary loss at step 0 is pinnlab's.
    dx.train(2)
    dx.step(1)
    assert torch.get_default_dtype() == torch.float32 and torch.empty(0).device.type == "cpu"
    losses = dx.model.losshistory.loss_train
    assert len(losses) == 2 and all(torch.isfinite(torch.as_tensor(loss)).all() for loss in losses)
    solver = PINN(problem, PINNSettings(n_interior=32, n_boundary=16), dtype=torch.float32)
    with torch.no_grad():
        boundary = solver.loss(solver.bind(init), batch)["boundary"]
    assert losses[0][1] == pytest.approx(float(boundary), rel=1e-5)
    p = torch.rand(5, 2)
    torch.testing.assert_close(dx(p), dx.network()(p).squeeze(1).detach())


@needs_deepxde
@pytest.mark.slow
def test_time_dependent_model():
    """Time goes last in DeepXDE; each condition gets its own points; u(t, x) round-trips."""
    dde = import_deepxde()
    problem = Heat(dim=2)
    dx = to_deepxde(problem, n_interior=24, n_boundary=8, width=8, depth=2)
    assert dx.model.data.num_bcs == [8, 8, 8]
    x_bc = torch.from_numpy(dx.model.data.train_x_bc)
    assert (x_bc[8:16, -1] == 0).all() and (x_bc[16:, -1] == 1).all()
    try:
        p = torch.rand(32, 3, dtype=torch.float64)
        x = torch.roll(p, -1, 1).requires_grad_(True)
        (r,) = dx.model.data.pde(x, problem.exact(torch.roll(x, 1, 1)).unsqueeze(1))
        assert r.abs().max() < 1e-10
    finally:
        dde.grad.clear()
    dx.step(2)
    p = torch.rand(5, 3)
    torch.testing.assert_close(dx(p), dx.network()(p).squeeze(1).detach())


@dataclass(frozen=True)
class _Weird(pl.Domain):
    dim: int = 2

    def sample_interior(self, n, *, generator, dtype=torch.float32, sampling="uniform"):
        return torch.rand(n, self.dim, generator=generator, dtype=dtype)

    sample_boundary = sample_interior

    def distance(self, x):
        return torch.ones_like(x[:, 0])

    @property
    def volume(self):
        return 1.0


@dataclass(frozen=True)
class _OnWeird(pl.Problem):
    id = "test-weird"

    def strong_form(self):
        return pl.StrongForm(domain=_Weird(), residual=lambda d: d.laplacian)


@dataclass(frozen=True)
class _NoStrongForm(pl.Problem):
    id = "test-energy-only"

    def energy_form(self):
        return None


@needs_deepxde
def test_unsupported_problems_fail_clearly():
    with pytest.raises(UnknownNameError, match="Available: Ball, Box, SpaceTime"):
        to_deepxde(_OnWeird())
    with pytest.raises(FormError, match="strong form"):
        to_deepxde(_NoStrongForm())


def test_missing_deepxde_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "deepxde", None)  # makes `import deepxde` fail
    with pytest.raises(PinnlabError, match="pip install deepxde"):
        import_deepxde()


def test_default_device_context_restores():
    with default_device(torch.device("meta")):
        assert torch.empty(0).device.type == "meta"
    assert torch.empty(0).device.type == "cpu"
