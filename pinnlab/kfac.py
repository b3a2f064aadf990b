"""Kronecker-factored curvature for Gauss–Newton / ENGD steps (``train.engd.solver: kfac``).

Dangel, Müller & Zeinhofer, "Kronecker-factored approximate curvature for physics-informed
neural networks", NeurIPS 2024 (arXiv:2405.15603). A layer z = W̃ ã (W̃ = [W b], ã = [a; 1])
that a forward jet passes through carries S copies of its input — the value, the m
directional derivatives, the second-order term (``pinnlab.derivatives.jets``) — all multiplied
by the same W̃: weight sharing. The Jacobian of the residual row r_n is then
∂r_n/∂W̃ = Σ_s g_{n,s} ã_{n,s}ᵀ with g_{n,s} = ∂r_n/∂z_{n,s}, and KFAC-expand (Eschenhagen et
al., NeurIPS 2023) treats every (n, s) as a sample of its own: the layer's block of JᵀJ is
approximated by B ⊗ A (row-major vec W̃),

    A = Σ_{n,s} ã ãᵀ / M,   B = Σ_{n,s} g gᵀ,   M the number of samples (n, s).

The loss terms fall into two groups with factors of their own, as in Dangel et al.'s interior
and boundary terms: those whose copies carry derivatives (the equations, a flux condition)
and those of values only (Dirichlet conditions, data); the sum of the two Kronecker products
is inverted exactly by a simultaneous diagonalisation (Martens & Grosse, ICML 2015, App. B):
with Uᵀ B₁ U = I, Uᵀ B₂ U = diag λ, Vᵀ A₁ V = I, Vᵀ A₂ V = diag κ,

    (B₁ ⊗ A₁ + B₂ ⊗ A₂)⁻¹ vec X = vec(U [(Uᵀ X V) ⊘ (1 + λ κᵀ)] Vᵀ).

Each factor is damped by √μ times its mean eigenvalue, μ the optimizer's relative damping,
and averaged over steps (an exponential moving average, ``ema``). A factor larger than
``max_matrix`` is kept as its diagonal. Weights outside the recorded layers (the separable
part of an additive network, a bottleneck's frozen rows are not trained) get their exact
Gram block, or its diagonal past ``max_matrix``. The statistics take one forward pass with
the jets unreduced and one backward pass per residual component of each term.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from .derivatives.jets import LinearTape, recording
from .errors import TrainingError
from .residuals import _vmap_failure, row_jacobian


@dataclass
class Factor:
    """A symmetric positive semi-definite factor, full (k, k) or its diagonal (k,)."""

    matrix: Tensor

    @property
    def diagonal(self) -> bool:
        return self.matrix.dim() == 1

    @property
    def trace(self) -> float:
        return float(self.matrix.sum() if self.diagonal else self.matrix.diagonal().sum())

    @property
    def mean_eigenvalue(self) -> float:
        return self.trace / len(self.matrix)

    def damped(self, shift: float) -> Tensor:
        """F + shift·I as a full matrix (or its diagonal)."""
        if self.diagonal:
            return self.matrix + shift
        m = self.matrix
        return m + shift * torch.eye(len(m), dtype=m.dtype, device=m.device)

    def times(self, x: Tensor, side: str) -> Tensor:
        """F x (``left``) or x F (``right``) for a matrix x."""
        if self.diagonal:
            return self.matrix[:, None] * x if side == "left" else x * self.matrix
        return self.matrix @ x if side == "left" else x @ self.matrix

    def solve(self, x: Tensor, shift: float) -> Tensor:
        """(F + shift·I)⁻¹ x for a vector x."""
        damped = self.damped(shift)
        return x / damped if self.diagonal else torch.linalg.solve(damped, x)

    def quadratic(self, x: Tensor) -> float:
        """xᵀ F x for a vector x."""
        return float((self.matrix * x * x).sum() if self.diagonal else x @ self.matrix @ x)


def _moving_average(state: dict, key: str, value: Tensor, ema: float) -> Factor:
    """state[key] ← ema·state[key] + (1 − ema)·value (value alone at first, or when its shape
    changed), as a factor."""
    old = state.get(key)
    fresh = old is None or old.shape != value.shape
    state[key] = value if fresh else ema * old + (1 - ema) * value
    return Factor(state[key])


def _accumulate(total: Tensor | None, samples: Tensor, limit: int) -> Tensor:
    """total + Σ samples' outer products (samples (M, k)), or of their squares past ``limit``."""
    part = samples.square().sum(0) if samples.shape[1] > limit else samples.T @ samples
    return part if total is None else total + part


def _simultaneous(first: Tensor, second: Tensor) -> tuple[Tensor, Tensor]:
    """(U, λ) with Uᵀ first U = I and Uᵀ second U = diag λ, first positive definite; for
    diagonal factors U is diagonal (returned as a vector)."""
    if first.dim() == 1:
        return first.rsqrt(), second / first
    lower = torch.linalg.cholesky(first)
    eye = torch.eye(len(first), dtype=first.dtype, device=first.device)
    inverse = torch.linalg.solve_triangular(lower, eye, upper=False)
    eigenvalues, vectors = torch.linalg.eigh(inverse @ second @ inverse.T)
    return inverse.T @ vectors, eigenvalues.clamp_min(0)


def _per_copy(entries, grads) -> list[Tensor]:
    """The gradients g (n, S, o) of each entry's copies, from ``grads`` in the order of the
    entries' outputs (None: the copy does not reach the loss)."""
    out, at = [], 0
    for entry in entries:
        gs = []
        for z in entry.outputs:
            gs.append(torch.zeros_like(z) if grads[at] is None else grads[at])
            at += 1
        n = len(entry.inputs)
        out.append(torch.cat([g.reshape(n, -1, g.shape[-1]) for g in gs], dim=1))
    return out


def _apply(u: Tensor, x: Tensor, side: str, transpose: bool) -> Tensor:
    """u x, uᵀ x (left) or x u, x uᵀ (right), u a matrix or a diagonal."""
    if u.dim() == 1:
        return u[:, None] * x if side == "left" else x * u
    m = u.T if transpose else u
    return m @ x if side == "left" else x @ m


@dataclass
class LayerCurvature:
    """The Kronecker factors (B_k, A_k) of one layer, by group k."""

    weight: str  # the parameter names of W and b (b None without a bias)
    bias: str | None
    factors: dict[str, tuple[Factor, Factor]]

    def solve(self, x: Tensor, damping: float) -> Tensor:
        """(Σ_k (B_k + β_k I) ⊗ (A_k + α_k I))⁻¹ vec x for x (o, k), α = √μ·mean eig A, …"""
        root = math.sqrt(damping)
        damped = []
        for b, a in self.factors.values():
            scale_b, scale_a = b.mean_eigenvalue, a.mean_eigenvalue
            if scale_a * scale_b <= 0:
                continue
            damped.append((b.damped(root * scale_b), a.damped(root * scale_a), scale_a * scale_b))
        if not damped:  # the layer does not reach the loss: its gradient is zero too
            return torch.zeros_like(x)
        if len(damped) == 1:
            ((b, a, _),) = damped
            y = torch.linalg.solve(b, x) if b.dim() == 2 else x / b[:, None]
            return torch.linalg.solve(a, y.T).T if a.dim() == 2 else y / a
        (b1, a1, _), (b2, a2, _) = sorted(damped, key=lambda f: -f[2])
        u, lam = _simultaneous(b1, b2)
        v, kappa = _simultaneous(a1, a2)
        core = _apply(v, _apply(u, x, "left", True), "right", False)
        core = core / (1 + lam[:, None] * kappa[None, :])
        return _apply(v, _apply(u, core, "left", False), "right", True)

    def quadratic(self, x: Tensor) -> float:
        """vec(x)ᵀ (Σ_k B_k ⊗ A_k) vec(x)."""
        return sum(
            float((b.times(a.times(x, "right"), "left") * x).sum())
            for b, a in self.factors.values()
        )


class KroneckerCurvature:
    """Kronecker-factored JᵀJ of a least-squares loss over ``module``'s trained parameters
    ``names`` (the module docstring states it), averaged over the steps (in the optimizer's
    state, which ``update`` is given, so that checkpoints keep it)."""

    def __init__(self, module: nn.Module, names: list[str], *, ema: float, limit: int):
        self.module, self.names = module, names
        self.ema, self.limit = ema, limit
        held = dict(module.named_parameters())
        self.shapes = {k: held[k].shape for k in names}
        self._names_of = {id(held[k]): k for k in names}
        self.layers: list[LayerCurvature] = []
        self.other: list[str] = []
        self.other_block: Factor | None = None

    # -- statistics ----------------------------------------------------------------------

    def update(self, terms: dict, state: dict, *, gradient: bool) -> tuple[dict, Tensor | None]:
        """Take this step's factors from ``terms`` {name: (Residuals, weight)} and average
        them into ``state``; returns each term's value and (``gradient``) the loss's gradient
        (p,) in float64, from the same forward pass."""
        params = [dict(self.module.named_parameters())[k] for k in self.names]
        values, passes, loss = {}, [], 0.0
        with torch.enable_grad():
            for name, (term, w) in terms.items():
                with recording() as tape:
                    e = term.rows()
                values[name] = term.value(e)
                loss = loss + w * values[name]
                passes.append((name, term, w, e, tape))
            g = None
            if gradient:
                grads = torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True)
                g = torch.cat(
                    [
                        (d if d is not None else torch.zeros_like(p)).reshape(-1)
                        for d, p in zip(grads, params, strict=True)
                    ]
                ).double()
            sums: dict[tuple[str, str], list] = {}  # (layer, group) -> [A, B, samples]
            for name, term, w, e, tape in passes:
                self._term(name, term, w, e, tape, sums)
        self._average(sums, state)
        self.other = [k for k in self.names if k not in self._covered()]
        if self.other:
            try:
                self._other_block(terms, state)
            except RuntimeError as error:
                raise _vmap_failure(", ".join(terms), error) from error
        return {k: v.detach() for k, v in values.items()}, g

    def _term(self, name, term, w: float, e: Tensor, tape: LinearTape, sums: dict) -> None:
        """Add one term's samples to the sums of its group."""
        entries = [(layer, entry) for layer, calls in tape.entries.items() for entry in calls]
        entries = [(l, en) for l, en in entries if id(l.weight) in self._names_of]
        if not entries:
            return
        group = "derivatives" if any(en.inputs.shape[1] > 1 for _, en in entries) else "values"
        scale = self._row_scale(term, w, e)
        outputs = [z for _, en in entries for z in en.outputs]
        check = [p for l, _ in entries for p in (l.weight, l.bias) if p is not None]
        check = list({id(p): p for p in check}.values())
        grad_sq: dict[int, Tensor] = {}
        for j in range(e.shape[1]):
            wanted = outputs + (check if j == 0 else [])
            grads = torch.autograd.grad(
                (scale * e[:, j]).sum(), wanted, retain_graph=True, allow_unused=True
            )
            per_copy = _per_copy([en for _, en in entries], grads[: len(outputs)])
            if j == 0:
                direct = dict(zip(map(id, check), grads[len(outputs) :], strict=True))
                self._check(name, entries, per_copy, direct)
            for k, g in enumerate(per_copy):
                flat = g.reshape(-1, g.shape[-1]).double()
                grad_sq[k] = _accumulate(grad_sq.get(k), flat, self.limit)
        for k, (layer, entry) in enumerate(entries):
            key = (self._names_of[id(layer.weight)], group)
            inputs = entry.inputs.reshape(-1, entry.inputs.shape[-1]).double()
            record = sums.setdefault(key, [None, None, 0, layer])
            record[0] = _accumulate(record[0], inputs, self.limit)
            record[1] = grad_sq[k] if record[1] is None else record[1] + grad_sq[k]
            record[2] += len(inputs)

    def _check(self, name: str, entries, per_copy: list[Tensor], direct: dict) -> None:
        """The recorded maps must carry each layer's whole gradient: Σ_{n,s} g ãᵀ = ∂/∂W̃."""
        rebuilt: dict[int, Tensor] = {}
        for (layer, entry), g in zip(entries, per_copy, strict=True):
            part = torch.einsum("nso,nsk->ok", g, entry.inputs.to(g.dtype))
            rebuilt[id(layer)] = part + rebuilt.get(id(layer), 0)
        layers = list({id(layer): layer for layer, _ in entries}.values())
        errors = []
        for layer in layers:
            w, b = (direct.get(id(p)) for p in (layer.weight, layer.bias))
            full = torch.zeros_like(layer.weight) if w is None else w
            if layer.bias is not None:
                b = torch.zeros_like(layer.bias) if b is None else b
                full = torch.cat([full, b[:, None]], 1)
            errors.append(torch.stack([(rebuilt[id(layer)] - full).norm(), full.norm()]))
        for layer, (err, norm) in zip(layers, torch.stack(errors).tolist(), strict=True):
            if err > 1e-4 * norm + 1e-30:  # (one device sync for all the layers)
                raise TrainingError(
                    f"train.engd.solver kfac: the gradient of loss term '{name}' with respect "
                    f"to layer {self._names_of[id(layer.weight)]} does not come only through "
                    "its recorded affine maps (a derivative method other than the forward jets, "
                    "or a network that uses the layer's weights another way); its Kronecker "
                    "factors would be wrong. Use train.engd.solver cholesky or cg, or "
                    "derivatives: forward."
                )

    @staticmethod
    def _row_scale(term, w: float, e: Tensor) -> Tensor:
        """c_n with r_n = c_n e_n the rows of the stacked residual (the mean split off by a
        ``mean_weight`` ≠ 1 is not in the factors: they take the plain mean square)."""
        n, m = e.shape
        if term.row_weights is not None:
            return (w * term.row_weights / m).sqrt().to(e.dtype)
        return torch.full((n,), math.sqrt(w / (n * m)), dtype=e.dtype, device=e.device)

    def _average(self, sums: dict, state: dict) -> None:
        """Fold this step's factors into the moving averages and rebuild ``layers``."""
        by_layer: dict[str, LayerCurvature] = {}
        for (weight, group), (a, b, count, layer) in sums.items():
            st = state.setdefault(f"kfac.{weight}.{group}", {})
            bias = self._names_of.get(id(layer.bias)) if layer.bias is not None else None
            entry = by_layer.setdefault(weight, LayerCurvature(weight, bias, {}))
            entry.factors[group] = (
                _moving_average(st, "B", b, self.ema),
                _moving_average(st, "A", a / count, self.ema),
            )
        self.layers = list(by_layer.values())

    def _covered(self) -> set[str]:
        return {k for lay in self.layers for k in (lay.weight, lay.bias) if k is not None}

    def _other_block(self, terms: dict, state: dict) -> None:
        """The exact Gram block (or its diagonal) of the weights outside the layers."""
        p = sum(self.shapes[k].numel() for k in self.other)
        if p > self.limit:
            chunk = max(1, 2**22 // p)
            gram = sum(
                w * t.gram_diagonal(self.module, self.other, chunk) for t, w in terms.values()
            ).detach()
        else:
            rows = [
                math.sqrt(w) * t.vector(row_jacobian(self.module, self.other, t).double())
                for t, w in terms.values()
            ]
            jac = torch.cat(rows).detach()
            gram = jac.T @ jac
        self.other_block = _moving_average(state, "kfac.other", gram, self.ema)

    # -- the step ------------------------------------------------------------------------

    def _split(self, v: Tensor, names: list[str] | None = None) -> dict[str, Tensor]:
        """v (p,) cut into the parameters ``names`` (default: all) in their shapes."""
        out, at = {}, 0
        for k in self.names if names is None else names:
            size = self.shapes[k].numel()
            out[k] = v[at : at + size].reshape(self.shapes[k])
            at += size
        return out

    def _joined(self, layer: LayerCurvature, parts: dict[str, Tensor]) -> Tensor:
        w = parts[layer.weight]
        return w if layer.bias is None else torch.cat([w, parts[layer.bias][:, None]], dim=1)

    def solve(self, v: Tensor, damping: float) -> Tensor:
        """K_μ⁻¹ v (p,) for the damped Kronecker-factored curvature."""
        parts, out = self._split(v), {}
        for layer in self.layers:
            y = layer.solve(self._joined(layer, parts), damping)
            if layer.bias is None:
                out[layer.weight] = y
            else:
                out[layer.weight], out[layer.bias] = y[:, :-1], y[:, -1]
        if self.other:
            block = self.other_block
            x = torch.cat([parts[k].reshape(-1) for k in self.other])
            y = block.solve(x, damping * max(block.mean_eigenvalue, 1e-300))
            out.update(self._split(y, self.other))
        return torch.cat([out[k].reshape(-1) for k in self.names])

    def trace(self) -> float:
        """tr K of the undamped curvature: Σ_k tr B_k tr A_k per layer, and the other block's."""
        total = sum(b.trace * a.trace for layer in self.layers for b, a in layer.factors.values())
        return total + (self.other_block.trace if self.other else 0.0)

    def quadratic(self, v: Tensor) -> float:
        """vᵀ K v for the undamped curvature."""
        parts = self._split(v)
        total = sum(layer.quadratic(self._joined(layer, parts)) for layer in self.layers)
        if self.other:
            x = torch.cat([parts[k].reshape(-1) for k in self.other])
            total += self.other_block.quadratic(x)
        return total
