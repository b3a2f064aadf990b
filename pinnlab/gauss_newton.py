"""Gauss–Newton and energy natural gradient (ENGD) steps for losses that are sums of squares.

A solver whose loss is Σ_k w_k L_k with every L_k a sum of squares of residuals at points
(``Residuals``) states it through ``Solver.least_squares``. Stacking r = (√w_k r_k)_k, so that
|r|² = L, and J = ∂r/∂θ (N × p for N residual rows and p weights), one step solves the damped
Gauss–Newton system

    (JᵀJ + μ I) δ = −Jᵀ r                    (N ≥ p: Cholesky of the p × p Gram matrix)
    δ = −Jᵀ (J Jᵀ + μ I)⁻¹ r                 (N < p: the Woodbury form, an N × N system)

and moves θ ← θ + η δ, with η the best of the grid 1, 1/2, …, 2^−K (or the first of them that
decreases the loss: ``line_search: backtracking``). For a linear equation JᵀJ is the Gram
matrix of energy natural gradient descent (Müller & Zeinhofer, "Achieving high accuracy with
PINNs via energy natural gradient descent", ICML 2023, arXiv:2302.13163): δ is the Newton step
in function space projected on the network's tangent space. For a nonlinear one it is the
Gauss–Newton step of the linearised residual. μ = μ_rel · tr(JᵀJ)/p adapts as in
Levenberg–Marquardt: divided by 3 when the step did at least 3/4 of the decrease the linear
model predicted, doubled below 1/4 (Nocedal & Wright, *Numerical Optimization*, §10.3).

The rows of J are per point: the residual at a point depends on θ and on that point only, so
J is ``torch.func.vmap`` over the points of ``torch.func.jacrev`` over the weights, of the
residual that pinnlab's derivative engine (the forward jets) evaluates at one point: work
O(N p), where a reverse pass per row of the whole batch would cost O(N² p). The system is
assembled and solved in float64 whatever the network's dtype.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
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


class GaussNewton(torch.optim.Optimizer):
    """Damped Gauss–Newton / ENGD steps (the module docstring states the step).

    ``step(terms)`` takes the loss as {name: (Residuals, weight)} and returns the loss terms
    where the step started, with ``stalled`` True when no step size of the line search
    decreased the loss even at the largest damping (the weights are then left unchanged). The
    adapted damping μ_rel is optimizer state (saved in checkpoints); ``lr`` records the step
    size η the last line search chose.
    """

    #: μ_rel is kept within these bounds; past the upper one the step is a gradient step of
    #: length ~1/μ and a failing line search there ends the phase.
    DAMPING_RANGE = (1e-14, 1e8)

    def __init__(
        self,
        module: nn.Module,
        *,
        damping: float = 1e-6,
        line_search: str = "grid",
        grid: int = 12,
        max_matrix: int = 8192,
    ):
        self.module = module
        trained = [(k, p) for k, p in module.named_parameters() if p.requires_grad]
        self.names = [k for k, _ in trained]
        defaults = dict(lr=1.0, damping=damping, line_search=line_search, grid=grid)
        super().__init__([p for _, p in trained], defaults)
        self.max_matrix = max_matrix

    @property
    def params(self) -> list[Tensor]:
        return self.param_groups[0]["params"]

    def _damping(self) -> float:
        state = self.state[self.params[0]]
        if "damping" not in state:
            state["damping"] = torch.tensor(self.defaults["damping"], dtype=torch.float64)
        return float(state["damping"])

    def _set_damping(self, value: float) -> None:
        low, high = self.DAMPING_RANGE
        self.state[self.params[0]]["damping"].fill_(min(max(value, low), high))

    def check_size(self, rows: int) -> None:
        """Refuse a system larger than ``max_matrix`` (the Gram matrix is min(N, p)²)."""
        p = sum(q.numel() for q in self.params)
        size = min(rows, p)
        if size > self.max_matrix:
            gib = (size**2 + rows * p) * 8 / 2**30
            raise TrainingError(
                f"train.optimizer engd: the Gauss–Newton system would be {size} × {size} "
                f"({rows} residual rows, {p} weights; {gib:.1f} GiB with the Jacobian), above "
                f"train.engd.max_matrix = {self.max_matrix}. Use fewer points or a smaller "
                "network, or raise train.engd.max_matrix if the memory allows."
            )

    def loss(self, terms: dict[str, tuple[Residuals, float]]) -> Tensor:
        """Σ_k w_k L_k at the current weights."""
        with torch.no_grad():
            return sum(w * t.value() for t, w in terms.values())

    def jacobian(self, terms: dict[str, tuple[Residuals, float]]) -> tuple[Tensor, Tensor, dict]:
        """r (N,), J (N, p) in float64, and each term's value at the current weights."""
        vectors, rows, values = [], [], {}
        for name, (term, w) in terms.items():
            e = term.rows().detach()
            values[name] = term.value(e)
            try:
                jac = row_jacobian(self.module, self.names, term)
            except RuntimeError as error:  # a residual that torch.func cannot vmap
                raise TrainingError(
                    f"train.optimizer engd: the Jacobian of loss term '{name}' is computed "
                    "one point at a time under torch.func.vmap, which failed "
                    f"({type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''})"
                    ". A residual must treat each point on its own, without .item() or Python "
                    "branches on values; or train with adam or lbfgs."
                ) from error
            root = math.sqrt(w)
            vectors.append(root * term.vector(e.double().unsqueeze(2)).squeeze(1))
            rows.append(root * term.vector(jac.double()))
        return torch.cat(vectors), torch.cat(rows), values

    def direction(self, r: Tensor, jac: Tensor, damping: float) -> Tensor:
        """δ solving (JᵀJ + μ I) δ = −Jᵀ r, μ = damping · tr(JᵀJ)/p, by Cholesky of the
        smaller of JᵀJ and J Jᵀ (the Woodbury identity); more damping if it fails."""
        n, p = jac.shape
        scale = max(float(jac.square().sum()) / p, 1e-300)
        factor, _ = self._cholesky(jac @ jac.T if n < p else jac.T @ jac, damping * scale)
        if n < p:
            return -jac.T @ torch.cholesky_solve(r[:, None], factor)[:, 0]
        return -torch.cholesky_solve((jac.T @ r)[:, None], factor)[:, 0]

    def _move(self, start: list[Tensor], delta: Tensor, eta: float) -> None:
        with torch.no_grad():
            offset = 0
            for p, p0 in zip(self.params, start, strict=True):
                k = p.numel()
                p.copy_(p0 + eta * delta[offset : offset + k].reshape(p.shape).to(p.dtype))
                offset += k

    def step(self, terms: dict[str, tuple[Residuals, float]]) -> dict:  # type: ignore[override]
        """A Gauss–Newton step on the least-squares loss Σ_k w_k L_k = |r|²."""
        r, jac, values = self.jacobian(terms)
        self.check_size(len(r))
        record = {"loss": r.square().sum(), **{k: v.detach() for k, v in values.items()}}
        return self._advance(
            lambda damping: self.direction(r, jac, damping),
            2 * jac.T @ r,
            math.sqrt(2) * jac,
            lambda: float(self.loss(terms)),
            record,
        )

    def step_energy(
        self,
        gram: dict[str, tuple[Residuals, float]],
        loss: Callable[[], tuple[Tensor, dict[str, Tensor]]],
    ) -> dict:
        """A natural-gradient step on an energy: ``loss()`` gives it with its terms, and
        ``gram`` the rows whose Gram matrix Σ_k w_k J_kᵀ J_k is its Hessian in function space
        (the bilinear form of a quadratic energy): (G + μ I) δ = −∇E."""
        total, values = loss()
        g = torch.autograd.grad(total, self.params, allow_unused=True)
        g = torch.cat(
            [
                (d if d is not None else torch.zeros_like(p)).reshape(-1)
                for d, p in zip(g, self.params, strict=True)
            ]
        ).double()
        _, jac, _ = self.jacobian(gram)
        self.check_size(len(jac))

        def evaluate() -> float:
            with torch.enable_grad():
                return float(loss()[0].detach())

        record = {"loss": total.detach(), **{k: v.detach() for k, v in values.items()}}
        return self._advance(
            lambda damping: self.natural_direction(g, jac, damping), g, jac, evaluate, record
        )

    def natural_direction(self, g: Tensor, jac: Tensor, damping: float) -> Tensor:
        """δ solving (JᵀJ + μ I) δ = −g, μ = damping · tr(JᵀJ)/p (Woodbury when N < p)."""
        n, p = jac.shape
        scale = max(float(jac.square().sum()) / p, 1e-300)
        factor, mu = self._cholesky(jac @ jac.T if n < p else jac.T @ jac, damping * scale)
        if n < p:  # (JᵀJ + μI)⁻¹ = (I − Jᵀ (J Jᵀ + μI)⁻¹ J) / μ
            return -(g - jac.T @ torch.cholesky_solve((jac @ g)[:, None], factor)[:, 0]) / mu
        return -torch.cholesky_solve(g[:, None], factor)[:, 0]

    def _cholesky(self, matrix: Tensor, mu: float) -> tuple[Tensor, float]:
        """The Cholesky factor of matrix + μ I, with μ raised tenfold until it exists."""
        eye = torch.eye(len(matrix), dtype=matrix.dtype, device=matrix.device)
        while True:
            factor, info = torch.linalg.cholesky_ex(matrix + mu * eye)
            if not info or mu >= self.DAMPING_RANGE[1] * float(matrix.diagonal().abs().max()):
                return factor, mu
            mu *= 10

    def _advance(self, solve, g: Tensor, jac: Tensor, evaluate, record: dict) -> dict:
        """Solve, search the step size, move, adapt the damping. The quadratic model of the
        loss is L₀ + gᵀδ + ½ |J δ|²; its predicted decrease against the actual one (the
        gain) steers μ."""
        group = self.param_groups[0]
        loss0 = float(record["loss"])
        start = [p.detach().clone() for p in self.params]
        damping = self._damping()
        while True:
            delta = solve(damping)
            eta, best = self._search(evaluate, start, delta, loss0)
            if best < loss0:
                break
            if damping >= self.DAMPING_RANGE[1]:
                self._move(start, delta, 0.0)
                return {**record, "stalled": True}
            damping *= 10
        self._move(start, delta, eta)
        predicted = -(eta * float(g @ delta) + 0.5 * eta**2 * float((jac @ delta).square().sum()))
        gain = (loss0 - best) / predicted if predicted > 0 else 0.0
        if gain > 0.75 and eta == 1.0:
            damping /= 3
        elif gain < 0.25:
            damping *= 2
        self._set_damping(damping)
        group["lr"] = eta
        return {**record, "stalled": False}

    def _search(
        self, evaluate, start: list[Tensor], delta: Tensor, loss0: float
    ) -> tuple[float, float]:
        """(η, loss) of the line search: the best over the grid 2^−k, k = 0 … K, or (with
        ``backtracking``) the first that decreases the loss."""
        group = self.param_groups[0]
        best_eta, best = 0.0, math.inf
        for k in range(group["grid"] + 1):
            eta = 0.5**k
            self._move(start, delta, eta)
            value = evaluate()
            if math.isfinite(value) and value < best:
                best_eta, best = eta, value
            if group["line_search"] == "backtracking" and best < loss0:
                break
        return best_eta, best


def gauss_newton_solvers(solvers: Iterable[type]) -> list[str]:
    """The names of the solvers that take ``engd`` steps (``Solver.gauss_newton``)."""
    return sorted(s.name for s in solvers if getattr(s, "gauss_newton", False))
