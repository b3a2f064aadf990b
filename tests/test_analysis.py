"""pinnlab.analysis: the Gauss–Newton spectrum against a dense eigendecomposition, Lanczos
against dense, and loss slices through the trained weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import tiny_config

import pinnlab as pl
from pinnlab import analysis
from pinnlab.build import build_model, build_problem, build_solver
from pinnlab.gauss_newton import curvature_rows


def setting(method="pinn", **sections):
    cfg = tiny_config(
        "poisson-sine" if method == "pinn" else "poisson-harmonic",
        method=method,
        dtype="float64",
        net={"width": 6, "depth": 2},
        solver={"n_interior": 24, "n_boundary": 8},
        **sections,
    )
    problem = build_problem(cfg)
    solver = build_solver(problem, cfg)
    model = build_model(problem, cfg, device=torch.device("cpu"), solver=solver)
    generator = torch.Generator().manual_seed(0)
    model = solver.setup(model.module, generator)
    return solver, model, solver.batch(model, generator)


def dense_gram(solver, model, batch) -> torch.Tensor:
    """JᵀJ from one reverse pass per residual row (no vmap, no row Jacobians)."""
    weights = solver.weights()
    rows = curvature_rows(solver, model, batch, lambda k: weights.get(k, 1.0))
    params = [p for p in model.module.parameters() if p.requires_grad]
    r = torch.cat([w**0.5 * t.vector(t.rows().unsqueeze(2)).reshape(-1) for t, w in rows.values()])
    jac = torch.stack(
        [
            torch.cat(
                [
                    (g if g is not None else torch.zeros_like(p)).reshape(-1)
                    for g, p in zip(
                        torch.autograd.grad(r[i], params, retain_graph=True, allow_unused=True),
                        params,
                        strict=True,
                    )
                ]
            )
            for i in range(len(r))
        ]
    )
    return jac.T @ jac


@pytest.mark.parametrize("method", ["pinn", "deep-ritz"])
def test_the_dense_spectrum_is_that_of_the_gauss_newton_matrix(method):
    solver, model, batch = setting(method)
    spectrum = analysis.gauss_newton_spectrum(solver, model, batch)
    reference = torch.linalg.eigvalsh(dense_gram(solver, model, batch)).flip(0).numpy()
    k = min(spectrum.rows, spectrum.size)
    assert spectrum.dense and len(spectrum.eigenvalues) == k
    np.testing.assert_allclose(spectrum.eigenvalues, reference[:k].clip(0), rtol=1e-8, atol=1e-10)
    assert spectrum.trace == pytest.approx(reference.sum(), rel=1e-10)
    assert 1 <= spectrum.effective_rank() <= k


def test_condition_number_and_effective_rank_over_the_range():
    spectrum = analysis.Spectrum(np.array([4.0, 2.0, 1.0, 1e-20]), 4, 4, True, 7.0)
    assert spectrum.condition() == 4.0
    flat = analysis.Spectrum(np.array([1.0, 1.0, 0.0]), 3, 3, True, 2.0)
    assert flat.effective_rank() == pytest.approx(2.0)


def test_lanczos_finds_the_top_of_the_dense_spectrum():
    solver, model, batch = setting()
    dense = analysis.gauss_newton_spectrum(solver, model, batch)
    lanczos = analysis.gauss_newton_spectrum(solver, model, batch, top=5, dense_limit=1)
    assert not lanczos.dense and len(lanczos.eigenvalues) == 5
    np.testing.assert_allclose(lanczos.eigenvalues, dense.eigenvalues[:5], rtol=1e-7)
    with pytest.raises(ValueError, match="whole spectrum"):
        lanczos.condition()


def test_loss_slices_pass_through_the_weights_at_zero_and_leave_them():
    solver, model, batch = setting()
    before = {k: v.clone() for k, v in model.module.state_dict().items()}
    weights = solver.weights()
    loss = float(
        sum(weights.get(k, 1.0) * v.detach() for k, v in solver.loss(model, batch).items())
    )
    line = analysis.loss_slice(solver, model, batch, alphas=[-0.5, 0.0, 0.5])
    assert line.values.shape == (3,) and line.values[1] == pytest.approx(loss, rel=1e-12)
    assert line.values[0] != line.values[2]
    plane = analysis.loss_slice(solver, model, batch, alphas=[-1, 0, 1], betas=[0, 1])
    assert plane.values.shape == (3, 2) and plane.values[1, 0] == pytest.approx(loss, rel=1e-12)
    for k, v in model.module.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_directions_are_filter_normalised():
    _, model, _ = setting()
    direction = analysis.filter_normalised_direction(model.module, torch.Generator().manual_seed(3))
    for (name, p), d in zip(model.module.named_parameters(), direction, strict=True):
        if p.dim() < 2:
            assert not d.any(), name
        else:
            torch.testing.assert_close(d.norm(dim=1), p.detach().norm(dim=1), msg=name)


def test_setting_of_a_trained_solution_is_the_trained_function():
    """The solution's module is bound as it is: its loss on a batch is the trained loss (an
    output transform applied a second time would change the function)."""
    cfg = tiny_config(dtype="float64", solver={"n_interior": 64, "n_boundary": 32})
    solution = pl.run(pl.make_config(config=cfg, sets=["train.optimizer=lbfgs", "train.steps=60"]))
    solver, model, batch = analysis.setting(solution)
    assert model.module is solution.model
    line = analysis.loss_slice(solver, model, batch, alphas=[0.0])
    assert line.values[0] < 0.1 * solution.history["loss"][0]
    spectrum = analysis.gauss_newton_spectrum(solver, model, batch)
    assert spectrum.dense and spectrum.eigenvalues[0] > 0


def test_a_run_records_its_spectrum_at_every_evaluation():
    cfg = tiny_config(
        dtype="float64", train={"steps": 4, "eval_every": 2, "diagnostics": ["spectrum"]}
    )
    history = pl.run(cfg).history
    assert list(history["eval_step"]) == [2, 4]
    for key in ("lambda_max", "lambda_min", "condition", "effective_rank", "trace"):
        values = history[f"spectrum.{key}"]
        assert len(values) == 2 and np.all(np.isfinite(values)) and np.all(values > 0), key
    assert np.all(history["spectrum.condition"] >= 1)


def test_the_spectrum_is_refused_for_a_loss_that_is_no_sum_of_squares():
    from pinnlab.errors import ConfigError

    cfg = pl.make_config(
        "harmonic-oscillator",
        method="vmc",
        config={"train": {"steps": 2, "diagnostics": ["spectrum"]}, "device": "cpu"},
        params={"dim": 1},
    )
    with pytest.raises(
        ConfigError, match=r"train\.diagnostics spectrum measures.*Methods that take it"
    ):
        pl.run(cfg)


def test_a_study_that_records_the_spectrum_reports_it(tmp_path):
    from pinnlab.studies import read_study, run_study
    from pinnlab.studies.report import write_report

    study = read_study(
        {
            "name": "landscape",
            "base": {
                "problem": {"id": "poisson-sine", "dim": 2},
                "net": {"width": 4, "depth": 1},
                "solver": {"n_interior": 32, "n_boundary": 8},
                "dtype": "float64",
                "train": {
                    "steps": 4,
                    "eval_every": 2,
                    "diagnostics": ["spectrum"],
                    "checkpoint_every": 0,
                },
            },
            "grid": {"train.optimizer": ["adam", "lbfgs"]},
        }
    )
    run_study(study, tmp_path / "store", workers=1, threads=1, progress=False)
    text = write_report(tmp_path / "store").read_text()
    assert "## The curvature: Gauss–Newton / NTK spectrum and loss slices" in text
    assert "| train.optimizer | seed | λ_max init | λ_max end | rank 1e-6 init |" in text
    for name in ("landscape-rank", "landscape-slices"):
        assert (tmp_path / "store" / "figures" / f"{name}.png").exists()


@pytest.mark.parametrize("derivatives", ["auto", "reverse"])
def test_the_test_residual_is_the_rms_residual_at_fixed_fresh_points(derivatives):
    from pinnlab.derivatives import Derivatives

    cfg = tiny_config(
        dtype="float64",
        solver={
            "n_interior": 16,
            "n_boundary": 8,
            "test_residual": 300,
            "derivatives": derivatives,
        },
        train={"steps": 3},
    )
    solution = pl.run(cfg)
    first = solution.metrics["test_residual_rms"]
    assert first == solution.solver.test_residual_rms(solution.model)  # the same points
    generator = torch.Generator().manual_seed(2**31 - 1)
    x = solution.solver.spec.domain.sample_interior(300, generator=generator, dtype=torch.float64)
    d = Derivatives(solution.model, x, method="reverse")
    r = solution.problem.strong_form().residual(d)
    assert first == pytest.approx(float(r.detach().square().mean().sqrt()), rel=1e-10)


def test_a_study_that_measures_the_test_residual_reports_the_generalisation_gap(tmp_path):
    from pinnlab.studies import read_study, run_study
    from pinnlab.studies.report import write_report

    study = read_study(
        {
            "name": "overparametrization",
            "base": {
                "problem": {"id": "poisson-sine", "dim": 2},
                "net": {"depth": 1},
                "solver": {"n_interior": 16, "n_boundary": 8, "test_residual": 100},
                "train": {"steps": 5, "checkpoint_every": 0},
            },
            "grid": {"net.width": [1, 2, 4], "train.resample_every": [0, 1]},
        }
    )
    run_study(study, tmp_path / "store", workers=1, threads=1, progress=False)
    text = write_report(tmp_path / "store").read_text()
    assert "## Generalisation: training loss, test residual and error against size" in text
    assert "### train.resample_every=0" in text and "### train.resample_every=1" in text
    assert "| 4 | 17 | 0.708 |" in text  # width 4: 4w + 1 weights over 24 points
    assert (tmp_path / "store" / "figures" / "generalisation.png").exists()


def test_band_errors_split_the_error_by_wave_number():
    """For u = Σ sin(2π m x) over modes 1, 4, 16 and a 'network' that returns u with its
    m = 16 wave removed, the error is all in the band [16, 64), where it is 100 %."""
    from pinnlab.registry import catalogue

    problem = catalogue().problem("poisson-multiscale", dim=1)

    class Missing16(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))

        def forward(self, x):
            return problem.exact(x) - torch.sin(2 * torch.pi * 16 * x[:, 0])

    bands = analysis.band_errors(problem, Missing16())
    assert set(bands) == {"bands.0-4", "bands.4-16", "bands.16-64"}
    assert bands["bands.0-4"] < 1e-10 and bands["bands.4-16"] < 1e-10
    assert bands["bands.16-64"] == pytest.approx(1.0, rel=1e-10)


def test_feature_angles_are_zero_for_the_solution_itself_and_large_for_a_wrong_one():
    from pinnlab.registry import catalogue

    problem = catalogue().problem("poisson-ridge", dim=20, waves=2)
    points = torch.rand(256, 20, dtype=torch.float64, generator=torch.Generator().manual_seed(0))

    class Exact(torch.nn.Module):
        def forward(self, x):
            return problem.exact(x)

    class Axis(torch.nn.Module):  # varies along x₀ and x₁ only
        def forward(self, x):
            return torch.sin(x[:, 0]) + torch.cos(x[:, 1])

    right = analysis.feature_angles(problem, Exact(), points)
    assert right["features.angle_max"] < 1e-4 and right["features.cos2_mean"] > 1 - 1e-10
    wrong = analysis.feature_angles(problem, Axis(), points)
    assert wrong["features.angle_max"] > 45 and wrong["features.cos2_mean"] < 0.5


def test_bands_and_features_during_training_and_their_refusals():
    from pinnlab.errors import ConfigError

    cfg = tiny_config(
        "poisson-multiscale", dim=1, train={"steps": 2, "eval_every": 2, "diagnostics": ["bands"]}
    )
    history = pl.run(cfg).history
    assert {"bands.0-4", "bands.4-16", "bands.16-64"} <= set(history)
    cfg = tiny_config(
        "poisson-ridge", dim=5, train={"steps": 2, "eval_every": 2, "diagnostics": ["features"]}
    )
    assert 0 <= pl.run(cfg).history["features.angle_max"][-1] <= 90
    with pytest.raises(ConfigError, match="bands measures the error per frequency band"):
        pl.run(tiny_config(dim=3, train={"steps": 2, "diagnostics": ["bands"]}))
    with pytest.raises(ConfigError, match="relevant_directions"):
        pl.run(tiny_config(train={"steps": 2, "diagnostics": ["features"]}))
    with pytest.raises(ConfigError, match="repeats"):
        tiny_config(train={"diagnostics": ["bands", "bands"]})
    old = tiny_config(train={"spectrum": True})  # the key's first form
    assert old.train.diagnostics == ["spectrum"]


def test_a_study_that_records_bands_and_features_reports_them(tmp_path):
    from pinnlab.studies import read_study, run_study
    from pinnlab.studies.report import write_report

    study = read_study(
        {
            "name": "bias",
            "base": {
                "net": {"width": 8, "depth": 1},
                "solver": {"n_interior": 32, "n_boundary": 8},
                "train": {"steps": 4, "eval_every": 2, "checkpoint_every": 0},
            },
            "arms": {
                "multiscale": {
                    "problem": {"id": "poisson-multiscale", "dim": 1},
                    "train": {"diagnostics": ["bands"]},
                },
                "ridge": {
                    "problem": {"id": "poisson-ridge", "dim": 5},
                    "train": {"diagnostics": ["features"]},
                },
            },
            "grid": {"arm": ["multiscale", "ridge"]},
        }
    )
    run_study(study, tmp_path / "store", workers=1, threads=1, progress=False)
    text = write_report(tmp_path / "store").read_text()
    assert "## What the network learns over training" in text
    assert "| multiscale | bands.16-64 |" in text and "| ridge | features.angle_max |" in text
    for name in ("diagnostics-bands", "diagnostics-features"):
        assert (tmp_path / "store" / "figures" / f"{name}.png").exists()
