"""Target mode: runs train to a target error, the cost of each target is recorded, runs that
never reach it are kept as censored, and the censored power-law fit."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pinnlab.errors import ConfigError
from pinnlab.studies import expand, load, read_study, run_study
from pinnlab.studies.stats import censored_power_law, power_law
from pinnlab.studies.target import costs, long_table
from pinnlab.training import evaluation_step

#: poisson-sine at d = 1 and 2 trained by L-BFGS to 10 % and 3 % (reached in 10–40 steps),
#: and to 1e-9 (never, in 60 steps: censored).
TARGET = {
    "name": "target",
    "base": {
        "problem": {"id": "poisson-sine", "dim": 1},
        "method": "pinn",
        "net": {"width": 16, "depth": 1},
        "train": {"optimizer": "lbfgs", "steps": 60, "eval_every": 5, "checkpoint_every": 0},
        "solver": {"n_interior": 64, "n_boundary": 16},
        "dtype": "float64",
    },
    "grid": {"problem.dim": [1, 2]},
    "seeds": [0],
    "target": {"metric": "rel_l2", "errors": [0.03, 0.1]},
}


def study(**changes):
    return read_study({**json.loads(json.dumps(TARGET)), **changes})


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    out = tmp_path_factory.mktemp("target") / "store"
    run_study(study(), out, workers=1, threads=1, progress=False)
    return out


def test_runs_stop_at_the_smallest_target_and_record_each_cost(store):
    df = load(store)
    assert len(df) == 2 and set(df["status"]) == {"done"}
    assert set(df["stop_reason"]) == {"target_error"}
    for _, row in df.iterrows():
        assert row["cost.0.1.reached"] and row["cost.0.03.reached"]
        assert 0 < row["cost.0.1.steps"] <= row["cost.0.03.steps"] == row["steps"]
        assert evaluation_step(row["cost.0.1.steps"], 5, True)  # an evaluation step
        assert 0 < row["cost.0.1.samples"] <= row["cost.0.03.samples"] == row["samples"]
        assert 0 < row["cost.0.1.wall_time"] <= row["cost.0.03.wall_time"] < row["wall_time"]
        assert row["rel_l2"] <= 0.03
        assert row["peak_memory"] > 2**20
    table = long_table(df)
    assert len(table) == 4 and set(table["target"]) == {0.03, 0.1}
    assert table["reached"].all()


def test_a_run_that_never_reaches_its_target_is_kept_censored(tmp_path):
    s = study(target={"metric": "rel_l2", "errors": [0.1, 1e-9]}, grid={"problem.dim": [1]})
    out = tmp_path / "store"
    run_study(s, out, workers=1, threads=1, progress=False)
    df = load(out)
    (row,) = df.to_dict("records")
    assert row["stop_reason"] == "steps" and row["steps"] == 60
    assert row["cost.0.1.reached"] and not row["cost.1e-09.reached"]
    assert row["cost.1e-09.steps"] == 60 and row["cost.1e-09.samples"] == row["samples"]
    table = long_table(df)
    assert list(table.sort_values("target")["reached"]) == [False, True]


def test_costs_from_a_history():
    history = {
        "eval_step": [0, 10, 20],
        "eval_samples": [0, 100, 200],
        "eval_time": [1.0, 3.0, 6.0],
        "eval_seconds": [1.0, 0.5, 0.5],
        "error": [1.0, 0.1, 0.01],
    }
    env = {"steps": 25, "samples": 250, "wall_time": 8.0}
    got = costs(history, env, [0.5, 0.01, 1e-3])
    assert got["0.5"] == {"reached": True, "steps": 10, "samples": 100, "wall_time": 1.5}
    assert got["0.01"] == {"reached": True, "steps": 20, "samples": 200, "wall_time": 4.0}
    assert got["0.001"] == {"reached": False, "steps": 25, "samples": 250, "wall_time": 6.0}


def test_target_mode_sets_the_runs_metric_and_target_error():
    (run, _) = expand(study())
    assert run.config.metric == "rel_l2" and run.config.train.target_error == 0.03
    assert run.config.train.eval_geometric  # early targets resolved to within √2 in steps


def test_geometric_evaluation_steps():
    steps = [s for s in range(1, 250) if evaluation_step(s, 100, True)]
    assert steps == [1, 2, 3, 4, 6, 8, 11, 16, 23, 32, 45, 64, 91, 100, 200]
    assert [s for s in range(1, 250) if evaluation_step(s, 100, False)] == [100, 200]


@pytest.mark.parametrize(
    "changes,message",
    [
        ({"target": {"metric": "rel_l2", "errors": []}}, "errors"),
        ({"target": {"metric": "rel_l2", "errors": [0.1, -1.0]}}, "> 0"),
        ({"target": {"metric": "rel_l2", "errors": [0.1, 0.1]}}, "distinct"),
    ],
)
def test_bad_targets_are_refused(changes, message):
    with pytest.raises(ConfigError, match=message):
        study(**changes)


def test_a_target_that_the_runs_config_contradicts_is_refused():
    base = {**TARGET["base"], "metric": "max_abs"}
    with pytest.raises(ConfigError, match=r"target\.metric"):
        expand(study(base=base))
    base = {**TARGET["base"], "train": {**TARGET["base"]["train"], "target_error": 0.1}}
    with pytest.raises(ConfigError, match="target_error"):
        expand(study(base=base))


def test_a_target_metric_the_problem_cannot_measure_is_refused_before_any_run(tmp_path):
    out = tmp_path / "store"
    with pytest.raises(ConfigError, match=r"ref_rel_l2.*not measured.*rel_l2"):
        run_study(study(target={"metric": "ref_rel_l2", "errors": [0.1]}), out, progress=False)
    assert not (out / "index.jsonl").exists() or not (out / "index.jsonl").read_text()


# --- the censored power-law fit -------------------------------------------------------------
def test_censored_fit_without_censoring_is_ordinary_least_squares():
    rng = np.random.default_rng(1)
    d = np.repeat([2.0, 5, 10, 50, 100], 3)
    y = 2 * d**1.3 * np.exp(0.2 * rng.standard_normal(d.size))
    fit, ols = censored_power_law({"d": d}, y), power_law(d, y)
    assert fit.exponents["d"] == pytest.approx(ols.exponent, rel=1e-6)
    assert fit.exponent_ci["d"] == pytest.approx(ols.exponent_ci, rel=1e-5)
    assert fit.prefactor == pytest.approx(ols.prefactor, rel=1e-5)


def test_censored_fit_recovers_known_exponents_with_the_stated_coverage():
    """Cost = 3 d^1.2 ε^−0.7 with log-normal scatter, the costliest 20 % of each draw
    censored at a budget: over 200 draws the 95 % intervals hold the truth 90–99 % of the
    time."""
    rng = np.random.default_rng(0)
    d = np.repeat([2.0, 5, 10, 20, 50, 100, 1000], 4)
    inverse = np.tile([100.0, 1000 / 3], 14)
    hits = {"d": 0, "eps": 0}
    for _ in range(200):
        y = 3 * d**1.2 * inverse**0.7 * np.exp(0.3 * rng.standard_normal(d.size))
        budget = np.quantile(y, 0.8)
        fit = censored_power_law({"d": d, "eps": inverse}, np.minimum(y, budget), y > budget)
        for name, truth in (("d", 1.2), ("eps", 0.7)):
            low, high = fit.exponent_ci[name]
            hits[name] += low <= truth <= high
    assert all(0.90 <= h / 200 <= 0.99 for h in hits.values()), hits


def test_censored_fit_refuses_too_few_reached_points():
    d = np.array([2.0, 5, 10, 20])
    with pytest.raises(ValueError, match="reached"):
        censored_power_law({"d": d}, d, [True, True, True, False])


def test_the_target_report_shows_costs_fits_and_the_grid(store):
    from pinnlab.studies.report import write_report

    text = write_report(store).read_text()
    assert "## Cost to reach the target error against dimension" in text
    assert "| d | target | reached |" in text and "| 1/1 |" in text
    assert "Finite differences" in text and "grid nodes for 0.03" in text
    assert "| training time | " in text and "(0 censored)" in text
    assert (store / "figures" / "target-poisson-sine.png").exists()


# --- arms ----------------------------------------------------------------------------------
ARMS = {
    "name": "arms",
    "base": {"method": "pinn", "train": {"steps": 3, "checkpoint_every": 0}},
    "arms": {
        "structured": {"recipe": True},
        "generic": {"net": {"kind": "mlp", "width": 8, "depth": 1, "activation": "tanh"}},
    },
    "grid": {
        "problem.id": ["poisson-sine"],
        "problem.dim": [2, 1000],
        "arm": ["structured", "generic"],
    },
}


def test_a_recipe_arm_starts_from_the_recipe_at_each_dimension():
    runs = {(r.point["problem.dim"], r.point["arm"]): r.config for r in expand(read_study(ARMS))}
    assert runs[1000, "structured"].net.wrap == {"additive": {"units": 16}}  # d = 1,000 recipe
    assert runs[1000, "structured"].metric == "rel_l2_centered"
    assert runs[2, "structured"].train.phase_list()[0][0] == "engd"  # the d = 2 recipe
    for d in (2, 1000):
        generic = runs[d, "generic"]
        assert generic.net.width == 8 and not generic.net.wrap and generic.train.steps == 3


@pytest.mark.parametrize(
    "changes,message",
    [
        ({"arms": None}, "takes the names of 'arms'"),
        ({"grid": {"problem.dim": [2, 3]}}, "needs the grid factor 'arm'"),
        ({"grid": {"arm": ["structured", "wide"]}}, "not among arms"),
    ],
)
def test_bad_arms_are_refused(changes, message):
    with pytest.raises(ConfigError, match=message):
        read_study({**ARMS, **changes})


def test_a_kolmogorov_target_report_has_the_monte_carlo_line(tmp_path):
    """Feynman–Kac on the geometric basket: the Monte Carlo cost of the value at one point
    beside the network's; no finite-difference baseline (no energy form)."""
    from pinnlab.studies.report import write_report

    s = read_study(
        {
            "name": "kolmogorov",
            "base": {
                "problem": {"id": "bs-geometric-basket", "dim": 1},
                "method": "feynman-kac",
                "net": {"width": 8, "depth": 1},
                "solver": {"n_samples": 128, "paths": 2},
                "train": {"steps": 30, "lr": 1e-2, "eval_every": 10, "checkpoint_every": 0},
            },
            "grid": {"problem.dim": [1, 2]},
            "target": {"metric": "rel_l2", "errors": [0.5, 1e-9]},
        }
    )
    run_study(s, tmp_path / "store", workers=1, threads=1, progress=False)
    text = write_report(tmp_path / "store").read_text()
    assert "Monte Carlo at one point" in text and "pairs for 1e-09" in text
    assert "No finite-difference baseline" in text
    df = load(tmp_path / "store")
    assert not df["cost.1e-09.reached"].any()  # censored, and kept


def test_a_curves_problem_parameters_leave_out_those_of_other_problems():
    import pandas as pd

    from pinnlab.studies.report_target import _problem_params

    part = pd.DataFrame(
        {"problem.id": ["poisson-sine"], "problem.dim": [10], "problem.waves": [float("nan")]}
    )
    assert _problem_params(part) == {"id": "poisson-sine", "dim": 10}
