"""Steady incompressible flow: Kovasznay's flow (exact) and the lid-driven cavity, with
pinnlab's own finite-difference reference (:func:`pinnlab.finite_differences.cavity_grid`).

Both residuals are :func:`steady_navier_stokes`, written with ``d.partial``; the cavity's
reference is a stream function–vorticity solve, checked against Ghia, Ghia & Shin (1982) and
by grid convergence in tests/test_fd_references.py.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar, Literal

import numpy as np
import torch
from torch import Tensor

import pinnlab as pl
from pinnlab import finite_differences, montecarlo

#: Cells a side of the finest grid of the cavity's reference (the coarser has half as many).
CAVITY_GRID = 256
#: The reference's fixed points in the square and their seed.
CAVITY_POINTS = 4096
CAVITY_SEED = 20261205
#: The largest Reynolds number offered: the reference's grids resolve the flow there (its
#: accuracy is stated, and tested, at Re = 100).
CAVITY_MAX_RE = 400.0


def _zero(x: Tensor) -> Tensor:
    return torch.zeros_like(x[:, 0])


def steady_navier_stokes(re: float):
    """The residual of steady incompressible Navier–Stokes flow at Reynolds number ``re``
    over outputs (u, v, p), as three named equations:

        u ∂ₓu + v ∂ᵧu + ∂ₓp − (∂ₓ²u + ∂ᵧ²u)/Re = 0,
        u ∂ₓv + v ∂ᵧv + ∂ᵧp − (∂ₓ²v + ∂ᵧ²v)/Re = 0,   ∂ₓu + ∂ᵧv = 0.

    Every partial is asked of all three outputs at once: one forward jet per axis set.
    """
    nu = 1.0 / re

    def residual(d):
        u, v = d.u[:, 0], d.u[:, 1]
        ux, vx, px = d.partial(0).unbind(1)
        uy, vy, py = d.partial(1).unbind(1)
        uxx, vxx, _ = d.partial(0, 0).unbind(1)
        uyy, vyy, _ = d.partial(1, 1).unbind(1)
        return {
            "momentum_x": u * ux + v * uy + px - nu * (uxx + uyy),
            "momentum_y": u * vx + v * vy + py - nu * (vxx + vyy),
            "continuity": ux + vy,
        }

    return residual


def _relative_errors(predicted: Tensor, true: Tensor, names: tuple[str, ...]) -> dict[str, float]:
    """Relative l2 errors of the velocity (the first two columns) together and of each named
    column apart: {"rel_l2_velocity", "rel_l2_<name>"...}."""
    e = predicted - true

    def rel(cols: slice) -> float:
        return float(e[:, cols].norm() / true[:, cols].norm())

    out = {"rel_l2_velocity": rel(slice(0, 2))}
    out.update({f"rel_l2_{name}": rel(slice(j, j + 1)) for j, name in enumerate(names)})
    return out


def regularised_lid(x):
    """Shen's regularised lid speed 16x²(1 − x)² (numpy arrays or torch tensors)."""
    return 16.0 * x**2 * (1.0 - x) ** 2


def cavity_velocity_grid(
    n: int, re: float, lid: Callable[[np.ndarray], np.ndarray] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(u, v) of the cavity at the (n + 1)² nodes of the grid with n cells a side (n even),
    Richardson-extrapolated with the grid of n/2 cells at every node of the fine grid:
    U = U_n + (U_n − I U_{n/2})/3, I the cubic interpolation of the coarse solution onto the
    fine nodes (the classical extrapolation at the nodes they share). ``lid`` as in
    :func:`pinnlab.finite_differences.cavity_grid`."""
    from scipy.interpolate import RegularGridInterpolator

    if n < 8 or n % 2:
        raise pl.ParameterError(f"the cavity's reference grid needs an even n ≥ 8, got {n}.")
    fine = finite_differences.cavity_velocity(finite_differences.cavity_grid(n, re, lid)[0], lid)
    coarse = finite_differences.cavity_velocity(
        finite_differences.cavity_grid(n // 2, re, lid)[0], lid
    )
    nodes = np.linspace(0.0, 1.0, n + 1)
    x, y = np.meshgrid(nodes, nodes, indexing="ij")
    points = np.stack([x.ravel(), y.ravel()], axis=1)
    out = []
    for f, c in zip(fine, coarse, strict=True):
        interpolated = RegularGridInterpolator((nodes[::2], nodes[::2]), c, method="cubic")
        out.append(f + (f - interpolated(points).reshape(f.shape)) / 3.0)
    return out[0], out[1]


@dataclass(frozen=True)
class Cavity(pl.Problem):
    """Steady incompressible Navier–Stokes flow in the lid-driven cavity at Re = 100:

        u ∂ₓu + v ∂ᵧu + ∂ₓp − (∂ₓ²u + ∂ᵧ²u)/Re = 0,
        u ∂ₓv + v ∂ᵧv + ∂ᵧp − (∂ₓ²v + ∂ᵧ²v)/Re = 0,   ∂ₓu + ∂ᵧv = 0

    on [0, 1]², no slip on the walls, the lid y = 1 moving at u = 1 (``lid="standard"``, the
    benchmark of Ghia, Ghia & Shin, J. Comput. Phys. 48 (1982) 387) or at Shen's regularised
    u = 16x²(1 − x)² (``lid="regularised"``; Shen, J. Comput. Phys. 95 (1991) 228), v = 0.
    Three outputs (u, v, p), residuals :func:`steady_navier_stokes`; u is given on the lid and on the other
    three walls (a union of faces) and v on the whole boundary, each by a condition of its own
    output. The standard lid's velocity jumps from 1 to 0 at the top corners, where the
    vorticity and the pressure are singular (p ~ 1/r: not square-integrable there).

    No pressure condition: the equations fix p up to a constant, to which the loss is blind
    (a network trains without a gauge), and no gauge fits the conditions — p = c on a part of
    the boundary is false (p varies along every wall) and a point has no measure to sample;
    so the truth is the velocity alone, and the reference offers (u, v) only. Its reference is computed here: a stream function–
    vorticity finite-difference solve (central differences, Thom's wall vorticity, Newton's
    method with sparse LU; :func:`pinnlab.finite_differences.cavity_grid`) on grids of
    ``CAVITY_GRID`` and half as many cells a side, Richardson-extrapolated at the fine nodes
    and interpolated (cubic) at ``CAVITY_POINTS`` fixed points; cached on disk (about 20 s
    on one core). Its centre lines agree with Ghia's Table I/II (Re = 100) to 4.9e-3 in u and
    9.3e-3 in v (r.m.s. 3.8e-3): their 129² grid's error, since a solve on grids of 512 and
    256 cells gives the same values to 1e-5. Against that finer solve, the reference's rel.
    l2 velocity error at its points is 2.8e-3 for the standard lid — nearly all from the
    three points within 0.02 of the singular corners, where the scheme converges at first
    order (3.0e-4 beyond 0.02 of them, 1.4e-5 beyond 0.1: second order, extrapolated) — and
    about 2e-6 for the regularised lid (the extrapolated grids' change falls fifteen-fold per
    halving of h). ``rel_l2_velocity`` (the error of (u, v) together at those points, equal
    to ``ref_rel_l2``) is what a run tracks; ``rel_l2_u`` and ``rel_l2_v`` are reported
    beside it. ``re`` is offered up to 400 (Newton continues from Re = 100 in steps of 2):
    there the grids of 128 and 256 cells differ by 1e-2, at second order, so the
    extrapolated reference is good to about 1e-3 (not checked further).
    """

    id = "cavity"
    dims = "d = 2"
    extra_metric_names: ClassVar[tuple[str, ...]] = ("rel_l2_velocity", "rel_l2_u", "rel_l2_v")
    dim: int = 2
    re: float = 100.0
    lid: Literal["standard", "regularised"] = "standard"

    def check(self):
        self.require(self.dim == 2, f"dim must be 2, got {self.dim}")
        self.require(
            isinstance(self.re, int | float)
            and math.isfinite(self.re)
            and 0 < self.re <= CAVITY_MAX_RE,
            f"re must be a number in (0, {CAVITY_MAX_RE:g}], got {self.re!r}",
        )
        self.require(
            self.lid in ("standard", "regularised"),
            f"lid must be 'standard' or 'regularised', got {self.lid!r}",
        )

    def lid_speed(self, x: Tensor) -> Tensor:
        """u on the lid y = 1 at points (n, 2): 1, or 16x²(1 − x)²."""
        if self.lid == "standard":
            return torch.ones_like(x[:, 0])
        return regularised_lid(x[:, 0])

    def _lid_profile(self):
        """The lid speed for the finite-difference solver (None: the standard lid, 1)."""
        return None if self.lid == "standard" else regularised_lid

    def strong_form(self) -> pl.StrongForm:
        box = pl.Box(2, 0.0, 1.0)
        walls = box.face(0, "low") | box.face(0, "high") | box.face(1, "low")
        return pl.StrongForm(
            domain=box,
            residual=steady_navier_stokes(self.re),
            conditions={
                "u_lid": pl.Dirichlet(self.lid_speed, on=box.face(1, "high"), output=0),
                "u_walls": pl.Dirichlet(_zero, on=walls, output=0),
                "v": pl.Dirichlet(_zero, output=1),
            },
            outputs=3,
        )

    def velocity_grid(self) -> tuple[np.ndarray, np.ndarray]:
        """(u, v) of the reference at the (CAVITY_GRID + 1)² nodes (x first), computed once
        per parameters (about 20 s on one core) and cached on disk."""
        key = {
            "problem": self.id,
            "re": float(self.re),
            "lid": self.lid,
            "grid": CAVITY_GRID,
            "version": 1,
        }

        def compute():
            u, v = cavity_velocity_grid(CAVITY_GRID, float(self.re), self._lid_profile())
            return {"u": u, "v": v}

        grid = montecarlo.cached(key, compute)
        return grid["u"], grid["v"]

    def velocity(self, x) -> np.ndarray:
        """The reference (u, v) at points x (n, 2) of the square: (n, 2), cubic interpolation
        of :meth:`velocity_grid`."""
        from scipy.interpolate import RegularGridInterpolator

        x = np.asarray(x, dtype=np.float64)
        grid = self.velocity_grid()
        nodes = np.linspace(0.0, 1.0, grid[0].shape[0])
        return np.stack(
            [RegularGridInterpolator((nodes, nodes), c, method="cubic")(x) for c in grid], axis=1
        )

    def reference_points(self) -> Tensor:
        """The reference's ``CAVITY_POINTS`` fixed points of the square (seed ``CAVITY_SEED``)."""
        g = torch.Generator().manual_seed(CAVITY_SEED)
        return pl.Box(2).sample_interior(CAVITY_POINTS, generator=g, dtype=torch.float64)

    def reference(self) -> pl.Reference:
        """(u, v) at the fixed points, (n, 2): the first two of the three outputs (p has no
        reference)."""
        x = self.reference_points()
        value = torch.from_numpy(self.velocity(x.numpy()))
        return pl.Reference(
            t=0.0,
            x=x,
            value=value,
            stderr=torch.zeros_like(value),
            source=f"stream function–vorticity finite differences, n = {CAVITY_GRID} and "
            f"{CAVITY_GRID // 2}, Richardson-extrapolated; velocity (u, v) only",
        )

    def extra_metrics(self, solution) -> dict[str, float]:
        """Relative l2 errors of (u, v) together and of u and v apart, at the reference's
        points."""
        ref = solution.reference() if hasattr(solution, "reference") else self.reference()
        true = ref.value
        predicted = torch.as_tensor(solution(ref.x.numpy()), dtype=torch.float64)
        return _relative_errors(predicted.reshape(len(true), -1)[:, :2], true, ("u", "v"))


#: The rectangle [−0.5, 1] × [−0.5, 1.5] of Kovasznay's flow, counter-clockwise from the
#: lower left: edge 0 is y = −0.5, edge 1 the outflow x = 1, edge 2 y = 1.5, edge 3 the
#: inflow x = −0.5.
KOVASZNAY_RECTANGLE = ((-0.5, -0.5), (1.0, -0.5), (1.0, 1.5), (-0.5, 1.5))


@dataclass(frozen=True)
class Kovasznay(pl.Problem):
    """Steady incompressible Navier–Stokes flow behind a grid at Re = 20 (Kovasznay's solution):

        u ∂ₓu + v ∂ᵧu + ∂ₓp − (∂ₓ²u + ∂ᵧ²u)/Re = 0,
        u ∂ₓv + v ∂ᵧv + ∂ᵧp − (∂ₓ²v + ∂ᵧ²v)/Re = 0,   ∂ₓu + ∂ᵧv = 0

    on [−0.5, 1] × [−0.5, 1.5], with λ = Re/2 − √(Re²/4 + 4π²) and

        u = 1 − e^{λx} cos 2πy,  v = λ/(2π) e^{λx} sin 2πy,  p = ½(1 − e^{2λx}).

    Kovasznay, "Laminar flow behind a two-dimensional grid", Proc. Cambridge Philos. Soc. 44
    (1948); the PINN setting of DeepXDE's example. Three outputs (u, v, p) and three named
    residuals (momentum_x, momentum_y, continuity); u and v are given on the whole boundary,
    each by a condition of its own output, and p on the outflow edge x = 1 (which fixes the
    pressure's constant). The rectangle is a pl.Polygon (a pl.Box with one interval per axis
    would do as well; the recipe's figures were measured on the polygon). ``rel_l2_velocity`` (the error of (u, v) together, the literature's figure)
    is what a run tracks; ``rel_l2_u``, ``rel_l2_v`` and ``rel_l2_p`` are reported beside it.
    """

    id = "kovasznay"
    dims = "d = 2"
    extra_metric_names: ClassVar[tuple[str, ...]] = (
        "rel_l2_velocity",
        "rel_l2_u",
        "rel_l2_v",
        "rel_l2_p",
    )
    dim: int = 2
    re: float = 20.0

    def check(self):
        self.require(self.dim == 2, f"dim must be 2, got {self.dim}")
        self.require(
            isinstance(self.re, int | float) and math.isfinite(self.re) and self.re > 0,
            f"re must be a finite number > 0, got {self.re!r}",
        )

    @property
    def lam(self) -> float:
        """λ = Re/2 − √(Re²/4 + 4π²)."""
        return self.re / 2 - math.sqrt(self.re**2 / 4 + 4 * math.pi**2)

    def exact(self, x: Tensor) -> Tensor:
        """(u, v, p) at points (n, 2): (n, 3)."""
        lam = self.lam
        e = torch.exp(lam * x[:, 0])
        angle = 2 * math.pi * x[:, 1]
        u = 1 - e * torch.cos(angle)
        v = lam / (2 * math.pi) * e * torch.sin(angle)
        p = 0.5 * (1 - e * e)
        return torch.stack([u, v, p], dim=1)

    def _component(self, j: int):
        return lambda x: self.exact(x)[:, j]

    def strong_form(self) -> pl.StrongForm:
        domain = pl.Polygon(KOVASZNAY_RECTANGLE)
        return pl.StrongForm(
            domain=domain,
            residual=steady_navier_stokes(self.re),
            conditions={
                "u": pl.Dirichlet(self._component(0), output=0),
                "v": pl.Dirichlet(self._component(1), output=1),
                "p": pl.Dirichlet(self._component(2), on=domain.edge(1), output=2),
            },
            outputs=3,
        )

    def extra_metrics(self, solution) -> dict[str, float]:
        """Relative l2 errors of (u, v) together and of u, v and p apart, on the test set."""
        from pinnlab.metrics import test_points

        x = test_points(self)
        true = self.exact(x)
        predicted = torch.as_tensor(solution(x.numpy()), dtype=torch.float64).reshape(true.shape)
        return _relative_errors(predicted, true, ("u", "v", "p"))
