"""The periodic ETDRK4 solver (pinnlab.spectral) and the two problems built on it
(problems/periodic.py): the scheme's order, the kink's closed form, the interpolant's
derivatives, and the convergence of each reference."""

from __future__ import annotations

import dataclasses
import functools
import itertools
import math

import numpy as np
import pytest
import torch
from scipy.special import factorial, ndtr

import pinnlab as pl
from pinnlab import spectral

PROBLEMS = ["allen-cahn-1d", "kdv"]


@functools.cache
def problem(problem_id: str) -> pl.Problem:
    return pl.problem(problem_id)


def slope(steps, errors) -> float:
    """The order p of errors ∝ steps^−p (regression slope)."""
    return -np.polyfit(np.log(steps), np.log(errors), 1)[0]


# --- the scheme ------------------------------------------------------------------------------
def _phi(k: int, z: np.ndarray, terms: int = 40) -> np.ndarray:
    """φ_k(z) = Σ zⁿ/(n + k)! (for |z| ≤ 1)."""
    return sum(z**n / factorial(n + k) for n in range(terms))


def test_coefficients_agree_with_series_and_closed_forms():
    """The contour means equal the φ-function series for small |z| (where the closed forms
    cancel) and the closed forms for large |z|, for real and complex z."""
    small = np.array([1e-9, -0.3, 0.5, -0.7 + 0.4j, 0.2j])
    _, _, q, f1, f2, f3 = spectral.etdrk4_coefficients(small)
    p1, p2, p3 = (_phi(k, small) for k in (1, 2, 3))
    np.testing.assert_allclose(q, 0.5 * _phi(1, small / 2), rtol=1e-14)
    # Cox & Matthews' f₁, f₂, f₃ in terms of φ-functions.
    np.testing.assert_allclose(f1, p1 - 3 * p2 + 4 * p3, rtol=1e-13)
    np.testing.assert_allclose(f2, p2 - 2 * p3, rtol=1e-13)
    np.testing.assert_allclose(f3, -p2 + 4 * p3, rtol=1e-13)
    large = np.array([-40.0, -5.0 + 3j, 25j, -1035.0])
    z = large
    ez = np.exp(z)
    closed = (
        (np.exp(z / 2) - 1) / z,
        (-4 - z + ez * (4 - 3 * z + z * z)) / z**3,
        (2 + z + ez * (z - 2)) / z**3,
        (-4 - 3 * z - z * z + ez * (4 - z)) / z**3,
    )
    for got, want in zip(spectral.etdrk4_coefficients(large)[2:], closed, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-12)
    real = spectral.etdrk4_coefficients(np.array([-2.0, 0.1]))
    assert all(np.isrealobj(c) for c in real)


def test_order_four_on_a_forced_stiff_heat_equation():
    """u_t = ν u_xx + f(t, x) with the exact solution u = cos 3t sin πx + ½ sin 5t cos 4πx
    (f the forcing, given as N): hL reaches 10, the error still falls as h⁴."""
    nu, n, pi = 0.5, 16, math.pi
    x = spectral.grid(n, 1.0)

    def exact(t):
        return np.cos(3 * t) * np.sin(pi * x) + 0.5 * np.sin(5 * t) * np.cos(4 * pi * x)

    def forcing(t, u):
        ut = -3 * np.sin(3 * t) * np.sin(pi * x) + 2.5 * np.cos(5 * t) * np.cos(4 * pi * x)
        uxx = -(pi**2) * np.cos(3 * t) * np.sin(pi * x) - 8 * pi**2 * np.sin(5 * t) * np.cos(
            4 * pi * x
        )
        return spectral.spectrum(ut - nu * uxx)

    steps = (32, 64, 128)
    errors = []
    for s in steps:
        _, spectra, _ = spectral.etdrk4(
            exact(0.0), 1.0, lambda k: -nu * k * k, forcing, horizon=1.0, steps=s
        )
        errors.append(np.abs(spectral.values(spectra[-1], n) - exact(1.0)).max())
    assert abs(slope(steps, errors) - 4) < 0.3, errors
    assert errors[-1] < 1e-8


def test_order_four_on_a_kdv_soliton():
    """u_t + u u_x + δ²u_xxx = 0 has the soliton 3c sech²(√c (x − ct − x₀)/(2δ)), periodic to
    1e-12 on [−1, 1] for δ = 0.03: dispersion in the (complex) linear part, dealiased."""
    delta, c, x0, horizon, n = 0.03, 1.0, -0.1, 0.2, 256
    x = spectral.grid(n, 1.0)
    ik = 1j * spectral.rwavenumbers(n, 1.0)

    def soliton(t):
        y = x - c * t - x0
        return 3 * c / np.cosh(math.sqrt(c) / (2 * delta) * y) ** 2

    steps = (100, 200, 400)
    errors = []
    for s in steps:
        _, spectra, _ = spectral.etdrk4(
            soliton(0.0),
            1.0,
            lambda k: 1j * delta**2 * k**3,
            lambda t, u: -0.5 * ik * spectral.spectrum(u * u),
            horizon=horizon,
            steps=s,
            dealias=True,
        )
        errors.append(np.abs(spectral.values(spectra[-1], n) - soliton(horizon)).max())
    assert abs(slope(steps, errors) - 4) < 0.3, errors
    assert errors[-1] < 1e-6


def test_halving_the_step_changes_a_nonlinear_solution_sixteen_times_less():
    """Viscous Burgers u_t = ν u_xx − u u_x: successive changes under halving h fall ≈ 16×."""
    n, nu = 64, 0.05
    x = spectral.grid(n, 1.0)
    ik = 1j * spectral.rwavenumbers(n, 1.0)
    finals = [
        spectral.etdrk4(
            np.sin(np.pi * x) + 0.3,
            1.0,
            lambda k: -nu * k * k,
            lambda t, u: -0.5 * ik * spectral.spectrum(u * u),
            horizon=1.0,
            steps=s,
            dealias=True,
        )[1][-1]
        for s in (20, 40, 80, 160)
    ]
    changes = [np.abs(b - a).max() for a, b in itertools.pairwise(finals)]
    ratios = [a / b for a, b in itertools.pairwise(changes)]
    assert all(13 < r < 20 for r in ratios), (changes, ratios)


def test_the_solver_keeps_the_nyquist_mode_and_dealiased_modes_at_zero():
    n = 12
    x = spectral.grid(n, 1.0)
    u0 = np.cos(np.pi * x) + 1e-3 * np.cos(6 * np.pi * x)  # the Nyquist mode
    _, spectra, rates = spectral.etdrk4(
        u0,
        1.0,
        lambda k: -0.1 * k * k,
        lambda t, u: spectral.spectrum(-u * u),
        horizon=0.1,
        steps=4,
    )
    assert spectra.shape == rates.shape == (5, 6)  # modes 0 … 5: no Nyquist mode (6)
    _, spectra, _ = spectral.etdrk4(
        u0,
        1.0,
        lambda k: 0 * k,
        lambda t, u: spectral.spectrum(-u * u),
        horizon=0.1,
        steps=4,
        dealias=True,
    )
    assert spectra.shape == (5, 5)  # m ≤ n/3 = 4


def test_bad_settings_are_rejected():
    x = spectral.grid(16, 1.0)
    kw = dict(horizon=1.0, steps=10)
    with pytest.raises(pl.ParameterError, match="multiple of save_every"):
        spectral.etdrk4(
            np.cos(x), 1.0, lambda k: -k * k, lambda t, u: 0 * u[:9], save_every=3, **kw
        )
    with pytest.raises(pl.ParameterError, match=r"linear\(k\) must give finite values"):
        spectral.etdrk4(np.cos(x), 1.0, lambda k: k[:3], lambda t, u: 0 * u[:9], **kw)
    with pytest.raises(pl.ParameterError, match=r"nonlinear\(t, u\) must give a spectrum"):
        spectral.etdrk4(np.cos(x), 1.0, lambda k: -k * k, lambda t, u: 0 * u, **kw)
    with pytest.raises(pl.ParameterError, match="horizon must be a finite number > 0"):
        spectral.etdrk4(
            np.cos(x), 1.0, lambda k: -k * k, lambda t, u: 0 * u[:9], horizon=0.0, steps=2
        )
    with pytest.raises(pl.ParameterError, match="HeatKink holds while"):
        spectral.HeatKink(half_width=1.0, jump=1.0, diffusion=1.0).values(1.0, np.zeros(3))
    with pytest.raises(pl.ParameterError, match="shape"):
        spectral.etdrk4(np.ones(2), 1.0, lambda k: -k * k, lambda t, u: 0 * u, **kw)


# --- the kink's closed form --------------------------------------------------------------
def test_heat_kink_is_the_heat_flow_of_the_periodic_parabola():
    """HeatKink against the Fourier series a Σ 4L²(−1)^m/(π²m²) cos(mπx/L) e^{−ε(mπ/L)²t} of
    the periodic parabola a(x² − L²/3), a = −J/(4L), with and without the images at ±3L."""
    L, J = 1.5, 4.0
    a = -J / (4 * L)
    x = np.linspace(-L, L, 97)
    for eps, t in [(1e-4, 1e-2), (0.1, 0.3)]:
        kink = spectral.HeatKink(half_width=L, jump=J, diffusion=eps)
        m = np.arange(1, 6001)[:, None]
        series = a * (
            4
            * L**2
            * (-1.0) ** m
            / (math.pi * m) ** 2
            * np.cos(m * math.pi * x / L)
            * np.exp(-eps * (m * math.pi / L) ** 2 * t)
        ).sum(axis=0)
        np.testing.assert_allclose(kink.values(t, x), series, atol=1e-12)
        # periodic, and the same in torch
        np.testing.assert_allclose(kink.values(t, x + 2 * L), kink.values(t, x), atol=1e-12)
        tt = torch.full((len(x),), t, dtype=torch.float64)
        np.testing.assert_allclose(
            kink.torch(tt, torch.from_numpy(x)).numpy(), kink.values(t, x), atol=1e-14
        )
    kink = spectral.HeatKink(half_width=L, jump=J, diffusion=1e-4)
    np.testing.assert_allclose(kink.values(0.0, x), a * (x * x - L * L / 3), atol=1e-15)
    # The slope jumps by J at x = ±L.
    h = 1e-7
    jump = (kink.values(0.0, -L + h) - kink.values(0.0, -L)) / h - (
        kink.values(0.0, L) - kink.values(0.0, L - h)
    ) / h
    assert abs(jump - J) < 1e-5


def test_heat_kink_derivatives_by_autograd():
    """g_x and g_xx by autograd equal their closed forms, and g_t = ε g_xx."""
    L, J, eps = 1.0, 4.0, 1e-4
    kink = spectral.HeatKink(half_width=L, jump=J, diffusion=eps)
    g = torch.Generator().manual_seed(0)
    t = (1e-3 + 0.1 * torch.rand(64, generator=g, dtype=torch.float64)).requires_grad_()
    x = (L * (1 - 0.05 * torch.rand(64, generator=g, dtype=torch.float64))).requires_grad_()
    x = torch.cat([x[:32], -x[32:]])
    u = kink.torch(t, x)
    ut, ux = torch.autograd.grad(u.sum(), (t, x), create_graph=True)
    (uxx,) = torch.autograd.grad(ux.sum(), x)
    tn, xn = t.detach().numpy(), x.detach().numpy()
    sigma = np.sqrt(2 * eps * tn)
    a = -J / (4 * L)
    density = np.exp(-0.5 * ((xn - L) / sigma) ** 2) + np.exp(-0.5 * ((-L - xn) / sigma) ** 2)
    np.testing.assert_allclose(
        ux.detach().numpy(),
        2 * a * xn + J * (ndtr((xn - L) / sigma) - ndtr((-L - xn) / sigma)),
        atol=1e-12,
    )
    np.testing.assert_allclose(
        uxx.numpy(), 2 * a + J * density / (sigma * math.sqrt(2 * math.pi)), rtol=1e-12
    )
    np.testing.assert_allclose(ut.detach().numpy(), eps * uxx.numpy(), rtol=1e-12)


# --- evaluation ----------------------------------------------------------------------------
def _derivatives(f, tx: torch.Tensor, orders=3):
    """u, u_t and u_x, u_xx, … (``orders`` of them) of f at points (n, 2), by autograd."""
    tx = tx.clone().requires_grad_()
    u = f(tx)
    (grad,) = torch.autograd.grad(u.sum(), tx, create_graph=True)
    out = [u.detach(), grad[:, 0].detach()]
    d = grad[:, 1]
    for _ in range(orders - 1):
        out.append(d.detach())
        (d,) = torch.autograd.grad(d.sum(), tx, create_graph=True)
        d = d[:, 1]
    out.append(d.detach())
    return out


@pytest.mark.parametrize("problem_id", PROBLEMS)
def test_numpy_torch_and_grid_evaluations_agree(problem_id):
    sol = problem(problem_id).solution
    g = torch.Generator().manual_seed(0)
    tx = problem(problem_id).domain().sample_interior(300, generator=g, dtype=torch.float64)
    t, x = tx[:, 0].numpy(), tx[:, 1].numpy()
    np.testing.assert_allclose(sol.torch(tx).numpy(), sol(t, x), atol=1e-12)
    np.testing.assert_allclose(sol.on_grid(t[:5], x), sol(t[:5, None], x[None, :]), atol=1e-12)
    # At saved times on the grid points: the solver's values.
    xg = spectral.grid(sol.modes, sol.half_width)[::16]
    np.testing.assert_allclose(
        sol.on_grid(sol.times[::50], xg), sol.grid_values()[::50, ::16], atol=1e-12
    )
    with pytest.raises(pl.ParameterError, match="times must lie in"):
        sol(np.array([1.5]), np.array([0.0]))


@pytest.mark.parametrize("problem_id", PROBLEMS)
def test_x_derivatives_at_saved_times_are_spectral(problem_id):
    """u_x, u_xx, u_xxx of the interpolant (autograd, the computed part v) at saved times and
    grid points equal the spectral derivatives Σ (ik)^p v̂ e^{ik(x+L)}."""
    sol = dataclasses.replace(problem(problem_id).solution, known=None)
    x = spectral.grid(sol.modes, sol.half_width)[::8]
    for j in (0, 137, len(sol.times) - 1):
        tx = torch.from_numpy(np.stack([np.full_like(x, sol.times[j]), x], axis=1))
        parts = _derivatives(sol.torch, tx)
        ik = 1j * sol.k
        for p, got in zip((0, 1, 2, 3), [parts[0], *parts[2:]], strict=True):
            want = spectral.values(ik**p * sol.spectra[j], sol.modes)[::8]
            scale = np.abs(want).max()
            np.testing.assert_allclose(got.numpy(), want, atol=1e-11 * scale, err_msg=str(p))


@pytest.mark.parametrize("problem_id", PROBLEMS)
def test_time_derivative_is_the_equations_and_continuous(problem_id):
    """∂ₜ of the interpolant: at saved times the equation's own (C¹ across them); in between,
    the derivative of the Hermite cubic (against central differences of the numpy values)."""
    p = problem(problem_id)
    sol = p.solution
    g = torch.Generator().manual_seed(1)
    x = p.domain().sample_interior(200, generator=g, dtype=torch.float64)[:, 1]
    j = torch.randint(1, len(sol.times) - 1, (200,), generator=g)
    tj = torch.from_numpy(sol.times)[j]
    left = _derivatives(sol.torch, torch.stack([tj - 1e-13, x], 1), 1)[1]
    right = _derivatives(sol.torch, torch.stack([tj + 1e-13, x], 1), 1)[1]
    scale = float(right.abs().max())
    torch.testing.assert_close(left, right, atol=1e-9 * scale, rtol=0)
    # ... and between saved times, the derivative of the interpolant.
    spacing = sol.times[1] - sol.times[0]
    mid = tj + 0.37 * spacing
    ut = _derivatives(sol.torch, torch.stack([mid, x], 1), 1)[1]
    h = 1e-7
    central = (sol(mid.numpy() + h, x.numpy()) - sol(mid.numpy() - h, x.numpy())) / (2 * h)
    np.testing.assert_allclose(ut.numpy(), central, atol=1e-6 * scale)


@pytest.mark.parametrize(
    ("problem_id", "at_saved", "between"),
    # The residual against max |u_xx|, measured: at saved times 1.9e-10 (Allen–Cahn, at
    # t = 1e-3, where the kink's heat flow is still narrower than the grid; 1e-11 after) and
    # 2.4e-12 (KdV); between them 2.5e-7 (Allen–Cahn, in the first intervals within 0.01 of
    # x = ±1: the kink's √t; 1e-11 elsewhere) and 4e-11 (KdV).
    [("allen-cahn-1d", 1e-9, 5e-7), ("kdv", 1e-11, 2e-10)],
)
def test_residual_of_the_interpolant(problem_id, at_saved, between):
    p = problem(problem_id)
    sol, form = p.solution, p.strong_form()
    g = torch.Generator().manual_seed(2)
    x = form.domain.sample_interior(400, generator=g, dtype=torch.float64)
    spacing = sol.times[1] - sol.times[0]
    # (not t = 0: there u_t of the kinked data is infinite at x = ±1)
    x[:200, 0] = torch.from_numpy(sol.times[1 + np.arange(200) * 5 % (len(sol.times) - 1)])
    x[200:, 0] = torch.floor(x[200:, 0] / spacing) * spacing + 0.5 * spacing
    # the first intervals, near x = ±1 (Allen–Cahn's kink)
    x[200:300, 0] = (torch.arange(100) % 5 + 0.5) * spacing
    x[200:300, 1] = torch.linspace(0.99, 1, 100, dtype=torch.float64) * (-1) ** torch.arange(100)
    d = pl.Derivatives(lambda y: p.exact(y)[:, None], x, method="reverse", time_dependent=True)
    r = form.residual(d).detach().abs()
    scale = float(d.laplacian.detach().abs().max())
    assert float(r[:200].max()) < at_saved * scale
    assert float(r[200:].max()) < between * scale


# --- the problems --------------------------------------------------------------------------
@pytest.mark.parametrize(("problem_id", "rel_l2"), [("allen-cahn-1d", 1e-8), ("kdv", 1e-9)])
def test_reference_converges(problem_id, rel_l2):
    """Twice the modes and twice the steps change the reference on the evaluation grid by
    less than its stated accuracy (measured: max 2.8e-7, rel. l2 2.5e-9 for Allen–Cahn, near
    x = ±1 at t < 0.01; 1e-9, 1.5e-10 for KdV)."""
    p = problem(problem_id)
    finer = p.spectral_solution(2 * p.MODES, 2 * p.STEPS, 2 * p.SAVE_EVERY, cache=False)
    ours, theirs = p.grid_reference(), finer.on_grid(*p.grid())
    assert np.abs(ours - theirs).max() < p.truth_tolerance
    assert np.linalg.norm(ours - theirs) / np.linalg.norm(theirs) < rel_l2


@pytest.mark.parametrize("problem_id", PROBLEMS)
def test_initial_values_and_periodicity(problem_id):
    p = problem(problem_id)
    form = p.strong_form()
    g = torch.Generator().manual_seed(3)
    x0 = form.domain.sample_slice(256, 0.0, generator=g, dtype=torch.float64)
    torch.testing.assert_close(p.exact(x0), form.conditions["initial"].value(x0), atol=1e-9, rtol=0)
    t = torch.linspace(0.01, 1, 7, dtype=torch.float64)
    ends = torch.cat([torch.stack([t, -1 + 0 * t], 1), torch.stack([t, 1 + 0 * t], 1)])
    d = pl.Derivatives(lambda y: p.exact(y)[:, None], ends, method="reverse", time_dependent=True)
    torch.testing.assert_close(d.u[:7], d.u[7:], atol=1e-12, rtol=0)
    torch.testing.assert_close(d.grad[:7], d.grad[7:], atol=1e-9, rtol=0)


@pytest.mark.parametrize(
    ("problem_id", "params", "message"),
    [
        ("allen-cahn-1d", {"diffusion": 0.0}, "diffusion must be a finite number > 0, got 0.0"),
        ("allen-cahn-1d", {"reaction": -1.0}, "reaction must be a finite number ≥ 0, got -1.0"),
        ("kdv", {"dispersion": math.inf}, "dispersion must be a finite number > 0, got inf"),
        ("kdv", {"dim": 2}, "dim must be 1, got 2"),
    ],
)
def test_bad_parameters_are_rejected(problem_id, params, message):
    with pytest.raises(pl.ParameterError, match=f"{problem_id}: {message}"):
        pl.problem(problem_id, **params)


def test_reference_is_cached_and_keyed_by_the_equation(tmp_path, monkeypatch):
    monkeypatch.setenv("PINNLAB_CACHE", str(tmp_path))
    calls = []
    solve = spectral.etdrk4
    monkeypatch.setattr(spectral, "etdrk4", lambda *a, **k: calls.append(1) or solve(*a, **k))

    def reference(eps: float):
        return spectral.periodic_reference(
            lambda x: np.cos(np.pi * x),
            lambda k: -eps * k * k,
            lambda t, u: spectral.spectrum(u - u**3),
            equation={"id": "test", "eps": eps},
            half_width=1.0,
            horizon=0.1,
            modes=32,
            steps=8,
            save_every=2,
        )

    first, again = reference(0.01), reference(0.01)
    assert len(calls) == 1
    np.testing.assert_array_equal(first.spectra, again.spectra)
    (path,) = (tmp_path / "references").glob("*.npz")
    path.write_bytes(path.read_bytes()[:100])  # truncated: recomputed
    np.testing.assert_array_equal(reference(0.01).rates, first.rates)
    assert len(calls) == 2
    reference(0.02)  # another equation, another file
    assert len(calls) == 3 and len(list((tmp_path / "references").glob("*.npz"))) == 2


def test_an_under_resolved_reference_warns():
    ik = 1j * spectral.rwavenumbers(64, 1.0)
    with pytest.warns(pl.AccuracyWarning, match="under-resolved; give it more modes"):
        spectral.periodic_reference(
            lambda x: np.cos(np.pi * x),
            lambda k: 1j * 0.022**2 * k**3,
            lambda t, u: -0.5 * ik * spectral.spectrum(u * u),
            equation={"id": "test-kdv"},
            half_width=1.0,
            horizon=0.5,
            modes=64,
            steps=500,
            dealias=True,
            cache=False,
        )
