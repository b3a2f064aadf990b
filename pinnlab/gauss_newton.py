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

Past ``max_matrix`` (or with ``solver: cg``) neither J nor the Gram matrix is formed: the
damped system is solved by preconditioned conjugate gradients (Hestenes & Stiefel 1952) on
the products Jᵀ u and J v (reverse mode: one pullback and its own pullback, kept for the
whole solve; ``Linearisation``), with the exact diagonal of JᵀJ + μ I as preconditioner
(Jacobi), accumulated from the row Jacobians of a few points at a time; at most
``cg_steps`` iterations, fewer when the relative residual falls below ``cg_tol`` (a
truncated Newton / Hessian-free step: Martens, ICML 2010; Jnini, Vella & Zeinhofer,
"Gauss–Newton natural gradient descent for physics-informed computational fluid dynamics",
2024). Memory: O(N + p) vectors and the pullback's graph, against 8·(min(N, p)² + N p)
bytes for the exact step.

With ``solver: kfac`` the curvature is Kronecker-factored per layer (``pinnlab.kfac``;
Dangel, Müller & Zeinhofer, NeurIPS 2024), and ``line_search: auto`` takes KFAC's step size
and momentum from the exact quadratic model along the step and the last update.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import torch
from torch import Tensor, nn

from .errors import ConfigError, TrainingError
from .residuals import Residuals, _Call, _vmap_failure, mean_square, row_jacobian

__all__ = [
    "GaussNewton",
    "Linearisation",
    "Residuals",
    "conjugate_gradients",
    "curvature_rows",
    "gauss_newton_solvers",
    "mean_square",
    "row_jacobian",
]


class Linearisation:
    """The stacked residual vector r(θ) = (√w_k r_k)_k at the current weights, with the
    products Jᵀ u (the pullback of one ``torch.func.vjp``, kept for every product) and J v
    (the pullback of that pullback, which is linear in u: the double-backward trick), in
    float64 outside: J is never formed. J v this way costs about one backward pass, against
    five to six for forward mode (``torch.func.jvp``) through the jets (measured at 4,417
    weights and 1,250 points)."""

    def __init__(
        self, module: nn.Module, names: list[str], terms: dict[str, tuple[Residuals, float]]
    ):
        from torch.func import functional_call, vjp

        held = dict(module.named_parameters())
        self.keys = [f"module.{k}" for k in names]
        self.shapes = [held[k].shape for k in names]
        self.dtype = held[names[0]].dtype
        theta = {f"module.{k}": held[k].detach() for k in names}

        def stacked() -> Tensor:
            parts = []
            for term, w in terms.values():
                e = term.fn(*term.inputs).reshape(len(term.inputs[0]), -1)
                parts.append(math.sqrt(w) * term.vector(e.unsqueeze(2)).squeeze(1))
            return torch.cat(parts)

        call = _Call(module, stacked)
        try:
            r, self._pullback = vjp(lambda weights: functional_call(call, weights, ()), theta)
            _, self._push = vjp(self._pullback, torch.zeros_like(r))
        except RuntimeError as error:
            raise _vmap_failure(", ".join(terms), error) from error
        self.r = r.detach().double()

    def jv(self, v: Tensor) -> Tensor:
        """J v (N,) for v (p,)."""
        tangent, offset = {}, 0
        for key, shape in zip(self.keys, self.shapes, strict=True):
            k = shape.numel()
            tangent[key] = v[offset : offset + k].reshape(shape).to(self.dtype)
            offset += k
        (out,) = self._push((tangent,))
        return out.detach().double()

    def jtu(self, u: Tensor) -> Tensor:
        """Jᵀ u (p,) for u (N,)."""
        (grads,) = self._pullback(u.to(self.dtype))
        return torch.cat([grads[k].detach().reshape(-1) for k in self.keys]).double()


def conjugate_gradients(
    apply: Callable[[Tensor], Tensor], b: Tensor, diagonal: Tensor, steps: int, tol: float
) -> tuple[Tensor, int]:
    """x ≈ A⁻¹ b for symmetric positive definite A given by ``apply``, by conjugate gradients
    preconditioned with ``diagonal`` ≈ diag A (Jacobi), from x = 0; stops after ``steps``
    iterations or when |b − A x| ≤ tol |b|. Returns x and the iterations taken."""
    x = torch.zeros_like(b)
    residual = b.clone()
    z = residual / diagonal
    direction = z.clone()
    rz = residual @ z
    bound = tol * float(b.norm())
    for k in range(1, steps + 1):
        product = apply(direction)
        curvature = direction @ product
        if curvature <= 0:  # exhausted in floating point
            return x, k - 1
        alpha = rz / curvature
        x = x + alpha * direction
        residual = residual - alpha * product
        if float(residual.norm()) <= bound:
            return x, k
        z = residual / diagonal
        rz_next = residual @ z
        direction = z + (rz_next / rz) * direction
        rz = rz_next
    return x, steps


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
        solver: str = "auto",
        cg_steps: int = 100,
        cg_tol: float = 1e-8,
        kfac_ema: float = 0.95,
    ):
        self.module = module
        trained = [(k, p) for k, p in module.named_parameters() if p.requires_grad]
        self.names = [k for k, _ in trained]
        defaults = dict(lr=1.0, damping=damping, line_search=line_search, grid=grid)
        super().__init__([p for _, p in trained], defaults)
        self.max_matrix, self.solver = max_matrix, solver
        self.cg_steps, self.cg_tol = cg_steps, cg_tol
        self.kfac_ema = kfac_ema
        self._kfac = None
        if line_search == "auto" and solver != "kfac":
            raise ConfigError(
                "train.engd.line_search auto chooses the step size and momentum of "
                "Kronecker-factored steps: use it with optimizer engd-kfac (or "
                f"train.engd.solver kfac), not with solver {solver}; grid and backtracking "
                "serve every solver."
            )
        #: conjugate-gradient iterations of the last matrix-free solve (0: exact step)
        self.cg_iterations = 0

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

    def exact(self, rows: int) -> bool:
        """Whether a system of ``rows`` residual rows is formed and factorised (``solver``
        cholesky, or auto with min(N, p) ≤ ``max_matrix``), else solved matrix-free by CG;
        refuses a cholesky system above ``max_matrix``."""
        p = sum(q.numel() for q in self.params)
        size = min(rows, p)
        if self.solver == "auto":
            return size <= self.max_matrix
        if self.solver == "cholesky" and size > self.max_matrix:
            gib = (size**2 + rows * p) * 8 / 2**30
            raise TrainingError(
                f"train.optimizer engd: the Gauss–Newton system would be {size} × {size} "
                f"({rows} residual rows, {p} weights; {gib:.1f} GiB with the Jacobian), above "
                f"train.engd.max_matrix = {self.max_matrix}. Use train.optimizer: engd-kfac "
                "(Kronecker-factored curvature) or train.engd.solver: cg (or auto) to solve it "
                "matrix-free, fewer points or a smaller network, or raise "
                "train.engd.max_matrix if the memory allows."
            )
        return self.solver == "cholesky"

    def _rows(self, terms: dict[str, tuple[Residuals, float]]) -> tuple[int, dict, dict]:
        """N, the residual rows of all terms; each term's value; and its residuals e, at the
        current weights (evaluated once per step: ``jacobian`` reuses them)."""
        count, values, residuals = 0, {}, {}
        with torch.no_grad():
            for name, (term, _) in terms.items():
                residuals[name] = e = term.rows()
                values[name] = term.value(e)
                count += len(term.vector(e.unsqueeze(2)))
        return count, values, residuals

    def _diagonal(self, terms: dict[str, tuple[Residuals, float]]) -> Tensor:
        """diag(Σ_k w_k J_kᵀ J_k), a few thousand Jacobian entries' worth of points at a time."""
        p = sum(q.numel() for q in self.params)
        chunk = max(1, 2**22 // p)
        try:
            return sum(
                w * term.gram_diagonal(self.module, self.names, chunk) for term, w in terms.values()
            )
        except RuntimeError as error:
            raise _vmap_failure(", ".join(terms), error) from error

    def _cg(self, b: Tensor, lin: Linearisation, diagonal: Tensor, damping: float) -> Tensor:
        """(JᵀJ + μ I)⁻¹ b by preconditioned CG, μ = damping · tr(JᵀJ)/p."""
        mu = damping * max(float(diagonal.sum()) / len(diagonal), 1e-300)
        x, self.cg_iterations = conjugate_gradients(
            lambda v: lin.jtu(lin.jv(v)) + mu * v, b, diagonal + mu, self.cg_steps, self.cg_tol
        )
        return x

    def loss(self, terms: dict[str, tuple[Residuals, float]]) -> Tensor:
        """Σ_k w_k L_k at the current weights."""
        with torch.no_grad():
            return sum(w * t.value() for t, w in terms.values())

    def jacobian(
        self, terms: dict[str, tuple[Residuals, float]], residuals: dict | None = None
    ) -> tuple[Tensor, Tensor, dict]:
        """r (N,), J (N, p) in float64, and each term's value at the current weights (from
        its ``residuals`` e where given, else evaluated)."""
        vectors, rows, values = [], [], {}
        for name, (term, w) in terms.items():
            e = (term.rows() if residuals is None else residuals[name]).detach()
            values[name] = term.value(e)
            try:
                jac = row_jacobian(self.module, self.names, term)
            except RuntimeError as error:  # a residual that torch.func cannot vmap
                raise _vmap_failure(name, error) from error
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

    def _curvature(self):
        """The Kronecker-factored curvature (``pinnlab.kfac``), its averages in this state."""
        from .kfac import KroneckerCurvature

        if self._kfac is None:
            self._kfac = KroneckerCurvature(
                self.module, self.names, ema=self.kfac_ema, limit=self.max_matrix
            )
        return self._kfac

    def step(self, terms: dict[str, tuple[Residuals, float]]) -> dict:  # type: ignore[override]
        """A Gauss–Newton step on the least-squares loss Σ_k w_k L_k = |r|²."""
        evaluate = lambda: float(self.loss(terms))  # noqa: E731
        if self.solver == "kfac":  # δ = −K_μ⁻¹ Jᵀr, ∇L = 2 Jᵀr, H ≈ 2K
            self.cg_iterations = 0
            curvature = self._curvature()
            values, g = curvature.update(terms, self.state, gradient=True)
            record = {"loss": sum(w * values[k] for k, (_, w) in terms.items()), **values}
            solve = lambda damping: -curvature.solve(g / 2, damping)  # noqa: E731
            if self.param_groups[0]["line_search"] == "auto":
                return self._advance_auto(solve, g, 2.0, terms, evaluate, record)
            return self._advance(
                solve, g, lambda delta: 2 * curvature.quadratic(delta), evaluate, record
            )
        rows, values, residuals = self._rows(terms)
        if self.exact(rows):
            self.cg_iterations = 0
            r, jac, _ = self.jacobian(terms, residuals)
            record = {"loss": r.square().sum(), **values}
            return self._advance(
                lambda damping: self.direction(r, jac, damping),
                2 * jac.T @ r,
                lambda delta: 2 * float((jac @ delta).square().sum()),
                evaluate,
                record,
            )
        lin = Linearisation(self.module, self.names, terms)
        diagonal = self._diagonal(terms)
        b = -lin.jtu(lin.r)
        record = {"loss": lin.r.square().sum(), **values}
        return self._advance(
            lambda damping: self._cg(b, lin, diagonal, damping),
            -2 * b,
            lambda delta: 2 * float(lin.jv(delta).square().sum()),
            evaluate,
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

        def evaluate() -> float:
            with torch.enable_grad():
                return float(loss()[0].detach())

        record = {"loss": total.detach(), **{k: v.detach() for k, v in values.items()}}
        if self.solver == "kfac":
            self.cg_iterations = 0
            curvature = self._curvature()
            curvature.update(gram, self.state, gradient=False)
            solve = lambda damping: -curvature.solve(g, damping)  # noqa: E731
            if self.param_groups[0]["line_search"] == "auto":
                return self._advance_auto(solve, g, 1.0, gram, evaluate, record)
            return self._advance(solve, g, curvature.quadratic, evaluate, record)
        rows, _, residuals = self._rows(gram)
        if self.exact(rows):
            self.cg_iterations = 0
            _, jac, _ = self.jacobian(gram, residuals)
            return self._advance(
                lambda damping: self.natural_direction(g, jac, damping),
                g,
                lambda delta: float((jac @ delta).square().sum()),
                evaluate,
                record,
            )
        lin = Linearisation(self.module, self.names, gram)
        diagonal = self._diagonal(gram)
        return self._advance(
            lambda damping: self._cg(-g, lin, diagonal, damping),
            g,
            lambda delta: float(lin.jv(delta).square().sum()),
            evaluate,
            record,
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

    def _advance(self, solve, g: Tensor, curvature, evaluate, record: dict) -> dict:
        """Solve, search the step size, move, adapt the damping. The quadratic model of the
        loss is L₀ + gᵀδ + ½ δᵀHδ, ``curvature(δ)`` = δᵀHδ (H = 2JᵀJ for |r|², JᵀJ for an
        energy); its predicted decrease against the actual one (the gain) steers μ."""
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
        predicted = -(eta * float(g @ delta) + 0.5 * eta**2 * curvature(delta))
        self._adapt(damping, (loss0 - best) / predicted if predicted > 0 else 0.0, eta == 1.0)
        group["lr"] = eta
        return {**record, "stalled": False}

    def _adapt(self, damping: float, gain: float, full_step: bool) -> None:
        """Levenberg–Marquardt: the damping falls by 3 where the model predicted the decrease
        well (gain > 3/4) for a full step, and doubles where it did not (gain < 1/4)."""
        if gain > 0.75 and full_step:
            damping /= 3
        elif gain < 0.25:
            damping *= 2
        self._set_damping(damping)

    def _advance_auto(self, solve, g: Tensor, h: float, terms, evaluate, record: dict) -> dict:
        """KFAC's automatic step size and momentum (Martens & Grosse, ICML 2015, §7): the
        update u = α Δ + β u_prev, Δ = ``solve(μ)`` and u_prev the last update, minimises the
        damped quadratic model gᵀu + ½ h (|J u|² + μ' |u|²) (μ' = μ · tr K/p) over (α, β), with
        the exact J u (``Linearisation``; H = h JᵀJ). A model step that does not decrease the
        loss is retried with ten times the damping; μ adapts to the model's gain."""
        loss0 = float(record["loss"])
        state = self.state[self.params[0]]
        previous = state.get("previous")
        lin = Linearisation(self.module, self.names, terms)
        jp = None if previous is None else lin.jv(previous)
        start = [p.detach().clone() for p in self.params]
        mean = max(self._kfac.trace() / len(g), 1e-300)
        damping = self._damping()
        while True:
            delta = solve(damping)
            jd = lin.jv(delta)
            mu = damping * mean
            if jp is None:
                alpha = -float(g @ delta) / (h * (float(jd @ jd) + mu * float(delta @ delta)))
                update = alpha * delta
            else:
                a = h * torch.stack(
                    [
                        torch.stack(
                            [jd @ jd + mu * delta @ delta, jd @ jp + mu * delta @ previous]
                        ),
                        torch.stack(
                            [jd @ jp + mu * delta @ previous, jp @ jp + mu * previous @ previous]
                        ),
                    ]
                )
                b = torch.stack([g @ delta, g @ previous])
                alpha, beta = (-torch.linalg.lstsq(a, b[:, None]).solution[:, 0]).tolist()
                update = alpha * delta + beta * previous
            self._move(start, update, 1.0)
            value = evaluate()
            if math.isfinite(value) and value < loss0:
                break
            if damping >= self.DAMPING_RANGE[1]:
                self._move(start, update, 0.0)
                return {**record, "stalled": True}
            damping *= 10
        ju = lin.jv(update)
        predicted = -(float(g @ update) + 0.5 * h * float(ju @ ju))
        self._adapt(damping, (loss0 - value) / predicted if predicted > 0 else 0.0, True)
        state["previous"] = update.detach()
        self.param_groups[0]["lr"] = alpha
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


def curvature_rows(
    solver, model, batch: dict[str, Tensor], weight: Callable[[str], float] = lambda k: 1.0
) -> dict[str, tuple[Residuals, float]]:
    """The weighted rows {name: (Residuals, w)} whose Gram matrix Σ_k w_k J_kᵀ J_k is the
    curvature of ``solver``'s loss: an energy's Gram rows (``energy_gram``; its boundary parts
    ``energy.<condition>`` weighed with that condition), else the least-squares terms, each
    weighed by ``weight(name)``."""
    if hasattr(solver, "energy_gram"):
        gram = solver.energy_gram(model, batch)
        return {
            k: (t, weight(k.split(".")[0] if k.startswith("energy.") else k) * factor)
            for k, (t, factor) in gram.items()
        }
    return {k: (t, weight(k)) for k, t in solver.least_squares(model, batch).items()}


def gauss_newton_solvers(solvers: Iterable[type]) -> list[str]:
    """The names of the solvers that take ``engd`` steps (``Solver.gauss_newton``)."""
    return sorted(s.name for s in solvers if getattr(s, "gauss_newton", False))
