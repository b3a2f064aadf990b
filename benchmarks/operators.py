"""Cost of one PINN step for general strong forms, pinnlab against DeepXDE, in one process.

    python benchmarks/operators.py --out docs/benchmarks/cpu/operators.json

A step is the residual's mean square (plus, for the flux problem, the Neumann term on one
face), its backward pass and an Adam update, on the same points and networks of the same
shape (``--depth`` × ``--width`` tanh, glorot-normal, zero biases, from one seed):

* ``burgers`` — uₜ + u uₓ − (0.01/π) uₓₓ on (t, x): pinnlab ``d.partial("t")``, ``d.partial(0)``,
  ``d.partial(0, 0)``; DeepXDE ``dde.grad.jacobian`` twice and ``dde.grad.hessian``;
* ``kovasznay`` — steady Navier–Stokes with outputs (u, v, p): the momentum and continuity
  residuals from the six first and four second partials;
* ``flux-d`` — −Δu − f in d dimensions and ∂u/∂n − g on the face x₀ = 1: pinnlab
  ``d.laplacian`` (its ``auto`` method, resolved once as a solver's ``bind`` does) and
  ``d.normal_derivative``; DeepXDE's loop of d
  Hessian diagonals and the Jacobian's first column.

The time is the median over ``--repeats`` steps after ``--warmup``; DeepXDE's derivative
caches are cleared between steps (as its training loop does). ``--compile`` adds pinnlab's
loss under ``torch.compile`` (inductor: the jets' elementwise chains fused into C++ loops),
on a fresh copy of the same network, with the seconds its first steps take (the compilation). Results go to ``--out`` (JSON)
and are printed as the markdown table docs/benchmarks.md shows.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import statistics
import time
from pathlib import Path

import torch

import pinnlab as pl
from pinnlab.derivatives import method_for
from pinnlab.interop.deepxde import import_deepxde
from pinnlab.networks import MLP

NU = 0.01 / math.pi
RE = 20.0


def pinnlab_net(in_dim: int, out_dim: int, args) -> torch.nn.Module:
    g = torch.Generator().manual_seed(args.seed)
    return MLP(in_dim, out_dim, args.width, args.depth, "tanh", generator=g)


def deepxde_net(in_dim: int, out_dim: int, args, dde) -> torch.nn.Module:
    torch.manual_seed(args.seed)
    return dde.nn.FNN([in_dim] + [args.width] * args.depth + [out_dim], "tanh", "Glorot normal")


def pinnlab_loss(
    case: str, net, x: torch.Tensor, face: torch.Tensor | None, method
) -> torch.Tensor:
    if case == "burgers":
        d = pl.Derivatives(net, x, method=method, time_dependent=True)
        u = d.u
        return (d.partial("t") + u * d.partial(0) - NU * d.partial(0, 0)).square().mean()
    if case == "kovasznay":
        d = pl.Derivatives(net, x, method=method)
        u, v = d.u[:, 0], d.u[:, 1]
        ux, uy, vx, vy = (d.partial(a, output=k) for k in (0, 1) for a in (0, 1))
        px, py = d.partial(0, output=2), d.partial(1, output=2)
        lap_u = d.partial(0, 0, output=0) + d.partial(1, 1, output=0)
        lap_v = d.partial(0, 0, output=1) + d.partial(1, 1, output=1)
        mx = u * ux + v * uy + px - lap_u / RE
        my = u * vx + v * vy + py - lap_v / RE
        return mx.square().mean() + my.square().mean() + (ux + vy).square().mean()
    d = pl.Derivatives(net, x, method=method)
    interior = (-d.laplacian - 1.0).square().mean()
    normal = torch.zeros_like(face)
    normal[:, 0] = 1.0
    flux = pl.Derivatives(net, face, method=method, normals=normal).normal_derivative
    return interior + (flux - 2.0).square().mean()


def deepxde_loss(case: str, net, x: torch.Tensor, face: torch.Tensor | None, dde) -> torch.Tensor:
    grad = dde.grad
    if case == "burgers":  # DeepXDE's column order: (x, t)
        xt = x[:, [1, 0]].clone().requires_grad_(True)
        y = net(xt)
        ut = grad.jacobian(y, xt, i=0, j=1)
        ux = grad.jacobian(y, xt, i=0, j=0)
        uxx = grad.hessian(y, xt, i=0, j=0)
        return (ut + y * ux - NU * uxx).square().mean()
    if case == "kovasznay":
        x = x.clone().requires_grad_(True)
        y = net(x)
        u, v = y[:, 0:1], y[:, 1:2]
        ux, uy = grad.jacobian(y, x, i=0, j=0), grad.jacobian(y, x, i=0, j=1)
        vx, vy = grad.jacobian(y, x, i=1, j=0), grad.jacobian(y, x, i=1, j=1)
        px, py = grad.jacobian(y, x, i=2, j=0), grad.jacobian(y, x, i=2, j=1)
        lap_u = grad.hessian(y, x, component=0, i=0, j=0) + grad.hessian(
            y, x, component=0, i=1, j=1
        )
        lap_v = grad.hessian(y, x, component=1, i=0, j=0) + grad.hessian(
            y, x, component=1, i=1, j=1
        )
        mx = u * ux + v * uy + px - lap_u / RE
        my = u * vx + v * vy + py - lap_v / RE
        return mx.square().mean() + my.square().mean() + (ux + vy).square().mean()
    x = x.clone().requires_grad_(True)
    y = net(x)
    lap = sum(grad.hessian(y, x, i=i, j=i) for i in range(x.shape[1]))
    f = face.clone().requires_grad_(True)
    flux = grad.jacobian(net(f), f, i=0, j=0)
    return (-lap - 1.0).square().mean() + (flux - 2.0).square().mean()


def points(case: str, dim: int, args) -> tuple[torch.Tensor, torch.Tensor | None]:
    g = torch.Generator().manual_seed(args.seed + 1)
    if case == "burgers":
        x = torch.rand(args.n_interior, 2, generator=g)
        return torch.stack([x[:, 0], 2 * x[:, 1] - 1], dim=1), None
    if case == "kovasznay":
        x = torch.rand(args.n_interior, 2, generator=g)
        return torch.stack([-0.5 + 1.5 * x[:, 0], -0.5 + 2 * x[:, 1]], dim=1), None
    x = torch.rand(args.n_interior, dim, generator=g)
    face = torch.rand(args.n_boundary, dim, generator=g)
    face[:, 0] = 1.0
    return x, face


def time_steps(loss_fn, net, args, clear=None, timings=None) -> float:
    """The median seconds of one step; ``timings`` (a list), if given, receives the seconds
    of the warm-up steps together."""
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    times = []
    start_all = time.perf_counter()
    for i in range(args.warmup + args.repeats):
        if i == args.warmup and timings is not None:
            timings.append(time.perf_counter() - start_all)
        start = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = loss_fn()
        loss.backward()
        opt.step()
        if clear is not None:
            clear()
        if i >= args.warmup:
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--cases", nargs="+", default=["burgers", "kovasznay", "flux-2", "flux-10", "flux-100"]
    )
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--depth", type=int, default=4)
    parser.add_argument("--n-interior", type=int, default=2048)
    parser.add_argument("--n-boundary", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--compile", action="store_true", help="also time torch.compile")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    dde = import_deepxde()
    rows = []
    for case in args.cases:
        kind, _, dim = case.partition("-")
        dim = int(dim) if dim else 2
        in_dim, out_dim = (2, 3) if kind == "kovasznay" else (dim, 1)
        x, face = points(kind, dim, args)
        ours = pinnlab_net(in_dim, out_dim, args)
        theirs = deepxde_net(in_dim, out_dim, args, dde)
        method = method_for(ours, "auto", in_dim)  # resolved once, as a solver's bind does
        t_ours = time_steps(
            functools.partial(pinnlab_loss, kind, ours, x, face, method), ours, args
        )
        t_theirs = time_steps(
            functools.partial(deepxde_loss, kind, theirs, x, face, dde),
            theirs,
            args,
            clear=dde.grad.clear,
        )
        row = {
            "case": case,
            "pinnlab_ms": 1e3 * t_ours,
            "deepxde_ms": 1e3 * t_theirs,
            "speedup": t_theirs / t_ours,
        }
        if args.compile:
            net = pinnlab_net(in_dim, out_dim, args)
            loss = torch.compile(functools.partial(pinnlab_loss, kind, net, x, face, method))
            warm: list[float] = []
            t_compiled = time_steps(loss, net, args, timings=warm)
            row.update(
                compiled_ms=1e3 * t_compiled,
                compiled_speedup=t_theirs / t_compiled,
                compile_s=warm[0],
            )
        rows.append(row)
        print(
            f"{case}: pinnlab {1e3 * t_ours:.1f} ms, deepxde {1e3 * t_theirs:.1f} ms, "
            f"×{t_theirs / t_ours:.2f}"
            + (
                f"; compiled {row['compiled_ms']:.1f} ms, ×{row['compiled_speedup']:.2f}"
                if args.compile
                else ""
            ),
            flush=True,
        )
    report = {
        "args": vars(args) | {"out": str(args.out)},
        "torch": torch.__version__,
        "deepxde": dde.__version__,
        "rows": rows,
    }
    head = "| case | pinnlab ms/step | DeepXDE ms/step | DeepXDE / pinnlab |"
    rule = "|---|---:|---:|---:|"
    if args.compile:
        head += " compiled ms/step | DeepXDE / compiled | compilation (s) |"
        rule += "---:|---:|---:|"
    print(f"\n{head}\n{rule}")
    for r in rows:
        line = (
            f"| {r['case']} | {r['pinnlab_ms']:.1f} | {r['deepxde_ms']:.1f} | {r['speedup']:.2f} |"
        )
        if args.compile:
            line += (
                f" {r['compiled_ms']:.1f} | {r['compiled_speedup']:.2f} | {r['compile_s']:.0f} |"
            )
        print(line)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
