"""Parts of a domain's boundary where a condition holds, sampled uniformly in surface measure,
with the outward unit normal at every point.

A part is ``"boundary"`` (the spatial boundary; lateral for space-time), ``"initial"`` or
``"final"`` (the time slices t = t0, t1), a face of a box (``pl.Box(d).face(axis, "low")``;
on a CSG shape, the part of its first box operand's face on the shape's boundary),
the boundary points where a predicate holds (``pl.where(lambda x: x[:, 0] > 0.5)``), or a
union of parts (``a | b``; the parts of a union should not overlap). Normals are vectors over
every input column (t first for space-time points): (0, n_x) on the lateral boundary, ∓e_t on
the initial and final slices, so ∂u/∂n = ∇u·n whatever the part.

Sampling per part: a face maps points of a unit cube as the box's interior does, with its
coordinate fixed; a predicate keeps the base part's points that satisfy it (rejection, the
acceptance rate estimated on 4,096 points and used for its measure); a union draws a
multinomial number of points from each part in proportion to its measure.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .domains import (
    CSG,
    Box,
    Domain,
    Edge,
    Face,
    Named,
    Part,
    SpaceTime,
    Union,
    Where,
    members,
    part_of,
)
from .errors import ParameterError

#: Points drawn to estimate a predicate's acceptance rate (its part's measure).
PROBE = 4096


def slice_time(domain: Domain, part: Part) -> float | None:
    """t of a time slice part (initial / final), else None."""
    if isinstance(part, Named) and part.which != "boundary":
        return domain.t0 if part.which == "initial" else domain.t1
    return None


def check(domain: Domain, part: Part, name: str) -> None:
    """Fail at once where ``part`` does not exist on ``domain`` (naming the condition)."""
    space = domain.space if isinstance(domain, SpaceTime) else domain
    for p in members(part):
        where_ = f"condition '{name}' on {p}"
        if isinstance(p, Named) and p.which != "boundary" and not isinstance(domain, SpaceTime):
            raise ParameterError(
                f"{where_}: the {p.which} slice exists only on a SpaceTime domain; this "
                f"form's domain is {type(domain).__name__}."
            )
        if isinstance(p, Edge):
            if not hasattr(space, "sample_edges"):
                raise ParameterError(
                    f"{where_}: edges are parts of a Polygon; the space here is "
                    f"{type(space).__name__}."
                )
            if not 0 <= p.index < len(space.vertices):
                raise ParameterError(
                    f"{where_}: the polygon has edges 0 … {len(space.vertices) - 1}."
                )
        if isinstance(p, Face):
            box = face_box(space)
            if box is None:
                raise ParameterError(
                    f"{where_}: faces are parts of a Box (or of a CSG shape made with one); "
                    f"the space here is {type(space).__name__} (use pl.where(...) on its "
                    "boundary)."
                )
            if not 0 <= p.axis < space.dim:
                raise ParameterError(
                    f"{where_}: axis {p.axis} does not exist; the box has {space.dim} "
                    f"coordinate(s) (axes 0 … {space.dim - 1})."
                )
            if box is not space and _face_share(space, p) == 0:
                raise ParameterError(
                    f"{where_}: none of {PROBE} points of the box's face lies on the "
                    f"boundary of the {type(space).__name__} shape; the part is empty."
                )
        if isinstance(p, Where):
            check(domain, p.within, name)
            if _acceptance(domain, p) == 0:
                raise ParameterError(
                    f"{where_}: the predicate holds at none of {PROBE} points of "
                    f"{p.within}; the part is empty."
                )


def measure(domain: Domain, part: Part | str) -> float:
    """The surface measure of ``part`` (its volume for a time slice; × (t1 − t0) laterally)."""
    part = part_of(part)
    if isinstance(part, Union):
        return sum(measure(domain, p) for p in part.parts)
    if isinstance(part, Where):
        return _acceptance(domain, part) * measure(domain, part.within)
    if isinstance(domain, SpaceTime):
        if slice_time(domain, part) is not None:
            return domain.space.volume
        return (domain.t1 - domain.t0) * measure(domain.space, part)
    if isinstance(part, Face):
        box = face_box(domain)
        area = box.face_area(part.axis)
        return area if box is domain else area * _face_share(domain, part)
    if isinstance(part, Edge):
        a, b = (
            torch.tensor(domain.vertices[i % len(domain.vertices)])
            for i in (part.index, part.index + 1)
        )
        return float((b - a).norm())
    return domain.surface_to_volume * domain.volume


def sample(
    domain: Domain,
    part: Part | str,
    n: int,
    *,
    generator: torch.Generator,
    dtype=torch.float32,
    sampling: str = "uniform",
    with_normals: bool = True,
) -> tuple[Tensor, Tensor | None]:
    """n points uniform in surface measure on ``part`` and their outward unit normals
    ((n, D), or None where the boundary has none: a slit; or not asked for: at d = 100,000,
    4,096 points' normals alone take 3 GB in float64)."""
    part = part_of(part)
    kw = dict(generator=generator, dtype=dtype, sampling=sampling)
    if isinstance(part, Union):
        weights = torch.tensor([measure(domain, p) for p in part.parts], dtype=torch.float64)
        picks = torch.multinomial(weights, n, replacement=True, generator=_cpu(generator))
        counts = torch.bincount(picks, minlength=len(part.parts)).tolist()
        drawn = [
            sample(domain, p, c, **kw, with_normals=with_normals)
            for p, c in zip(part.parts, counts, strict=True)
            if c
        ]
        x = torch.cat([d[0] for d in drawn])
        nrm = None if any(d[1] is None for d in drawn) else torch.cat([d[1] for d in drawn])
        return x, nrm
    if isinstance(part, Where):
        return _rejection(domain, part, n, kw, with_normals)
    if isinstance(domain, SpaceTime):
        t = slice_time(domain, part)
        if t is not None:
            x = domain.sample_slice(n, t, **kw)
            if not with_normals:
                return x, None
            normal = torch.zeros_like(x)
            normal[:, 0] = -1.0 if part.which == "initial" else 1.0
            return x, normal
        if isinstance(part, Named):
            x = domain.sample_boundary(n, **kw)
        else:
            x = domain._sample(
                n, None, _space_sampler(domain.space, part), generator, dtype, sampling
            )
        space_normal = normals(domain.space, x[:, 1:]) if with_normals else None
        if space_normal is None:
            return x, None
        return x, torch.cat([torch.zeros_like(x[:, :1]), space_normal], dim=1)
    x = _space_sampler(domain, part)(n, **kw)
    return x, normals(domain, x) if with_normals else None


def _space_sampler(space: Domain, part: Part):
    if isinstance(part, Face):
        return lambda n, **kw: _face(space, part, n, **kw)
    if isinstance(part, Edge):
        return lambda n, **kw: space.sample_edges([part.index], n, **kw)
    return space.sample_boundary


def face_box(space: Domain) -> Box | None:
    """The box whose faces a ``Face`` names on ``space``: the space itself, or a CSG
    shape's first box operand (depth first); None if there is none."""
    if isinstance(space, Box):
        return space
    if isinstance(space, CSG):
        return face_box(space.a) or face_box(space.b)
    return None


def _face(space: Domain, face: Face, n: int, *, generator, dtype, sampling) -> Tensor:
    """n points uniform on the face; on a CSG shape, on the part of its box's face that is
    on the shape's boundary (rejection)."""
    box = face_box(space)

    def draw(m: int) -> Tensor:
        x = box.sample_interior(m, generator=generator, dtype=dtype, sampling=sampling)
        x[:, face.axis] = (box.lows if face.side == "low" else box.highs)[face.axis]
        return x

    if box is space:
        return draw(n)
    rate = max(_face_share(space, face), 1.0 / PROBE)
    xs, total = [], 0
    for _ in range(100):
        x = draw(max(64, int(1.2 * (n - total) / rate) + 1))
        xs.append(x[space.on_boundary(x)])
        total += len(xs[-1])
        if total >= n:
            return torch.cat(xs)[:n]
    raise ParameterError(f"{face}: fewer than {n} points found in 100 rounds of rejection.")


def _face_share(space: Domain, face: Face) -> float:
    """The fraction of the box's face on the boundary of the CSG shape ``space`` (fixed seed,
    PROBE points): the face part's measure over the face's."""
    box = face_box(space)
    x = box.sample_interior(PROBE, generator=torch.Generator().manual_seed(0))
    x[:, face.axis] = (box.lows if face.side == "low" else box.highs)[face.axis]
    return float(space.on_boundary(x).double().mean())


def normals(space: Domain, x: Tensor) -> Tensor | None:
    """The outward unit normal at boundary points x of ``space`` (None if it has none)."""
    return space.normals(x)


def _cpu(generator: torch.Generator) -> torch.Generator:
    """A CPU generator seeded from ``generator`` (torch.multinomial's counts are drawn there)."""
    seed = torch.randint(2**62, (1,), generator=generator, device=generator.device)
    return torch.Generator().manual_seed(int(seed))


def _acceptance(domain: Domain, part: Where) -> float:
    """The fraction of ``part.within`` where the predicate holds (fixed seed, PROBE points)."""
    x, _ = sample(
        domain, part.within, PROBE, generator=torch.Generator().manual_seed(0), with_normals=False
    )
    return float(_mask(part, x).double().mean())


def _mask(part: Where, x: Tensor) -> Tensor:
    keep = part.predicate(x)
    if not isinstance(keep, Tensor) or keep.shape != (len(x),):
        raise ParameterError(
            f"{part}: the predicate must return a bool tensor of shape ({len(x)},), got "
            f"{getattr(keep, 'shape', type(keep).__name__)}."
        )
    return keep.bool()


def _rejection(
    domain: Domain, part: Where, n: int, kw, with_normals: bool
) -> tuple[Tensor, Tensor | None]:
    """Points of ``part.within`` where the predicate holds, drawn in rounds until n."""
    rate = max(_acceptance(domain, part), 1.0 / PROBE)
    xs, ns, total = [], [], 0
    for _ in range(100):
        m = max(64, int(1.2 * (n - total) / rate) + 1)
        x, nrm = sample(domain, part.within, m, **kw, with_normals=with_normals)
        keep = _mask(part, x)
        xs.append(x[keep])
        ns.append(None if nrm is None else nrm[keep])
        total += int(keep.sum())
        if total >= n:
            break
    else:
        raise ParameterError(f"{part}: fewer than {n} points found in 100 rounds of rejection.")
    x = torch.cat(xs)[:n]
    return x, None if any(v is None for v in ns) else torch.cat(ns)[:n]
