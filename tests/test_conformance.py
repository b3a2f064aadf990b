"""A conformance suite generic over the registries (as scikit-learn's estimator checks are):
every solver, on a catalogue problem that offers its form, builds, sets up, draws a batch,
gives a finite loss, trains two steps, saves, loads and gives the same outputs; so does every
network the registries build (each body, alone and behind each wrapper), on the first
catalogue problem and method that accept it; every study config in configs/studies/ expands
and runs one of its runs for two steps. A new solver, body, wrapper or study is covered
without editing this file."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
import torch

import pinnlab as pl
from pinnlab import registry
from pinnlab.build import build_model, build_problem, build_solver
from pinnlab.config import merge
from pinnlab.registry import solvers
from pinnlab.studies.design import expand, read_study

ROOT = Path(__file__).resolve().parent.parent
#: Sample sizes shrunk for two CPU steps, applied where a solver has the setting.
SMALL = {
    "n_interior": 32,
    "n_boundary": 16,
    "n_samples": 64,
    "n_paths": 16,
    "walkers": 32,
    "burn_in": 5,
    "eval_measurements": 16,
    "refit": 0,
}
TRAIN = {"steps": 2, "lbfgs_steps": 0, "eval_every": 1000, "checkpoint_every": 0, "log_every": 1}


def small(config: dict, method: str) -> dict:
    fields = solvers()[method].Settings.model_fields
    solver = {k: v for k, v in SMALL.items() if k in fields}
    train = dict(TRAIN)
    if config.get("train", {}).get("optimizer") == "adam+lbfgs":
        train["optimizer"] = "adam"
    return merge(config, {"solver": solver, "train": train, "device": "cpu"})


def _cases():
    """(method, problem id): the first catalogue problem, by id, that each solver accepts."""
    catalogue = pl.catalogue()
    for method, cls in sorted(solvers().items()):
        for problem_id in catalogue:
            if cls.form not in catalogue[problem_id].forms():
                continue
            try:
                cfg = pl.make_config(problem_id, method=method, sets=["train.steps=1"])
            except pl.PinnlabError:
                continue
            yield pytest.param(method, problem_id, cfg, id=f"{method}-{problem_id}")
            break
        else:
            raise AssertionError(f"no catalogue problem accepts method '{method}'")


CASES = list(_cases())


def test_every_solver_has_a_case():
    assert {c.values[0] for c in CASES} == set(solvers())


@pytest.mark.parametrize(("method", "problem_id", "recipe"), CASES)
def test_solver_conformance(method, problem_id, recipe, tmp_path):
    config = pl.make_config(config=small(recipe.model_dump(), method))
    problem = build_problem(config)
    solver = build_solver(problem, config)
    before = dict(vars(solver))
    model = build_model(problem, config, device=torch.device("cpu"), solver=solver)
    assert isinstance(model, pl.Model) and isinstance(model.module, torch.nn.Module)
    generator = torch.Generator().manual_seed(0)
    batch = solver.batch(model, generator)
    assert batch and all(isinstance(v, torch.Tensor) for v in batch.values())
    terms = solver.loss(model, batch)
    assert terms and all(t.dim() == 0 and torch.isfinite(t) for t in terms.values())
    # Stateless: setting up, drawing and taking the loss leave the solver as it was built.
    after = vars(solver)
    assert after.keys() == before.keys() and all(after[k] is before[k] for k in before)
    # Trained through the one loop, saved, loaded: the same outputs.
    solution = pl.run(config, out=tmp_path / "run.h5")
    loaded = pl.load(tmp_path / "run.h5")
    x = _inputs(solution, problem)
    np.testing.assert_array_equal(loaded(x), solution(x))
    assert loaded.metrics == solution.metrics


def _inputs(solution: pl.Solution, problem: pl.Problem) -> np.ndarray:
    if solution.point is not None:
        return solution.point[None].numpy()
    g = torch.Generator().manual_seed(1)
    if solution.at_time is not None:
        return problem.stochastic_form().region.sample_interior(4, generator=g).numpy()
    try:
        domain = problem.domain()
    except pl.FormError:  # on R^d
        return 0.3 * torch.randn(4, problem.dim, generator=g).numpy()
    return domain.sample_interior(4, generator=g).numpy()


def _network_cases():
    """(body, wrapper or None, config): each registered body alone and behind each registered
    wrapper (at its example settings), on the first (problem, method) that accepts it."""
    bodies, wrappers = registry.networks(), registry.wrappers()
    catalogue = pl.catalogue()
    for body in sorted(bodies):
        for wrapper in (None, *(sorted(wrappers) if bodies[body].wrappable else ())):
            wrap = {} if wrapper is None else {wrapper: wrappers[wrapper].example().model_dump()}
            net = {"kind": body, "width": 8, "depth": 2, "wrap": wrap}
            for problem_id, method in itertools.product(catalogue, sorted(solvers())):
                try:
                    cfg = pl.make_config(
                        problem_id, method=method, overrides={"net": net, "train": {"steps": 1}}
                    )
                    build_model(build_problem(cfg), cfg, device=torch.device("cpu"))
                except pl.PinnlabError:
                    continue
                name = f"{body}+{wrapper}" if wrapper else body
                yield pytest.param(cfg, id=f"{name}-{method}-{problem_id}")
                break
            else:
                raise AssertionError(f"no catalogue problem accepts {body} with {wrapper}")


@pytest.mark.parametrize("recipe", list(_network_cases()))
def test_network_conformance(recipe, tmp_path):
    config = pl.make_config(config=small(recipe.model_dump(), recipe.method))
    problem = build_problem(config)
    solution = pl.run(config, out=tmp_path / "run.h5")
    loaded = pl.load(tmp_path / "run.h5")
    x = _inputs(solution, problem)
    np.testing.assert_array_equal(loaded(x), solution(x))
    assert np.isfinite(solution(x)).all() and loaded.metrics == solution.metrics


def _problem_cases():
    """Every catalogue problem with the first method (by name) whose config it accepts."""
    catalogue = pl.catalogue()
    for problem_id in catalogue:
        for method in sorted(solvers()):
            if solvers()[method].form not in catalogue[problem_id].forms():
                continue
            try:
                cfg = pl.make_config(problem_id, method=method, sets=["train.steps=1"])
            except pl.PinnlabError:
                continue
            yield pytest.param(cfg, id=f"{problem_id}-{method}")
            break
        else:
            raise AssertionError(f"no method accepts problem '{problem_id}'")


@pytest.mark.parametrize("recipe", list(_problem_cases()))
def test_problem_conformance(recipe, tmp_path):
    """Each problem trains two steps with its recipe shrunk, saves, loads, gives the same
    outputs and the same metrics."""
    test_network_conformance(recipe, tmp_path)


STUDIES = sorted((ROOT / "configs" / "studies").glob("*.yaml"))


@pytest.mark.parametrize("path", STUDIES, ids=lambda p: p.stem)
def test_every_study_expands_and_runs_one_run(path):
    runs = expand(read_study(path))
    assert len(runs) >= 2 and len({r.id for r in runs}) == len(runs)
    first = runs[0].config
    config = pl.make_config(config=small(first.model_dump(), first.method))
    solution = pl.run(config)
    assert solution.environment["steps"] == 2 and np.isfinite(solution.history["loss"]).all()
