"""Finite-difference reference solvers on uniform grids (numpy and scipy.sparse, float64).

Two solvers for the catalogue's computed references:

- ``poisson_grid``: the 5-point solution of −Δu = f on the free nodes of a uniform grid,
  zero Dirichlet data on the other nodes of the grid, and ∂u/∂n = g (a ghost node mirrored
  across the edge: second order) on free nodes of the grid's outer edges;
- ``cavity_grid``: the steady lid-driven cavity in stream function–vorticity form,
  second-order central differences with Thom's wall vorticity, solved by Newton's method with
  sparse direct solves; ``cavity_velocity`` gives its velocity at the nodes.

Arrays are indexed ``U[i, j] ≈ u(xᵢ, yⱼ)`` (x first). scipy is imported where it is used.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .errors import ParameterError, PinnlabError

#: The four neighbours of a node, in the order the 5-point matrix lists them.
NEIGHBOURS = ((1, 0), (-1, 0), (0, 1), (0, -1))
#: Up to this Reynolds number the cavity's Newton iteration starts from rest; above it, it
#: continues from the solution at half the Reynolds number (and so on down to here).
CONTINUATION = 100.0


def poisson_grid(free: np.ndarray, h: float, *, source: float = 1.0, flux: float = 0.0):
    """The 5-point solution of −Δu = ``source`` on a uniform grid of spacing h.

    ``free`` (a bool array (nx + 1, ny + 1) over the nodes) marks the unknowns; every other
    node of the grid is Dirichlet data u = 0. A free node on the grid's outer edge misses a
    neighbour beyond it: there ∂u/∂n = ``flux`` (n outward) by a ghost node, u_ghost =
    u_mirror + 2h·flux, the mirror being the neighbour on the other side (second order; at a
    corner of two such edges, one ghost each). Rows: 4u_P − Σ u_nb = h²·source (+ 2h·flux per
    ghost). Returns U (nx + 1, ny + 1), zero off the free nodes; a sparse direct solve.
    """
    import scipy.sparse as sparse
    import scipy.sparse.linalg as linalg

    free = np.asarray(free, dtype=bool)
    if free.ndim != 2 or not free.any():
        raise ParameterError(f"poisson_grid needs a 2-d mask with free nodes, got {free.shape}.")
    i, j = np.nonzero(free)
    m = len(i)
    index = -np.ones((free.shape[0] + 2, free.shape[1] + 2), dtype=np.int64)  # padded by one
    index[i + 1, j + 1] = np.arange(m)
    beyond = np.zeros(index.shape, dtype=bool)
    beyond[[0, -1], :] = beyond[:, [0, -1]] = True
    rows, cols, vals = [np.arange(m)], [np.arange(m)], [np.full(m, 4.0)]
    ghosts = []
    for di, dj in NEIGHBOURS:
        neighbour = index[i + 1 + di, j + 1 + dj]
        inside = neighbour >= 0
        rows.append(np.flatnonzero(inside))
        cols.append(neighbour[inside])
        vals.append(-np.ones(inside.sum()))
        ghosts.append((di, dj, beyond[i + 1 + di, j + 1 + dj]))
    rhs = np.full(m, h**2) * source
    for di, dj, ghost in ghosts:
        if not ghost.any():
            continue
        mirror = index[i[ghost] + 1 - di, j[ghost] + 1 - dj]
        rows.append(np.flatnonzero(ghost)[mirror >= 0])
        cols.append(mirror[mirror >= 0])
        vals.append(-np.ones((mirror >= 0).sum()))
        rhs[ghost] += 2 * h * flux
    a = sparse.csc_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(m, m)
    )
    u = np.zeros(free.shape)
    u[i, j] = linalg.spsolve(a, rhs)
    return u


def cavity_grid(
    n: int,
    re: float,
    lid: Callable[[np.ndarray], np.ndarray] | None = None,
    *,
    tol: float = 1e-11,
    max_iter: int = 40,
) -> tuple[np.ndarray, np.ndarray]:
    """The steady lid-driven cavity on [0, 1]², n cells a side (h = 1/n): stream function ψ
    and vorticity ω, (n + 1, n + 1) each, with u = ∂ψ/∂y, v = −∂ψ/∂x, ω = ∂v/∂x − ∂u/∂y:

        −Δψ = ω,   ψ_y ω_x − ψ_x ω_y = Δω / Re   in (0, 1)²,   ψ = 0 on the walls,

    the lid y = 1 moving at u = lid(x) (1 when None: the standard discontinuous lid), the
    other walls at rest. Second-order central differences at the interior nodes; the wall
    vorticity by Thom's formula ω_w = −2ψ₁/h² − 2U_w/h (ψ₁ the node next to the wall, U_w the
    wall's tangential speed, counted along +x on the lid), the corners unused. The discrete
    equations are solved by Newton's method from ψ = ω = 0 (its first step is nearly Stokes
    flow) with a sparse LU of the exact Jacobian, until the update is below ``tol`` relative
    to the solution: seven steps at Re = 100; above ``CONTINUATION`` by continuation in Re.
    """
    import scipy.sparse as sparse
    import scipy.sparse.linalg as linalg

    if n < 4:
        raise ParameterError(f"the cavity grid needs n ≥ 4 cells a side, got {n}.")
    if not (np.isfinite(re) and re > 0):
        raise ParameterError(f"the cavity needs a Reynolds number re > 0, got {re!r}.")
    h, k = 1.0 / n, n - 1
    x = np.linspace(0.0, 1.0, n + 1)
    speed = np.ones(k) if lid is None else np.asarray(lid(x[1:-1]), dtype=np.float64)

    # 1-d pieces over the n + 1 nodes of a line, rows for its n − 1 interior nodes.
    eye = sparse.eye(k, n + 1, k=1, format="csr")  # restriction to the interior
    d1 = (sparse.eye(k, n + 1, k=2) - sparse.eye(k, n + 1)) / (2 * h)
    l1 = (sparse.eye(k, n + 1) - 2 * sparse.eye(k, n + 1, k=1) + sparse.eye(k, n + 1, k=2)) / h**2
    lap = sparse.kron(l1, eye) + sparse.kron(eye, l1)  # full grid → interior rows, index i(n+1)+j
    dx, dy = sparse.kron(d1, eye), sparse.kron(eye, d1)
    embed = sparse.kron(eye.T, eye.T).tocsr()  # interior → full grid (zero on the walls)
    # Thom: the wall vorticity from ψ at the node next to each wall (corners left at 0).
    wall_rows, wall_cols = [], []
    inner = np.arange(1, n)

    def node(i, j):
        return np.asarray(i) * (n + 1) + np.asarray(j)

    def unknown(i, j):
        return (np.asarray(i) - 1) * k + (np.asarray(j) - 1)

    for wall, nearest in (
        ((inner, 0), (inner, 1)),  # bottom y = 0
        ((inner, n), (inner, n - 1)),  # lid y = 1
        ((0, inner), (1, inner)),  # left x = 0
        ((n, inner), (n - 1, inner)),  # right x = 1
    ):
        wall_rows.append(node(*wall) * np.ones(k, dtype=np.int64))
        wall_cols.append(unknown(*nearest) * np.ones(k, dtype=np.int64))
    thom = sparse.csr_matrix(
        (np.full(4 * k, -2.0 / h**2), (np.concatenate(wall_rows), np.concatenate(wall_cols))),
        shape=((n + 1) ** 2, k * k),
    )
    lid_term = np.zeros((n + 1) ** 2)
    lid_term[node(inner, n)] = -2.0 * speed / h

    lap_e, dx_e, dy_e = (op @ embed for op in (lap, dx, dy))
    lap_t, dx_t, dy_t = (op @ thom for op in (lap, dx, dy))
    ident = sparse.eye(k * k, format="csr")

    def newton(nu: float, psi: np.ndarray, omega: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        for _ in range(max_iter):
            psi_full = embed @ psi
            omega_full = embed @ omega + thom @ psi + lid_term
            px, py = dx @ psi_full, dy @ psi_full
            wx, wy = dx @ omega_full, dy @ omega_full
            f1 = -lap_e @ psi - omega
            f2 = nu * (lap @ omega_full) - (py * wx - px * wy)
            j21 = (
                nu * lap_t
                - sparse.diags(wx) @ dy_e
                + sparse.diags(wy) @ dx_e
                - sparse.diags(py) @ dx_t
                + sparse.diags(px) @ dy_t
            )
            j22 = nu * lap_e - sparse.diags(py) @ dx_e + sparse.diags(px) @ dy_e
            jacobian = sparse.bmat([[-lap_e, -ident], [j21, j22]], format="csc")
            step = linalg.spsolve(jacobian, -np.concatenate([f1, f2]))
            psi, omega = psi + step[: k * k], omega + step[k * k :]
            change = max(
                np.abs(step[: k * k]).max() / max(np.abs(psi).max(), 1e-300),
                np.abs(step[k * k :]).max() / max(np.abs(omega).max(), 1e-300),
            )
            if change < tol:
                return psi, omega
        raise PinnlabError(
            f"the cavity's Newton iteration did not converge in {max_iter} steps (n = {n}, "
            f"re = {1 / nu:g}); lower re or refine the grid."
        )

    psi, omega = np.zeros(k * k), np.zeros(k * k)
    for stage in _continuation(re):
        psi, omega = newton(1.0 / stage, psi, omega)
    psi_full = (embed @ psi).reshape(n + 1, n + 1)
    omega_full = (embed @ omega + thom @ psi + lid_term).reshape(n + 1, n + 1)
    return psi_full, omega_full


def _continuation(re: float) -> list[float]:
    """The Reynolds numbers Newton's method goes through: re itself up to ``CONTINUATION``,
    else from there up to re by factors of at most 2 (each solution starts the next)."""
    stages = [re]
    while stages[0] > CONTINUATION:
        stages.insert(0, max(stages[0] / 2, CONTINUATION))
    return stages


def cavity_velocity(
    psi: np.ndarray, lid: Callable[[np.ndarray], np.ndarray] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(u, v) at the nodes of a cavity solution ψ (n + 1, n + 1): u = ∂ψ/∂y, v = −∂ψ/∂x by
    central differences inside (second order), the wall data on the walls (u = lid(x) on the
    lid, 1 when None; the lid's two end nodes are corners of the walls at rest: u = 0)."""
    n = psi.shape[0] - 1
    h = 1.0 / n
    u, v = np.zeros_like(psi), np.zeros_like(psi)
    u[1:-1, 1:-1] = (psi[1:-1, 2:] - psi[1:-1, :-2]) / (2 * h)
    v[1:-1, 1:-1] = -(psi[2:, 1:-1] - psi[:-2, 1:-1]) / (2 * h)
    x = np.linspace(0.0, 1.0, n + 1)[1:-1]
    u[1:-1, -1] = 1.0 if lid is None else lid(x)
    return u, v
