"""The derivatives the solvers and metrics take outside a residual go through the engine
(pinnlab.derivatives): each one against a dense torch.func reference, in float64."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.func import jacrev

import pinnlab as pl
from pinnlab import metrics
from pinnlab.derivatives import gradient, partial_derivative
from pinnlab.derivatives.exact import ReverseMode
from pinnlab.networks import MLP, DirichletTransform, OutputAffine, PeriodicEmbedding, ResidualMLP
from pinnlab.solvers import PINN, FeynmanKac

TOL = dict(rtol=1e-10, atol=1e-12)


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def rowwise_jacobian(fn, x: torch.Tensor, dense=jacrev) -> torch.Tensor:
    """∂fn(x)_i/∂x_i for a row-wise fn: the diagonal blocks of the dense Jacobian (torch.func
    by default), with the shape fn(x).shape + (D,)."""
    dense = dense(fn)(x)  # v.shape + (n, D)
    rows = torch.arange(len(x))
    moved = dense.movedim(-2, 1)  # (n, n, [k,] D): row i, column j
    return moved[rows, rows]


def autograd_dense(fn):
    """The dense Jacobian by torch.autograd.functional (every entry of v on its own)."""
    return lambda x: torch.autograd.functional.jacobian(fn, x)


def networks(dim: int, outputs: int) -> dict[str, nn.Module]:
    """Small float64 networks of every structure the engine propagates through."""
    small = dict(width=6, depth=2)
    box = pl.Box(dim, -1.0, 1.0)
    return {
        "mlp-tanh": MLP(dim, outputs, activation="tanh", generator=gen(1), **small),
        "resmlp-silu": ResidualMLP(dim, outputs, activation="silu", generator=gen(2), **small),
        "periodic-embedding": nn.Sequential(
            PeriodicEmbedding(dim, dim - 1, -1.0, 1.0, 2),
            MLP(dim - 1 + 4, outputs, generator=gen(3), **small),
        ),
        "dirichlet": DirichletTransform(
            MLP(dim, outputs, generator=gen(4), **small), box, lambda x: x.sin().sum(dim=1)
        ),
        "output-affine": OutputAffine(
            MLP(dim, outputs, generator=gen(5), **small),
            torch.linspace(-1, 1, outputs),
            torch.linspace(1, 2, outputs),
        ),
    }


def plain(x: torch.Tensor) -> torch.Tensor:
    """A plain callable (no module, no forward_jet): the torch.func fallback."""
    return torch.stack([x.sin().prod(dim=1), (x * x).sum(dim=1) * x[:, 0]], dim=1)


# --- the engine's pieces ------------------------------------------------------------------
@pytest.mark.parametrize("kind", [*networks(3, 2), "plain"])
def test_partial_derivative_is_one_column_of_the_jacobian(kind):
    net = plain if kind == "plain" else networks(3, 2)[kind].double()
    x = torch.rand(7, 3, generator=gen(6), dtype=torch.float64) * 2 - 1
    ref = rowwise_jacobian(net, x)  # (n, k, D)
    for column in range(3):
        u, du = partial_derivative(net, x, column)
        torch.testing.assert_close(u, net(x), **TOL)
        torch.testing.assert_close(du, ref[..., column], **TOL)


@pytest.mark.parametrize("graph", [False, True])
def test_gradient_of_a_callable_is_its_rowwise_jacobian(graph):
    x = torch.rand(6, 4, generator=gen(7), dtype=torch.float64)
    net = MLP(4, 2, width=5, depth=2, generator=gen(8)).double()
    for fn in (lambda y: y.sin().sum(dim=1) * y[:, 0], net, lambda y: net(y)[:, 1]):
        v, jac = gradient(fn, x, create_graph=graph)
        assert v.shape == fn(x).shape and jac.shape == (*v.shape, 4)
        torch.testing.assert_close(v, fn(x), **TOL)
        torch.testing.assert_close(jac, rowwise_jacobian(fn, x), **TOL)
        assert jac.requires_grad == graph
    # the value keeps its graph to the parameters; the Jacobian has none of its own by default
    v, jac = gradient(net, x)
    assert v.requires_grad and not jac.requires_grad
    with torch.no_grad():
        v, jac = gradient(net, x)
    assert not v.requires_grad and not jac.requires_grad


def test_reverse_mode_gives_zero_for_an_output_constant_in_x():
    """u = (x₀², 1): the second output has no graph to x at all; its derivatives are 0."""
    x = torch.rand(5, 3, generator=gen(9), dtype=torch.float64)

    def fn(y: torch.Tensor) -> torch.Tensor:
        return torch.stack([y[:, 0] ** 2, torch.ones_like(y[:, 0])], dim=1)

    jet = ReverseMode().jet(fn, x, None, None, 2)
    jac = torch.zeros(5, 3, 2, dtype=torch.float64)
    jac[:, 0, 0] = 2 * x[:, 0]
    torch.testing.assert_close(jet.reduced_jac, jac, **TOL)
    torch.testing.assert_close(jet.lap, torch.tensor([[2.0, 0.0]] * 5, dtype=torch.float64))
    _, g = gradient(fn, x)
    torch.testing.assert_close(g, jac.transpose(1, 2), **TOL)


# --- 1. the soft periodic condition -------------------------------------------------------
def test_periodic_terms_against_the_dense_jacobian():
    """nls: space-time, two outputs, Periodic in x (input column 1)."""
    problem = pl.problem("nls")
    solver = PINN(problem, PINN.Settings(n_interior=16, n_boundary=24), dtype=torch.float64)
    net = MLP(2, 2, width=8, depth=2, generator=gen(10)).double()
    model = solver.setup(net, gen())
    batch = solver.batch(model, gen(11))
    terms = solver.periodic_terms(model.module, batch)
    assert list(terms) == ["periodic", "periodic_dx"]

    y, n, L = batch["periodic"], len(batch["periodic"]), problem.half_width
    ends = torch.cat([y, y])
    ends[:n, 1], ends[n:, 1] = -L, L
    u = model.module(ends)
    ux = rowwise_jacobian(model.module, ends)[..., 1]  # ∂/∂x, not ∂/∂t
    want = {
        "periodic": (u[:n] - u[n:]).square().mean(),
        "periodic_dx": (ux[:n] - ux[n:]).square().mean(),
    }
    assert float(want["periodic_dx"].detach()) > 1e-4  # a generic network: a real mismatch
    for name in want:
        torch.testing.assert_close(terms[name], want[name], **TOL)
        # the loss differentiates them in the weights as the reference does
        kw = dict(retain_graph=True, allow_unused=True, materialize_grads=True)
        mine = torch.autograd.grad(terms[name], list(net.parameters()), **kw)
        ref = torch.autograd.grad(want[name], list(net.parameters()), **kw)
        for a, b in zip(mine, ref, strict=True):
            torch.testing.assert_close(a, b, **TOL)


# --- 2. the Feynman–Kac control variate ---------------------------------------------------
def test_feynman_kac_control_variate_uses_the_gradient_of_n_detached():
    problem = pl.problem("bs-geometric-basket", dim=3)
    solver = FeynmanKac(problem, FeynmanKac.Settings(n_samples=32), dtype=torch.float64)
    assert solver.control
    model = solver.setup(MLP(3, 1, width=8, depth=2, generator=gen(12)).double(), gen())
    net = model.module
    batch = solver.batch(model, gen(13))
    u, y = solver._fit(net, batch)

    x = batch["x"]
    grad = rowwise_jacobian(lambda z: net(z)[:, 0], x)  # ∇N (n, d)
    y_ref = batch["target"] - (batch["shift"] * grad).sum(dim=1)
    assert float((grad * batch["shift"]).abs().max().detach()) > 1e-3  # the correction is not nil
    torch.testing.assert_close(u, net(x)[:, 0], **TOL)
    torch.testing.assert_close(y, y_ref.detach(), **TOL)
    assert u.requires_grad and not y.requires_grad  # ∇N enters as data
    loss = solver.loss(model, batch)["regression"]
    params = list(net.parameters())
    mine = torch.autograd.grad(loss, params)
    ref = torch.autograd.grad((net(x)[:, 0] - y_ref.detach()).square().mean(), params)
    for a, b in zip(mine, ref, strict=True):
        torch.testing.assert_close(a, b, **TOL)


# --- 3. the exact solution's gradient in the metrics --------------------------------------
@pytest.mark.parametrize(
    "problem_id, params",
    [
        ("poisson-ridge", {"dim": 5}),
        ("poisson-ball", {"dim": 3}),
        ("bs-geometric-basket", {"dim": 2}),  # space-time, scalar
        ("nls", {}),  # space-time, two outputs
    ],
)
def test_exact_with_grad_against_the_dense_jacobian(problem_id, params):
    problem = pl.problem(problem_id, **params)
    x = metrics.test_points(problem, n=12)
    u, g = metrics.exact_with_grad(problem, x, problem.time_dependent)
    value = problem.exact(x)
    # nls: the split-step truth reads t through numpy, which torch.func cannot trace; its
    # dense Jacobian by torch.autograd.functional (entry by entry), and central differences
    dense = autograd_dense if problem_id == "nls" else jacrev
    ref = rowwise_jacobian(problem.exact, x, dense=dense)
    if problem.time_dependent:
        ref = ref[..., 1:]
    assert u.shape == value.shape and g.shape == (*value.shape, problem.dim)
    assert not u.requires_grad and not g.requires_grad
    torch.testing.assert_close(u, value, **TOL)
    torch.testing.assert_close(g, ref, rtol=1e-9, atol=1e-11)
    if problem_id == "nls":
        h, step = 1e-5, torch.zeros_like(x)
        step[:, 1] = h
        fd = (problem.exact(x + step) - problem.exact(x - step)) / (2 * h)
        torch.testing.assert_close(g[..., 0], fd, rtol=1e-5, atol=1e-6)


# --- 4. the source's gradients for a bottleneck basis ------------------------------------
def test_source_gradients_are_minus_the_gradient_of_f():
    """−Δu = f: the residual of u ≡ 0 is −f, its gradient −∇f."""
    problem = pl.problem("poisson-ridge", dim=4)
    solver = PINN(problem, PINN.Settings(), dtype=torch.float64)
    g = solver.source_gradients()
    x = solver._startup_points(torch.float64)
    ref = -rowwise_jacobian(problem.source, x)
    assert g.shape == (256, 4) and g.dtype == torch.float64 and not g.requires_grad
    torch.testing.assert_close(g, ref, **TOL)


def test_source_gradients_stack_the_components(user_dir):
    """test-pair: residuals −Δu₁ + 2d and −Δu₂ − Σ sin xᵢ: gradients 0 and −cos x, stacked
    component by component."""
    problem = pl.catalogue([user_dir]).problem("test-pair", dim=3)
    solver = PINN(problem, PINN.Settings(), dtype=torch.float64)
    g = solver.source_gradients()
    x = solver._startup_points(torch.float64)
    assert g.shape == (2 * 256, 3)
    torch.testing.assert_close(g[:256], torch.zeros_like(x), **TOL)
    torch.testing.assert_close(g[256:], -rowwise_jacobian(lambda y: y.sin().sum(dim=1), x), **TOL)
