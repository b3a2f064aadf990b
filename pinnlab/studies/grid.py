"""A classical finite-difference baseline: what a grid method costs as the dimension grows.

Second-order central differences for −∇·(a∇u) + c u = f (constant a > 0, c ≥ 0) with Dirichlet
data, on the uniform grid of n interior nodes per axis of the domain's bounding box. The error
decays like C·n^(−2) while the unknowns grow like n^d: reaching an error ε takes
(C/ε)^(d/2) grid points, the curse of dimensionality. ``fit_grid`` fits that model on
solves at one dimension and ``GridModel`` extrapolates it to others.
"""

from __future__ import annotations

import math
import numbers
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
import torch
from torch import Tensor

from ..domains import SpaceTime
from ..errors import ConfigError, ParameterError, PinnlabError
from ..problem import Dirichlet, EnergyForm

#: Largest grid (nodes of the bounding box) ``solve_grid`` assembles.
MAX_UNKNOWNS = 5_000_000
#: Up to this many unknowns in d ≤ 2 a sparse direct solve; above, and in d ≥ 3 (where the
#: direct solver's fill-in makes it 100x slower already at 14,000 unknowns), conjugate gradients.
DIRECT_LIMIT = 50_000
#: Relative residual tolerance of conjugate gradients.
CG_RTOL = 1e-10


@dataclass(frozen=True)
class GridSolve:
    """One finite-difference solve: grid size, error against the exact solution, wall time."""

    dim: int
    n: int  # grid points per axis (interior nodes of the bounding box per axis)
    unknowns: int  # number of unknowns actually solved for (nodes inside the domain)
    rel_l2: float  # ‖u_h − u‖₂ / ‖u‖₂ over the unknown nodes (discrete l2)
    rel_l2_centered: float  # ‖e − ē‖₂ / ‖u − ū‖₂: not fooled by a large mean of u
    max_abs: float  # max |u_h − u| over the unknown nodes
    seconds: float  # wall time of assembly + solve


def _constant(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ConfigError(
            f"the grid solver needs a constant numeric {name}, got {type(value).__name__}; "
            "variable coefficients are not supported."
        )
    return float(value)


def _evaluate(fn: Callable[[Tensor], Tensor], x: np.ndarray, what: str) -> np.ndarray:
    """fn at the points x (m, d), in float64 torch, as a float64 numpy vector (m,)."""
    if len(x) == 0:
        return np.zeros(0)
    with torch.no_grad():
        y = fn(torch.from_numpy(np.ascontiguousarray(x)))
    y = np.asarray(y.detach().cpu().numpy(), dtype=np.float64).reshape(len(x), -1)
    if y.shape[1] != 1:
        raise ConfigError(f"the grid solver needs a scalar {what}, got {y.shape[1]} outputs.")
    return y[:, 0]


def _check(problem: object, n: int) -> tuple[EnergyForm, Callable[[Tensor], Tensor]]:
    """The energy form and exact solution of ``problem``, or a ConfigError saying what lacks."""
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 2:
        raise ConfigError(f"the grid needs n ≥ 2 interior nodes per axis, got n={n!r}.")
    if not callable(getattr(problem, "energy_form", None)):
        raise ConfigError(
            f"the grid solver needs the energy form −∇·(a∇u) + c u = f; {problem} has none."
        )
    exact = getattr(problem, "exact", None)
    if not callable(exact):
        raise ConfigError(
            f"the grid solver measures its error against an exact solution; {problem} has none."
        )
    form = problem.energy_form()
    if isinstance(form.domain, SpaceTime):
        raise ConfigError("the grid solver is stationary: its domain cannot be SpaceTime.")
    if form.outputs != 1:
        raise ConfigError(f"the grid solver needs a scalar unknown, got {form.outputs} outputs.")
    a = _constant("diffusion", form.diffusion)
    c = _constant("reaction", form.reaction)
    if not (a > 0 and c >= 0 and math.isfinite(a) and math.isfinite(c)):
        raise ConfigError(
            f"the grid solver needs diffusion a > 0 and reaction c ≥ 0, got {a}, {c}."
        )
    others = [name for name, cond in form.conditions.items() if not isinstance(cond, Dirichlet)]
    if others:
        raise ConfigError(
            f"the grid solver imposes Dirichlet data only; condition(s) {', '.join(others)} "
            "are not Dirichlet (Neumann conditions are not supported)."
        )
    if not form.conditions:
        raise ConfigError("the grid solver needs Dirichlet data; this energy form has none.")
    return form, exact


def _second_difference(m: int, h: float) -> sp.csr_array:
    """The 1-d matrix of −d²/dx² on m nodes of spacing h: tridiag(−1, 2, −1)/h²."""
    return sp.diags_array([-1.0, 2.0, -1.0], offsets=[-1, 0, 1], shape=(m, m), format="csr") / h**2


def _laplacian(n: int, h: np.ndarray) -> sp.csr_array:
    """−Δ on the n^d grid (last axis fastest), zero Dirichlet data outside: the Kronecker sum
    Σᵢ I ⊗ … ⊗ Tᵢ ⊗ … ⊗ I of the 1-d second differences Tᵢ."""
    d = len(h)
    total = sp.csr_array((n**d, n**d))
    for i in range(d):
        left = sp.eye_array(n**i, format="csr")
        right = sp.eye_array(n ** (d - 1 - i), format="csr")
        term = sp.kron(sp.kron(left, _second_difference(n, h[i]), format="csr"), right)
        total = total + term.tocsr()
    return total.tocsr()


def solve_grid(problem: object, n: int) -> GridSolve:
    """Second-order finite differences for −∇·(a∇u) + c u = f with Dirichlet data, on the uniform
    grid of n interior nodes per axis of the domain's bounding box (spacing h = (high−low)/(n+1)).

    The unknowns are the nodes with ``domain.distance(x) > 0``; the (2d+1)-point scheme
    a Σᵢ (2uₖ − uₖ₋ₑᵢ − uₖ₊ₑᵢ)/hᵢ² + c uₖ = f(xₖ) couples each to its 2d neighbours. A neighbour
    that is not an unknown takes the value of ``problem.exact`` there: the Dirichlet data on a
    box, whose face nodes lie on the boundary; on a curved boundary, the exact solution extended
    past the boundary (the classical "exact values at ghost nodes" treatment, still
    second-order). The error is measured in discrete l2 and max norm over the unknowns.
    """
    form, exact = _check(problem, n)
    domain = form.domain
    a, c = float(form.diffusion), float(form.reaction)
    low, high = (t.to(torch.float64).cpu().numpy() for t in domain.bounds())
    d = len(low)
    if float(n) ** d > MAX_UNKNOWNS:
        raise ConfigError(
            f"a grid of n^d = {n}^{d} = {float(n) ** d:.3g} nodes is above the limit of "
            f"{MAX_UNKNOWNS:,} unknowns the grid solver assembles (memory): choose a smaller n."
        )

    start = time.perf_counter()
    h = (high - low) / (n + 1)
    index = np.indices((n,) * d).reshape(d, -1).T  # (n^d, d), 0-based, last axis fastest
    nodes = low + (index + 1) * h
    try:
        inside = _evaluate(domain.distance, nodes, "distance") > 0
    except ParameterError as e:
        raise ConfigError(f"the grid solver needs a domain distance function: {e}") from None
    unknown = np.flatnonzero(inside)
    if len(unknown) == 0:
        raise ConfigError(f"no grid node with n={n} lies inside the domain: choose a larger n.")
    x = nodes[unknown]

    rows = _laplacian(n, h)[unknown]
    matrix = a * rows[:, unknown] + c * sp.eye_array(len(unknown), format="csr")
    rhs = _evaluate(form.source, x, "source")
    # Neighbours inside the box but outside the domain: −a Lᵤ,ₒ g over those nodes o.
    outside = rows[:, np.flatnonzero(~inside)].tocsc()
    needed = np.flatnonzero(np.diff(outside.indptr) > 0)
    if len(needed):
        ghost = _evaluate(exact, nodes[np.flatnonzero(~inside)[needed]], "exact solution")
        rhs -= a * (outside[:, needed] @ ghost)
    # Neighbours on the faces of the box (index 0 or n+1 along an axis).
    for i in range(d):
        for edge, face in ((0, low[i]), (n - 1, high[i])):
            at = np.flatnonzero(index[unknown, i] == edge)
            if len(at):
                points = x[at].copy()
                points[:, i] = face
                rhs[at] += a / h[i] ** 2 * _evaluate(exact, points, "exact solution")

    if len(unknown) <= DIRECT_LIMIT and form.domain.dim <= 2:
        u = spla.spsolve(matrix.tocsc(), rhs)
    else:
        u, info = spla.cg(matrix, rhs, rtol=CG_RTOL, atol=0.0, maxiter=10 * len(unknown))
        if info != 0:
            raise PinnlabError(
                f"conjugate gradients did not reach rtol {CG_RTOL} on {len(unknown)} unknowns."
            )
    seconds = time.perf_counter() - start

    truth = _evaluate(exact, x, "exact solution")
    error = u - truth
    norm = np.linalg.norm(truth)
    return GridSolve(
        dim=d,
        n=int(n),
        unknowns=len(unknown),
        rel_l2=float(np.linalg.norm(error) / norm) if norm > 0 else math.inf,
        rel_l2_centered=float(
            np.linalg.norm(error - error.mean()) / np.linalg.norm(truth - truth.mean())
        ),
        max_abs=float(np.abs(error).max()),
        seconds=seconds,
    )


def convergence(problem: object, sizes: Sequence[int]) -> list[GridSolve]:
    """One ``solve_grid`` per grid size n in ``sizes``, in order."""
    return [solve_grid(problem, n) for n in sizes]


@dataclass(frozen=True)
class GridModel:
    """error(n) ≈ C · n^(−order) fitted on solves at one dimension; seconds ≈ k · unknowns^q."""

    dim: int
    constant: float
    order: float
    seconds_per_unknown: float  # k
    time_exponent: float  # q

    def points_for(self, error: float, dim: int) -> float:
        """Grid points (n^dim) a grid method needs at dimension ``dim`` to reach ``error``,
        assuming the fitted constant and order carry over: n = (C/error)^(1/order)."""
        if not error > 0 or dim < 1:
            raise ConfigError(f"points_for needs error > 0 and dim ≥ 1, got {error}, {dim}.")
        return float((self.constant / error) ** (1.0 / self.order)) ** dim

    def seconds_for(self, error: float, dim: int) -> float:
        """k · points_for(error, dim)^q (the time law fitted at ``self.dim``, carried over)."""
        return self.seconds_per_unknown * self.points_for(error, dim) ** self.time_exponent


def _loglog(x: np.ndarray, y: np.ndarray, what: str) -> tuple[float, float]:
    """(intercept, slope) of the least-squares line log y = intercept + slope · log x."""
    if len(np.unique(x)) < 2 or not (np.all(x > 0) and np.all(y > 0)):
        raise ConfigError(f"fitting {what} needs two distinct sizes and positive values.")
    design = np.stack([np.ones(len(x)), np.log(x)], axis=1)
    (intercept, slope), *_ = np.linalg.lstsq(design, np.log(y), rcond=None)
    return float(intercept), float(slope)


def fit_grid(solves: Sequence[GridSolve], metric: str = "rel_l2") -> GridModel:
    """Least squares in log–log on solves at one dimension: log error = log C − order · log n
    (error: ``metric``, rel_l2 or rel_l2_centered) and log seconds = log k + q · log unknowns."""
    dims = {s.dim for s in solves}
    if len(dims) != 1:
        raise ConfigError(f"fit_grid needs solves at one dimension, got {sorted(dims) or 'none'}.")
    n = np.array([s.n for s in solves], dtype=np.float64)
    error = np.array([getattr(s, metric) for s in solves])
    unknowns = np.array([s.unknowns for s in solves], dtype=np.float64)
    seconds = np.array([s.seconds for s in solves])
    log_c, slope = _loglog(n, error, "the error")
    log_k, q = _loglog(unknowns, seconds, "the time")
    return GridModel(
        dim=dims.pop(),
        constant=math.exp(log_c),
        order=-slope,
        seconds_per_unknown=math.exp(log_k),
        time_exponent=q,
    )
