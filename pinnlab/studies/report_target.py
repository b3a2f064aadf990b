"""The report of a target-mode study: the cost of reaching each target error against d.

Per curve (every factor but the dimension: a family and an arm): the runs that reached each
target and the cost they took (training time, steps, samples, peak memory), the runs that
did not (censored at what they spent), and the fit cost ≈ c · d^a · (1/ε)^b with 95 %
intervals that keeps the censored runs as lower bounds (``stats.censored_power_law``). Beside
it, what classical methods pay for the same error: a tensor grid of second-order finite
differences (order and constant measured at d = 1, 2, 3, then N = n^d nodes with
n = (C/ε)^(1/p)), and for a Kolmogorov equation the Monte Carlo cost of the value at one point
to relative error ε (N = (σ/(ε u))² paths, σ measured), which gives one number where the
network gives the whole function.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from . import stats
from .target import long_table

DIM = "problem.dim"


def target_sections(study, df: pd.DataFrame, root: Path, problems_dirs: list) -> list[str]:
    """The report's sections for a study with a ``target``."""
    from .reporting import _groups, _table

    table = long_table(df)
    targets = list(study.target.errors)
    figures = root / "figures"
    lines = [
        "## Cost to reach the target error against dimension",
        "",
        f"Target metric `{study.target.metric}`, targets {', '.join(f'{t:g}' for t in targets)}. "
        "A run stops at the smallest target or its budget; the cost of a target is read at the "
        "first evaluation that reached it (training time, evaluations excluded). A run that "
        "never reached a target is *censored* there: it counts as a lower bound (its whole "
        "spend) in the fits, marked ▲ in the figures, and is never dropped.",
        "",
    ]
    lines += _never_reached(study, table)
    for label, part in _groups(study, table):
        dims = sorted(int(d) for d in part[DIM].unique())
        lines += [f"### {label}", ""]
        rows = []
        for d in dims:
            for t in targets:
                at = part[(part[DIM] == d) & (part["target"] == t)]
                hit = at[at["reached"].astype(bool)]
                rows.append(
                    (
                        d,
                        f"{t:g}",
                        f"{len(hit)}/{len(at)}",
                        float(hit["time_to_target"].median()) if len(hit) else math.nan,
                        float(hit["steps_to_target"].median()) if len(hit) else math.nan,
                        float(hit["samples_to_target"].median()) if len(hit) else math.nan,
                        float(at["time_to_target"].max()) if len(hit) < len(at) else math.nan,
                        float(at["peak_memory"].max()) / 2**30 if "peak_memory" in at else math.nan,
                    )
                )
        lines += _table(
            (
                "d",
                "target",
                "reached",
                "time to target [s] (median)",
                "steps",
                "samples",
                "censored at [s]",
                "peak memory [GiB]",
            ),
            rows,
        )
        fits, fit_lines = _fits(part, targets)
        lines += fit_lines
        grid, grid_lines = _grid(part, targets, dims, study.target.metric, problems_dirs)
        lines += grid_lines
        mc, mc_lines = _monte_carlo(part, targets, dims, problems_dirs)
        lines += mc_lines
        slug = "".join(c if c.isalnum() else "-" for c in label).strip("-")
        lines += [_figure(part, targets, fits.get("time_to_target"), grid, mc, figures, slug), ""]
    return lines


def _problem_params(part: pd.DataFrame) -> dict:
    """The problem's parameters of a curve's runs (a column another problem of the study has
    is NaN here and left out), its id under ``id``."""
    first = part.iloc[0]
    return {
        k[len("problem.") :]: first[k]
        for k in part
        if k.startswith("problem.") and not (isinstance(first[k], float) and math.isnan(first[k]))
    }


def _never_reached(study, table: pd.DataFrame) -> list[str]:
    """Flag each factor level whose runs reached no target at all."""
    flagged = []
    for factor in study.grid:
        if factor == DIM or factor not in table:
            continue
        for level, part in table.groupby(factor, sort=False):
            if not part["reached"].astype(bool).any():
                flagged.append(f"- `{factor}` = {level}: no run reached any target")
    if not flagged:
        return []
    return ["**Levels that never reached a target** (every run censored):", "", *flagged, ""]


def _fits(part: pd.DataFrame, targets: list[float]) -> tuple[dict, list[str]]:
    """Censored fits of time and samples to target against d (and 1/ε with two targets)."""
    from .reporting import _table

    variables = {"d": part[DIM].to_numpy(float)}
    if len(targets) > 1:
        variables["1/ε"] = 1 / part["target"].to_numpy(float)
    censored = ~part["reached"].astype(bool).to_numpy()
    fits, rows = {}, []
    for column, name in (("time_to_target", "training time"), ("samples_to_target", "samples")):
        y = part[column].to_numpy(float)
        keep = np.isfinite(y) & (y > 0)
        try:
            fit = stats.censored_power_law(
                {k: v[keep] for k, v in variables.items()}, y[keep], censored[keep]
            )
        except ValueError as e:
            rows.append((name, f"no fit: {e}", "", ""))
            continue
        fits[column] = fit
        law = f"{fit.prefactor:.3g}" + "".join(f" · {k}^{a:.2f}" for k, a in fit.exponents.items())
        cis = "; ".join(f"{k}: [{lo:.2f}, {hi:.2f}]" for k, (lo, hi) in fit.exponent_ci.items())
        rows.append((name, law, cis, f"{fit.n} ({fit.censored} censored)"))
    lines = [
        "Fit with the censored runs as lower bounds (log-normal scatter, maximum likelihood; "
        "95 % intervals):",
        "",
        *_table(("cost", "law", "exponent 95 % CI", "points"), rows),
    ]
    return fits, lines


def _grid(part: pd.DataFrame, targets, dims, metric: str, problems_dirs) -> tuple[dict, list[str]]:
    """{target: {d: log10 grid nodes}} from finite-difference solves at d = 1, 2, 3."""
    from ..errors import PinnlabError
    from ..registry import catalogue
    from .grid import convergence, fit_grid
    from .reporting import GRID_SIZES, _table

    which = "rel_l2_centered" if metric == "rel_l2_centered" else "rel_l2"
    params = _problem_params(part)
    problem_id = params.pop("id")
    models, reason = {}, ""
    for d, sizes in GRID_SIZES.items():
        try:
            problem = catalogue(problems_dirs).problem(problem_id, **{**params, "dim": d})
            models[d] = fit_grid(convergence(problem, sizes), which)
        except (PinnlabError, TypeError, ValueError) as e:
            reason = str(e)
    if not models:
        return {}, [f"No finite-difference baseline for {problem_id}: {reason}", ""]
    rows = [(d, m.order, m.constant) for d, m in models.items()]
    model = models[max(models)]
    lines = [
        f"Finite differences (second order; {which} at the nodes), measured: error ≈ C·n^−p",
        "",
        *_table(("d", "order p", "C"), rows),
        f"A tensor grid for error ε at dimension d: n = max(2, (C/ε)^(1/p)) nodes per axis "
        f"(C, p of d = {max(models)}), n^d in all.",
        "",
    ]
    grid = {}
    for t in targets:
        per_axis = max(2.0, (model.constant / t) ** (1 / model.order))
        grid[t] = {d: d * math.log10(per_axis) for d in dims}
    lines += _table(
        ("d", *[f"grid nodes for {t:g}" for t in targets]),
        [(d, *[f"10^{grid[t][d]:.1f}" for t in targets]) for d in dims],
    )
    return grid, lines


def _monte_carlo(part, targets, dims, problems_dirs) -> tuple[dict, list[str]]:
    """{target: {d: log10 pairs}} for the Feynman–Kac value at the centre of the region, to
    relative standard error ε: N = (σ / (ε u))², σ from 2¹⁴ paths at each d."""
    import torch

    from .. import montecarlo
    from ..problem import StochasticForm
    from ..registry import catalogue
    from .reporting import _table

    params = _problem_params(part)
    problem_id = params.pop("id")
    probe = catalogue(problems_dirs).problem(problem_id, **{**params, "dim": dims[0]})
    try:
        form = probe.stochastic_form()
    except (AttributeError, NotImplementedError):
        return {}, []
    if not isinstance(form, StochasticForm) or not form.linear:
        return {}, []
    paths, out, rows = 2**14, {t: {} for t in targets}, []
    for d in dims:
        problem = catalogue(problems_dirs).problem(problem_id, **{**params, "dim": d})
        form = problem.stochastic_form()
        low, high = form.region.bounds()
        centre = ((low + high) / 2).double()[None]
        value, stderr = montecarlo.price(form, 0.0, centre, paths, torch.Generator().manual_seed(0))
        sigma = float(stderr[0]) * math.sqrt(paths // 2)
        for t in targets:
            out[t][d] = 2 * math.log10(max(sigma / (t * abs(float(value[0]))), 1.0))
        rows.append((d, float(value[0]), sigma / abs(float(value[0]))))
    lines = [
        "Monte Carlo at one point (the centre of the region): relative spread σ/u of one "
        "antithetic pair, and the pairs N = (σ/(ε u))² for relative standard error ε:",
        "",
        *_table(
            ("d", "u(0, centre)", "σ/u", *[f"pairs for {t:g}" for t in targets]),
            [(*r, *[f"10^{out[t][r[0]]:.1f}" for t in targets]) for r in rows],
        ),
    ]
    return out, lines


def _figure(part, targets, fit, grid, mc, figures: Path, slug: str) -> str:
    from .reporting import _finish, _plt

    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for i, t in enumerate(targets):
        at = part[part["target"] == t]
        hit = at["reached"].astype(bool)
        colour = f"C{i}"
        ax.plot(
            at[DIM][hit],
            np.log10(at["time_to_target"][hit]),
            "o",
            color=colour,
            label=f"network, ε = {t:g}: training time",
        )
        if (~hit).any():
            ax.plot(
                at[DIM][~hit], np.log10(at["time_to_target"][~hit]), "^", mfc="none", color=colour
            )
        dims = np.geomspace(part[DIM].min(), part[DIM].max(), 50)
        if fit is not None:
            x = {
                "d": dims,
                **({"1/ε": np.full_like(dims, 1 / t)} if "1/ε" in fit.exponents else {}),
            }
            ax.plot(dims, np.log10(fit(**x)), "--", color=colour)
        if grid:
            ds = sorted(grid[t])
            ax.plot(ds, [grid[t][d] for d in ds], ":", color=colour, label=f"grid nodes, ε = {t:g}")
        if mc:
            ds = sorted(mc[t])
            ax.plot(ds, [mc[t][d] for d in ds], "-.", color=colour, label=f"MC pairs, ε = {t:g}")
    ax.set(
        xscale="log",
        xlabel="dimension d",
        ylabel="log10 (seconds, grid nodes, MC pairs)",
        title="cost to reach the target (▲ censored: a lower bound)",
    )
    return _finish(fig, ax, figures, f"target-{slug}", 6)
