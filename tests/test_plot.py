"""Pictures of a solution (`pinnlab plot`, `Solution.plot`): every kind renders a non-blank PNG
for 1-d, 2-d, space-time and 100-d problems and for inverse problems; bad input is a clear
error (exit status 2 on the command line)."""

from __future__ import annotations

import math
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure
from matplotlib.image import imread

import pinnlab as pl
from pinnlab.cli import main, parser
from pinnlab.plot import KINDS, default_out

TRAIN = {"optimizer": "adam", "steps": 2, "lbfgs_steps": 0, "eval_every": 1, "checkpoint_every": 0}
NET = {"width": 8, "depth": 1}


def train(problem, path: Path | None = None, **kw) -> pl.Solution:
    kw.setdefault("train", TRAIN)
    kw.setdefault("net", NET)
    kw.setdefault("device", "cpu")
    return pl.solve(problem, out=path, **kw)


def check_png(path: Path) -> None:
    """A written, reasonably large, not blank PNG."""
    assert path.exists(), path
    assert path.stat().st_size > 10_000, (path, path.stat().st_size)
    pixels = imread(path)
    assert pixels.ndim == 3 and min(pixels.shape[:2]) > 200
    assert pixels[..., :3].std() > 0.05, (path, pixels.std())


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Tiny trained solutions, saved: name → path of the .h5 file."""
    folder = tmp_path_factory.mktemp("plot_runs")
    specs = {
        "d1": ("poisson-sine", {"dim": 1}),
        "d2": ("poisson-sine", {"dim": 2}),
        "heat": ("heat-norm", {"dim": 1}),
        "heat2": ("heat-norm", {"dim": 2}),
        "d100": ("poisson-sine", {"dim": 100}),
        "kappa": ("poisson-kappa", {"dim": 2}),
    }
    out = {}
    for name, (problem, params) in specs.items():
        out[name] = folder / f"{name}.h5"
        train(problem, out[name], **params)
    return out


@pytest.fixture(scope="module")
def loaded(runs):
    """The solutions, loaded back from their files (as `pinnlab plot` does)."""
    return {name: pl.load(path) for name, path in runs.items()}


# --- every kind, every shape of problem -----------------------------------------------------
@pytest.mark.parametrize("name", ["d1", "d2", "heat", "d100"])
@pytest.mark.parametrize("what", ["solution", "error", "residual", "history"])
def test_every_kind_renders(loaded, tmp_path, name, what):
    solution = loaded[name]
    out = tmp_path / f"{name}-{what}.png"
    fig = solution.plot(what, out=out, points=60 if what != "history" else None)
    assert isinstance(fig, Figure)
    check_png(out)
    title = fig.get_suptitle()
    assert str(solution.problem) in title.replace("\n", " ") or solution.problem.id in title
    assert "pinn" in title and "rel_l2 = " in title
    labelled = [ax for ax in fig.axes if ax.get_xlabel()]
    assert labelled, "axes without labels"


def test_a_one_dimensional_solution_is_a_line_beside_the_truth(loaded):
    fig = loaded["d1"].plot("solution")
    ax = fig.axes[0]
    lines = ax.get_lines()
    assert [line.get_linestyle() for line in lines[:2]] == ["-", "--"]
    assert len(lines[0].get_xdata()) == 1000
    assert ax.get_xlabel() == "x₀" and ax.get_ylabel() == "u"
    x = lines[1].get_xdata()
    np.testing.assert_allclose(lines[1].get_ydata(), np.sin(np.pi * x / 2), atol=1e-6)


def test_a_two_dimensional_solution_is_a_heat_map_with_a_colour_bar(loaded):
    fig = loaded["d2"].plot("solution", points=40)
    maps = [ax for ax in fig.axes if ax.images]
    assert len(maps) == 2  # u and u*
    assert maps[0].images[0].get_array().shape == (40, 40)
    assert len(fig.axes) == 4  # each with its colour bar
    assert (maps[0].get_xlabel(), maps[0].get_ylabel()) == ("x₀", "x₁")


def test_a_space_time_solution_is_an_x_t_map_with_t_horizontal(loaded):
    fig = loaded["heat"].plot("error", points=30)
    ax = next(ax for ax in fig.axes if ax.images)
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("t", "x₀")
    fig = loaded["heat2"].plot("solution", slice="2,0", points=30)  # t still horizontal
    ax = next(ax for ax in fig.axes if ax.images)
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("t", "x₁")


def test_snapshots_at_times(loaded, tmp_path):
    out = tmp_path / "snap.png"
    fig = loaded["heat"].plot("solution", at="t=0.25,0.5,0.75", out=out)
    check_png(out)
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == ["t = 0.25", "t = 0.5", "t = 0.75"]
    x = fig.axes[1].get_lines()[1].get_xdata()
    np.testing.assert_allclose(fig.axes[1].get_lines()[1].get_ydata(), x**2 + 1.0, atol=1e-6)
    out = tmp_path / "snap2.png"
    fig = loaded["heat2"].plot("residual", at=0.5, points=40, out=out)  # a space slice at t
    check_png(out)
    ax = next(ax for ax in fig.axes if ax.images)
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("x₀", "x₁")


def test_a_hundred_dimensional_slice(loaded, tmp_path):
    out = tmp_path / "d100.png"
    fig = loaded["d100"].plot("error", slice=(3, 7), points=40, out=out)
    check_png(out)
    ax = next(ax for ax in fig.axes if ax.images)
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("x₃", "x₇")
    assert "the others = 0.5 (the centre)" in fig.get_suptitle().replace("\n", " ")
    fig = loaded["d100"].plot("solution", points=20)  # default: x₀ and x₁
    assert "x₂ … x₉₉ = 0.5 (the centre)" in fig.get_suptitle().replace("\n", " ")


def test_the_command_line_writes_the_figure(runs, capsys, tmp_path):
    assert main(["plot", str(runs["d2"]), "--points", "50"]) == 0
    check_png(default_out(runs["d2"], "solution"))
    assert default_out(runs["d2"], "solution").name == "d2-solution.png"
    out = tmp_path / "h.png"
    assert (
        main(["plot", str(runs["heat"]), "--what", "error", "--at", "t=0.5", "--out", str(out)])
        == 0
    )
    check_png(out)
    out = tmp_path / "s.png"
    argv = ["plot", str(runs["d100"]), "--what", "residual", "--slice", "0,99", "--points", "30"]
    assert main([*argv, "--out", str(out)]) == 0
    check_png(out)
    assert f"wrote {out}" in capsys.readouterr().out


def test_the_command_lines_choices_are_the_kinds():
    sub = next(a for a in parser()._actions if a.dest == "command")
    what = next(a for a in sub.choices["plot"]._actions if a.dest == "what")
    assert tuple(what.choices) == KINDS


# --- inverse problems -----------------------------------------------------------------------
def test_the_unknowns_of_an_inverse_problem(runs, loaded, tmp_path):
    out = tmp_path / "kappa.png"
    assert main(["plot", str(runs["kappa"]), "--what", "unknowns", "--out", str(out)]) == 0
    check_png(out)
    fig = loaded["kappa"].plot("unknowns")
    ax = fig.axes[0]
    learnt, exact = ax.get_lines()[:2]
    np.testing.assert_allclose(learnt.get_ydata(), loaded["kappa"].history["unknown.kappa"])
    assert exact.get_ydata()[0] == 2.0  # the declared truth, pl.Unknown("kappa", exact=2.0)
    assert ax.get_xlabel() == "steps" and ax.get_ylabel() == "kappa"


@dataclass(frozen=True)
class Plate(pl.Problem):
    """−∇·(κ∇u) = f on [0, 1]^d, κ(x) = 1 + x₀ unknown, u = Σᵢ sin(π xᵢ) measured."""

    id = "test-plate"
    dim: int = 2

    def exact(self, x):
        return torch.sin(math.pi * x).sum(dim=1)

    def source(self, x):
        kappa = 1 + x[:, 0]
        lap = -(math.pi**2) * torch.sin(math.pi * x).sum(dim=1)
        return -kappa * lap - math.pi * torch.cos(math.pi * x[:, 0])

    def strong_form(self):
        def residual(d):
            kappa = d.field("kappa")
            return -kappa.u * d.laplacian - kappa.grad[:, 0] * d.grad[:, 0] - self.source(d.x)

        x = pl.Box(self.dim).sample_interior(
            50, generator=torch.Generator().manual_seed(0), dtype=torch.float64
        )
        return pl.StrongForm(
            domain=pl.Box(self.dim),
            residual=residual,
            conditions={"boundary": pl.Dirichlet(self.exact)},
            unknowns=[
                pl.UnknownField("kappa", positive=True, width=8, exact=lambda y: 1 + y[:, 0])
            ],
            observations=[pl.Observations.synthetic(x, self.exact)],
        )


@pytest.mark.parametrize("dim", [1, 2])
def test_an_unknown_field_is_drawn_beside_its_truth(tmp_path, dim):
    solution = train(Plate(dim=dim), solver={"n_interior": 32, "n_boundary": 8})
    out = tmp_path / "field.png"
    fig = solution.plot("unknowns", out=out, points=40)
    check_png(out)
    if dim == 1:
        exact = fig.axes[0].get_lines()[1]
        np.testing.assert_allclose(exact.get_ydata(), 1 + exact.get_xdata(), atol=1e-6)
    else:
        maps = [ax for ax in fig.axes if ax.images]
        assert len(maps) == 2
        truth = maps[1].images[0].get_array()
        np.testing.assert_allclose(truth[:, -1], 2.0, atol=1e-6)  # κ* = 1 + x₀ at x₀ = 1


# --- a domain that is not a box, a system with named residuals -------------------------------
def test_points_outside_a_ball_are_masked_and_named_residuals_drawn(user_dir, tmp_path):
    solution = train(
        "test-pair", problems_dirs=[user_dir], dim=2, solver={"n_interior": 32, "n_boundary": 8}
    )
    out = tmp_path / "pair.png"
    fig = solution.plot("residual", points=41, out=out)
    check_png(out)
    maps = [ax for ax in fig.axes if ax.images]
    assert [ax.get_title() for ax in maps] == ["first", "second"]
    values = maps[0].images[0].get_array()
    assert values.mask[0, 0] and values.mask[-1, -1] and not values.mask[20, 20]
    fig = solution.plot("solution", points=41)  # two outputs, each beside its truth
    assert len([ax for ax in fig.axes if ax.images]) == 4


# --- bad input ------------------------------------------------------------------------------
def error_of(capsys, argv) -> str:
    assert main(argv) == 2
    return capsys.readouterr().err


@pytest.mark.parametrize(
    "name, options, message",
    [
        ("d2", ["--slice", "0,2"], "column 2 is out of range"),
        ("d2", ["--slice", "1,1"], "two different input columns"),
        ("d2", ["--slice", "x,y"], "two input columns as A,B"),
        ("d1", ["--slice", "0,1"], "no slice to choose"),
        ("d2", ["--at", "t=0.5"], "not time-dependent"),
        ("heat", ["--at", "t=1.5"], r"outside \[0, 1\]"),
        ("heat", ["--at", "t=soon"], "expects t=VALUE"),
        ("heat2", ["--at", "t=0.5", "--slice", "0,1"], "column 0 is t, which --at fixes"),
        ("d2", ["--what", "unknowns"], "forward problem"),
        ("d2", ["--what", "history", "--slice", "0,1"], "does not apply"),
        ("kappa", ["--what", "unknowns", "--slice", "0,1"], "applies to unknown fields"),
    ],
)
def test_bad_input_is_a_one_line_error(runs, capsys, name, options, message):
    import re

    err = error_of(capsys, ["plot", str(runs[name]), *options])
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1
    assert re.search(message, err), err


def test_the_errors_from_python(loaded):
    with pytest.raises(pl.ShapeError, match="out of range"):
        loaded["d2"].plot("error", slice=(0, 5))
    with pytest.raises(pl.ShapeError, match="two different input columns"):
        loaded["d100"].plot(slice=[4, 4])
    with pytest.raises(pl.ConfigError, match="not time-dependent"):
        loaded["d1"].plot(at=0.5)
    with pytest.raises(pl.ConfigError, match=r"t=-1 lies outside \[0, 1\]"):
        loaded["heat"].plot("residual", at=[0.5, -1.0])
    with pytest.raises(pl.ConfigError, match="points must be ≥ 2"):
        loaded["d2"].plot(points=1)


def test_an_unknown_kind(runs, loaded, capsys):
    with pytest.raises(SystemExit) as e:
        main(["plot", str(runs["d2"]), "--what", "eror"])
    assert e.value.code == 2
    assert "invalid choice" in capsys.readouterr().err
    with pytest.raises(pl.ConfigError, match="Did you mean 'error'"):
        loaded["d2"].plot("eror")


@dataclass(frozen=True)
class NoTruth(pl.Problem):
    """−Δu = 1 on [0, 1]^d, u = 0 on the boundary: no closed form."""

    id = "test-no-truth"
    dim: int = 2

    def strong_form(self):
        return pl.StrongForm(
            domain=pl.Box(self.dim),
            residual=lambda d: -d.laplacian - 1.0,
            conditions={"boundary": pl.Dirichlet(lambda y: torch.zeros_like(y[:, 0]))},
        )


def test_a_problem_without_truth(tmp_path):
    solution = train(NoTruth(), solver={"n_interior": 32, "n_boundary": 8})
    with pytest.raises(pl.ConfigError, match="has no exact solution"):
        solution.plot("error")
    out = tmp_path / "u.png"
    fig = solution.plot("solution", points=40, out=out)  # u alone
    check_png(out)
    assert len([ax for ax in fig.axes if ax.images]) == 1
    solution.plot("residual", points=40)  # the equation needs no truth


def test_a_method_without_a_strong_residual(tmp_path):
    solution = train("poisson-sine", method="deep-ritz", dim=2)
    with pytest.raises(pl.FormError, match="deep-ritz has no strong-form residual"):
        solution.plot("residual")
    solution.plot("error", points=30)


def test_importing_pinnlab_does_not_import_matplotlib():
    code = "import sys, pinnlab, pinnlab.cli, pinnlab.plot; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
