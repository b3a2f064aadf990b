"""The bodies: MLP, residual MLP and the permutation-invariant DeepSets network, each ending
in a linear output layer whose features it exposes (``readout``)."""

from __future__ import annotations

import itertools
import math

import torch
from torch import Tensor, nn

from ..derivatives.jets import (
    Jet,
    MixedBasis,
    column,
    coordinatewise_jet,
    propagate,
    weighted_sum,
)
from .activations import activation as activation_module
from .base import Network
from .chebyshev import chebyshev
from .init import _initialise, _set_linear
from .inputs import InputMap, _mapped, linear


class _LinearOutput(Network):
    """A network u = out(readout(x)) whose output layer ``out`` is an ``nn.Linear``."""

    out: nn.Linear

    def readout(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    def forward(self, x: Tensor) -> Tensor:
        return linear(self.readout(x), self.out)

    def has_readout(self) -> bool:
        return True

    def set_readout(self, weight: Tensor, bias: Tensor) -> None:
        """Replace the output layer: u = weight · readout(x) + bias."""
        _set_linear(self.out, weight, bias)

    def zero_output_(self) -> _LinearOutput:
        """The output layer's weight and bias set to zero: u ≡ 0."""
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)
        return self


class MLP(_LinearOutput):
    """Fully connected network: ``depth`` hidden layers of ``width`` units, linear output."""

    name = "mlp"

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        width=64,
        depth=4,
        activation="tanh",
        *,
        generator=None,
        input_map: InputMap | None = None,
        init: str = "glorot-normal",
    ):
        super().__init__()
        self.input_map = input_map
        dims = [in_dim] + [width] * depth
        self.hidden = nn.ModuleList(nn.Linear(a, b) for a, b in itertools.pairwise(dims))
        self.act = activation_module(activation)
        self.out = nn.Linear(dims[-1], out_dim)
        _initialise([*self.hidden, self.out], init, generator)

    def _hidden(self, h):
        """The hidden layers of a batch or a jet, the input map folded into the first."""
        for k, layer in enumerate(self.hidden):
            z = linear(h, layer, self.input_map if k == 0 else None)
            h = self.act.forward_jet(z) if isinstance(z, Jet) else self.act(z)
        return h

    def readout(self, x: Tensor) -> Tensor:
        """The last hidden layer, which the linear output layer maps to u: (n, width)."""
        return self._hidden(x)

    def forward_jet(self, jet: Jet) -> Jet:
        return linear(self._hidden(jet), self.out)


class ResidualMLP(_LinearOutput):
    """An input layer, then ``depth − 1`` residual blocks h ← h + σ(W h + b), linear output."""

    name = "resmlp"

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        width=64,
        depth=4,
        activation="tanh",
        *,
        generator=None,
        input_map: InputMap | None = None,
        init: str = "glorot-normal",
    ):
        super().__init__()
        self.input_map = input_map
        self.inp = nn.Linear(in_dim, width)
        self.blocks = nn.ModuleList(nn.Linear(width, width) for _ in range(depth - 1))
        self.act = activation_module(activation)
        self.out = nn.Linear(width, out_dim)
        _initialise([self.inp, *self.blocks, self.out], init, generator)

    def readout(self, x: Tensor) -> Tensor:
        """The last block's output, which the linear output layer maps to u: (n, width)."""
        h = self.act(linear(x, self.inp, self.input_map))
        for block in self.blocks:
            h = h + self.act(linear(h, block))
        return h

    def forward_jet(self, jet: Jet) -> Jet:
        h = self.act.forward_jet(linear(jet, self.inp, self.input_map))
        for block in self.blocks:
            h = h + self.act.forward_jet(linear(h, block))
        return linear(h, self.out)


class DeepSets(Network):
    """A network invariant under permutations of the input coordinates (Zaheer et al.,
    "Deep Sets", NeurIPS 2017): u(x) = ρ(s) + cᵀs, with the K = ``width`` pooled features

        s_k = k^{−2} d^{−1/2} Σᵢ (T_k(tᵢ) − m_k),  k = 1 … K,

    T_k the Chebyshev polynomials, t the mapped input (tᵢ ∈ [−1, 1]), m_k = ½∫₋₁¹ T_k (so s has
    mean zero for uniform points, and with the d^{−1/2} a spread that does not grow with d),
    and ρ an MLP of ``depth`` hidden layers of ``width`` units. The s_k are power sums in the
    Chebyshev basis: every symmetric polynomial of degree ≤ K in the tᵢ is a polynomial in them
    (Newton's identities), so ρ(s) reaches every smooth symmetric function as K grows. The
    k^{−2} keeps the high degrees, whose derivatives reach k² and k⁴/3 at t = ±1, from
    dominating the initial network's derivatives (undamped, a PINN's loss on poisson-sine at
    d = 1,000 started near 10⁶ and went up). A symmetric solution is learned once for all
    coordinates: each sample informs ρ through all d of its coordinates. The linear skip cᵀs
    (zero at initialisation) is the additive part Σᵢ φ(xᵢ) of u, φ a polynomial of degree K;
    it joins ρ's last hidden layer in the features the output is linear in (``readout``).

    The features have no weights, so the n·d·K work of a step is done without autograd. Jet:
    s is separable, J_k = Σᵢ ∂s/∂xᵢ V_kᵢ and S = Σᵢ (∂²s/∂xᵢ² qᵢ + ∂s/∂xᵢ Sᵢ) with
    qᵢ = Σ_k w_k V_kᵢ²; the first-layer reduction then replaces the seed's directions by K per
    point (a QR factorisation of weight-free numbers), so ρ's weights meet K directions, not d.
    """

    name = "deepsets"
    wrappable = False  # it takes each coordinate itself: nothing may mix them first
    invariant = True

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        width=64,
        depth=2,
        activation="tanh",
        *,
        generator=None,
        input_map: InputMap | None = None,
        init: str = "glorot-normal",
    ):
        super().__init__()
        self.input_map = input_map
        self.degree = width
        self.rho = MLP(width, out_dim, width, depth, activation, generator=generator, init=init)
        self.skip = nn.Linear(width, out_dim, bias=False)
        nn.init.zeros_(self.skip.weight)
        k = torch.arange(1, width + 1)
        self.register_buffer("means", torch.where(k % 2 == 0, 1 / (1 - k * k), 0.0).float())
        self.register_buffer("scale", (1.0 / (k.square() * math.sqrt(in_dim))).float())

    def _features(self, sums: Tensor, d: int) -> Tensor:
        """s from the sums Σᵢ T_k(tᵢ): (n, K)."""
        return self.scale * (sums - d * self.means)

    def pooled(self, x: Tensor) -> Tensor:
        """s: (n, K)."""
        t, _ = _mapped(self.input_map, x)
        return self._features(chebyshev(t, self.degree)[0], t.shape[1])

    def forward(self, x: Tensor) -> Tensor:
        s = self.pooled(x)
        return self.rho(s) + linear(s, self.skip)

    def readout(self, x: Tensor) -> Tensor:
        """ρ's last hidden layer and s, which the output maps linearly to u: (n, 2K)."""
        s = self.pooled(x)
        return torch.cat([self.rho.readout(s), s], dim=1)

    def has_readout(self) -> bool:
        return True

    def set_readout(self, weight: Tensor, bias: Tensor) -> None:
        """Replace ρ's output layer and the skip: u = weight · readout(x) + bias."""
        width = self.rho.out.in_features
        self.rho.set_readout(weight[:, :width], bias)
        _set_linear(self.skip, weight[:, width:], None)

    def zero_output_(self) -> DeepSets:
        """ρ's output layer and the skip set to zero: u ≡ 0."""
        self.rho.zero_output_()
        nn.init.zeros_(self.skip.weight)
        return self

    def forward_jet(self, jet: Jet) -> Jet:
        if jet.basis is not None:
            raise MixedBasis  # the input arrived reduced: the coordinates are lost
        t, dt = _mapped(self.input_map, jet.value)
        sums, f1, *f2 = chebyshev(t, self.degree, order=jet.order)  # (n, K), (n, K, d) …
        value = self._features(sums, t.shape[1])
        d1 = f1.transpose(1, 2) * (column(dt) * self.scale)  # ∂s/∂xᵢ: (n, d, K)

        def second(q: Tensor | None) -> Tensor:
            if isinstance(dt, Tensor):  # per-coordinate scales join the weights q
                q = dt.square().unsqueeze(0) if q is None else q * dt.square()
                return self.scale * weighted_sum(q, f2[0].transpose(1, 2))
            return (self.scale * dt**2) * weighted_sum(q, f2[0].transpose(1, 2))

        pooled = jet.reduce_after(coordinatewise_jet(jet, value, d1, second))
        return propagate(self.rho, pooled) + linear(pooled, self.skip)
