"""Error against wall time for each optimizer: Adam, Adam + L-BFGS or SSBFGS, ENGD (Gauss–Newton).

    python benchmarks/optimizers.py --budget 300 --out docs/benchmarks/optimizers.json \\
        --figures docs/figures [--cases poisson-sine-d2 ...]

For each case (a problem, a network, a number of points) every optimizer trains the same
network from the same initial weights (the seed) on the same fixed points (the first batch
of the seed; no resampling, so that only the optimizer differs), in float64, in one process,
one after the other, each for ``--budget`` seconds of wall time (``train.time_budget``). The
error is the run's metric on pinnlab's fixed test set, recorded every few steps with the
wall time at which it was measured (``history.eval_time``; evaluations count against the
budget alike for all). Each case gives a figure of error against time with one line per
optimizer, and the table of the error each had reached at 1, 5 and 15 minutes (those within
the budget).

The arms:

* ``adam``: Adam at lr 1e-3 with exponential decay to 1e-5 over its steps;
* ``adam+lbfgs``: 2,000 of those Adam steps, then L-BFGS (strong Wolfe) until the budget;
* ``adam+ssbfgs``: the same with self-scaled BFGS (``pinnlab.quasi_newton``) after Adam;
* ``engd``: damped Gauss–Newton / energy natural gradient steps from the start
  (``pinnlab.gauss_newton``), the system formed and factorised (Cholesky);
* ``engd-cg``: the same steps solved matrix-free (``train.engd.solver: cg``: conjugate
  gradients on J v and Jᵀ u, at most ``cg_steps`` = 100 iterations), which is what ENGD does
  past ``train.engd.max_matrix`` — here on networks small enough for the exact step, to show
  what the truncated solve costs in accuracy and time;
* ``engd-kfac``: Kronecker-factored ENGD (``pinnlab.kfac``; Dangel, Müller & Zeinhofer 2024)
  with KFAC's automatic step size and momentum (``train.engd.line_search: auto``).

``--arms`` runs some arms only and merges them into the cases already in ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

import pinnlab as pl


@dataclass(frozen=True)
class Case:
    """A problem with a network and points that every optimizer shares."""

    name: str
    problem: dict
    net: dict
    solver: dict
    method: str = "pinn"
    metric: str = "auto"
    extra: dict = field(default_factory=dict)


CASES = {
    c.name: c
    for c in [
        Case(
            "poisson-sine-d2",
            {"id": "poisson-sine", "dim": 2},
            {"width": 64, "depth": 1},
            {"n_interior": 1000, "n_boundary": 250},
        ),
        Case(
            "poisson-sine-d5",
            {"id": "poisson-sine", "dim": 5},
            {"width": 64, "depth": 1},
            {"n_interior": 2000, "n_boundary": 500, "weights": {"boundary": 100.0}},
        ),
        Case(
            "poisson-harmonic-d10",
            {"id": "poisson-harmonic", "dim": 10},
            {"width": 64, "depth": 1},
            {"n_interior": 3000, "n_boundary": 750, "weights": {"boundary": 100.0}},
        ),
        Case(  # 133,377 weights: past the exact step and the dense quasi-Newton methods
            "poisson-sine-d5-wide",
            {"id": "poisson-sine", "dim": 5},
            {"width": 256, "depth": 3},
            {"n_interior": 2000, "n_boundary": 500, "weights": {"boundary": 100.0}},
        ),
        Case(
            "nls",
            {"id": "nls"},
            {"width": 32, "depth": 2, "wrap": {"periodic": {"modes": 2}}},
            {
                "n_interior": 2000,
                "n_boundary": 256,
                "normalize_output": False,
                "weights": {"initial": 10.0},
            },
            metric="rel_l2_abs_h",
        ),
    ]
}

#: Adam's settings in every arm that has an Adam phase.
ADAM = {"lr": 1e-3, "schedule": "exponential", "final_lr": 1e-5}


def after_adam(optimizer: str) -> dict:
    """2,000 Adam steps, then ``optimizer`` until the budget."""
    phases = [{"optimizer": "adam", "steps": 2000}, {"optimizer": optimizer, "steps": 10**7}]
    return {"phases": phases, **ADAM}


#: name -> (train section without the budget, steps between evaluations)
ARMS = {
    "adam": ({"optimizer": "adam", "steps": 10**7, **ADAM}, 200),
    "adam+lbfgs": (after_adam("lbfgs"), 100),
    "adam+ssbfgs": (after_adam("ssbfgs"), 100),
    "engd": ({"phases": [{"optimizer": "engd", "steps": 10**7}]}, 5),
    "engd-cg": ({"phases": [{"optimizer": "engd", "steps": 10**7}], "engd": {"solver": "cg"}}, 2),
    "engd-kfac": ({"phases": [{"optimizer": "engd-kfac", "steps": 10**7}]}, 10),
}

MINUTES = (1, 5, 15)


def config(case: Case, arm: str, budget: float, seed: int) -> pl.RunConfig:
    train, every = ARMS[arm]
    return pl.make_config(
        config={
            "problem": case.problem,
            "method": case.method,
            "solver": case.solver,
            "net": {"kind": "mlp", "activation": "tanh", "normalize_input": False, **case.net},
            "train": {
                **train,
                "resample_every": 0,
                "time_budget": budget,
                "eval_every": every,
                "log_every": min(every, 10),
                "checkpoint_every": 0,
            },
            "metric": case.metric,
            "dtype": "float64",
            "device": "cpu",
            "seed": seed,
        }
    )


def run_case(case: Case, budget: float, seed: int, arms: list[str]) -> dict:
    out = {}
    for arm in arms:
        solution = pl.run(config(case, arm, budget, seed))
        h = solution.history
        out[arm] = {
            "time": [float(t) for t in h["eval_time"]],
            "error": [float(e) for e in h["error"]],
            "steps": int(solution.environment["steps"]),
            "final": float(h["error"][-1]),
        }
        print(
            f"{case.name:22s} {arm:11s} steps {out[arm]['steps']:8d}  error {out[arm]['final']:.3e}",
            flush=True,
        )
    return out


def reached(curve: dict, seconds: float) -> float | None:
    """The error of the last evaluation at or before ``seconds`` (None: none yet)."""
    errors = [e for t, e in zip(curve["time"], curve["error"], strict=True) if t <= seconds]
    return errors[-1] if errors else None


def figure(name: str, result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.6))
    for arm, curve in result["arms"].items():
        ax.loglog(np.maximum(curve["time"], 1e-2), curve["error"], label=arm)
    ax.set_xlabel("wall time (s)")
    ax.set_ylabel("relative L2 error")
    ax.set_title(name)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def markdown(results: dict) -> str:
    """The table of docs/benchmarks.md: the error each arm had reached at each minute mark,
    and its steps and final error."""
    marks = sorted({k for c in results.values() for t in c["table"].values() for k in t})
    head = "| case | optimizer | " + " | ".join(marks) + " | steps | final |"
    rows = [head, "|---|---|" + "---:|" * (len(marks) + 2)]
    for name, case in results.items():
        for arm, curve in case["arms"].items():
            cells = [case["table"][arm].get(m) for m in marks]
            shown = " | ".join("—" if v is None else f"{v:.2e}" for v in cells)
            rows.append(f"| {name} | {arm} | {shown} | {curve['steps']} | {curve['final']:.2e} |")
    return "\n".join(rows)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    parser.add_argument("--budget", type=float, default=300.0, help="seconds per optimizer")
    parser.add_argument("--arms", nargs="+", default=list(ARMS), choices=list(ARMS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("docs/benchmarks/optimizers.json"))
    parser.add_argument("--figures", type=Path, default=Path("docs/figures"))
    parser.add_argument(
        "--table", action="store_true", help="print the Markdown table of --out and stop"
    )
    args = parser.parse_args(argv)
    if args.table:
        print(markdown(json.loads(args.out.read_text())["cases"]))
        return

    for name in args.cases:
        arms = run_case(CASES[name], args.budget, args.seed, args.arms)
        table = {
            arm: {f"{m} min": reached(curve, 60 * m) for m in MINUTES if 60 * m <= args.budget}
            for arm, curve in arms.items()
        }
        merged = record(args, name, {"arms": arms, "table": table})
        args.figures.mkdir(parents=True, exist_ok=True)
        figure(name, merged, args.figures / f"optimizers-{name}.png")


def record(args, name: str, result: dict) -> dict:
    """Merge one case's arms into ``--out``, under a lock (processes running other cases
    share it), keeping its other arms; returns the case as merged."""
    import fcntl

    args.out.parent.mkdir(parents=True, exist_ok=True)
    with open(args.out.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        old = json.loads(args.out.read_text()) if args.out.exists() else {}
        results = old.get("cases", {})
        case = results.setdefault(name, {"arms": {}, "table": {}})
        for key in ("arms", "table"):
            case[key] = {**case[key], **result[key]}
            case[key] = {arm: case[key][arm] for arm in ARMS if arm in case[key]}
        command = shlex.join([sys.executable, *sys.argv])
        commands = old.get("commands", [old["command"]] if "command" in old else [])
        args.out.write_text(
            json.dumps(
                {
                    "commands": [*dict.fromkeys([*commands, command])],
                    "machine": f"{platform.processor() or platform.machine()}, "
                    f"{os.cpu_count()} cores, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}",
                    "budget_s": args.budget,
                    "cases": results,
                },
                indent=1,
            )
        )
        return case


if __name__ == "__main__":
    main()
