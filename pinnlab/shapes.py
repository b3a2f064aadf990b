"""Simple polygons in the plane (an L-shape, any simple polygon): a domain like the others, so
it takes part in constructive solid geometry (``pinnlab.domains.CSG``) and in space-time."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from .domains import ON_TOLERANCE, Box, CubeMap, Domain, Edge, _rejection, _unit_cube
from .errors import ParameterError


@dataclass(frozen=True)
class Polygon(Domain):
    """A simple polygon in the plane, given by its vertices in order (either orientation;
    stored counter-clockwise). ``edge(i)`` is the part from vertex i to vertex i + 1.

    The interior is sampled by rejection from the bounding box (``acceptance`` = area / box
    area, exact here), the boundary uniformly in arc length (one coordinate of the unit cube
    walks the perimeter: Sobol-compatible); the outward normal of edge (a → b) is the
    direction b − a turned clockwise. ``distance`` is the distance to the boundary: exact,
    Lipschitz, not smooth across the medial axis (hard constraints prefer a smooth one).
    """

    vertices: tuple[tuple[float, float], ...]

    def __post_init__(self):
        v = tuple((float(a), float(b)) for a, b in self.vertices)
        if len(v) < 3:
            raise ParameterError(f"Polygon needs at least 3 vertices, got {len(v)}.")
        area = _signed_area(v)
        if abs(area) < 1e-14:
            raise ParameterError("Polygon has zero area (its vertices are collinear).")
        if area < 0:
            v = v[::-1]
        _check_simple(v)
        object.__setattr__(self, "vertices", v)

    dim = 2

    @functools.cached_property
    def _edges(self) -> tuple[Tensor, Tensor]:
        a = torch.tensor(self.vertices, dtype=torch.float64)
        return a, torch.roll(a, -1, dims=0)

    @property
    def volume(self) -> float:
        return _signed_area(self.vertices)

    @property
    def acceptance(self) -> float:
        low, high = self.bounds()
        return self.volume / float((high - low).prod())

    @property
    def perimeter(self) -> float:
        a, b = self._edges
        return float((b - a).norm(dim=1).sum())

    @property
    def surface_to_volume(self) -> float:
        return self.perimeter / self.volume

    def bounds(self) -> tuple[Tensor, Tensor]:
        a = torch.tensor(self.vertices, dtype=torch.float64)
        return a.min(dim=0).values, a.max(dim=0).values

    def edge(self, i: int):
        """The part of the boundary from vertex i to vertex i + 1 (a condition's ``on``)."""
        if not 0 <= i < len(self.vertices):
            raise ParameterError(f"edge({i}): the polygon has edges 0 … {len(self.vertices) - 1}.")
        return Edge(i)

    def contains(self, x: Tensor) -> Tensor:
        """Inside or on the boundary (crossing number, with the boundary counted in)."""
        a, b = (e.to(x) for e in self._edges)
        px, py = x[:, :1], x[:, 1:2]
        straddles = (a[:, 1] > py) != (b[:, 1] > py)
        t = (py - a[:, 1]) / torch.where(b[:, 1] == a[:, 1], 1.0, b[:, 1] - a[:, 1])
        crossing = px < a[:, 0] + t * (b[:, 0] - a[:, 0])
        inside = (straddles & crossing).sum(dim=1) % 2 == 1
        return inside | self.on_boundary(x)

    def _segment_distance(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Distance from each point to each edge (n, m) and the nearest edge's index (n,)."""
        a, b = (e.to(x) for e in self._edges)
        ab = b - a
        t = (((x[:, None, :] - a) * ab).sum(-1) / ab.square().sum(-1)).clamp(0, 1)
        dist = (x[:, None, :] - (a + t[..., None] * ab)).norm(dim=-1)
        return dist, dist.argmin(dim=1)

    def on_boundary(self, x: Tensor) -> Tensor:
        size = float((self.bounds()[1] - self.bounds()[0]).max())
        return self._segment_distance(x)[0].min(dim=1).values <= ON_TOLERANCE * size

    def distance(self, x: Tensor) -> Tensor:
        return self._segment_distance(x)[0].min(dim=1).values

    def normals(self, x: Tensor) -> Tensor:
        """The outward unit normal of the edge nearest to each point."""
        a, b = (e.to(x) for e in self._edges)
        d = b - a
        out = torch.stack([d[:, 1], -d[:, 0]], dim=1) / d.norm(dim=1, keepdim=True)
        return out[self._segment_distance(x)[1]]

    def boundary_map(self) -> CubeMap:
        """s = u·perimeter → the point at arc length s along the edges."""
        return CubeMap(1, self._walk)

    def _walk(self, u: Tensor, generator: torch.Generator, edges: Sequence[int] | None = None):
        a, b = (e.to(u) for e in self._edges)
        keep = list(range(len(a))) if edges is None else list(edges)
        a, b = a[keep], b[keep]
        lengths = (b - a).norm(dim=1)
        ends = torch.cumsum(lengths, 0)
        s = u[:, 0] * ends[-1]
        i = torch.searchsorted(ends, s, right=True).clamp(max=len(a) - 1)
        start = ends[i] - lengths[i]
        t = ((s - start) / lengths[i])[:, None]
        return a[i] + t * (b[i] - a[i])

    def sample_edges(self, edges: Sequence[int], n: int, *, generator, dtype, sampling) -> Tensor:
        """n points uniform in arc length on the given edges."""
        u = _unit_cube(n, 1, generator, dtype, sampling)
        return self._walk(u, generator, edges)

    def sample_boundary(self, n, *, generator, dtype=torch.float32, sampling="uniform"):
        return self.boundary_map().sample(n, generator, dtype, sampling)

    def sample_interior(self, n, *, generator, dtype=torch.float32, sampling="uniform"):
        box = Box(2)
        low, high = (v.to(dtype) for v in self.bounds())

        def draw(m):
            u = box.sample_interior(m, generator=generator, dtype=dtype, sampling=sampling)
            return low.to(u.device) + (high - low).to(u.device) * u

        return _rejection(self, n, generator, dtype, sampling, draw, self.contains)


def _signed_area(v) -> float:
    return 0.5 * sum(x0 * y1 - x1 * y0 for (x0, y0), (x1, y1) in zip(v, v[1:] + v[:1], strict=True))


def _check_simple(v) -> None:
    """Refuse a polygon whose non-adjacent edges intersect."""
    m = len(v)

    def cross(o, a, b):
        return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])

    for i in range(m):
        for j in range(i + 1, m):
            if j == i + 1 or (i == 0 and j == m - 1):
                continue
            p, q, r, s = v[i], v[(i + 1) % m], v[j], v[(j + 1) % m]
            d1, d2, d3, d4 = cross(r, s, p), cross(r, s, q), cross(p, q, r), cross(p, q, s)
            if d1 * d2 < 0 and d3 * d4 < 0:
                raise ParameterError(f"Polygon is not simple: edges {i} and {j} cross.")
