"""``d.partial``, ``d.jacobian`` and ``d.hessian`` against nested torch.func derivatives in
float64: every partial of order ≤ 4 of every network the derivative tests build (read from
the registries), one and two outputs, space and space-time."""

from __future__ import annotations

import itertools

import pytest
import torch
from test_derivatives import NETS, make_net
from torch.func import jacfwd, vmap

import pinnlab as pl

N, D = 3, 2  # points, spatial dimension
TOL = dict(rtol=1e-8, atol=1e-9)


def dense_tensors(net, x):
    """Per point: u (k,), then its derivative tensors of order 1 … 4, (k, D, …, D)."""

    def single(y):
        return net(y[None]).reshape(-1)

    orders, f = [], single
    for _ in range(4):
        f = jacfwd(f)
        orders.append(vmap(f)(x))
    return orders


@pytest.mark.filterwarnings("ignore:the first-layer reduction does not apply")
@pytest.mark.parametrize(
    ("out_dim", "time_dependent"),
    [(1, False), (2, True), (1, True)],
    ids=["scalar-space", "two-outputs-space-time", "scalar-space-time"],
)
@pytest.mark.parametrize("kind", NETS)
def test_every_partial_up_to_order_four_matches_torch_func(kind, out_dim, time_dependent):
    s = int(time_dependent)
    net = make_net(kind, D + s, out_dim)
    g = torch.Generator().manual_seed(11)
    x = 0.1 + 0.8 * torch.rand(N, D + s, generator=g, dtype=torch.float64)
    tensors = dense_tensors(net, x)
    d = pl.Derivatives(net, x, time_dependent=time_dependent)
    names = [*range(D), *(["t"] if time_dependent else [])]
    column = {a: (a + s if a != "t" else 0) for a in names}
    for order in range(1, 5):
        for axes in itertools.combinations_with_replacement(names, order):
            index = (slice(None), slice(None), *(column[a] for a in axes))
            expected = tensors[order - 1][index]  # (n, k)
            got = d.partial(*axes)
            want = expected[:, 0] if out_dim == 1 else expected
            torch.testing.assert_close(got, want, **TOL, msg=f"{kind}: ∂{axes}")
            torch.testing.assert_close(
                d.partial(*reversed(axes), output=out_dim - 1), expected[:, -1]
            )
    torch.testing.assert_close(d.jacobian, tensors[0], **TOL)
    torch.testing.assert_close(d.hessian, tensors[1], **TOL)


@pytest.mark.parametrize("method", ["auto", "forward", "reverse", "hutchinson"])
def test_partials_agree_with_the_engines_own_derivatives(method):
    net = make_net("mlp-tanh", D + 1, 2)
    x = torch.rand(N, D + 1, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    d = pl.Derivatives(net, x, method=method, time_dependent=True, generator=torch.Generator())
    torch.testing.assert_close(d.partial("t"), d.dt, **TOL)
    torch.testing.assert_close(torch.stack([d.partial(i) for i in range(D)], -1), d.grad, **TOL)
    if method != "hutchinson":
        lap = sum(d.partial(i, i) for i in range(D))
        torch.testing.assert_close(lap, d.laplacian, **TOL)


@pytest.mark.parametrize("axes", [(0,), (0, 1), (1, 1), ("t", 0, 0), (0, 0, 1, 1)])
def test_partials_carry_the_gradient_with_respect_to_the_weights(axes):
    """What training differentiates: ∂/∂θ of Σ (∂_axes u)² against the same through torch.func."""
    net = make_net("mlp-tanh", D + 1, 1)
    x = torch.rand(N, D + 1, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    params = list(net.parameters())

    def grads(loss):
        out = torch.autograd.grad(loss, params, allow_unused=True)
        return [torch.zeros_like(p) if g is None else g for g, p in zip(out, params, strict=True)]

    got = grads(pl.Derivatives(net, x, time_dependent=True).partial(*axes).square().sum())
    columns = [0 if a == "t" else a + 1 for a in axes]
    tensor = dense_tensors(net, x)[len(axes) - 1][(slice(None), 0, *columns)]
    for a, b in zip(got, grads(tensor.square().sum()), strict=True):
        torch.testing.assert_close(a, b, **TOL)


def test_partial_refuses_what_it_cannot_compute():
    net = make_net("mlp-tanh", D, 2)
    d = pl.Derivatives(net, torch.rand(N, D, dtype=torch.float64))
    with pytest.raises(pl.ShapeError, match=r"axis 2 does not exist: .* 2 spatial dimensions"):
        d.partial(2)
    with pytest.raises(pl.ShapeError, match="axis 't' is only defined for time-dependent"):
        d.partial("t")
    with pytest.raises(pl.ShapeError, match="up to order 4"):
        d.partial(0, 0, 0, 0, 0)
    with pytest.raises(pl.ShapeError, match="at least one axis"):
        d.partial()
    with pytest.raises(pl.ShapeError, match=r"output=2: the network has outputs 0 … 1"):
        d.partial(0, output=2)
    with pytest.raises(pl.ShapeError, match="a spatial index"):
        d.partial("x")


@pytest.mark.parametrize("method", ["forward", "reverse"])
def test_a_plain_function_with_one_output_as_a_vector_has_every_derivative(method):
    """u(x) = sin x₀ · e^{x₁}, returning (n,) (as a problem's ``exact`` does): Δu = 0,
    ∂²u/∂x₀∂x₁ = cos x₀ e^{x₁}, ∂³u/∂x₀²∂x₁ = −u."""
    x = torch.rand(32, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)

    def u(y):
        return torch.sin(y[:, 0]) * torch.exp(y[:, 1])

    d = pl.Derivatives(u, x, method=method)
    assert d.u.shape == d.laplacian.shape == (32,) and d.grad.shape == (32, 2)
    torch.testing.assert_close(d.laplacian, torch.zeros(32, dtype=torch.float64))
    torch.testing.assert_close(d.partial(0, 1), torch.cos(x[:, 0]) * torch.exp(x[:, 1]))
    torch.testing.assert_close(d.partial(0, 0, 1), -u(x))
