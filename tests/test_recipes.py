"""The shipped recipe for a problem, method and dimension (issue 19): every recipe declares the
dimensions it serves, and `pinnlab solve ID --dim N` runs the one that serves N."""

from __future__ import annotations

import functools
import math
import re
import sys
from itertools import combinations

import pytest

import pinnlab as pl
import pinnlab.metrics
import pinnlab.solution
from pinnlab.cli import main
from pinnlab.config import read_yaml
from pinnlab.recipes import Recipe, asked_dim, declaration, find, recipes, select, selection
from pinnlab.registry import shipped_dir
from pinnlab.run import fingerprint, recipe
from pinnlab.solvers import SOLVERS

FILES = sorted(shipped_dir("configs").glob("runs/*.yaml"))
RECIPES = recipes()
#: The recipes `--dim` selects (a `select: false` variant is named with --recipe only).
SELECTED = [r for r in RECIPES if r.select]


def own_dim(r) -> int:
    """The dimension the recipe was tuned for (its problem.dim, else the problem's default)."""
    return r.dim if r.dim is not None else pl.catalogue()[r.problem].parameters()["dim"]


def dims_inside(r) -> list[int]:
    """Its own dimension, both ends of its range and (where the problem takes them) a point
    between; poisson-harmonic takes even dimensions only."""
    low, high = r.dims
    inside = {own_dim(r), low, high, round(math.sqrt(low * high))}
    if r.problem == "poisson-harmonic":
        inside = {d + d % 2 if d + d % 2 <= high else d - 1 for d in inside}
    return sorted(inside)


def params(dim) -> dict:
    return {} if dim is None else {"dim": dim}


# --- the declarations --------------------------------------------------------------------


def test_every_shipped_recipe_is_listed_and_declares_its_dimensions():
    assert {r.name for r in RECIPES} == {p.stem for p in FILES}
    for path in FILES:
        declared = declaration(path)
        assert declared is not None, f"{path.name} has no `recipe: {{dims: [low, high]}}`"
        assert declared.description, f"{path.name}: the declaration has no description"


@pytest.mark.parametrize("r", RECIPES, ids=lambda r: r.name)
def test_a_recipe_serves_its_own_dimension(r):
    assert r.problem in pl.catalogue() and r.method in SOLVERS
    assert r.serves(own_dim(r)), f"{r.name}: tuned at d = {own_dim(r)}, declared {r.dims}"


def test_the_ranges_of_one_problem_and_method_do_not_overlap():
    for a, b in combinations([r for r in RECIPES if r.select], 2):
        if (a.problem, a.method) == (b.problem, b.method):
            assert a.order[1] < b.order[0] or b.order[1] < a.order[0], (a.name, b.name)


def test_an_open_upper_end(tmp_path):
    path = tmp_path / "open-pinn.yaml"
    path.write_text("recipe: {dims: [5, null]}\nproblem: {id: poisson-sine, dim: 10}\n")
    assert declaration(path).dims == (5, None)
    r = Recipe("open-pinn", path, "poisson-sine", "pinn", 10, (5, None))
    assert r.serves(10**9) and not r.serves(4) and r.distance(10**9) == 0 and r.span == "d ≥ 5"


def test_the_declaration_is_the_files_own_and_no_part_of_the_config(tmp_path):
    ridge = shipped_dir("configs") / "runs" / "poisson-ridge-d10000-pinn.yaml"
    assert "recipe" not in read_yaml(ridge)  # nor its base's
    # --config with a recipe file, and a file extending one, validate; the child inherits
    # no declaration.
    assert pl.make_config(config=ridge).net.wrap["bottleneck"]["rank"] == 8
    child = tmp_path / "child.yaml"
    child.write_text(f"base: {ridge}\ntrain: {{steps: 3}}\n")
    assert pl.make_config(config=child).train.steps == 3
    assert declaration(child) is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("recipe: {dims: [10, 2]}", "low ≤ high"),
        ("recipe: {dims: [0, 2]}", "'recipe.dims.0'"),
        ("recipe: {dims: [1, 2], desc: x}", "unknown key 'recipe.desc'"),
        ("recipe: [1, 2]", "must be a mapping"),
    ],
)
def test_a_bad_declaration_names_the_file_and_the_key(tmp_path, text, message):
    path = tmp_path / "bad-pinn.yaml"
    path.write_text(f"{text}\nproblem: {{id: poisson-sine, dim: 2}}\n")
    with pytest.raises(pl.ConfigError, match=re.escape(message)) as e:
        declaration(path)
    assert str(path) in str(e.value)


# --- selection ---------------------------------------------------------------------------


@pytest.mark.parametrize("r", SELECTED, ids=lambda r: r.name)
def test_each_recipe_is_chosen_for_the_dimensions_it_serves(r):
    for dim in dims_inside(r):
        chosen = selection(r.problem, r.method, dim)
        assert chosen.name == r.name and not chosen.nearest, (dim, chosen.name)
        assert select(r.problem, r.method, dim) == r
        assert recipe(r.problem, r.method, dim) == r.path


@pytest.mark.parametrize("r", SELECTED, ids=lambda r: r.name)
def test_solve_with_a_recipes_own_dimension_is_that_recipe(r):
    """`pinnlab solve ID --dim N [--method M]` builds the config `--config` of the file gives:
    every figure a recipe produced is reproduced by the plain command."""
    asked = pl.make_config(r.problem, method=r.method, params=params(r.dim))
    assert asked == pl.make_config(config=r.path)
    assert fingerprint(asked) == fingerprint(pl.make_config(config=r.path))


@pytest.mark.parametrize("r", [r for r in RECIPES if not r.select], ids=lambda r: r.name)
def test_a_variant_is_named_and_never_selected(r):
    """A recipe declared ``select: false`` (other problem parameters at a dimension another
    recipe serves) is what ``--recipe NAME`` runs, and ``--dim`` never picks it."""
    assert find(r.name) == r
    for dim in dims_inside(r):
        assert selection(r.problem, r.method, dim).name != r.name


def test_without_a_dimension_the_problems_default_one():
    assert select("poisson-sine").name == "poisson-sine-pinn"  # default dim 2
    assert select("poisson-ridge").name == "poisson-ridge-d1000-pinn"  # default dim 1000
    assert select("harmonic-oscillator", "vmc").name == "harmonic-oscillator-vmc"
    assert select("nls").name == "nls-pinn"  # its recipe leaves dim at the default
    for r in SELECTED:
        default = pl.catalogue()[r.problem].parameters()["dim"]
        if own_dim(r) == default:
            assert select(r.problem, r.method).name == r.name


def test_issue_19_poisson_sine_at_d_1000_and_poisson_ridge_at_d_100000():
    cfg = pl.make_config("poisson-sine", params={"dim": 1000})
    chosen = select("poisson-sine", "pinn", 1000)
    assert isinstance(chosen, Recipe) and chosen.name == "poisson-sine-d1000-pinn"
    assert chosen.dims == (317, 3162) and chosen.path.name == "poisson-sine-d1000-pinn.yaml"
    assert cfg.net.wrap["additive"]["units"] == 16 and cfg.problem.params()["dim"] == 1000
    cfg = pl.make_config("poisson-ridge", method="pinn", params={"dim": 100000})
    assert select("poisson-ridge", "pinn", 100000).name == "poisson-ridge-d100000-pinn"
    assert cfg.net.wrap["bottleneck"] == {"rank": 8, "basis": "source"}
    assert cfg.train.optimizer == "adam+lbfgs"


def test_the_requested_dimension_replaces_the_recipes_own():
    cfg = pl.make_config("poisson-sine", params={"dim": 2000})
    assert cfg.problem.params()["dim"] == 2000 and "additive" in cfg.net.wrap  # the d = 1000 recipe


def test_the_dimension_may_come_from_any_layer():
    by_set = pl.make_config("poisson-sine", sets=["problem.dim=1000"])
    by_override = pl.make_config("poisson-sine", overrides={"problem": {"dim": 1000}})
    by_param = pl.make_config("poisson-sine", params={"dim": "1000"})  # --param dim=1000
    assert by_set == by_override == by_param == pl.make_config("poisson-sine", params={"dim": 1000})
    assert asked_dim({"dim": 3}, {"problem": {"dim": 4}}, ["problem.dim=5"]) == 5
    # A generator of --set assignments is read once only.
    assert pl.make_config("poisson-sine", sets=(s for s in ["train.steps=7"])).train.steps == 7


def test_outside_every_range_the_nearest_in_log_d():
    chosen = selection("poisson-sine", "pinn", 10**6)
    assert chosen.name == "poisson-sine-d100000-pinn" and chosen.nearest
    assert "no recipe serves d = 1000000, so the nearest is used" in chosen.message()
    chosen = selection("harmonic-oscillator", "vmc", 1000)
    assert chosen.name == "harmonic-oscillator-d100-vmc" and chosen.nearest
    assert select("poisson-slit", "deep-ritz", 3).name == "poisson-slit-deep-ritz"


def test_no_recipe_for_the_problem_and_method_means_the_defaults():
    assert select("poisson-sine", "deep-ritz", 10) is None
    chosen = selection("poisson-sine", "deep-ritz", 10)
    assert chosen.recipe is None and chosen.path is None
    assert "none shipped for poisson-sine with method deep-ritz" in chosen.message()
    assert "poisson-sine-d10-pinn (pinn, d 5..31)" in chosen.message()
    assert "nor with any other" in selection("heat-norm", "pinn", 5).message()
    defaults = pl.RunConfig.model_fields["net"].default_factory()
    assert pl.make_config("heat-norm", params={"dim": 5}).net == defaults


def test_find_by_name_and_unknown_names():
    assert find("poisson-ridge-d100000-pinn").dims == (31623, 316227)
    assert find("poisson-ridge-d100000-pinn.yaml").name == "poisson-ridge-d100000-pinn"
    with pytest.raises(pl.UnknownNameError, match="Did you mean 'poisson-ridge-d10000-pinn'"):
        find("poisson-ridge-d10000-pin")


# --- the command line --------------------------------------------------------------------


class Stop(pl.PinnlabError):
    pass


@pytest.fixture
def no_training(monkeypatch):
    """`pinnlab solve` up to the start of training: the run itself is replaced by an error."""

    def stop(*args, **kwargs):
        raise Stop("stopped before training")

    monkeypatch.setattr(sys.modules["pinnlab.run"], "run", stop)


def start_lines(capsys, argv) -> list[str]:
    assert main(["solve", *argv, "--quiet"]) == 2
    captured = capsys.readouterr()
    assert "stopped before training" in captured.err
    return captured.out.splitlines()


@pytest.mark.parametrize(
    ("argv", "name"),
    [
        (["poisson-sine", "--dim", "1000"], "poisson-sine-d1000-pinn"),
        (["poisson-ridge", "--dim", "100000"], "poisson-ridge-d100000-pinn"),
        (["poisson-sine"], "poisson-sine-pinn"),
        (["harmonic-oscillator", "--method", "vmc", "--dim", "50"], "harmonic-oscillator-d100-vmc"),
        (["poisson-sine", "--param", "dim=20"], "poisson-sine-d10-pinn"),
        (["poisson-sine", "--set", "problem.dim=20"], "poisson-sine-d10-pinn"),
    ],
)
def test_the_start_line_names_the_recipe(capsys, no_training, argv, name):
    lines = start_lines(capsys, argv)
    assert lines[0].startswith(f"recipe: {name} (configs/runs/{name}.yaml; serves d ")
    assert lines[1].startswith("solving ")


def test_the_start_line_without_a_recipe_and_for_the_nearest(capsys, no_training):
    line = start_lines(capsys, ["poisson-sine", "--method", "deep-ritz", "--dim", "3"])[0]
    assert line.startswith("recipe: none shipped for poisson-sine with method deep-ritz;")
    assert "the defaults are used (recipes for other methods: poisson-sine-pinn" in line
    line = start_lines(capsys, ["poisson-sine", "--dim", "400000"])[0]
    assert line.startswith("recipe: poisson-sine-d100000-pinn ") and "the nearest" in line
    # An explicit --config is no recipe: no line about one.
    config = shipped_dir("configs") / "runs" / "poisson-sine-pinn.yaml"
    assert start_lines(capsys, ["--config", str(config)])[0].startswith("solving ")


def test_recipe_by_name(capsys, no_training):
    lines = start_lines(capsys, ["--recipe", "poisson-sine-d100-pinn", "--dim", "2000"])
    assert lines[0].startswith("recipe: poisson-sine-d100-pinn (")
    assert "named by --recipe; d = 2000 lies outside its range" in lines[0]
    assert "'dim': 2000" in lines[1]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["--recipe", "poisson-sine-d100-pin"],
            "unknown recipe 'poisson-sine-d100-pin'. Did you mean 'poisson-sine-d100-pinn'?",
        ),
        (
            ["--recipe", "poisson-sine-pinn", "--config", "x.yaml"],
            "--recipe and --config both give the run's config",
        ),
        (["poisson-ball", "--recipe", "poisson-sine-pinn"], "is for poisson-sine, but the"),
        (["--recipe", "poisson-sine-pinn", "--method", "deep-ritz"], "is for pinn, but the"),
    ],
)
def test_recipe_errors(capsys, argv, message):
    assert main(["solve", *argv, "--quiet"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0]


def test_the_recipes_command(capsys):
    assert main(["recipes", "poisson-ridge"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].split() == ["id", "method", "dims", "file"]
    row = "poisson-ridge  pinn    d 31623..316227  configs/runs/poisson-ridge-d100000-pinn.yaml"
    assert row in lines
    assert lines[lines.index(row) + 1].startswith("    pinnlab solve poisson-ridge --dim 100000  #")
    assert main(["recipes", "--method", "vmc"]) == 0
    out = capsys.readouterr().out
    assert "hydrogen-vmc" in out and "poisson" not in out
    assert main(["recipes", "poisson-sin"]) == 2
    assert "Did you mean 'poisson-sine'" in capsys.readouterr().err


def test_the_start_line_of_a_real_run(capsys, tmp_path, monkeypatch):
    monkeypatch.setattr(
        pinnlab.solution, "test_points", functools.partial(pinnlab.metrics.test_points, n=256)
    )
    argv = ["solve", "poisson-sine", "--dim", "10", "--device", "cpu", "--quiet"]
    argv += ["--set", "train.optimizer=adam", "--set", "train.steps=1"]
    argv += ["--set", "solver.n_interior=16", "--set", "solver.n_boundary=8"]
    assert main([*argv, "--out", str(tmp_path / "s.h5")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("recipe: poisson-sine-d10-pinn ")
    assert lines[1].startswith("solving poisson-sine {'dim': 10")
    assert any(line.startswith("done: 1 steps") for line in lines)


# --- every recipe, two steps, through the selection ---------------------------------------

#: Sample sizes shrunk (tests/recipe_identity.py's CAPS, smaller still).
CAPS = {
    "n_interior": 16,
    "n_boundary": 16,
    "n_samples": 16,
    "n_paths": 16,
    "walkers": 16,
    "burn_in": 5,
    "eval_measurements": 16,
    "refit": 1,
}


def two_steps(r) -> pl.RunConfig:
    """The selected recipe at its own dimension (a variant: its file), two optimisation
    steps, small samples."""
    named = {} if r.select else {"config": r.path}
    full = pl.make_config(r.problem, method=r.method, params=params(r.dim), **named)
    steps = ["train.steps=1", "train.lbfgs_steps=1"]
    if full.train.optimizer != "adam+lbfgs":
        steps = ["train.steps=2"]
    fields = SOLVERS[full.method].Settings.model_fields
    caps = [
        f"solver.{k}={min(v, full.solver[k])}"
        for k, v in CAPS.items()
        if k in fields and isinstance(full.solver.get(k), int)
    ]
    stops = ["train.target_error=null", "train.time_budget=null", "train.checkpoint_every=0"]
    return pl.make_config(
        r.problem,
        method=r.method,
        params=params(r.dim),
        sets=[*steps, *caps, *stops, "device=cpu"],
        **named,
    )


#: The two whose two steps take seconds (nls's reference data, deep BSDE's 40 time steps at
#: d = 100); the others take well under one together.
SLOW = {"nls-pinn", "allen-cahn-deep-bsde"}


@pytest.mark.parametrize(
    "r",
    [
        pytest.param(r, id=r.name, marks=[pytest.mark.slow] if r.name in SLOW else [])
        for r in RECIPES
        if own_dim(r) <= 1000
    ],
)
def test_every_recipe_runs_two_steps_through_the_selection(r, monkeypatch):
    monkeypatch.setattr(
        pinnlab.solution, "test_points", functools.partial(pinnlab.metrics.test_points, n=256)
    )
    module = sys.modules[pl.catalogue()[r.problem].__module__]
    if hasattr(module, "REFERENCE_PATHS"):  # a Monte Carlo reference: a cheap one here
        monkeypatch.setattr(module, "REFERENCE_PATHS", 2**10)
    if hasattr(module, "REFERENCE_GRID"):  # a finite-difference reference: a coarse one here
        monkeypatch.setattr(module, "REFERENCE_GRID", 64)
    cfg = two_steps(r)
    assert select(r.problem, r.method, own_dim(r)).name == r.name or not r.select
    solution = pl.run(cfg)
    assert solution.environment["steps"] == 2
    assert math.isfinite(solution.history["loss"][-1])
