"""From a config to a trained ``Solution``: the only place that reads a run config.

config -> (problem, network, solver) -> Trainer -> Solution -> HDF5.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
import sys
import time
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import registry
from .build import (
    build_model,
    build_problem,
    build_solver,
    observations,
    width_for_parameters,
    wrappers,
)
from .config import (
    ProblemSection,
    RunConfig,
    layer_phases,
    merge,
    overlay,
    read_yaml,
    validate,
)
from .errors import (
    AccuracyWarning,
    ConfigError,
    PinnlabError,
    TrainingError,
    did_you_mean,
    unknown_name,
)
from .memory import PeakMemory, reuse_freed_memory
from .metrics import METRICS, default_metric
from .networks import INITS
from .observations import Observations
from .problem import Problem
from .solution import Solution
from .solvers import check_form
from .training import Trainer


def resolve_device(name: str) -> torch.device:
    """'auto' -> cuda when available, else cpu; a cuda request without CUDA is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(
            f"device '{name}' was asked for, but CUDA is not available here; use --device cpu."
        )
    return torch.device(name)


def recipe(problem_id: str, method: str, dim: int | str | None = None) -> Path | None:
    """The shipped recipe (``configs/runs/*.yaml``) for the problem, method and dimension, if
    there is one: the one whose declared range holds ``dim``, else the nearest in log d;
    without ``dim`` the problem's default one (``pinnlab.recipes.select``)."""
    from .recipes import select

    chosen = select(problem_id, method, dim)
    return chosen.path if chosen is not None else None


def make_config(
    problem_id: str | None = None,
    *,
    method: str | None = None,
    config: str | os.PathLike | Mapping[str, Any] | RunConfig | None = None,
    params: Mapping[str, Any] | None = None,
    sets: Iterable[str] = (),
    overrides: Mapping[str, Any] | None = None,
    problems_dirs: Iterable = (),
) -> RunConfig:
    """Assemble and validate a run config.

    Layers, later ones winning: the shipped recipe for (problem, method, the ``dim`` that
    ``params``, ``overrides`` or ``sets`` ask for; ``pinnlab.recipes.select``) when no
    ``config`` is given; ``config`` (a YAML path, a mapping or a RunConfig); problem
    ``params``; nested ``overrides``; ``--set`` assignments.
    """
    if isinstance(config, RunConfig):
        data = config.model_dump()
    elif isinstance(config, Mapping):
        data = dict(config)
    elif config is not None:
        data = read_yaml(config)
    else:
        data = {}
    problem_id = problem_id or data.get("problem", {}).get("id")
    if problem_id is None:
        raise ConfigError("no problem given: name one (e.g. poisson-sine) or set problem.id.")
    method = method or data.get("method", "pinn")
    layers = overlay(params, overrides, sets)
    if config is None:  # the shipped recipe for the dimension the layers ask for
        asked = layers["problem"].get("dim") if isinstance(layers["problem"], Mapping) else None
        if (path := recipe(problem_id, method, asked)) is not None:
            data = read_yaml(path)
    data = merge(data, {"problem": {"id": problem_id}, "method": method})
    merged = merge(layer_phases(data, layers), layers)
    cfg = validate(RunConfig, merged)
    solver_cls = registry.solvers(problems_dirs)[cfg.method]
    # The form first: settings of a method that cannot solve the problem are beside the point.
    check_form(
        registry.catalogue(problems_dirs)[cfg.problem.id],
        solver_cls,
        registry.solvers(problems_dirs),
    )
    settings = validate(solver_cls.Settings, cfg.solver, prefix="solver")
    registry.networks(problems_dirs)[cfg.net.kind]  # each name is known, or a clear error
    registry.activations(problems_dirs)[cfg.net.activation]
    if cfg.net.init not in INITS:
        raise unknown_name("initialisation (net.init)", cfg.net.init, INITS)
    wrap = {w.name: w.model_dump() for w in wrappers(cfg, problems_dirs)}
    problem = build_problem(cfg, problems_dirs)
    extra = (
        *problem.extra_metric_names,
        *registry.metrics(problems_dirs),
        *unknown_metrics(problem),
    )
    if cfg.metric not in METRICS and cfg.metric not in extra:
        raise unknown_name("metric", cfg.metric, (*METRICS, *extra))
    # Checks the form, the settings and the data file against the problem.
    solver = build_solver(problem, cfg, problems_dirs, data=observations(problem, cfg))
    net = cfg.net
    if net.parameters is not None:
        width = width_for_parameters(cfg, solver, problems_dirs)
        given = (merged.get("net") or {}).get("width")
        if given is not None and given != width:
            raise ConfigError(
                f"net.width {given} and net.parameters {net.parameters} (width {width} here) "
                "disagree: give one of them."
            )
        net = net.model_copy(update={"width": width})
    # Record every value, defaults included, so the config alone rebuilds the run later.
    return cfg.model_copy(
        update={
            "problem": ProblemSection(id=problem.id, **problem.params()),
            "solver": settings.model_dump(),
            "net": net.model_copy(update={"wrap": wrap}),
        }
    )


def unknown_metrics(problem: Problem) -> tuple[str, ...]:
    """The ``<name>_error`` metrics of the unknowns whose truth ``problem``'s strong form states."""
    if "strong" not in problem.forms():
        return ()
    return tuple(f"{u.name}_error" for u in problem.strong_form().unknowns if u.exact is not None)


def fingerprint(
    config: RunConfig, problems_dirs: Iterable = (), data: Iterable[Observations] | None = None
) -> str:
    """A hash of everything that determines a run's result: the config and the observations
    a script passed (``data``; a data file enters through its path in the config).

    Only values that differ from their defaults enter it (the problem's parameters always do),
    so a setting added in a later version, whose default keeps the old behaviour, leaves the
    ids of existing runs unchanged: a study resumed after an upgrade keeps its finished runs.
    """
    given = data
    data = config.model_dump(
        exclude_defaults=True, exclude={"train": {"time_budget", "checkpoint_every"}}
    )
    defaults = registry.solvers(problems_dirs)[config.method].Settings().model_dump()
    data["solver"] = {
        k: v for k, v in config.solver.items() if k not in defaults or v != defaults[k]
    }
    data.update(problem=config.problem.model_dump(), method=config.method)
    digest = hashlib.sha256(json.dumps(data, sort_keys=True).encode())
    for o in given or ():
        digest.update(o.points.numpy().tobytes() + o.values.numpy().tobytes())
    return digest.hexdigest()[:16]


def environment(device: torch.device, seed: int) -> dict[str, Any]:
    """Versions, git revision, device and seed, recorded with every solution."""
    from .version import __version__

    env = {
        "pinnlab": __version__,
        "torch": torch.__version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else _cpu_name(),
        "seed": seed,
    }
    env["git"], env["git_dirty"] = _git_revision()
    return env


def _cpu_name() -> str:
    """The CPU's model name (from /proc/cpuinfo on Linux), else what platform reports."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _git_revision() -> tuple[str | None, bool | None]:
    """The checkout's commit and whether it has uncommitted changes; (None, None) if no git."""
    here = Path(__file__).resolve().parent

    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(
                ["git", *args], cwd=here, capture_output=True, text=True, timeout=5
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    revision = git("rev-parse", "HEAD")
    if not revision:
        return None, None
    # --no-optional-locks: status must not refresh the index under .git/index.lock, which a
    # status killed by the timeout would leave behind (and block the user's next commit)
    status = git("--no-optional-locks", "status", "--porcelain", "--untracked-files=no")
    return revision, bool(status)


def build_run(
    config: RunConfig,
    device: torch.device,
    problems_dirs: Iterable = (),
    data: Observations | Iterable[Observations] | None = None,
):
    """(problem, observations, solver, model, solution) of a run, the model untrained."""
    problem = build_problem(config, problems_dirs)
    given = observations(problem, config, data)
    solver = build_solver(problem, config, problems_dirs, data=given)
    model = build_model(problem, config, device=device, solver=solver, problems_dirs=problems_dirs)
    solution = Solution(
        problem,
        model.module,
        config,
        solver=solver,
        environment=environment(device, config.seed),
        added_metrics=tuple(registry.metrics(problems_dirs).values()),
    )
    return problem, given, solver, model, solution


def run(
    config: RunConfig,
    *,
    out: str | os.PathLike | None = None,
    resume: bool = False,
    progress: bool = False,
    problems_dirs: Iterable = (),
    data: Observations | Iterable[Observations] | None = None,
) -> Solution:
    """Train the run ``config`` describes and return its Solution (saved to ``out`` if given).

    With ``out``, checkpoints go to ``<out>.ckpt`` every ``train.checkpoint_every`` steps and
    on Ctrl-C; ``resume=True`` continues from there. ``data``: observations fitted in place of
    those the problem declares (after those of the config's ``data.file``; docs/inverse.md).
    """
    reuse_freed_memory()
    device = resolve_device(config.device)
    peak = PeakMemory(device)
    problem, given, solver, model, solution = build_run(config, device, problems_dirs, data)
    generator = torch.Generator(device=device).manual_seed(config.seed)
    has_truth = solution.measures_error()
    if not has_truth and config.train.target_error is not None:
        raise ConfigError(
            f"train.target_error needs a known truth where the solution is defined; "
            f"{problem.id} has none for method {config.method}."
        )

    last: dict[str, float] = {}  # the metrics of the latest evaluation

    def evaluate() -> float:
        metrics = solution.evaluate()
        last.clear()
        last.update(metrics)
        auto = config.metric == "auto"
        name = default_metric(metrics, problem.extra_metric_names) if auto else config.metric
        if name not in metrics:
            raise unknown_name("metric", name, metrics)
        return metrics[name]

    checkpoint = Path(f"{out}.ckpt") if out is not None else None
    if resume and (checkpoint is None or not checkpoint.exists()):
        raise PinnlabError(f"--resume: no checkpoint at {checkpoint}; start without --resume.")
    trainer = Trainer(
        solver,
        model,
        config.train,
        generator=generator,
        evaluate=evaluate if has_truth else None,
        checkpoint=checkpoint,
        fingerprint=fingerprint(config, problems_dirs, None if data is None else given),
        progress=progress,
        log_dir=Path(f"{out}.tb") if out is not None else None,
    )
    history = trainer.run(resume=resume)
    if trainer.nan_restarts and not history.get("loss"):
        raise TrainingError(
            f"no step produced a finite loss ({trainer.nan_restarts} restarts); "
            "lower train.lr or check the problem's data for non-finite values."
        )
    began = time.perf_counter()
    finished = solver.finish(model, generator, progress=progress)  # e.g. a refit
    finish_time = time.perf_counter() - began
    if finished:
        solution.environment.update(finished, finish_time=finish_time)
    solution.history = {k: np.asarray(v) for k, v in history.items()}
    solution.environment.update(
        steps=trainer.step,
        samples=trainer.samples,
        wall_time=trainer.elapsed + finish_time,
        stop_reason=trainer.stop_reason,
        nan_restarts=trainer.nan_restarts,
        parameters=sum(p.numel() for p in model.parameters()),
        peak_memory=peak.bytes(),
    )
    if out is not None:
        solution.save(out)
        if checkpoint is not None:
            checkpoint.unlink(missing_ok=True)
    # The final metrics where they are known without another evaluation (a saved solution
    # has them; else the last evaluation's, unless the finish hook changed the model since).
    final = solution._metrics or ({} if finished else last)
    warn_if_no_better_than_constant(problem, final)
    return solution


def warn_if_no_better_than_constant(problem: Problem, metrics: Mapping[str, float]) -> None:
    """An ``pinnlab.errors.AccuracyWarning`` when rel_l2 is no better than that of the
    best constant (``const_rel_l2``): the run has learnt nothing a constant would not give."""
    error, constant = metrics.get("rel_l2"), metrics.get("const_rel_l2")
    if error is None or constant is None or not error >= constant:
        return
    warnings.warn(
        f"{problem}: rel_l2 {error:.3g} is no better than the best constant's ({constant:.3g}); "
        "the run has not learnt the solution. Train longer, lower train.lr, or use the shipped "
        "recipe for this dimension (pinnlab recipes).",
        AccuracyWarning,
        stacklevel=3,
    )


def solve(
    problem: str | Problem,
    method: str = "pinn",
    config: str | os.PathLike | Mapping[str, Any] | RunConfig | None = None,
    *,
    out: str | os.PathLike | None = None,
    resume: bool = False,
    progress: bool = False,
    problems_dirs: Iterable = (),
    data: Observations | Iterable[Observations] | None = None,
    **overrides: Any,
) -> Solution:
    """Solve a problem: ``pinnlab.solve("poisson-sine", dim=20, train={"steps": 500})``.

    ``problem`` is a catalogue id, a Problem (a catalogue one, or one whose class a script
    defines: it joins the catalogue of this call), or a whole RunConfig (then nothing else
    but ``out``, ``resume``, ``progress`` and ``problems_dirs``). Keyword arguments that are
    parameters of the problem set them; the others are config sections (``net``, ``train``,
    ``solver``, ``seed``, ``device``, ``dtype``, ``metric``), merged over the shipped recipe
    (or over ``config``). ``data``: observations of an inverse problem, fitted in place of
    those it declares (docs/inverse.md).
    """
    if isinstance(problem, RunConfig):
        if config is not None or overrides or method != "pinn":
            raise ConfigError(
                "solve(RunConfig) takes the config as it is: pass no config, method or "
                "overrides beside it (or pass the config as config=...)."
            )
        return run(
            problem,
            out=out,
            resume=resume,
            progress=progress,
            problems_dirs=problems_dirs,
            data=data,
        )
    params = {}
    dirs = tuple(problems_dirs)
    if isinstance(problem, Problem):
        if registry.catalogue(dirs).get(problem.id) is not type(problem):  # a script's class
            dirs = (*dirs, type(problem))
        params, problem = problem.params(), problem.id
    elif not isinstance(problem, str):
        raise ConfigError(
            f"solve() needs a problem id, a Problem or a RunConfig, got {type(problem).__name__}."
        )
    names = registry.catalogue(dirs)[problem].parameters()
    params.update({k: v for k, v in overrides.items() if k in names})
    rest = {k: v for k, v in overrides.items() if k not in names}
    sections = set(RunConfig.model_fields) - {"problem", "method"}
    unknown = set(rest) - sections
    if unknown:
        name = sorted(unknown)[0]
        raise ConfigError(
            f"solve() got '{name}', which is neither a parameter of {problem} "
            f"nor a config section.{did_you_mean(name, [*names, *sections])} "
            f"Parameters: {', '.join(names)}; sections: {', '.join(sorted(sections))}."
        )
    cfg = make_config(
        problem, method=method, config=config, params=params, overrides=rest, problems_dirs=dirs
    )
    return run(cfg, out=out, resume=resume, progress=progress, problems_dirs=dirs, data=data)
