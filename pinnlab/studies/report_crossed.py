"""The report of a screening design crossed with dimensions and problems (``cross``): the
factor analysis at each cross cell, the seed-to-seed noise floor and the power it leaves, and
whether a factor's effect changes with the cross keys (factor × d terms of one ANOVA)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats as sps

from . import stats

#: The effect the power is stated for: a factor that changes the error 1.5-fold.
EFFECT = math.log10(1.5)


def crossed_sections(study, df: pd.DataFrame, figures: Path) -> list[str]:
    from .report_factors import _factor_sections
    from .reporting import _table

    cross = list(study.cross)
    factors = [f for f in study.grid if df[f].nunique() > 1]
    df = df.assign(log10_error=np.log10(df["error_value"].astype(float)))
    sigma, dof = noise_floor(df, [*factors, *cross], "log10_error")
    lines = [
        f"## Which factors matter, and does the answer change with {', '.join(cross)}",
        "",
        f"**Noise floor.** Runs that differ only in their seed scatter by σ = {sigma:.3f} in "
        f"log10 error (pooled within design cells, {dof} degrees of freedom): a factor of "
        f"{10**sigma:.2f} in error.",
        "",
    ]
    rows = []
    for key, part in df.groupby(cross, sort=False):
        key = key if isinstance(key, tuple) else (key,)
        points = part.groupby(factors).ngroups
        seeds = len(study.seeds)
        rows.append((*key, points, seeds, power(sigma, points, seeds)))
    lines += [
        f"**Power** to find a main effect of 1.5× in error (|Δ log10| = {EFFECT:.3f}) of a "
        "two-level factor at the 5 % level in each cell, with this noise floor "
        "(SE = σ·√(4/(points·seeds))):",
        "",
        *_table((*cross, "design points", "seeds", "power"), rows),
    ]
    by_cell = {}
    for key, part in df.groupby(cross, sort=False):
        key = key if isinstance(key, tuple) else (key,)
        label = ", ".join(f"{c} = {v}" for c, v in zip(cross, key, strict=True))
        tag = "-" + "-".join("".join(ch if ch.isalnum() else "-" for ch in str(v)) for v in key)
        lines += _factor_sections(study, part, figures, title=f"### At {label}", tag=tag)
        baseline = {f: _first_level(study, f) for f in factors}
        by_cell[label] = {
            (e.factor, e.contrast): e
            for e in stats.main_effects(part, factors, "log10_error", baseline=baseline)
        }
    lines += [f"## Main effects on log10 error at each {', '.join(cross)}", ""]
    names = sorted({k for cell in by_cell.values() for k in cell})
    lines += _table(
        ("factor", "contrast", *by_cell),
        [
            (
                f,
                c,
                *[
                    f"{cell[(f, c)].estimate:+.2f} [{cell[(f, c)].ci[0]:+.2f}, "
                    f"{cell[(f, c)].ci[1]:+.2f}]"
                    if (f, c) in cell
                    else "–"
                    for cell in by_cell.values()
                ],
            )
            for f, c in names
        ],
    )
    table = stats.anova(df, [*factors, *cross], "log10_error", interactions=True)
    terms = [t for t in table.index if any(c in t for c in cross) and stats.TIMES in t]
    lines += [
        f"Factor × {', '.join(cross)} terms of one type-II ANOVA over every run (main effects "
        "and two-way interactions): a small p says the factor's effect changes with it.",
        "",
        *_table(
            ("term", "share of variance", "F", "p"),
            [
                (t, f"{table.loc[t, 'share']:.1%}", table.loc[t, "F"], table.loc[t, "p_value"])
                for t in terms
            ],
        ),
    ]
    return lines


def _first_level(study, factor: str):
    from .design import factor_label

    return factor_label(factor, study.grid[factor][0])


def noise_floor(df: pd.DataFrame, cells: list[str], column: str) -> tuple[float, int]:
    """(σ, degrees of freedom): the pooled standard deviation of ``column`` within the cells
    of equal ``cells`` (runs that differ by their seed only)."""
    values = df.dropna(subset=[column])
    groups = values.groupby(cells)[column]
    ss = float(groups.apply(lambda v: ((v - v.mean()) ** 2).sum()).sum())
    dof = int((groups.count() - 1).clip(lower=0).sum())
    return (math.sqrt(ss / dof) if dof else math.nan), dof


def power(sigma: float, points: int, seeds: int, effect: float = EFFECT, alpha: float = 0.05):
    """The power of a two-sided z test of a two-level main effect of size ``effect`` estimated
    from ``points`` design points × ``seeds`` seeds (half at each level)."""
    if not math.isfinite(sigma) or sigma <= 0:
        return math.nan
    se = sigma * math.sqrt(4 / (points * seeds))
    z = sps.norm.ppf(1 - alpha / 2)
    return float(sps.norm.cdf(effect / se - z) + sps.norm.cdf(-effect / se - z))
