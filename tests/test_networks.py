"""Networks: shapes, seeded initialisation, activations' closed-form derivatives, transforms."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from torch import nn

import pinnlab as pl
from pinnlab.networks import (
    ACTIVATIONS,
    NETWORKS,
    Additive,
    AdditivePart,
    Bottleneck,
    Chain,
    DirichletTransform,
    Fourier,
    FourierFeatures,
    InputMap,
    OutputAffine,
    Periodic,
    PeriodicEmbedding,
    Projection,
    activation,
    build_network,
    chebyshev,
    has_readout,
)
from pinnlab.run import build_model


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_activation_derivatives_match_autograd(name):
    z = torch.linspace(-3, 3, 41, dtype=torch.float64).requires_grad_(True)
    f0, f1, f2 = ACTIVATIONS[name].closed_form(z)
    (d1,) = torch.autograd.grad(f0.sum(), z, create_graph=True)
    (d2,) = torch.autograd.grad(d1.sum(), z)
    torch.testing.assert_close(f1, d1, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(f2, d2, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(activation(name)(z), f0)


@pytest.mark.parametrize("fourier", [0, 4])
@pytest.mark.parametrize("kind", list(NETWORKS))
def test_build_network_shapes_and_seeded_init(kind, fourier):
    kw = dict(kind=kind, width=8, depth=2, wrap=[Fourier(features=fourier)] if fourier else [])
    if kind == "deepsets" and fourier:
        with pytest.raises(pl.ConfigError, match=r"net\.wrap\.fourier"):
            build_network(3, 2, generator=gen(1), **kw)
        return
    a = build_network(3, 2, generator=gen(1), **kw)
    b = build_network(3, 2, generator=gen(1), **kw)
    c = build_network(3, 2, generator=gen(2), **kw)
    x = torch.rand(5, 3, generator=gen())
    assert a(x).shape == (5, 2)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert sa.keys() == sb.keys()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)
    if fourier:
        assert any(k.endswith("B") for k in sa), "the Fourier matrix is not saved with the net"
    # Biases start at zero (Glorot normal weights, zero biases).
    assert all(not v.any() for k, v in sa.items() if k.endswith("bias"))


def test_network_counts_and_depth():
    net = build_network(3, 1, width=8, depth=3, generator=gen())
    linear = [m for m in net.modules() if isinstance(m, nn.Linear)]
    assert len(linear) == 4  # 3 hidden layers + output
    assert sum(p.numel() for p in net.parameters()) == (3 * 8 + 8) + 2 * (8 * 8 + 8) + (8 + 1)


def test_fourier_features_scale():
    ff = FourierFeatures(2, 1000, scale=3.0, generator=gen())
    assert ff.out_dim == 2000
    # B = 2π·scale·N(0, 1): its entries have standard deviation ≈ 2π·3.
    assert float(ff.B.std()) == pytest.approx(2 * torch.pi * 3.0, rel=0.05)
    out = ff(torch.zeros(4, 2))
    torch.testing.assert_close(out[:, :1000], torch.ones(4, 1000))
    torch.testing.assert_close(out[:, 1000:], torch.zeros(4, 1000))


@pytest.mark.parametrize(
    "domain", [pl.Box(2), pl.Ball(2), pl.SpaceTime(pl.Box(2))], ids=["box", "ball", "space-time"]
)
def test_dirichlet_transform_imposes_the_data_exactly(domain):
    net = build_network(domain.dim, 1, width=8, depth=2, generator=gen()).double()

    def lift(x):
        return torch.sin(x).sum(dim=1) + 1.0

    model = DirichletTransform(net, domain, lift)
    y = domain.sample_boundary(50, generator=gen(), dtype=torch.float64)
    torch.testing.assert_close(model(y)[:, 0], lift(y), rtol=0, atol=1e-12)
    x = domain.sample_interior(50, generator=gen(), dtype=torch.float64)
    assert not torch.allclose(model(x)[:, 0], lift(x))


def test_unknown_network_and_activation():
    with pytest.raises(
        pl.UnknownNameError, match=re.escape("unknown network 'mpl'. Did you mean 'mlp'")
    ):
        build_network(2, 1, kind="mpl", generator=gen())
    with pytest.raises(
        pl.UnknownNameError, match=re.escape("unknown activation 'tahn'. Did you mean 'tanh'")
    ):
        build_network(2, 1, activation="tahn", generator=gen())


def test_pinn_output_normalisation_uses_the_dirichlet_data():
    """u = mean + std · N with the mean and std of the boundary data, not of the solution."""
    from pinnlab.config import validate
    from pinnlab.solvers.pinn import PINN, PINNSettings

    problem = pl.problem("poisson-sine", dim=6)
    solver = PINN(problem, validate(PINNSettings, {}), dtype=torch.float32)
    model = solver.setup(build_network(6, 1, width=8, depth=2, generator=gen()), gen()).module
    assert isinstance(model, OutputAffine)
    y = pl.Box(6).sample_boundary(200_000, generator=gen(), dtype=torch.float64)
    data = problem.exact(y)
    torch.testing.assert_close(model.shift.double(), data.mean()[None], rtol=1e-2, atol=0)
    torch.testing.assert_close(model.scale.double(), data.std()[None], rtol=2e-2, atol=0)
    x = torch.rand(7, 6, generator=gen())
    torch.testing.assert_close(model(x), model.shift + model.scale * model.net(x))

    plain = PINN(problem, validate(PINNSettings, {"normalize_output": False}), dtype=torch.float32)
    net = build_network(6, 1, width=8, depth=2, generator=gen())
    assert plain.setup(net, gen()).module is net


@pytest.mark.parametrize("kind", list(NETWORKS))
@pytest.mark.parametrize("fourier", [0, 3])
def test_input_map_sends_the_box_to_the_unit_cube_inside_the_first_layer(kind, fourier):
    """With input_box, the network is the same network applied to (x − c) ⊙ s, folded into an
    affine first layer (so that the first-layer reduction still applies)."""
    from pinnlab.derivatives.exact import reducible

    low = torch.tensor([0.0, -2.0, 1.0], dtype=torch.float64)
    high = torch.tensor([1.0, 2.0, 5.0], dtype=torch.float64)
    kw = dict(kind=kind, width=8, depth=2, wrap=[Fourier(features=fourier)] if fourier else [])
    if kind == "deepsets" and fourier:
        return  # refused (test_build_network_shapes_and_seeded_init)
    mapped = build_network(3, 1, generator=gen(3), input_box=(low, high), **kw).double()
    plain = build_network(3, 1, generator=gen(3), **kw).double()
    x = low + (high - low) * torch.rand(7, 3, generator=gen(1), dtype=torch.float64)
    unit = 2 * (x - low) / (high - low) - 1
    torch.testing.assert_close(mapped(x), plain(unit), rtol=1e-12, atol=1e-12)
    assert reducible(mapped, 3, dtype=torch.float64, device="cpu")
    assert {"input_map.shift", "input_map.scale"} & set(mapped.state_dict()) or fourier


def test_domain_bounds():
    low, high = pl.Box(3, -1.0, 2.0).bounds()
    assert low.tolist() == [-1.0] * 3 and high.tolist() == [2.0] * 3
    low, high = pl.Ball(2, radius=2.0, center=1.0).bounds()
    assert low.tolist() == [-1.0, -1.0] and high.tolist() == [3.0, 3.0]
    low, high = pl.SpaceTime(pl.Box(2), t0=0.5, t1=2.0).bounds()
    assert low.tolist() == [0.5, 0.0, 0.0] and high.tolist() == [2.0, 1.0, 1.0]


@pytest.mark.parametrize("kind", list(NETWORKS))
def test_initialisations(kind):
    kw = dict(kind=kind, width=400, depth=2)
    glorot = build_network(300, 1, generator=gen(1), **kw)
    he = build_network(300, 1, generator=gen(1), init="he-normal", **kw)
    first = lambda net: next(m for m in net.modules() if isinstance(m, nn.Linear)).weight  # noqa: E731
    fan_in = 400 if kind == "deepsets" else 300  # deepsets: ρ's first layer, after the pooling
    # Glorot normal: variance 2/(fan_in + fan_out); He normal: 2/fan_in.
    assert first(glorot).std().item() == pytest.approx((2 / (fan_in + 400)) ** 0.5, rel=0.02)
    assert first(he).std().item() == pytest.approx((2 / fan_in) ** 0.5, rel=0.02)
    with pytest.raises(pl.UnknownNameError, match="Did you mean 'he-normal'"):
        build_network(3, 1, generator=gen(), init="he-norml")
    with pytest.raises(pl.UnknownNameError, match=r"net\.init"):
        pl.make_config("poisson-sine", sets=["net.init=xavier"])


def test_additive_network_adds_one_network_per_coordinate():
    box = (torch.zeros(4), torch.ones(4))
    kw = dict(width=8, depth=2, wrap=[AdditivePart(units=3)], input_box=box)
    net = build_network(4, 1, generator=gen(1), **kw)
    assert isinstance(net, Additive)
    again = build_network(4, 1, generator=gen(1), **kw)
    x = torch.rand(6, 4, generator=gen())
    torch.testing.assert_close(net(x), again(x))  # seeded like every network
    assert net.a.shape == net.b.shape == (4, 3) and net.c.shape == (4, 3, 1)
    # Separable: moving x₀ from 0.7 to 0.3 changes Σ hᵢ(xᵢ) by h₀(0.7) − h₀(0.3) in every
    # row, whatever the other coordinates are.
    x[:, 0] = 0.7
    y = x.clone()
    y[:, 0] = 0.3
    diff = (net.separable(x) - net.separable(y)).detach()
    assert diff.abs().min() > 1e-4
    torch.testing.assert_close(diff, diff[:1].expand(6, 1), rtol=1e-5, atol=1e-6)
    # u = N + Σ hᵢ: the body alone is the rest.
    torch.testing.assert_close(net(x) - net.separable(x), net.net(x))


def test_additive_and_bottleneck_parts_act_on_the_periodic_embedding():
    net = build_network(
        3,
        2,
        width=8,
        depth=2,
        wrap=[Periodic(modes=2), AdditivePart(units=2), Bottleneck(rank=2)],
        periodic=[(1, -5.0, 5.0)],
        generator=gen(),
    ).double()
    assert isinstance(net[1], Additive) and isinstance(net[1].net[0], Projection)
    x = torch.rand(4, 3, generator=gen(3), dtype=torch.float64)
    low, high = x.clone(), x.clone()
    low[:, 1], high[:, 1] = -5.0, 5.0
    torch.testing.assert_close(net(low), net(high), rtol=1e-12, atol=1e-12)
    # From a config: the run builds the same composition (no ConfigError).
    sets = ["net.wrap.periodic.modes=2", "net.wrap.additive.units=2", "net.wrap.bottleneck.rank=4"]
    config = pl.make_config("nls", sets=sets)
    model = build_model(pl.problem("nls"), config, device=torch.device("cpu")).module
    embedded = next(m for m in model.modules() if isinstance(m, Chain))
    assert isinstance(embedded[1], Additive) and isinstance(embedded[1].net[0], Projection)


def _projection(model) -> Projection:
    return next(m for m in model.modules() if isinstance(m, Projection))


def _source_config(problem_id, dim=None, method="pinn", rank=None, periodic=False):
    bottleneck = {"basis": "source", **({"rank": rank} if rank else {})}
    wrap = {**({"periodic": {"modes": 2}} if periodic else {}), "bottleneck": bottleneck}
    net = {"width": 8, "depth": 2, "wrap": wrap}
    params = {"dim": dim} if dim else None
    return pl.make_config(problem_id, method=method, params=params, overrides={"net": net})


def test_projection_fixed_to_gradients_projects_raw_inputs_onto_them():
    """Rows are set in the mapped coordinates t = (x − c) ⊙ s, so that P x ∝ gᵀx on the raw
    input: a function of gᵀx is a function of the first coordinate of P x."""
    box = (torch.zeros(5), torch.tensor([1.0, 2.0, 4.0, 0.5, 3.0]))
    proj = Projection(5, 3, generator=gen(), input_map=InputMap(*box))
    g = torch.tensor([1.0, -2.0, 0.5, 3.0, 0.0], dtype=torch.float64)
    energy = proj.fix_to(g * torch.linspace(0.5, 2.0, 7, dtype=torch.float64)[:, None])
    assert energy == pytest.approx(1.0) and not proj.weight.requires_grad
    raw = (proj.weight * proj.input_map.scale).detach().double()  # P on the raw input
    torch.testing.assert_close(raw[0] / raw[0].norm(), torch.sign(raw[0] @ g) * g / g.norm())
    assert torch.count_nonzero(raw[1:]) == 0  # rank 1: the other rows are zero
    with pytest.raises(ValueError, match="vanish"):
        proj.fix_to(torch.zeros(4, 5))


def test_bottleneck_basis_source_spans_the_ridge_directions_and_stays_fixed(tmp_path):
    problem = pl.problem("poisson-ridge", dim=40)
    config = _source_config("poisson-ridge", 40, rank=6)
    proj = _projection(build_model(problem, config, device=torch.device("cpu")).module)
    rows = proj.weight.detach().double()
    assert torch.count_nonzero(rows.norm(dim=1)) == 4  # u varies along 4 directions only
    v, _, _ = problem.coefficients(rows)
    q = torch.linalg.qr(rows[:4].T).Q
    cosines = torch.linalg.svdvals(q.T @ torch.linalg.qr(v.T).Q)  # of the principal angles
    torch.testing.assert_close(cosines, torch.ones(4, dtype=torch.float64))
    # Training leaves P as it was, and the saved solution carries it.
    config = config.model_copy(update={"train": config.train.model_copy(update={"steps": 3})})
    solution = pl.solve(problem, config=config, out=tmp_path / "ridge.h5")
    torch.testing.assert_close(_projection(solution.model).weight, proj.weight)
    torch.testing.assert_close(
        _projection(pl.load(tmp_path / "ridge.h5").model).weight, proj.weight
    )


def test_bottleneck_basis_source_warns_when_the_source_is_not_low_rank():
    config = _source_config("poisson-sine", 50, rank=8)
    with pytest.warns(RuntimeWarning, match="carry only"):
        build_model(pl.problem("poisson-sine", dim=50), config, device=torch.device("cpu"))


@pytest.mark.parametrize(
    ("problem_id", "method", "net", "message"),
    [
        ("poisson-ridge", "pinn", {}, r"missing key 'net\.wrap\.bottleneck\.rank'"),
        ("poisson-ridge", "deep-ritz", {"rank": 2}, "no strong-form residual"),
        ("poisson-harmonic", "pinn", {"rank": 2}, "does not vary in the interior"),
        ("nls", "pinn", {"rank": 2, "periodic": True}, "after periodic the bottleneck sees"),
    ],
)
def test_bottleneck_basis_source_refuses_what_it_cannot_do(problem_id, method, net, message):
    with pytest.raises(pl.ConfigError, match=message):
        config = _source_config(problem_id, method=method, **net)
        build_model(pl.problem(problem_id), config, device=torch.device("cpu"))


def test_bottleneck_network_sees_the_input_through_r_coordinates():
    box = (torch.zeros(6), torch.ones(6))
    kw = dict(width=8, depth=2, wrap=[Bottleneck(rank=2)], input_box=box)
    net = build_network(6, 1, generator=gen(1), **kw)
    proj = net[0]
    assert isinstance(proj, Projection) and proj.weight.shape == (2, 6)
    # Moving x along the null space of the projection (of the mapped inputs) changes nothing.
    x = torch.rand(5, 6, generator=gen())
    w = proj.weight * proj.input_map.scale  # P on the raw input (the map folded in)
    null = torch.linalg.svd(w.detach(), full_matrices=True).Vh[2:]  # (4, 6)
    y = x + 0.1 * null[0]
    torch.testing.assert_close(net(y), net(x), rtol=1e-5, atol=1e-6)
    assert not torch.allclose(net(x + 0.1 * w[0].detach()), net(x))


def test_deepsets_is_invariant_under_permutations_with_centred_pooled_features():
    box = (torch.full((30,), 90.0), torch.full((30,), 110.0))
    net = build_network(30, 1, kind="deepsets", width=8, depth=2, input_box=box, generator=gen(1))
    net = net.double()
    x = 90 + 20 * torch.rand(7, 30, generator=gen(), dtype=torch.float64)
    perm = torch.randperm(30, generator=gen(2))
    torch.testing.assert_close(net(x[:, perm]), net(x))
    d, dp = pl.Derivatives(net, x, method="reduced"), pl.Derivatives(net, x[:, perm])
    torch.testing.assert_close(dp.laplacian, d.laplacian)
    torch.testing.assert_close(dp.grad, d.grad[:, perm])
    assert torch.unique(d.grad[0]).numel() == 30  # yet not a function of the mean alone
    # φ̃ has mean zero over the box: the pooled features of uniform points average to 0, with
    # a spread that does not shrink with d (the 1/√d pooling).
    for dim in (30, 3000):
        wide = build_network(dim, 1, kind="deepsets", width=8, depth=2, generator=gen(1))
        s = wide.pooled(2 * torch.rand(4000, dim, generator=gen(3)) - 1)
        assert s.mean(dim=0).abs().max() < 4 * s.std(dim=0).max() / 4000**0.5
        assert 0.05 < s.std(dim=0).max() < 5


@pytest.mark.parametrize(
    ("problem_id", "params", "method", "message"),
    [
        ("poisson-ridge", {"dim": 5}, "pinn", "not symmetric"),
        ("bs-max-call", {"dim": 2, "sigma": [0.2, 0.3]}, "feynman-kac", "scalar sigma and rho"),
        ("bs-geometric-basket", {"dim": 3}, "pinn", "takes time beside"),
    ],
)
def test_deepsets_is_refused_where_the_solution_is_not_symmetric(
    problem_id, params, method, message
):
    config = pl.make_config(
        problem_id, method=method, params=params, overrides={"net": {"kind": "deepsets"}}
    )
    with pytest.raises(pl.ConfigError, match=message):
        build_model(pl.problem(problem_id, **params), config, device=torch.device("cpu"))
    assert pl.problem("bs-max-call", dim=3).exchangeable
    with pytest.raises(pl.ConfigError, match=r"net\.wrap\.additive"):
        build_network(4, 1, kind="deepsets", wrap=[AdditivePart(units=2)], generator=gen())


@pytest.mark.parametrize(
    "kw",
    [{"kind": "mlp"}, {"kind": "resmlp"}, {"kind": "deepsets"}, {"wrap": [Fourier(features=3)]}],
)
def test_readout_is_what_the_output_layer_maps_linearly(kw):
    net = build_network(5, 2, width=8, depth=2, generator=gen(1), **kw)
    assert has_readout(net)
    x = torch.rand(6, 5, generator=gen())
    if kw.get("kind") == "deepsets":  # ρ's hidden layer, then s through the skip (zero at first)
        assert not net.skip.weight.any()
        torch.testing.assert_close(net.readout(x)[:, 8:], net.pooled(x))
    phi = net.readout(x)
    weight, bias = torch.randn(2, phi.shape[1], generator=gen(2)), torch.randn(2, generator=gen(3))
    net.set_readout(weight, bias)
    torch.testing.assert_close(net(x), phi @ weight.T + bias)
    torch.testing.assert_close(net.readout(x), phi)  # the features did not move
    wrapped = OutputAffine(net, torch.tensor([1.0, -2.0]), torch.tensor([3.0, 0.5]))
    assert has_readout(wrapped)
    wrapped.set_readout(weight, bias)  # shift and scale folded into the network's layer
    torch.testing.assert_close(wrapped(x), phi @ weight.T + bias)
    assert not has_readout(build_network(5, 1, wrap=[AdditivePart(units=2)], generator=gen()))
    assert has_readout(build_network(5, 1, wrap=[Bottleneck(rank=2)], generator=gen()))  # a Chain


def test_readout_is_declared_by_the_network_not_found_by_its_type():
    net = build_network(5, 1, width=8, depth=2, generator=gen())
    assert net.has_readout() and has_readout(net)
    assert not has_readout(nn.Linear(5, 1))  # a module that declares nothing has none
    hard = DirichletTransform(net, pl.Box(5), 0.0)  # u = φ N is not linear in N's features
    assert not hard.has_readout() and not has_readout(hard)
    with pytest.raises(TypeError, match="DirichletTransform has no readout"):
        hard.readout(torch.rand(3, 5))


@pytest.mark.parametrize(
    "kw",
    [
        {"kind": "mlp"},
        {"kind": "resmlp"},
        {"kind": "deepsets"},
        {"wrap": [Fourier(features=3)]},
        {"wrap": [AdditivePart(units=3)]},
        {"wrap": [AdditivePart(units=3), Bottleneck(rank=2)]},
        {"wrap": [Periodic(modes=2), AdditivePart(units=2)], "periodic": [(1, 0.0, 1.0)]},
    ],
)
def test_zero_output_makes_the_network_vanish(kw):
    net = build_network(5, 2, width=8, depth=2, generator=gen(1), **kw)
    x = torch.rand(6, 5, generator=gen())
    if kw.get("kind") == "deepsets":
        nn.init.ones_(net.skip.weight)  # the skip is zero at first: check it is zeroed too
    before = {name: p.clone() for name, p in net.named_parameters()}
    assert net(x).abs().min() > 0
    assert net.zero_output_() is net
    assert not net(x).any()
    for name, p in net.named_parameters():  # only output coefficients were touched
        if not torch.equal(p, before[name]):
            assert re.search(r"(^|\.)(out\.weight|skip\.weight|c)$", name), name
    wrapped = OutputAffine(build_network(5, 2, generator=gen(), **kw), torch.ones(2), torch.ones(2))
    torch.testing.assert_close(wrapped.zero_output_()(x), torch.ones(6, 2))  # u = shift
    with pytest.raises(TypeError, match="FourierFeatures has no output layer"):
        FourierFeatures(5, 3, 1.0, generator=gen()).zero_output_()


def test_chebyshev_sums_and_derivatives_match_numpy():
    from numpy.polynomial import chebyshev as np_cheb

    t = torch.linspace(-1, 1, 9, dtype=torch.float64).reshape(3, 3)
    sums, d1, d2 = chebyshev(t, 6, order=2)
    assert sums.shape == (3, 6) and d1.shape == d2.shape == (3, 6, 3)
    for k in range(1, 7):
        c = np.eye(7)[k]
        tk = np_cheb.chebval(t.numpy(), c)
        np.testing.assert_allclose(sums[:, k - 1].numpy(), tk.sum(axis=1), atol=1e-12)
        np.testing.assert_allclose(
            d1[:, k - 1].numpy(), np_cheb.chebval(t.numpy(), np_cheb.chebder(c)), atol=1e-10
        )
        np.testing.assert_allclose(
            d2[:, k - 1].numpy(), np_cheb.chebval(t.numpy(), np_cheb.chebder(c, 2)), atol=1e-9
        )


def test_deepsets_solution_saves_and_loads(tmp_path):
    config = pl.make_config(
        "poisson-sine",
        params={"dim": 5},
        overrides={
            "net": {"kind": "deepsets", "width": 8, "depth": 2},
            "solver": {"n_interior": 32, "n_boundary": 16, "mean_weight": 0.2},
            "train": {"steps": 3, "eval_every": 3},
        },
    )
    solution = pl.solve(pl.problem("poisson-sine", dim=5), config=config, out=tmp_path / "s.h5")
    loaded = pl.load(tmp_path / "s.h5")
    x = torch.rand(6, 5, generator=gen(4))
    torch.testing.assert_close(torch.as_tensor(loaded(x)), torch.as_tensor(solution(x)))
    torch.testing.assert_close(
        torch.as_tensor(loaded(x[:, [4, 2, 0, 1, 3]])), torch.as_tensor(loaded(x))
    )


# --- net.wrap: the config's list of stages, and the old flat keys ---------------------------
OLD_AND_NEW = [
    ({"fourier_features": 4, "fourier_scale": 0.5}, {"fourier": {"features": 4, "scale": 0.5}}),
    ({"additive": 3, "bottleneck": 2}, {"additive": {"units": 3}, "bottleneck": {"rank": 2}}),
    ({"periodic": 2, "additive": 2}, {"periodic": {"modes": 2}, "additive": {"units": 2}}),
]


@pytest.mark.parametrize(("old", "new"), OLD_AND_NEW)
def test_old_flat_net_keys_are_translated_with_a_warning_to_the_same_network(old, new):
    problem_id = "nls" if "periodic" in old else "poisson-sine"
    with pytest.warns(FutureWarning, match=r"deprecated; write net\.wrap\."):
        before = pl.make_config(problem_id, overrides={"net": {"width": 8, **old}})
    after = pl.make_config(problem_id, overrides={"net": {"width": 8, "wrap": new}})
    assert before.net.wrap == after.net.wrap
    problem = pl.problem(problem_id)
    a, b = (build_model(problem, c, device=torch.device("cpu")).module for c in (before, after))
    assert all(torch.equal(a.state_dict()[k], v) for k, v in b.state_dict().items())


def test_an_old_key_set_to_zero_adds_no_stage():
    with pytest.warns(FutureWarning, match="they were off"):
        assert pl.make_config("poisson-sine", sets=["net.additive=0"]).net.wrap == {}


def test_a_null_wrapper_is_left_out_and_the_order_is_the_written_one():
    cfg = pl.make_config("nls", sets=["net.wrap.periodic.modes=2", "net.wrap.fourier.features=3"])
    assert list(cfg.net.wrap) == ["periodic", "fourier"]
    off = pl.make_config("nls", overrides={"net": {"wrap": {"periodic": None}}})
    assert off.net.wrap == {}
    model = build_model(pl.problem("nls"), cfg, device=torch.device("cpu")).module
    chain = next(m for m in model.modules() if isinstance(m, Chain))
    assert isinstance(chain[0], PeriodicEmbedding) and isinstance(chain[1][0], FourierFeatures)


def test_a_stage_that_must_come_first_says_so():
    wrap = {"fourier": {"features": 3}, "periodic": {"modes": 2}}
    cfg = pl.make_config("nls", config={"net": {"wrap": wrap}})  # no recipe underneath
    with pytest.raises(pl.ConfigError, match=r"net\.wrap\.periodic must come first.*fourier"):
        build_model(pl.problem("nls"), cfg, device=torch.device("cpu"))


def test_net_parameters_picks_the_width_for_a_fixed_size_at_every_depth_and_dimension():
    from pinnlab.build import build_model, build_problem, build_solver

    for dim in (2, 100):
        for depth in (1, 4):
            cfg = pl.make_config(
                "poisson-ridge",
                config={"problem": {"id": "poisson-ridge", "dim": dim}, "device": "cpu"},
                overrides={"net": {"depth": depth, "parameters": 3000}},
            )
            problem = build_problem(cfg)
            solver = build_solver(problem, cfg)
            model = build_model(problem, cfg, device=torch.device("cpu"), solver=solver)
            count = sum(p.numel() for p in model.parameters() if p.requires_grad)
            assert abs(count - 3000) < 0.05 * 3000, (dim, depth, cfg.net.width, count)
            again = pl.make_config(config=cfg.model_dump())  # a dump agrees with itself
            assert again.net.width == cfg.net.width
    with pytest.raises(pl.ConfigError, match="disagree"):
        pl.make_config(
            "poisson-ridge",
            overrides={"problem": {"dim": 2}, "net": {"width": 64, "parameters": 3000}},
        )
