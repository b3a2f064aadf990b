"""Cost of one Gauss–Newton (ENGD) step against the number of weights p and of points N.

    OMP_NUM_THREADS=1 python benchmarks/gauss_newton_cost.py --out docs/benchmarks/gauss_newton_cost.json

The PINN loss of poisson-sine in ``--dim`` dimensions (the residual −Δu − f at N interior
points and u − g at N/4 boundary points), float64, a tanh MLP of depth 2 and each
``--widths``; for each (p, N), medians over ``--repeats`` of:

* ``jacobian``: the residual rows' Jacobian J (N_rows × p) as the exact step forms it
  (``GaussNewton.jacobian``: ``torch.func.vmap`` over the points of ``jacrev`` over the
  weights, through pinnlab's forward jets);
* ``loop``: the baseline, the same J by a generic nested-autograd loop: the residual of the
  whole batch by reverse mode (``solver.derivatives: reverse``, u → ∇u → Δu with
  ``create_graph``), then one reverse pass per row (``torch.autograd.grad(r_i, θ,
  retain_graph=True)``), run only where it fits ``--loop-budget`` seconds; its J is checked
  equal to the first one;
* ``solve``: the damped system from J (``GaussNewton.direction``: JᵀJ or J Jᵀ, Cholesky,
  solve);
* ``step``: one whole exact step (``GaussNewton.step``: J, solve, a 12-halving grid line
  search, the damping update);
* ``product``: one matrix-free product (JᵀJ + μ I) v of conjugate gradients (``J v`` and
  ``Jᵀ u`` of ``Linearisation``), and ``linearise``, setting those products up once per step.

A matrix-free step costs about ``linearise`` + ``cg_steps`` × ``product`` plus the line
search; the exact one ``step``. The ratio ``loop / jacobian`` is what the vmapped jets save
over the generic loop.

``--kfac-widths`` times one Kronecker-factored step (``train.engd.solver: kfac`` with
``line_search: auto``: the factors' statistics, their damped inverse, the exact quadratic
model along the step and the last update, one loss evaluation) on the same problem at
``--kfac-points`` points, for networks up to 10⁶ weights, where no exact step can be formed:

    OMP_NUM_THREADS=1 python benchmarks/gauss_newton_cost.py --kfac-widths 64 256 1024 \
        --out docs/benchmarks/gauss_newton_cost.json
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import sys
import time
from pathlib import Path

import torch
from pinn_vs_deepxde import machine

import pinnlab as pl
from pinnlab.build import build_model, build_problem, build_solver
from pinnlab.gauss_newton import GaussNewton, Linearisation

CPU = torch.device("cpu")


def timed(fn, repeats: int) -> float:
    """Median seconds of ``repeats`` calls after one untimed call."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def setting(dim: int, width: int, n: int, derivatives: str = "auto"):
    """(solver, model, batch) of poisson-sine with a depth-2 tanh MLP and N + N/4 points."""
    cfg = pl.make_config(
        config={
            "problem": {"id": "poisson-sine", "dim": dim},
            "solver": {"n_interior": n, "n_boundary": n // 4, "derivatives": derivatives},
            "net": {"kind": "mlp", "width": width, "depth": 2, "activation": "tanh"},
            "dtype": "float64",
            "device": "cpu",
        }
    )
    problem = build_problem(cfg)
    solver = build_solver(problem, cfg)
    model = build_model(problem, cfg, device=CPU, solver=solver)
    return solver, model, solver.batch(model, torch.Generator().manual_seed(0))


def loop_jacobian(solver, model, batch) -> torch.Tensor:
    """J by one reverse pass per residual row, through a reverse-mode residual."""
    params = [p for p in model.module.parameters() if p.requires_grad]
    rows = []
    for term in solver.least_squares(model, batch).values():
        e = term.rows()
        scale = 1 / e.numel() ** 0.5  # the rows of r = e/√(n m) (mean_weight 1)
        for value in e.reshape(-1):
            grads = torch.autograd.grad(value, params, retain_graph=True, allow_unused=True)
            rows.append(
                scale
                * torch.cat(
                    [
                        (g if g is not None else torch.zeros_like(p)).reshape(-1)
                        for g, p in zip(grads, params, strict=True)
                    ]
                )
            )
    return torch.stack(rows)


def measure(dim: int, width: int, n: int, args) -> dict:
    solver, model, batch = setting(dim, width, n)
    optimizer = GaussNewton(model.module)
    terms = {k: (t, 1.0) for k, t in solver.least_squares(model, batch).items()}
    r, jac, _ = optimizer.jacobian(terms)
    out = {"p": jac.shape[1], "rows": jac.shape[0], "n_interior": n}
    out["jacobian"] = timed(lambda: optimizer.jacobian(terms), args.repeats)
    out["solve"] = timed(lambda: optimizer.direction(r, jac, 1e-6), args.repeats)
    start = [p.detach().clone() for p in optimizer.params]

    def step():
        optimizer.step(terms)
        optimizer._move(start, torch.zeros(jac.shape[1], dtype=torch.float64), 0.0)

    out["step"] = timed(step, args.repeats)
    linear = Linearisation(model.module, optimizer.names, terms)
    v = torch.randn(jac.shape[1], dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    out["linearise"] = timed(
        lambda: Linearisation(model.module, optimizer.names, terms), args.repeats
    )
    out["product"] = timed(lambda: linear.jtu(linear.jv(v)) + 1e-6 * v, args.repeats)
    # the baseline, where one pass (a tenth of the rows, timed) says it fits the budget
    rev_solver, rev_model, rev_batch = setting(dim, width, n, "reverse")
    rev_model.module.load_state_dict(model.module.state_dict())
    params = [p for p in rev_model.module.parameters() if p.requires_grad]
    e = next(iter(rev_solver.least_squares(rev_model, rev_batch).values())).rows()
    begin = time.perf_counter()
    for value in e.reshape(-1)[:20]:
        torch.autograd.grad(value, params, retain_graph=True, allow_unused=True)
    estimate = (time.perf_counter() - begin) / 20 * jac.shape[0]
    out["loop"] = None
    if estimate <= args.loop_budget:
        begin = time.perf_counter()
        baseline = loop_jacobian(rev_solver, rev_model, rev_batch)
        out["loop"] = time.perf_counter() - begin
        torch.testing.assert_close(baseline, jac, rtol=1e-8, atol=1e-10)
    out["loop_estimate"] = estimate
    return out


def measure_kfac(dim: int, width: int, n: int, repeats: int) -> dict:
    """One Kronecker-factored step (after a first, untimed, that sets the last update)."""
    solver, model, batch = setting(dim, width, n)
    optimizer = GaussNewton(model.module, solver="kfac", line_search="auto")
    terms = {k: (t, 1.0) for k, t in solver.least_squares(model, batch).items()}
    p = sum(q.numel() for q in optimizer.params)
    rows = sum(len(t.vector(t.rows().unsqueeze(2))) for t, _ in terms.values())
    return {
        "p": p,
        "rows": rows,
        "width": width,
        "kfac_step": timed(lambda: optimizer.step(terms), repeats),
    }


def markdown_kfac(results: list[dict]) -> str:
    rows = ["| width | p | N rows | KFAC step |", "|---:|---:|---:|---:|"]
    for r in results:
        rows.append(f"| {r['width']} | {r['p']} | {r['rows']} | {r['kfac_step']:.3g} s |")
    return "\n".join(rows)


def markdown(results: list[dict]) -> str:
    head = (
        "| p | N rows | J (vmap jets) | J (autograd loop) | loop / jets | solve | exact step "
        "| CG product | linearise |"
    )
    rows = [head, "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        loop = "—" if r["loop"] is None else f"{r['loop']:.3g} s"
        ratio = "—" if r["loop"] is None else f"{r['loop'] / r['jacobian']:.0f}×"
        rows.append(
            f"| {r['p']} | {r['rows']} | {r['jacobian']:.3g} s | {loop} | {ratio} | "
            f"{r['solve']:.3g} s | {r['step']:.3g} s | {r['product'] * 1e3:.3g} ms | "
            f"{r['linearise'] * 1e3:.3g} ms |"
        )
    return "\n".join(rows)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dim", type=int, default=5)
    parser.add_argument("--widths", type=int, nargs="+", default=[16, 32, 64, 128])
    parser.add_argument("--points", type=int, nargs="+", default=[256, 1024, 4096])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--loop-budget", type=float, default=60.0)
    parser.add_argument("--out", type=Path, default=Path("docs/benchmarks/gauss_newton_cost.json"))
    parser.add_argument("--kfac-widths", type=int, nargs="+", help="time KFAC steps only")
    parser.add_argument("--kfac-points", type=int, default=1024)
    parser.add_argument("--table", action="store_true", help="print the table of --out and stop")
    args = parser.parse_args(argv)
    if args.table:
        saved = json.loads(args.out.read_text())
        print(markdown(saved["results"]))
        if "kfac" in saved:
            print(markdown_kfac(saved["kfac"]["results"]))
        return
    torch.set_num_threads(1)
    if args.kfac_widths:  # merged into --out beside the exact and matrix-free results
        results = [
            measure_kfac(args.dim, w, args.kfac_points, args.repeats) for w in args.kfac_widths
        ]
        saved = json.loads(args.out.read_text()) if args.out.exists() else {}
        saved["kfac"] = {"command": shlex.join([sys.executable, *sys.argv]), "results": results}
        args.out.write_text(json.dumps(saved, indent=1))
        print(markdown_kfac(results))
        return
    results = []
    for width in args.widths:
        for n in args.points:
            results.append(measure(args.dim, width, n, args))
            print(json.dumps(results[-1]), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "command": shlex.join([sys.executable, *sys.argv]),
                "machine": machine(CPU, 0),
                "dim": args.dim,
                "results": results,
            },
            indent=1,
        )
    )
    print(markdown(results))


if __name__ == "__main__":
    main()
