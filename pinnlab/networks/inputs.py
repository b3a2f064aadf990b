"""What a network does to its input first: the box-to-[−1, 1] map folded into a first layer,
random Fourier features, exact periodic embeddings, and a low-rank projection."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ..derivatives.jets import Jet, affine
from .base import Network


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


def _first(layer: nn.Module, input_map: InputMap | None) -> tuple[Tensor, Tensor | None]:
    if input_map is None:
        return layer.weight, layer.bias
    return input_map.fold(layer.weight, layer.bias)


def linear(h: Tensor | Jet, layer: nn.Module, input_map: InputMap | None = None):
    """``layer``'s affine map W h + b (``weight``, ``bias``; ``input_map`` folded in) of a
    batch or of a jet, recorded on a ``pinnlab.derivatives.jets.LinearTape`` when one is."""
    w, b = _first(layer, input_map)
    if isinstance(h, Jet):
        return h.linear(w, b, layer=layer, input_map=input_map)
    return affine(h, w, b, layer=layer, input_map=input_map)


class FourierFeatures(Network):
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


class PeriodicEmbedding(Network):
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

    def periodic_columns(self) -> frozenset[int]:
        return frozenset({self.column})

    def forward(self, x: Tensor) -> Tensor:
        z = F.linear(x, *self._phase(x))
        return torch.cat([F.linear(x, self.keep, self.shift), torch.cos(z), torch.sin(z)], dim=1)

    def forward_jet(self, jet: Jet) -> Jet:
        z = jet.linear(*self._phase(jet.value))
        c, s = torch.cos(z.value), torch.sin(z.value)
        kept = jet.linear(self.keep, self.shift)
        return kept.cat(z.elementwise(c, -s, -c)).cat(z.elementwise(s, c, -s))


class Projection(Network):
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
        return linear(x, self, self.input_map)

    def forward_jet(self, jet: Jet) -> Jet:
        return linear(jet, self, self.input_map)

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
