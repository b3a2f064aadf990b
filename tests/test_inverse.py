"""Inverse problems: unknowns in a form, observations, their loss term, files and results."""

from __future__ import annotations

import json
import math
import warnings
from dataclasses import dataclass

import h5py
import numpy as np
import pytest
import torch

import pinnlab as pl
from pinnlab.cli import main
from pinnlab.observations import read

SHORT = {"optimizer": "adam", "steps": 2, "eval_every": 1, "checkpoint_every": 0}


# --- a problem of the tests' own: −κ u'' = κ* π² sin(πx) on [0, 1], u = sin(πx) ----------
@dataclass(frozen=True)
class Rod(pl.Problem):
    """−κ u'' = κ* π² sin(π x) on [0, 1] with u(0) = u(1) = 0; κ unknown, u measured inside."""

    id = "test-rod"
    dim: int = 1
    kappa: float = 3.0
    n_data: int = 50
    noise: float = 0.0
    read_kappa: bool = True
    with_data: bool = True

    def exact(self, x):
        return torch.sin(math.pi * x[:, 0])

    def strong_form(self):
        def residual(d):
            k = d.unknown("kappa") if self.read_kappa else 1.0
            return -k * d.partial(0, 0) - self.kappa * math.pi**2 * torch.sin(math.pi * d.x[:, 0])

        x = torch.linspace(0.02, 0.98, self.n_data, dtype=torch.float64)[:, None]
        data = [pl.Observations.synthetic(x, self.exact, noise=self.noise)]
        return pl.StrongForm(
            domain=pl.Box(1),
            residual=residual,
            conditions={"boundary": pl.Dirichlet(lambda y: torch.zeros_like(y[:, 0]))},
            unknowns=[pl.Unknown("kappa", init=1.0, positive=True, exact=self.kappa)],
            observations=data if self.with_data else [],
        )

    def energy_form(self):
        return pl.EnergyForm(domain=pl.Box(1), source=lambda x: x[:, 0])


@dataclass(frozen=True)
class Bar(pl.Problem):
    """−(κ(x) u')' = f on [0, 1], κ(x) = 1 + x unknown, u = sin(πx) measured."""

    id = "test-bar"
    dim: int = 1

    def exact(self, x):
        return torch.sin(math.pi * x[:, 0])

    def source(self, x):
        s = x[:, 0]
        k, dk = 1 + s, 1.0
        return k * math.pi**2 * torch.sin(math.pi * s) - dk * math.pi * torch.cos(math.pi * s)

    def strong_form(self):
        def residual(d):
            kappa = d.field("kappa")
            return -kappa.u * d.partial(0, 0) - kappa.grad[:, 0] * d.partial(0) - self.source(d.x)

        x = torch.linspace(0.0, 1.0, 40, dtype=torch.float64)[:, None]
        return pl.StrongForm(
            domain=pl.Box(1),
            residual=residual,
            conditions={"boundary": pl.Dirichlet(lambda y: torch.zeros_like(y[:, 0]))},
            unknowns=[
                pl.UnknownField("kappa", positive=True, width=8, exact=lambda y: 1 + y[:, 0])
            ],
            observations=[pl.Observations.synthetic(x, self.exact)],
        )


def solve(problem, **kw):
    kw.setdefault("train", SHORT)
    kw.setdefault("net", {"width": 16, "depth": 2})
    return pl.solve(problem, **kw)


# --- declarations ---------------------------------------------------------------------
@pytest.mark.parametrize(
    "kw",
    [
        {"positive": True, "init": 2.5},
        {"bounds": (0.5, 4.0), "init": 2.5},
        {"init": -1.5},
        {"init": [0.5, 2.0], "positive": True},
    ],
)
def test_an_unknown_starts_at_its_init(kw):
    u = pl.Unknown("theta", **kw)
    torch.testing.assert_close(
        u.value(u.raw_init()), torch.as_tensor(kw["init"], dtype=torch.float64)
    )


@pytest.mark.parametrize(
    "kw, message",
    [
        ({"init": -1.0, "positive": True}, "needs init > 0"),
        ({"init": 5.0, "bounds": (0.0, 1.0)}, "strictly between"),
        ({"init": 0.5, "bounds": (-1.0, 1.0), "positive": True}, "below 0"),
        ({"init": float("nan")}, "finite"),
        ({"init": 1.0, "exact": [1.0, 2.0]}, "one true value per entry"),
    ],
)
def test_bad_unknowns_are_refused(kw, message):
    with pytest.raises(pl.ParameterError, match=message):
        pl.Unknown("theta", **kw)


def test_unknown_names_are_identifiers_and_distinct():
    with pytest.raises(pl.ParameterError, match="identifier"):
        pl.Unknown("my kappa", init=1.0)
    with pytest.raises(pl.ParameterError, match="declared twice"):
        pl.StrongForm(
            domain=pl.Box(1),
            residual=lambda d: d.u,
            unknowns=[pl.Unknown("a", init=1.0), pl.UnknownField("a")],
        )


def test_reading_an_undeclared_unknown_is_a_clear_error():
    net = torch.nn.Linear(1, 1)
    d = pl.Derivatives(net, torch.rand(4, 1))
    with pytest.raises(pl.ShapeError, match="declares no unknowns"):
        d.unknown("kappa")
    d = pl.Derivatives(net, torch.rand(4, 1), unknowns={"kappa": 2.0})
    with pytest.raises(pl.UnknownNameError, match="Did you mean 'kappa'"):
        d.unknown("kapa")
    assert float(d.unknown("kappa")) == 2.0


# --- observations ---------------------------------------------------------------------
def test_observations_of_the_wrong_shape_or_not_finite():
    with pytest.raises(pl.ShapeError, match="one row per point"):
        pl.Observations(np.zeros((5, 2)), np.zeros(4))
    values = np.zeros((5, 2))
    values[3, 1] = np.nan
    with pytest.raises(pl.ShapeError, match="row 3, column 1"):
        pl.Observations(np.zeros((5, 2)), values)
    with pytest.raises(pl.ParameterError, match="output= or of="):
        pl.Observations(np.zeros((5, 1)), np.zeros(5), output=0, of=lambda d: d.u)


@pytest.mark.parametrize("suffix", [".npz", ".h5", ".csv", ".txt"])
def test_observation_files_round_trip(tmp_path, suffix):
    rng = np.random.default_rng(0)
    x, y = rng.random((7, 2)), rng.random(7)
    path = tmp_path / f"data{suffix}"
    if suffix == ".npz":
        np.savez(path, points=x, values=y, noise_std=0.01)
    elif suffix == ".h5":
        with h5py.File(path, "w") as f:
            f["points"], f["values"] = x, y
    else:
        sep = "," if suffix == ".csv" else " "
        header = "t,x,u\n" if suffix == ".csv" else ""
        path.write_text(
            header
            + "\n".join(
                sep.join(repr(float(v)) for v in [*a, b]) for a, b in zip(x, y, strict=True)
            )
        )
    obs = read(path, in_dim=2)
    np.testing.assert_array_equal(obs.points.numpy(), x)
    np.testing.assert_array_equal(obs.values.numpy(), y)
    assert obs.noise_std == (0.01 if suffix == ".npz" else None)


def test_bad_observation_files_say_what_is_wrong(tmp_path):
    with pytest.raises(pl.ParameterError, match="does not exist"):
        read(tmp_path / "none.csv", in_dim=1)
    (tmp_path / "a.json").write_text("{}")
    with pytest.raises(pl.ParameterError, match="unknown format"):
        read(tmp_path / "a.json", in_dim=1)
    np.savez(tmp_path / "b.npz", x=np.zeros((3, 1)))
    with pytest.raises(pl.ParameterError, match="lacks the array"):
        read(tmp_path / "b.npz", in_dim=1)
    (tmp_path / "c.csv").write_text("x,u\n0.1,1.0\n0.2\n")
    with pytest.raises(pl.ShapeError, match="line 3: 1 columns"):
        read(tmp_path / "c.csv", in_dim=1)
    (tmp_path / "d.csv").write_text("x,u\n0.1,1.0\n0.2,nan\n")
    with pytest.raises(pl.ShapeError, match=r"d\.csv.*row 1"):
        read(tmp_path / "d.csv", in_dim=1)
    (tmp_path / "e.csv").write_text("0.1\n0.2\n")
    with pytest.raises(pl.ShapeError, match="needs 1 input column"):
        read(tmp_path / "e.csv", in_dim=1)


def test_points_outside_the_domain_are_named():
    outside = pl.Observations(np.array([[0.5], [1.5], [-2.0]]), np.zeros(3))
    with pytest.raises(pl.ParameterError, match=r"2 of 3 points lie outside.*row 1, at \[1\.5\]"):
        solve(Rod(), data=outside)


def test_synthetic_noise_is_relative_to_the_spread_of_the_values():
    x = torch.rand(20000, 1, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    clean = pl.Observations.synthetic(x, lambda y: 3 * y[:, 0])
    noisy = pl.Observations.synthetic(x, lambda y: 3 * y[:, 0], noise=0.1, seed=4)
    spread = float(clean.values.std())
    assert noisy.noise_std == pytest.approx(0.1 * spread)
    assert float((noisy.values - clean.values).std()) == pytest.approx(0.1 * spread, rel=0.03)


# --- solving --------------------------------------------------------------------------
def test_a_scalar_unknown_is_recovered():
    train = {"optimizer": "adam+lbfgs", "steps": 300, "lr": 1e-2, "lbfgs_steps": 200}
    solution = solve(Rod(), train={**train, "eval_every": 100, "checkpoint_every": 0})
    assert solution.unknowns["kappa"] == pytest.approx(3.0, rel=0.02)
    assert solution.metrics["kappa_error"] < 0.02
    history = solution.history["unknown.kappa"]
    assert history[0] < 2.0 and abs(history[-1] - 3.0) < 0.06  # it moved from 1 to 3


def test_an_unknown_field_trains_saves_and_evaluates(tmp_path):
    solution = solve(Bar(), train={**SHORT, "steps": 3})
    kappa = solution.unknown("kappa")
    x = np.linspace(0, 1, 5)[:, None]
    assert kappa(x).shape == (5,) and (kappa(x) > 0).all()
    assert "kappa_error" in solution.metrics
    solution.save(tmp_path / "bar.h5")
    loaded = pl.load(tmp_path / "bar.h5", problems_dirs=[Bar])
    np.testing.assert_array_equal(loaded.unknown("kappa")(x), kappa(x))
    with pytest.raises(pl.ShapeError, match="space coordinates"):
        kappa(np.zeros((5, 2)))


def test_the_field_starts_at_its_init_and_its_gradient_is_exact():
    solution = solve(Bar(), train={**SHORT, "steps": 0})
    kappa = solution.unknown("kappa")
    x = torch.linspace(0, 1, 9, dtype=torch.float32)[:, None]
    assert torch.allclose(kappa(x), torch.ones(9))  # the output layer starts at zero
    net = solution.model.net.unknowns.fields["kappa"]
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.3 * torch.randn_like(p))
    d = pl.Derivatives(solution.model, x.requires_grad_(True)).field("kappa")
    (ref,) = torch.autograd.grad(net(x).sum(), x)
    torch.testing.assert_close(d.grad, ref, rtol=1e-5, atol=1e-6)


def test_unknowns_and_their_history_survive_save_and_load(tmp_path):
    solution = solve(Rod(), train={**SHORT, "steps": 5})
    path = solution.save(tmp_path / "rod.h5")
    loaded = pl.load(path, problems_dirs=[Rod])
    assert loaded.unknowns == solution.unknowns
    np.testing.assert_array_equal(
        loaded.history["unknown.kappa"], solution.history["unknown.kappa"]
    )
    assert pl.solution.read(path, arrays=False).unknowns == solution.unknowns
    with pytest.raises(pl.UnknownNameError, match="Available: kappa"):
        loaded.unknown("sigma")


def test_a_forward_problem_has_no_unknowns():
    solution = solve("poisson-sine", dim=1)
    assert solution.unknowns == {}
    with pytest.raises(pl.UnknownNameError, match="forward problem"):
        solution.unknown("kappa")


def test_holdout_records_the_validation_misfit():
    cfg = pl.make_config(
        "test-rod",
        overrides={"data": {"holdout": 0.2}, "train": SHORT, "net": {"width": 8, "depth": 1}},
        problems_dirs=[Rod],
    )
    solution = pl.run(cfg, problems_dirs=[Rod])
    assert len(solution.history["holdout.data"]) == len(solution.history["eval_step"])
    assert solution.solver.observations[0].points.shape[0] == 40  # 50 rows, 10 held out
    with pytest.raises(pl.ParameterError, match="leaves 0 held out"):
        pl.make_config("test-rod", overrides={"data": {"holdout": 0.001}}, problems_dirs=[Rod])


def test_data_given_to_a_run_replace_the_declared_ones():
    x = np.linspace(0.1, 0.9, 9)[:, None]
    given = pl.Observations(x, 0.5 * np.sin(np.pi * x[:, 0]), name="probe")
    solution = solve(Rod(), data=given)
    assert "loss.probe" in solution.history and "loss.data" not in solution.history


def test_derived_observations_fit_a_quantity_of_the_derivatives():
    x = np.linspace(0.1, 0.9, 9)[:, None]
    flux = pl.Observations(x, np.pi * np.cos(np.pi * x[:, 0]), of=lambda d: d.partial(0))
    solution = solve(Rod(), data=[flux])
    assert np.isfinite(solution.history["loss.data"]).all()


def test_inverse_problems_are_refused_where_they_cannot_be_solved():
    with pytest.raises(pl.ConfigError, match=r"inverse problem.*deep-ritz.*Methods that do: pinn"):
        solve(Rod(), method="deep-ritz")
    with pytest.raises(pl.ConfigError, match="declares no unknowns and no observations"):
        solve("poisson-sine", dim=1, data=pl.Observations(np.zeros((2, 1)), np.zeros(2)))


def test_an_unread_unknown_and_an_unknown_without_data_warn():
    with pytest.warns(pl.IdentifiabilityWarning, match="read by neither the residual"):
        solve(Rod(read_kappa=False))
    with pytest.warns(pl.IdentifiabilityWarning, match="no observations"):
        solve(Rod(with_data=False))


def test_python_data_enter_the_run_fingerprint():
    from pinnlab.run import fingerprint

    cfg = pl.make_config("test-rod", problems_dirs=[Rod])
    x = np.linspace(0.1, 0.9, 3)[:, None]
    a = fingerprint(cfg, [Rod], [pl.Observations(x, np.zeros(3))])
    b = fingerprint(cfg, [Rod], [pl.Observations(x, np.ones(3))])
    assert a != b != fingerprint(cfg, [Rod])


# --- the command line -----------------------------------------------------------------
def test_cli_data_holdout_and_info(tmp_path, capsys):
    x = np.linspace(0.1, 0.9, 20)
    rows = "\n".join(f"{a},{b}" for a, b in zip(x, np.sin(np.pi * x), strict=True))
    (tmp_path / "u.csv").write_text("x,u\n" + rows)
    d = str(tmp_path)
    src = tmp_path / "rod.py"
    src.write_text(
        "import math, torch\nfrom dataclasses import dataclass\nimport pinnlab as pl\n"
        + _rod_source()
    )
    out = tmp_path / "rod.h5"
    args = ["--problems", d, "solve", "test-rod-cli", "--data", str(tmp_path / "u.csv")]
    args += ["--holdout", "0.25", "--out", str(out), "--quiet"]
    args += ["--set", "train.steps=3", "--set", "train.eval_every=1", "--set", "net.width=8"]
    assert main(args) == 0
    capsys.readouterr()
    assert main(["--problems", d, "info", str(out), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    kappa = info["unknowns"]["kappa"]
    assert isinstance(kappa["value"], float) and len(kappa["history"]["unknown.kappa"]) == 3
    assert info["config"]["data"] == {
        "file": str(tmp_path / "u.csv"),
        "holdout": 0.25,
        "resample": 0,
    }
    assert main(["--problems", d, "info", str(out)]) == 0
    assert "unknowns:" in capsys.readouterr().out
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main(["solve", "poisson-sine", "--dim", "1", "--data", str(tmp_path / "u.csv")]) == 2
    assert "declares no unknowns" in capsys.readouterr().err


def _rod_source() -> str:
    return """
@dataclass(frozen=True)
class RodCli(pl.Problem):
    id = "test-rod-cli"
    dim: int = 1

    def exact(self, x):
        return torch.sin(math.pi * x[:, 0])

    def strong_form(self):
        return pl.StrongForm(
            domain=pl.Box(1),
            residual=lambda d: -d.unknown("kappa") * d.partial(0, 0)
            - math.pi**2 * torch.sin(math.pi * d.x[:, 0]),
            conditions={"boundary": pl.Dirichlet(lambda y: torch.zeros_like(y[:, 0]))},
            unknowns=[pl.Unknown("kappa", init=2.0, positive=True)],
            observations=[],
        )
"""


# --- ensembles --------------------------------------------------------------------------
def test_replicates_resample_the_noise_or_the_rows():
    x = torch.linspace(0, 1, 50, dtype=torch.float64)[:, None]
    noisy = pl.Observations.synthetic(x, lambda y: y[:, 0], noise=0.1)
    a = noisy.resampled(torch.Generator().manual_seed(1))
    assert torch.equal(a.points, noisy.points) and not torch.equal(a.values, noisy.values)
    assert float((a.values - noisy.values).std()) == pytest.approx(noisy.noise_std, rel=0.3)
    clean = pl.Observations.synthetic(x, lambda y: y[:, 0])
    b = clean.resampled(torch.Generator().manual_seed(1))
    rows = {tuple(r) for r in clean.points.tolist()}
    assert (
        all(tuple(r) in rows for r in b.points.tolist())
        and len(set(map(tuple, b.points.tolist()))) < 50
    )
    torch.testing.assert_close(b.values, b.points[:, 0])  # each row keeps its own value


def test_an_ensemble_runs_through_the_process_pool(tmp_path):
    from pinnlab.studies.ensemble import ensemble

    src = tmp_path / "rod.py"
    src.write_text(
        "import math, torch\nfrom dataclasses import dataclass\nimport pinnlab as pl\n"
        + _rod_source()
        .replace(
            "observations=[]",
            "observations=[pl.Observations.synthetic("
            "torch.linspace(0.1, 0.9, 20, dtype=torch.float64)[:, None], self.exact, noise=0.05)]",
        )
        .replace("init=2.0, positive=True)", "init=2.0, positive=True, exact=1.0)")
    )
    cfg = pl.make_config(
        "test-rod-cli",
        overrides={"train": {**SHORT, "steps": 20, "lr": 1e-2}, "net": {"width": 8, "depth": 1}},
        problems_dirs=[tmp_path],
    )
    estimates = ensemble(cfg, 3, out_dir=tmp_path / "ens", workers=2, problems_dirs=[tmp_path])
    kappa = estimates["kappa"]
    assert len(kappa.members) == 3 and len(set(kappa.members)) == 3 and kappa.std > 0
    assert kappa.low < kappa.value < kappa.high and kappa.exact == 1.0
    assert sorted(p.name for p in (tmp_path / "ens").iterdir()) == [
        "member-0.h5",
        "member-1.h5",
        "member-2.h5",
        "summary.json",
    ]
    member = pl.load(tmp_path / "ens" / "member-2.h5", problems_dirs=[tmp_path])
    assert member.config.seed == 2 and member.config.data.resample == 2
    with pytest.raises(pl.ConfigError, match="at least 2 members"):
        ensemble(cfg, 1, problems_dirs=[tmp_path])


# --- the shipped inverse problems -------------------------------------------------------
SHIPPED = {
    "poisson-kappa": {"dim": 1},
    "diffusion-field": {"n_data": 100},
    "burgers-inverse": {"n_data": 500},
    "heat-source": {"n_data": 200},
    "bs-implied-vol": {"dim": 2, "n_data": 300},
}


@pytest.mark.parametrize("problem_id", sorted(SHIPPED))
def test_shipped_problems_draw_their_data_from_their_truth(problem_id):
    problem = pl.problem(problem_id, **SHIPPED[problem_id])
    (obs,) = problem.strong_form().observations
    torch.testing.assert_close(obs.values, problem.exact(obs.points).reshape(obs.values.shape))
    noisy = pl.problem(problem_id, **SHIPPED[problem_id], noise=0.01)
    (dirty,) = noisy.strong_form().observations
    spread = float(obs.values.std())
    assert float((dirty.values - obs.values).std()) == pytest.approx(0.01 * spread, rel=0.2)
    assert dirty.noise_std == pytest.approx(0.01 * spread)


@pytest.mark.slow
@pytest.mark.parametrize("problem_id", sorted(SHIPPED))
def test_shipped_problems_recover_their_unknowns_on_a_short_run(problem_id):
    """A short run (far from the recipe) moves every unknown well toward its truth: its error
    falls below half of where it started. Except Burgers' viscosity λ₂, which first rises
    (to 0.0042 in the recipe's run, 0.006 in a short one) while u takes shape and settles only
    in the L-BFGS phase: its recovery is the recipe's figure (docs/results.md)."""
    train = {"optimizer": "adam+lbfgs", "steps": 200, "lr": 1e-2, "lbfgs_steps": 150}
    solution = pl.solve(
        problem_id,
        **SHIPPED[problem_id],
        net={"width": 24, "depth": 3},
        solver={"n_interior": 512, "n_boundary": 128},
        train={**train, "eval_every": 350, "checkpoint_every": 0},
    )
    first = {}
    for u in solution.problem.strong_form().unknowns:
        if isinstance(u, pl.Unknown):
            init, true = torch.as_tensor(u.init, dtype=torch.float64), torch.as_tensor(u.exact)
            first[u.name] = float((init - true).norm() / true.norm())
        else:  # a field starts at its constant init
            x = pinnlab_test_points(solution.problem)
            true = u.exact(x)
            first[u.name] = float((u.init - true).norm() / true.norm())
    first.pop("lambda_2" if problem_id == "burgers-inverse" else "", None)
    assert first
    for name, start in first.items():
        error = solution.metrics[f"{name}_error"]
        assert error < 0.5 * start, f"{problem_id}: {name} error {error:.3g}, from {start:.3g}"


def pinnlab_test_points(problem):
    from pinnlab.metrics import test_points

    return test_points(problem)[:, int(problem.time_dependent) :]


def test_a_tensorboard_log_holds_the_losses_the_error_and_the_unknowns(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    cfg = pl.make_config(
        "test-rod",
        overrides={"train": {**SHORT, "steps": 4, "log": "tensorboard"}},
        problems_dirs=[Rod],
    )
    pl.run(cfg, out=tmp_path / "rod.h5", problems_dirs=[Rod])
    events = EventAccumulator(str(tmp_path / "rod.h5.tb"))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {"loss", "loss/residual", "loss/boundary", "loss/data", "lr", "error"} <= tags
    assert {"unknown/kappa", "kappa_error"} - tags == {"kappa_error"}  # metrics are not logged
    assert [e.step for e in events.Scalars("loss")] == [1, 2, 3, 4]
    kappa = [e.value for e in events.Scalars("unknown/kappa")]
    solution = pl.load(tmp_path / "rod.h5", problems_dirs=[Rod])
    np.testing.assert_allclose(kappa, solution.history["unknown.kappa"], rtol=1e-6)


def test_tensorboard_without_the_package_is_a_clear_error(monkeypatch):
    import builtins

    real = builtins.__import__

    def no_tensorboard(name, *args, **kwargs):
        if name.startswith("torch.utils.tensorboard"):
            raise ImportError("No module named 'tensorboard'")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_tensorboard)
    cfg = pl.make_config(
        "test-rod", overrides={"train": {**SHORT, "log": "tensorboard"}}, problems_dirs=[Rod]
    )
    with pytest.raises(pl.ConfigError, match=r'pip install "pinnlab\[tensorboard\]"'):
        pl.run(cfg, problems_dirs=[Rod])


def test_a_fields_scale_sets_the_size_of_its_variation():
    from pinnlab.unknowns import FieldNetwork

    with pytest.raises(pl.ParameterError, match="scale must be a number > 0"):
        pl.UnknownField("s", scale=0.0)
    box = (torch.zeros(1), torch.ones(1))
    nets = [
        FieldNetwork(pl.UnknownField("s", init=0.5, scale=c), box, torch.Generator().manual_seed(0))
        for c in (1.0, 10.0)
    ]
    x = torch.rand(5, 1)
    for net in nets:
        torch.testing.assert_close(net(x), torch.full((5, 1), 0.5))  # starts at init
        with torch.no_grad():
            [*net.net.children()][-1].weight.fill_(0.1)  # the output layer, the same in both
    (a, b) = (net(x) - 0.5 for net in nets)
    torch.testing.assert_close(b, 10 * a)
