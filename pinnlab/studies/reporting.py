"""What the study reports share: tables, figures, the curves of a dimension study."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..files import atomic_write
from .design import StudyConfig

DIM = "problem.dim"
#: Finite-difference grid sizes (points per axis) solved for the classical comparison.
GRID_SIZES = {1: (16, 32, 64, 128), 2: (16, 32, 64, 128), 3: (8, 16, 24, 32)}


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, folder: Path, name: str) -> str:
    for ext in ("png", "pdf"):
        with atomic_write(folder / f"{name}.{ext}", suffix=f".{ext}") as tmp:
            fig.savefig(tmp, format=ext, dpi=130, bbox_inches="tight")
    _plt().close(fig)
    return f"![{name}](figures/{name}.png)"


def _finish(fig, ax, folder: Path, name: str, legend: int = 7) -> str:
    """A figure's legend (font size ``legend``) and log grid, saved as ``name``."""
    ax.legend(fontsize=legend)
    ax.grid(True, which="both", alpha=0.3)
    return _save(fig, folder, name)


def _fmt(x: Any) -> str:
    if isinstance(x, float | np.floating):
        return "–" if not math.isfinite(x) else f"{x:.3g}"
    return str(x)


def _table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(_fmt(v) for v in row) + " |" for row in rows]
    return [*out, ""]


def _groups(study: StudyConfig, df: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """The study split by every factor but the dimension (one scaling curve each)."""
    others = [f for f in study.grid if f != DIM and df[f].nunique() > 1]
    if not others:
        return [(str(df["problem.id"].iloc[0]), df)]
    out = []
    for key, part in df.groupby(others, sort=False):
        key = key if isinstance(key, tuple) else (key,)
        out.append((", ".join(f"{f}={v}" for f, v in zip(others, key, strict=True)), part))
    return out


def _response_name(df: pd.DataFrame) -> str:
    names = sorted(set(df["metric"]))
    return names[0] if len(names) == 1 else "error"
