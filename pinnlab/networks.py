"""Networks: plain ``torch.nn.Module``s mapping points (n, d) to outputs (n, k).

Each module here also implements ``forward_jet`` so that the forward-mode derivative engine
can push value, first and second directional derivatives through it layer by layer.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from .derivatives.jets import Jet, MixedBasis, propagate
from .domains import Domain
from .errors import ConfigError, unknown_name


def _tanh(z):
    t = torch.tanh(z)
    d1 = 1 - t * t
    return t, d1, -2 * t * d1


def _sin(z):
    s = torch.sin(z)
    return s, torch.cos(z), -s


def _softplus(z):
    s = torch.sigmoid(z)
    return nn.functional.softplus(z), s, s * (1 - s)


def _gelu(z):
    # gelu(z) = z Φ(z): gelu' = Φ + z φ, gelu'' = φ (2 − z²)
    phi = torch.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)
    cdf = 0.5 * (1 + torch.erf(z / math.sqrt(2)))
    return z * cdf, cdf + z * phi, phi * (2 - z * z)


def _silu(z):
    s = torch.sigmoid(z)
    d1 = s * (1 + z * (1 - s))
    return z * s, d1, s * (1 - s) * (2 + z * (1 - 2 * s))


def _relu2(z):
    r = torch.relu(z)
    return r * r, 2 * r, 2 * (z > 0).to(z.dtype)


#: activation name -> z ↦ (σ(z), σ'(z), σ''(z)).
ACTIVATIONS: dict[str, Callable[[Tensor], tuple[Tensor, Tensor, Tensor]]] = {
    "tanh": _tanh,
    "sin": _sin,
    "softplus": _softplus,
    "gelu": _gelu,
    "silu": _silu,
    "relu2": _relu2,
}


#: weight initialisation name -> in-place initialiser (biases start at zero). Glorot & Bengio
#: (2010) keep activation variance for tanh-like units; He et al. (2015) for ReLU-like ones.
INITS: dict[str, Callable[..., Tensor]] = {
    "glorot-normal": nn.init.xavier_normal_,
    "glorot-uniform": nn.init.xavier_uniform_,
    "he-normal": nn.init.kaiming_normal_,
}


def _initialise(layers, init: str, generator) -> None:
    if init not in INITS:
        raise unknown_name("initialisation (net.init)", init, INITS)
    for layer in layers:
        INITS[init](layer.weight, generator=generator)
        nn.init.zeros_(layer.bias)


def _set_linear(layer: nn.Linear, weight: Tensor, bias: Tensor | None) -> None:
    with torch.no_grad():
        layer.weight.copy_(weight)
        if bias is not None:
            layer.bias.copy_(bias)


def has_readout(net: nn.Module) -> bool:
    """Whether ``net`` ends in a linear map of features it exposes: u = W φ(x) + b with
    φ = ``net.readout(x)`` and (W, b) replaced by ``net.set_readout(W, b)`` — what a
    least-squares fit of the output layer (:func:`pinnlab.training.fit_readout`) needs.
    Wrappers (a :class:`Chain`, :class:`OutputAffine`) have one when what they wrap has."""
    if isinstance(net, Chain):
        return has_readout(net[-1])
    if isinstance(net, OutputAffine):
        return has_readout(net.net)
    return hasattr(net, "readout") and hasattr(net, "set_readout")


class _LinearOutput(nn.Module):
    """A network u = out(readout(x)) whose output layer ``out`` is an ``nn.Linear``."""

    out: nn.Linear

    def readout(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    def forward(self, x: Tensor) -> Tensor:
        return self.out(self.readout(x))

    def set_readout(self, weight: Tensor, bias: Tensor) -> None:
        """Replace the output layer: u = weight · readout(x) + bias."""
        _set_linear(self.out, weight, bias)


class Activation(nn.Module):
    """An elementwise activation with its first two derivatives in closed form."""

    def __init__(self, name: str):
        super().__init__()
        if name not in ACTIVATIONS:
            raise unknown_name("activation", name, ACTIVATIONS)
        self.name = name
        self._fn = ACTIVATIONS[name]

    def forward(self, z: Tensor) -> Tensor:
        if self.name == "tanh":
            return torch.tanh(z)
        return self._fn(z)[0]

    def forward_jet(self, jet: Jet) -> Jet:
        f0, f1, f2 = self._fn(jet.value)
        return jet.elementwise(f0, f1, f2 if jet.order >= 2 else None)

    def extra_repr(self) -> str:
        return self.name


class InputMap(nn.Module):
    """The affine map x ↦ (x − c) ⊙ s that takes a box to [−1, 1]^D, folded into a first layer.

    Inputs centred and scaled to [−1, 1] (as in Raissi et al.'s PINN code) matter in high
    dimension: on [0, 1]^d the mean ½·(1, …, 1) of the inputs adds a component along (1, …, 1)
    to every first-layer gradient, which Adam's per-coordinate steps amplify by √d (on a ridge
    function at d = 1,000, regression error 0.52 after 1,200 Adam steps uncentred, 0.08 after
    1,000 centred). Folding keeps the first layer affine in x, so the first-layer reduction of
    the derivative engine still applies: W' = W diag(s), b' = b − W' c.
    """

    def __init__(self, low: Tensor, high: Tensor):
        super().__init__()
        self.register_buffer("shift", ((low + high) / 2).float())
        self.register_buffer("scale", (2 / (high - low)).float())

    @classmethod
    def of(cls, box: tuple[Tensor, Tensor] | None) -> InputMap | None:
        return None if box is None else cls(*box)

    def forward(self, x: Tensor) -> Tensor:
        """(x − c) ⊙ s."""
        return (x - self.shift) * self.scale

    def fold(self, weight: Tensor, bias: Tensor | None) -> tuple[Tensor, Tensor]:
        """(W', b') with W' x + b' = W((x − c) ⊙ s) + b."""
        w = weight * self.scale
        b = -(w @ self.shift)
        return w, b if bias is None else b + bias


def _mapped(input_map: InputMap | None, x: Tensor) -> tuple[Tensor, Tensor | float]:
    """The mapped coordinates t and dt/dx (per coordinate) of a coordinatewise part."""
    if input_map is None:
        return x, 1.0
    return input_map(x), input_map.scale


def _first(layer: nn.Linear, input_map: InputMap | None) -> tuple[Tensor, Tensor | None]:
    if input_map is None:
        return layer.weight, layer.bias
    return input_map.fold(layer.weight, layer.bias)


class MLP(_LinearOutput):
    """Fully connected network: ``depth`` hidden layers of ``width`` units, linear output."""

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
        self.act = Activation(activation)
        self.out = nn.Linear(dims[-1], out_dim)
        _initialise([*self.hidden, self.out], init, generator)

    def _layers(self):
        """(W, b) of each hidden layer, the input map folded into the first."""
        yield _first(self.hidden[0], self.input_map)
        for layer in self.hidden[1:]:
            yield layer.weight, layer.bias

    def readout(self, x: Tensor) -> Tensor:
        """The last hidden layer, which the linear output layer maps to u: (n, width)."""
        for w, b in self._layers():
            x = self.act(F.linear(x, w, b))
        return x

    def forward_jet(self, jet: Jet) -> Jet:
        for w, b in self._layers():
            jet = self.act.forward_jet(jet.linear(w, b))
        return jet.linear(self.out.weight, self.out.bias)


class ResidualMLP(_LinearOutput):
    """An input layer, then ``depth − 1`` residual blocks h ← h + σ(W h + b), linear output."""

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
        self.act = Activation(activation)
        self.out = nn.Linear(width, out_dim)
        _initialise([self.inp, *self.blocks, self.out], init, generator)

    def readout(self, x: Tensor) -> Tensor:
        """The last block's output, which the linear output layer maps to u: (n, width)."""
        h = self.act(F.linear(x, *_first(self.inp, self.input_map)))
        for block in self.blocks:
            h = h + self.act(block(h))
        return h

    def forward_jet(self, jet: Jet) -> Jet:
        h = self.act.forward_jet(jet.linear(*_first(self.inp, self.input_map)))
        for block in self.blocks:
            h = h + self.act.forward_jet(h.linear(block.weight, block.bias))
        return h.linear(self.out.weight, self.out.bias)


class FourierFeatures(nn.Module):
    """Random Fourier features γ(x) = [cos 2πBx, sin 2πBx], B ~ N(0, σ²) of shape (m, d).

    Tancik et al., NeurIPS 2020; Wang, Wang & Perdikaris, CMAME 384 (2021). The fixed buffer
    ``B`` stores 2πB.
    """

    def __init__(
        self,
        in_dim: int,
        features: int,
        scale: float,
        *,
        generator: torch.Generator,
        input_map: InputMap | None = None,
    ):
        super().__init__()
        b = torch.randn(features, in_dim, generator=generator, device=generator.device)
        self.register_buffer("B", (2 * math.pi * scale) * b)
        self.input_map = input_map
        self.out_dim = 2 * features

    def _map(self) -> tuple[Tensor, Tensor | None]:
        return (self.B, None) if self.input_map is None else self.input_map.fold(self.B, None)

    def forward(self, x: Tensor) -> Tensor:
        z = F.linear(x, *self._map())
        return torch.cat([torch.cos(z), torch.sin(z)], dim=1)

    def forward_jet(self, jet: Jet) -> Jet:
        z = jet.linear(*self._map())
        c, s = torch.cos(z.value), torch.sin(z.value)
        return z.elementwise(c, -s, -c).cat(z.elementwise(s, c, -s))


class PeriodicEmbedding(nn.Module):
    """Exact periodicity in one input column: x ↦ (x without column a, cos kω(x_a − low),
    sin kω(x_a − low), k = 1 … K), ω = 2π/(high − low).

    Any network of the embedded input is periodic in x_a with all its derivatives (the Fourier
    embedding of Dong & Ni, J. Comput. Phys. 435, 2021; DeepXDE's periodic feature transform).
    The other columns go through ``input_map`` (if given), unchanged otherwise. Both parts are
    affine maps of x followed by elementwise functions, so jets propagate exactly
    (``forward_jet``); the first-layer reduction does not apply (two affine maps of x meet).
    """

    def __init__(
        self,
        in_dim: int,
        column: int,
        low: float,
        high: float,
        modes: int,
        *,
        input_map: InputMap | None = None,
    ):
        super().__init__()
        if not 0 <= column < in_dim or modes < 1:
            raise ValueError(f"PeriodicEmbedding: column {column} of {in_dim}, modes {modes}.")
        keep = torch.eye(in_dim)[[i for i in range(in_dim) if i != column]]
        shift = torch.zeros(in_dim - 1)
        if input_map is not None:
            keep, shift = input_map.fold(keep, None)
        self.register_buffer("keep", keep)
        self.register_buffer("shift", shift)
        self.column, self.low, self.omega, self.modes = (
            column,
            low,
            2 * math.pi / (high - low),
            modes,
        )
        self.out_dim = in_dim - 1 + 2 * modes

    def _phase(self, like: Tensor) -> tuple[Tensor, Tensor]:
        """(W, b) with W x + b = kω(x_a − low), k = 1 … K, made in the input's dtype (buffers
        rounded to float32 would break periodicity at the 1e-7 level in float64)."""
        k = self.omega * torch.arange(1, self.modes + 1, dtype=like.dtype, device=like.device)
        weight = torch.zeros(self.modes, self.keep.shape[1], dtype=like.dtype, device=like.device)
        weight[:, self.column] = k
        return weight, -k * self.low

    def forward(self, x: Tensor) -> Tensor:
        z = F.linear(x, *self._phase(x))
        return torch.cat([F.linear(x, self.keep, self.shift), torch.cos(z), torch.sin(z)], dim=1)

    def forward_jet(self, jet: Jet) -> Jet:
        z = jet.linear(*self._phase(jet.value))
        c, s = torch.cos(z.value), torch.sin(z.value)
        kept = jet.linear(self.keep, self.shift)
        return kept.cat(z.elementwise(c, -s, -c)).cat(z.elementwise(s, c, -s))


class Projection(nn.Module):
    """x ↦ P x: a linear map to r ≪ D coordinates (no bias), the first layer of a bottleneck
    network u = N(P x).

    For solutions that vary along a few unknown directions of a high-dimensional space (ridge
    functions, u = Σₖ aₖ sin(vₖᵀx + φₖ)), the directions are then r rows to find, each
    receiving the gradient of every unit of N, instead of w rows of a full first layer, whose
    components outside the directions' span each collect Adam's per-coordinate noise. It is a first affine
    map, so the first-layer reduction applies with min(d, r) directions.

    Rows start small, N(0, 10⁻²/D) vectors (projections of the mapped inputs of size 0.1): the
    initial rows point in random, irrelevant directions, and N cannot tell that part of Px
    from the part it needs. On poisson-ridge at d = 10,000, rows started at N(0, 1/D) left
    rel_l2 on a plateau at 2e-2; started 10× smaller, it fell to 9.8e-3 in 8,000 steps.
    """

    def __init__(
        self, in_dim: int, rank: int, *, generator: torch.Generator, input_map: InputMap | None
    ):
        super().__init__()
        w = torch.randn(rank, in_dim, generator=generator, device=generator.device)
        self.weight = nn.Parameter(w * (0.1 / math.sqrt(in_dim)))
        self.register_parameter("bias", None)
        self.input_map = input_map

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, *_first(self, self.input_map))

    def forward_jet(self, jet: Jet) -> Jet:
        return jet.linear(*_first(self, self.input_map))

    def fix_to(self, gradients: Tensor, rtol: float = 1e-3) -> float:
        """Fix P to the principal directions of ``gradients`` (m, D), rows ∇ₓq(xⱼ) of some
        data q (the active subspace of q: Constantine, *Active Subspaces*, SIAM 2015).

        The rows become the top right singular vectors of the gradients written in the mapped
        coordinates (unit rows there); rows beyond the numerical rank (σ ≤ rtol·σ₁) are zero.
        P is no longer trained. Returns the fraction Σ_{k≤r} σₖ² / Σ σₖ² of the gradients'
        energy the rows capture.
        """
        g = gradients.detach().double()
        if self.input_map is not None:  # ∂/∂t = ∂/∂x ⊘ s for t = (x − c) ⊙ s
            g = g / self.input_map.scale.double().to(g.device)
        _, sigma, vh = torch.linalg.svd(g, full_matrices=False)
        if not sigma.numel() or sigma[0] <= 0 or not torch.isfinite(sigma).all():
            raise ValueError("the gradients vanish or are not finite: no directions to fix P to")
        rank = self.weight.shape[0]
        keep = sigma[:rank] > rtol * sigma[0]
        rows = torch.zeros_like(self.weight, dtype=torch.float64, device=g.device)
        rows[: len(keep)][keep] = vh[:rank][keep]
        with torch.no_grad():
            self.weight.copy_(rows)
        self.weight.requires_grad_(False)
        energy = sigma.square()
        return float(energy[:rank].sum() / energy.sum())


class Chain(nn.Sequential):
    """Modules applied in order; jets are propagated through each."""

    def forward_jet(self, jet: Jet) -> Jet:
        for module in self:
            jet = propagate(module, jet)
        return jet

    def readout(self, x: Tensor) -> Tensor:
        """The last module's readout (see :func:`has_readout`)."""
        for module in self[:-1]:
            x = module(x)
        return self[-1].readout(x)

    def set_readout(self, weight: Tensor, bias: Tensor) -> None:
        self[-1].set_readout(weight, bias)


class DirichletTransform(nn.Module):
    """u(x) = g(x) + φ(x) N(x): imposes u = g exactly where φ = 0 (the domain's boundary).

    φ is the domain's ``distance`` function (smooth, vanishing on the boundary), g the boundary
    data extended inside (``lift``: a function, or a constant such as 0) (Lagaris et al., IEEE
    TNN 9 (1998); Sukumar & Srivastava, CMAME 389 (2022)). Jets go through N reduced where it
    admits the first-layer reduction, φ and g along the input axes, and meet at the output by
    the product rule Δ(φN) = NΔφ + 2∇φ·∇N + φΔN.

    ``shift`` (a buffer, 0 unless a solver sets it) is a constant added to N: u = g + φ(c + N).
    In high dimension u/φ can be far from the unit scale N starts at: ≈ 10² on poisson-ball at
    d = 10,000, which Adam would reach one learning rate per step.
    """

    def __init__(self, net: nn.Module, domain: Domain, lift: Callable[[Tensor], Tensor] | float):
        super().__init__()
        self.net = net
        self.domain = domain
        self.lift = lift
        self.register_buffer("shift", torch.zeros(1))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # Solutions written before the shift existed had none: it was 0.
        state_dict.setdefault(prefix + "shift", torch.zeros_like(self.shift))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def _g(self, x: Tensor) -> Tensor:
        g = self.lift(x)
        return g.unsqueeze(1) if g.dim() == 1 else g

    def forward(self, x: Tensor) -> Tensor:
        u = self.domain.distance(x).unsqueeze(1) * (self.net(x) + self.shift)
        return u + (self._g(x) if callable(self.lift) else self.lift)

    def forward_jet(self, jet: Jet) -> Jet:
        u = self.domain.distance_jet(jet) * (propagate(self.net, jet) + self.shift)
        return u + (propagate(self._g, jet) if callable(self.lift) else self.lift)


class OutputAffine(nn.Module):
    """u(x) = shift + scale ⊙ N(x), with fixed per-output shift and scale (buffers).

    Lets N work at unit scale when the solution does not: Σᵢ sin(π xᵢ/2) on [0, 1]^100 has
    mean ≈ 64 and standard deviation ≈ 3, which Adam would otherwise spend thousands of steps
    reaching with an output bias that moves about one learning rate per step.
    """

    def __init__(self, net: nn.Module, shift: Tensor, scale: Tensor):
        super().__init__()
        self.net = net
        self.register_buffer("shift", shift)
        self.register_buffer("scale", scale)

    def forward(self, x: Tensor) -> Tensor:
        return self.shift + self.scale * self.net(x)

    def forward_jet(self, jet: Jet) -> Jet:
        return propagate(self.net, jet) * self.scale + self.shift

    def readout(self, x: Tensor) -> Tensor:
        """The wrapped network's readout: u = shift + scale (W φ + b) is linear in it too."""
        return self.net.readout(x)

    def set_readout(self, weight: Tensor, bias: Tensor) -> None:
        """u = weight · readout(x) + bias: the wrapped network's (W, b) with shift and scale
        divided out."""
        scale = self.scale.reshape(-1, 1)
        self.net.set_readout(weight / scale, (bias - self.shift) / self.scale)


class Additive(nn.Module):
    """u(x) = N(x) + Σᵢ hᵢ(xᵢ): a network plus one small network per input coordinate.

    hᵢ(t) = Σⱼ cᵢⱼ σ(aᵢⱼ t + bᵢⱼ) has one hidden layer of K units (a neural additive model,
    Agarwal et al., NeurIPS 2021). A network N(x) = g(Wx + b) of width w has a Hessian of rank
    ≤ w, so it cannot represent Σᵢ sin(π xᵢ/2) (Hessian of rank d) once d ≫ w — the best it can
    do on [0, 1]^1000 is about the best affine function (centred error 0.20). The additive part
    carries the separable part of u at cost n·d·K, and its Hessian is diagonal: the jet along
    directions V is J_k = Σᵢ hᵢ'(xᵢ) V_kᵢ, S = Σᵢ hᵢ''(xᵢ) Σ_k w_k V_kᵢ² — no reduction
    needed. N keeps its first-layer reduction; the two jets meet at the output.
    """

    def __init__(
        self,
        net: nn.Module,
        in_dim: int,
        out_dim: int,
        units: int,
        activation: str = "tanh",
        *,
        generator: torch.Generator,
        input_map: InputMap | None = None,
    ):
        super().__init__()
        self.net = net
        self.input_map = input_map
        self.act = Activation(activation)
        new = dict(generator=generator, device=generator.device)
        # Unit slopes and offsets spread over [−1, 1] (the mapped inputs' range); outputs of
        # size 1/√(d K) so that the sum over d coordinates starts at the scale of one unit.
        # (Training c at unit scale behind a fixed factor 1/√(d K) instead slows the additive
        # part by that factor under Adam: on poisson-sine at d = 1,000 it learned nothing in
        # 1,000 steps.)
        self.a = nn.Parameter(torch.randn(in_dim, units, **new))
        self.b = nn.Parameter(2 * torch.rand(in_dim, units, **new) - 1)
        self.c = nn.Parameter(
            torch.randn(in_dim, units, out_dim, **new) / math.sqrt(in_dim * units)
        )

    def separable(self, x: Tensor) -> Tensor:
        """Σᵢ hᵢ(xᵢ): (n, out)."""
        t, _ = _mapped(self.input_map, x)
        z = t.unsqueeze(2) * self.a + self.b
        return torch.einsum("ndk,dko->no", self.act(z), self.c)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x) + self.separable(x)

    def _separable_jet(self, jet: Jet) -> Jet:
        t, dt = _mapped(self.input_map, jet.value)
        f0, f1, f2 = self.act._fn(t.unsqueeze(2) * self.a + self.b)
        c = self.c
        value = torch.einsum("ndk,dko->no", f0, c)
        h1 = torch.einsum("ndk,dko->ndo", f1 * self.a, c) * _column(dt)  # hᵢ'(xᵢ)

        def second(q: Tensor | None) -> Tensor:
            scale = _column(dt) ** 2 if q is None else q.unsqueeze(2) * _column(dt) ** 2
            return torch.einsum("ndk,dko->no", f2 * scale * self.a.square(), c)

        return _coordinatewise_jet(jet, value, h1, second)

    def forward_jet(self, jet: Jet) -> Jet:
        if jet.basis is not None:
            raise MixedBasis  # the input arrived reduced: the coordinates are lost
        return propagate(self.net, jet) + self._separable_jet(jet)


def chebyshev(t: Tensor, degree: int, order: int = 0) -> tuple[Tensor, ...]:
    """Σᵢ T_k(tᵢ) over the last axis of t (…, d) for k = 1 … K (K = ``degree``): (…, K);
    with ``order`` ≥ 1 also T'_k(tᵢ), and with 2 also T''_k(tᵢ), as (…, K, d) tensors.

    By the three-term recurrences T_{k+1} = 2t T_k − T_{k−1}, T'_{k+1} = 2T_k + 2t T'_k −
    T'_{k−1}, T''_{k+1} = 4T'_k + 2t T''_k − T''_{k−1}; each k is written to a contiguous
    slice, so nothing is stacked or copied afterwards.
    """
    two_t = 2 * t
    sums = t.new_empty((*t.shape[:-1], degree))
    derivs = [t.new_empty((*t.shape[:-1], degree, t.shape[-1])) for _ in range(order)]
    one, zero = torch.ones_like(t), torch.zeros_like(t)  # never written in place
    prev, cur = [one, zero, zero][: order + 1], [t, one, zero][: order + 1]
    for k in range(degree):
        sums[..., k] = cur[0].sum(dim=-1)
        for j in range(order):
            derivs[j][..., k, :] = cur[j + 1]
        if k == degree - 1:
            break
        new = [two_t * cur[0] - prev[0]]
        if order >= 1:
            new.append((two_t * cur[1]).add_(cur[0], alpha=2).sub_(prev[1]))
        if order >= 2:
            new.append((two_t * cur[2]).add_(cur[1], alpha=4).sub_(prev[2]))
        prev, cur = cur, new
    return (sums, *derivs)


class DeepSets(nn.Module):
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
        return self.rho(s) + self.skip(s)

    def readout(self, x: Tensor) -> Tensor:
        """ρ's last hidden layer and s, which the output maps linearly to u: (n, 2K)."""
        s = self.pooled(x)
        return torch.cat([self.rho.readout(s), s], dim=1)

    def set_readout(self, weight: Tensor, bias: Tensor) -> None:
        """Replace ρ's output layer and the skip: u = weight · readout(x) + bias."""
        width = self.rho.out.in_features
        self.rho.set_readout(weight[:, :width], bias)
        _set_linear(self.skip, weight[:, width:], None)

    def forward_jet(self, jet: Jet) -> Jet:
        if jet.basis is not None:
            raise MixedBasis  # the input arrived reduced: the coordinates are lost
        t, dt = _mapped(self.input_map, jet.value)
        sums, f1, *f2 = chebyshev(t, self.degree, order=jet.order)  # (n, K), (n, K, d) …
        value = self._features(sums, t.shape[1])
        d1 = f1.transpose(1, 2) * (_column(dt) * self.scale)  # ∂s/∂xᵢ: (n, d, K)

        def second(q: Tensor | None) -> Tensor:
            if isinstance(dt, Tensor):  # per-coordinate scales join the weights q
                q = dt.square().unsqueeze(0) if q is None else q * dt.square()
                return self.scale * _weighted_sum(q, f2[0].transpose(1, 2))
            return (self.scale * dt**2) * _weighted_sum(q, f2[0].transpose(1, 2))

        pooled = jet.reduce_after(_coordinatewise_jet(jet, value, d1, second))
        return propagate(self.rho, pooled) + pooled.linear(self.skip.weight)


def _coordinatewise_jet(
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


def _weighted_sum(q: Tensor | None, f: Tensor) -> Tensor:
    """Σᵢ qᵢ f[:, i] over the coordinate axis of f (n, d, k); q (1 or n, d) or None (ones)."""
    if q is None:
        return f.sum(dim=1)
    if q.shape[0] == 1:
        return torch.einsum("d,ndk->nk", q[0], f)
    return torch.einsum("nd,ndk->nk", q, f)


def _column(scale: Tensor | float) -> Tensor | float:
    """A per-coordinate factor (d,) shaped to multiply (n, d, out) tensors."""
    return scale.unsqueeze(1) if isinstance(scale, Tensor) else scale


NETWORKS = {"mlp": MLP, "resmlp": ResidualMLP, "deepsets": DeepSets}


def build_network(
    in_dim: int,
    out_dim: int,
    *,
    kind: str = "mlp",
    width: int = 64,
    depth: int = 4,
    activation: str = "tanh",
    fourier_features: int = 0,
    fourier_scale: float = 1.0,
    init: str = "glorot-normal",
    generator: torch.Generator,
    input_box: tuple[Tensor, Tensor] | None = None,
    periodic: tuple[int, float, float, int] | None = None,
    additive: int = 0,
    bottleneck: int = 0,
) -> nn.Module:
    """The network a run config describes: optional Fourier features, then an MLP body.

    Weights are initialised (``init``: one of INITS; zero biases) from ``generator`` only. With
    ``input_box`` = (low, high), inputs are first mapped from that box to [−1, 1]^D
    (:class:`InputMap`, folded into the first layer). With ``periodic`` = (column, low, high,
    K), the network is exactly periodic in that input column (:class:`PeriodicEmbedding`).
    With ``additive`` = K ≥ 1, one K-unit network per input coordinate is added
    (:class:`Additive`). With ``bottleneck`` = r ≥ 1, the input is first projected to r
    coordinates (:class:`Projection`). Both act on the periodic embedding's output when there
    is one, so the network stays exactly periodic.
    """
    if kind not in NETWORKS:
        raise unknown_name("network", kind, NETWORKS)
    extras = dict(
        fourier_features=fourier_features,
        periodic=periodic,
        additive=additive,
        bottleneck=bottleneck,
    )
    if kind == "deepsets" and any(extras.values()):
        named = ", ".join(f"net.{k}" for k, v in extras.items() if v)
        raise ConfigError(
            f"net.kind=deepsets applies one function to every input coordinate itself; it does "
            f"not combine with {named} (which mix or embed the coordinates first)."
        )
    input_map = InputMap.of(input_box)
    body = dict(
        kind=kind,
        width=width,
        depth=depth,
        activation=activation,
        fourier_features=fourier_features,
        fourier_scale=fourier_scale,
        init=init,
        generator=generator,
    )
    if periodic is not None:  # everything else acts on the embedded input
        column, low, high, modes = periodic
        embed = PeriodicEmbedding(in_dim, column, low, high, modes, input_map=input_map)
        rest = build_network(
            embed.out_dim, out_dim, additive=additive, bottleneck=bottleneck, **body
        )
        return Chain(embed, rest)
    if additive:
        net = build_network(in_dim, out_dim, input_box=input_box, bottleneck=bottleneck, **body)
        return Additive(
            net, in_dim, out_dim, additive, activation, generator=generator, input_map=input_map
        )
    if bottleneck:
        proj = Projection(in_dim, bottleneck, generator=generator, input_map=input_map)
        return Chain(proj, build_network(bottleneck, out_dim, **body))
    if fourier_features:
        ff = FourierFeatures(
            in_dim, fourier_features, fourier_scale, generator=generator, input_map=input_map
        )
        body = NETWORKS[kind](
            ff.out_dim, out_dim, width, depth, activation, generator=generator, init=init
        )
        return Chain(ff, body)
    return NETWORKS[kind](
        in_dim,
        out_dim,
        width,
        depth,
        activation,
        generator=generator,
        input_map=input_map,
        init=init,
    )
