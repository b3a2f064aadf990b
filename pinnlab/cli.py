"""The ``pinnlab`` command line: problems, recipes, solve, eval, info, plot, study, report.

Errors print as one line (``error: ...``) and exit with status 2; ``--debug`` shows the
traceback instead.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .errors import PinnlabError, ShapeError
from .files import atomic_write


def _cmd_problems(args) -> int:
    from .recipes import recipes
    from .registry import catalogue, describe

    problems = catalogue(args.problems)
    chosen = [problems[args.problem]] if args.problem else problems.values()
    entries = [{**describe(cls), "recipes": [r.name for r in recipes(cls.id)]} for cls in chosen]
    if args.json:
        print(json.dumps(entries, indent=2, default=str))
        return 0
    for e in entries:
        params = ", ".join(f"{k}={v!r}" for k, v in e["parameters"].items())
        print(f"{e['id']}")
        if args.problem:  # one problem in full
            print("\n".join(f"  {line}".rstrip() for line in e["doc"].splitlines()))
            print()
        else:
            print(f"  {e['summary']}")
        print(f"  parameters: {params}")
        print(
            f"  dimensions: {e['dimensions']}   forms: {', '.join(e['forms'])}   truth: {e['truth']}"
        )
        print(f"  recipes: {', '.join(e['recipes']) or 'none (defaults)'}")
    return 0


def _param(assignment: str) -> tuple[str, str]:
    if "=" not in assignment:
        raise PinnlabError(f"--param expects NAME=VALUE (e.g. coef_seed=3), got '{assignment}'.")
    name, value = assignment.split("=", 1)
    return name.strip(), value


def _print_metrics(metrics: dict) -> None:
    for name, value in metrics.items():
        print(f"  {name:>16s} = {value:.4e}")


def _named_recipe(args):
    """The shipped recipe ``--recipe`` names, checked against the other options; or None."""
    if args.recipe is None:
        return None
    if args.config is not None:
        raise PinnlabError(
            "--recipe and --config both give the run's config; give one of them "
            "(--recipe NAME is the shipped configs/runs/NAME.yaml)."
        )
    from .recipes import find

    chosen = find(args.recipe)
    for option, given, own in (
        ("problem", args.problem, chosen.problem),
        ("--method", args.method, chosen.method),
    ):
        if given is not None and given != own:
            raise PinnlabError(
                f"recipe {chosen.name} is for {own}, but the {option} given is {given}; "
                f"drop the {option}, or apply the file to {given} with --config {chosen.file}."
            )
    return chosen


def _cmd_recipes(args) -> int:
    from .recipes import recipes

    found = recipes(args.problem, args.method)
    if args.problem is not None and not recipes(args.problem):
        from .registry import catalogue

        catalogue(args.problems)[args.problem]  # an unknown id: the error with a did-you-mean
    if args.json:
        entries = [
            {
                "name": r.name,
                "problem": r.problem,
                "method": r.method,
                "dim": r.dim,
                "dims": list(r.dims),
                "file": r.file,
                "command": r.command,
                "description": r.description,
            }
            for r in found
        ]
        print(json.dumps(entries, indent=2))
        return 0
    if not found:
        print("no shipped recipes match; `pinnlab recipes` lists them all")
        return 0
    rows = [
        ("id", "method", "dims", "file"),
        *((r.problem, r.method, r.span, r.file) for r in found),
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    for i, row in enumerate(rows):
        print("  ".join([*(f"{v:{w}s}" for v, w in zip(row, widths, strict=False)), row[3]]))
        if i:  # the command that selects it, and what it is
            r = found[i - 1]
            print(f"    {r.command}" + (f"  # {r.description}" if r.description else ""))
    return 0


def _cmd_solve(args) -> int:
    from .run import make_config, run

    params = dict(_param(p) for p in args.param)
    if args.dim is not None:
        params["dim"] = args.dim
    sets = list(args.set)
    if args.device is not None:
        sets.append(f"device={args.device}")
    if args.seed is not None:
        sets.append(f"seed={args.seed}")
    chosen = _named_recipe(args)
    data = {}
    if args.data is not None:
        data["file"] = str(Path(args.data).resolve())
    if args.holdout is not None:
        data["holdout"] = args.holdout
    config = make_config(
        args.problem,
        method=args.method,
        config=chosen.path if chosen else args.config,
        params=params,
        overrides={"data": data} if data else None,
        sets=sets,
        problems_dirs=args.problems,
    )
    if chosen is not None:
        dim = config.problem.params().get("dim")
        outside = isinstance(dim, int) and not chosen.serves(dim)
        note = f"; d = {dim} lies outside its range" if outside else ""
        print(f"recipe: {chosen.summary()}, named by --recipe{note}")
    elif args.config is None:
        from .recipes import asked_dim, selection

        chosen = selection(config.problem.id, config.method, asked_dim(params, sets=sets))
        print(chosen.message())
    out = (
        args.out
        or Path("runs")
        / f"{config.problem.id}-d{config.problem.params().get('dim', 'x')}-{config.method}.h5"
    )
    _check_out(Path(out), args)
    if args.ensemble is not None:
        return _ensemble(args, config, Path(out))
    print(f"solving {config.problem.id} {config.problem.params()} with {config.method} -> {out}")
    solution = run(
        config, out=out, resume=args.resume, progress=not args.quiet, problems_dirs=args.problems
    )
    env = solution.environment
    refit = (
        f", then the output layer fitted to {env['refit_starts']} starts "
        f"({env['finish_time']:.1f} s)"
        if "refit_starts" in env
        else ""
    )
    print(
        f"done: {env['steps']} steps{refit} in {env['wall_time']:.1f} s on {env['device']} "
        f"(stopped by {env['stop_reason']}); solution written to {out}"
    )
    _print_metrics(solution.metrics)
    return 0


def _check_out(out: Path, args) -> None:
    """Refuse to overwrite a solution without --force, and to start over beside a checkpoint
    of the run without --resume (or --force)."""
    checkpoint = Path(f"{out}.ckpt")
    if args.force or args.resume:
        return
    if checkpoint.exists():
        raise PinnlabError(
            f"a checkpoint of a run with --out {out} exists ({checkpoint}): continue it with "
            "--resume, or pass --force to start over (the checkpoint is then replaced)."
        )
    if out.exists():
        raise PinnlabError(
            f"'{out}' exists: pass --force to overwrite it, or choose another --out."
        )


def _ensemble(args, config, out: Path) -> int:
    """``solve --ensemble N``: N members in parallel; member 0 is written to ``out``, every
    member and summary.json to ``<out>-ensemble/``; each scalar unknown printed with its
    error bar."""
    import shutil

    from .studies.ensemble import ensemble

    folder = out.with_name(out.stem + "-ensemble")
    print(
        f"solving {config.problem.id} {config.problem.params()} with {config.method}: an "
        f"ensemble of {args.ensemble} -> {folder}/"
    )
    estimates = ensemble(
        config,
        args.ensemble,
        out_dir=folder,
        workers=args.workers,
        problems_dirs=args.problems,
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(folder / "member-0.h5", out)
    print(f"done: member 0 written to {out}; estimate ± spread of {args.ensemble} members, 95 %:")
    for e in estimates.values():
        truth = "" if e.exact is None else f"; true {e.exact:.6g}, covered: {e.covers}"
        print(f"  {e.name:<16s} {e.value:.6g} ± {e.std:.2g}  [{e.low:.6g}, {e.high:.6g}]{truth}")
    return 0


def _cmd_eval(args) -> int:
    import numpy as np

    from .solution import load

    solution = load(args.solution, problems_dirs=args.problems)
    points = _read_points(Path(args.points))
    if points.ndim == 1 and solution.in_dim == 1:
        points = points[:, None]
    if points.ndim != 2:
        raise ShapeError(
            f"points in '{args.points}' must be a 2-d array (n, {solution.in_dim}); got shape {points.shape}."
        )
    values = solution.grad(points) if args.grad else solution(points)
    if args.out is None:  # to standard output, one row per point
        np.savetxt(sys.stdout, values.reshape(len(values), -1), fmt="%.9g")
        return 0
    out = Path(args.out)
    with atomic_write(out, suffix=".npy") as tmp:
        np.save(tmp, values)
    print(f"wrote {'gradients' if args.grad else 'values'} of shape {values.shape} to {out}")
    return 0


def _read_points(path: Path):
    """Points from a .npy array, or a .txt/.csv/.dat table (comma-, semicolon- or white-space-
    separated; '#' comments and a header line are skipped)."""
    import numpy as np

    if not path.exists():
        raise PinnlabError(f"points file '{path}' does not exist.")
    if path.suffix.lower() in (".txt", ".csv", ".dat"):
        from .observations import read_table

        return read_table(path)
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise PinnlabError(
            f"cannot read points from '{path}': a .npy array of shape (n, dim), or a "
            f".txt/.csv table with one point per row, is expected ({e})."
        ) from None


def _cmd_info(args) -> int:
    from .solution import load

    solution = load(args.solution, problems_dirs=args.problems)
    info = {
        "problem": {"id": solution.problem.id, **solution.problem.params()},
        "config": solution.config.model_dump(),
        "environment": solution.environment,
        "metrics": solution.metrics,
        "history": {k: len(v) for k, v in solution.history.items()},
        "unknowns": _unknowns(solution),
    }
    if args.json:
        print(json.dumps(info, indent=2, default=str))
        return 0
    print(f"{solution.problem} solved with {solution.config.method}")
    env = solution.environment
    print(
        f"  {env.get('steps')} steps, {env.get('wall_time', float('nan')):.1f} s on {env.get('device')}; "
        f"pinnlab {env.get('pinnlab')}, torch {env.get('torch')}, python {env.get('python')}, git {env.get('git')}"
    )
    print("  config: " + json.dumps(solution.config.model_dump(exclude={"problem"})))
    print("  metrics:")
    _print_metrics(solution.metrics)
    if info["unknowns"]:
        print("  unknowns:")
        for name, u in info["unknowns"].items():
            value = u["value"]
            shown = f"{value:.6g}" if isinstance(value, float) else str(value)
            error = f"  (error {u['error']:.3g})" if "error" in u else ""
            print(f"    {name:<20s} {shown}{error}")
    return 0


def _unknowns(solution) -> dict:
    """Each identified unknown: its value (a field: "field"), its error where the truth is
    known, and its history over the evaluations."""
    import numpy as np

    out = {}
    metrics = solution.metrics
    for name, value in solution.unknowns.items():
        entry = {"value": "field" if callable(value) else value}
        if isinstance(value, np.ndarray):
            entry["value"] = value.tolist()
        if f"{name}_error" in metrics:
            entry["error"] = metrics[f"{name}_error"]
        series = {
            k: solution.history[k].tolist()
            for k in solution.history
            if k == f"unknown.{name}" or k.startswith(f"unknown.{name}.")
        }
        if series:
            entry["history"] = series
        out[name] = entry
    return out


def _cmd_study(args) -> int:
    from .studies import read_study, run_study
    from .studies.store import load

    study = read_study(args.config, sets=args.set)
    print(f"study {study.name} -> {args.out} ({args.executor} executor)")
    run_study(
        study,
        args.out,
        executor=args.executor,
        workers=args.workers,
        address=args.address,
        threads=args.threads,
        gpus=args.gpus,
        resume=args.resume,
        progress=not args.quiet,
        problems_dirs=args.problems,
    )
    df = load(args.out)
    counts = df["status"].value_counts().to_dict() if len(df) else {}
    print(
        f"done: {counts.get('done', 0)} runs finished, {counts.get('failed', 0)} failed; "
        f"store in {args.out}; `pinnlab report {args.out}` writes the report"
    )
    for row in df[df["status"] == "failed"].itertuples():
        print(f"  failed {row.id} (seed {row.seed}): {row.error}")
    return 0


def _cmd_plot(args) -> int:
    from .plot import default_out, plot
    from .solution import load

    solution = load(args.solution, problems_dirs=args.problems)
    out = Path(args.out) if args.out else default_out(args.solution, args.what)
    plot(
        solution,
        args.what,
        out=out,
        slice=args.slice,
        at=args.at,
        points=args.points,
        dpi=args.dpi,
    )
    print(f"wrote {out}")
    return 0


def _cmd_report(args) -> int:
    from .studies.report import write_report

    path = write_report(args.store, problems_dirs=args.problems)
    print(f"wrote {path}")
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="pinnlab", description="Solve PDEs with neural networks.")
    p.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    p.add_argument(
        "--problems",
        action="append",
        default=[],
        metavar="DIR",
        help="also load problem files from DIR (repeatable; see also $PINNLAB_PROBLEMS)",
    )
    # --problems is accepted after the command too (pinnlab solve ID --problems DIR).
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--problems",
        action="append",
        default=argparse.SUPPRESS,
        metavar="DIR",
        help=argparse.SUPPRESS,
    )
    sub = p.add_subparsers(dest="command", required=True)

    q = sub.add_parser("problems", parents=[common], help="list the catalogue")
    q.add_argument("problem", nargs="?", help="show this problem in full")
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=_cmd_problems)

    s = sub.add_parser("solve", parents=[common], help="train a solution of a catalogue problem")
    s.add_argument(
        "problem", nargs="?", help="problem id (see `pinnlab problems`); default: the config's"
    )
    s.add_argument("--dim", type=int, help="the problem's dimension")
    s.add_argument(
        "--param", action="append", default=[], metavar="NAME=VALUE", help="problem parameter"
    )
    s.add_argument("--method", default=None, help="solver (default: the config's, else pinn)")
    s.add_argument(
        "--config", help="run config YAML (default: the shipped recipe for the problem and --dim)"
    )
    s.add_argument(
        "--recipe",
        metavar="NAME",
        help="the shipped recipe NAME (see `pinnlab recipes`), whatever --dim is",
    )
    s.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config key, e.g. train.steps=200",
    )
    s.add_argument(
        "--data",
        metavar="FILE",
        help="observations of an inverse problem (.npz, .h5, .csv; docs/inverse.md), "
        "fitted in place of the problem's own",
    )
    s.add_argument(
        "--holdout",
        type=float,
        metavar="FRACTION",
        help="hold this fraction of the observations out; the history records their misfit",
    )
    s.add_argument(
        "--ensemble",
        type=int,
        metavar="N",
        help="train N runs (seeds and resampled data) and report each unknown's spread",
    )
    s.add_argument("--workers", type=int, help="--ensemble: runs at once (default: CPU count)")
    s.add_argument("--device", default=None, help="auto (default), cpu, cuda or cuda:N")
    s.add_argument("--seed", type=int)
    s.add_argument("--out", help="solution file (default runs/<problem>-d<dim>-<method>.h5)")
    s.add_argument("--resume", action="store_true", help="continue from <out>.ckpt")
    s.add_argument(
        "--force", action="store_true", help="overwrite an existing --out (and its checkpoint)"
    )
    s.add_argument("--quiet", action="store_true", help="no progress bar")
    s.set_defaults(func=_cmd_solve)

    rc = sub.add_parser(
        "recipes", parents=[common], help="list the shipped recipes and the dimensions they serve"
    )
    rc.add_argument("problem", nargs="?", help="only this problem's")
    rc.add_argument("--method", help="only this method's")
    rc.add_argument("--json", action="store_true")
    rc.set_defaults(func=_cmd_recipes)

    e = sub.add_parser(
        "eval", parents=[common], help="evaluate a solution on points from a .npy file"
    )
    e.add_argument("solution", help="solution .h5")
    e.add_argument(
        "points",
        help=".npy array or .txt/.csv table (n, dim); time-dependent problems: t in column 0",
    )
    e.add_argument("--out", help="output .npy (default: the values as text on standard output)")
    e.add_argument("--grad", action="store_true", help="write the spatial gradient instead")
    e.set_defaults(func=_cmd_eval)

    i = sub.add_parser(
        "info", parents=[common], help="show a solution's config, environment and metrics"
    )
    i.add_argument("solution")
    i.add_argument("--json", action="store_true")
    i.set_defaults(func=_cmd_info)

    pl_ = sub.add_parser(
        "plot", parents=[common], help="draw a solution, its error, residual, history or unknowns"
    )
    pl_.add_argument("solution", help="solution .h5")
    pl_.add_argument("--out", help="figure file (default: <solution>-<what>.png beside it)")
    pl_.add_argument(
        "--what",
        default="solution",
        choices=("solution", "error", "residual", "history", "unknowns"),
        help="what to draw (default: solution)",
    )
    pl_.add_argument(
        "--slice",
        metavar="A,B",
        help="the two input columns of a heat map (default: the first two; t is column 0)",
    )
    pl_.add_argument(
        "--at",
        metavar="t=VALUE",
        help="time(s) of a space-time problem, e.g. t=0.5 or t=0.25,0.5,0.75",
    )
    pl_.add_argument(
        "--points", type=int, metavar="N", help="grid points per axis (default 200; lines 1000)"
    )
    pl_.add_argument("--dpi", type=int, default=100, help="resolution of the file (default 100)")
    pl_.set_defaults(func=_cmd_plot)

    st = sub.add_parser(
        "study", parents=[common], help="run a study: a grid of runs over configs and seeds"
    )
    st.add_argument("config", help="study YAML, or the name of a shipped study (configs/studies)")
    st.add_argument("--out", required=True, help="the study's store directory")
    st.add_argument("--executor", default="local", help="local (process pool, default) or ray")
    st.add_argument("--address", help="Ray cluster address HOST:PORT (default: start Ray here)")
    st.add_argument("--workers", type=int, help="runs at once (default: the CPU count)")
    st.add_argument("--threads", type=int, help="torch threads per run (default: CPUs/workers)")
    st.add_argument(
        "--gpus",
        type=float,
        help="GPUs per run on Ray; a fraction shares one (default: 1 for device cuda, else 0)",
    )
    st.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a study key, e.g. base.train.steps=20 or seeds=[0]",
    )
    st.add_argument("--resume", action="store_true", help="continue the store in --out")
    st.add_argument("--quiet", action="store_true", help="no progress bar")
    st.set_defaults(func=_cmd_study)

    r = sub.add_parser(
        "report", parents=[common], help="write report.md and figures of a study store"
    )
    r.add_argument("store", help="the study's store directory")
    r.set_defaults(func=_cmd_report)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.func(args)
    except PinnlabError as e:
        if args.debug:
            raise
        print(f"error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into e.g. `head`, which closed early
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        if args.debug:
            raise
        print("error: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
