"""A Monte Carlo reference against independent re-runs of itself, and a solution against both.

    python benchmarks/reference_check.py bs-max-call --dim 10 --runs 4 --solution s.h5

The reference of a problem without a closed form (bs-max-call, bs-basket-call) is a Monte
Carlo estimate at fixed points, with standard errors. This recomputes it ``--runs`` times at
the same points with other seeds and as many paths, and prints per point:

- ``re-runs``: the mean of the re-runs;
- ``z_ref``: the stored reference minus the mean of the re-runs, in units of its standard
  error (with the re-runs' own uncertainty added): how far the reference itself is off;
- with ``--solution``: the solution's error in standard errors against the stored reference
  (``z``, what the ``ref_max_z`` metric reports) and against the pooled reference, the mean of
  the stored one and the re-runs, whose standard error is smaller by √(runs + 1) (``z_pool``).

Also the spread of the runs over their standard errors (≈ 1 if the errors are right).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

import pinnlab as pl
from pinnlab import montecarlo


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("problem")
    parser.add_argument("--dim", type=int, required=True)
    parser.add_argument("--runs", type=int, default=4, help="independent re-runs")
    parser.add_argument("--paths", type=int, default=2**21, help="paths per point and run")
    parser.add_argument("--seed", type=int, default=1, help="first seed of the re-runs")
    parser.add_argument("--solution", help="a solution file to measure against both")
    args = parser.parse_args()

    problem = pl.catalogue().problem(args.problem, dim=args.dim)
    ref = problem.reference()
    form = problem.stochastic_form()
    start = time.perf_counter()
    runs = [
        montecarlo.price(form, ref.t, ref.x, args.paths, torch.Generator().manual_seed(seed))
        for seed in range(args.seed, args.seed + args.runs)
    ]
    values = np.array([ref.value.numpy(), *(v.numpy() for v, _ in runs)])
    errors = np.array([ref.stderr.numpy(), *(s.numpy() for _, s in runs)])
    others, others_se = values[1:].mean(0), np.sqrt((errors[1:] ** 2).sum(0)) / args.runs
    z_ref = (values[0] - others) / np.sqrt(errors[0] ** 2 + others_se**2)
    pooled, pooled_se = values.mean(0), np.sqrt((errors**2).sum(0)) / len(values)
    spread = values.std(0, ddof=1) / errors.mean(0)
    print(
        f"{problem}: {args.runs} re-runs of {args.paths} paths at {len(ref.x)} points "
        f"({time.perf_counter() - start:.0f} s); spread / SE: rms {np.sqrt((spread**2).mean()):.2f}"
    )
    columns = ["point", "reference", "SE", "re-runs", "z_ref"]
    rows = [[i, values[0, i], errors[0, i], others[i], z_ref[i]] for i in range(len(ref.x))]
    if args.solution:
        solution = pl.load(args.solution)
        u = np.asarray(solution(ref.x.numpy()), dtype=np.float64).reshape(-1)
        z, z_pool = (u - values[0]) / errors[0], (u - pooled) / pooled_se
        columns += ["solution", "z", "z_pool"]
        rows = [[*r, u[i], z[i], z_pool[i]] for i, r in enumerate(rows)]
    print(" ".join(f"{c:>10}" for c in columns))
    for r in rows:
        print(" ".join(f"{v:>10d}" if isinstance(v, int) else f"{v:>10.6g}" for v in r))
    print(f"max |z_ref| {np.abs(z_ref).max():.2f}, rms {np.sqrt((z_ref**2).mean()):.2f}")
    if args.solution:
        for name, e in (("z", z), ("z_pool", z_pool)):
            print(f"{name}: max |.| {np.abs(e).max():.2f}, rms {np.sqrt((e**2).mean()):.2f}")


if __name__ == "__main__":
    main()
