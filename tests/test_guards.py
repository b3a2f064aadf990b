"""What a run refuses or reports instead of passing silently (issue 19's correctness bugs):
conditions a solver cannot impose, settings it does not use, a finite divergence, a result no
better than a constant, and metrics of a problem that offers only an energy form."""

from __future__ import annotations

import textwrap

import pytest
import torch
from helpers import tiny_config, write_problem_file

import pinnlab as pl

NEUMANN_PROBLEMS = textwrap.dedent(
    '''
    from dataclasses import dataclass

    import pinnlab as pl


    @dataclass(frozen=True)
    class NeumannOnly(pl.Problem):
        """−u'' + u = x² − 2 on (0, 1), u'(n) = 2x on both ends: u = x²."""

        id = "test-neumann-only"
        dim: int = 1

        def exact(self, x):
            return x[:, 0] ** 2

        def strong_form(self):
            return pl.StrongForm(
                domain=pl.Box(1),
                residual=lambda d: -d.laplacian + d.u - d.x[:, 0] ** 2 + 2,
                conditions={"flux": pl.Neumann(lambda x: 2 * x[:, 0])},
            )

        def energy_form(self):
            return pl.EnergyForm(
                domain=pl.Box(1),
                source=lambda x: x[:, 0] ** 2 - 2,
                reaction=1.0,
                conditions={"flux": pl.Neumann(lambda x: 2 * x[:, 0])},
            )


    @dataclass(frozen=True)
    class EnergyOnly(pl.Problem):
        """The same problem with only its energy form (and its exact solution)."""

        id = "test-energy-only"
        dim: int = 1

        def exact(self, x):
            return x[:, 0] ** 2

        def energy_form(self):
            return NeumannOnly().energy_form()
    '''
)


@pytest.fixture
def neumann_dir(tmp_path):
    return write_problem_file(tmp_path / "neumann", NEUMANN_PROBLEMS)


def test_the_pinn_imposes_a_neumann_condition_and_refusals_name_who_can(neumann_dir):
    """Before: the PINN trained without the Neumann term and reported success. It now has
    the term ∂u/∂n − flux; a condition a solver cannot impose is refused, naming who can."""
    cfg = tiny_config("test-neumann-only", problems_dirs=[neumann_dir], dim=1)
    assert "loss.flux" in pl.run(cfg, problems_dirs=[neumann_dir]).history
    general = pl.EnergyForm(
        domain=pl.Box(1),
        source=lambda x: x[:, 0],
        conditions={"wall": pl.Condition(lambda d: d.u - 1.0)},
    )
    problem = pl.catalogue([neumann_dir]).problem("test-neumann-only")
    from pinnlab.config import validate
    from pinnlab.solvers.deep_ritz import DeepRitz, DeepRitzSettings

    class ConditionProblem(type(problem)):
        def energy_form(self):
            return general

    with pytest.raises(pl.ConfigError, match=r"'wall' \(Condition\).*'deep-ritz'.*pinn"):
        DeepRitz(ConditionProblem(), validate(DeepRitzSettings, {}), dtype=torch.float32)
    # Deep Ritz imposes Neumann (a natural condition of the energy) and trains.
    cfg = tiny_config("test-neumann-only", problems_dirs=[neumann_dir], dim=1, method="deep-ritz")
    assert "rel_l2" in pl.run(cfg, problems_dirs=[neumann_dir]).metrics


def test_metrics_of_a_problem_with_only_an_energy_form(neumann_dir):
    """Before: the test set's domain was taken from strong_form(): an AttributeError."""
    problem = pl.catalogue([neumann_dir]).problem("test-energy-only")
    assert problem.domain() == problem.energy_form().domain
    cfg = tiny_config("test-energy-only", problems_dirs=[neumann_dir], dim=1, method="deep-ritz")
    metrics = pl.run(cfg, problems_dirs=[neumann_dir]).metrics
    assert metrics["rel_l2"] > 0 and "const_rel_l2" in metrics


@pytest.mark.parametrize("method", ["feynman-kac", "deep-bsde"])
def test_hard_bc_is_refused_by_solvers_that_do_not_impose_it(method):
    with pytest.raises(pl.ConfigError, match=rf"net.hard_bc: method '{method}'.*pinn"):
        pl.make_config(
            "hjb-lq" if method == "deep-bsde" else "bs-geometric-basket",
            method=method,
            sets=["net.hard_bc=true"],
        )


def test_hard_bc_is_refused_by_vmc():
    with pytest.raises(pl.ConfigError, match=r"net.hard_bc: method 'vmc'.*deep-ritz, pinn"):
        pl.make_config("hydrogen", method="vmc", sets=["net.hard_bc=true"])


def test_a_finite_divergence_is_not_success():
    """Before: train.lr=1e6 ended at loss ~1e16 with exit 0; now the guard restores, halves
    the learning rate, and gives up with an error that says why."""
    cfg = tiny_config(train={"steps": 30, "lr": 1e6, "max_nan_restarts": 2})
    with pytest.raises(pl.TrainingError, match="diverged"):
        pl.run(cfg)


def test_the_divergence_guard_leaves_ordinary_training_alone():
    solution = pl.run(tiny_config(train={"steps": 30, "lr": 1e-2}))
    assert solution.environment["nan_restarts"] == 0


def test_a_result_no_better_than_a_constant_is_warned_of():
    with pytest.warns(pl.AccuracyWarning, match="no better than the best constant"):
        pl.run(tiny_config("poisson-sine", dim=2, train={"steps": 1, "lr": 1e-6}))
    # A run that learns says nothing.
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", pl.AccuracyWarning)
        pl.run(tiny_config("poisson-sine", dim=1, train={"steps": 300, "lr": 1e-2}))


def test_a_solution_at_one_point_against_a_reference_cloud_trains_without_an_error_metric():
    """deep-bsde learns u(0, x₀); bs-basket-call's reference is a cloud of points at t = 0, so
    there is no error to track: the run trains without evaluations (it used to stop with a
    KeyError from inside the metrics), and a target error is refused before training."""
    cfg = pl.make_config(
        "bs-basket-call", method="deep-bsde", sets=["train.steps=2", "train.eval_every=1"]
    )
    solution = pl.run(cfg)
    assert not solution.measures_error() and "error" not in solution.history
    with pytest.raises(pl.ConfigError, match="target_error needs a known truth"):
        pl.run(cfg.model_copy(update={"train": cfg.train.model_copy(update={"target_error": 0.1})}))
