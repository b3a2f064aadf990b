"""The report of a study whose runs record what the network learns over training
(``train.diagnostics``: ``bands``, the error per frequency band; ``features``, the angles to
the solution's directions): the curves over training and the step at which each band's error
first fell below a tenth — the order in which the scales are learned."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

PREFIXES = ("bands.", "features.")
#: A band counts as learned once its relative error is below this.
LEARNED = 0.1


def records_diagnostics(study) -> bool:
    """Whether the base or an arm of ``study`` asks for the bands or features diagnostics."""
    fragments = [study.base, *(study.arms or {}).values()]
    asked = [n for f in fragments for n in (f.get("train") or {}).get("diagnostics", [])]
    return any(n in ("bands", "features") for n in asked)


def diagnostics_sections(study, df: pd.DataFrame, root: Path) -> list[str]:
    from ..solution import read
    from .reporting import _plt, _save, _table

    if not records_diagnostics(study):
        return []
    factors = [f for f in study.grid if df[f].nunique() > 1]
    curves: dict[str, dict[str, list]] = {}
    for _, run in df.iterrows():
        history = read(root / "runs" / f"{run['id']}.h5").history or {}
        label = ", ".join(str(run[f]) for f in factors) or str(run["id"])
        for key in history:
            if key.startswith(PREFIXES):
                curves.setdefault(key, {}).setdefault(label, []).append(
                    (np.asarray(history["eval_step"]), np.asarray(history[key]))
                )
    if not curves:
        return []
    lines = [
        "## What the network learns over training",
        "",
        "`bands.<lo>-<hi>`: relative error ‖ê‖/‖û‖ of the wave numbers lo ≤ |m| < hi on a grid; "
        "`features.angle_max`: the largest principal angle (degrees) between the network's "
        "gradient subspace and the directions the solution depends on (`pinnlab.analysis`). "
        f"Below: the median over seeds of the first step at which each band's error fell under "
        f"{LEARNED:g} (– never), and of each quantity at the end.",
        "",
    ]
    labels = sorted({label for by in curves.values() for label in by})
    rows = []
    for label in labels:
        for key in sorted(curves):
            runs = curves[key].get(label)
            if not runs:
                continue
            first = [
                float(steps[np.argmax(values < LEARNED)]) if (values < LEARNED).any() else math.nan
                for steps, values in runs
            ]
            learned = np.nanmedian(first) if np.isfinite(first).any() else math.nan
            rows.append(
                (
                    label,
                    key,
                    learned if key.startswith("bands.") else "",
                    float(np.median([v[-1] for _, v in runs])),
                    len(runs),
                )
            )
    lines += _table(
        ("run", "quantity", f"first step under {LEARNED:g}", "at the end (median)", "seeds"), rows
    )
    plt = _plt()
    for group in PREFIXES:
        keys = sorted(k for k in curves if k.startswith(group))
        if not keys:
            continue
        fig, axes = plt.subplots(1, len(keys), figsize=(4 * len(keys), 3.5), squeeze=False)
        for ax, key in zip(axes[0], keys, strict=True):
            for i, label in enumerate(sorted(curves[key])):
                for j, (steps, values) in enumerate(curves[key][label]):
                    ax.plot(
                        np.maximum(steps, 1),
                        values,
                        color=f"C{i % 10}",
                        alpha=0.7,
                        label=label if j == 0 else None,
                    )
            ax.set(xscale="log", xlabel="step", title=key)
            if group == "bands.":
                ax.set_yscale("log")
            ax.grid(True, which="both", alpha=0.3)
        axes[0][0].legend(fontsize=6)
        lines += [_save(fig, root / "figures", f"diagnostics-{group.rstrip('.')}"), ""]
    return lines
