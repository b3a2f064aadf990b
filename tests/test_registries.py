"""Solvers are extended without mutating pinnlab: a Solver class in a catalogue folder is a
method, for runs, saved solutions and the error messages alike."""

from __future__ import annotations

import textwrap

import pytest
from helpers import TINY, write_problem_file

import pinnlab as pl
from pinnlab.registry import solvers
from pinnlab.solvers import SOLVERS

USER_SOLVER = textwrap.dedent(
    '''
    from pinnlab.solvers.pinn import PINN


    class ScaledPINN(PINN):
        """The PINN with its residual term doubled (a user's method)."""

        name = "scaled-pinn"

        def loss(self, model, batch):
            terms = super().loss(model, batch)
            return {**terms, "residual": 2 * terms["residual"]}
    '''
)


@pytest.fixture
def solver_dir(tmp_path):
    return write_problem_file(tmp_path / "user", USER_SOLVER, name="my_solver.py")


def test_a_solver_in_a_catalogue_folder_is_a_method(solver_dir, tmp_path):
    registry = solvers([solver_dir])
    assert "scaled-pinn" in registry and set(SOLVERS) <= set(registry)
    assert "scaled-pinn" not in solvers()  # the built-in registry is not mutated
    cfg = pl.make_config(
        "poisson-sine",
        method="scaled-pinn",
        config=TINY,
        params={"dim": 2},
        problems_dirs=[solver_dir],
    )
    solution = pl.run(cfg, out=tmp_path / "s.h5", problems_dirs=[solver_dir])
    plain = pl.run(pl.make_config("poisson-sine", config=TINY, params={"dim": 2}))
    assert solution.history["loss.residual"][0] == pytest.approx(
        2 * plain.history["loss.residual"][0]
    )
    loaded = pl.load(tmp_path / "s.h5", problems_dirs=[solver_dir])
    assert loaded.config.method == "scaled-pinn"


def test_an_unknown_method_names_the_registered_ones(solver_dir):
    with pytest.raises(pl.UnknownNameError, match="scaled-pinn"):
        pl.make_config("poisson-sine", method="scaled-pin", problems_dirs=[solver_dir])
