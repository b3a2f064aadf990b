"""A problem defined in a script is solved, saved and loaded like a catalogue one; and the
causal weighting of the PINN's residual over time (Wang, Sankaran & Perdikaris 2024)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import pytest
import torch
from helpers import TINY

import pinnlab as pl
from pinnlab.config import merge


@dataclass(frozen=True)
class ScriptHeat(pl.Problem):
    """u_t = κ u_xx on [0, 1] × [0, 1], u = e^{−κπ²t} sin πx (a class no catalogue holds)."""

    id = "script-heat"
    dims = "d = 1"
    dim: int = 1
    kappa: float = 0.1

    def exact(self, tx):
        return torch.exp(-self.kappa * math.pi**2 * tx[:, 0]) * torch.sin(math.pi * tx[:, 1])

    def strong_form(self):
        return pl.StrongForm(
            domain=pl.SpaceTime(pl.Box(1), t1=1.0),
            residual=lambda d: d.partial("t") - self.kappa * d.partial(0, 0),
            conditions={
                "boundary": pl.Dirichlet(self.exact),
                "initial": pl.Dirichlet(self.exact, on="initial"),
            },
        )


@dataclass(frozen=True)
class WrongDim(ScriptHeat):
    """Its form's domain has one space axis, but it leaves ``dim`` at the default 2."""

    id = "script-wrong-dim"
    dim: int = 2


def test_a_script_problem_solves_saves_and_loads_with_its_class(tmp_path):
    out = tmp_path / "heat.h5"
    solution = pl.solve(ScriptHeat(kappa=0.2), out=out, **TINY)
    assert solution.problem.kappa == 0.2 and math.isfinite(solution.metrics["rel_l2"])
    with pytest.raises(pl.UnknownNameError, match="problems_dirs=\\[MyProblem\\]"):
        pl.load(out)
    back = pl.load(out, problems_dirs=[ScriptHeat])
    x = torch.rand(16, 2, generator=torch.Generator().manual_seed(0))
    assert torch.equal(torch.as_tensor(back(x.numpy())), torch.as_tensor(solution(x.numpy())))


def test_solve_takes_a_whole_config_and_refuses_overrides_beside_it():
    config = pl.make_config("poisson-sine", config=merge(TINY, {}), params={"dim": 2})
    assert pl.solve(config).config == config
    with pytest.raises(pl.ConfigError, match="takes the config as it is"):
        pl.solve(config, train={"steps": 2})
    with pytest.raises(pl.ConfigError, match="needs a problem id, a Problem or a RunConfig"):
        pl.solve(42)


def test_a_form_whose_domain_disagrees_with_dim_is_refused():
    with pytest.raises(pl.ConfigError, match=r"1 space dimension.*dim is 2.*dim: int = 1"):
        pl.solve(WrongDim(), **TINY)


def _causal(chunks=4, epsilon=1.0, **solver):
    from pinnlab.solvers.pinn import PINN, PINNSettings

    settings = PINNSettings(causal={"chunks": chunks, "epsilon": epsilon}, **solver)
    return PINN(ScriptHeat(), settings, dtype=torch.float64)


def test_causal_weights_are_the_exponential_of_the_earlier_chunks_losses():
    solver = _causal(chunks=4, epsilon=0.5)
    t = torch.tensor([0.1, 0.2, 0.3, 0.6, 0.9, 0.95, 0.99], dtype=torch.float64)
    points = torch.stack([t, torch.zeros_like(t)], dim=1)
    r = torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0], dtype=torch.float64, requires_grad=True)
    terms, w = solver.causal_terms(r, points)
    # chunks [0, ¼): 1, 2; [¼, ½): 3; [½, ¾): 4; [¾, 1]: 5, 6, 7
    losses = torch.tensor([(1 + 4) / 2, 9.0, 16.0, (25 + 36 + 49) / 3], dtype=torch.float64)
    before = torch.tensor([0.0, losses[0], losses[:2].sum(), losses[:3].sum()])
    expected = torch.exp(-0.5 * before)
    torch.testing.assert_close(w, expected)
    torch.testing.assert_close(terms["residual"], (expected * losses).mean())
    # the weights are constants of the gradient: d/dr of (1/M) Σ w_i L_i = w_i · 2 r / (M n_i)
    terms["residual"].backward()
    counts = torch.tensor([2, 2, 1, 1, 3, 3, 3], dtype=torch.float64)
    chunk = torch.tensor([0, 0, 1, 2, 3, 3, 3])
    torch.testing.assert_close(r.grad, expected[chunk] * 2 * r.detach() / (4 * counts))


def test_causal_terms_of_a_system_share_their_weights():
    solver = _causal(chunks=2, epsilon=1.0)
    points = torch.tensor([[0.25, 0.0], [0.75, 0.0]], dtype=torch.float64)
    r = {
        "a": torch.tensor([1.0, 1.0], dtype=torch.float64),
        "b": torch.tensor([[2.0, 0.0], [1.0, 1.0]], dtype=torch.float64),
    }
    terms, w = solver.causal_terms(r, points)
    # chunk 0: a 1, b (4 + 0)/2 = 2; together 3, so w = (1, e^{-3})
    torch.testing.assert_close(w, torch.tensor([1.0, math.exp(-3.0)], dtype=torch.float64))
    torch.testing.assert_close(terms["a"], (1 + math.exp(-3.0)) / 2 * torch.tensor(1.0).double())
    torch.testing.assert_close(terms["b"], (2 + math.exp(-3.0)) / 2 * torch.tensor(1.0).double())


def test_a_causal_run_records_its_smallest_weight():
    solution = pl.solve(
        ScriptHeat(),
        **merge(TINY, {"solver": {"causal": {"chunks": 4}}, "train": {"eval_every": 2}}),
    )
    w = solution.history["causal_weight_min"]
    assert len(w) >= 2 and all(0 < v <= 1 for v in w)


def test_causal_weighting_is_refused_where_it_cannot_apply():
    with pytest.raises(pl.ConfigError, match="not time-dependent"):
        pl.solve("poisson-sine", dim=2, **merge(TINY, {"solver": {"causal": {"chunks": 4}}}))
    with pytest.raises(pl.ConfigError, match="cannot be combined"):
        pl.solve(ScriptHeat(), **merge(TINY, {"solver": {"causal": {}, "mean_weight": 0.5}}))
    with pytest.raises(pl.ConfigError, match="chunks"):
        pl.solve(ScriptHeat(), **merge(TINY, {"solver": {"causal": {"chunks": 1}}}))
