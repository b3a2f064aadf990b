"""Solvers are extended without mutating pinnlab: a Solver class in a catalogue folder is a
method, for runs, saved solutions and the error messages alike."""

from __future__ import annotations

import textwrap

import pytest
import torch
from helpers import TINY, write_problem_file

import pinnlab as pl
from pinnlab.config import merge
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


# --- networks, wrappers, activations, metrics ----------------------------------------------
USER_PARTS = textwrap.dedent(
    '''
    import torch
    from torch import nn

    from pinnlab.metrics import Metric, test_points
    from pinnlab.networks import MLP, Activation, Chain, Network, Wrapper


    class Cosine(Activation):
        """σ = cos, with σ' = −sin and σ'' = −cos."""

        name = "cosine"

        @staticmethod
        def closed_form(z):
            return torch.cos(z), -torch.sin(z), -torch.cos(z)


    class WideMLP(MLP):
        """An MLP of twice the width asked for (a user's body)."""

        name = "wide-mlp"

        def __init__(self, in_dim, out_dim, width, depth, activation, **kw):
            super().__init__(in_dim, out_dim, 2 * width, depth, activation, **kw)


    class Shifted(Network):
        """x ↦ x + offset (no forward_jet: the engine's torch.func fallback)."""

        def __init__(self, offset):
            super().__init__()
            self.register_buffer("offset", torch.tensor(offset))

        def forward(self, x):
            return x + self.offset


    class Shift(Wrapper):
        """Shift the input before the rest (a user's wrapper)."""

        name = "shift"
        offset: float = 0.5

        def build(self, in_dim, out_dim, inner, site):
            return Chain(Shifted(self.offset), inner(in_dim, site.inner(self.name)))


    class MaxError(Metric):
        """max |u − u*| / max |u*| on the test set (a user's metric)."""

        name = "rel_linf"

        def __call__(self, solution):
            x = test_points(solution.problem, n=500)
            u, exact = solution(x), solution.problem.exact(x)
            return float((u - exact).abs().max() / exact.abs().max())
    '''
)


@pytest.fixture
def parts_dir(tmp_path):
    return write_problem_file(tmp_path / "parts", USER_PARTS, name="my_parts.py")


def test_networks_wrappers_activations_and_metrics_in_a_folder_are_registered(parts_dir):
    from pinnlab import registry

    assert "wide-mlp" in registry.networks([parts_dir]) and "mlp" in registry.networks()
    assert "shift" in registry.wrappers([parts_dir])
    assert "cosine" in registry.activations([parts_dir])
    assert "rel_linf" in registry.metrics([parts_dir])
    for name, entries in [("wide-mlp", registry.networks()), ("shift", registry.wrappers())]:
        assert name not in entries  # nothing was mutated
    assert "rel_linf" not in registry.metrics()


def _user_config(parts_dir, **changes):
    net = {"kind": "wide-mlp", "activation": "cosine", "wrap": {"shift": {"offset": 0.25}}}
    config = merge(TINY, {"net": net, "metric": "rel_linf", **changes})
    return pl.make_config(
        "poisson-sine", config=config, params={"dim": 2}, problems_dirs=[parts_dir]
    )


def test_a_run_uses_the_registered_parts_and_reports_the_metric(parts_dir, tmp_path):
    from pinnlab.networks import MLP

    cfg = _user_config(parts_dir)
    assert cfg.net.wrap == {"shift": {"offset": 0.25}}  # recorded with its settings
    solution = pl.run(cfg, out=tmp_path / "u.h5", problems_dirs=[parts_dir])
    body = next(m for m in solution.model.modules() if isinstance(m, MLP))
    assert body.hidden[0].out_features == 16 and body.act.name == "cosine"  # width 8 doubled
    assert 0 < solution.metrics["rel_linf"] < 10 and "rel_l2" in solution.metrics
    assert solution.history["error"].size  # the run tracked the user's metric
    loaded = pl.load(tmp_path / "u.h5", problems_dirs=[parts_dir])
    x = torch.rand(7, 2, dtype=torch.float64)
    torch.testing.assert_close(loaded(x), solution(x))
    assert loaded.metrics["rel_linf"] == solution.metrics["rel_linf"]


def test_unknown_parts_name_what_is_registered(parts_dir):
    with pytest.raises(pl.UnknownNameError, match="Did you mean 'shift'"):
        _user_config(parts_dir, net={"wrap": {"shfit": {}}})
    with pytest.raises(pl.ConfigError, match=r"net\.wrap\.shift\.ofset"):
        _user_config(parts_dir, net={"wrap": {"shift": {"ofset": 1.0}}})
    with pytest.raises(pl.UnknownNameError, match="cosine"):
        _user_config(parts_dir, net={"activation": "cosin"})
    with pytest.raises(pl.UnknownNameError, match="wide-mlp"):
        _user_config(parts_dir, net={"kind": "wide-mpl"})
    with pytest.raises(pl.UnknownNameError, match="rel_linf"):
        _user_config(parts_dir, metric="rel_lin")


def test_a_metric_may_not_take_one_of_pinnlabs_names(tmp_path):
    from pinnlab import registry

    text = "from pinnlab.metrics import Metric\n\nclass Mine(Metric):\n    name = 'rel_l2'\n"
    folder = write_problem_file(tmp_path / "clash", text, name="clash.py")
    with pytest.raises(pl.PinnlabError, match="one of pinnlab's own"):
        registry.metrics([folder])


def test_study_workers_see_the_registered_parts(parts_dir, tmp_path):
    """Spawned workers rebuild every registry from the folders the parent was given."""
    from pinnlab.studies import load, read_study, run_study

    base = merge(TINY, {"problem": {"id": "poisson-sine", "dim": 2}, "metric": "rel_linf"})
    base["net"] = {**base["net"], "kind": "wide-mlp", "activation": "cosine"}
    study = read_study(
        {"name": "user-parts", "base": base, "grid": {"net.wrap.shift": [None, {"offset": 0.5}]}}
    )
    out = tmp_path / "study"
    run_study(study, out, workers=2, threads=1, progress=False, problems_dirs=[parts_dir])
    df = load(out)
    assert sorted(df["net.wrap.shift"]) == ["none", "{offset: 0.5}"]
    assert (df["status"] == "done").all() and df["rel_linf"].notna().all()
