"""The stochastic form: samplers, Monte Carlo prices, Feynman–Kac regression and deep BSDE."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

import pinnlab as pl
from pinnlab import montecarlo
from pinnlab.errors import ConfigError, FormError, ParameterError, PinnlabError, ShapeError

FAST_TRAIN = {"log_every": 10, "eval_every": 1000, "checkpoint_every": 0}


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def basket(**params) -> pl.Problem:
    return pl.problem("bs-geometric-basket", **params)


# --- samplers ------------------------------------------------------------------------------
def test_gbm_sampler_reproduces_mean_and_covariance_of_the_log_returns():
    sigma, rho = (0.1, 0.3, 0.2), ((1.0, 0.5, -0.2), (0.5, 1.0, 0.1), (-0.2, 0.1, 1.0))
    p = basket(dim=3, sigma=sigma, rho=rho, rate=0.03, dividend=0.01, maturity=2.0)
    form = p.stochastic_form()
    n = 200_000
    x = torch.tensor([[90.0, 100.0, 110.0]], dtype=torch.float64).expand(n, -1)
    xt = montecarlo.terminal(form, 0.5, x, gen(), exact=True)
    # E[X_T] = x e^{(r − q)(T − t)}, within 4 standard errors per asset.
    mean = form.mean(0.5, x[:1], 2.0)[0]
    stderr = xt.std(dim=0) / math.sqrt(n)
    assert ((xt.mean(dim=0) - mean).abs() < 4 * stderr).all()
    # Cov(log X_T) = σᵢσⱼρᵢⱼ (T − t).
    logs = torch.log(xt / x)
    cov = torch.cov(logs.T)
    s, r = torch.tensor(sigma, dtype=torch.float64), torch.tensor(rho, dtype=torch.float64)
    expected = s[:, None] * s[None] * r * 1.5
    assert torch.allclose(cov, expected, atol=4 * 1.5 * 0.3**2 * math.sqrt(2 / n) * 3)


def test_euler_sampler_has_the_euler_mean_and_the_brownian_law():
    p = basket(dim=2, rate=0.05)
    form = p.stochastic_form()
    n, steps = 100_000, 8
    x = torch.full((n, 2), 100.0, dtype=torch.float64)
    xt = montecarlo.terminal(form, 0.0, x, gen(1), exact=False, steps=steps)
    euler_mean = 100.0 * (1 + 0.05 / steps) ** steps
    assert abs(float(xt.mean()) - euler_mean) < 4 * float(xt.std()) / math.sqrt(2 * n)
    heat = pl.problem("heat-norm", dim=4, maturity=0.5).stochastic_form()
    y = montecarlo.terminal(heat, 0.0, torch.zeros(n, 4, dtype=torch.float64), gen(2))
    assert torch.allclose(torch.cov(y.T), torch.eye(4, dtype=torch.float64), atol=0.03)


def test_antithetic_paths_mirror_the_noise():
    heat = pl.problem("heat-norm", dim=3).stochastic_form()
    x = torch.rand(5, 3, generator=gen(), dtype=torch.float64)
    xt = montecarlo.terminal(heat, 0.0, x, gen(), antithetic=True)
    assert torch.allclose(xt[:5] + xt[5:], 2 * x)


# --- closed forms against Monte Carlo ------------------------------------------------------
@pytest.mark.parametrize("dim", [1, 5, 40])
def test_geometric_basket_price_agrees_with_monte_carlo(dim):
    p = basket(dim=dim, rho=0.3, sigma=0.25)
    form = p.stochastic_form()
    x = form.region.sample_interior(3, generator=gen(dim), dtype=torch.float64)
    for t in (0.0, 0.6):
        mc, stderr = montecarlo.price(form, t, x, 2**17, gen(7))
        exact = p.exact(torch.cat([torch.full((3, 1), t, dtype=torch.float64), x], dim=1))
        assert ((exact - mc).abs() < 4 * stderr).all(), (exact, mc, stderr)
        assert (stderr < 0.02 * exact).all()


def test_heat_norm_agrees_with_monte_carlo():
    p = pl.problem("heat-norm", dim=20)
    x = p.stochastic_form().region.sample_interior(3, generator=gen(), dtype=torch.float64)
    mc, stderr = montecarlo.price(p.stochastic_form(), 0.25, x, 2**16, gen(3))
    exact = p.exact(torch.cat([torch.full((3, 1), 0.25, dtype=torch.float64), x], dim=1))
    assert ((exact - mc).abs() < 4 * stderr).all()


def test_monte_carlo_reference_is_cached_on_disk(tmp_path, monkeypatch):
    monkeypatch.setenv(montecarlo.CACHE_VAR, str(tmp_path))
    calls = []

    def compute():
        calls.append(1)
        return {"value": np.arange(3.0)}

    first = montecarlo.cached({"k": 1}, compute)
    again = montecarlo.cached({"k": 1}, compute)
    assert calls == [1] and np.array_equal(first["value"], again["value"])
    (file,) = (tmp_path / "references").iterdir()
    file.write_bytes(b"damaged")
    assert np.array_equal(montecarlo.cached({"k": 1}, compute)["value"], np.arange(3.0))
    assert calls == [1, 1]


# --- bad input -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "params, message",
    [
        ({"rho": ((1.0, 0.9), (0.2, 1.0))}, "symmetric"),
        ({"rho": ((1.0, 1.5), (1.5, 1.0))}, "positive semi-definite"),
        ({"rho": ((1.0, 0.1, 0.0), (0.1, 1.0, 0.0), (0.0, 0.0, 1.0))}, "rho must be 2×2"),
        ({"rho": -0.9, "dim": 3}, "scalar rho"),
        ({"sigma": -0.1}, "sigma must be ≥ 0"),
        ({"sigma": (0.1, 0.2, 0.3)}, "sigma has 3 entries"),
        ({"rate": 5.0}, "rate"),
        ({"maturity": 0.0}, "maturity"),
        ({"strike": -1.0}, "strike"),
        ({"x_low": -5.0}, "x_low"),
    ],
)
def test_bad_black_scholes_parameters_name_the_parameter(params, message):
    with pytest.raises(ParameterError, match=message):
        basket(**{"dim": 2, **params})


def test_points_outside_the_positive_orthant_are_refused():
    p = basket(dim=2)
    with pytest.raises(ParameterError, match="asset prices must be positive"):
        p.exact(torch.tensor([[0.0, 100.0, -1.0]], dtype=torch.float64))


def test_feynman_kac_refuses_a_nonlinear_problem():
    with pytest.raises(FormError, match=r"linear problem.*deep-bsde"):
        pl.make_config("bs-default-risk", method="feynman-kac", params={"dim": 2})


def test_an_exact_sampler_is_needed_where_asked():
    from pinnlab.solvers import FeynmanKac

    form = basket(dim=2).stochastic_form()

    class NoLaw(type(basket())):  # the same problem, its law unknown
        def stochastic_form(self):
            return dataclasses.replace(form, transition=None)

    settings = FeynmanKac.Settings(sampler="exact")
    with pytest.raises(ConfigError, match=r"no exact sampler.*solver.sampler=euler"):
        FeynmanKac(NoLaw(dim=2), settings, dtype=torch.float32)
    FeynmanKac(NoLaw(dim=2), FeynmanKac.Settings(sampler="euler"), dtype=torch.float32)


def test_solver_time_must_precede_maturity():
    with pytest.raises(ConfigError, match=r"solver.time must lie in \[0, T\)"):
        pl.run(
            pl.make_config(
                "heat-norm",
                method="feynman-kac",
                params={"dim": 2},
                overrides={"solver": {"time": 1.0}},
            )
        )


# --- solvers -------------------------------------------------------------------------------
def fk_config(problem_id="bs-geometric-basket", steps=300, **params):
    return pl.make_config(
        problem_id,
        method="feynman-kac",
        config={
            "net": {"width": 32, "depth": 2},
            "solver": {"n_samples": 1024},
            "train": {"steps": steps, "lr": 3e-3, "schedule": "cosine", **FAST_TRAIN},
            "device": "cpu",
        },
        params={"dim": 2, **params},
    )


def test_feynman_kac_learns_the_geometric_basket_price(tmp_path):
    cfg = fk_config()
    sol = pl.run(cfg, out=tmp_path / "fk.h5")
    assert sol.at_time == 0.0 and not sol.time_dependent and sol.in_dim == 2
    paths = cfg.solver["n_samples"] * cfg.solver["paths"] * 2  # antithetic pairs
    assert sol.environment["samples"] == 300 * paths
    assert sol.metrics["rel_l2"] < 3e-2, sol.metrics
    loaded = pl.load(tmp_path / "fk.h5")
    x = np.array([[95.0, 105.0], [100.0, 100.0]])
    assert np.allclose(loaded(x), sol(x))
    with pytest.raises(ShapeError, match=r"\(n, 2\).*u\(t=0, x\)"):
        loaded(np.array([[0.0, 95.0, 105.0]]))
    with pytest.raises(ParameterError, match="asset prices must be positive"):
        loaded(np.array([[-1.0, 105.0]]))


def test_feynman_kac_control_variate_and_antithetics_reduce_the_loss_floor():
    """The regression target's variance (the loss floor) drops with each reduction."""
    from pinnlab.run import build_solver
    from pinnlab.solvers import Model

    exact = basket(dim=2)

    class Exact(torch.nn.Module):
        """The exact price as the "network": the loss is then the target's variance."""

        def forward(self, x):
            return exact.exact(torch.cat([torch.zeros_like(x[:, :1]), x], dim=1))[:, None]

    floors = []
    for cv, anti in [(False, False), (False, True), (True, True)]:
        cfg = fk_config(steps=0)
        cfg.solver.update(control_variate=cv, antithetic=anti, n_samples=20000)
        solver = build_solver(exact, cfg.model_copy(update={"dtype": "float64"}))
        model = Model(Exact())
        batch = solver.batch(model, gen(5))
        floors.append(float(solver.loss(model, batch)["regression"].detach()))
    assert floors[0] > 3 * floors[1] > 0 and floors[1] > 1.3 * floors[2], floors


def test_feynman_kac_refit_solves_the_output_layer_and_lowers_the_error():
    """Training stops with gradient noise in the weights; the least-squares fit of the output
    layer on fresh batches removes it from the last layer (the features stay)."""
    plain = pl.run(fk_config(steps=100))
    cfg = fk_config(steps=100)
    cfg.solver.update(refit=50)
    refit = pl.run(cfg)
    assert refit.environment["refit_starts"] == 50 * cfg.solver["n_samples"]
    assert refit.history["error"][-1] == plain.history["error"][-1]  # same training
    assert refit.metrics["rel_l2"] < 0.7 * plain.metrics["rel_l2"], (plain.metrics, refit.metrics)
    cfg.net.wrap = {"additive": {"units": 2}}
    with pytest.raises(ConfigError, match=r"solver\.refit.*net\.wrap\.additive"):
        pl.run(cfg)


def test_feynman_kac_heat_equation_with_euler_steps():
    cfg = fk_config("heat-norm", steps=300, maturity=0.5)
    cfg.solver.update(sampler="euler", euler_steps=4)
    sol = pl.run(cfg)
    assert sol.metrics["rel_l2"] < 5e-2, sol.metrics


def bsde_config(problem_id="bs-geometric-basket", steps=300, solver=None, **params):
    return pl.make_config(
        problem_id,
        method="deep-bsde",
        config={
            "net": {"width": 32, "depth": 2},
            "solver": {"steps": 10, "n_paths": 128, **(solver or {})},
            "train": {"steps": steps, "lr": 1e-2, **FAST_TRAIN},
            "device": "cpu",
        },
        params={"dim": 2, **params},
    )


def test_deep_bsde_at_one_point(tmp_path):
    sol = pl.run(bsde_config(), out=tmp_path / "bsde.h5")
    assert sol.metrics["rel_error_x0"] < 1e-2, sol.metrics
    assert sol.environment["samples"] == 300 * 128  # paths
    loaded = pl.load(tmp_path / "bsde.h5")
    x0 = np.array([[100.0, 100.0]])
    assert np.allclose(loaded(x0), sol(x0)) and loaded(x0).shape == (1,)
    with pytest.raises(PinnlabError, match=r"single point x₀.*solver.region=true"):
        loaded(np.array([[95.0, 100.0]]))


def test_deep_bsde_on_a_region():
    sol = pl.run(bsde_config(solver={"region": True}, steps=400))
    assert sol.point is None
    assert sol.metrics["rel_l2"] < 5e-2, sol.metrics


def test_deep_bsde_nonlinear_allen_cahn_small_dimension():
    """Allen–Cahn at d = 1 against the radial reference."""
    sol = pl.run(bsde_config("allen-cahn", steps=300, solver={"steps": 10}, dim=1))
    ref = sol.problem.reference()
    assert ref is not None
    assert sol.metrics["rel_error_x0"] < 2e-2, sol.metrics


def test_deep_bsde_needs_a_point_or_a_region():
    with pytest.raises(ConfigError, match=r"solver.x0 has 3 entries"):
        pl.run(bsde_config(solver={"x0": [1.0, 2.0, 3.0]}, steps=0))


def test_pinn_on_the_black_scholes_strong_form():
    cfg = pl.make_config(
        "bs-geometric-basket",
        method="pinn",
        config={
            "net": {"width": 32, "depth": 3},
            "solver": {"n_interior": 256, "n_boundary": 128},
            "train": {"steps": 400, "lr": 3e-3, **FAST_TRAIN},
            "device": "cpu",
        },
        params={"dim": 2},
    )
    sol = pl.run(cfg)
    assert sol.time_dependent and sol.in_dim == 3
    assert sol.metrics["rel_l2"] < 5e-2, sol.metrics


# --- the references of Han, Jentzen & E ----------------------------------------------------
def test_hjb_cole_hopf_quadrature_agrees_with_monte_carlo():
    p = pl.problem("hjb-lq", dim=10)
    x = np.full((1, 10), 0.7)
    g = torch.Generator().manual_seed(11)
    for t in (0.0, 0.5):
        y = torch.from_numpy(x) + math.sqrt(2 * (1 - t)) * torch.randn(
            400_000, 10, generator=g, dtype=torch.float64
        )
        h = torch.exp(-p.lam * p.terminal(y))
        mc = -math.log(float(h.mean())) / p.lam
        stderr = float(h.std()) / math.sqrt(len(h)) / (p.lam * float(h.mean()))
        assert abs(p.cole_hopf(t, x)[0] - mc) < 4 * stderr, (t, p.cole_hopf(t, x), mc, stderr)
    # the published value at d = 100, x = 0 (4.5901, four decimals)
    assert pl.problem("hjb-lq").reference().value.item() == pytest.approx(4.5901, abs=1e-4)


def test_allen_cahn_radial_reference_solves_its_equation():
    """v(t, r) in v_t + v_rr + (d−1)/r v_r + v − v³ = 0, by central differences (h = 1e-3)."""
    p = pl.problem("allen-cahn", dim=5)
    h, r = 1e-3, np.array([0.3, 1.0, 2.5])
    t = np.array([0.05, 0.15])
    v = {
        (i, j): np.stack([p.radial(ti, r + j * h) for ti in t + i * h])
        for i in (-1, 0, 1)
        for j in (-1, 0, 1)
        if i == 0 or j == 0
    }
    vt = (v[1, 0] - v[-1, 0]) / (2 * h)
    vr = (v[0, 1] - v[0, -1]) / (2 * h)
    vrr = (v[0, 1] - 2 * v[0, 0] + v[0, -1]) / h**2
    u = v[0, 0]
    residual = vt + vrr + (p.dim - 1) / r * vr + u - u**3
    assert np.abs(residual).max() < 1e-5, residual
    assert np.abs(vt).max() > 0.1  # the check can fail: time does change v
    # at t = T the profile is the terminal value
    assert np.allclose(p.radial(p.maturity, r), 1 / (2 + 0.4 * r**2), atol=1e-12)
    # the published value at d = 100 (0.052802): ours is 3.9e-4 below it (see the docstring)
    assert pl.problem("allen-cahn").reference().value.item() == pytest.approx(0.052802, rel=1e-3)


@pytest.mark.parametrize("problem_id", ["bs-basket-call", "bs-max-call"])
def test_monte_carlo_references_at_d1_are_the_black_scholes_price(problem_id, monkeypatch):
    """With one asset the mean and the maximum are the asset: the price is Black–Scholes'."""
    import sys

    module = sys.modules[pl.catalogue()[problem_id].__module__]
    monkeypatch.setattr(module, "REFERENCE_PATHS", 2**16)
    ref = pl.problem(problem_id, dim=1).reference()
    assert ref.x.shape == (module.REFERENCE_POINTS, 1) and ref.t == 0.0
    exact = basket(dim=1).exact(
        torch.cat([torch.zeros(len(ref.x), 1, dtype=ref.x.dtype), ref.x], 1)
    )
    z = (ref.value - exact).abs() / ref.stderr
    assert (z < 4).all(), z
    assert pl.problem(problem_id, dim=1).reference().value.equal(ref.value)  # from the cache


@pytest.mark.parametrize("control_variate", [True, False])
def test_feynman_kac_regression_takes_gauss_newton_steps(control_variate):
    """The regression is a sum of squares: its least-squares terms are the loss, and five
    ENGD steps on one fixed sample of 16 batches learn the price (0.7 % when written, from
    28 % at the start): nonlinear least squares on that sample, whose noise then sets the
    floor (more steps overfit it)."""
    from pinnlab.build import build_model, build_problem, build_solver

    cfg = pl.make_config(
        "bs-geometric-basket",
        method="feynman-kac",
        config={
            "net": {"width": 16, "depth": 1},
            "solver": {"n_samples": 512, "paths": 4, "control_variate": control_variate},
            "train": {
                "phases": [{"optimizer": "engd", "steps": 5}],
                "engd": {"damping": 1e-3},
                "lbfgs_batches": 16,
                "log_every": 1,
                "eval_every": 5,
            },
            "dtype": "float64",
            "device": "cpu",
        },
        params={"dim": 2},
    )
    problem = build_problem(cfg)
    solver = build_solver(problem, cfg)
    model = build_model(problem, cfg, device=torch.device("cpu"), solver=solver)
    model = solver.setup(model.module, torch.Generator().manual_seed(0))
    batch = solver.batch(model, torch.Generator().manual_seed(1))
    terms = solver.least_squares(model, batch)
    torch.testing.assert_close(
        terms["regression"].value(), solver.loss(model, batch)["regression"], rtol=1e-12, atol=0
    )
    solution = pl.run(cfg)
    loss = solution.history["loss"]  # with the control variate Ỹ moves with ∇N each step
    assert np.all(np.diff(loss) < 0) if not control_variate else loss[-1] < 0.5 * loss[0]
    assert solution.metrics["rel_l2"] < 2e-2, solution.metrics
