"""Parts of the boundary: each samples uniformly in surface measure, with outward unit
normals, its measure is right, and a part that does not exist is refused by name."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from test_domains import CHI2_BOUND, N_UNIFORM, chi_square

import pinnlab as pl
from pinnlab import parts
from pinnlab.domains import SAMPLINGS, part_of


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def draw(domain, part, n=N_UNIFORM, sampling="uniform", seed=7):
    return parts.sample(
        domain, part_of(part), n, generator=gen(seed), dtype=torch.float64, sampling=sampling
    )


def assert_uniform(u: torch.Tensor) -> None:
    """χ² of every column and pair of columns of unit coordinates (see test_domains)."""
    columns = range(u.shape[1])
    for group in [(i,) for i in columns] + list(itertools.combinations(columns, 2)):
        stat = chi_square(u[:, list(group)], 64 if len(group) == 1 else 8)
        assert stat < CHI2_BOUND, f"columns {group}: χ² = {stat:.0f}"


def binomial_ok(count: int, n: int, p: float) -> bool:
    """Within 6 standard deviations of n·p."""
    return abs(count - n * p) <= 6 * math.sqrt(n * p * (1 - p)) + 1


@pytest.mark.parametrize("sampling", SAMPLINGS)
@pytest.mark.parametrize(("axis", "side"), [(0, "low"), (2, "high")])
def test_a_face_is_sampled_uniformly_with_its_normal(axis, side, sampling):
    box = pl.Box(3, -1.0, 2.0)
    x, normal = draw(box, box.face(axis, side), sampling=sampling)
    value = box.low if side == "low" else box.high
    assert (x[:, axis] == value).all()
    free = [i for i in range(3) if i != axis]
    assert_uniform((x[:, free] - box.low) / (box.high - box.low))
    expected = torch.zeros(3, dtype=torch.float64)
    expected[axis] = -1.0 if side == "low" else 1.0
    torch.testing.assert_close(normal, expected.expand_as(x))
    assert parts.measure(box, box.face(axis, side)) == pytest.approx(9.0)


def test_a_face_of_a_csg_shape_is_the_part_of_its_box_face_on_the_shape():
    """The unit square minus the disk of radius ¼ about the origin: its face x = 0 is the
    segment y ∈ [¼, 1], uniform, with normal −e₀ and measure ¾; a face that the shape covers
    is refused as empty."""
    box = pl.Box(2)
    shape = box - pl.Ball(2, radius=0.25)
    face = box.face(0, "low")
    x, normal = draw(shape, face)
    assert (x[:, 0] == 0.0).all() and (x[:, 1] >= 0.25 - 1e-9).all()
    assert_uniform(((x[:, 1:] - 0.25) / 0.75).clamp(0, 1 - 1e-12))
    torch.testing.assert_close(normal, torch.tensor([-1.0, 0.0]).double().expand_as(x))
    assert parts.measure(shape, face) == pytest.approx(0.75, abs=0.03)
    with pytest.raises(pl.ParameterError, match="part is empty"):
        parts.check(box | pl.Ball(2, radius=2.0), face, "walls")
    with pytest.raises(pl.ParameterError, match="faces are parts of a Box"):
        parts.check(pl.Ball(2) - pl.Ball(2, radius=0.5), face, "walls")


def test_boundary_normals_point_outward_with_unit_length():
    for domain in (pl.Box(3, -1.0, 2.0), pl.Ball(3, radius=1.5, center=0.5)):
        x, normal = draw(domain, "boundary", n=2000)
        torch.testing.assert_close(normal.norm(dim=1), torch.ones(2000, dtype=torch.float64))
        outside, inside = x + 1e-3 * normal, x - 1e-3 * normal
        assert (domain.distance(outside) <= 0).all() or isinstance(domain, pl.Box)
        assert (domain.distance(inside) > 0).all()
        if isinstance(domain, pl.Box):  # the normal is ± the axis of the face the point is on
            on = (x == domain.low) | (x == domain.high)
            assert (normal.abs() == on.to(x.dtype)).all()


def test_a_union_draws_each_part_in_proportion_to_its_measure():
    box = pl.Box(2, 0.0, 1.0)
    union = box.face(0, "low") | box.face(1, "high")
    x, normal = draw(box, union)
    on_left = x[:, 0] == 0.0
    assert binomial_ok(int(on_left.sum()), len(x), 0.5)
    assert parts.measure(box, union) == pytest.approx(2.0)
    assert (normal[on_left] == torch.tensor([-1.0, 0.0], dtype=torch.float64)).all()
    assert_uniform(x[on_left][:, 1:])


def test_a_predicate_keeps_the_boundary_points_where_it_holds():
    """On ∂[0, 1]² with x₀ > ½: the face x₀ = 1 (length 1) and two half faces (½ each)."""
    box = pl.Box(2, 0.0, 1.0)
    part = pl.where(lambda x: x[:, 0] > 0.5)
    x, _ = draw(box, part)
    assert (x[:, 0] > 0.5).all()
    assert binomial_ok(int((x[:, 0] == 1.0).sum()), len(x), 0.5)
    assert binomial_ok(int((x[:, 1] == 0.0).sum()), len(x), 0.25)
    assert parts.measure(box, part) == pytest.approx(2.0, abs=0.1)


def test_space_time_parts_sample_time_and_space_jointly_uniformly():
    domain = pl.SpaceTime(pl.Box(2), t0=0.0, t1=2.0)
    face = pl.Box(2).face(1, "low")
    for sampling in SAMPLINGS:
        x, normal = draw(domain, face, sampling=sampling)
        assert (x[:, 2] == 0.0).all() and (normal[:, 2] == -1.0).all() and (normal[:, 0] == 0).all()
        assert_uniform(torch.stack([x[:, 0] / 2.0, x[:, 1]], dim=1))
    x, normal = draw(domain, "initial", n=100)
    assert (x[:, 0] == 0.0).all() and (normal[:, 0] == -1.0).all()
    x, normal = draw(domain, "final", n=100)
    assert (x[:, 0] == 2.0).all() and (normal[:, 0] == 1.0).all()
    assert parts.measure(domain, face) == pytest.approx(2.0)
    assert parts.measure(domain, "initial") == pytest.approx(1.0)


def test_parts_that_do_not_exist_are_refused_by_name():
    box = pl.Box(2)

    def form(on, domain=box):
        return pl.StrongForm(
            domain=domain,
            residual=lambda d: d.u,
            conditions={"c": pl.Dirichlet(lambda x: 0 * x[:, 0], on=on)},
        )

    with pytest.raises(pl.ParameterError, match=r"face\(2, 'low'\): the box has axes 0 … 1"):
        box.face(2, "low")
    with pytest.raises(pl.ParameterError, match=r"condition 'c' on face.*faces are parts of a Box"):
        form(pl.Box(3).face(0, "low"), pl.Ball(2))
    with pytest.raises(pl.ParameterError, match=r"condition 'c' on face\(2, 'low'\).*axis 2"):
        form(pl.Box(3).face(2, "low"))
    with pytest.raises(pl.ParameterError, match="holds at none of 4096 points"):
        form(pl.where(lambda x: x[:, 0] > 5.0))
    with pytest.raises(pl.ParameterError, match="initial slice exists only on a SpaceTime"):
        form("initial")
    with pytest.raises(pl.ParameterError, match="Did you mean 'boundary'"):
        pl.Dirichlet(lambda x: x, on="bondary")
    with pytest.raises(pl.ParameterError, match="must return a bool tensor of shape"):
        form(pl.where(lambda x: x[:, :1] > 0.5))


def test_a_condition_on_a_part_without_normals_is_refused_when_it_needs_them(tmp_path):
    from pinnlab.config import validate
    from pinnlab.solvers.pinn import PINN, PINNSettings

    class SlitFlux(pl.Problem):
        id = ""

        def strong_form(self):
            return pl.StrongForm(
                domain=pl.Slit(pl.Box(2, -1.0, 1.0)),
                residual=lambda d: d.laplacian,
                conditions={"flux": pl.Neumann(lambda x: 0 * x[:, 0])},
            )

    solver = PINN(SlitFlux(), validate(PINNSettings, {}), dtype=torch.float32)
    model = solver.bind(torch.nn.Linear(2, 1))
    with pytest.raises(pl.ConfigError, match="'flux' \\(Neumann\\) needs the outward normal"):
        solver.batch(model, gen())
