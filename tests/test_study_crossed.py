"""Crossed designs: the screening design at every dimension, its report, the noise floor and
the power statement."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pinnlab.errors import ConfigError
from pinnlab.studies import expand, load, read_study, run_study
from pinnlab.studies.design import design_points, two_level_signs
from pinnlab.studies.report import write_report
from pinnlab.studies.report_crossed import noise_floor, power

CROSSED = {
    "name": "crossed",
    "base": {
        "problem": {"id": "poisson-sine", "dim": 1},
        "method": "pinn",
        "net": {"width": 6, "depth": 1},
        "train": {"steps": 5, "eval_every": 5, "checkpoint_every": 0},
        "solver": {"n_interior": 16, "n_boundary": 8},
    },
    "grid": {"net.activation": ["tanh", "sin"], "net.depth": [1, 2]},
    "cross": {"problem.dim": [1, 2]},
    "seeds": [0, 1],
}


def test_the_design_runs_at_every_cross_level():
    study = read_study(CROSSED)
    points = design_points(study)
    assert len(points) == 8 and [p["problem.dim"] for p in points] == [1] * 4 + [2] * 4
    assert len(two_level_signs(study)) == 4  # the screening design itself
    assert {r.config.problem.params()["dim"] for r in expand(study)} == {1, 2}


def test_a_key_in_grid_and_cross_is_refused():
    with pytest.raises(ConfigError, match="both grid and cross"):
        read_study({**CROSSED, "cross": {"net.depth": [1, 2]}})


def test_the_crossed_report(tmp_path):
    out = tmp_path / "store"
    run_study(read_study(CROSSED), out, workers=1, threads=1, progress=False)
    assert len(load(out)) == 16
    text = write_report(out).read_text()
    assert "## Which factors matter, and does the answer change with problem.dim" in text
    assert "**Noise floor.**" in text and "**Power**" in text
    assert "### At problem.dim = 1" in text and "### At problem.dim = 2" in text
    assert "net.activation × problem.dim" in text
    assert (out / "figures" / "effects-error-1.png").exists()


def test_noise_floor_and_power():
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"cell": np.repeat(np.arange(50), 4), "y": 0.2 * rng.standard_normal(200)})
    sigma, dof = noise_floor(df, ["cell"], "y")
    assert dof == 150 and sigma == pytest.approx(0.2, rel=0.15)
    assert power(0.2, 32, 2, effect=0.0) == pytest.approx(0.05)
    assert power(0.1, 32, 2) > power(0.1, 16, 2) > power(0.2, 16, 2)
    assert power(0.05, 64, 4) > 0.99
