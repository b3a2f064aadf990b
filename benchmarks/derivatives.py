"""Cost of one PINN training step per derivative method and dimension: time, memory, GFLOP/s.

    python benchmarks/derivatives.py --dims 10 100 1000 10000 --out docs/benchmarks/cpu/derivatives.json

Each (method, d) runs in fresh subprocesses: one times the steps (with pinnlab's allocator
setting, ``reuse_freed_memory``), one measures the memory of one step with glibc's default
allocator, whose large blocks go back to the system when freed, so that the resident set
follows the live tensors: the growth of the peak resident set (reset after set-up through
/proc/self/clear_refs) over its level before the step (CPU), or of
``torch.cuda.max_memory_allocated`` (CUDA). A step is one Adam step of pinnlab's PINN on
poisson-sine in d dimensions (the body of ``Trainer._first_order_step``): the loss with its Laplacian,
its backward pass, the update; same network (``--depth``×``--width`` tanh), same points
(``--n-interior`` + ``--n-boundary``, fixed), same seed for every method. ``deepxde`` is the
DeepXDE model :func:`pinnlab.interop.to_deepxde` builds for the same problem, whose Laplacian is
DeepXDE's loop over d Hessian diagonals. The time is the median over ``--repeats`` timed steps
after ``--warmup`` untimed ones (fewer where one step takes longer than ``--budget`` seconds:
see the ``timed`` column). The FLOPs of a step are counted once with the formulas of
``torch.utils.flop_counter`` (matrix products only), and the achieved rate is
set against this machine's measured float32 matrix-multiply rate (``--gemm`` size).
Configurations whose memory would exceed ``--max-gb`` by the cost model are skipped and listed.
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
from pinn_vs_deepxde import (
    add_run_arguments,
    deepxde_contestant,
    machine,
    pinnlab_contestant,
    run_config,
)
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import flop_registry

METHODS = ["reduced", "forward", "reverse", "hutchinson", "sdgd", "deepxde"]


def gemm_rate(size: int, device: torch.device, repeats: int = 5) -> float:
    """Measured float32 matrix-multiply rate in GFLOP/s (median of ``repeats``)."""
    a = torch.randn(size, size, device=device)
    b = torch.randn(size, size, device=device)
    times = []
    for _ in range(repeats + 1):
        sync(device)
        start = time.perf_counter()
        a @ b
        sync(device)
        times.append(time.perf_counter() - start)
    return 2 * size**3 / statistics.median(times[1:]) / 1e9


class MatmulFlops(TorchDispatchMode):
    """Counts the FLOPs of the operators torch's flop counter knows (matrix products).

    ``FlopCounterMode`` itself cannot follow ``torch.autograd.grad`` inside a step (its module
    hooks fail there), so its per-operator formulas are applied from a plain dispatch mode.
    """

    def __init__(self):
        super().__init__()
        self.total = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        count = flop_registry.get(func.overloadpacket)
        if count is not None:
            self.total += count(*args, **kwargs, out_val=out)
        return out


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field + ":"))


def reset_peak_rss() -> int:
    """Reset the process's peak resident set (Linux: clear_refs 5) and return the current one."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    return _status_kb("VmRSS") * 1024


def peak_rss_bytes() -> int:
    return _status_kb("VmHWM") * 1024


def estimated_gb(method: str, dim: int, args) -> float:
    """Cost-model memory of one step: forward-mode jets keep about four (n, m, width) tensors
    per layer; reverse mode keeps about nine (n, width) tensors per layer for each of its d
    Hessian-vector graphs (measured: 18.8 GB at d = 1,000, n = 1024, 4×128)."""
    n, w, depth = args.n_interior, args.width, args.depth
    if method in ("reverse", "deepxde"):
        rows = n + 2 * args.n_boundary if method == "deepxde" else n  # DeepXDE: see pinn_vs_deepxde
        jets = 9 * depth * rows * w * dim
    else:
        m = {"reduced": min(dim, w) + 1, "forward": dim}.get(method, args.probes)
        jets = 4 * depth * n * m * w
    return 4 * (jets + 4 * n * dim) / 1e9


def one(method: str, dim: int, args) -> dict:
    """Measure one configuration in this process."""

    import pinnlab as pl
    from pinnlab.config import validate
    from pinnlab.memory import reuse_freed_memory
    from pinnlab.solvers.pinn import PINN, PINNSettings

    if not args.memory_pass:
        reuse_freed_memory()
    device = torch.device(args.device)
    problem = pl.problem("poisson-sine", dim=dim)
    derivatives = "reduced" if method == "deepxde" else method
    config = run_config(dim, args, device, derivatives, steps=1)
    config = config.model_copy(
        update={"solver": {**config.solver, "probes": args.probes}}, deep=True
    )
    solver = PINN(problem, validate(PINNSettings, config.solver), dtype=torch.float32)
    if method == "deepxde":
        batch = solver.points(torch.Generator(device).manual_seed(args.seed))
        c = deepxde_contestant(problem, args, batch, device, solver)
    else:
        batch = solver.points(torch.Generator(device).manual_seed(args.seed))
        c = pinnlab_contestant(method, problem, config, batch, device)
    sync(device)
    base_rss = reset_peak_rss()  # the peak of the steps alone, not of the set-up
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        base_cuda = torch.cuda.memory_allocated(device)
    if args.memory_pass:  # one step, glibc's default allocator: RSS follows live tensors
        c.run(1)
        sync(device)
        peak = (
            torch.cuda.max_memory_allocated(device) - base_cuda
            if device.type == "cuda"
            else peak_rss_bytes() - base_rss
        )
        return {"peak_mb": peak / 2**20}
    times = []
    deadline = time.perf_counter() + args.budget
    for i in range(args.warmup + args.repeats):
        sync(device)
        start = time.perf_counter()
        c.run(1)
        sync(device)
        if i >= args.warmup:
            times.append(time.perf_counter() - start)
        if time.perf_counter() > deadline and times:
            break
    with MatmulFlops() as counter:
        c.run(1)
    seconds = statistics.median(times)
    flops = counter.total
    return {
        "method": method,
        "dim": dim,
        "ms_per_step": 1e3 * seconds,
        "timed": len(times),
        "gflop_per_step": flops / 1e9,
        "gflop_per_s": flops / seconds / 1e9,
    }


def markdown(report: dict) -> str:
    s, rows = report["settings"], report["results"]
    dims = sorted({r["dim"] for r in rows})
    by = {(r["method"], r["dim"]): r for r in rows}
    m = report["machine"]
    lines = [
        f"Device: {m['device']} ({m['cpu_model'] or m['device_name']}); {m['torch_threads']} "
        f"torch threads; torch {m['torch']}; float32 matrix-multiply rate "
        f"{report['gemm_gflop_per_s']:.0f} GFLOP/s ({s['gemm']}² sgemm, median).",
        "",
        f"Command: `{report['command']}`",
        "",
        f"One Adam step of the PINN on poisson-sine, {s['depth']}×{s['width']} tanh, "
        f"{s['n_interior']} interior + {s['n_boundary']} boundary points; stochastic methods "
        f"with {s['probes']} probes. Median ms per step (timed steps), peak memory of the step, "
        "achieved GFLOP/s (matrix-product FLOPs counted with torch.utils.flop_counter's formulas).",
        "",
        "| method | " + " | ".join(f"d = {d:,}" for d in dims) + " |",
        "|---|" + "---:|" * len(dims),
    ]
    for method in s["methods"]:
        cells = []
        for d in dims:
            r = by.get((method, d))
            if r is None:
                cells.append("—")
            elif "skipped" in r:
                cells.append(f"skipped ({r['skipped']})")
            elif "error" in r:
                cells.append(f"failed ({r['error'][:40]})")
            else:
                cells.append(
                    f"{r['ms_per_step']:.0f} ms ({r['timed']}) · {r['peak_mb']:.0f} MB · "
                    f"{r['gflop_per_s']:.0f} GF/s"
                )
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    lines += ["", "Ratios of time per step (baseline / method):", ""]
    lines += ["| d | " + " | ".join(f"{b} / reduced" for b in ("deepxde", "reverse")) + " |"]
    lines += ["|---:|---:|---:|"]
    for d in dims:
        red = by.get(("reduced", d))
        cells = []
        for b in ("deepxde", "reverse"):
            r = by.get((b, d))
            ok = red and r and "ms_per_step" in r and "ms_per_step" in red
            cells.append(f"{r['ms_per_step'] / red['ms_per_step']:.1f}×" if ok else "—")
        lines.append(f"| {d:,} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for method in report["settings"]["methods"]:
        pts = [
            (r["dim"], r["ms_per_step"])
            for r in report["results"]
            if r["method"] == method and "ms_per_step" in r
        ]
        if pts:
            ax.loglog(*zip(*sorted(pts), strict=True), "o-", label=method)
    ax.set_xlabel("dimension d")
    ax.set_ylabel("ms per training step")
    ax.set_title("Cost of the exact / estimated Laplacian per PINN step")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dims", type=int, nargs="+", default=[10, 100, 1000, 10000])
    p.add_argument("--methods", nargs="+", default=METHODS, choices=METHODS)
    p.add_argument("--repeats", type=int, default=10, help="timed steps")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    p.add_argument("--budget", type=float, default=60.0, help="stop timing after (s)")
    p.add_argument("--max-gb", type=float, default=12.0, help="skip above this model memory")
    p.add_argument("--probes", type=int, default=16)
    add_run_arguments(p)
    p.add_argument("--gemm", type=int, default=2048)
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", type=Path, default=Path("docs/benchmarks/cpu/derivatives.json"))
    p.add_argument("--one", nargs=2, metavar=("METHOD", "DIM"), help=argparse.SUPPRESS)
    p.add_argument("--memory-pass", action="store_true", help=argparse.SUPPRESS)
    return p


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    if args.one:
        print(json.dumps(one(args.one[0], int(args.one[1]), args)))
        return
    device = torch.device(args.device)
    passthrough = [a for a in (argv if argv is not None else sys.argv[1:])]
    results = []
    for dim in args.dims:
        for method in args.methods:
            gb = estimated_gb(method, dim, args)
            if gb > args.max_gb:
                results.append(
                    {"method": method, "dim": dim, "skipped": f"~{gb:.0f} GB by the cost model"}
                )
                print(f"{method:>11} d={dim:>6}: skipped (~{gb:.0f} GB)", flush=True)
                continue
            cmd = [sys.executable, __file__, *passthrough, "--one", method, str(dim)]
            runs = [
                subprocess.run(c, capture_output=True, text=True)
                for c in (cmd, [*cmd, "--memory-pass"])
            ]
            failed = next((d for d in runs if d.returncode != 0), None)
            if failed is not None:
                tail = failed.stderr.strip().splitlines()[-1:] or [f"exit {failed.returncode}"]
                results.append({"method": method, "dim": dim, "error": tail[0]})
                print(f"{method:>11} d={dim:>6}: failed: {tail[0]}", flush=True)
                continue
            r = {
                k: v for d in runs for k, v in json.loads(d.stdout.strip().splitlines()[-1]).items()
            }
            results.append(r)
            print(
                f"{method:>11} d={dim:>6}: {r['ms_per_step']:9.1f} ms/step ({r['timed']}), "
                f"{r['peak_mb']:8.0f} MB, {r['gflop_per_s']:6.1f} GFLOP/s",
                flush=True,
            )
    report = {
        "command": "python " + shlex.join([f"benchmarks/{Path(__file__).name}", *passthrough]),
        "machine": machine(device, args.seed),
        "gemm_gflop_per_s": gemm_rate(args.gemm, device),
        "settings": {k: v for k, v in vars(args).items() if k not in ("out", "one")},
        "results": results,
    }
    report["settings"]["out"] = str(args.out)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))
    args.out.with_suffix(".md").write_text(markdown(report))
    plot(report, args.out.with_suffix(".png"))
    print(markdown(report))


if __name__ == "__main__":
    main()
