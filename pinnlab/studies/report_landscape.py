"""The report of a study whose runs record the curvature (``train.diagnostics: [spectrum]``): the spectrum of
the Gauss–Newton / NTK matrix at initialisation and over training, per optimizer, width and
dimension, and one-dimensional loss slices through the trained weights (``pinnlab.analysis``).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

STEP_FACTORS = ("train.optimizer", "train.optimizer,train.steps", "train.phases")


def landscape_sections(study, df: pd.DataFrame, root: Path, problems_dirs: list) -> list[str]:
    """Tables and figures of the recorded spectra; [] when no run recorded one."""
    import torch

    from .. import analysis
    from ..run import build_run
    from ..solution import load, read
    from .report import _plt, _save, _table

    curves, rows, slices = {}, [], {}
    others = [f for f in study.grid if df[f].nunique() > 1] if len(df) else []
    for _, run in df.iterrows():
        path = root / "runs" / f"{run['id']}.h5"
        saved = read(path)
        history = saved.history or {}
        if "spectrum.lambda_max" not in history:
            continue
        key = tuple(str(run[f]) for f in others)
        *_, initial = build_run(saved.config, torch.device("cpu"), problems_dirs)
        solver, model, batch = analysis.setting(initial, seed=saved.config.seed)
        start = analysis.gauss_newton_spectrum(solver, model, batch)
        condition = history.get("spectrum.condition")
        curves.setdefault(key, []).append(
            (
                np.concatenate([[0], history["eval_step"]]),
                np.concatenate([[start.condition() if start.dense else math.nan], condition])
                if condition is not None
                else None,
            )
        )
        rows.append(
            (
                *key,
                run["seed"],
                float(start.eigenvalues[0]),
                start.condition() if start.dense else math.nan,
                float(history["spectrum.lambda_max"][-1]),
                float(condition[-1]) if condition is not None else math.nan,
                float(history["spectrum.effective_rank"][-1])
                if "spectrum.effective_rank" in history
                else math.nan,
                run["error_value"],
            )
        )
        if key not in slices and run["seed"] == study.seeds[0]:
            trained = load(path, problems_dirs=problems_dirs)
            s, m, b = analysis.setting(trained, seed=saved.config.seed)
            alphas = np.linspace(-1, 1, 41)
            slices[key] = analysis.loss_slice(s, m, b, alphas=alphas, seed=0)
    if not rows:
        return []
    lines = [
        "## The curvature: Gauss–Newton / NTK spectrum and loss slices",
        "",
        "λ and the condition number κ = λ_max/λ_min (over the eigenvalues above 10⁻¹² λ_max) "
        "of G = JᵀJ on the training batch, at initialisation (recomputed from the run's seed) "
        "and at the end; the effective rank exp H(λ/Σλ) at the end (`pinnlab.analysis`).",
        "",
    ]
    lines += _table(
        (
            *others,
            "seed",
            "λ_max at init",
            "κ at init",
            "λ_max at end",
            "κ at end",
            "effective rank at end",
            "error",
        ),
        sorted(rows, key=lambda r: tuple(str(v) for v in r)),
    )
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for i, (key, runs) in enumerate(sorted(curves.items())):
        for j, (steps, condition) in enumerate(runs):
            if condition is None:
                continue
            ax.plot(
                np.maximum(steps, 0.5),
                condition,
                color=f"C{i % 10}",
                alpha=0.8,
                label=", ".join(key) if j == 0 else None,
            )
    ax.set(
        xscale="log",
        yscale="log",
        xlabel="step (0 drawn at 0.5)",
        ylabel="condition number of JᵀJ",
        title="conditioning over training",
    )
    ax.legend(fontsize=6)
    ax.grid(True, which="both", alpha=0.3)
    lines += [_save(fig, root / "figures", "landscape-condition"), ""]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for i, (key, line) in enumerate(sorted(slices.items())):
        ax.plot(line.alphas, line.values, color=f"C{i % 10}", label=", ".join(key))
    ax.set(
        yscale="log",
        xlabel="α (filter-normalised direction δ)",
        ylabel="loss L(θ + αδ)",
        title="one-dimensional loss slices through the trained weights (first seed)",
    )
    ax.legend(fontsize=6)
    ax.grid(True, which="both", alpha=0.3)
    lines += [_save(fig, root / "figures", "landscape-slices"), ""]
    widths = [
        float(np.mean(np.diff(np.sign(np.diff(line.values))) != 0)) for line in slices.values()
    ]
    lines += [
        f"Loss slices: {len(slices)} curves of 41 points over α ∈ [−1, 1]; the fraction of "
        f"interior points where the slope changes sign (local extrema along the slice) is "
        f"{min(widths):.2f}–{max(widths):.2f}.",
        "",
    ]
    return lines
