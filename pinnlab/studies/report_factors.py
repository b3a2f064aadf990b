"""The factor analysis of a study's report: effects with bootstrap intervals, interactions,
a type-II ANOVA, and their figures (any study that is not a dimension or target study)."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pandas as pd

from . import stats
from .design import StudyConfig, aliases, factor_label
from .reporting import _plt, _response_name, _save, _table


def _factor_sections(
    study: StudyConfig,
    df: pd.DataFrame,
    figures: Path,
    title: str = "## Which factors matter",
    tag: str = "",
) -> list[str]:
    """Main effects, interactions and ANOVA of the grid's factors (figure names end in
    ``tag``)."""
    factors = [f for f in study.grid if df[f].nunique() > 1]
    if not factors:
        return [
            title,
            "",
            "No factor varies among the finished runs (the runs at its other levels failed or "
            "have not run yet).",
            "",
        ]
    # The baseline of each factor is its first level in the grid (as the DataFrame labels it).
    baseline = {f: factor_label(f, study.grid[f][0]) for f in factors}
    # Aliased interactions are one estimate: reported once, under every name of its set.
    sets = {names[0]: " = ".join(names) for names in aliases(study)}
    hidden = {name for names in aliases(study) for name in names[1:]}
    df = df.assign(log10_error=np.log10(df["error_value"].astype(float)))
    response = _response_name(df)
    seeds = len(study.seeds)
    lines = [
        title,
        "",
        f"Responses: log10 {response} (an effect of −0.3 halves the error) and wall time [s]. "
        "Effects are differences of means against the baseline level (the first listed in the "
        "grid), over the design (one-at-a-time: against the baseline point, the other factors "
        "held at baseline); intervals are 95 % percentile bootstraps resampling seeds "
        "within each design cell. Interactions (two-level factors) are half the difference of "
        "the simple effects."
        + (
            f" With {seeds} seeds per cell the bootstrap sees little of the seed noise and its "
            "intervals are narrow: trust an effect that the ANOVA (whose residual holds "
            "everything the model leaves out) also finds."
            if seeds < 4
            else ""
        ),
        "",
        "Summary per level:",
        "",
    ]
    rows = []
    for f in factors:
        s = stats.summarize(df, f, "error_value")
        t = df.groupby(f, sort=False)["wall_time"].mean()
        for level, row in s.iterrows():
            rows.append(
                (
                    f,
                    level,
                    row.get("gmean", row["mean"]),
                    row["min"],
                    row["max"],
                    t.get(level, np.nan),
                    int(row["count"]),
                )
            )
    lines += _table(
        ("factor", "level", f"{response} geometric mean", "min", "max", "mean time [s]", "runs"),
        rows,
    )
    ablation = study.design == "one-at-a-time"
    for column, title in (("log10_error", f"log10 {response}"), ("wall_time", "wall time [s]")):
        if ablation:  # each level against the baseline point itself, the rest held there
            main = [
                e
                for f in factors
                for e in stats.main_effects(
                    _at_baseline(df, baseline, f), [f], column, baseline=baseline
                )
            ]
            inter = []
        else:
            main = stats.main_effects(df, factors, column, baseline=baseline)
            inter = [
                dataclasses.replace(e, factor=sets.get(e.factor, e.factor))
                for e in stats.interactions(df, factors, column, baseline=baseline)
                if e.factor not in hidden
            ]
        lines += [f"### Effects on {title}", ""]
        lines += _table(
            ("factor", "contrast", "effect", "95 % CI", "beyond noise"),
            [_effect_row(e) for e in sorted(main + inter, key=lambda e: -abs(e.estimate))],
        )
        table = stats.anova(df, factors, column, interactions=not ablation)
        lines += [f"ANOVA ({table.attrs.get('model', '')}, type II):", ""]
        lines += _table(
            ("term", "share of variance", "sum sq", "df", "F", "p"),
            [
                (
                    term,
                    f"{r['share']:.1%}" if np.isfinite(r["share"]) else "–",
                    r["sum_sq"],
                    r["df"],
                    r["F"],
                    r["p_value"],
                )
                for term, r in table.iterrows()
            ],
        )
        slug = "error" if column == "log10_error" else "time"
        lines.append(_effects_figure(main, inter, title, figures, f"effects-{slug}{tag}"))
        lines.append("")
    if not ablation:
        lines.append(_interaction_figure(df, factors, figures, f"interactions{tag}"))
        lines.append("")
    return lines


def _at_baseline(df: pd.DataFrame, baseline: dict, factor: str) -> pd.DataFrame:
    """The runs whose factors other than ``factor`` are at their baseline levels."""
    keep = np.ones(len(df), dtype=bool)
    for f, level in baseline.items():
        if f != factor:
            keep &= (df[f] == level).to_numpy()
    return df[keep]


def _effect_row(e: stats.Effect) -> tuple:
    lo, hi = e.ci
    beyond = "yes" if (lo > 0 or hi < 0) else "no"
    return (e.factor, e.contrast, e.estimate, f"[{lo:.3g}, {hi:.3g}]", beyond)


def _effects_figure(main, inter, title: str, figures: Path, name: str) -> str:
    plt = _plt()
    effects = main + inter
    fig, ax = plt.subplots(figsize=(6, 0.35 * len(effects) + 1))
    y = np.arange(len(effects))
    est = np.array([e.estimate for e in effects])
    # (a percentile interval need not hold its estimate, e.g. with one seed per cell: a bar
    # then shows no error on that side)
    lo = np.clip(est - np.array([e.ci[0] for e in effects]), 0, None)
    hi = np.clip(np.array([e.ci[1] for e in effects]) - est, 0, None)
    colors = ["C0" if e in main else "C1" for e in effects]
    ax.barh(y, est, xerr=[lo, hi], color=colors, capsize=2)
    ax.set_yticks(y, [f"{e.factor}: {e.contrast}" for e in effects], fontsize=7)
    ax.axvline(0, color="k", lw=0.8)
    ax.set(xlabel=f"effect on {title} (95 % bootstrap CI)")
    ax.invert_yaxis()
    return _save(fig, figures, name)


def _interaction_figure(
    df: pd.DataFrame, factors: list[str], figures: Path, name: str = "interactions"
) -> str:
    """Cell means of log10 error for each pair of factors (one panel per pair, at most 6)."""
    plt = _plt()
    pairs = [(a, b) for i, a in enumerate(factors) for b in factors[i + 1 :]][:6]
    if not pairs:
        return ""
    cols = min(3, len(pairs))
    rows = math.ceil(len(pairs) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 3 * rows), squeeze=False)
    for ax, (a, b) in zip(axes.flat, pairs, strict=False):
        table = stats.interaction_table(df, a, b, "log10_error")
        for level in table.columns:
            ax.plot([str(i) for i in table.index], table[level], "o-", label=f"{b}={level}")
        ax.set(xlabel=a, ylabel="log10 error")
        ax.legend(fontsize=6)
    for ax in list(axes.flat)[len(pairs) :]:
        ax.axis("off")
    fig.tight_layout()
    return _save(fig, figures, name)
