"""The report of a study whose runs measure the residual away from the training points
(``solver.test_residual``): training loss, test residual and test error against the number of
parameters per training point — where the generalisation gap opens, and whether the test
error has a second descent past the interpolation threshold (Belkin, Hsu, Ma & Mandal, PNAS
116 (2019)).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

RATIO = "parameters per point"


def generalisation_sections(study, df: pd.DataFrame, root: Path) -> list[str]:
    """Tables and a figure of loss, test residual and error against parameters/points."""
    from ..solution import read
    from .reporting import _plt, _save, _table

    if "test_residual_rms" not in df or "parameters" not in df:
        return []
    df = df.copy()
    points, loss = [], []
    for run_id in df["id"]:
        saved = read(root / "runs" / f"{run_id}.h5")
        solver = saved.config.solver
        points.append(solver.get("n_interior", 0) + solver.get("n_boundary", 0))
        # the interior residual's term where the loss has several (the test residual is of
        # the interior only), else the loss
        history = saved.history
        loss.append(float(history.get("loss.residual", history["loss"])[-1]))
    df["training points"], df["train_loss"] = points, loss
    df[RATIO] = df["parameters"] / df["training points"]
    df["test_residual_sq"] = df["test_residual_rms"] ** 2
    others = [f for f in study.grid if f != "net.width" and df[f].nunique() > 1]
    groups = list(df.groupby(others, sort=True)) if others else [("all runs", df)]
    lines = [
        "## Generalisation: training loss, test residual and error against size",
        "",
        "The mean squared residual on the training points at the end (the loss's interior "
        "term), at fresh test points never trained on (`test_residual_rms`², the same points "
        "for every run), and the test error, against the parameters per training point "
        "(median over seeds; min–max in the figure; the dotted line: as many weights as "
        "points). The gap is test residual² / training residual².",
        "",
    ]
    plt = _plt()
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.8))
    for i, (key, part) in enumerate(groups):
        label = (
            key
            if isinstance(key, str)
            else ", ".join(
                f"{f}={v}"
                for f, v in zip(others, key if isinstance(key, tuple) else (key,), strict=True)
            )
        )
        cells = part.groupby(RATIO)
        rows = []
        for ratio, cell in cells:
            rows.append(
                (
                    int(cell["net.width"].iloc[0]) if "net.width" in cell else "",
                    int(cell["parameters"].iloc[0]),
                    ratio,
                    cell["train_loss"].median(),
                    cell["test_residual_sq"].median(),
                    cell["test_residual_sq"].median() / max(cell["train_loss"].median(), 1e-300),
                    cell["error_value"].median(),
                    len(cell),
                )
            )
        lines += [f"### {label}", ""]
        lines += _table(
            (
                "width",
                "parameters",
                RATIO,
                "training residual²",
                "test residual²",
                "gap",
                "test error",
                "seeds",
            ),
            rows,
        )
        lines += [_descent(rows), ""]
        for ax, column in zip(axes, ("train_loss", "test_residual_sq", "error_value"), strict=True):
            stat = cells[column].agg(["median", "min", "max"])
            ax.plot(stat.index, stat["median"], "o-", color=f"C{i}", label=label)
            ax.fill_between(stat.index, stat["min"], stat["max"], color=f"C{i}", alpha=0.2)
    for ax, title in zip(axes, ("training residual²", "test residual²", "test error"), strict=True):
        ax.axvline(1.0, color="k", ls=":", lw=0.8)
        ax.set(xscale="log", yscale="log", xlabel=RATIO, title=title)
        ax.grid(True, which="both", alpha=0.3)
    axes[0].legend(fontsize=7)
    lines += [_save(fig, root / "figures", "generalisation"), ""]
    return lines


def _descent(rows: list[tuple]) -> str:
    """Where the test error peaks, if anywhere but at the smallest size."""
    ratio = [r[2] for r in rows]
    error = [r[6] for r in rows]
    if len(error) < 3 or not all(math.isfinite(e) for e in error):
        return "Too few sizes to say whether the test error descends twice."
    peaks = [
        i for i in range(1, len(error) - 1) if error[i] > error[i - 1] and error[i] > error[i + 1]
    ]
    best = int(np.argmin(error))
    if not peaks:
        return (
            f"The test error has no interior peak (no second descent at these sizes); its "
            f"minimum {error[best]:.3g} is at {ratio[best]:.3g} parameters per point."
        )
    where = ", ".join(f"{ratio[i]:.3g}" for i in peaks)
    return (
        f"The median test error has an interior peak at {where} parameters per point and "
        f"falls again past it (minimum {error[best]:.3g} at {ratio[best]:.3g}); compare with the "
        "seeds' spread in the figure before calling it a double descent."
    )
