"""What the network adds to a hard-constraint start: `python benchmarks/transform_constant.py runs/*.h5`.

A PINN with ``net.hard_bc`` trains u = G + φ(c + N), with c the least-squares constant of the
initial residual (docs/solvers.md). For each solution file this prints its metrics beside
those of u = G + φc alone (N ≡ 0): the baseline the training has to beat. On poisson-ball in
high dimension, where u/φ concentrates around a constant, that baseline is already good, so
read the two rows together.
"""

from __future__ import annotations

import argparse

import torch
from torch import nn

import pinnlab
from pinnlab.networks import DirichletTransform

COLUMNS = ["rel_l2", "rel_l2_centered", "rel_h1_seminorm", "max_abs", "const_rel_l2"]


class _Zero(nn.Module):
    """N ≡ 0 (with one parameter, which the solution reads its dtype and device from)."""

    def __init__(self, like: torch.Tensor):
        super().__init__()
        self.anchor = nn.Parameter(torch.zeros(1, dtype=like.dtype, device=like.device))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.zeros(len(x), 1, dtype=x.dtype, device=x.device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("solutions", nargs="+")
    args = parser.parse_args()
    print("| file | d | c | u | " + " | ".join(COLUMNS) + " |")
    print("|---" * (4 + len(COLUMNS)) + "|")
    for path in args.solutions:
        solution = pinnlab.load(path)
        transforms = [m for m in solution.model.modules() if isinstance(m, DirichletTransform)]
        if not transforms:
            print(f"| {path} | – | – | not a hard-constraint solution | " + "| " * len(COLUMNS))
            continue
        transform = transforms[0]
        rows = {"trained": solution.metrics}
        transform.net = _Zero(transform.shift)
        rows["G + φc alone"] = solution.evaluate()
        for name, metrics in rows.items():
            cells = " | ".join(f"{metrics.get(k, float('nan')):.3g}" for k in COLUMNS)
            c = float(transform.shift[0])
            print(f"| {path} | {solution.problem.dim} | {c:.4g} | {name} | {cells} |")


if __name__ == "__main__":
    main()
