"""A conformance suite generic over the registries (as scikit-learn's estimator checks are):
every solver, on a catalogue problem that offers its form, builds, sets up, draws a batch,
gives a finite loss, trains two steps, saves, loads and gives the same outputs; every study
config in configs/studies/ expands and runs one of its runs for two steps. A new solver or
study is covered without editing this file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import pinnlab as pl
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


STUDIES = sorted((ROOT / "configs" / "studies").glob("*.yaml"))


@pytest.mark.parametrize("path", STUDIES, ids=lambda p: p.stem)
def test_every_study_expands_and_runs_one_run(path):
    runs = expand(read_study(path))
    assert len(runs) >= 2 and len({r.id for r in runs}) == len(runs)
    first = runs[0].config
    config = pl.make_config(config=small(first.model_dump(), first.method))
    solution = pl.run(config)
    assert solution.environment["steps"] == 2 and np.isfinite(solution.history["loss"]).all()
