"""The finite-difference references: the lid-driven cavity against Ghia, Ghia & Shin (1982),
both references' grid convergence, and their data on the right parts of the boundary."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch
from scipy.interpolate import RegularGridInterpolator

import pinnlab as pl
from pinnlab import finite_differences as fd
from pinnlab import parts


def _module(problem_id: str):
    return sys.modules[pl.catalogue()[problem_id].__module__]


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


# --- the 5-point solver -----------------------------------------------------------------------
def test_the_5_point_solver_is_exact_for_a_quadratic_with_neumann_edges():
    """u = (1 − x²)/2 solves −Δu = 1 on [0, 1]² with u = 0 on x = 1 and ∂u/∂n = 0 on the three
    other edges; the scheme (ghost nodes included) is exact for quadratics."""
    n = 16
    free = np.ones((n + 1, n + 1), dtype=bool)
    free[-1, :] = False  # x = 1 is data; the other edges of the grid take ghost nodes
    u = fd.poisson_grid(free, 1.0 / n)
    x = np.linspace(0.0, 1.0, n + 1)
    np.testing.assert_allclose(u, np.broadcast_to((1 - x**2)[:, None] / 2, u.shape), atol=1e-12)
    with pytest.raises(pl.ParameterError, match="free nodes"):
        fd.poisson_grid(np.zeros((4, 4), dtype=bool), 0.25)


def _slit_square_grid_before(n: int) -> np.ndarray:
    """poisson-slit-square's 5-point solver as it was written before the generic one."""
    import scipy.sparse as sparse
    import scipy.sparse.linalg as linalg

    i, j = np.meshgrid(np.arange(1, n), np.arange(1, n), indexing="ij")
    free = ~((j == n // 2) & (i >= n // 2))
    i, j = i[free], j[free]
    index = -np.ones((n + 1, n + 1), dtype=np.int64)
    index[i, j] = np.arange(len(i))
    rows, cols, vals = [np.arange(len(i))], [np.arange(len(i))], [np.full(len(i), 4.0)]
    for di, dj in ((1, 0), (-1, 0), (0, 1), (0, -1)):
        neighbour = index[i + di, j + dj]
        inside = neighbour >= 0
        rows.append(np.flatnonzero(inside))
        cols.append(neighbour[inside])
        vals.append(-np.ones(inside.sum()))
    a = sparse.csc_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(len(i),) * 2
    )
    u = np.zeros((n + 1, n + 1))
    u[i, j] = linalg.spsolve(a, np.full(len(i), (2.0 / n) ** 2))
    return u


def test_the_slit_square_grid_is_bit_identical_to_its_former_solver():
    grid = _module("poisson-slit-square").slit_square_grid
    for n in (8, 64, 256):
        assert np.array_equal(grid(n), _slit_square_grid_before(n)), n


# --- poisson-lshape ---------------------------------------------------------------------------
def test_the_lshape_grid_converges_at_the_corner_s_rate():
    """The re-entrant corner's r^{2/3} leaves an h^{4/3} error in l2 (h^{2/3} in the max norm
    beside it); Richardson extrapolation for h^{4/3} removes most of it."""
    grid = _module("poisson-lshape").lshape_grid
    u = {n: grid(n) for n in (32, 64, 128, 256)}
    diff = {n: _rel(u[n], u[2 * n][::2, ::2]) for n in (32, 64, 128)}
    for n in (32, 64):
        assert 2.0 ** (4 / 3) - 0.15 < diff[n] / diff[2 * n] < 2.0 ** (4 / 3) + 0.15
    peak = {n: np.abs(u[n] - u[2 * n][::2, ::2]).max() for n in (64, 128)}
    assert 2.0 ** (2 / 3) - 0.15 < peak[64] / peak[128] < 2.0 ** (2 / 3) + 0.15
    r = 2.0 ** (4 / 3)
    e64 = (r * u[128][::2, ::2] - u[64]) / (r - 1)
    e128 = (r * u[256][::2, ::2] - u[128]) / (r - 1)
    assert _rel(e64, e128[::2, ::2]) < 0.05 * diff[128]


@pytest.mark.parametrize("flux", [0.0, 0.5])
def test_the_lshape_grid_has_the_problem_s_data(flux):
    n = 128
    h = 2.0 / n
    u = _module("poisson-lshape").lshape_grid(n, flux)
    m = n // 2
    # u = 0 on x = 1, y = 1 and on the cut (and on the nodes of [0, 1]² it removes).
    assert np.all(u[-1] == 0) and np.all(u[:, -1] == 0) and np.all(u[m:, m:] == 0)
    assert (u[:-1, :m] > 0).all() and (u[:m, :-1] > 0).all()  # −Δu = 1 > 0 inside
    np.testing.assert_allclose(u, u.T, rtol=0, atol=1e-12)  # the L is symmetric about y = x
    # ∂u/∂n = flux on x = −1 and y = −1 (one-sided, second order; away from the corners
    # where the edges meet the Dirichlet ones).
    dn_left = -(-3 * u[0] + 4 * u[1] - u[2]) / (2 * h)
    dn_bottom = -(-3 * u[:, 0] + 4 * u[:, 1] - u[:, 2]) / (2 * h)
    keep = slice(n // 8, n - n // 8)
    np.testing.assert_allclose(dn_left[keep], flux, atol=2e-3)
    np.testing.assert_allclose(dn_bottom[keep], flux, atol=2e-3)
    with pytest.raises(pl.ParameterError, match="even n"):
        _module("poisson-lshape").lshape_grid(33)


def test_the_lshape_problem_puts_its_conditions_on_the_named_edges():
    problem = pl.problem("poisson-lshape", flux=0.5)
    form = problem.strong_form()
    g = torch.Generator().manual_seed(0)
    y, normal = parts.sample(form.domain, form.conditions["flux"].on, 256, generator=g)
    left = y[:, 0] == -1.0
    assert (left | (y[:, 1] == -1.0)).all() and 0 < left.sum() < 256
    expected = torch.where(left[:, None], torch.tensor([-1.0, 0.0]), torch.tensor([0.0, -1.0]))
    assert torch.equal(normal, expected)
    y, _ = parts.sample(form.domain, form.conditions["dirichlet"].on, 512, generator=g)
    on_edge = (y[:, 0] == 1.0) | (y[:, 1] == 1.0) | (y[:, 0] == 0.0) | (y[:, 1] == 0.0)
    assert on_edge.all() and not ((y[:, 0] == -1.0) | (y[:, 1] == -1.0)).any()
    assert set(problem.energy_form().conditions) == {"dirichlet", "flux"}
    with pytest.raises(pl.ParameterError, match="flux must be a finite number"):
        pl.problem("poisson-lshape", flux=float("nan"))


def test_the_lshape_reference_is_cached_and_converged(monkeypatch):
    """The shipped reference (n = 512 and 256) against the same from n = 256 and 128: they
    differ by less than 1e-4 at the points (the finer is within 1.0e-5 of n = 1024's)."""
    problem = pl.problem("poisson-lshape")
    ref = problem.reference()
    assert ref.x.shape == (4096, 2) and (ref.value > 0).all()
    assert problem.domain().contains(ref.x).all()
    assert torch.equal(problem.reference().value, ref.value)  # from the cache
    monkeypatch.setattr(_module("poisson-lshape"), "LSHAPE_GRID", 256)
    coarse = problem.reference()
    assert torch.equal(coarse.x, ref.x)
    assert 1e-6 < _rel(coarse.value.numpy(), ref.value.numpy()) < 1e-4


@pytest.mark.slow
def test_the_lshape_reference_agrees_with_a_finer_one(monkeypatch):
    problem = pl.problem("poisson-lshape")
    ref = problem.reference()
    monkeypatch.setattr(_module("poisson-lshape"), "LSHAPE_GRID", 1024)
    assert _rel(ref.value.numpy(), problem.reference().value.numpy()) < 2e-5


# --- cavity -----------------------------------------------------------------------------------
#: Ghia, Ghia & Shin, J. Comput. Phys. 48 (1982) 387, Table I: u along the vertical centre
#: line x = 0.5 at Re = 100, at the points (grid index k of their 129² grid, y = (k − 1)/128).
GHIA_U = (
    (129, 1.00000),
    (126, 0.84123),
    (125, 0.78871),
    (124, 0.73722),
    (123, 0.68717),
    (110, 0.23151),
    (95, 0.00332),
    (80, -0.13641),
    (65, -0.20581),
    (59, -0.21090),
    (37, -0.15662),
    (23, -0.10150),
    (14, -0.06434),
    (10, -0.04775),
    (9, -0.04192),
    (8, -0.03717),
    (1, 0.00000),
)
#: Table II: v along the horizontal centre line y = 0.5 at Re = 100 (x = (k − 1)/128).
GHIA_V = (
    (129, 0.00000),
    (125, -0.05906),
    (124, -0.07391),
    (123, -0.08864),
    (122, -0.10313),
    (117, -0.16914),
    (111, -0.22445),
    (104, -0.24533),
    (65, 0.05454),
    (31, 0.17527),
    (30, 0.17507),
    (21, 0.16077),
    (13, 0.12317),
    (11, 0.10890),
    (10, 0.10091),
    (9, 0.09233),
    (1, 0.00000),
)


def _ghia(values) -> tuple[np.ndarray, np.ndarray]:
    k, value = np.array(values).T
    return (k - 1) / 128, value


def test_the_cavity_reference_agrees_with_ghia():
    """Ghia's multigrid solution on their 129² grid carries errors of a few 1e-3 at Re = 100
    (up to 9e-3 in v near x = 0.86, where this reference agrees with a solve on 512² cells to
    1e-5): agreement to 1e-2 of the lid speed at every point, 5e-3 in the mean square."""
    problem = pl.problem("cavity")
    y, u_ghia = _ghia(GHIA_U)
    x, v_ghia = _ghia(GHIA_V)
    u = problem.velocity(np.stack([np.full_like(y, 0.5), y], axis=1))[:, 0]
    v = problem.velocity(np.stack([x, np.full_like(x, 0.5)], axis=1))[:, 1]
    miss = np.concatenate([u - u_ghia, v - v_ghia])
    assert np.abs(miss).max() < 1e-2 and np.sqrt(np.mean(miss**2)) < 5e-3
    # The primary vortex: u changes sign between y = 0.62 and 0.73, v between x = 0.5 and
    # 0.80, as Ghia's do.
    assert u[6] > 0 > u[7] and v[8] > 0 > v[7]


def _at(grid: tuple[np.ndarray, np.ndarray], x: np.ndarray) -> np.ndarray:
    nodes = np.linspace(0.0, 1.0, grid[0].shape[0])
    return np.stack(
        [RegularGridInterpolator((nodes, nodes), c, method="cubic")(x) for c in grid], axis=1
    )


def _corner_distance(x: np.ndarray) -> np.ndarray:
    return np.minimum(np.hypot(x[:, 0], x[:, 1] - 1), np.hypot(x[:, 0] - 1, x[:, 1] - 1))


def test_the_cavity_grid_converges():
    """Standard lid: away from the singular top corners the extrapolated grids' change falls
    about tenfold per halving of h, overall about twofold (first order at the corners) — the
    n = 128 level is within 1e-2 of the shipped n = 256 reference. Regularised lid: fifteen-fold
    per halving everywhere (the shipped reference's error is then about 2e-6)."""
    velocity_grid = _module("cavity").cavity_velocity_grid
    for lid, far, near in (("standard", 8.0, 1.8), ("regularised", 12.0, 12.0)):
        problem = pl.problem("cavity", lid=lid)
        ref = problem.reference()
        x, b = ref.x.numpy(), ref.value.numpy()
        away = _corner_distance(x) > 0.1
        err = {}
        for n in (32, 64, 128):
            a = _at(velocity_grid(n, 100.0, problem._lid_profile()), x)
            err[n] = (_rel(a, b), _rel(a[away], b[away]))
        assert err[32][1] / err[64][1] > far and err[64][1] / err[128][1] > far, (lid, err)
        assert err[32][0] / err[64][0] > near and err[64][0] / err[128][0] > near, (lid, err)
        assert err[128][0] < (1e-2 if lid == "standard" else 1e-4), (lid, err)


@pytest.mark.slow
def test_the_cavity_reference_is_within_its_stated_error_of_a_finer_one():
    """n = 512 and 256 against the shipped n = 256 and 128 (about five minutes on one core)."""
    problem = pl.problem("cavity")
    ref = problem.reference()
    x, b = ref.x.numpy(), ref.value.numpy()
    finer = _at(_module("cavity").cavity_velocity_grid(512, 100.0), x)
    far = _corner_distance(x) > 0.02
    assert _rel(b, finer) < 3.5e-3 and _rel(b[far], finer[far]) < 5e-4


@pytest.mark.parametrize("lid", ["standard", "regularised"])
def test_the_cavity_reference_has_the_wall_data(lid):
    problem = pl.problem("cavity", lid=lid)
    u, v = problem.velocity_grid()
    assert u.shape == v.shape == (257, 257)
    for walls in (u[0], u[-1], u[:, 0], v[0], v[-1], v[:, 0], v[:, -1]):
        np.testing.assert_allclose(walls, 0.0, atol=1e-12)  # no slip, no flow through
    s = torch.linspace(0.1, 0.9, 17, dtype=torch.float64)
    lid_points = torch.stack([s, torch.ones_like(s)], dim=1)
    speed = problem.lid_speed(lid_points).numpy()
    np.testing.assert_allclose(problem.velocity(lid_points.numpy())[:, 0], speed, atol=1e-6)
    assert (speed == 1.0).all() if lid == "standard" else abs(speed[8] - 1.0) < 1e-12
    for wall in (torch.stack([s, torch.zeros_like(s)], 1), torch.stack([s * 0, s], 1)):
        np.testing.assert_allclose(problem.velocity(wall.numpy()), 0.0, atol=1e-12)


def test_the_cavity_s_conditions_and_parameters():
    problem = pl.problem("cavity")
    form = problem.strong_form()
    assert form.outputs == 3 and set(form.conditions) == {"u_lid", "u_walls", "v"}
    assert [c.output for c in form.conditions.values()] == [0, 0, 1]
    g = torch.Generator().manual_seed(0)
    y, _ = parts.sample(form.domain, form.conditions["u_lid"].on, 64, generator=g)
    assert (y[:, 1] == 1.0).all()
    y, _ = parts.sample(form.domain, form.conditions["u_walls"].on, 256, generator=g)
    assert (y[:, 1] < 1.0).all() and ((y == 0.0) | (y[:, :1] == 1.0)).any(dim=1).all()
    for bad in ({"re": 0.0}, {"re": 1000.0}, {"re": float("inf")}, {"lid": "smooth"}):
        with pytest.raises(pl.ParameterError):
            pl.problem("cavity", **bad)
    with pytest.raises(pl.ParameterError, match="even n"):
        _module("cavity").cavity_velocity_grid(15, 100.0)
    with pytest.raises(pl.ParameterError, match="re > 0"):
        fd.cavity_grid(16, -1.0)


def test_a_cavity_run_reports_its_velocity_error(monkeypatch):
    """The reference is (u, v) of three outputs: ref_rel_l2 is rel_l2_velocity."""
    monkeypatch.setattr(_module("cavity"), "CAVITY_GRID", 16)
    monkeypatch.setattr(_module("cavity"), "CAVITY_POINTS", 128)
    sol = pl.solve(
        "cavity",
        net={"width": 8, "depth": 2},
        train={"steps": 2},
        solver={"n_interior": 32, "n_boundary": 32},
    )
    metrics = sol.metrics
    assert {"rel_l2_velocity", "rel_l2_u", "rel_l2_v", "ref_rel_l2"} <= set(metrics)
    assert metrics["rel_l2_velocity"] == pytest.approx(metrics["ref_rel_l2"], rel=1e-12)
    assert np.isfinite(list(metrics.values())).all()
