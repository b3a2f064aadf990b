"""Figure of a trained nls solution: |h(t, x)| predicted, the reference, the error, and slices.

    python benchmarks/nls_figure.py RUN.h5 docs/figures/nls.png

Evaluates on the paper's 256 × 201 grid (Raissi, Perdikaris & Karniadakis 2019, Fig. 2), with
slices at its times t = 0.59, 0.79, 0.98, and prints rel_l2_abs_h.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

import pinnlab as pl

SLICES = (0.59, 0.79, 0.98)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("solution", type=Path)
    parser.add_argument("figure", type=Path)
    args = parser.parse_args(argv)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    solution = pl.load(args.solution)
    problem = solution.problem
    t, x = problem.grid()
    tt, xx = np.meshgrid(t, x, indexing="ij")
    values = solution(np.stack([tt.ravel(), xx.ravel()], axis=1))
    predicted = np.hypot(values[:, 0], values[:, 1]).reshape(tt.shape)
    true = np.abs(problem.grid_reference())
    error = np.abs(predicted - true)
    rel = np.linalg.norm(predicted - true) / np.linalg.norm(true)
    env = solution.environment

    fig = plt.figure(figsize=(11, 6.5), layout="constrained")
    grid = fig.add_gridspec(2, 3)
    extent = (t[0], t[-1], x[0], x[-1])
    for col, (data, title) in enumerate(
        [(predicted, "|h| predicted"), (true, "|h| reference (split-step)"), (error, "error")]
    ):
        ax = fig.add_subplot(grid[0, col])
        image = ax.imshow(data.T, origin="lower", aspect="auto", extent=extent, cmap="YlGnBu")
        ax.set(xlabel="t", ylabel="x", title=title)
        fig.colorbar(image, ax=ax)
    for col, time in enumerate(SLICES):
        k = int(np.argmin(np.abs(t - time)))
        ax = fig.add_subplot(grid[1, col])
        ax.plot(x, true[k], "b-", lw=2, label="reference")
        ax.plot(x, predicted[k], "r--", lw=2, label="predicted")
        ax.set(xlabel="x", ylabel="|h|", title=f"t = {t[k]:.2f}", ylim=(-0.1, 5.0))
        if col == 0:
            ax.legend()
    fig.suptitle(
        f"nls: rel. l2 error of |h| = {rel:.2e} after {env.get('steps')} steps "
        f"({env.get('wall_time', 0):.0f} s)"
    )
    args.figure.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.figure, dpi=110)
    print(f"rel_l2_abs_h = {rel:.3e}; wrote {args.figure}")


if __name__ == "__main__":
    main()
