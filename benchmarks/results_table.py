"""Markdown table of solutions: `python benchmarks/results_table.py runs/*.h5`.

Each row: problem, dimension, method, steps, wall time, device and the metrics, read from the
solution files (nothing is recomputed except metrics missing from a file).
"""

from __future__ import annotations

import argparse

import pinnlab

COLUMNS = [
    "rel_l2",
    "rel_l2_centered",
    "rel_h1_seminorm",
    "max_abs",
    "const_rel_l2",
    "rel_error_x0",
    "ref_rel_l1",
    "ref_stderr_rel",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("solutions", nargs="+")
    args = parser.parse_args()
    print("| problem | d | method | steps | wall time (s) | device | " + " | ".join(COLUMNS) + " |")
    print("|---" * (6 + len(COLUMNS)) + "|")
    for path in args.solutions:
        s = pinnlab.load(path)
        env, m = s.environment, s.metrics
        print(
            f"| {s.problem.id} | {s.problem.dim} | {s.config.method} | {env.get('steps')} | "
            f"{env.get('wall_time', float('nan')):.0f} | {env.get('device')} | "
            + " | ".join(f"{m[c]:.2e}" if c in m else "—" for c in COLUMNS)
            + " |"
        )


if __name__ == "__main__":
    main()
