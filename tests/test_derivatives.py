"""Every derivative method against dense torch.func Jacobians and Hessians, in float64."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.func import hessian, jacrev, vmap

import pinnlab as pl
from pinnlab.derivatives import METHODS
from pinnlab.networks import (
    ACTIVATIONS,
    MLP,
    DirichletTransform,
    OutputAffine,
    ResidualMLP,
    build_network,
)

N, D = 5, 3  # points, spatial dimension
TOL = dict(rtol=1e-9, atol=1e-10)


class Custom(nn.Module):
    """A plain module without forward_jet, mixing features: exercises the torch.func fallback."""

    def __init__(self, in_dim: int, out_dim: int, generator: torch.Generator):
        super().__init__()
        self.a = nn.Parameter(torch.randn(6, in_dim, generator=generator) / in_dim**0.5)
        self.b = nn.Parameter(torch.randn(out_dim, 6, generator=generator) / 6**0.5)

    def forward(self, x):
        h = x @ self.a.T
        h = h * torch.sigmoid(h) + torch.sin(h) * h[:, :1]
        return h @ self.b.T + (x * x).sum(dim=1, keepdim=True)


def make_net(kind: str, in_dim: int, out_dim: int) -> nn.Module:
    g = torch.Generator().manual_seed(7)
    small = dict(width=8, depth=2, generator=g)
    if kind.startswith("mlp-"):
        net = MLP(in_dim, out_dim, activation=kind[4:], **small)
    elif kind == "resmlp":
        net = ResidualMLP(in_dim, out_dim, width=8, depth=3, activation="silu", generator=g)
    elif kind == "fourier-mlp":
        net = build_network(
            in_dim, out_dim, fourier_features=4, fourier_scale=0.5, activation="sin", **small
        )
    elif kind == "fourier-resmlp":
        net = build_network(in_dim, out_dim, kind="resmlp", fourier_features=3, **small)
    elif kind == "dirichlet-box":
        net = DirichletTransform(
            MLP(in_dim, out_dim, **small),
            pl.Box(in_dim).distance,
            lambda x: torch.sin(x).sum(dim=1) + x[:, 0] ** 3,
        )
    elif kind == "dirichlet-ball":
        net = DirichletTransform(
            ResidualMLP(in_dim, out_dim, **small),
            pl.Ball(in_dim, radius=2.0).distance,
            lambda x: torch.cos(x[:, :1]) * x[:, -1:] ** 2,  # (n, 1) lift
        )
    elif kind == "output-affine":
        shift = torch.linspace(1.0, 2.0, out_dim, dtype=torch.float64)
        net = OutputAffine(MLP(in_dim, out_dim, **small), shift, 3.0 + shift)
    elif kind == "custom":
        net = Custom(in_dim, out_dim, g)
    elif kind == "sequential":  # nn.Sequential of layers without forward_jet (nn.Tanh)
        net = nn.Sequential(nn.Linear(in_dim, 8), nn.Tanh(), nn.Linear(8, out_dim))
    else:
        raise AssertionError(kind)
    return net.double()


NETS = [
    *(f"mlp-{a}" for a in ACTIVATIONS),
    "resmlp",
    "fourier-mlp",
    "fourier-resmlp",
    "dirichlet-box",
    "dirichlet-ball",
    "output-affine",
    "custom",
    "sequential",
]


def points(in_dim: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return 0.1 + 0.8 * torch.rand(N, in_dim, generator=g, dtype=torch.float64)


def dense(net, x):
    """u (n, k), Jacobian (n, k, D), Hessian (n, k, D, D) by torch.func."""

    def single(xi):
        return net(xi[None])[0]

    with torch.no_grad():
        return net(x), vmap(jacrev(single))(x), vmap(hessian(single))(x)


def squeeze(a):
    return a.squeeze(1) if a.shape[1] == 1 else a


@pytest.fixture(params=[1, 2], ids=["scalar", "two-outputs"])
def out_dim(request):
    return request.param


@pytest.fixture(params=[False, True], ids=["space", "space-time"])
def time_dependent(request):
    return request.param


@pytest.mark.parametrize("method", list(METHODS))
@pytest.mark.parametrize("kind", NETS)
def test_method_matches_dense_derivatives(kind, method, out_dim, time_dependent):
    s = int(time_dependent)
    net = make_net(kind, D + s, out_dim)
    x = points(D + s)
    u, jac, hess = dense(net, x)
    hs = hess[..., s:, s:]  # spatial block
    d = pl.Derivatives(net, x, method=method, time_dependent=time_dependent)

    torch.testing.assert_close(d.u, squeeze(u), **TOL)
    grad = jac[:, :, s:]
    torch.testing.assert_close(d.grad, grad[:, 0] if out_dim == 1 else grad, **TOL)
    lap = hs.diagonal(dim1=-2, dim2=-1).sum(-1)
    torch.testing.assert_close(d.laplacian, squeeze(lap), **TOL)

    g = torch.Generator().manual_seed(3)
    b_const = torch.randn(D, 4, generator=g, dtype=torch.float64)
    expected = torch.einsum("nkij,im,jm->nk", hs, b_const, b_const)
    torch.testing.assert_close(d.trace(b_const), squeeze(expected), **TOL)
    b_point = torch.randn(N, D, 2, generator=g, dtype=torch.float64)
    expected = torch.einsum("nkij,nim,njm->nk", hs, b_point, b_point)
    torch.testing.assert_close(d.trace(b_point), squeeze(expected), **TOL)

    if time_dependent:
        torch.testing.assert_close(d.t, x[:, 0])
        torch.testing.assert_close(d.x, x[:, 1:])
        torch.testing.assert_close(d.dt, squeeze(jac[:, :, 0]), **TOL)
        # The Laplacian leaves out ∂²u/∂t², which is not zero for these networks.
        full = hess.diagonal(dim1=-2, dim2=-1).sum(-1)
        assert not torch.allclose(d.laplacian, squeeze(full))
    else:
        torch.testing.assert_close(d.x, x)


@pytest.mark.parametrize("kind", NETS)
def test_forward_equals_reverse_including_parameter_gradients(kind, out_dim, time_dependent):
    """Both methods give the same values, and the same gradients with respect to the weights
    (what training differentiates)."""
    s = int(time_dependent)
    net = make_net(kind, D + s, out_dim)
    x = points(D + s, seed=1)
    b = torch.randn(N, D, 2, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    results = {}
    for method in ("forward", "reverse"):
        d = pl.Derivatives(net, x, method=method, time_dependent=time_dependent)
        values = [d.u, d.grad, d.laplacian, d.trace(b)] + ([d.dt] if time_dependent else [])
        loss = sum((v * v).sum() for v in values)
        grads = torch.autograd.grad(loss, list(net.parameters()))
        results[method] = ([v.detach() for v in values], grads)
    for a, b_ in zip(*(results[m][0] for m in ("forward", "reverse")), strict=True):
        torch.testing.assert_close(a, b_, **TOL)
    for a, b_ in zip(*(results[m][1] for m in ("forward", "reverse")), strict=True):
        torch.testing.assert_close(a, b_, **TOL)


@pytest.mark.parametrize("method", list(METHODS))
def test_float32_points_give_float32_derivatives(method):
    net = make_net("mlp-tanh", D, 1).float()
    x = points(D).float()
    d = pl.Derivatives(net, x, method=method)
    assert d.u.dtype == d.grad.dtype == d.laplacian.dtype == torch.float32
    assert d.u.shape == (N,) and d.grad.shape == (N, D) and d.laplacian.shape == (N,)
    ref = pl.Derivatives(net.double(), x.double(), method="reverse")
    torch.testing.assert_close(d.laplacian.double(), ref.laplacian, rtol=1e-4, atol=1e-4)


def test_derivative_errors():
    net = make_net("mlp-tanh", D, 1)
    x = points(D)
    with pytest.raises(pl.ShapeError, match=r"points must have shape \(n, dim\)"):
        pl.Derivatives(net, x[0])
    with pytest.raises(pl.UnknownNameError, match="Did you mean 'forward'"):
        pl.Derivatives(net, x, method="froward")
    d = pl.Derivatives(net, x)
    with pytest.raises(pl.ShapeError, match="only defined for time-dependent"):
        _ = d.t
    with pytest.raises(pl.ShapeError, match="factor B must have shape"):
        d.trace(torch.ones(D + 1, 2, dtype=torch.float64))
    with pytest.raises(pl.ShapeError, match="factor B must have shape"):
        d.trace(torch.ones(D, dtype=torch.float64))


@pytest.mark.parametrize("kind", ["mlp-tanh", "resmlp", "fourier-mlp"])
def test_forward_mode_double_backward_matches_reverse(kind):
    """Second derivatives of a Laplacian loss with respect to the weights (double backward)."""
    net = make_net(kind, D, 1)
    x = points(D)
    params = list(net.parameters())

    def hessian_vector_norm(method):
        loss = pl.Derivatives(net, x, method=method).laplacian.square().sum()
        grads = torch.autograd.grad(loss, params, create_graph=True, allow_unused=True)
        total = sum(g.square().sum() for g in grads if g is not None)
        second = torch.autograd.grad(total, params, allow_unused=True)
        return torch.cat(
            [
                (s if s is not None else torch.zeros_like(p)).flatten()
                for s, p in zip(second, params, strict=True)
            ]
        )

    torch.testing.assert_close(
        hessian_vector_norm("forward"), hessian_vector_norm("reverse"), **TOL
    )
