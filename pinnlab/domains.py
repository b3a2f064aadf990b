"""Geometry and sampling: boxes, balls and time intervals × space.

Points are batch-first tensors of shape (n, dim). Every sampler takes an explicit
``torch.Generator``; points are drawn on the generator's device in the requested dtype.
Quasi-random points come from a scrambled Sobol sequence (Owen scrambling, seeded from the
generator); torch draws Sobol points on the CPU, so they are moved to the device once per draw.

Each sampler is a ``CubeMap`` applied to points of a unit cube: uniform points of the cube
become points uniform in measure. One draw reads all its coordinates from one cube — for
Sobol, one engine — since two scrambled Sobol sequences are not independent of each other:
their leading digits are the same function of the point's index, so (t, x) drawn from two
engines lie on a curve (``SpaceTime`` composes the maps of its space instead).
"""

from __future__ import annotations

import functools
import math
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

from .derivatives.jets import Jet, propagate
from .errors import ParameterError, did_you_mean, unknown_name

SAMPLINGS = ("uniform", "sobol")


def _unit_cube(
    n: int, dim: int, generator: torch.Generator, dtype: torch.dtype, sampling: str
) -> Tensor:
    """n points in [0, 1)^dim, pseudo-random or scrambled Sobol."""
    if sampling == "uniform":
        return torch.rand(n, dim, generator=generator, device=generator.device, dtype=dtype)
    if sampling == "sobol":
        if dim > torch.quasirandom.SobolEngine.MAXDIM:
            raise ParameterError(
                f"Sobol sampling supports at most {torch.quasirandom.SobolEngine.MAXDIM} "
                f"dimensions, got {dim}; use sampling='uniform'."
            )
        seed = int(torch.randint(2**62, (1,), generator=generator, device=generator.device))
        engine = torch.quasirandom.SobolEngine(dim, scramble=True, seed=seed)
        return engine.draw(n, dtype=torch.float64).to(device=generator.device, dtype=dtype)
    raise unknown_name("sampling", sampling, SAMPLINGS)


@dataclass(frozen=True)
class CubeMap:
    """A map of the unit cube [0, 1)^dim onto a domain's interior or boundary that carries
    uniform points to points uniform in measure: ``apply(u, generator)`` for u of shape
    (n, dim). It may draw further pseudo-random numbers from the generator (a Box picks the
    face of a boundary point with ``torch.randint``), independent of u whatever its sampling.
    """

    dim: int
    apply: Callable[[Tensor, torch.Generator], Tensor]

    def sample(
        self, n: int, generator: torch.Generator, dtype: torch.dtype, sampling: str
    ) -> Tensor:
        """n points: the map applied to n points of the cube (``_unit_cube``)."""
        return self.apply(_unit_cube(n, self.dim, generator, dtype, sampling), generator)


def _joint(
    n: int, maps: list[CubeMap], generator: torch.Generator, dtype: torch.dtype, sampling: str
) -> list[Tensor]:
    """n points of each map, the maps reading consecutive coordinates of one cube: for Sobol
    one engine of dimension Σ dim, so that the parts are jointly well spread (two engines are
    not independent); pseudo-random points map by map (the same numbers as separate draws)."""
    if sampling != "sobol":
        return [m.sample(n, generator, dtype, sampling) for m in maps]
    u = _unit_cube(n, sum(m.dim for m in maps), generator, dtype, sampling)
    parts = u.split([m.dim for m in maps], dim=1)
    return [m.apply(part, generator) for m, part in zip(maps, parts, strict=True)]


def _identity(u: Tensor, generator: torch.Generator) -> Tensor:
    return u


def _gaussian_directions(u: Tensor) -> Tensor:
    """Map points of the unit cube to uniform directions on the sphere (inverse normal CDF)."""
    eps = torch.finfo(u.dtype).eps
    g = math.sqrt(2.0) * torch.erfinv(2.0 * u.clamp(eps, 1 - eps) - 1.0)
    return g / g.norm(dim=1, keepdim=True).clamp_min(eps)


class Domain(ABC):
    """A region of R^dim with interior and boundary samplers."""

    dim: int

    @abstractmethod
    def sample_interior(
        self, n: int, *, generator: torch.Generator, dtype=torch.float32, sampling="uniform"
    ) -> Tensor:
        """n points in the interior, shape (n, dim)."""

    @abstractmethod
    def sample_boundary(
        self, n: int, *, generator: torch.Generator, dtype=torch.float32, sampling="uniform"
    ) -> Tensor:
        """n points on the boundary, uniform with respect to surface measure, shape (n, dim)."""

    @abstractmethod
    def distance(self, x: Tensor) -> Tensor:
        """A smooth function (n, dim) -> (n,), positive inside and zero on the boundary.

        Used by hard-constraint output transforms u = g + distance · N.
        """

    def interior_map(self) -> CubeMap | None:
        """The map of a unit cube onto the interior that ``sample_interior`` applies, or None
        for a domain that samples otherwise (a ``SpaceTime`` over it then draws its times
        from a cube of their own and, for Sobol, pairs them with the space points in a random
        order: independent of them, where a second engine would correlate the two)."""
        return None

    def boundary_map(self) -> CubeMap | None:
        """The map of a unit cube onto the boundary that ``sample_boundary`` applies, or None
        (see ``interior_map``)."""
        return None

    def contains(self, x: Tensor) -> Tensor:
        """Whether each point lies in the closed domain, a bool (n,) (what CSG combines)."""
        raise ParameterError(f"{type(self).__name__} cannot take part in CSG (no contains()).")

    def on_boundary(self, x: Tensor) -> Tensor:
        """Whether each point lies on the boundary (to a relative tolerance ``ON_TOLERANCE``)."""
        raise ParameterError(f"{type(self).__name__} cannot take part in CSG (no on_boundary()).")

    def normals(self, x: Tensor) -> Tensor | None:
        """The outward unit normals at boundary points x, (n, dim); None where the boundary
        has none (a slit)."""
        return None

    def __or__(self, other: Domain) -> CSG:
        """The union (constructive solid geometry)."""
        return CSG("union", self, other) if isinstance(other, Domain) else NotImplemented

    def __and__(self, other: Domain) -> CSG:
        """The intersection."""
        return CSG("intersection", self, other) if isinstance(other, Domain) else NotImplemented

    def __sub__(self, other: Domain) -> CSG:
        """The difference: points of self not inside other."""
        return CSG("difference", self, other) if isinstance(other, Domain) else NotImplemented

    def distance_jet(self, jet: Jet) -> Jet:
        """The jet of φ = ``distance`` along ``jet``'s directions, as one output column.

        Generic: torch.func along every direction, n·m·D numbers; domains with a closed form
        override it (see ``Ball.distance_jet``).
        """
        return propagate(lambda x: self.distance(x).unsqueeze(1), jet)

    @property
    @abstractmethod
    def volume(self) -> float:
        """Lebesgue measure of the domain."""

    def bounds(self) -> tuple[Tensor, Tensor]:
        """The bounding box (low, high) per input column, float64 on the CPU."""
        raise NotImplementedError

    @property
    def surface_to_volume(self) -> float:
        """|∂Ω| / |Ω| (finite in any dimension, unlike the two measures)."""
        raise NotImplementedError


@dataclass(frozen=True)
class Box(Domain):
    """The box [low, high]^dim, or ∏ᵢ [lowᵢ, highᵢ] with one interval per axis (``low`` and
    ``high`` numbers or sequences of ``dim`` numbers; equal entries are stored as one number)."""

    dim: int
    low: float | tuple[float, ...] = 0.0
    high: float | tuple[float, ...] = 1.0

    def __post_init__(self):
        for name in ("low", "high"):
            object.__setattr__(self, name, _per_axis(self, name))
        if not all(h > lo for lo, h in zip(self.lows, self.highs, strict=True)):
            raise ParameterError(f"Box needs high > low, got low={self.low}, high={self.high}.")

    @property
    def cube(self) -> bool:
        """One interval for every axis."""
        return not isinstance(self.low, tuple) and not isinstance(self.high, tuple)

    @property
    def lows(self) -> tuple[float, ...]:
        return self.low if isinstance(self.low, tuple) else (self.low,) * self.dim

    @property
    def highs(self) -> tuple[float, ...]:
        return self.high if isinstance(self.high, tuple) else (self.high,) * self.dim

    @property
    def sides(self) -> tuple[float, ...]:
        """The edge lengths highᵢ − lowᵢ."""
        return tuple(h - lo for lo, h in zip(self.lows, self.highs, strict=True))

    def _ends(self, like: Tensor) -> tuple[Tensor | float, Tensor | float]:
        """(low, high) to broadcast against points like ``like``: numbers for a cube, else
        (dim,) tensors."""
        if self.cube:
            return self.low, self.high
        return _broadcastable(self.lows, like), _broadcastable(self.highs, like)

    @property
    def volume(self) -> float:
        if self.cube:
            return (self.high - self.low) ** self.dim
        return math.prod(self.sides)

    def bounds(self) -> tuple[Tensor, Tensor]:
        if self.cube:
            full = functools.partial(torch.full, (self.dim,), dtype=torch.float64)
            return full(self.low), full(self.high)
        return tuple(torch.tensor(v, dtype=torch.float64) for v in (self.lows, self.highs))

    @property
    def surface_to_volume(self) -> float:
        if self.cube:
            return 2 * self.dim / (self.high - self.low)
        return sum(2 / side for side in self.sides)

    def face_area(self, axis: int) -> float:
        """The (dim − 1)-measure of a face x_axis = const."""
        if self.cube:
            return (self.high - self.low) ** (self.dim - 1)
        return self.volume / self.sides[axis]

    def face(self, axis: int, side: Literal["low", "high"]) -> Face:
        """The face x_axis = low (``side="low"``) or x_axis = high, a part for conditions."""
        if not 0 <= axis < self.dim:
            raise ParameterError(f"face({axis}, {side!r}): the box has axes 0 … {self.dim - 1}.")
        return Face(axis, side)

    def interior_map(self) -> CubeMap:
        """x = low + (high − low)·u on [0, 1)^dim."""
        return CubeMap(self.dim, self._from_cube)

    def boundary_map(self) -> CubeMap:
        """x = low + (high − low)·u with one coordinate, of a face picked among the 2·dim with
        probability proportional to its area (uniformly for a cube), set to low or high."""
        return CubeMap(self.dim, self._boundary_from_cube)

    def _from_cube(self, u: Tensor, generator: torch.Generator) -> Tensor:
        low, high = self._ends(u)
        return low + (high - low) * u

    def _boundary_from_cube(self, u: Tensor, generator: torch.Generator) -> Tensor:
        x = self._from_cube(u, generator)
        n, device = u.shape[0], generator.device
        if self.cube:
            face = torch.randint(2 * self.dim, (n,), generator=generator, device=device)
        else:  # faces 2i and 2i + 1 (low and high of axis i) weigh their area
            area = torch.tensor([self.face_area(i) for i in range(self.dim)], device=device)
            share = torch.cumsum(area.double().repeat_interleave(2), 0)
            pick = torch.rand(n, generator=generator, device=device, dtype=torch.float64)
            face = torch.searchsorted(share / share[-1], pick, right=True).clamp_(
                max=2 * self.dim - 1
            )
        axis, side = face // 2, (face % 2).to(u.dtype)
        low, high = self._ends(u)
        if not self.cube:
            low, high = low[axis], high[axis]
        value = low + (high - low) * side
        return x.scatter(1, axis[:, None], value[:, None])

    def sample_interior(self, n, *, generator, dtype=torch.float32, sampling="uniform"):
        return self.interior_map().sample(n, generator, dtype, sampling)

    def sample_boundary(self, n, *, generator, dtype=torch.float32, sampling="uniform"):
        return self.boundary_map().sample(n, generator, dtype, sampling)

    def distance(self, x: Tensor) -> Tensor:
        """φ = (Σᵢ 1/ψᵢ)⁻¹ with ψᵢ = 4(xᵢ − a)(b − xᵢ)/(b − a)²: smooth inside, ≈ ψᵢ near face i.

        Evaluated as ψ_k / (1 + Σ_{i≠k} ψ_k/ψᵢ) with k = argminᵢ ψᵢ, an identity for any fixed
        k that stays finite (value and derivatives) on the faces, where ψ_k = 0.
        """
        low, high = self._ends(x)
        psi = 4.0 * (x - low) * (high - x) / (high - low) ** 2
        smallest, ratios = _nearest_ratios(psi)
        return smallest[:, 0] / ratios.sum(dim=1)

    def contains(self, x: Tensor) -> Tensor:
        low, high = self._ends(x)
        return ((x >= low) & (x <= high)).all(dim=1)

    def on_boundary(self, x: Tensor) -> Tensor:
        low, high = self._ends(x)
        tol = ON_TOLERANCE * (high - low)
        near = ((x - low).abs() <= tol) | ((x - high).abs() <= tol)
        return near.any(dim=1) & self.contains(x)

    def normals(self, x: Tensor) -> Tensor:
        """±e_a for the face nearest to each point (the one it lies on)."""
        low, high = self._ends(x)
        gaps = torch.cat([x - low, high - x], dim=1)  # (n, 2d): to each face
        face = gaps.argmin(dim=1)
        axis = face % self.dim
        sign = torch.where(face < self.dim, -1.0, 1.0).to(x.dtype)
        return torch.zeros_like(x).scatter(1, axis[:, None], sign[:, None])

    def extension(self, data: Callable[[Tensor], Tensor]) -> Callable[[Tensor], Tensor]:
        """A lift of Dirichlet ``data`` into the box that reads the data on the faces only:

            g̃(x) = Σ_f w_f(x) data(P_f x),   w_f = ψ_f⁻² / Σ_h ψ_h⁻²,

        over the 2d faces f, with P_f x the projection of x on face f and ψ_f its scaled
        distance to it ((xᵢ − a)/(b − a) or (b − xᵢ)/(b − a)). On face f, w_f = 1, so g̃ = data
        there; inside, g̃ is an inverse-distance blend of the data on the nearest faces
        (transfinite interpolation, Sukumar & Srivastava, CMAME 389 (2022) §4). Smooth inside,
        with bounded first derivatives up to the edges. Costs 2d evaluations of ``data`` per
        point, which is fine for deep Ritz (one reverse pass) and for PINNs in low dimension.
        """
        return functools.partial(_face_blend, self, data)


def _per_axis(shape: Box | Ball, name: str) -> float | tuple[float, ...]:
    """The field ``name`` of ``shape`` as one number, or as a tuple of ``shape.dim`` numbers
    when they differ (a sequence of equal entries is stored as one number)."""
    value = getattr(shape, name)
    if not isinstance(value, list | tuple):
        return value
    if len(value) != shape.dim:
        raise ParameterError(
            f"{type(shape).__name__}({shape.dim}): {name} has {len(value)} entries, one per "
            "axis needed."
        )
    value = tuple(float(v) for v in value)
    return value[0] if len(set(value)) == 1 else value


def _broadcastable(value: float | tuple[float, ...], like: Tensor) -> Tensor | float:
    """A per-axis field against points like ``like``: the number itself, or a (dim,) tensor of
    their dtype and device."""
    if isinstance(value, tuple):
        return torch.tensor(value, dtype=like.dtype, device=like.device)
    return value


def _nearest_ratios(psi: Tensor) -> tuple[Tensor, Tensor]:
    """(ψ_k, ψ_k/ψ) with k = argmin ψ per row and the k-th ratio set to 1 — finite, with finite
    derivatives, also on a face (ψ_k = 0) and on an edge (two zeros), where a plain ψ_k/ψ is
    0/0 (float32 uniform samples hit a face exactly about once per 10⁷ coordinates)."""
    k = psi.argmin(dim=1, keepdim=True)
    smallest = psi.gather(1, k)
    safe = torch.where(psi > 0, psi, torch.ones_like(psi))
    return smallest, (smallest / safe).scatter(1, k, 1.0)


def _face_blend(box: Box, data: Callable[[Tensor], Tensor], x: Tensor) -> Tensor:
    n, d = x.shape
    low, high = box._ends(x)
    side = high - low if box.cube else torch.cat([high - low] * 2)
    psi = torch.cat([x - low, high - x], dim=1) / side  # (n, 2d): faces (i, low), (i, high)
    # w_f = (ψ_min/ψ_f)² / Σ_h (ψ_min/ψ_h)²: finite on the faces (ψ_min = 0 exactly there).
    ratios = _nearest_ratios(psi)[1].square()
    w = ratios / ratios.sum(dim=1, keepdim=True)
    faces = x.unsqueeze(1).repeat(1, 2 * d, 1)  # (n, 2d, d)
    axis = torch.arange(d, device=x.device)
    faces[:, axis, axis] = low
    faces[:, d + axis, axis] = high
    values = data(faces.reshape(n * 2 * d, d))
    values = values.reshape(n, 2 * d, -1) if values.dim() == 2 else values.reshape(n, 2 * d, 1)
    out = (w.unsqueeze(2) * values).sum(dim=1)
    return out[:, 0] if out.shape[1] == 1 else out


@dataclass(frozen=True)
class Ball(Domain):
    """The ball {|x − c| < radius} in R^dim, centred on c = center·(1, …, 1), or on the point
    ``center`` given as a sequence of dim numbers (equal entries are stored as one number)."""

    dim: int
    radius: float = 1.0
    center: float | tuple[float, ...] = 0.0

    def __post_init__(self):
        if not self.radius > 0:
            raise ParameterError(f"Ball needs radius > 0, got {self.radius}.")
        object.__setattr__(self, "center", _per_axis(self, "center"))

    @property
    def centers(self) -> tuple[float, ...]:
        """The centre's coordinates."""
        c = self.center
        return c if isinstance(c, tuple) else (c,) * self.dim

    def _c(self, like: Tensor) -> Tensor | float:
        """The centre to broadcast against points like ``like``."""
        return _broadcastable(self.center, like)

    @property
    def volume(self) -> float:
        d = self.dim
        return math.pi ** (d / 2) / math.gamma(d / 2 + 1) * self.radius**d

    def bounds(self) -> tuple[Tensor, Tensor]:
        c = torch.tensor(self.centers, dtype=torch.float64)
        return c - self.radius, c + self.radius

    @property
    def surface_to_volume(self) -> float:
        return self.dim / self.radius

    def interior_map(self) -> CubeMap:
        """x = c + radius·u₀^{1/dim}·ω(u₁, …, u_dim) on [0, 1)^{dim+1}: |x − c|^dim is uniform,
        and ω, Gaussian coordinates (inverse normal CDF) normalised, a uniform direction."""
        return CubeMap(self.dim + 1, self._from_cube)

    def boundary_map(self) -> CubeMap:
        """x = c + radius·ω(u) on [0, 1)^dim (ω as in ``interior_map``)."""
        return CubeMap(self.dim, self._boundary_from_cube)

    def _from_cube(self, u: Tensor, generator: torch.Generator) -> Tensor:
        r = self.radius * u[:, :1] ** (1.0 / self.dim)
        return self._c(u) + r * _gaussian_directions(u[:, 1:])

    def _boundary_from_cube(self, u: Tensor, generator: torch.Generator) -> Tensor:
        return self._c(u) + self.radius * _gaussian_directions(u)

    def sample_interior(self, n, *, generator, dtype=torch.float32, sampling="uniform"):
        return self.interior_map().sample(n, generator, dtype, sampling)

    def sample_boundary(self, n, *, generator, dtype=torch.float32, sampling="uniform"):
        return self.boundary_map().sample(n, generator, dtype, sampling)

    def contains(self, x: Tensor) -> Tensor:
        return (x - self._c(x)).norm(dim=1) <= self.radius * (1 + ON_TOLERANCE)

    def on_boundary(self, x: Tensor) -> Tensor:
        r = (x - self._c(x)).norm(dim=1)
        return (r - self.radius).abs() <= 10 * ON_TOLERANCE * self.radius

    def normals(self, x: Tensor) -> Tensor:
        r = x - self._c(x)
        return r / r.norm(dim=1, keepdim=True)

    def distance(self, x: Tensor) -> Tensor:
        """φ = 1 − |x − c|²/r²."""
        return 1.0 - ((x - self._c(x)) ** 2).sum(dim=1) / self.radius**2

    def distance_jet(self, jet: Jet) -> Jet:
        """Closed form: ∇φ = −2(x − c)/r², ∇²φ = −2I/r², at n·D cost along the input axes."""
        c = self._c(jet.value)
        return (jet + (-c)).sum_of_squares() * (-1.0 / self.radius**2) + 1.0


@dataclass(frozen=True)
class Slit(Domain):
    """A planar domain (a 2-d Box or Ball) cut along the segment from its centre to its
    boundary in the +x direction: the classic crack domain. The boundary is the outer boundary
    and the slit, sampled in proportion to their lengths (the slit once: u is sampled on it, not
    its two sides)."""

    outer: Box | Ball

    def __post_init__(self):
        if (
            self.outer.dim != 2
            or not isinstance(self.outer, Box | Ball)
            or (isinstance(self.outer, Box) and not self.outer.cube)
            or (isinstance(self.outer, Ball) and isinstance(self.outer.center, tuple))
        ):
            raise ParameterError(
                f"Slit needs a 2-d Box or Ball (a square, or a ball centred on the diagonal), got "
                f"{self.outer}."
            )

    @property
    def dim(self) -> int:  # type: ignore[override]
        return 2

    @property
    def _centre_and_length(self) -> tuple[float, float, float]:
        o = self.outer
        if isinstance(o, Ball):
            return o.center, o.radius, 2 * math.pi * o.radius
        side = o.high - o.low
        return (o.low + o.high) / 2, side / 2, 4 * side

    @property
    def volume(self) -> float:
        return self.outer.volume

    def bounds(self) -> tuple[Tensor, Tensor]:
        return self.outer.bounds()

    @property
    def surface_to_volume(self) -> float:
        _, slit, outer = self._centre_and_length
        return (outer + slit) / self.volume

    def interior_map(self) -> CubeMap:
        """The outer domain's."""
        return self.outer.interior_map()

    def boundary_map(self) -> CubeMap:
        """(u, v₀, v₁) ↦ the slit point (c + ℓ·v₁, c) if v₀ < ℓ/(ℓ + L), else the outer
        boundary's point of u — ℓ the slit's length, L the outer boundary's, c the centre."""
        outer = self.outer.boundary_map()
        return CubeMap(outer.dim + 2, functools.partial(self._boundary_from_cube, outer))

    def _boundary_from_cube(self, outer: CubeMap, u: Tensor, generator: torch.Generator) -> Tensor:
        return self._slit_or_outer(outer.apply(u[:, : outer.dim], generator), u[:, outer.dim :])

    def _slit_or_outer(self, x: Tensor, v: Tensor) -> Tensor:
        centre, slit, outer = self._centre_and_length
        on_slit = v[:, 0] < slit / (slit + outer)
        s = torch.stack([centre + slit * v[:, 1], torch.full_like(v[:, 1], centre)], dim=1)
        return torch.where(on_slit[:, None], s, x)

    def sample_interior(self, n, *, generator, dtype=torch.float32, sampling="uniform"):
        return self.outer.sample_interior(n, generator=generator, dtype=dtype, sampling=sampling)

    def sample_boundary(self, n, *, generator, dtype=torch.float32, sampling="uniform"):
        # One Sobol engine for the outer point and the choice: two would correlate the choice
        # with the outer point's position, making the outer points non-uniform.
        maps = [self.outer.boundary_map(), CubeMap(2, _identity)]
        x, v = _joint(n, maps, generator, dtype, sampling)
        return self._slit_or_outer(x, v)

    def distance(self, x: Tensor) -> Tensor:
        """φ = φ_outer(x) · ((ρ − ξ)/(2ℓ))^{1/2} with ξ, η = x − centre, ρ = |(ξ, η)|, ℓ the
        slit's length: ((ρ − ξ)/2)^{1/2} = ρ^{1/2} |sin(θ/2)| vanishes on the slit (θ = 0) and
        nowhere else inside, grows like |η| beside it and like ρ^{1/2} at the tip — the
        behaviour of a solution at a crack, so u = g + φ N needs no singular N. Smooth inside
        except at the tip, where ∇φ ~ ρ^{−1/2} is square-integrable (fine for deep Ritz)."""
        centre, slit, _ = self._centre_and_length
        xi, eta = x[:, 0] - centre, x[:, 1] - centre
        rho = torch.sqrt(xi * xi + eta * eta)
        # ρ − ξ without cancellation beside the slit (ξ > 0, small η): η²/(ρ + ξ) there.
        gap = torch.where(xi > 0, eta * eta / (rho + xi.abs()), rho + xi.abs())
        return self.outer.distance(x) * torch.sqrt(gap / (2 * slit))


@dataclass(frozen=True)
class SpaceTime(Domain):
    """[t0, t1] × space. Column 0 of every point is the time t, columns 1: are space."""

    space: Domain
    t0: float = 0.0
    t1: float = 1.0

    def __post_init__(self):
        if not self.t1 > self.t0:
            raise ParameterError(f"SpaceTime needs t1 > t0, got t0={self.t0}, t1={self.t1}.")

    @property
    def dim(self) -> int:  # type: ignore[override]
        return 1 + self.space.dim

    def bounds(self) -> tuple[Tensor, Tensor]:
        low, high = self.space.bounds()
        t = torch.tensor([self.t0, self.t1], dtype=torch.float64)
        return torch.cat([t[:1], low]), torch.cat([t[1:], high])

    @property
    def volume(self) -> float:
        return (self.t1 - self.t0) * self.space.volume

    def contains(self, x: Tensor) -> Tensor:
        t = x[:, 0]
        return (t >= self.t0) & (t <= self.t1) & self.space.contains(x[:, 1:])

    def _times(self, u: Tensor, generator: torch.Generator) -> Tensor:
        """t = t0 + (t1 − t0)·u on [0, 1)."""
        return self.t0 + (self.t1 - self.t0) * u

    def _sample(self, n, space_map, space_sample, generator, dtype, sampling) -> Tensor:
        """n points (t, x): for Sobol (t, u) is one point of an engine of dimension 1 + k and
        x = space_map(u), k = space_map.dim, so that (t, x) fill [t0, t1] × space; two engines
        would put t and x on a curve. Pseudo-random times and space points are drawn apart, as
        are those of a space without a map; for Sobol these times, a 1-d Sobol sequence, are then
        taken in a random order (torch.randperm), which makes t independent of x."""
        times = CubeMap(1, self._times)
        if sampling == "sobol" and space_map is not None:
            t, x = _joint(n, [times, space_map], generator, dtype, sampling)
            return torch.cat([t, x], dim=1)
        t = times.sample(n, generator, dtype, sampling)
        x = space_sample(n, generator=generator, dtype=dtype, sampling=sampling)
        if sampling == "sobol":
            t = t[torch.randperm(n, generator=generator, device=generator.device)]
        return torch.cat([t, x], dim=1)

    def sample_interior(self, n, *, generator, dtype=torch.float32, sampling="uniform"):
        space = self.space
        return self._sample(
            n, space.interior_map(), space.sample_interior, generator, dtype, sampling
        )

    def sample_boundary(self, n, *, generator, dtype=torch.float32, sampling="uniform"):
        """Points on the lateral boundary [t0, t1] × ∂space."""
        space = self.space
        return self._sample(
            n, space.boundary_map(), space.sample_boundary, generator, dtype, sampling
        )

    def sample_slice(self, n, t: float, *, generator, dtype=torch.float32, sampling="uniform"):
        """Points {t} × space (initial or terminal slice)."""
        x = self.space.sample_interior(n, generator=generator, dtype=dtype, sampling=sampling)
        return torch.cat([torch.full_like(x[:, :1], t), x], dim=1)

    def distance(self, x: Tensor) -> Tensor:
        return self.space.distance(x[:, 1:])


# --- constructive solid geometry ------------------------------------------------------------
#: Points of the fixed-seed probe that estimates an acceptance rate (a volume, a measure).
PROBE = 100_000
#: How close (relative to the shape's size) a point must be to count as on a boundary.
ON_TOLERANCE = 1e-9


def _rejection(shape, n: int, generator, dtype, sampling, draw, keep) -> Tensor:
    """n points of ``draw(m)`` where ``keep`` holds, drawn in rounds sized by the acceptance."""
    out, total, rate = [], 0, max(shape.acceptance, 1e-6)
    for _ in range(100):
        x = draw(max(64, int(1.2 * (n - total) / rate) + 1))
        x = x[keep(x)]
        out.append(x)
        total += len(x)
        if total >= n:
            return torch.cat(out)[:n]
    raise ParameterError(f"{shape}: rejection sampling found fewer than {n} points in 100 rounds.")


OPS = ("union", "intersection", "difference")


@dataclass(frozen=True)
class CSG(Domain):
    """The union, intersection or difference of two domains of one dimension (``a | b``,
    ``a & b``, ``a - b`` on domains: constructive solid geometry).

    The interior is sampled by rejection from the bounding box; ``acceptance`` and ``volume``
    are estimated on a fixed probe of 10⁵ points of it (standard error about 0.3 % of the
    volume). The boundary is drawn from the operands' boundaries, keeping the points on the
    result's: ∂(A ∪ B) = ∂A \\ B ∪ ∂B \\ A, ∂(A ∩ B) = ∂A ∩ B ∪ ∂B ∩ A,
    ∂(A − B) = ∂A \\ B ∪ ∂B ∩ A, each in proportion to its measure (the kept fractions
    estimated on 10⁵ points of each operand's boundary). A point's normal is that of the
    operand it lies on, reversed for the subtracted one. Operands are any domains that answer
    ``contains`` and ``on_boundary`` (boxes, balls, polygons, CSG shapes).
    """

    op: str
    a: Domain
    b: Domain

    def __post_init__(self):
        if self.op not in OPS:
            raise ParameterError(f"CSG op must be one of {', '.join(OPS)}, got {self.op!r}.")
        if self.a.dim != self.b.dim:
            raise ParameterError(f"CSG of a {self.a.dim}-d and a {self.b.dim}-d domain.")
        for d in (self.a, self.b):
            d.contains(torch.zeros(1, d.dim, dtype=torch.float64))  # refuses what it cannot do

    @property
    def dim(self) -> int:  # type: ignore[override]
        return self.a.dim

    def contains(self, x: Tensor) -> Tensor:
        ia, ib = self.a.contains(x), self.b.contains(x)
        if self.op == "union":
            return ia | ib
        if self.op == "intersection":
            return ia & ib
        return ia & ~(ib & ~self.b.on_boundary(x))

    def on_boundary(self, x: Tensor) -> Tensor:
        return self._kept(self.a, x) | self._kept(self.b, x)

    def _kept(self, operand: Domain, x: Tensor) -> Tensor:
        """Points of ∂operand that are on the result's boundary."""
        other = self.b if operand is self.a else self.a
        on = operand.on_boundary(x)
        strictly_in_other = other.contains(x) & ~other.on_boundary(x)
        if self.op == "union":
            return on & ~strictly_in_other
        if self.op == "intersection":
            return on & other.contains(x)
        if operand is self.a:  # difference a − b
            return on & ~strictly_in_other
        return on & strictly_in_other | (on & self.a.on_boundary(x))

    def bounds(self) -> tuple[Tensor, Tensor]:
        (la, ha), (lb, hb) = self.a.bounds(), self.b.bounds()
        if self.op == "union":
            return torch.minimum(la, lb), torch.maximum(ha, hb)
        if self.op == "intersection":
            return torch.maximum(la, lb), torch.minimum(ha, hb)
        return la, ha

    def _box_points(self, m, generator, dtype, sampling) -> Tensor:
        low, high = (v.to(dtype) for v in self.bounds())
        u = _unit_cube(m, self.dim, generator, dtype, sampling)
        return low.to(u.device) + (high - low).to(u.device) * u

    @functools.cached_property
    def acceptance(self) -> float:
        x = self._box_points(PROBE, torch.Generator().manual_seed(0), torch.float64, "uniform")
        return float(self.contains(x).double().mean())

    @property
    def volume(self) -> float:
        low, high = self.bounds()
        return self.acceptance * float((high - low).prod())

    @functools.cached_property
    def _boundary_fractions(self) -> tuple[float, float]:
        """The fraction of each operand's boundary kept (fixed probe)."""
        g = torch.Generator().manual_seed(1)
        out = []
        for d in (self.a, self.b):
            y = d.sample_boundary(PROBE, generator=g, dtype=torch.float64)
            out.append(float(self._kept(d, y).double().mean()))
        return out[0], out[1]

    @property
    def surface_to_volume(self) -> float:
        fa, fb = self._boundary_fractions
        area = sum(f * d.surface_to_volume * d.volume for f, d in ((fa, self.a), (fb, self.b)))
        return area / self.volume

    def sample_interior(self, n, *, generator, dtype=torch.float32, sampling="uniform"):
        def draw(m):
            return self._box_points(m, generator, dtype, sampling)

        return _rejection(self, n, generator, dtype, sampling, draw, self.contains)

    def sample_boundary(self, n, *, generator, dtype=torch.float32, sampling="uniform"):
        fa, fb = self._boundary_fractions
        wa = fa * self.a.surface_to_volume * self.a.volume
        wb = fb * self.b.surface_to_volume * self.b.volume
        u = torch.rand(n, generator=generator, device=generator.device)
        counts = [int((u < wa / (wa + wb)).sum())]
        counts.append(n - counts[0])
        out = []
        for d, f, c in ((self.a, fa, counts[0]), (self.b, fb, counts[1])):
            if not c:
                continue
            out.append(
                _rejection(
                    _Rate(f),
                    c,
                    generator,
                    dtype,
                    sampling,
                    lambda m, d=d: d.sample_boundary(
                        m, generator=generator, dtype=dtype, sampling=sampling
                    ),
                    lambda y, d=d: self._kept(d, y),
                )
            )
        return torch.cat(out)

    def normals(self, x: Tensor) -> Tensor:
        """The outward normal of the operand each boundary point lies on (−n for the
        subtracted one)."""
        on_a = self._kept(self.a, x)
        na, nb = self.a.normals(x), self.b.normals(x)
        if na is None or nb is None:
            raise ParameterError(f"{self}: an operand has no normals.")
        if self.op == "difference":
            nb = -nb
        return torch.where(on_a[:, None], na, nb)

    def distance(self, x: Tensor) -> Tensor:
        """Positive inside, zero on the boundary: min / max of the operands' functions
        (Rvachev's R₀ functions; not smooth where the two meet)."""
        da, db = self.a.distance(x), self.b.distance(x)
        if self.op == "union":
            return torch.maximum(da, db)
        if self.op == "intersection":
            return torch.minimum(da, db)
        return torch.minimum(da, -db)


@dataclass(frozen=True)
class _Rate:
    """An acceptance rate, for ``_rejection`` of a part of a boundary."""

    acceptance: float


# --- parts of a domain where a condition holds (sampled by pinnlab.parts) ------------------
NAMED_PARTS = ("boundary", "initial", "final")


class Part:
    """A part of a domain where a condition holds."""

    def __or__(self, other: Part | str) -> Union:
        return Union((*members(self), *members(part_of(other))))

    def __ror__(self, other: Part | str) -> Union:
        return part_of(other) | self


@dataclass(frozen=True, eq=False)
class Named(Part):
    """The whole spatial boundary, or the initial / final time slice (equal to its name:
    ``condition.on == "initial"``)."""

    which: Literal["boundary", "initial", "final"]

    def __eq__(self, other) -> bool:
        if isinstance(other, Named):
            other = other.which
        return isinstance(other, str) and self.which == other

    def __hash__(self) -> int:
        return hash(self.which)

    def __str__(self) -> str:
        return self.which


@dataclass(frozen=True)
class Face(Part):
    """The face x_axis = low (``side="low"``) or = high of a box."""

    axis: int
    side: Literal["low", "high"]

    def __post_init__(self):
        if self.side not in ("low", "high"):
            raise ParameterError(f"face side must be 'low' or 'high', got {self.side!r}.")

    def __str__(self) -> str:
        return f"face({self.axis}, {self.side!r})"


@dataclass(frozen=True)
class Edge(Part):
    """Edge i of a polygon, from vertex i to vertex i + 1 (``Polygon.edge(i)``)."""

    index: int

    def __str__(self) -> str:
        return f"edge({self.index})"


@dataclass(frozen=True)
class Where(Part):
    """The points of ``within`` (the boundary by default) where ``predicate(x)`` is True;
    ``predicate`` maps points (n, D) (t first for space-time) to a bool tensor (n,)."""

    predicate: Callable[[Tensor], Tensor]
    within: Part = Named("boundary")

    def __str__(self) -> str:
        name = getattr(self.predicate, "__name__", "predicate")
        return f"where({name}) on {self.within}"


@dataclass(frozen=True)
class Union(Part):
    """Several parts (not overlapping), sampled in proportion to their measures."""

    parts: tuple[Part, ...]

    def __str__(self) -> str:
        return " | ".join(map(str, self.parts))


def where(predicate: Callable[[Tensor], Tensor], within: Part | str = "boundary") -> Where:
    """The part of ``within`` (default: the boundary) where ``predicate(x)`` holds."""
    if not callable(predicate):
        raise ParameterError(f"where() takes a function of the points, got {predicate!r}.")
    return Where(predicate, part_of(within))


def part_of(on: Part | str) -> Part:
    """``on`` as a ``Part`` (a name is one of "boundary", "initial", "final")."""
    if isinstance(on, Part):
        return on
    if isinstance(on, str) and on in NAMED_PARTS:
        return Named(on)
    raise ParameterError(
        f"on={on!r}: a part is one of {', '.join(NAMED_PARTS)}, a face (Box.face(axis, side)), "
        f"pl.where(predicate) or a union of parts with |.{did_you_mean(str(on), NAMED_PARTS)}"
    )


def members(part: Part) -> tuple[Part, ...]:
    """The parts a union joins (the part itself otherwise)."""
    return part.parts if isinstance(part, Union) else (part,)
