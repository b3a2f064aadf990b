"""pinnlab's PINN against DeepXDE on poisson-sine: time per training step, error after equal steps.

    python benchmarks/pinn_vs_deepxde.py --dims 2 10 100 --steps 2000 2000 500 \\
        --timing-steps 200 200 50 --device cpu --out docs/benchmarks/pinn_vs_deepxde.json

For each dimension d, in one process, the contestants are

* ``pinnlab``: pinnlab's PINN with forward-mode derivatives (what ``auto`` computes for d ≤
  width);
* ``deepxde``: the DeepXDE model :func:`pinnlab.interop.to_deepxde` builds for the same
  problem (its residual is the catalogue's own, differentiated by ``deepxde.grad``);
* ``pinnlab-reverse`` (at the ``--reverse-dims``): pinnlab's PINN with its reverse-mode
  reference derivatives, the same loop as DeepXDE's Hessian diagonal.

All of them start from the same initial weights (pinnlab's Glorot-normal draw for ``--seed``),
train the same network (``--depth`` hidden layers of ``--width`` units, tanh) on the same fixed
points (pinnlab's first batch: ``--n-interior`` interior and ``--n-boundary`` boundary points,
never resampled), with Adam at the same constant learning rate, for the same number of steps.
DeepXDE also enforces the residual at the boundary points and evaluates it on its boundary
points twice (once as PDE points, once as condition points): it differentiates
n_interior + 2·n_boundary rows per step where pinnlab differentiates n_interior.

One step is the body of each library's own training loop: pinnlab's ``Trainer._first_order_step``
(loss, backward, Adam) and DeepXDE's ``Model._train_step`` (the same, plus DeepXDE's conversion
of its numpy points to tensors), without the loops' bookkeeping (logging, evaluation).
Timing: after ``--warmup`` untimed steps, the contestants take turns running blocks of steps
(the order rotates every round), ``--blocks`` timed blocks each, so that background load falls
on all of them alike; a block is timed with the device synchronised at both ends, and the
reported time per step is the median over blocks. Errors are pinnlab's metrics
(``Solution.evaluate``: the fixed test set ``pinnlab.metrics.test_points`` against
``problem.exact``) after exactly ``--steps`` steps of each; training continues past that only
when the timing needs more steps.

``pinnlab.memory.reuse_freed_memory()`` is called first: it keeps glibc from returning large
freed blocks to the system, which helps every contestant in the process alike.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shlex
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

import pinnlab as pl
from pinnlab.config import validate
from pinnlab.interop import import_deepxde, to_deepxde
from pinnlab.memory import reuse_freed_memory
from pinnlab.run import build_model, environment, make_config, resolve_device
from pinnlab.solvers.pinn import PINN, PINNSettings
from pinnlab.training import Trainer

PROBLEM = "poisson-sine"


@dataclass
class Contestant:
    """One trainer in the race: ``run(n)`` takes n training steps; ``network()`` is its u."""

    name: str
    run: Callable[[int], None]
    network: Callable[[], nn.Module]
    residual_rows: int
    steps: int = 0
    seconds_per_step: list[float] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)

    def advance(self, n: int, sync: Callable[[], None], timed: bool) -> None:
        sync()
        start = time.perf_counter()
        self.run(n)
        sync()
        if timed:
            self.seconds_per_step.append((time.perf_counter() - start) / n)
        self.steps += n

    @property
    def ms_per_step(self) -> float:
        return 1e3 * statistics.median(self.seconds_per_step)


def run_config(dim: int, args, device: torch.device, derivatives: str, steps: int) -> pl.RunConfig:
    """The pinnlab run config equivalent to the benchmark's settings (fixed points: no resampling)."""
    return make_config(
        config={
            "problem": {"id": PROBLEM, "dim": dim},
            "method": "pinn",
            "solver": {
                "n_interior": args.n_interior,
                "n_boundary": args.n_boundary,
                "derivatives": derivatives,
            },
            "net": {"kind": "mlp", "width": args.width, "depth": args.depth, "activation": "tanh"},
            "train": {
                "optimizer": "adam",
                "lr": args.lr,
                "schedule": "constant",
                "steps": steps,
                "resample_every": 0,
            },
            "seed": args.seed,
            "device": str(device),
            "dtype": "float32",
        }
    )


def pinnlab_contestant(
    name: str, problem: pl.Problem, config: pl.RunConfig, batch: dict, device: torch.device
) -> Contestant:
    solver = PINN(
        problem, validate(PINNSettings, config.solver, prefix="solver"), dtype=torch.float32
    )
    model = build_model(problem, config, device=device, solver=solver)
    generator = torch.Generator(device).manual_seed(config.seed)
    trainer = Trainer(solver, model, config.train, generator=generator, progress=False)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.train.lr)  # as the Trainer makes it

    def run(n: int) -> None:
        for _ in range(n):
            trainer._first_order_step(optimizer, batch)

    return Contestant(name, run, lambda: model.module, residual_rows=len(batch["residual"]))


def deepxde_contestant(
    problem: pl.Problem, args, batch: dict, device: torch.device, solver: PINN
) -> Contestant:
    affine = solver.data_scale() if solver.settings.normalize_output else None
    dx = to_deepxde(
        problem,
        width=args.width,
        depth=args.depth,
        activation="tanh",
        lr=args.lr,
        seed=args.seed,
        device=device,
        points=batch,
        output_affine=affine,
    )
    rows = len(dx.model.data.train_x)
    return Contestant("deepxde", dx.step, dx.network, residual_rows=rows)


def schedule(steps: int, warmup: int, timing: int, block: int) -> list[tuple[int, bool]]:
    """Blocks (n, timed) covering max(steps, warmup + timing) steps, cut at every milestone."""
    total = max(steps, warmup + timing)
    marks = sorted({steps, warmup, warmup + timing, total} - {0})
    out, done = [], 0
    while done < total:
        n = min(block, min(m for m in marks if m > done) - done)
        out.append((n, warmup <= done < warmup + timing))
        done += n
    return out


def race(contestants: list[Contestant], blocks, steps: int, evaluate, sync) -> None:
    """Run the blocks round by round, rotating the order; evaluate each after ``steps`` steps."""
    if steps == 0:
        for c in contestants:
            c.metrics = evaluate(c.network())
    for r, (n, timed) in enumerate(blocks):
        k = r % len(contestants)
        for c in contestants[k:] + contestants[:k]:
            c.advance(n, sync, timed)
            if c.steps == steps:
                c.metrics = evaluate(c.network())


def bench_dim(dim: int, steps: int, timing: int, args, device: torch.device) -> dict:
    problem = pl.problem(PROBLEM, dim=dim)
    config = run_config(dim, args, device, "forward", steps)
    solver = PINN(problem, validate(PINNSettings, config.solver), dtype=torch.float32)
    batch = solver.points(torch.Generator(device).manual_seed(args.seed))

    contestants = [pinnlab_contestant("pinnlab", problem, config, batch, device)]
    contestants.append(deepxde_contestant(problem, args, batch, device, solver))
    if dim in args.reverse_dims:
        reverse = run_config(dim, args, device, "reverse", steps)
        contestants.append(pinnlab_contestant("pinnlab-reverse", problem, reverse, batch, device))

    def evaluate(net: nn.Module) -> dict[str, float]:
        return pl.Solution(problem, net, config).evaluate()

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    block = max(1, math.ceil(timing / args.blocks))
    blocks = schedule(steps, args.warmup, timing, block)
    start = time.perf_counter()
    race(contestants, blocks, steps, evaluate, sync)
    wall = time.perf_counter() - start

    out = {
        "dim": dim,
        "steps": steps,
        "timing_steps": sum(n for n, timed in blocks if timed),
        "warmup_steps": args.warmup,
        "block_steps": block,
        "wall_seconds": wall,
        "contestants": {
            c.name: {
                "ms_per_step": c.ms_per_step,
                "ms_per_step_blocks": [1e3 * s for s in c.seconds_per_step],
                "residual_rows": c.residual_rows,
                "metrics": c.metrics,
            }
            for c in contestants
        },
    }
    ms = {c.name: c.ms_per_step for c in contestants}
    out["deepxde_over_pinnlab"] = ms["deepxde"] / ms["pinnlab"]
    if "pinnlab-reverse" in ms:
        out["reverse_over_forward"] = ms["pinnlab-reverse"] / ms["pinnlab"]
    return out


def machine(device: torch.device, seed: int) -> dict:
    env = environment(device, seed)
    model = ""
    try:
        with open("/proc/cpuinfo") as f:
            model = next(
                (ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), ""
            )
    except OSError:
        pass
    env.update(
        deepxde=import_deepxde().__version__,
        cpu_model=model or platform.processor(),
        cpu_count=os.cpu_count(),
        cpus_available=len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        torch_threads=torch.get_num_threads(),
        cuda=torch.version.cuda,
    )
    return env


def markdown(report: dict) -> str:
    """The results as markdown tables, with the command and the machine."""
    m = report["machine"]
    where = m["device_name"] if m["device"].startswith("cuda") else m["cpu_model"] or "CPU"
    lines = [
        f"Device: {m['device']} ({where}); {m['cpus_available']} of {m['cpu_count']} CPUs, "
        f"{m['torch_threads']} torch threads; torch {m['torch']}, DeepXDE {m['deepxde']}, "
        f"pinnlab {m['pinnlab']} (git {(m['git'] or 'unknown')[:10]}).",
        "",
        f"Command: `{report['command']}`",
        "",
        "| d | steps | pinnlab ms/step | DeepXDE ms/step | DeepXDE / pinnlab "
        "| pinnlab rel_l2 | DeepXDE rel_l2 | pinnlab rel_l2 centred | DeepXDE rel_l2 centred "
        "| best constant rel_l2 |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in report["results"]:
        p, x = r["contestants"]["pinnlab"], r["contestants"]["deepxde"]
        lines.append(
            f"| {r['dim']} | {r['steps']} | {p['ms_per_step']:.2f} | {x['ms_per_step']:.2f} "
            f"| {r['deepxde_over_pinnlab']:.2f} | {p['metrics']['rel_l2']:.2e} "
            f"| {x['metrics']['rel_l2']:.2e} | {p['metrics']['rel_l2_centered']:.2e} "
            f"| {x['metrics']['rel_l2_centered']:.2e} | {p['metrics']['const_rel_l2']:.2e} |"
        )
    reverse = [r for r in report["results"] if "reverse_over_forward" in r]
    if reverse:
        lines += [
            "",
            "| d | steps | pinnlab forward ms/step | pinnlab reverse ms/step | reverse / forward "
            "| forward rel_l2 | reverse rel_l2 |",
            "|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for r in reverse:
            f, b = r["contestants"]["pinnlab"], r["contestants"]["pinnlab-reverse"]
            lines.append(
                f"| {r['dim']} | {r['steps']} | {f['ms_per_step']:.2f} | {b['ms_per_step']:.2f} "
                f"| {r['reverse_over_forward']:.2f} | {f['metrics']['rel_l2']:.2e} "
                f"| {b['metrics']['rel_l2']:.2e} |"
            )
    s = report["settings"]
    rows = ", ".join(
        f"d={r['dim']}: {r['contestants']['pinnlab']['residual_rows']} / "
        f"{r['contestants']['deepxde']['residual_rows']}"
        for r in report["results"]
    )
    lines += [
        "",
        f"Network {s['depth']}×{s['width']} tanh; {s['n_interior']} interior + {s['n_boundary']} "
        f"boundary points, fixed; Adam, lr {s['lr']}; seed {s['seed']}. Time per step: median over "
        f"timed blocks after {s['warmup']} warm-up steps. Rows differentiated per step "
        f"(pinnlab / DeepXDE): {rows}.",
    ]
    return "\n".join(lines) + "\n"


def per_dim(values: list[int], dims: list[int], name: str) -> list[int]:
    if len(values) == 1:
        return values * len(dims)
    if len(values) != len(dims):
        raise SystemExit(
            f"{name} takes one value or one per dimension ({len(dims)} for --dims {dims}), "
            f"got {values}."
        )
    return values


def add_run_arguments(p: argparse.ArgumentParser) -> None:
    """The settings :func:`run_config` reads: points, network, learning rate, seed."""
    p.add_argument("--n-interior", type=int, default=1024)
    p.add_argument("--n-boundary", type=int, default=256)
    p.add_argument("--width", type=int, default=128)
    p.add_argument("--depth", type=int, default=4)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dims", type=int, nargs="+", default=[2, 10, 100])
    p.add_argument(
        "--steps", type=int, nargs="+", default=[2000, 2000, 500],
        help="training steps before the errors are measured: one value, or one per --dims",
    )  # fmt: skip
    p.add_argument(
        "--timing-steps", type=int, nargs="+", default=[200, 200, 50],
        help="timed steps per contestant: one value, or one per --dims",
    )  # fmt: skip
    p.add_argument("--warmup", type=int, default=5, help="untimed steps before timing")
    p.add_argument("--blocks", type=int, default=10, help="timed blocks per contestant")
    p.add_argument("--reverse-dims", type=int, nargs="*", default=[100])
    add_run_arguments(p)
    p.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    p.add_argument(
        "--out", type=Path, default=Path("docs/benchmarks/pinn_vs_deepxde.json"),
        help="JSON results; the markdown table goes beside it (.md)",
    )  # fmt: skip
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    reused = reuse_freed_memory()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    steps = per_dim(args.steps, args.dims, "--steps")
    timing = per_dim(args.timing_steps, args.dims, "--timing-steps")
    if args.blocks < 1 or args.warmup < 0 or min(timing) < 1 or min(steps) < 0:
        raise SystemExit("need --blocks ≥ 1, --warmup ≥ 0, --timing-steps ≥ 1 and --steps ≥ 0.")
    report = {
        "benchmark": "pinn_vs_deepxde",
        "problem": PROBLEM,
        "command": shlex.join(["python", *sys.argv]),
        "machine": machine(device, args.seed),
        "settings": {
            k: v for k, v in vars(args).items() if k not in ("out", "dims", "steps", "timing_steps")
        }
        | {"reuse_freed_memory": reused},
        "results": [],
    }
    for dim, n, t in zip(args.dims, steps, timing, strict=True):
        print(
            f"d={dim}: {n} steps, {t} timed steps per contestant ...", file=sys.stderr, flush=True
        )
        result = bench_dim(dim, n, t, args, device)
        report["results"].append(result)
        print(f"d={dim}: done in {result['wall_seconds']:.0f} s", file=sys.stderr, flush=True)
    table = markdown(report)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    args.out.with_suffix(".md").write_text(table)
    print(table)
    print(f"written: {args.out} and {args.out.with_suffix('.md')}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
