"""Jets: value, first and second directional derivatives pushed through a network's layers.

The primitive of the derivative engine is the jet of u along directions V = (v₁ … v_m):

    u(x),   J_k = ∇u(x)·v_k,   S = Σ_k w_k v_kᵀ ∇²u(x) v_k.

Forward ("Taylor") mode, Li et al., *Nat. Mach. Intell.* 6 (2024), propagates (value, J, S)
together: for an affine map z = W h + b, J_z = J_h Wᵀ and S_z = S_h Wᵀ; for an elementwise σ,
J = σ'(z) J_z and S = σ'(z) S_z + σ''(z) Σ_k w_k J_{z,k}². All directions travel in one batched
tensor. Modules without ``forward_jet`` go through a torch.func fallback (jvp of jvp, vmapped
over the directions).

**First-layer reduction.** When the input enters only through a first affine map z = W x + b,
S depends on the directions only through M = Σ_k w_k (W v_k)(W v_k)ᵀ, a width × width matrix.
Any factor M = Rᵀ R gives the same S, so after the first layer the m directions are replaced
by the r = min(m, width) rows of R, from a QR factorisation (W V)ᵀ diag(√w) = Q R, and the
first derivatives along the original directions are recovered as J = J_R Qᵀ (``basis``).
An exact Laplacian in d = 100,000 dimensions then costs what it costs at d = width.

**Separable maps.** A map Σᵢ gᵢ(xᵢ) of the input coordinates has a diagonal Hessian, so its
jet needs no loop over directions (``coordinatewise_jet``; the additive part of
``pinnlab.networks.Additive`` and the pooled features of
``pinnlab.networks.DeepSets``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn
from torch.nn import functional as F


class MixedBasis(Exception):
    """Two jets in different reduced bases met: the reduction does not apply to this network."""


@dataclass
class Jet:
    """A second-order jet of a batch of vectors along m directions.

    value: (n, w); jac: (n, m, w) or (1, m, w) when independent of the point, or None for the
    identity (the seed along all D input axes); lap: (n, w) = Σ_k w_k ∂²/∂v_k² or None for
    zero; weights: (m,) or None (all ones); order: 1 to skip second derivatives, 2 to carry them.
    After a first-layer reduction, ``basis`` (r, m) or (n, r, m) maps J along the r reduced
    directions to J along the m seed directions. ``reduce`` marks a seed that may be reduced at
    its first affine map (see ``seed``); its first ``pinned`` directions have weight 0 and are
    kept as they are (∂ₜ of a space-time problem). ``reduced`` records that a reduction
    happened on the way here.

    A reduced jet meeting one in the seed basis (``basis`` None: say the distance function
    φ(x) of u = g + φ N, which never passes the network's first layer) is mapped back to the
    seed directions first (``unreduced``): exact, at n·m·k numbers for k features, which is
    cheap at a network's output.
    """

    value: Tensor
    jac: Tensor | None
    lap: Tensor | None
    weights: Tensor | None
    order: int
    basis: Tensor | None = None
    reduce: int = 0
    pinned: int = 0
    reduced: bool = False

    @classmethod
    def seed(
        cls,
        x: Tensor,
        directions: Tensor | None,
        weights: Tensor | None,
        order: int,
        *,
        reduce: int = 0,
        pinned: int = 0,
    ) -> Jet:
        """The jet of the identity map at x along ``directions`` ((m, D), (n, m, D) or None = I).

        ``reduce``: 0 never reduce, 1 reduce at the first affine map when that saves directions
        (m > width), 2 always (to probe whether a network admits the reduction at all).
        """
        jac = None
        if directions is not None:
            jac = directions if directions.dim() == 3 else directions.unsqueeze(0)
            jac = jac.to(x.dtype)
        return cls(x, jac, None, weights, order, None, reduce, pinned)

    @property
    def J(self) -> Tensor:
        """The directional derivatives, with an identity seed materialised."""
        if self.jac is not None:
            return self.jac
        d = self.value.shape[1]
        return torch.eye(d, dtype=self.value.dtype, device=self.value.device).unsqueeze(0)

    def _weighted(self, a: Tensor, b: Tensor) -> Tensor:
        """Σ_k w_k a_k b_k over the direction axis."""
        if self.weights is None:
            return (a * b).sum(dim=1)
        return torch.einsum("nmw,m,nmw->nw", a, self.weights, b)

    def _with(self, value, jac, lap) -> Jet:
        return Jet(value, jac, lap, self.weights, self.order, self.basis, reduced=self.reduced)

    def unreduced(self, weights: Tensor | None) -> Jet:
        """This jet along the seed directions (whose weights are ``weights``)."""
        if self.basis is None:
            return self
        jac = self.basis.transpose(1, 2) @ self.J  # (s, m, r) @ (n, r, k) -> (n, m, k)
        return Jet(self.value, jac, self.lap, weights, self.order, reduced=True)

    def _align(self, other: Jet) -> tuple[Jet, Jet]:
        """Both jets in one direction basis (see the class docstring)."""
        if self.basis is other.basis:
            return self, other
        if self.basis is None:
            return self, other.unreduced(self.weights)
        if other.basis is None:
            return self.unreduced(other.weights), other
        raise MixedBasis

    def linear(
        self,
        weight: Tensor,
        bias: Tensor | None = None,
        *,
        layer: nn.Module | None = None,
        input_map: nn.Module | None = None,
    ) -> Jet:
        """Jet of z = W h + b (reduced when this is a reducible seed with m > width).

        ``layer``: the module whose ``weight`` and ``bias`` (W, b) are, with ``input_map``
        (shift c, scale s) folded in when given (W = W_layer diag(s), b = b_layer − W c); a
        ``LinearTape`` that is recording then keeps this map's inputs and outputs, unreduced.
        """
        tape = _recording_tape(layer)
        if tape is not None:
            return self._recorded(tape, weight, bias, layer, input_map)
        # The order lap, value, jac fixes the order in which autograd sums W's gradients.
        lap = None if self.lap is None else F.linear(self.lap, weight)
        value = F.linear(self.value, weight, bias)
        jac = weight.T.unsqueeze(0).contiguous() if self.jac is None else F.linear(self.jac, weight)
        return self.reduce_after(self._with(value, jac, lap))

    def _recorded(self, tape, weight, bias, layer, input_map) -> Jet:
        """``linear`` with its inputs and outputs on ``tape``: directions per point, and
        without the first-layer reduction (its QR would hide the outputs' gradients)."""
        n = self.value.shape[0]
        copies = [self.value.unsqueeze(1), self.J.expand(n, -1, -1)]
        value = F.linear(self.value, weight, bias)
        jac = F.linear(copies[1], weight)
        lap = None if self.lap is None else F.linear(self.lap, weight)
        if lap is not None:
            copies.append(self.lap.unsqueeze(1))
        tape.add(layer, input_map, copies, [z for z in (value, jac, lap) if z is not None])
        return self._with(value, jac, lap)

    def reduce_after(self, out: Jet) -> Jet:
        """``out``, the jet of a map of this seed that the first-layer reduction may follow,
        with its m directions replaced by min(m, width) (when this seed is reducible and that
        saves directions, or always for ``reduce`` = 2)."""
        saves = out.jac.shape[1] - self.pinned > out.jac.shape[2]
        if self.order >= 2 and (self.reduce == 2 or (self.reduce == 1 and saves)):
            out.jac, out.weights, out.basis = _reduce(out.jac, self.weights, self.pinned)
            out.reduced = True
        return out

    def elementwise(self, f0: Tensor, f1: Tensor, f2: Tensor | None) -> Jet:
        """Jet of σ(h) given σ, σ', σ'' evaluated at ``self.value``."""
        J = self.J
        if self.order < 2:
            return self._with(f0, f1.unsqueeze(1) * J, None)
        if J.shape[0] > 1:  # per-point directions: the fused kernel saves memory passes
            jac, q = _ScaleAndSquare.apply(J, f1, self.weights)
        else:
            jac, q = f1.unsqueeze(1) * J, self._weighted(J, J)
        lap = f2 * q if self.lap is None else f2 * q + f1 * self.lap
        return self._with(f0, jac, lap)

    def __add__(self, other: Jet | Tensor | float) -> Jet:
        if not isinstance(other, Jet):
            return self._with(self.value + other, self.jac, self.lap)
        a, b = self._align(other)
        lap = a.lap if b.lap is None else b.lap if a.lap is None else a.lap + b.lap
        return a._merged(b, a.value + b.value, a.J + b.J, lap)

    __radd__ = __add__

    def __mul__(self, other: Jet | Tensor | float) -> Jet:
        """Product rule: (fg)'' = f''g + 2 f'g' + fg''."""
        if not isinstance(other, Jet):
            c = other.unsqueeze(1) if isinstance(other, Tensor) and other.dim() == 2 else other
            lap = None if self.lap is None else self.lap * other
            return self._with(self.value * other, self.J * c, lap)
        a, b = self._align(other)
        aj, bj = a.J, b.J
        jac = a.value.unsqueeze(1) * bj + b.value.unsqueeze(1) * aj
        lap = None
        if self.order >= 2:
            lap = 2 * a._weighted(aj, bj)
            if a.lap is not None:
                lap = lap + a.lap * b.value
            if b.lap is not None:
                lap = lap + a.value * b.lap
        return a._merged(b, a.value * b.value, jac, lap)

    __rmul__ = __mul__

    def _merged(self, other: Jet, value, jac, lap) -> Jet:
        out = self._with(value, jac, lap)
        out.reduced = self.reduced or other.reduced
        return out

    def sum_of_squares(self) -> Jet:
        """Jet of q = Σᵢ hᵢ² over the features: J_k = 2 hᵀ J_k, S = 2 Σ_k w_k |J_k|² + 2 hᵀS.

        Costs n·m·w, and n·w for the identity seed (no m × w matrix is formed).
        """
        h = self.value
        if self.jac is None:
            jac = 2 * h
        elif self.jac.shape[0] == 1:
            jac = 2 * h @ self.jac[0].T
        else:
            jac = 2 * torch.einsum("nmw,nw->nm", self.jac, h)
        lap = None
        if self.order >= 2:
            if self.jac is None:
                total = h.shape[1] if self.weights is None else self.weights.sum()
                lap = torch.full_like(h[:, :1], 2.0) * total
            else:
                lap = 2 * self._weighted(self.jac, self.jac).sum(dim=1, keepdim=True)
                lap = lap.expand(h.shape[0], 1)
            if self.lap is not None:
                lap = lap + 2 * (h * self.lap).sum(dim=1, keepdim=True)
        q = h.square().sum(dim=1, keepdim=True)
        return self._with(q, jac.unsqueeze(2), lap)

    def cat(self, other: Jet) -> Jet:
        """Concatenate two jets along the feature axis."""
        if self.basis is not other.basis:
            raise MixedBasis  # (mid-network: mapping back would cost as much as no reduction)
        aj, bj = self.J, other.J
        n = max(aj.shape[0], bj.shape[0])
        jac = torch.cat([aj.expand(n, -1, -1), bj.expand(n, -1, -1)], dim=2)
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


@dataclass
class TapeEntry:
    """One recorded affine map z = W a + b of a layer: ``inputs`` (n, S, k) in the layer's
    own coordinates with a last column 1 for the value copy (the bias's input) and 0 for the
    derivative copies when the layer has a bias, and ``outputs``, the tensors z of the copies
    in that order as the forward pass used them ((n, o) for one copy, (n, m, o) for m), which
    autograd differentiates to."""

    inputs: Tensor
    outputs: list[Tensor]


@dataclass
class LinearTape:
    """The affine maps of the layers a forward pass went through, in the order of the calls
    (``recording``): what a Kronecker-factored curvature needs (``pinnlab.kfac``). A map of a
    jet has S = 1 + m (+ 1) copies (value, the m directional derivatives, the second-order
    term), all multiplied by the same W: ∂z_s/∂W = a_sᵀ for each."""

    entries: dict[nn.Module, list[TapeEntry]] = field(default_factory=dict)

    def add(self, layer, input_map, copies: list[Tensor], outputs: list[Tensor]) -> None:
        if input_map is not None:  # the layer's own input: (x − c) ⊙ s, derivatives ⊙ s
            copies = [(copies[0] - input_map.shift) * input_map.scale] + [
                c * input_map.scale for c in copies[1:]
            ]
        inputs = torch.cat(copies, dim=1)
        if getattr(layer, "bias", None) is not None:
            ones = torch.zeros_like(inputs[..., :1])
            ones[:, 0] = 1.0
            inputs = torch.cat([inputs, ones], dim=2)
        self.entries.setdefault(layer, []).append(TapeEntry(inputs.detach(), outputs))


_TAPE: ContextVar[LinearTape | None] = ContextVar("pinnlab_linear_tape", default=None)


def _recording_tape(layer: nn.Module | None) -> LinearTape | None:
    """The tape a map of ``layer`` goes on: none outside ``recording``, for an anonymous map,
    or where no gradient is taken (a probe such as ``reducible`` is not part of the loss)."""
    tape = _TAPE.get()
    return tape if tape is not None and layer is not None and torch.is_grad_enabled() else None


@contextmanager
def recording() -> Iterator[LinearTape]:
    """Record the inputs and outputs of every layer's affine map (``Jet.linear`` and
    ``affine`` given their ``layer``) while the block runs, on a new ``LinearTape``. The tape
    is local to the running thread or task (a context variable), never shared."""
    tape = LinearTape()
    token = _TAPE.set(tape)
    try:
        yield tape
    finally:
        _TAPE.reset(token)


def affine(
    x: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    *,
    layer: nn.Module | None = None,
    input_map: nn.Module | None = None,
) -> Tensor:
    """z = W x + b on a batch of vectors, recorded on a ``LinearTape`` like ``Jet.linear``."""
    z = F.linear(x, weight, bias)
    tape = _recording_tape(layer)
    if tape is not None:
        tape.add(layer, input_map, [x.unsqueeze(1)], [z])
    return z


def coordinatewise_jet(
    jet: Jet, value: Tensor, d1: Tensor, second: Callable[[Tensor | None], Tensor]
) -> Jet:
    """The jet of a map Σᵢ gᵢ(xᵢ) ∈ R^o from gᵢ' = ``d1`` ((n, d, o)) and
    ``second(q)`` = Σᵢ qᵢ gᵢ''(xᵢ) ((n, o); q (1 or n, d), None for all ones):
    J_k = Σᵢ gᵢ' V_kᵢ and S = Σᵢ (gᵢ'' q_i + gᵢ' Sᵢ), q_i = Σ_k w_k V_kᵢ² — the Hessian is
    diagonal, so no direction loop."""
    if jet.jac is None:
        jac = d1
    elif jet.jac.shape[0] == 1:
        jac = torch.einsum("md,ndo->nmo", jet.jac[0], d1)
    else:
        jac = torch.einsum("nmd,ndo->nmo", jet.jac, d1)
    lap = None
    if jet.order >= 2:
        # q_i = Σ_k w_k V_ki²: (1 or n, d); for the identity seed, the weights themselves.
        if jet.jac is None:
            q = None if jet.weights is None else jet.weights.unsqueeze(0)
        elif jet.weights is None:
            q = jet.jac.square().sum(dim=1)
        else:
            q = torch.einsum("smd,m->sd", jet.jac.square(), jet.weights)
        lap = second(q)
        if jet.lap is not None:
            lap = lap + torch.einsum("nd,ndo->no", jet.lap, d1)
    return Jet(value, jac, lap, jet.weights, jet.order)


def weighted_sum(q: Tensor | None, f: Tensor) -> Tensor:
    """Σᵢ qᵢ f[:, i] over the coordinate axis of f (n, d, k); q (1 or n, d) or None (ones)."""
    if q is None:
        return f.sum(dim=1)
    if q.shape[0] == 1:
        return torch.einsum("d,ndk->nk", q[0], f)
    return torch.einsum("nd,ndk->nk", q, f)


def column(scale: Tensor | float) -> Tensor | float:
    """A per-coordinate factor (d,) shaped to multiply (n, d, out) tensors."""
    return scale.unsqueeze(1) if isinstance(scale, Tensor) else scale


def _reduce(jac: Tensor, weights: Tensor | None, pinned: int):
    """Replace m directions (after the first affine map) by r = min(m, width) equivalent ones.

    jac: (s, m, width). The free directions, scaled by √w, factor as X = Q R (X: (s, m', width));
    the rows of R carry the same Σ_k w_k J_kᵀ ∇²g J_k, and J along the seed directions is
    J_R Qᵀ / √w. Pinned directions (weight 0) are appended unchanged.
    Returns (jac (s, r + p, width), weights (r + p,) or None, basis (s, r + p, m)).
    """
    free = jac[:, pinned:]
    root = None if weights is None else weights[pinned:].sqrt()
    x = free if root is None else free * root[:, None]
    q, r = torch.linalg.qr(x)  # q: (s, m', r), r: (s, r, width)
    basis = q.transpose(1, 2)
    if root is not None:
        basis = basis / root
    if not pinned:
        return r, None, basis
    s, rank = r.shape[0], r.shape[1]
    new = dict(dtype=jac.dtype, device=jac.device)
    top = F.pad(basis, (pinned, 0))  # reduced directions: no component along pinned ones
    bottom = F.pad(torch.eye(pinned, **new).expand(s, -1, -1), (0, free.shape[1]))
    weights = torch.cat([torch.ones(rank, **new), torch.zeros(pinned, **new)])
    return torch.cat([r, jac[:, :pinned]], dim=1), weights, torch.cat([top, bottom], dim=1)


#: Up to this many directions the sum of squares of a jet's J is a dot product (on a CPU
#: 10–100× faster than torch.linalg.vector_norm over the middle axis of an (n, m, width)
#: tensor, whose reduction kernel is poorly vectorised there); beyond it the norm's single
#: pass over memory wins.
FEW_DIRECTIONS = 16


class _ScaleAndSquare(torch.autograd.Function):
    """(J, f, w) -> (f ⊙ J, Σ_k w_k J_k²) for J of shape (n, m, width), f of shape (n, width).

    The two products every activation layer of a forward-mode jet needs, with a hand-written
    backward: autograd's generic version makes about twice as many passes over J, which
    dominates the cost of a training step on a CPU. The backward is written with
    differentiable operations, so higher derivatives with respect to the weights stay exact,
    and torch.func can transform it (``setup_context``, a generated vmap rule: the
    matrix-free Gauss–Newton products of ``pinnlab.gauss_newton.Linearisation``). The weights
    w are constants (no derivative is taken through them).
    """

    generate_vmap_rule = True

    @staticmethod
    def forward(jac: Tensor, f: Tensor, weights: Tensor | None):
        if weights is None:
            # One thread, (8192, m, 64): m = 2: 0.9–1.2 ms against 52–57 ms; m = 16: 18–38
            # against 66–83; m = 32: even in float64 (74 against 80), and slower at width 256.
            q = (
                torch.linalg.vecdot(jac, jac, dim=1)
                if jac.shape[1] <= FEW_DIRECTIONS
                else torch.linalg.vector_norm(jac, dim=1).square()
            )
        else:
            q = (jac.square() * weights[:, None]).sum(dim=1)
        return jac * f.unsqueeze(1), q

    @staticmethod
    def setup_context(ctx, inputs, output):
        jac, f, weights = inputs
        ctx.save_for_backward(jac, f, weights)

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
        return jet.linear(module.weight, module.bias, layer=module)
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
    jac = jet.J.expand(x.shape[0], -1, -1).transpose(0, 1)  # (m, n, a)

    def g(h: Tensor) -> Tensor:  # f with an output (n,) as one column, (n, 1)
        y = f(h)
        return y.reshape(y.shape[0], -1)

    if jet.order < 2:
        value = g(x)
        out_jac = vmap(lambda t: jvp(g, (x,), (t,))[1])(jac)
        return jet._with(value, out_jac.transpose(0, 1), None)

    def second(t):
        return jvp(lambda h: jvp(g, (h,), (t,))[1], (x,), (t,))

    first, hess = vmap(second)(jac)  # (m, n, b) each
    w = (
        torch.ones(jac.shape[0], dtype=x.dtype, device=x.device)
        if jet.weights is None
        else jet.weights
    )
    lap = torch.einsum("m,mnb->nb", w, hess)
    if jet.lap is not None:
        value, dlap = jvp(g, (x,), (jet.lap,))
        lap = lap + dlap
    else:
        value = g(x)
    return jet._with(value, first.transpose(0, 1), lap)
