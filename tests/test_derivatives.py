"""Every derivative method against dense torch.func Jacobians and Hessians, in float64."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from torch.func import hessian, jacrev, vmap

import pinnlab as pl
from pinnlab import registry
from pinnlab.derivatives import EXACT_METHODS, STOCHASTIC_METHODS, get_method
from pinnlab.derivatives.exact import ForwardMode, reducible
from pinnlab.networks import (
    MLP,
    AdditivePart,
    DirichletTransform,
    OutputAffine,
    ResidualMLP,
    build_network,
)

N, D = 5, 3  # points, spatial dimension
EXACT = ["auto", *EXACT_METHODS]
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


def registered() -> dict[str, tuple[str, str, tuple[str, ...]]]:
    """Every network the registries build, read from them (no hand-kept list): each body with
    each activation; each body that takes wrappers with each wrapper alone and with all of them
    in registry order. Name -> (body, activation, wrappers)."""
    bodies, wrappers = registry.networks(), registry.wrappers()
    out = {f"{b}-{a}": (b, a, ()) for b in bodies for a in registry.activations()}
    for b in (b for b in bodies if bodies[b].wrappable):
        out |= {f"{b}+{w}": (b, "tanh", (w,)) for w in wrappers}
        out[f"{b}+" + "+".join(wrappers)] = (b, "tanh", tuple(wrappers))
    return out


REGISTERED = registered()
#: Modules outside the registries that networks meet: the solvers' output transforms (hard
#: Dirichlet data, output scaling) and a user's own modules.
OTHERS = [
    "dirichlet-box",
    "dirichlet-ball",
    "dirichlet-ball-zero",
    "additive-dirichlet",
    "output-affine",
    "custom",
    "sequential",
]
NETS = [*REGISTERED, *OTHERS]


def make_net(kind: str, in_dim: int, out_dim: int) -> nn.Module:
    g = torch.Generator().manual_seed(7)
    small = dict(width=8, depth=2, generator=g)
    if kind in REGISTERED:
        body, activation, names = REGISTERED[kind]
        wrappers = registry.wrappers()
        net = build_network(
            in_dim,
            out_dim,
            kind=body,
            activation=activation,
            wrap=[wrappers[w].example() for w in names],
            periodic=[(in_dim - 1, 0.0, 1.0)],  # periodic in the last (a spatial) column
            input_box=(torch.full((in_dim,), -1.0), torch.full((in_dim,), 2.0)),
            **small,
        )
        for p in net.parameters():  # parts initialised at zero (biases, skips) take part too
            if not p.any():
                nn.init.normal_(p, std=0.3, generator=g)
    elif kind == "dirichlet-box":
        net = DirichletTransform(
            MLP(in_dim, out_dim, **small),
            pl.Box(in_dim),
            lambda x: torch.sin(x).sum(dim=1) + x[:, 0] ** 3,
        )
    elif kind == "dirichlet-ball":
        net = DirichletTransform(
            ResidualMLP(in_dim, out_dim, **small),
            pl.Ball(in_dim, radius=2.0),
            lambda x: torch.cos(x[:, :1]) * x[:, -1:] ** 2,  # (n, 1) lift
        )
    elif kind == "dirichlet-ball-zero":  # φ's closed-form jet, a constant lift
        net = DirichletTransform(MLP(in_dim, out_dim, **small), pl.Ball(in_dim, center=0.5), 0.0)
    elif kind == "additive-dirichlet":
        inner = build_network(
            in_dim, out_dim, wrap=[AdditivePart(units=2)], activation="silu", **small
        )
        net = DirichletTransform(inner, pl.Ball(in_dim, center=0.5), 0.0)
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


@pytest.mark.parametrize("method", EXACT)
@pytest.mark.filterwarnings("ignore:the first-layer reduction does not apply")  # periodic
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


@pytest.mark.filterwarnings("ignore:the first-layer reduction does not apply")  # periodic
@pytest.mark.parametrize("kind", NETS)
def test_forward_equals_reverse_including_parameter_gradients(kind, out_dim, time_dependent):
    """Both methods give the same values, and the same gradients with respect to the weights
    (what training differentiates)."""
    s = int(time_dependent)
    net = make_net(kind, D + s, out_dim)
    x = points(D + s, seed=1)
    b = torch.randn(N, D, 2, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    results = {}
    for method in ("reduced", "forward", "reverse"):
        d = pl.Derivatives(net, x, method=method, time_dependent=time_dependent)
        values = [d.u, d.grad, d.laplacian, d.trace(b)] + ([d.dt] if time_dependent else [])
        loss = sum((v * v).sum() for v in values)
        grads = torch.autograd.grad(loss, list(net.parameters()))
        results[method] = ([v.detach() for v in values], grads)
    for method in ("reduced", "forward"):
        for a, b_ in zip(results[method][0], results["reverse"][0], strict=True):
            torch.testing.assert_close(a, b_, **TOL)
        for a, b_ in zip(results[method][1], results["reverse"][1], strict=True):
            torch.testing.assert_close(a, b_, **TOL)


@pytest.mark.parametrize("method", EXACT)
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


@pytest.mark.parametrize("kind", ["mlp-tanh", "resmlp-silu", "mlp+fourier"])
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


# --- first-layer reduction: d larger than the width ------------------------------------------

WIDE = 12  # > width 8 of the test networks: the reduction replaces 12 directions by 8
#: The first-layer reduction applies wherever the input reaches the network through one
#: first affine map: every registered network but one behind a periodic embedding (whose
#: cos/sin meet two affine maps of x), and the transforms around such a network.
REDUCIBLE = {k for k, (_, _, wrappers) in REGISTERED.items() if "periodic" not in wrappers}
REDUCIBLE |= set(OTHERS) - {"custom"}  # a module mixing features by itself is not


@pytest.mark.parametrize("kind", NETS)
def test_reducible_networks_are_recognised(kind):
    net = make_net(kind, WIDE, 1)
    assert reducible(net, WIDE, dtype=torch.float64, device="cpu") == (kind in REDUCIBLE)


@pytest.mark.filterwarnings("ignore:the first-layer reduction does not apply")  # periodic
@pytest.mark.parametrize("kind", NETS)
def test_reduced_matches_dense_derivatives_when_d_exceeds_width(kind, out_dim, time_dependent):
    s = int(time_dependent)
    net = make_net(kind, WIDE + s, out_dim)
    x = points(WIDE + s)
    u, jac, hess = dense(net, x)
    hs = hess[..., s:, s:]
    d = pl.Derivatives(net, x, method="reduced", time_dependent=time_dependent)
    lap = d.laplacian
    torch.testing.assert_close(lap, squeeze(hs.diagonal(dim1=-2, dim2=-1).sum(-1)), **TOL)
    torch.testing.assert_close(d.u, squeeze(u), **TOL)
    grad = jac[:, :, s:]
    torch.testing.assert_close(d.grad, grad[:, 0] if out_dim == 1 else grad, **TOL)
    if time_dependent:
        torch.testing.assert_close(d.dt, squeeze(jac[:, :, 0]), **TOL)
    g = torch.Generator().manual_seed(3)
    b_const = torch.randn(WIDE, 20, generator=g, dtype=torch.float64)  # 20 columns > width
    expected = torch.einsum("nkij,im,jm->nk", hs, b_const, b_const)
    torch.testing.assert_close(d.trace(b_const), squeeze(expected), **TOL)
    b_point = torch.randn(N, WIDE, 14, generator=g, dtype=torch.float64)
    expected = torch.einsum("nkij,nim,njm->nk", hs, b_point, b_point)
    torch.testing.assert_close(d.trace(b_point), squeeze(expected), **TOL)


@pytest.mark.parametrize(
    "kind", ["mlp-tanh", "resmlp-silu", "mlp+fourier", "output-affine", "dirichlet-ball-zero"]
)
def test_reduced_parameter_gradients_match_reverse_when_d_exceeds_width(kind, time_dependent):
    """What training differentiates, through the QR factorisation of the first layer."""
    s = int(time_dependent)
    net = make_net(kind, WIDE + s, 1)
    x = points(WIDE + s, seed=2)
    b = torch.randn(N, WIDE, WIDE, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    grads = {}
    for method in ("reduced", "reverse"):
        d = pl.Derivatives(net, x, method=method, time_dependent=time_dependent)
        loss = (d.laplacian**2 + d.u**2).sum() + (d.grad**2).sum() + (d.trace(b) ** 2).sum()
        grads[method] = torch.autograd.grad(loss, list(net.parameters()))
    for a, b_ in zip(grads["reduced"], grads["reverse"], strict=True):
        torch.testing.assert_close(a, b_, **TOL)


def test_auto_picks_the_documented_method(monkeypatch):
    import pinnlab.derivatives as derivatives

    x = points(WIDE)
    assert pl.Derivatives(make_net("mlp-tanh", WIDE, 1), x).method.name == "reduced"
    assert pl.Derivatives(make_net("custom", WIDE, 1), x).method.name == "forward"
    monkeypatch.setattr(derivatives, "AUTO_FORWARD_MAX_DIM", WIDE - 1)
    d = pl.Derivatives(make_net("custom", WIDE, 1), x, generator=torch.Generator())
    assert d.method.name == "hutchinson"
    assert pl.Derivatives(make_net("mlp-tanh", WIDE, 1), x).method.name == "reduced"


# --- stochastic estimators -----------------------------------------------------------------

STOCHASTIC = list(STOCHASTIC_METHODS)


def _mean_of_draws(method, net, x, draws: int, generator) -> torch.Tensor:
    """The mean of ``draws`` independent estimates of Δu, in one forward-mode pass."""
    dirs, weights = [], []
    for _ in range(draws):
        v, w = method.directions(
            method.draw(x.shape[1], generator, x.dtype), dim=x.shape[1], dtype=x.dtype
        )
        dirs.append(v)
        weights.append(w / draws)
    jet = ForwardMode().jet(net, x, torch.cat(dirs), torch.cat(weights), 2)
    return jet.lap[:, 0]


@pytest.mark.parametrize("name", STOCHASTIC)
def test_stochastic_estimators_are_unbiased_with_error_slope_minus_half(name):
    net = make_net("mlp-tanh", WIDE, 1)
    x = points(WIDE)
    exact = pl.Derivatives(net, x, method="reverse").laplacian.detach()
    method = get_method(name, probes=2)
    g = torch.Generator().manual_seed(11)
    counts = [8, 32, 128, 512]
    rms = []
    with torch.no_grad():
        for count in counts:
            errors = torch.stack([_mean_of_draws(method, net, x, count, g) for _ in range(30)])
            rms.append((errors - exact).square().mean().sqrt())
    slope = np.polyfit(np.log(counts), np.log(torch.stack(rms).numpy()), 1)[0]
    assert -0.65 < slope < -0.35, (name, slope, rms)


@pytest.mark.parametrize("name", STOCHASTIC)
def test_reported_variance_matches_the_spread_of_estimates(name):
    net = make_net("mlp-tanh", WIDE, 1)
    x = points(WIDE)
    method = get_method(name, probes=4)
    g = torch.Generator().manual_seed(5)
    estimates, predicted = [], []
    with torch.no_grad():
        for _ in range(400):
            d = pl.Derivatives(net, x, method=method, generator=g)
            estimates.append(d.laplacian)
            predicted.append(d.variance())
    empirical = torch.stack(estimates).var(dim=0)
    ratio = torch.stack(predicted).mean(dim=0) / empirical
    assert ((0.75 < ratio) & (ratio < 1.33)).all(), (name, ratio)


@pytest.mark.parametrize("name", STOCHASTIC)
def test_stochastic_trace_and_first_derivatives(name, time_dependent):
    """First derivatives stay exact; tr(B Bᵀ ∇²u) is estimated around its exact value."""
    s = int(time_dependent)
    net = ResidualMLP(WIDE + s, 1, 8, 3, "silu", generator=torch.Generator().manual_seed(7))
    net = net.double()
    x = points(WIDE + s)
    ref = pl.Derivatives(net, x, method="reverse", time_dependent=time_dependent)
    g = torch.Generator().manual_seed(1)
    method = get_method(name, probes=WIDE)
    d = pl.Derivatives(net, x, method=method, time_dependent=time_dependent, generator=g)
    torch.testing.assert_close(d.u, ref.u, **TOL)
    torch.testing.assert_close(d.grad, ref.grad, **TOL)
    if time_dependent:
        torch.testing.assert_close(d.dt, ref.dt, **TOL)
    b = torch.randn(N, WIDE, WIDE, generator=g, dtype=torch.float64)
    exact = ref.trace(b).detach()
    mean = torch.stack(
        [
            pl.Derivatives(net, x, method=method, time_dependent=time_dependent, generator=g).trace(
                b
            )
            for _ in range(300)
        ]
    ).mean(dim=0)
    assert ((mean - exact).abs() < 0.1 * exact.abs().mean()).all()
    if name == "sdgd":  # all d axes drawn: the estimate is exact
        torch.testing.assert_close(d.laplacian, ref.laplacian, **TOL)


def test_stochastic_bad_input():
    net = make_net("mlp-tanh", WIDE, 1)
    x = points(WIDE)
    for bad in (0, -3, 2.5, "8", True):
        with pytest.raises(pl.ConfigError, match="probes must be a positive integer"):
            get_method("hutchinson", probes=bad)
    with pytest.raises(pl.ConfigError, match="stochastic: pass probes="):
        pl.Derivatives(net, x, method="sdgd")
    d = pl.Derivatives(net, x, method="hutchinson", generator=torch.Generator())
    with pytest.raises(pl.ShapeError, match="need a square factor B"):
        d.trace(torch.ones(WIDE, 3, dtype=torch.float64))


def test_reverse_mode_under_no_grad_keeps_no_graph():
    """Evaluation (no_grad) gets the same numbers without the autograd graph behind them."""
    net = make_net("mlp-tanh", D, 1)
    x = points(D)
    d = pl.Derivatives(net, x, method="reverse")
    with torch.no_grad():
        e = pl.Derivatives(net, x, method="reverse")
        grad, lap = e.grad, e.laplacian
    assert not grad.requires_grad and not lap.requires_grad
    assert d.grad.requires_grad  # outside no_grad the result stays differentiable
    torch.testing.assert_close(grad, d.grad.detach(), **TOL)
    torch.testing.assert_close(lap, d.laplacian.detach(), **TOL)
