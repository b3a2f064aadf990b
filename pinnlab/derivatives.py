"""The derivative engine: u, ∇u, ∂ₜu, Δu and tr(B Bᵀ ∇²u) of a network at a batch of points.

Everything reduces to one primitive, the *jet* of u along a set of directions V = (v₁ … v_m):

    u(x),   J_k = ∇u(x)·v_k,   S = Σ_k w_k v_kᵀ ∇²u(x) v_k.

The Laplacian takes V = I (weight 0 on the time column), tr(B Bᵀ ∇²u) takes V = columns of B.
The method is a setting:

* ``"reverse"`` — the reference: one reverse pass for ∇u, then one reverse pass of ∇u·v_k per
  direction (what DeepXDE's Hessian loop does for the Laplacian). Cost ∝ m backward passes.
* ``"forward"`` — forward ("Taylor") mode, Li et al., *Nat. Mach. Intell.* 6 (2024):
  (value, J, S) are propagated together through each layer. For an affine map z = W h + b:
  J_z = J_h Wᵀ, S_z = S_h Wᵀ; for an elementwise σ: J = σ'(z) J_z,
  S = σ'(z) S_z + σ''(z) Σ_k w_k J_{z,k}². All directions travel in one batched tensor, with
  no Python loop over the dimension. Modules that do not define ``forward_jet`` are handled by
  a torch.func fallback (jvp-of-jvp, vectorised over the directions).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from .errors import ShapeError, unknown_name


@dataclass
class Jet:
    """A second-order jet of a batch of vectors along m directions.

    value: (n, w); jac: (n, m, w) or (1, m, w) when independent of the point;
    lap: (n, w) = Σ_k w_k ∂²/∂v_k² or None for zero; weights: (m,) or None (all ones);
    order: 1 to skip second derivatives, 2 to carry them.
    """

    value: Tensor
    jac: Tensor
    lap: Tensor | None
    weights: Tensor | None
    order: int

    @classmethod
    def seed(cls, x: Tensor, directions: Tensor, weights: Tensor | None, order: int) -> Jet:
        """The jet of the identity map at x along ``directions`` ((m, D) or (n, m, D))."""
        jac = directions if directions.dim() == 3 else directions.unsqueeze(0)
        return cls(x, jac.to(x.dtype), None, weights, order)

    def _weighted(self, a: Tensor, b: Tensor) -> Tensor:
        """Σ_k w_k a_k b_k over the direction axis."""
        if self.weights is None:
            return (a * b).sum(dim=1)
        return torch.einsum("nmw,m,nmw->nw", a, self.weights, b)

    def _with(self, value, jac, lap) -> Jet:
        return Jet(value, jac, lap, self.weights, self.order)

    def linear(self, weight: Tensor, bias: Tensor | None = None) -> Jet:
        """Jet of z = W h + b."""
        lap = None if self.lap is None else F.linear(self.lap, weight)
        return self._with(F.linear(self.value, weight, bias), F.linear(self.jac, weight), lap)

    def elementwise(self, f0: Tensor, f1: Tensor, f2: Tensor | None) -> Jet:
        """Jet of σ(h) given σ, σ', σ'' evaluated at ``self.value``."""
        if self.order < 2:
            return self._with(f0, f1.unsqueeze(1) * self.jac, None)
        if self.jac.shape[0] > 1:  # per-point directions: the fused kernel saves memory passes
            jac, q = _ScaleAndSquare.apply(self.jac, f1, self.weights)
        else:
            jac, q = f1.unsqueeze(1) * self.jac, self._weighted(self.jac, self.jac)
        lap = f2 * q if self.lap is None else f2 * q + f1 * self.lap
        return self._with(f0, jac, lap)

    def __add__(self, other: Jet | Tensor | float) -> Jet:
        if not isinstance(other, Jet):
            return self._with(self.value + other, self.jac, self.lap)
        lap = (
            self.lap
            if other.lap is None
            else other.lap
            if self.lap is None
            else self.lap + other.lap
        )
        return self._with(self.value + other.value, self.jac + other.jac, lap)

    __radd__ = __add__

    def __mul__(self, other: Jet | Tensor | float) -> Jet:
        """Product rule: (fg)'' = f''g + 2 f'g' + fg''."""
        if not isinstance(other, Jet):
            c = other.unsqueeze(1) if isinstance(other, Tensor) and other.dim() == 2 else other
            lap = None if self.lap is None else self.lap * other
            return self._with(self.value * other, self.jac * c, lap)
        a, b = self, other
        jac = a.value.unsqueeze(1) * b.jac + b.value.unsqueeze(1) * a.jac
        lap = None
        if self.order >= 2:
            lap = 2 * self._weighted(a.jac, b.jac)
            if a.lap is not None:
                lap = lap + a.lap * b.value
            if b.lap is not None:
                lap = lap + a.value * b.lap
        return self._with(a.value * b.value, jac, lap)

    __rmul__ = __mul__

    def cat(self, other: Jet) -> Jet:
        """Concatenate two jets along the feature axis."""
        n = max(self.jac.shape[0], other.jac.shape[0])
        jac = torch.cat([self.jac.expand(n, -1, -1), other.jac.expand(n, -1, -1)], dim=2)
        lap = None
        if self.lap is not None or other.lap is not None:
            zero = torch.zeros_like
            lap = torch.cat(
                [
                    self.lap if self.lap is not None else zero(self.value),
                    other.lap if other.lap is not None else zero(other.value),
                ],
                dim=1,
            )
        return self._with(torch.cat([self.value, other.value], dim=1), jac, lap)


class _ScaleAndSquare(torch.autograd.Function):
    """(J, f, w) -> (f ⊙ J, Σ_k w_k J_k²) for J of shape (n, m, width), f of shape (n, width).

    The two products every activation layer of a forward-mode jet needs, with a hand-written
    backward: autograd's generic version makes about twice as many passes over J, which
    dominates the cost of a training step on a CPU. The backward is written with
    differentiable operations, so higher derivatives with respect to the weights stay exact.
    """

    @staticmethod
    def forward(ctx, jac: Tensor, f: Tensor, weights: Tensor | None):
        ctx.save_for_backward(jac, f, weights)
        if weights is None:
            q = torch.linalg.vector_norm(jac, dim=1).square()
        else:
            q = (jac.square() * weights[:, None]).sum(dim=1)
        return jac * f.unsqueeze(1), q

    @staticmethod
    def backward(ctx, d_scaled: Tensor, d_q: Tensor):
        jac, f, weights = ctx.saved_tensors
        two_dq = 2 * d_q.unsqueeze(1)
        d_jac = torch.addcmul(
            d_scaled * f.unsqueeze(1), jac, two_dq if weights is None else two_dq * weights[:, None]
        )
        d_f = (d_scaled * jac).sum(dim=1)
        return d_jac, d_f, None


def propagate(module: Callable[[Tensor], Tensor], jet: Jet) -> Jet:
    """Push a jet through ``module``: its own ``forward_jet`` if it has one, else torch.func."""
    if hasattr(module, "forward_jet"):
        return module.forward_jet(jet)
    if isinstance(module, nn.Linear):
        return jet.linear(module.weight, module.bias)
    if isinstance(module, nn.Sequential):
        for layer in module:
            jet = propagate(layer, jet)
        return jet
    return _propagate_functional(module, jet)


def _propagate_functional(f: Callable[[Tensor], Tensor], jet: Jet) -> Jet:
    """Generic jet of any pointwise map f: (n, a) -> (n, b) by torch.func.

    J_out,k = Df·J_k (one jvp), and the k-th second derivative is J_kᵀ ∇²f J_k + Df·S
    (jvp of a jvp), vectorised over the m directions with vmap.
    """
    from torch.func import jvp, vmap

    x = jet.value
    jac = jet.jac.expand(x.shape[0], -1, -1).transpose(0, 1)  # (m, n, a)

    if jet.order < 2:
        value = f(x)
        out_jac = vmap(lambda t: jvp(f, (x,), (t,))[1])(jac)
        return jet._with(value, out_jac.transpose(0, 1), None)

    def second(t):
        return jvp(lambda h: jvp(f, (h,), (t,))[1], (x,), (t,))

    first, hess = vmap(second)(jac)  # (m, n, b) each
    w = (
        torch.ones(jac.shape[0], dtype=x.dtype, device=x.device)
        if jet.weights is None
        else jet.weights
    )
    lap = torch.einsum("m,mnb->nb", w, hess)
    if jet.lap is not None:
        value, dlap = jvp(f, (x,), (jet.lap,))
        lap = lap + dlap
    else:
        value = f(x)
    return jet._with(value, first.transpose(0, 1), lap)


class ForwardMode:
    """Forward (Taylor) mode: one pass propagates value, J and S together."""

    name = "forward"
    min_order = 2  # the second-order part costs little next to J: compute it with any request

    def jet(self, net, x: Tensor, directions: Tensor, weights: Tensor | None, order: int):
        if order == 0:
            return net(x), None, None
        out = propagate(net, Jet.seed(x, directions, weights, max(order, 1)))
        jac = out.jac.expand(x.shape[0], -1, -1)
        return out.value, jac, out.lap


class ReverseMode:
    """The reference: reverse-mode autograd, one backward pass per direction and output."""

    name = "reverse"
    min_order = 0

    def jet(self, net, x: Tensor, directions: Tensor, weights: Tensor | None, order: int):
        with torch.enable_grad():
            x = x.detach().requires_grad_(True)
            u = net(x)
            if order == 0:
                return u, None, None
            v = directions if directions.dim() == 3 else directions.unsqueeze(0)
            m = v.shape[1]
            # One host copy of the weights (not a device sync per direction).
            ws = [1.0] * m if weights is None else weights.tolist()
            lap = None
            jacs, laps = [], []
            for c in range(u.shape[1]):
                (g,) = torch.autograd.grad(u[:, c].sum(), x, create_graph=True)
                jacs.append(torch.einsum("nd,nmd->nm", g, v.expand(x.shape[0], -1, -1)))
                if order >= 2:
                    total = 0.0
                    for k, w in enumerate(ws):
                        if w == 0.0:
                            continue
                        vk = v[:, k, :]
                        (h,) = torch.autograd.grad((g * vk).sum(), x, create_graph=True)
                        total = total + w * (h * vk).sum(dim=1)
                    laps.append(total if isinstance(total, Tensor) else torch.zeros_like(u[:, c]))
            jac = torch.stack(jacs, dim=2)
            if order >= 2:
                lap = torch.stack(laps, dim=1)
            return u, jac, lap


METHODS: dict[str, Callable[[], ForwardMode | ReverseMode]] = {
    "forward": ForwardMode,
    "reverse": ReverseMode,
}


def get_method(name: str):
    """The derivative method called ``name``."""
    if name not in METHODS:
        raise unknown_name("derivative method", name, METHODS)
    return METHODS[name]()


class Derivatives:
    """Lazy derivatives of ``net`` at ``points``, computed on first use by ``method``.

    Residuals read like mathematics: ``-d.laplacian - f(d.x)``. For a space-time problem
    (``time_dependent=True``) column 0 of the points is t: ``d.t``, ``d.dt``; ``d.x``, ``d.grad``
    and ``d.laplacian`` are spatial. Scalar outputs give u (n,), grad (n, d), laplacian (n,);
    k outputs give u (n, k), grad (n, k, d), laplacian (n, k).
    """

    def __init__(self, net, points: Tensor, *, method: str = "forward", time_dependent=False):
        if points.dim() != 2:
            raise ShapeError(f"points must have shape (n, dim), got {tuple(points.shape)}.")
        self.net = net
        self.points = points
        self.method = get_method(method)
        self._t = 1 if time_dependent else 0
        self._cache: dict[int, tuple[Tensor, Tensor | None, Tensor | None]] = {}

    @property
    def x(self) -> Tensor:
        """Spatial coordinates, (n, d)."""
        return self.points[:, self._t :]

    @property
    def t(self) -> Tensor:
        """Time, (n,)."""
        if not self._t:
            raise ShapeError("d.t is only defined for time-dependent problems.")
        return self.points[:, 0]

    def _jet(self, order: int):
        order = max(order, self.method.min_order)
        for have in sorted(self._cache, reverse=True):
            if have >= order:
                return self._cache[have]
        dim = self.points.shape[1]
        eye = torch.eye(dim, dtype=self.points.dtype, device=self.points.device)
        weights = None
        if self._t:
            weights = torch.ones(dim, dtype=self.points.dtype, device=self.points.device)
            weights[0] = 0.0
        self._cache[order] = self.method.jet(self.net, self.points, eye, weights, order)
        return self._cache[order]

    @staticmethod
    def _squeeze(a: Tensor) -> Tensor:
        return a.squeeze(-1) if a.shape[-1] == 1 else a

    @property
    def u(self) -> Tensor:
        return self._squeeze(self._jet(0)[0])

    @property
    def grad(self) -> Tensor:
        """Spatial gradient ∇u."""
        jac = self._jet(1)[1][:, self._t :, :]  # (n, d, k)
        return jac[..., 0] if jac.shape[-1] == 1 else jac.transpose(1, 2)

    @property
    def dt(self) -> Tensor:
        """∂u/∂t."""
        _ = self.t
        return self._squeeze(self._jet(1)[1][:, 0, :])

    @property
    def laplacian(self) -> Tensor:
        """Spatial Laplacian Δu."""
        return self._squeeze(self._jet(2)[2])

    def trace(self, factor: Tensor) -> Tensor:
        """tr(B Bᵀ ∇²u) = Σ_k b_kᵀ ∇²u b_k over the columns b_k of B.

        ``factor`` is B, of shape (d, m) (constant) or (n, d, m) (point-dependent).
        """
        d = self.points.shape[1] - self._t
        if factor.dim() not in (2, 3) or factor.shape[-2] != d:
            raise ShapeError(
                f"factor B must have shape (d, m) or (n, d, m) with d={d}, got {tuple(factor.shape)}."
            )
        v = factor.transpose(-1, -2)  # (m, d) or (n, m, d)
        if self._t:
            v = F.pad(v, (1, 0))  # no component along t
        _, _, lap = self.method.jet(self.net, self.points, v, None, 2)
        return self._squeeze(lap)
