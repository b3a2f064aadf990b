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
    from .reporting import _finish, _plt, _table

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
        start = analysis.gauss_newton_spectrum(*analysis.setting(initial, seed=saved.config.seed))
        trained = load(path, problems_dirs=problems_dirs)
        setting = analysis.setting(trained, seed=saved.config.seed)
        end = analysis.gauss_newton_spectrum(*setting)
        effective = history.get("spectrum.effective_rank")
        if effective is not None:  # (κ saturates at float64's resolution: the rank does not)
            curves.setdefault(key, []).append(
                (
                    np.concatenate([[0], history["eval_step"]]),
                    np.concatenate([[start.effective_rank()], effective]),
                )
            )
        rows.append(
            (
                *key,
                run["seed"],
                float(start.eigenvalues[0]),
                float(end.eigenvalues[0]),
                start.rank(1e-6) if start.dense else math.nan,
                end.rank(1e-6) if end.dense else math.nan,
                start.effective_rank() if start.dense else math.nan,
                end.effective_rank() if end.dense else math.nan,
                end.condition() if end.dense else math.nan,
                run["error_value"],
            )
        )
        if key not in slices and run["seed"] == study.seeds[0]:
            slices[key] = analysis.loss_slice(*setting, alphas=np.linspace(-1, 1, 41), seed=0)
    if not rows:
        return []
    lines = [
        "## The curvature: Gauss–Newton / NTK spectrum and loss slices",
        "",
        "The spectrum of G = JᵀJ on one training batch, at initialisation (rebuilt from the "
        "run's seed) and for the trained weights (`pinnlab.analysis`): λ_max; the rank at 10⁻⁶ "
        "(the eigen-directions gradient flow moves at least a millionth as fast as the fastest); "
        "the effective rank exp H(λ/Σλ); and κ = λ_max/λ_min over the eigenvalues above "
        "10⁻¹² λ_max — where κ is close to 10¹², the spectrum runs down to the resolution of "
        "float64 and κ says only that.",
        "",
    ]
    lines += _table(
        (
            *others,
            "seed",
            "λ_max init",
            "λ_max end",
            "rank 1e-6 init",
            "rank 1e-6 end",
            "eff. rank init",
            "eff. rank end",
            "κ end",
            "error",
        ),
        sorted(rows, key=lambda r: tuple(str(v) for v in r)),
    )
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for i, (key, runs) in enumerate(sorted(curves.items())):
        for j, (steps, effective) in enumerate(runs):
            ax.plot(
                np.maximum(steps, 0.5),
                effective,
                color=f"C{i % 10}",
                alpha=0.8,
                label=", ".join(key) if j == 0 else None,
            )
    ax.set(
        xscale="log",
        xlabel="step (0 drawn at 0.5)",
        ylabel="effective rank of JᵀJ",
        title="how many directions carry the curvature, over training",
    )
    lines += [_finish(fig, ax, root / "figures", "landscape-rank", 6), ""]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for i, (key, line) in enumerate(sorted(slices.items())):
        ax.plot(line.alphas, line.values, color=f"C{i % 10}", label=", ".join(key))
    ax.set(
        yscale="log",
        xlabel="α (filter-normalised direction δ)",
        ylabel="loss L(θ + αδ)",
        title="one-dimensional loss slices through the trained weights (first seed)",
    )
    lines += [_finish(fig, ax, root / "figures", "landscape-slices", 6), ""]
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
