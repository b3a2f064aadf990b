"""``pinnlab report DIR``: tables and figures of a study, written to DIR/report.md.

A study whose grid varies ``problem.dim`` gets the dimension-scaling analysis: error and cost
per dimension over seeds, power-law fits of cost and error against d, the errors of the best
constant and best affine fit as reference lines (concentration of measure), and the cost a
finite-difference grid would need for the same error. Any other study gets the factor
analysis: main effects and two-way interactions on log10 error and on time with bootstrap
confidence intervals over seeds, and a type-II ANOVA ranking the factors.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from ..config import RunConfig
from ..files import atomic_write
from . import stats
from .design import StudyConfig, aliases, resolution, two_level_signs
from .report_factors import _factor_sections
from .reporting import DIM, GRID_SIZES, _finish, _groups, _plt, _response_name, _table
from .store import load

ERROR_COLUMNS = ("rel_l2_centered", "rel_h1_seminorm")


def write_report(root: str | os.PathLike, *, problems_dirs: Iterable = ()) -> Path:
    """Analyse the store in ``root``; write report.md and figures/ (PNG and PDF) there."""
    root = Path(root)
    df = load(root)
    study = StudyConfig.model_validate(df.attrs["study"])
    figures = root / "figures"
    figures.mkdir(exist_ok=True)
    lines = _header(study, df)
    answer = root / "answer.md"  # the researcher's reading of the results, kept with them
    if answer.exists():
        lines += [answer.read_text().strip(), ""]
    done = df[df["status"] == "done"] if len(df) else df
    if len(done) == 0:
        lines.append("No run has finished yet.\n")
    elif study.target is not None:
        from .report_target import target_sections

        lines += target_sections(study, done, root, list(problems_dirs))
    elif study.cross:
        from .report_crossed import crossed_sections

        lines += crossed_sections(study, done, figures)
    elif DIM in study.grid and not _records_spectrum(study):
        lines += _dimension_sections(study, done, root, list(problems_dirs))
    else:
        lines += _factor_sections(study, done, figures)
    if len(done) and "test_residual_rms" in done:
        from .report_generalisation import generalisation_sections

        lines += generalisation_sections(study, done, root)
    if len(done) and _records_spectrum(study):
        from .report_landscape import landscape_sections

        lines += landscape_sections(study, done, root, list(problems_dirs))
    if len(done):
        from .report_diagnostics import diagnostics_sections

        lines += diagnostics_sections(study, done, root)
    lines += _failures(df, study)
    path = root / "report.md"
    with atomic_write(path) as tmp:
        tmp.write_text("\n".join(lines) + "\n")
    return path


def _records_spectrum(study: StudyConfig) -> bool:
    """Whether the study's runs record the spectrum (its report is about the landscape: the
    factor analysis, not the dimension scaling, goes beside it)."""
    train = study.base.get("train") or {}
    return "spectrum" in train.get("diagnostics", []) or bool(train.get("spectrum"))


# --- common ----------------------------------------------------------------------------
def _header(study: StudyConfig, df: pd.DataFrame) -> list[str]:
    status = df["status"].value_counts().to_dict() if len(df) else {}
    grid = "; ".join(f"`{k}` ∈ {v}" for k, v in study.grid.items())
    lines = [f"# Study `{study.name}`", ""]
    if study.description:
        lines += [study.description.strip(), ""]
    lines += [
        f"- design: {study.design}"
        + (f" ({study.runs} points)" if study.runs else "")
        + f"; grid: {grid}; seeds: {study.seeds}",
        f"- runs: {status.get('done', 0)} finished, {status.get('failed', 0)} failed",
    ]
    if "device_name" in df and len(df):
        devices = ", ".join(sorted({str(d) for d in df["device_name"].dropna()}))
        lines.append(f"- hardware: {devices}; wall times are per run, as measured in the worker")
    lines += [
        f"- reproduce: `pinnlab study {study.name} --out DIR` (a shipped study; else its YAML "
        "file), then `pinnlab report DIR`",
        "",
    ]
    if study.design == "fractional":
        sets = aliases(study)
        lines += [
            f"Aliases of this fraction (resolution {resolution(two_level_signs(study))}): each set below "
            "is one estimate, reported under its first name.",
            "",
            *[f"- {' = '.join(names)}" for names in sets],
            "",
        ]
    return lines


def _failures(df: pd.DataFrame, study: StudyConfig | None = None) -> list[str]:
    failed = df[df["status"] == "failed"] if len(df) else df
    if len(failed) == 0:
        return []
    lines = ["## Failed runs", ""]
    factors = [f for f in df.attrs.get("factors", []) if f in df]
    broken = [
        f"- `{factor}` = {level}: all {len(part)} runs failed"
        for factor in factors
        for level, part in df.groupby(factor, sort=False)
        if (part["status"] == "failed").all()
    ]
    if broken:
        lines += ["**Levels at which every run failed:**", "", *broken, ""]
    rows = [
        (r["id"], r["seed"], str(r["error"]).replace("|", "/")[:200]) for _, r in failed.iterrows()
    ]
    return lines + _table(("run", "seed", "error"), rows)


# --- dimension scaling ---------------------------------------------------------------------
def _dimension_sections(
    study: StudyConfig, df: pd.DataFrame, root: Path, problems_dirs: list
) -> list[str]:
    from ..build import build_solver
    from ..metrics import fit_baselines
    from ..registry import catalogue

    figures = root / "figures"

    lines = ["## Error and cost versus dimension", ""]
    response = _response_name(df)
    for label, part in _groups(study, df):
        slug = "".join(c if c.isalnum() else "-" for c in label).strip("-")
        dims = sorted(int(d) for d in part[DIM].unique())
        config = _run_config(root, part["id"].iloc[0])
        params = {**config.problem.params()}
        problems = {
            d: catalogue(problems_dirs).problem(config.problem.id, **{**params, "dim": d})
            for d in dims
        }
        solver = build_solver(problems[dims[0]], config, problems_dirs)
        at_time = solver.network().at_time
        baselines = {d: fit_baselines(p, at_time=at_time) for d, p in problems.items()}
        lines += [f"### {label}", ""]
        lines += _dimension_table(part, dims, baselines, response)
        fits, fit_lines = _fits(part, response)
        lines += fit_lines
        grid = _grid_comparison(problems, part, dims, response)
        lines += grid[0]
        lines.append(_error_figure(part, dims, baselines, response, figures, f"error-{slug}"))
        lines.append("")
        lines.append(_cost_figure(part, dims, fits, grid[1], figures, f"cost-{slug}"))
        lines.append("")
    return lines


def _run_config(root: Path, run_id: str) -> RunConfig:
    """The normalised config of a run, from its solution file."""
    from ..solution import read

    return read(root / "runs" / f"{run_id}.h5", arrays=False).config


def _dimension_table(
    part: pd.DataFrame, dims: list[int], baselines: dict, response: str
) -> list[str]:
    header = [
        "d",
        f"{response} mean ± std",
        "min – max",
        *[c for c in ERROR_COLUMNS if c in part],
        "best constant",
        "best affine",
        "wall time [s]",
        "steps",
        "parameters",
        "samples seen",
        "seeds",
    ]
    rows = []
    for d in dims:
        at = part[part[DIM] == d]
        e = at["error_value"]
        rows.append(
            (
                d,
                f"{e.mean():.3g} ± {e.std():.2g}" if len(e) > 1 else f"{e.mean():.3g}",
                f"{e.min():.3g} – {e.max():.3g}",
                *[at[c].mean() for c in ERROR_COLUMNS if c in part],
                baselines[d].get("const_rel_l2", float("nan")),
                baselines[d].get("linear_rel_l2", float("nan")),
                at["wall_time"].mean(),
                int(at["steps"].mean()),
                int(at["parameters"].mean()),
                f"{at['samples'].mean():.3g}",
                len(at),
            )
        )
    return _table(header, rows)


def _fits(part: pd.DataFrame, response: str) -> tuple[dict[str, stats.PowerLaw], list[str]]:
    """Power laws of wall time, samples and error against d (every run a point)."""
    fits: dict[str, stats.PowerLaw] = {}
    rows = []
    for column, name in (
        ("wall_time", "wall time"),
        ("samples", "samples seen"),
        ("error_value", response),
    ):
        y = part[column].to_numpy(float)
        x = part[DIM].to_numpy(float)
        try:
            fit = stats.power_law(x, y)
        except ValueError as e:
            rows.append((name, f"no fit: {e}", "", ""))
            continue
        fits[column] = fit
        lo, hi = fit.exponent_ci
        rows.append(
            (name, f"{fit.prefactor:.3g} · d^{fit.exponent:.3f}", f"[{lo:.3f}, {hi:.3f}]", fit.r2)
        )
    lines = ["Least-squares power laws y ≈ c · d^k over all runs (95 % interval of k):", ""]
    return fits, lines + _table(("quantity", "fit", "k 95 % CI", "R² (log–log)"), rows)


def _grid_comparison(problems: dict, part: pd.DataFrame, dims: list[int], response: str):
    """Finite-difference solves at d = 1…3 and the grid each d would need for the network's
    error; (report lines, {d: (log10 points, log10 seconds)}).

    The errors compared are centred (rel_l2_centered) when the runs have them: a grid of one
    node per axis already matches a large mean of u, so the plain rel_l2 of a nearly constant
    solution would make any grid look cheap. A tensor grid has at least 2 nodes per axis.
    """
    from ..errors import PinnlabError
    from .grid import convergence, fit_grid

    metric = "rel_l2_centered" if "rel_l2_centered" in part else "rel_l2"
    column = metric if metric in part else "error_value"
    first = next(iter(problems.values()))
    models, reason = {}, ""
    for d, sizes in GRID_SIZES.items():
        try:
            solves = convergence(type(first).from_params({**first.params(), "dim": d}), sizes)
        except PinnlabError as e:
            reason = str(e)
            continue
        models[d] = (fit_grid(solves, metric), solves[-1])
    if not models:
        return [f"No finite-difference baseline for {first.id}: {reason}", ""], {}
    lines = [
        f"Finite differences (second-order, scipy.sparse; real solves; error {metric} at the "
        "nodes):",
        "",
    ]
    lines += _table(
        (
            "d",
            "order p",
            "error ≈ C·n^−p: C",
            "finest n",
            "its unknowns",
            "its error",
            "its time [s]",
        ),
        [
            (d, m.order, m.constant, s.n, s.unknowns, getattr(s, metric), s.seconds)
            for d, (m, s) in models.items()
        ],
    )
    model = models[max(models)][0]
    extrapolated = {}
    rows = []
    for d in dims:
        at = part[part[DIM] == d]
        error = float(at[column].mean())
        per_axis = max(2.0, (model.constant / error) ** (1 / model.order))
        log_points = d * math.log10(per_axis)
        log_seconds = math.log10(model.seconds_per_unknown) + model.time_exponent * log_points
        extrapolated[d] = (log_points, log_seconds)
        network = float(at["wall_time"].mean())
        rows.append((d, error, per_axis, f"10^{log_points:.1f}", f"10^{log_seconds:.1f}", network))
    lines += [
        f"The grid a grid method needs at each d to reach the network's mean {metric}: "
        f"n = (C/error)^(1/p) nodes per axis with C and p of d = {max(models)} carried over "
        "(how C changes with d is problem-dependent: read the result as an order of magnitude), "
        "at least 2 per axis; its time from the measured cost per unknown:",
        "",
    ]
    lines += _table(
        (
            "d",
            f"network {metric}",
            "grid n per axis",
            "grid points n^d",
            "grid time [s]",
            "network time [s]",
        ),
        rows,
    )
    return lines, extrapolated


def _error_figure(part, dims, baselines, response, figures: Path, name: str) -> str:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 4))
    summary = stats.summarize(part, DIM, "error_value")
    ax.errorbar(
        summary.index,
        summary["mean"],
        yerr=[summary["mean"] - summary["min"], summary["max"] - summary["mean"]],
        marker="o",
        capsize=3,
        label=f"network {response} (mean, min–max)",
    )
    for column, style in zip(ERROR_COLUMNS, ("s--", "^--"), strict=True):
        if column in part:
            means = part.groupby(DIM)[column].mean()
            ax.plot(means.index, means.values, style, label=f"network {column}")
    for key, style, label in (
        ("const_rel_l2", "k:", "best constant"),
        ("linear_rel_l2", "k-.", "best affine function"),
    ):
        values = [baselines[d].get(key, np.nan) for d in dims]
        if np.isfinite(values).any():
            ax.plot(dims, values, style, label=label)
    ax.set(xscale="log", yscale="log", xlabel="dimension d", ylabel="relative error")
    return _finish(fig, ax, figures, name, 7)


def _cost_figure(part, dims, fits, grid, figures: Path, name: str) -> str:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 4))
    times = part.groupby(DIM)["wall_time"].mean()
    ax.plot(times.index, np.log10(times.values), "o-", label="network: wall time (measured)")
    if "wall_time" in fits:
        fit = fits["wall_time"]
        d = np.geomspace(min(dims), max(dims), 50)
        ax.plot(d, np.log10(fit(d)), "C0--", label=f"fit ∝ d^{fit.exponent:.2f}")
    samples = part.groupby(DIM)["samples"].mean()
    ax.plot(
        samples.index, np.log10(samples.values), "s-", color="C2", label="network: samples seen"
    )
    if grid:
        ds = sorted(grid)
        ax.plot(
            ds, [grid[d][1] for d in ds], "x-", color="C3", label="grid: time for the same error"
        )
        ax.plot(ds, [grid[d][0] for d in ds], "+--", color="C1", label="grid: points n^d")
    ax.set(xscale="log", xlabel="dimension d", ylabel="log10 (seconds or points)")
    return _finish(fig, ax, figures, name, 7)


# --- factors --------------------------------------------------------------------------------
