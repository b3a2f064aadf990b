"""Loss terms as sums of squares of per-point residuals, and their row Jacobians.

A solver states its loss as {name: ``Residuals``} (``Solver.least_squares``); the
Gauss–Newton steps (``pinnlab.gauss_newton``) and the Kronecker-factored curvature
(``pinnlab.kfac``) both read it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from .errors import TrainingError


def mean_square(e: Tensor, mean_weight: float = 1.0) -> Tensor:
    """mean e² = Var e + (mean e)² over the rows of e, the second weighted by ``mean_weight``
    (``pinnlab.solvers.collocation.CollocationSolver.mean_square`` says why)."""
    if mean_weight == 1.0:
        return e.square().mean()
    mean = e.mean(dim=0)
    return (e - mean).square().mean() + mean_weight * mean.square().mean()


@dataclass(frozen=True)
class Residuals:
    """One loss term as a sum of squares of the residuals e_i ∈ Rᵐ at n points.

    ``fn(*inputs)`` gives e (n, m) or (n,) from per-point ``inputs`` (each with n rows: the
    points, their normals, the values measured there); it must treat each row on its own
    (it is evaluated one row at a time under ``torch.func.vmap`` for the Jacobian). The term
    is L = Σ_i ω_i |e_i|²/m with fixed ``row_weights`` ω (causal weights), else
    ``mean_square(e, mean_weight)``.
    """

    inputs: tuple[Tensor, ...]
    fn: Callable[..., Tensor]
    row_weights: Tensor | None = None
    mean_weight: float = 1.0

    def rows(self) -> Tensor:
        """e at the points, (n, m)."""
        return self.fn(*self.inputs).reshape(len(self.inputs[0]), -1)

    def value(self, e: Tensor | None = None) -> Tensor:
        """The term L (of e, else of ``rows()``)."""
        e = self.rows() if e is None else e
        if self.row_weights is not None:
            return (self.row_weights[:, None] * e.square()).sum() / e.shape[1]
        return mean_square(e, self.mean_weight)

    def vector(self, e: Tensor) -> Tensor:
        """The residual vector r, linear in e, with |r|² = ``value(e)``: e (n, m, *rest) →
        (N, *rest), so that the rows of J follow from those of e's Jacobian alike."""
        n, m, rest = e.shape[0], e.shape[1], e.shape[2:]
        if self.row_weights is not None:
            scale = (self.row_weights / m).sqrt().reshape(n, 1, *(1,) * len(rest))
            return (scale * e).reshape(n * m, *rest)
        if self.mean_weight == 1.0:
            return e.reshape(n * m, *rest) / math.sqrt(n * m)
        mean = e.mean(dim=0)
        centred = (e - mean).reshape(n * m, *rest) / math.sqrt(n * m)
        return torch.cat([centred, mean * math.sqrt(self.mean_weight / m)])

    def gram_diagonal(self, module: nn.Module, names: list[str], chunk: int) -> Tensor:
        """diag(JᵀJ) (p,) of this term's residual vector r, in float64, from the row
        Jacobians of ``chunk`` points at a time (J is never held whole). With the mean split
        off (``mean_weight`` w ≠ 1) it is Σ E²/(nm) + (w − 1) Σ_j Ē_j²/m, E the row
        Jacobians and Ē their mean over the points."""
        n = len(self.inputs[0])
        squares, total, m = 0.0, 0.0, 1
        for start in range(0, n, chunk):
            part = Residuals(tuple(x[start : start + chunk] for x in self.inputs), self.fn)
            jac = row_jacobian(module, names, part).double()
            m = jac.shape[1]
            if self.row_weights is not None:
                omega = self.row_weights[start : start + chunk].double()
                squares = squares + (omega[:, None, None] * jac.square()).sum((0, 1))
            else:
                squares = squares + jac.square().sum((0, 1))
                total = total + jac.sum(0)
        if self.row_weights is not None:
            return squares / m
        diagonal = squares / (n * m)
        if self.mean_weight != 1.0:
            diagonal = diagonal + (self.mean_weight - 1) * (total / n).square().sum(0) / m
        return diagonal


class _Call(nn.Module):
    """``fn`` as the forward of a module that holds ``module``, so that
    ``torch.func.functional_call`` can substitute ``module``'s weights while ``fn`` runs."""

    def __init__(self, module: nn.Module, fn: Callable[..., Tensor]):
        super().__init__()
        self.module, self.fn = module, fn

    def forward(self, *rows: Tensor) -> Tensor:
        return self.fn(*rows)


def row_jacobian(
    module: nn.Module, names: list[str], term: Residuals, *, chunk: int | None = None
) -> Tensor:
    """∂e_i/∂θ for every point i: (n, m, p), θ the parameters ``names`` of ``module`` (in
    that order, flattened), by vmap over the points of jacrev over θ (``chunk`` points at a
    time)."""
    from torch.func import functional_call, jacrev, vmap

    held = dict(module.named_parameters())
    theta = {f"module.{k}": held[k].detach() for k in names}
    call = _Call(module, term.fn)

    def one(weights, *row):
        return functional_call(call, weights, tuple(r.unsqueeze(0) for r in row)).reshape(-1)

    in_dims = (None, *(0,) * len(term.inputs))
    jac = vmap(jacrev(one), in_dims=in_dims, chunk_size=chunk)(theta, *term.inputs)
    n = len(term.inputs[0])
    return torch.cat([jac[f"module.{k}"].reshape(n, -1, held[k].numel()) for k in names], dim=2)


def _vmap_failure(name: str, error: RuntimeError) -> TrainingError:
    """The error for a residual that torch.func cannot transform."""
    first = str(error).splitlines()[0] if str(error) else ""
    return TrainingError(
        f"train.optimizer engd: the Jacobian of loss term '{name}' is computed with torch.func "
        f"(vmap over the points, jvp and vjp over the weights), which failed "
        f"({type(error).__name__}: {first}). A residual must treat each point on its own, "
        "without .item() or Python branches on values; or train with adam or lbfgs."
    )
