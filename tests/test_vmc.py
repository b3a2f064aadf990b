"""Ground states: the Metropolis sampler, blocking error bars, local energies, the vmc solver."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

import pinnlab as pl
from pinnlab.mcmc import Metropolis, blocking
from pinnlab.solvers.vmc import VMC, VMCSettings

CATALOGUE = pl.catalogue()
HAMILTONIAN_IDS = [i for i in CATALOGUE if "hamiltonian" in CATALOGUE[i].forms()]


def test_the_ground_state_problems_are_in_the_catalogue():
    assert {"harmonic-oscillator", "infinite-well", "hydrogen"} <= set(HAMILTONIAN_IDS)


# --- the sampler and the error bars ------------------------------------------------------
def test_metropolis_samples_a_gaussian():
    """Kolmogorov–Smirnov against the target's marginal, after burn-in."""
    g = torch.Generator().manual_seed(0)
    start = 3.0 + torch.rand(4000, 3, generator=g, dtype=torch.float64)  # far from the mode
    sampler = Metropolis(lambda x: -0.5 * x.square().sum(dim=1), start, step=0.1)
    sampler.run(300, g, adapt=True)
    assert 0.4 < sampler.acceptance < 0.6  # adapted towards the 0.5 target
    x = sampler.run(20, g, adapt=False).numpy()
    for axis in range(3):
        assert stats.kstest(x[:, axis], "norm").pvalue > 1e-3
    # The test can fail: the same samples are not from N(0, 1.3²).
    assert stats.kstest(x[:, 0], stats.norm(scale=1.3).cdf).pvalue < 1e-6


def test_metropolis_respects_the_support():
    """A flat density on (0, 1)²: samples stay inside and are uniform there."""
    g = torch.Generator().manual_seed(1)
    start = torch.full((3000, 2), 0.5, dtype=torch.float64)
    inside = lambda y: ((y > 0) & (y < 1)).all(dim=1)  # noqa: E731
    sampler = Metropolis(lambda x: torch.zeros(len(x), dtype=x.dtype), start, 0.3, inside=inside)
    x = sampler.run(200, g, adapt=True).numpy()
    assert ((x > 0) & (x < 1)).all()
    assert stats.kstest(x[:, 1], "uniform").pvalue > 1e-3


def test_a_collapsed_chain_warns():
    g = torch.Generator().manual_seed(2)
    sampler = Metropolis(lambda x: -1e6 * x.square().sum(dim=1), torch.zeros(64, 2), step=10.0)
    sampler.run(20, g, adapt=False)
    with pytest.warns(RuntimeWarning, match="acceptance collapsed"):
        sampler.check("in this test")


def _ar1(phi: float, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal(n)
    x = np.empty(n)
    x[0] = noise[0] / math.sqrt(1 - phi**2)
    for i in range(1, n):
        x[i] = phi * x[i - 1] + noise[i]
    return x


@pytest.mark.parametrize("phi", [0.0, 0.9])
def test_blocking_recovers_the_standard_error_of_a_correlated_series(phi):
    """AR(1): the standard error of the mean is σ_x √((1 + φ)/((1 − φ) n))."""
    n = 2**16
    x = _ar1(phi, n, seed=3)
    true = math.sqrt(1 / (1 - phi**2)) * math.sqrt((1 + phi) / (1 - phi) / n)
    est = blocking(x)
    assert abs(est.stderr / true - 1) < 0.25
    if phi:  # the naive error bar would be 4.4x too small
        assert x.std() / math.sqrt(n) < 0.5 * est.stderr
    with pytest.raises(ValueError, match="at least 4"):
        blocking([1.0, 2.0])


# --- exact ground states -------------------------------------------------------------------
def _instances(cls):
    out = []
    for dim in (1, 2, 3, 6):
        try:
            out.append(cls.from_params({"dim": dim}))
        except pl.ParameterError:
            continue
    return out


@pytest.mark.parametrize("problem_id", HAMILTONIAN_IDS)
def test_the_exact_ground_state_has_a_constant_local_energy(problem_id):
    """E_L = −½(Δ log ψ₀ + |∇ log ψ₀|²) + V = E₀ at random points (float64, dense autograd)."""
    for problem in _instances(CATALOGUE[problem_id]):
        form = problem.hamiltonian_form()
        g = torch.Generator().manual_seed(4)
        if form.domain is not None:
            x = form.domain.sample_interior(64, generator=g, dtype=torch.float64)
        else:
            x = form.length * torch.randn(64, form.dim, generator=g, dtype=torch.float64)
        d = pl.Derivatives(lambda y, p=problem: p.ground_state(y)[:, None], x, method="reverse")
        e_local = -0.5 * (d.laplacian + d.grad.square().sum(dim=1)) + form.potential(x)
        e0 = form.ground_energy
        assert torch.allclose(e_local, torch.full_like(e_local, e0), rtol=1e-10, atol=1e-10)
        # The check can fail: a perturbed state does not have a constant local energy.
        dp = pl.Derivatives(
            lambda y, p=problem: (p.ground_state(y) + 0.1 * y.sum(dim=1) ** 2)[:, None],
            x,
            method="reverse",
        )
        ep = -0.5 * (dp.laplacian + dp.grad.square().sum(dim=1)) + form.potential(x)
        assert (ep - e0).abs().max() > 1e-3


@pytest.mark.parametrize(
    ("problem_id", "params"),
    [
        ("harmonic-oscillator", {"omega": 0.0}),
        ("harmonic-oscillator", {"omega": -1.0}),
        ("infinite-well", {"length": 0.0}),
        ("hydrogen", {"dim": 2}),
        ("hydrogen", {"charge": -1.0}),
    ],
)
def test_non_physical_parameters_are_rejected(problem_id, params):
    with pytest.raises(pl.ParameterError, match=problem_id):
        pl.problem(problem_id, **params)


def test_a_collocation_method_on_a_ground_state_problem_says_what_fits():
    with pytest.raises(pl.FormError, match=r"hamiltonian.*Methods that fit: vmc"):
        pl.make_config("harmonic-oscillator", method="pinn")


# --- the solver ------------------------------------------------------------------------
def _solver(problem_id: str, **settings) -> tuple[VMC, torch.nn.Module]:
    problem = pl.problem(problem_id, **({"dim": 3} if problem_id != "hydrogen" else {}))
    cfg = pl.make_config(
        problem.id,
        method="vmc",
        params=problem.params(),
        overrides={"net": {"width": 8, "depth": 2}, "dtype": "float64", "solver": settings},
    )
    from pinnlab.run import build_model

    solver = VMC(problem, VMCSettings.model_validate(cfg.solver), dtype=torch.float64)
    model = build_model(problem, cfg, device=torch.device("cpu"), solver=solver)
    return solver, model


@pytest.mark.parametrize("problem_id", HAMILTONIAN_IDS)
def test_local_energy_matches_a_dense_reference(problem_id):
    """The solver's local energy (engine + closed-form envelope) against dense autograd on
    the whole model, for a network with random weights (the last layer too)."""
    solver, model = _solver(problem_id)
    g = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.3 * torch.randn(p.shape, generator=g, dtype=p.dtype))
    x = solver._start(g, torch.float64)
    e_local, log_psi = solver.local_energy(model, x)
    d = pl.Derivatives(model.module, x, method="reverse")
    reference = -0.5 * (d.laplacian + d.grad.square().sum(dim=1)) + solver.spec.potential(x)
    torch.testing.assert_close(e_local, reference, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(log_psi, model.module(x)[:, 0], rtol=1e-12, atol=1e-12)


def _set_envelope(model, a: float, b: float) -> None:
    with torch.no_grad():
        model.decay.copy_(torch.log(torch.expm1(torch.tensor([a, b], dtype=torch.float64))))


def test_the_exact_ansatz_measures_the_exact_energy():
    """ψ = e^{−ω r²/2} (network zero): E = E₀ with zero variance; the metrics say so."""
    solver, model = _solver("harmonic-oscillator", walkers=128, burn_in=50, eval_measurements=16)
    _set_envelope(model.module, 1e-12, 0.5)
    m = solver.metrics(model.module)
    assert abs(m["energy"] - 1.5) < 1e-9 and m["energy_variance"] < 1e-9
    assert m["energy_rel_error"] < 1e-9 and m["energy_nonfinite"] == 0


def test_a_gaussian_trial_state_has_its_analytic_energy():
    """ψ = e^{−b r²} in d = 3 with ω = 1: E(b) = d (b/2 + 1/(8b)) > E₀. The estimate lies within
    4 error bars of it (sampler, local energy and blocking together), far above E₀."""
    solver, model = _solver("harmonic-oscillator", walkers=512, burn_in=200, eval_measurements=128)
    b = 0.8
    _set_envelope(model.module, 1e-12, b)
    m = solver.metrics(model.module)
    exact = 3 * (b / 2 + 1 / (8 * b))
    assert abs(m["energy"] - exact) < 4 * m["energy_stderr"]
    assert m["energy_stderr"] < 0.01 and m["energy_z"] > 10


def test_non_finite_local_energies_are_counted_not_averaged():
    solver, model = _solver("hydrogen", walkers=16)
    x = torch.randn(16, 3, generator=torch.Generator().manual_seed(6), dtype=torch.float64)
    x[3] = 0.0  # on the nucleus: V = −∞
    terms = solver.loss(model, {"walkers": x})
    assert torch.isfinite(terms["energy"]) and model.state["nonfinite"] == 1
    terms["energy"].backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())


def test_vmc_solves_saves_and_loads(tmp_path):
    out = tmp_path / "ho.h5"
    sol = pl.solve(
        "harmonic-oscillator",
        method="vmc",
        dim=2,
        net={"width": 8, "depth": 2},
        solver={"walkers": 64, "burn_in": 20, "eval_measurements": 16},
        train={"steps": 20, "eval_every": 10},
        out=out,
    )
    m = sol.metrics
    assert {"energy", "energy_stderr", "energy_rel_error", "acceptance"} <= set(m)
    assert m["energy"] > 1.0 - 5 * m["energy_stderr"]  # variational: E ≥ E₀ = 1 up to noise
    assert len(sol.history["error"]) == 2 and "acceptance" in sol.history
    loaded = pl.load(out)
    x = np.random.default_rng(0).standard_normal((5, 2)).astype(np.float32)
    np.testing.assert_array_equal(loaded(x), sol(x))
    assert loaded.metrics == m


@pytest.mark.parametrize("walkers", [8, 64])  # more parameters than walkers, and fewer
def test_natural_gradient_is_the_preconditioned_gradient(walkers):
    """The loss's gradient is δ = (S + λI)⁻¹ g, S and g from per-walker autograd (a loop)."""
    solver, model = _solver("harmonic-oscillator", walkers=walkers, damping=1e-2, clip=0.0)
    g = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.3 * torch.randn(p.shape, generator=g, dtype=p.dtype))
    x = solver._start(g, torch.float64)
    params = list(model.parameters())
    model.module.zero_grad()
    solver.loss(model, {"walkers": x})["energy"].backward()
    delta = torch.cat([p.grad.reshape(-1) for p in params])

    rows = []
    for y in x:
        grads = torch.autograd.grad(model.module(y[None])[0, 0], params)
        rows.append(torch.cat([v.reshape(-1) for v in grads]))
    o = torch.stack(rows)
    o = o - o.mean(dim=0)
    e_local, _ = solver.local_energy(model, x)
    e_local = e_local.detach()
    gradient = 2 * o.T @ (e_local - e_local.mean()) / len(x)
    s = o.T @ o / len(x) + 1e-2 * torch.eye(o.shape[1], dtype=o.dtype)
    torch.testing.assert_close(delta, torch.linalg.solve(s, gradient), rtol=1e-7, atol=1e-9)
    assert len(x) != o.shape[1]
