"""Exact derivative methods: the reverse-mode reference, forward mode, forward mode reduced.

Each returns a ``JetResult`` of u along a set of seed directions: value, first derivatives
along each direction, and S = Σ_k w_k v_kᵀ ∇²u v_k. Costs for n points, m directions and an
L-layer network of width w (one training step is about three times the forward cost):

* ``reverse`` — one reverse pass for ∇u, then one per direction for ∇(∇u·v_k)·v_k: m + 1
  sequential backward passes of n·w²·L operations each, plus the retained graph of each (what
  DeepXDE's Hessian loop does). The reference.
* ``forward`` — one pass carrying (n, m, w) tensors: n·m·w²·L operations in batched matrix
  products; memory n·m·w per layer.
* ``reduced`` — forward mode after the first-layer reduction: m is replaced by min(m, w) at the
  first affine map, for the price of one QR factorisation of an m × w matrix (m·w² operations).
  The cost no longer grows with d beyond the first layer's n·d·w.
"""

from __future__ import annotations

import warnings
import weakref
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from .jets import Jet, MixedBasis, propagate


@dataclass
class JetResult:
    """u (n, k), first derivatives in a (possibly reduced) basis, and S (n, k) or None."""

    value: Tensor
    reduced_jac: Tensor | None  # (n, r, k)
    lap: Tensor | None
    basis: Tensor | None = None  # (s, r, m): seed-direction J = basisᵀ · reduced J

    def jac(self, columns: slice = slice(None)) -> Tensor:
        """First derivatives along the seed directions ``columns``: (n, m', k)."""
        if self.basis is None:
            return self.reduced_jac[:, columns]
        return self.basis[..., columns].transpose(1, 2) @ self.reduced_jac


class ForwardMode:
    """Forward (Taylor) mode: one pass propagates value, J and S together."""

    name = "forward"
    stochastic = False
    min_order = 2  # the second-order part costs little next to J: compute it with any request
    reduce = 0

    def jet(self, net, x: Tensor, directions, weights, order: int, pinned: int = 0) -> JetResult:
        """The jet of ``net`` at x; ``directions`` (m, D), (n, m, D) or None for the identity."""
        if order == 0:
            return JetResult(net(x), None, None)
        seed = Jet.seed(x, directions, weights, max(order, 1), reduce=self.reduce, pinned=pinned)
        out = propagate(net, seed)
        return JetResult(out.value, out.J.expand(x.shape[0], -1, -1), out.lap, out.basis)


class ReducedMode(ForwardMode):
    """Forward mode with the first-layer reduction; plain forward mode where it does not apply."""

    name = "reduced"
    reduce = 1

    def __init__(self):
        self._unreducible: weakref.WeakSet = weakref.WeakSet()
        self._plain = ForwardMode()

    def jet(self, net, x: Tensor, directions, weights, order: int, pinned: int = 0) -> JetResult:
        if order == 0 or net in self._unreducible:
            return self._plain.jet(net, x, directions, weights, order, pinned)
        try:
            return super().jet(net, x, directions, weights, order, pinned)
        except MixedBasis:
            self._unreducible.add(net)
            warnings.warn(
                f"the first-layer reduction does not apply to {type(net).__name__} (its input "
                "does not reach it through one first affine map only); using forward mode "
                "without reduction: exact, at a cost that grows with the dimension.",
                stacklevel=3,
            )
            return self._plain.jet(net, x, directions, weights, order, pinned)


def reducible(net, dim: int, *, dtype: torch.dtype, device) -> bool:
    """Whether ``net`` takes its input through one first affine map only (a cheap probe)."""
    x = torch.zeros(1, dim, dtype=dtype, device=device)
    v = torch.zeros(1, dim, dtype=dtype, device=device)
    v[0, 0] = 1.0
    with torch.no_grad():
        try:
            out = propagate(net, Jet.seed(x, v, None, 2, reduce=2))
        except MixedBasis:
            return False
    return out.reduced


class ReverseMode:
    """The reference: reverse-mode autograd, one backward pass per direction and output.

    Works for any callable of the points, not only networks. ``create_graph=False`` leaves the
    first derivatives without a graph of their own (for derivatives used as data: a control
    variate's coefficient, a metric); the value keeps its graph in either case. Second
    derivatives always build it (they differentiate the first).
    """

    name = "reverse"
    stochastic = False
    min_order = 0

    def __init__(self, create_graph: bool = True):
        self.create_graph = create_graph

    def jet(self, net, x: Tensor, directions, weights, order: int, pinned: int = 0) -> JetResult:
        """Under ``torch.no_grad()`` the results come without their autograd graph (as forward
        mode's would): the graph is built to differentiate, then let go."""
        result = self._jet(net, x, directions, weights, order)
        if torch.is_grad_enabled():
            return result
        return JetResult(**{k: None if a is None else a.detach() for k, a in vars(result).items()})

    def _jet(self, net, x: Tensor, directions, weights, order: int) -> JetResult:
        with torch.enable_grad():
            x = x.detach().requires_grad_(True)
            u = net(x)
            if u.dim() == 1:  # a function of the points with one output, (n,)
                u = u.unsqueeze(1)
            if order == 0:
                return JetResult(u, None, None)
            n, dim = x.shape
            v = None
            if directions is not None:
                v = directions if directions.dim() == 3 else directions.unsqueeze(0)
                v = v.expand(n, -1, -1)
            m = dim if v is None else v.shape[1]
            # One host copy of the weights (not a device sync per direction).
            ws = [1.0] * m if weights is None else weights.tolist()
            graph = self.create_graph or order >= 2
            jacs, laps = [], []
            for c in range(u.shape[1]):
                g = _grad(u[:, c].sum(), x, graph)
                jacs.append(g if v is None else torch.einsum("nd,nmd->nm", g, v))
                if order < 2:
                    continue
                total = torch.zeros_like(u[:, c])
                for k, w in enumerate(ws):
                    if w == 0.0:
                        continue
                    if v is None:
                        h = _grad(g[:, k].sum(), x, True)
                        total = total + w * h[:, k]
                    else:
                        vk = v[:, k, :]
                        h = _grad((g * vk).sum(), x, True)
                        total = total + w * (h * vk).sum(dim=1)
                laps.append(total)
            lap = torch.stack(laps, dim=1) if order >= 2 else None
            return JetResult(u, torch.stack(jacs, dim=2), lap)


def _grad(total: Tensor, x: Tensor, create_graph: bool) -> Tensor:
    """∂ total/∂x, keeping the graph for the next output; zero where total does not depend on
    x (an output constant in x, or a first derivative of an affine map)."""
    if not total.requires_grad:
        return torch.zeros_like(x)
    (g,) = torch.autograd.grad(
        total, x, create_graph=create_graph, retain_graph=True, allow_unused=True
    )
    return torch.zeros_like(x) if g is None else g


def gradient(
    fn: Callable[[Tensor], Tensor], x: Tensor, *, create_graph: bool = False
) -> tuple[Tensor, Tensor]:
    """v = fn(x) and its Jacobian in x, row by row, by reverse mode (``ReverseMode``).

    ``fn`` maps each row of x (n, D) on its own (a network, a closed-form solution, a
    residual) to v of shape (n,) or (n, k). Row i of v depends on row i of x only, so
    ∂(Σᵢ v_ic)/∂x_i = ∇v_c(x_i): one backward pass per output c gives every row's gradient.
    Returns v as ``fn`` gives it, with its graph to fn's parameters (not to x), and
    ∂v/∂x of shape v.shape + (D,): (n, D) or (n, k, D), with a graph of its own only with
    ``create_graph``. Under ``torch.no_grad()`` both come detached.
    """
    shapes: list[torch.Size] = []

    def columns(y: Tensor) -> Tensor:
        v = fn(y)
        shapes.append(v.shape)
        return v.reshape(len(y), -1)

    jet = ReverseMode(create_graph).jet(columns, x, None, None, 1)
    shape = shapes[0]
    jac = jet.reduced_jac.transpose(1, 2)  # (n, k, D)
    return jet.value.reshape(shape), jac.reshape(*shape, x.shape[1])
