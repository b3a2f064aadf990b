"""Domains: points inside or on the boundary, shapes, dtypes, seeds, distance functions."""

from __future__ import annotations

import math
import re

import pytest
import torch

import pinnlab as pl
from pinnlab.domains import SAMPLINGS

DTYPES = [torch.float32, torch.float64]


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def tol(dtype) -> float:
    return 1e-5 if dtype == torch.float32 else 1e-12


DOMAINS = {
    "box": pl.Box(3, -1.0, 2.0),
    "ball": pl.Ball(4, radius=1.5, center=0.5),
    "spacetime-box": pl.SpaceTime(pl.Box(2), t0=0.5, t1=2.0),
    "spacetime-ball": pl.SpaceTime(pl.Ball(3), t0=0.0, t1=1.0),
}


def inside(domain, x, dtype) -> torch.Tensor:
    """Per point: in the closed domain (up to rounding)."""
    if isinstance(domain, pl.Box):
        return ((x >= domain.low) & (x <= domain.high)).all(dim=1)
    if isinstance(domain, pl.Ball):
        r = (x - domain.center).norm(dim=1)
        return r <= domain.radius * (1 + tol(dtype))
    t = x[:, 0]
    in_time = (t >= domain.t0) & (t <= domain.t1)
    return in_time & inside(domain.space, x[:, 1:], dtype)


def on_boundary(domain, x, dtype) -> torch.Tensor:
    """Per point: on the (spatial, lateral) boundary."""
    if isinstance(domain, pl.Box):
        return ((x == domain.low) | (x == domain.high)).any(dim=1)
    if isinstance(domain, pl.Ball):
        r = (x - domain.center).norm(dim=1)
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
