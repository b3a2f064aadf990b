"""Domains: points inside or on the boundary, shapes, dtypes, seeds, distance functions."""

from __future__ import annotations

import functools
import inspect
import itertools
import math
import re
from dataclasses import dataclass

import pytest
import torch

import pinnlab as pl
from pinnlab import domains
from pinnlab.domains import SAMPLINGS

DTYPES = [torch.float32, torch.float64]


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def tol(dtype) -> float:
    return 1e-5 if dtype == torch.float32 else 1e-12


#: A box with one interval per axis (faces of three different areas).
RECTANGULAR = pl.Box(3, low=(-1.0, 0.0, 0.5), high=(2.0, 0.5, 1.0))

DOMAINS = {
    "box": pl.Box(3, -1.0, 2.0),
    "box-rectangular": RECTANGULAR,
    "spacetime-rectangular": pl.SpaceTime(pl.Box(2, low=(0.0, -1.0), high=(3.0, 1.0))),
    "ball-off-diagonal": pl.Ball(3, radius=0.5, center=(1.0, -2.0, 0.0)),
    "ball": pl.Ball(4, radius=1.5, center=0.5),
    "spacetime-box": pl.SpaceTime(pl.Box(2), t0=0.5, t1=2.0),
    "spacetime-ball": pl.SpaceTime(pl.Ball(3), t0=0.0, t1=1.0),
}


def ends(box: pl.Box, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The box's lower and upper corners as (dim,) tensors like x."""
    return tuple(torch.tensor(v, dtype=x.dtype) for v in (box.lows, box.highs))


def inside(domain, x, dtype) -> torch.Tensor:
    """Per point: in the closed domain (up to rounding)."""
    if isinstance(domain, pl.Box):
        low, high = ends(domain, x)
        return ((x >= low) & (x <= high)).all(dim=1)
    if isinstance(domain, pl.Ball):
        r = (x - torch.tensor(domain.centers, dtype=x.dtype)).norm(dim=1)
        return r <= domain.radius * (1 + tol(dtype))
    t = x[:, 0]
    in_time = (t >= domain.t0) & (t <= domain.t1)
    return in_time & inside(domain.space, x[:, 1:], dtype)


def on_boundary(domain, x, dtype) -> torch.Tensor:
    """Per point: on the (spatial, lateral) boundary."""
    if isinstance(domain, pl.Box):
        low, high = ends(domain, x)
        return ((x == low) | (x == high)).any(dim=1)
    if isinstance(domain, pl.Ball):
        r = (x - torch.tensor(domain.centers, dtype=x.dtype)).norm(dim=1)
        return (r - domain.radius).abs() <= tol(dtype) * domain.radius
    return on_boundary(domain.space, x[:, 1:], dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("sampling", SAMPLINGS)
@pytest.mark.parametrize("name", list(DOMAINS))
def test_samples_lie_inside_and_on_the_boundary(name, sampling, dtype):
    domain = DOMAINS[name]
    n = 257
    x = domain.sample_interior(n, generator=gen(), dtype=dtype, sampling=sampling)
    assert x.shape == (n, domain.dim) and x.dtype == dtype and x.device.type == "cpu"
    assert inside(domain, x, dtype).all()
    # Interior points are (almost surely) not on the boundary.
    assert not on_boundary(domain, x, dtype).any()

    y = domain.sample_boundary(n, generator=gen(), dtype=dtype, sampling=sampling)
    assert y.shape == (n, domain.dim) and y.dtype == dtype
    assert inside(domain, y, dtype).all()
    assert on_boundary(domain, y, dtype).all()


@pytest.mark.parametrize("sampling", SAMPLINGS)
@pytest.mark.parametrize("name", list(DOMAINS))
def test_same_seed_same_points_other_seed_other_points(name, sampling):
    domain = DOMAINS[name]
    for draw in (domain.sample_interior, domain.sample_boundary):
        a = draw(64, generator=gen(3), sampling=sampling)
        b = draw(64, generator=gen(3), sampling=sampling)
        c = draw(64, generator=gen(4), sampling=sampling)
        assert torch.equal(a, b)
        assert not torch.equal(a, c)
    # Successive draws from one generator differ.
    g = gen(3)
    assert not torch.equal(
        domain.sample_interior(8, generator=g, sampling=sampling),
        domain.sample_interior(8, generator=g, sampling=sampling),
    )


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("sampling", SAMPLINGS)
def test_space_time_slices(sampling, dtype):
    domain = pl.SpaceTime(pl.Box(2), t0=0.5, t1=2.0)
    for t in (domain.t0, domain.t1, 1.25):
        x = domain.sample_slice(33, t, generator=gen(), dtype=dtype, sampling=sampling)
        assert x.shape == (33, 3) and x.dtype == dtype
        assert (x[:, 0] == t).all()
        assert inside(domain.space, x[:, 1:], dtype).all()
        assert not on_boundary(domain.space, x[:, 1:], dtype).any()
    a = domain.sample_slice(8, 0.5, generator=gen(1), sampling=sampling)
    assert torch.equal(a, domain.sample_slice(8, 0.5, generator=gen(1), sampling=sampling))


def test_space_time_dimension_and_volume():
    domain = pl.SpaceTime(pl.Ball(3, radius=2.0), t0=1.0, t1=3.0)
    assert domain.dim == 4
    assert domain.volume == pytest.approx(2.0 * 4 / 3 * math.pi * 8)


def test_volumes():
    assert pl.Box(3, -1.0, 1.0).volume == pytest.approx(8.0)
    assert pl.Ball(2, radius=2.0).volume == pytest.approx(4 * math.pi)
    assert pl.Ball(3).volume == pytest.approx(4 / 3 * math.pi)


def test_box_boundary_visits_every_face():
    box = pl.Box(3, 0.0, 1.0)
    y = box.sample_boundary(600, generator=gen())
    for axis in range(3):
        for side in (0.0, 1.0):
            assert (y[:, axis] == side).any(), f"face x{axis} = {side} never sampled"


def test_ball_interior_is_uniform_in_volume():
    """|x|^d of uniform points in the unit ball is uniform on [0, 1]: mean 1/2, not crowded."""
    d = 5
    x = pl.Ball(d).sample_interior(4000, generator=gen(), dtype=torch.float64)
    s = x.norm(dim=1) ** d
    assert abs(float(s.mean()) - 0.5) < 0.03
    assert abs(float((s < 0.25).double().mean()) - 0.25) < 0.03
    # Directions are isotropic: the mean point is near the centre.
    assert float(x.mean(dim=0).norm()) < 0.05


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "domain", [pl.Box(3, -1.0, 2.0), pl.Ball(3, radius=1.5, center=0.5)], ids=["box", "ball"]
)
def test_distance_vanishes_on_the_boundary_and_is_positive_inside(domain, dtype):
    y = domain.sample_boundary(200, generator=gen(), dtype=dtype)
    phi = domain.distance(y)
    assert phi.shape == (200,)
    assert phi.abs().max() <= 10 * tol(dtype)
    x = domain.sample_interior(200, generator=gen(), dtype=dtype)
    assert (domain.distance(x) > 0).all()
    space_time = pl.SpaceTime(domain)
    z = space_time.sample_boundary(50, generator=gen(), dtype=dtype)
    assert space_time.distance(z).abs().max() <= 10 * tol(dtype)
    assert (space_time.distance(space_time.sample_interior(50, generator=gen())) > 0).all()


def test_box_distance_is_smooth_and_behaves_like_the_nearest_face():
    box = pl.Box(2, 0.0, 1.0)
    x = torch.tensor([[1e-4, 0.5], [0.5, 0.5]], dtype=torch.float64)
    phi = box.distance(x)
    assert phi[0] == pytest.approx(4e-4, rel=1e-2)  # ≈ ψ of the near face
    assert phi[1] == pytest.approx(0.5)  # (1/1 + 1/1)⁻¹ at the centre


@pytest.mark.parametrize("outputs", [1, 2])
def test_box_extension_matches_the_data_on_the_faces_and_reads_nothing_else(outputs):
    box = pl.Box(3, -1.0, 2.0)
    seen = []

    def data(y):
        seen.append(y.detach().clone())
        u = torch.sin(y).sum(dim=1) + y[:, 0] * y[:, 2]
        return u if outputs == 1 else torch.stack([u, y[:, 1] ** 3], dim=1)

    lift = box.extension(data)
    y = box.sample_boundary(200, generator=gen(), dtype=torch.float64)
    torch.testing.assert_close(lift(y), data(y), rtol=0, atol=1e-12)
    seen.clear()
    x = box.sample_interior(200, generator=gen(1), dtype=torch.float64).requires_grad_(True)
    g = lift(x)
    on_faces = ((seen[0] - box.low).abs().min(dim=1).values == 0) | (
        (seen[0] - box.high).abs().min(dim=1).values == 0
    )
    assert on_faces.all()  # the data are read on the boundary only
    assert g.shape == data(x).shape and not torch.allclose(g, data(x))
    # Bounded first derivatives up to an edge (the deep Ritz energy stays finite).
    near_edge = torch.tensor(
        [[-1 + 1e-7, -1 + 3e-7, 0.5], [2 - 1e-9, 2 - 2e-9, 1.0]], dtype=torch.float64
    )
    near_edge.requires_grad_(True)
    (grad,) = torch.autograd.grad(lift(near_edge).sum(), near_edge)
    assert torch.isfinite(grad).all() and grad.abs().max() < 50


@pytest.mark.parametrize("dtype", DTYPES)
def test_box_distance_and_extension_have_finite_derivatives_on_faces_and_edges(dtype):
    """float32 uniform samples land exactly on a face about once per 10⁷ coordinates; deep
    Ritz with the exact transform then needs finite first and second derivatives there."""
    box = pl.Box(4)
    x = torch.full((3, 4), 0.3, dtype=dtype)
    x[0, 1] = 0.0  # on a face
    x[1, 1], x[1, 2] = 0.0, 1.0  # on an edge
    x.requires_grad_(True)
    lift = box.extension(lambda y: y.square().sum(dim=1))
    for f in (box.distance, lift):
        (g,) = torch.autograd.grad(f(x).sum(), x, create_graph=True)
        (h,) = torch.autograd.grad(g.square().sum(), x)
        assert torch.isfinite(f(x)).all() and torch.isfinite(g).all() and torch.isfinite(h).all()
    assert (box.distance(x)[:2] == 0).all()
    torch.testing.assert_close(lift(x)[:2], x[:2].square().sum(dim=1))  # the data there


def test_invalid_domains_and_samplings():
    with pytest.raises(pl.ParameterError, match="high > low"):
        pl.Box(2, 1.0, 1.0)
    with pytest.raises(pl.ParameterError, match="radius > 0"):
        pl.Ball(2, radius=0.0)
    with pytest.raises(pl.ParameterError, match="t1 > t0"):
        pl.SpaceTime(pl.Box(1), t0=1.0, t1=0.0)
    with pytest.raises(
        pl.UnknownNameError, match=re.escape("unknown sampling 'sobl'. Did you mean 'sobol'")
    ):
        pl.Box(2).sample_interior(4, generator=gen(), sampling="sobl")
    too_many = torch.quasirandom.SobolEngine.MAXDIM + 1
    with pytest.raises(pl.ParameterError, match="use sampling='uniform'"):
        pl.Box(too_many).sample_interior(4, generator=gen(), sampling="sobol")


# --- Uniformity in measure -------------------------------------------------------------------


@dataclass(frozen=True)
class Mapless(pl.Domain):
    """A user's domain that samples through its own methods (no ``interior_map``): here the
    samplers of an ``inner`` domain, called as a black box."""

    inner: pl.Domain

    @property
    def dim(self) -> int:  # type: ignore[override]
        return self.inner.dim

    @property
    def volume(self) -> float:
        return self.inner.volume

    def sample_interior(self, n, **kw):
        return self.inner.sample_interior(n, **kw)

    def sample_boundary(self, n, **kw):
        return self.inner.sample_boundary(n, **kw)

    def distance(self, x):
        return self.inner.distance(x)


def unit_coordinates(domain, x: torch.Tensor, where: str) -> torch.Tensor:
    """Coordinates in [0, 1)^m in which points uniform in measure (volume for "interior", surface
    for "boundary") are uniform i.i.d. — the inverse of a measure-preserving map of the cube:

    - Box: (x − low)/(high − low); on the boundary, the face f = 2·axis + side is uniform over
      the 2d faces and the d − 1 free coordinates w are uniform, so ((f + w₁)/(2d), w₂, …).
    - Ball in R² or R³: (|x − c|/r)^d (0 on the sphere) and the direction: the angle in R²;
      in R³ (z + 1)/2 (Archimedes) and the azimuth.
    - Slit: the outer interior; on the boundary, arc length along the outer boundary then the
      slit, over the total length (one coordinate).
    - SpaceTime: (t − t0)/(t1 − t0) then the space coordinates (none of t for "slice").
    """
    if isinstance(domain, Mapless):
        return unit_coordinates(domain.inner, x, where)
    if isinstance(domain, pl.SpaceTime):
        space = unit_coordinates(domain.space, x[:, 1:], "interior" if where == "slice" else where)
        if where == "slice":
            return space
        t = (x[:, :1] - domain.t0) / (domain.t1 - domain.t0)
        return torch.cat([t, space], dim=1)
    if isinstance(domain, pl.Box):
        low, high = ends(domain, x)
        w = (x - low) / (high - low)
        if where == "interior":
            return w
        d = domain.dim
        hit = (w == 0) | (w == 1)
        assert (hit.sum(dim=1) == 1).all()
        axis = hit.int().argmax(dim=1)
        face = 2 * axis + w.gather(1, axis[:, None])[:, 0].long()
        free = w[~hit].reshape(-1, d - 1)
        # faces 2i, 2i + 1 weigh their area: face f covers [C_f, C_f + A_f) of the total
        area = torch.tensor([domain.face_area(i) for i in range(d)], dtype=x.dtype)
        area = area.repeat_interleave(2) / (2 * area.sum())
        start = torch.cumsum(area, 0) - area
        first = start[face] + area[face] * free[:, 0]
        return torch.cat([first[:, None], free[:, 1:]], dim=1)
    if isinstance(domain, pl.Ball):
        y = (x - torch.tensor(domain.centers, dtype=x.dtype)) / domain.radius
        r = y.norm(dim=1, keepdim=True)
        u = y / r
        if domain.dim == 2:
            direction = [(torch.atan2(u[:, 1:], u[:, :1]) + math.pi) / (2 * math.pi)]
        else:
            assert domain.dim == 3
            phi = (torch.atan2(u[:, 1:2], u[:, :1]) + math.pi) / (2 * math.pi)
            direction = [(u[:, 2:] + 1) / 2, phi]
        radial = [r**domain.dim] if where == "interior" else []
        return torch.cat(radial + direction, dim=1)
    assert isinstance(domain, pl.Slit)
    if where == "interior":
        return unit_coordinates(domain.outer, x, where)
    outer = domain.outer
    if isinstance(outer, pl.Box):
        side = outer.high - outer.low
        centre, slit, length = (outer.low + outer.high) / 2, side / 2, 4 * side
        on_outer = ((x == outer.low) | (x == outer.high)).any(dim=1)
    else:
        centre, slit, length = outer.center, outer.radius, 2 * math.pi * outer.radius
        on_outer = ((x - outer.center).norm(dim=1) - outer.radius).abs() < 1e-9 * outer.radius
    s = torch.empty_like(x[:, 0])
    s[on_outer] = length * unit_coordinates(outer, x[on_outer], "boundary")[:, 0]
    assert torch.allclose(x[~on_outer, 1], torch.tensor(centre, dtype=x.dtype))
    s[~on_outer] = length + (x[~on_outer, 0] - centre)
    return (s / (length + slit))[:, None]


def chi_square(columns: torch.Tensor, bins: int) -> float:
    """Pearson's statistic of the counts of points in a grid of ``bins`` cells per column."""
    cell = (columns * bins).long().clamp(0, bins - 1)
    index = (cell * bins ** torch.arange(cell.shape[1])).sum(dim=1)
    counts = torch.bincount(index, minlength=bins ** cell.shape[1]).double()
    expected = columns.shape[0] / bins ** cell.shape[1]
    return float(((counts - expected) ** 2).sum() / expected)


def occupied(columns: torch.Tensor, bins: int = 32) -> int:
    """How many cells of a grid of ``bins`` cells per column hold a point."""
    cell = (columns * bins).long().clamp(0, bins - 1)
    return len(torch.unique((cell * bins ** torch.arange(cell.shape[1])).sum(dim=1)))


UNIFORMITY_DOMAINS = {
    "box": pl.Box(3, -1.0, 2.0),
    "box-rectangular": RECTANGULAR,
    "spacetime-rectangular": pl.SpaceTime(pl.Box(2, low=(0.0, -1.0), high=(3.0, 1.0))),
    "ball2": pl.Ball(2, radius=1.5, center=0.5),
    "ball3": pl.Ball(3),
    "ball-off-diagonal": pl.Ball(2, radius=0.5, center=(1.0, -2.0)),
    "slit-box": pl.Slit(pl.Box(2, -1.0, 1.0)),
    "slit-ball": pl.Slit(pl.Ball(2, radius=2.0, center=1.0)),
    "spacetime-box": pl.SpaceTime(pl.Box(2), t0=0.5, t1=2.0),
    "spacetime-ball2": pl.SpaceTime(pl.Ball(2)),
    "spacetime-ball3": pl.SpaceTime(pl.Ball(3, radius=2.0), t0=-1.0, t1=1.0),
    "spacetime-slit": pl.SpaceTime(pl.Slit(pl.Ball(2))),
    "spacetime-mapless": pl.SpaceTime(Mapless(pl.Box(2, -1.0, 1.0))),
}
#: Pearson's statistic over K = 64 cells (1-D: 64 bins; pairs: 8 × 8), N_UNIFORM points. For
#: i.i.d. uniform points it is asymptotically χ² with ν = K − 1 = 63 degrees of freedom (mean
#: 63, sd √(2ν) ≈ 11; 256 points expected per cell make the approximation good), and
#: P(χ²_ν ≥ ν + 2√(νx) + 2x) ≤ e^{−x} (Laurent & Massart, Ann. Statist. 28 (2000), Lemma 1):
#: x = 20 gives 63 + 71 + 40 = 174 (mean + 10 sd), passed by uniform points except with
#: probability 2·10⁻⁹ per check, 4·10⁻⁷ over the 200 checks below (the largest seen: 100).
#: Sobol points stay far below (a smaller statistic than random points is their purpose).
#: The bugs it catches: t and x from two Sobol engines (8 of the 64 cells of (t, x₁) hold
#: points: χ² = 7·N) and the slit's choice correlated with the outer point (χ² of 455 and
#: 766 for these N and seeds).
N_UNIFORM = 16384
CHI2_BOUND = 63 + 2 * math.sqrt(63 * 20) + 2 * 20


def test_uniformity_covers_every_domain_class():
    classes = {
        c
        for c in vars(domains).values()
        if isinstance(c, type) and issubclass(c, pl.Domain) and not inspect.isabstract(c)
    } - {domains.CSG}  # rejection-sampled shapes: tests/test_shapes.py
    tested = {type(d) for d in UNIFORMITY_DOMAINS.values()}
    assert classes <= tested, f"add {classes - tested} to UNIFORMITY_DOMAINS"
    spaces = {type(d.space) for d in UNIFORMITY_DOMAINS.values() if isinstance(d, pl.SpaceTime)}
    assert spaces >= classes - {pl.SpaceTime}


@pytest.mark.parametrize("sampling", SAMPLINGS)
@pytest.mark.parametrize("name", list(UNIFORMITY_DOMAINS))
def test_samplers_are_uniform_in_measure(name, sampling):
    """Every sampler's points, mapped to unit coordinates, pass a χ² test of uniformity on
    every coordinate and every pair of coordinates (t included)."""
    domain = UNIFORMITY_DOMAINS[name]
    draws = {"interior": domain.sample_interior, "boundary": domain.sample_boundary}
    if isinstance(domain, pl.SpaceTime):
        draws["slice"] = functools.partial(domain.sample_slice, t=0.25)
    for where, draw in draws.items():
        x = draw(N_UNIFORM, generator=gen(7), dtype=torch.float64, sampling=sampling)
        u = unit_coordinates(domain, x, where)
        assert ((u >= 0) & (u <= 1)).all()
        columns = range(u.shape[1])
        for group in [(i,) for i in columns] + list(itertools.combinations(columns, 2)):
            stat = chi_square(u[:, list(group)], 64 if len(group) == 1 else 8)
            assert stat < CHI2_BOUND, f"{where}, columns {group}: χ² = {stat:.0f}"


#: Cells of a 32 × 32 grid that 1024 i.i.d. uniform points leave empty: mean m(1 − 1/m)^n and
#: variance m(m − 1)(1 − 2/m)^n + m(1 − 1/m)^n − m²(1 − 1/m)^{2n} (m = n = 1024), so they hold
#: 647.5 ± 10.0 cells; 10 sd below, 547, is a floor they pass with overwhelming probability.
IID_OCCUPIED_FLOOR = 547


@pytest.mark.parametrize("space", [pl.Box(2, -1.0, 1.0), pl.Ball(2)], ids=["box", "ball"])
def test_sobol_space_time_fills_time_and_space_jointly(space):
    """Regression: t and x came from two scrambled Sobol engines, whose leading digits (of the
    first coordinate of each) are invertible functions of the same low digits of the point's
    index — 1024 points held 32 of the 1024 cells of a 32 × 32 grid over (t, x₁), where
    (x₁, x₂) held all 1024: training on a curve in space-time. Now (t, x) is one Sobol point
    and (t, x₁), its first two coordinates, a (0, 10, 2)-net: one point in every cell. For
    the box (t, x₂), coordinates 1 and 3, is a net of t-value 1 (two points in each cell of
    16 × 64, hence 512 of the 32 × 32) and (x₁, x₂), coordinates 2 and 3, fills all 1024; for
    the ball (t, r², angle) the angle is no Sobol coordinate and its pairs hold about 700."""
    domain = pl.SpaceTime(space, t0=0.5, t1=2.0)
    x = domain.sample_interior(1024, generator=gen(), dtype=torch.float64, sampling="sobol")
    u = unit_coordinates(domain, x, "interior")  # (t, x₁, x₂) or (t, r², angle), in [0, 1]
    assert occupied(u[:, [0, 1]]) >= 1000  # 32 before the fix, 1024 now
    for pair in ([0, 2], [1, 2]):
        assert occupied(u[:, pair]) >= 512
    if isinstance(space, pl.Box):
        assert occupied(u[:, [1, 2]]) == 1024


def test_sobol_space_time_over_a_domain_without_a_cube_map_pairs_times_at_random():
    """A space that samples through its own methods cannot share the engine of the times: its
    Sobol points are paired with the times in a random order, which makes t independent of x
    (then (t, x₁) holds as many cells as i.i.d. points do, about 647 of 1024; without the
    shuffle, 32 as above)."""
    domain = pl.SpaceTime(Mapless(pl.Box(2, -1.0, 1.0)), t0=0.5, t1=2.0)
    for seed in range(3):
        x = domain.sample_interior(1024, generator=gen(seed), dtype=torch.float64, sampling="sobol")
        u = unit_coordinates(domain, x, "interior")
        assert occupied(u[:, [0, 1]]) >= IID_OCCUPIED_FLOOR  # 674, 661, 656
        assert occupied(u[:, [1, 2]]) == 1024  # the space's own Sobol points, as before


def test_a_box_with_one_interval_per_axis():
    box = pl.Box(2, low=(-0.5, -0.5), high=(1.0, 1.5))
    assert not box.cube and box.sides == (1.5, 2.0)
    assert box.volume == 3.0 and box.surface_to_volume == pytest.approx(7 / 3)
    assert (box.face_area(0), box.face_area(1)) == (2.0, 1.5)
    low, high = box.bounds()
    assert low.tolist() == [-0.5, -0.5] and high.tolist() == [1.0, 1.5]
    # equal entries are one number: the box is the cube, equal and hashed alike
    assert pl.Box(2, low=(0, 0), high=(1.0, 1.0)) == pl.Box(2)
    assert pl.Box(2, low=(0, 0), high=1.0).cube
    # the boundary: each face in proportion to its length (7 in all), normals outward
    x = box.sample_boundary(70000, generator=gen(3), dtype=torch.float64)
    on = torch.stack([x[:, 0] == -0.5, x[:, 0] == 1.0, x[:, 1] == -0.5, x[:, 1] == 1.5])
    expected = torch.tensor([2.0, 2.0, 1.5, 1.5], dtype=torch.float64) / 7
    sd = (expected * (1 - expected) / len(x)).sqrt()
    assert ((on.double().mean(dim=1) - expected).abs() < 5 * sd).all()
    top = box.normals(x[on[3]])
    assert (top == torch.tensor([0.0, 1.0], dtype=torch.float64)).all()
    assert box.on_boundary(x).all() and box.distance(x).abs().max() < 1e-12
    y = box.sample_interior(1000, generator=gen(4), dtype=torch.float64)
    assert box.contains(y).all() and not box.on_boundary(y).any() and (box.distance(y) > 0).all()
    # a face is a part: its points lie on it, its measure is its length
    from pinnlab import parts

    z, normals = parts.sample(box, box.face(1, "high"), 500, generator=gen(5))
    assert (z[:, 1] == 1.5).all() and (z[:, 0] >= -0.5).all() and (z[:, 0] <= 1.0).all()
    assert (normals == torch.tensor([0.0, 1.0])).all()
    assert parts.measure(box, box.face(0, "low")) == 2.0


def test_a_rectangular_box_extension_reads_the_data_on_its_faces():
    box = pl.Box(2, low=(-0.5, -0.5), high=(1.0, 1.5))

    def data(x):
        return x[:, 0] ** 2 + torch.sin(x[:, 1])

    lift = box.extension(data)
    x = box.sample_boundary(256, generator=gen(6), dtype=torch.float64)
    torch.testing.assert_close(lift(x), data(x))


def test_a_box_needs_one_interval_per_axis_and_walls_need_a_cube():
    with pytest.raises(pl.ParameterError, match="low has 2 entries, one per axis"):
        pl.Box(3, low=(0.0, 0.0))
    with pytest.raises(pl.ParameterError, match="high > low"):
        pl.Box(2, low=(0.0, 1.0), high=(1.0, 1.0))
    with pytest.raises(pl.ParameterError, match="a square"):
        pl.Slit(pl.Box(2, low=(0.0, 0.0), high=(1.0, 2.0)))


RECTANGLE = pl.Box(2, low=(-0.5, -0.5), high=(1.0, 1.5))


@dataclass(frozen=True)
class Rectangle(pl.Problem):
    """Δu = 0 on [−0.5, 1] × [−0.5, 1.5], u = sin x · eʸ: data on three faces, the flux on the
    fourth (a problem of this test only)."""

    id = "test-rectangle"

    def exact(self, x):
        return torch.sin(x[:, 0]) * torch.exp(x[:, 1])

    def strong_form(self):
        box = RECTANGLE
        return pl.StrongForm(
            domain=box,
            residual=lambda d: d.laplacian,
            conditions={
                "walls": pl.Dirichlet(self.exact, on=box.face(0, "low") | box.face(0, "high")),
                "flux": pl.Neumann(self.exact, on=box.face(1, "high")),
                "bottom": pl.Dirichlet(self.exact, on=box.face(1, "low")),
            },
        )


def test_a_pinn_trains_on_a_rectangle_with_a_condition_on_one_face():
    x = RECTANGLE.sample_interior(64, generator=gen(8), dtype=torch.float64)
    d = pl.Derivatives(Rectangle().exact, x, method="reverse")
    assert d.laplacian.abs().max() < 1e-12  # the truth solves the equation (∂u/∂y = u)
    solution = pl.solve(
        Rectangle(),
        net={"width": 8, "depth": 2},
        solver={"n_interior": 64, "n_boundary": 16},
        train={"optimizer": "adam", "steps": 3, "lbfgs_steps": 0, "eval_every": 3},
    )
    assert math.isfinite(solution.metrics["rel_l2"])
    assert {"loss.walls", "loss.flux", "loss.bottom"} <= set(solution.history)


def test_a_ball_centred_off_the_diagonal():
    ball = pl.Ball(2, radius=0.5, center=(1.0, -2.0))
    assert ball.centers == (1.0, -2.0) and pl.Ball(2, center=(3, 3)) == pl.Ball(2, center=3.0)
    low, high = ball.bounds()
    assert low.tolist() == [0.5, -2.5] and high.tolist() == [1.5, -1.5]
    x = ball.sample_boundary(256, generator=gen(1), dtype=torch.float64)
    c = torch.tensor([1.0, -2.0], dtype=torch.float64)
    torch.testing.assert_close((x - c).norm(dim=1), torch.full((256,), 0.5, dtype=torch.float64))
    torch.testing.assert_close(ball.normals(x), (x - c) / 0.5)
    assert ball.on_boundary(x).all() and ball.distance(x).abs().max() < 1e-12
    y = ball.sample_interior(256, generator=gen(2), dtype=torch.float64)
    assert ball.contains(y).all() and not ball.contains(-y).any()
    torch.testing.assert_close(ball.distance(y), 1 - (y - c).square().sum(dim=1) / 0.25)
    from pinnlab.derivatives.jets import Jet

    jet = ball.distance_jet(Jet.seed(y, None, None, 2))  # the hard constraints' φ
    torch.testing.assert_close(jet.value.reshape(-1), ball.distance(y))
    torch.testing.assert_close(jet.J.reshape(256, 2), -2 * (y - c) / 0.25)
    torch.testing.assert_close(jet.lap.reshape(-1), torch.full((256,), -16.0, dtype=torch.float64))
    with pytest.raises(pl.ParameterError, match="center has 3 entries"):
        pl.Ball(2, center=(0.0, 0.0, 0.0))
    with pytest.raises(pl.ParameterError, match="centred on the diagonal"):
        pl.Slit(ball)
