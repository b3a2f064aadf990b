"""The statistics behind study reports: power laws, summaries, factorial effects, ANOVA."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from pinnlab.studies.stats import (
    Effect,
    PowerLaw,
    anova,
    interaction_table,
    interactions,
    main_effects,
    power_law,
    summarize,
)

# The factors A, B, C of the docstrings. (Not named A, B, C: statsmodels formulas see the
# caller's globals, where a global C would shadow patsy's C().)
DEPTH, ACT, LR = "net.depth", "net.activation", "train.lr"


def factorial(levels: dict[str, list], seeds: int) -> pd.DataFrame:
    """A full factorial design, one row per (cell, seed)."""
    rows = [
        {**dict(zip(levels, combo, strict=True)), "seed": s}
        for combo in itertools.product(*levels.values())
        for s in range(seeds)
    ]
    return pd.DataFrame(rows)


def two_by_two(interaction: float = 0.0, sigma: float = 0.1, seed: int = 1) -> pd.DataFrame:
    """y = 1 + 2·[A=hi] + 0.5·[B=hi] + interaction·[A=hi][B=hi] + noise, 3 seeds per cell."""
    df = factorial({DEPTH: ["lo", "hi"], ACT: ["lo", "hi"]}, seeds=3)
    a, b = (df[DEPTH] == "hi").to_numpy(float), (df[ACT] == "hi").to_numpy(float)
    noise = np.random.default_rng(seed).normal(0.0, sigma, len(df))
    df["rel_l2"] = 1 + 2 * a + 0.5 * b + interaction * a * b + noise
    return df


def inside(value: float, ci: tuple[float, float]) -> bool:
    return ci[0] <= value <= ci[1]


# -- power laws -------------------------------------------------------------------------------


def test_power_law_recovers_exponent_and_prefactor():
    rng = np.random.default_rng(0)
    x = np.tile([2.0, 4.0, 8.0, 16.0, 32.0, 64.0], 3)  # 6 x values × 3 seeds
    y = 0.3 * x**1.7 * np.exp(rng.normal(0.0, 0.05, x.size))
    fit = power_law(x, y)
    assert isinstance(fit, PowerLaw)
    assert fit.n == 18
    assert fit.exponent == pytest.approx(1.7, abs=0.03)
    assert fit.prefactor == pytest.approx(0.3, rel=0.1)
    lo, hi = fit.exponent_ci
    assert lo < 1.7 < hi
    assert lo < fit.exponent < hi
    assert hi - lo < 0.2
    assert fit.r2 > 0.99
    np.testing.assert_allclose(fit([1.0, 10.0]), fit.prefactor * np.array([1.0, 10.0]) ** 1.7, 0.1)
    # a wider level gives a wider interval
    lo99, hi99 = power_law(x, y, level=0.99).exponent_ci
    assert lo99 < lo and hi < hi99


def test_power_law_exact_data():
    x = np.array([1.0, 2.0, 3.0, 5.0])
    fit = power_law(x, 2.0 * x**-0.5)
    assert fit.exponent == pytest.approx(-0.5)
    assert fit.prefactor == pytest.approx(2.0)
    assert fit.r2 == pytest.approx(1.0)
    assert fit.exponent_ci[0] == pytest.approx(-0.5) and fit.exponent_ci[1] == pytest.approx(-0.5)


@pytest.mark.parametrize(
    ("x", "y", "match"),
    [
        ([1.0, 2.0], [1.0, 2.0], "at least 3"),
        ([1.0, 2.0, 3.0], [1.0, 0.0, 2.0], "positive"),
        ([1.0, -2.0, 3.0], [1.0, 1.0, 2.0], "positive"),
        ([2.0, 2.0, 2.0], [1.0, 2.0, 3.0], "single distinct"),
        ([1.0, 2.0, 3.0], [1.0, np.nan, 3.0], "NaN"),
        ([1.0, 2.0, 3.0], [1.0, 2.0], "same number"),
    ],
)
def test_power_law_rejects_bad_input(x, y, match):
    with pytest.raises(ValueError, match=match):
        power_law(x, y)


def test_power_law_rejects_bad_level():
    with pytest.raises(ValueError, match="level"):
        power_law([1, 2, 3], [1, 2, 3], level=95)


# -- summaries --------------------------------------------------------------------------------


def test_summarize():
    df = pd.DataFrame(
        {
            DEPTH: [2, 2, 2, 4, 8, 8],
            ACT: ["tanh", "tanh", "relu", "tanh", "tanh", "tanh"],
            "seed": [0, 1, 0, 0, 0, 1],
            "rel_l2": [1e-2, 1e-4, 5e-3, 2e-3, 1.0, np.nan],
        }
    )
    s = summarize(df, DEPTH, "rel_l2")
    assert list(s.index) == [2, 4, 8]
    assert s.index.name == DEPTH
    assert list(s.columns) == ["mean", "std", "min", "max", "count", "gmean"]
    v = np.array([1e-2, 1e-4, 5e-3])
    assert s.loc[2, "mean"] == pytest.approx(v.mean())
    assert s.loc[2, "std"] == pytest.approx(v.std(ddof=1))
    assert s.loc[2, "min"] == pytest.approx(1e-4)
    assert s.loc[2, "max"] == pytest.approx(1e-2)
    assert s.loc[2, "count"] == 3
    assert s.loc[2, "gmean"] == pytest.approx(math.exp(np.log(v).mean()))
    assert math.isnan(s.loc[4, "std"])  # a single run
    assert s.loc[8, "count"] == 1  # the missing value is skipped
    assert s.loc[8, "mean"] == pytest.approx(1.0)

    two = summarize(df, [DEPTH, ACT], "rel_l2", log=False)
    assert "gmean" not in two.columns
    assert two.index.names == [DEPTH, ACT]
    assert two.loc[(2, "tanh"), "mean"] == pytest.approx(0.00505)
    assert two.loc[(2, "relu"), "count"] == 1

    signed = df.assign(gap=[-1.0, 1.0, 2.0, 3.0, 4.0, 5.0])
    assert "gmean" not in summarize(signed, DEPTH, "gap").columns  # not a log-scale response
    forced = summarize(signed, DEPTH, "gap", log=True)
    assert math.isnan(forced.loc[2, "gmean"]) and forced.loc[4, "gmean"] == pytest.approx(3.0)

    with pytest.raises(ValueError, match="no column"):
        summarize(df, "net.width", "rel_l2")


# -- factorial effects ------------------------------------------------------------------------


def test_main_effects_recover_planted_effects():
    df = two_by_two()
    effects = main_effects(df, [DEPTH, ACT], "rel_l2", n_boot=1000)
    assert [(e.factor, e.contrast) for e in effects] == [(DEPTH, "hi vs lo"), (ACT, "hi vs lo")]
    assert all(isinstance(e, Effect) for e in effects)
    ea, eb = effects
    assert inside(2.0, ea.ci) and inside(ea.estimate, ea.ci)
    assert inside(0.5, eb.ci) and inside(eb.estimate, eb.ci)
    assert ea.estimate == pytest.approx(2.0, abs=0.15)
    assert eb.estimate == pytest.approx(0.5, abs=0.15)
    assert ea.ci[1] - ea.ci[0] < 0.5
    # the point estimate is the plain difference of means in a balanced design
    means = df.groupby(DEPTH)["rel_l2"].mean()
    assert ea.estimate == pytest.approx(means["hi"] - means["lo"])
    # deterministic given the seed; another seed moves only the interval
    assert main_effects(df, [DEPTH, ACT], "rel_l2", n_boot=1000) == effects
    other = main_effects(df, [DEPTH, ACT], "rel_l2", n_boot=1000, seed=1)
    assert other[0].estimate == ea.estimate and other[0].ci != ea.ci
    # an explicit baseline flips the contrast
    flipped = main_effects(df, [DEPTH, ACT], "rel_l2", baseline={DEPTH: "hi"}, n_boot=1000)
    assert flipped[0].contrast == "lo vs hi"
    assert flipped[0].estimate == pytest.approx(-ea.estimate)
    with pytest.raises(ValueError, match="does not occur"):
        main_effects(df, [DEPTH], "rel_l2", baseline={DEPTH: "mid"}, n_boot=10)


def test_interactions_recover_planted_interaction():
    planted = interactions(two_by_two(interaction=1.5), [DEPTH, ACT], "rel_l2", n_boot=1000)
    assert len(planted) == 1
    (e,) = planted
    assert e.factor == f"{DEPTH} × {ACT}" and e.contrast == "interaction"
    # half the difference of the simple effects: ½[(2 + 1.5) − 2] = 0.75
    assert inside(0.75, e.ci) and e.estimate == pytest.approx(0.75, abs=0.15)
    assert e.ci[0] > 0
    (none,) = interactions(two_by_two(), [DEPTH, ACT], "rel_l2", n_boot=1000)
    assert inside(0.0, none.ci)


def test_interaction_contrast_matches_the_formula():
    df = two_by_two(interaction=1.0, sigma=0.3)
    m = df.groupby([DEPTH, ACT])["rel_l2"].mean()
    expected = 0.5 * ((m["hi", "hi"] - m["lo", "hi"]) - (m["hi", "lo"] - m["lo", "lo"]))
    (e,) = interactions(df, [DEPTH, ACT], "rel_l2", n_boot=200)
    assert e.estimate == pytest.approx(expected)


def test_multilevel_factor():
    df = factorial({DEPTH: [2, 4, 8], ACT: ["tanh", "relu"]}, seeds=3)
    noise = np.random.default_rng(3).normal(0.0, 0.05, len(df))
    df["rel_l2"] = df[DEPTH].map({2: 1.0, 4: 0.5, 8: 0.2}) + noise
    effects = main_effects(df, [DEPTH, ACT], "rel_l2", n_boot=500)
    depth = [e for e in effects if e.factor == DEPTH]
    assert [e.contrast for e in depth] == ["4 vs 2", "8 vs 2"]
    assert inside(-0.5, depth[0].ci) and inside(-0.8, depth[1].ci)
    (act,) = [e for e in effects if e.factor == ACT]
    assert act.contrast == "relu vs tanh" and inside(0.0, act.ci)
    assert (
        main_effects(df, [DEPTH], "rel_l2", baseline={DEPTH: 8}, n_boot=10)[0].contrast == "2 vs 8"
    )
    # a three-level factor is left to the interaction plot
    assert interactions(df, [DEPTH, ACT], "rel_l2", n_boot=10) == []


def test_interactions_skip_empty_cells():
    df = two_by_two().query(f"not (`{DEPTH}` == 'hi' and `{ACT}` == 'hi')")
    assert interactions(df, [DEPTH, ACT], "rel_l2", n_boot=10) == []


def test_interaction_table():
    df = factorial({DEPTH: [8, 2, 4], ACT: ["tanh", "relu"]}, seeds=2)
    df["rel_l2"] = df[DEPTH] * 10.0 + (df[ACT] == "relu") + df["seed"]
    t = interaction_table(df, DEPTH, ACT, "rel_l2")
    assert t.shape == (3, 2)
    assert list(t.index) == [2, 4, 8] and list(t.columns) == ["relu", "tanh"]
    assert t.index.name == DEPTH and t.columns.name == ACT
    assert t.loc[4, "relu"] == pytest.approx(41.5)
    assert t.loc[8, "tanh"] == pytest.approx(80.5)


# -- analysis of variance ---------------------------------------------------------------------


def three_factor(
    seeds: int, rows: Callable[[pd.DataFrame], pd.Series] | None = None
) -> pd.DataFrame:
    """A strong, a weak and a null factor: y = 3·[A=4] + 1·[B=relu] + 0·[C] + noise."""
    df = factorial({DEPTH: [2, 4], ACT: ["tanh", "relu"], LR: [1e-3, 1e-2]}, seeds=seeds)
    if rows is not None:
        df = df[rows(df)].reset_index(drop=True)
    noise = np.random.default_rng(7).normal(0.0, 0.2, len(df))
    df["rel_l2"] = 3.0 * (df[DEPTH] == 4) + 1.0 * (df[ACT] == "relu") + noise
    return df


def test_anova_ranks_factors():
    df = three_factor(seeds=3)
    t = anova(df, [DEPTH, ACT, LR], "rel_l2")
    assert t.attrs["model"] == "main effects + two-way interactions"
    assert list(t.columns) == ["sum_sq", "df", "F", "p_value", "share"]
    assert t.index.name == "term"
    assert t.index[-1] == "residual"
    assert set(t.index) == {
        DEPTH,
        ACT,
        LR,
        f"{DEPTH} × {ACT}",
        f"{DEPTH} × {LR}",
        f"{ACT} × {LR}",
        "residual",
    }
    assert list(t.index[:2]) == [DEPTH, ACT]
    assert t.loc[DEPTH, "share"] > t.loc[ACT, "share"] > t.loc[LR, "share"]
    assert t["share"].iloc[:-1].is_monotonic_decreasing
    assert t["share"].sum() == pytest.approx(1.0)
    # balanced design: type-II sums of squares partition the total sum of squares
    y = df["rel_l2"].to_numpy()
    assert t["sum_sq"].sum() == pytest.approx(((y - y.mean()) ** 2).sum())
    assert t.loc[DEPTH, "p_value"] < 1e-6 and t.loc[LR, "p_value"] > 0.01
    assert t.loc["residual", "df"] == 24 - 7
    assert math.isnan(t.loc["residual", "F"])


def test_anova_matches_statsmodels_with_quoted_names():
    import statsmodels.formula.api as smf
    from statsmodels.stats.anova import anova_lm

    df = three_factor(seeds=2)
    formula = 'rel_l2 ~ C(Q("net.depth")) + C(Q("net.activation")) + C(Q("train.lr"))'
    ref = anova_lm(smf.ols(formula, data=df).fit(), typ=2)
    t = anova(df, [DEPTH, ACT, LR], "rel_l2", interactions=False)
    assert t.attrs["model"] == "main effects"
    np.testing.assert_allclose(t.loc[DEPTH, "sum_sq"], ref.loc['C(Q("net.depth"))', "sum_sq"])
    np.testing.assert_allclose(t.loc[LR, "p_value"], ref.loc['C(Q("train.lr"))', "PR(>F)"])
    np.testing.assert_allclose(t.loc["residual", "sum_sq"], ref.loc["Residual", "sum_sq"])


def test_anova_falls_back_to_main_effects_for_a_fraction():
    def half(d):  # 2^(3-1) fraction, C = A·B (defining relation I = ABC)
        return (d[DEPTH] == 4) ^ (d[ACT] == "relu") ^ (d[LR] == 1e-2)

    one_seed = three_factor(seeds=1, rows=half)
    assert len(one_seed) == 4
    t = anova(one_seed, [DEPTH, ACT, LR], "rel_l2")
    assert t.attrs["model"] == "main effects"
    assert list(t.index) == [DEPTH, ACT, LR, "residual"]
    assert t["share"].sum() == pytest.approx(1.0)
    assert t["df"].tolist() == [1.0, 1.0, 1.0, 0.0]
    assert t["F"].isna().all() and t["p_value"].isna().all()

    # with seeds there is an error estimate, but the interactions stay aliased: main effects only
    two_seeds = three_factor(seeds=2, rows=half)
    t2 = anova(two_seeds, [DEPTH, ACT, LR], "rel_l2")
    assert t2.attrs["model"] == "main effects"
    assert t2.loc[DEPTH, "share"] > t2.loc[ACT, "share"] > t2.loc[LR, "share"]
    assert np.isfinite(t2.loc[DEPTH, "F"]) and t2.loc["residual", "df"] == 4.0


def test_anova_drops_single_level_factors():
    df = three_factor(seeds=2).assign(**{"problem.dim": 5})
    t = anova(df, [DEPTH, "problem.dim", ACT], "rel_l2")
    assert t.attrs["dropped"] == ["problem.dim"]
    assert set(t.index) == {DEPTH, ACT, f"{DEPTH} × {ACT}", "residual"}
    assert t["share"].sum() == pytest.approx(1.0)


def test_anova_rejects_confounded_factors():
    df = three_factor(seeds=2)
    df["net.width"] = df[DEPTH] * 16  # the same factor under another name
    with pytest.raises(ValueError, match="confounded"):
        anova(df, [DEPTH, "net.width"], "rel_l2")
