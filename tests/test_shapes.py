"""Polygons and constructive solid geometry: measures, normals, parts, and samplers that are
uniform (χ² tests against each cell's share of the shape, not only "inside")."""

from __future__ import annotations

import math

import pytest
import torch
from test_domains import CHI2_BOUND, N_UNIFORM, chi_square

import pinnlab as pl
from pinnlab import parts
from pinnlab.domains import SAMPLINGS
from pinnlab.shapes import Polygon

L_SHAPE = Polygon(((0, 0), (2, 0), (2, 1), (1, 1), (1, 2), (0, 2)))
SHAPES = {
    "l-shape": L_SHAPE,
    "union": pl.Box(2) | pl.Box(2, 0.5, 1.5),
    "difference": pl.Box(2) - pl.Ball(2, radius=0.25, center=0.5),
    "intersection": pl.Box(2) & pl.Ball(2, radius=1.0, center=0.0),
    "polygon-minus-ball": L_SHAPE - pl.Ball(2, radius=0.3, center=0.5),
}
#: (area, boundary length) of each shape.
MEASURES = {
    "l-shape": (3.0, 8.0),
    "union": (1.75, 6.0),
    "difference": (1 - math.pi / 16, 4 + math.pi / 2),
    "intersection": (math.pi / 4, 2 + math.pi / 2),
    "polygon-minus-ball": (3.0 - math.pi * 0.09, 8.0 + 2 * math.pi * 0.3),
}


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def cell_shares(shape, bins: int) -> torch.Tensor:
    """Each cell's share of the shape's area, from a fine midpoint grid (400² points)."""
    low, high = shape.bounds()
    m = 400
    axis = [
        low[i] + (high[i] - low[i]) * (torch.arange(m, dtype=torch.float64) + 0.5) / m
        for i in range(2)
    ]
    grid = torch.stack(torch.meshgrid(*axis, indexing="ij"), dim=-1).reshape(-1, 2)
    inside = shape.contains(grid).double()
    cells = ((grid - low) / (high - low) * bins).long().clamp(0, bins - 1)
    index = cells[:, 0] * bins + cells[:, 1]
    counts = torch.bincount(index, weights=inside, minlength=bins * bins)
    return counts / counts.sum()


@pytest.mark.parametrize("sampling", SAMPLINGS)
@pytest.mark.parametrize("name", list(SHAPES))
def test_interior_points_are_uniform_in_area(name, sampling):
    shape = SHAPES[name]
    x = shape.sample_interior(N_UNIFORM, generator=gen(3), dtype=torch.float64, sampling=sampling)
    assert x.shape == (N_UNIFORM, 2) and shape.contains(x).all()
    bins = 8
    share = cell_shares(shape, bins)
    low, high = shape.bounds()
    cells = ((x - low) / (high - low) * bins).long().clamp(0, bins - 1)
    counts = torch.bincount(cells[:, 0] * bins + cells[:, 1], minlength=bins * bins).double()
    assert counts[share == 0].sum() == 0
    # Cells cut by the boundary hold a share estimated from the grid to about 1e-3 of it.
    used = share > 0.2 / bins**2
    expected = N_UNIFORM * share[used]
    stat = float(((counts[used] - expected) ** 2 / expected).sum())
    k = int(used.sum())
    bound = (k - 1) + 2 * math.sqrt((k - 1) * 20) + 40
    assert stat < bound, f"χ² = {stat:.0f} over {k} cells (bound {bound:.0f})"


@pytest.mark.parametrize("name", list(SHAPES))
def test_measures_and_normals(name):
    shape = SHAPES[name]
    area, length = MEASURES[name]
    assert shape.volume == pytest.approx(area, rel=1e-2)
    assert shape.surface_to_volume * shape.volume == pytest.approx(length, rel=2e-2)
    y, normal = parts.sample(shape, "boundary", 4000, generator=gen(1), dtype=torch.float64)
    assert shape.on_boundary(y).all()
    torch.testing.assert_close(normal.norm(dim=1), torch.ones(4000, dtype=torch.float64))
    eps = 1e-4
    away_from_corners = shape.contains(y + 0.5 * eps * normal.roll(1, dims=1))  # not on a corner
    outside = ~shape.contains(y + eps * normal)
    inside = shape.contains(y - eps * normal)
    assert outside[away_from_corners].float().mean() > 0.99 and inside.float().mean() > 0.99


def test_polygon_boundary_is_uniform_in_arc_length_and_edges_are_parts():
    for sampling in SAMPLINGS:
        y = L_SHAPE.sample_boundary(
            N_UNIFORM, generator=gen(5), dtype=torch.float64, sampling=sampling
        )
        a, b = L_SHAPE._edges
        lengths = (b - a).norm(dim=1)
        ends = torch.cumsum(lengths, 0)
        dist, edge = L_SHAPE._segment_distance(y)
        assert dist.min(dim=1).values.max() < 1e-12
        s = ends[edge] - lengths[edge] + (y - a[edge]).norm(dim=1)
        assert chi_square((s / ends[-1])[:, None], 64) < CHI2_BOUND
    y, normal = parts.sample(L_SHAPE, L_SHAPE.edge(2), 500, generator=gen(2), dtype=torch.float64)
    assert (y[:, 1] == 1.0).all() and (y[:, 0] >= 1.0).all()  # from (2, 1) to (1, 1)
    torch.testing.assert_close(
        normal, torch.tensor([[0.0, 1.0]], dtype=torch.float64).expand(500, 2)
    )
    assert parts.measure(L_SHAPE, L_SHAPE.edge(2) | L_SHAPE.edge(3)) == pytest.approx(2.0)


def test_bad_shapes_are_refused():
    with pytest.raises(pl.ParameterError, match="not simple: edges 0 and 2 cross"):
        Polygon(((0, 0), (3, 0), (3, 2), (1, -1), (0, 2)))
    with pytest.raises(pl.ParameterError, match="zero area"):
        Polygon(((0, 0), (1, 1), (2, 2)))
    with pytest.raises(pl.ParameterError, match="at least 3 vertices"):
        Polygon(((0, 0), (1, 1)))
    clockwise = Polygon(((0, 0), (0, 1), (1, 1), (1, 0)))
    assert clockwise.volume == pytest.approx(1.0)  # stored counter-clockwise
    with pytest.raises(pl.ParameterError, match="a 2-d and a 3-d"):
        pl.Box(2) | pl.Box(3)
    with pytest.raises(pl.ParameterError, match="edges 0 … 5"):
        L_SHAPE.edge(6)


def test_space_time_over_a_polygon_and_a_pinn_on_mixed_edges():
    domain = pl.SpaceTime(L_SHAPE, 0.0, 2.0)
    x = domain.sample_interior(2000, generator=gen(), dtype=torch.float64, sampling="sobol")
    assert L_SHAPE.contains(x[:, 1:]).all() and chi_square((x[:, :1] / 2.0), 16) < 80

    class LShape(pl.Problem):
        id = ""

        def strong_form(self):
            neumann = L_SHAPE.edge(2) | L_SHAPE.edge(3)
            dirichlet = L_SHAPE.edge(0) | L_SHAPE.edge(1) | L_SHAPE.edge(4) | L_SHAPE.edge(5)
            return pl.StrongForm(
                L_SHAPE,
                lambda d: -d.laplacian - 1.0,
                {
                    "wall": pl.Dirichlet(lambda y: 0 * y[:, 0], on=dirichlet),
                    "flux": pl.Neumann(lambda y: 0 * y[:, 0], on=neumann),
                },
            )

    from pinnlab.config import validate
    from pinnlab.networks import build_network
    from pinnlab.solvers.pinn import PINN, PINNSettings

    solver = PINN(
        LShape(), validate(PINNSettings, {"n_interior": 64, "n_boundary": 32}), dtype=torch.float64
    )
    model = solver.setup(build_network(2, 1, width=8, depth=2, generator=gen()).double(), gen())
    terms = solver.loss(model, solver.batch(model, gen()))
    assert set(terms) == {"residual", "wall", "flux"} and all(
        torch.isfinite(t) for t in terms.values()
    )
