"""From a validated run config to the objects of a run: the problem, the solver, the model.

The one place that turns config sections into constructor arguments (``run`` and ``load``
both build through here); everything it builds takes explicit arguments.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch
from torch import nn

from . import registry
from .config import RunConfig, validate
from .errors import ConfigError
from .networks import Wrapper, build_network
from .observations import Observations
from .observations import read as read_observations
from .problem import Problem
from .solvers import Model, Solver, check_form

DTYPES = {"float32": torch.float32, "float64": torch.float64}


def build_problem(config: RunConfig, problems_dirs: Iterable = ()) -> Problem:
    """The problem a config names, from the catalogue (shipped, $PINNLAB_PROBLEMS, dirs)."""
    return registry.catalogue(problems_dirs).problem(config.problem.id, **config.problem.params())


def build_solver(
    problem: Problem,
    config: RunConfig,
    problems_dirs: Iterable = (),
    *,
    data: Sequence[Observations] | None = None,
) -> Solver:
    """The (immutable) solver a config describes for ``problem`` (from the solver registry:
    built-in, entry points, the catalogue folders); fails at once when the problem lacks the
    form it needs or a setting does not apply to it.

    ``data`` are observations fitted in place of those the problem declares (what
    ``observations`` reads from the config's ``data.file``, or a script's); a solver
    that fits data has ``takes_data``, and an inverse problem (unknowns or observations in
    its strong form) is refused by the others."""
    methods = registry.solvers(problems_dirs)
    cls = methods[config.method]
    check_form(problem, cls, methods)
    settings = validate(cls.Settings, config.solver, prefix="solver")
    kw = dict(dtype=DTYPES[config.dtype], hard_bc=config.net.hard_bc)
    inverse = _inverse(problem)
    if data is not None and not inverse:
        raise ConfigError(
            f"data were given, but {problem.id} declares no unknowns and no observations in "
            "its strong form: there is nothing for them to determine (docs/inverse.md)."
        )
    if inverse and not getattr(cls, "takes_data", False):
        fit = sorted(n for n, s in methods.items() if getattr(s, "takes_data", False))
        raise ConfigError(
            f"{problem.id} is an inverse problem ({inverse}); method '{cls.name}' learns no "
            f"unknowns and fits no data. Methods that do: {', '.join(fit)}."
        )
    if inverse:
        kw.update(data=data, holdout=config.data.holdout, resample=config.data.resample)
    elif config.data.holdout or config.data.resample:
        raise ConfigError(
            f"data.holdout and data.resample act on observations; {problem.id} has none."
        )
    return cls(problem, settings, **kw)


def _inverse(problem: Problem) -> str:
    """What makes ``problem`` an inverse problem ("unknowns kappa; 200 observations"), or ""."""
    if "strong" not in problem.forms():
        return ""
    form = problem.strong_form()
    parts = []
    if form.unknowns:
        parts.append("unknowns " + ", ".join(u.name for u in form.unknowns))
    if form.observations:
        parts.append(f"{sum(len(o) for o in form.observations)} observations")
    return "; ".join(parts)


def observations(
    problem: Problem, config: RunConfig, data: Observations | Sequence[Observations] | None = None
) -> tuple[Observations, ...] | None:
    """The observations a run fits in place of the problem's own: those of the config's
    ``data.file`` (read against the problem's input columns), then ``data`` (a script's);
    None when there are none."""
    given = [data] if isinstance(data, Observations) else list(data or ())
    for o in given:
        if not isinstance(o, Observations):
            raise ConfigError(f"data: each entry is a pl.Observations, got {type(o).__name__}.")
    if config.data.file is not None:
        given.insert(0, read_observations(config.data.file, problem.dim + problem.time_dependent))
    return tuple(given) or None


def build_model(
    problem: Problem,
    config: RunConfig,
    *,
    device: torch.device,
    solver: Solver | None = None,
    trained: bool = False,
    problems_dirs: Iterable = (),
) -> Model:
    """The solver's ``pinnlab.solvers.Model`` of the network a config describes for
    ``problem``, initialised from the config's seed, on ``device`` in the config's dtype.

    The body, its activation and the ``net.wrap`` stages come from the registries
    (``pinnlab.registry``). ``trained=True`` builds it to receive trained weights (a saved
    solution): nothing is fitted to data (a source basis), since the saved weights replace it.
    (The solver's ``setup`` still computes its output scaling and starting constant, which the
    saved buffers then replace too.)
    """
    dtype = DTYPES[config.dtype]
    solver = solver or build_solver(problem, config, problems_dirs)
    init = torch.Generator().manual_seed(config.seed)
    body = registry.networks(problems_dirs)[config.net.kind]
    if body.invariant:
        _check_exchangeable(problem, body.name, solver.network().domain.dim)
    module = _network(config, solver, config.net.width, init, trained, problems_dirs)
    model = solver.setup(module, init)
    model.module.to(device=device, dtype=dtype)
    return model


def _network(config, solver, width: int, generator, trained: bool, problems_dirs) -> nn.Module:
    """The network of ``config`` at ``width``, before the solver's ``setup``."""
    spec, net = solver.network(), config.net
    return build_network(
        spec.domain.dim,
        spec.outputs,
        kind=registry.networks(problems_dirs)[net.kind],
        width=width,
        depth=net.depth,
        activation=registry.activations(problems_dirs)[net.activation],
        init=net.init,
        generator=generator,
        input_box=spec.domain.bounds() if net.normalize_input else None,
        wrap=wrappers(config, problems_dirs),
        periodic=spec.periodic,
        source_gradients=spec.source_gradients,
        trained=trained,
    )


def width_for_parameters(config: RunConfig, solver: Solver, problems_dirs: Iterable = ()) -> int:
    """The width whose network (the config's body, depth, stages, the solver's inputs and
    outputs) has the trained-weight count closest to ``net.parameters`` (the count grows with
    the width: a bisection over built networks)."""
    target = config.net.parameters

    def count(width: int) -> int:
        # (built as if to receive trained weights: nothing is fitted while sizes are tried)
        module = _network(
            config, solver, width, torch.Generator().manual_seed(0), True, problems_dirs
        )
        return sum(p.numel() for p in module.parameters() if p.requires_grad)

    low, high = 1, 2
    while count(high) < target:
        low, high = high, 2 * high
        if high > 2**20:
            raise ConfigError(
                f"net.parameters {target}: no width up to 2^20 gives that many weights."
            )
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (mid, high) if count(mid) < target else (low, mid)
    return min((low, high), key=lambda w: abs(count(w) - target))


def wrappers(config: RunConfig, problems_dirs: Iterable = ()) -> list[Wrapper]:
    """The ``net.wrap`` stages of ``config``, validated by their registered classes (an entry
    set to null is left out)."""
    registered = registry.wrappers(problems_dirs)
    return [
        validate(registered[name], params, prefix=f"net.wrap.{name}")
        for name, params in config.net.wrap.items()
        if params is not None
    ]


def _check_exchangeable(problem: Problem, kind: str, inputs: int) -> None:
    """A body invariant under permutations of its inputs (``net.kind: deepsets``): refuse it
    where the solution is not, or where the input carries time beside space."""
    if not problem.exchangeable:
        raise ConfigError(
            f"net.kind={kind} gives the same value at every permutation of the coordinates, "
            f"and {problem.id} with these parameters is not symmetric under them (for the "
            "Black–Scholes problems: scalar sigma and rho); use net.kind=mlp."
        )
    if inputs != problem.dim:
        raise ConfigError(
            f"net.kind={kind} permutes all {inputs} inputs, but {problem.id}'s method takes "
            f"time beside its {problem.dim} space coordinates; use net.kind=mlp."
        )
