"""From a validated run config to the objects of a run: the problem, the solver, the model.

The one place that turns config sections into constructor arguments (``run`` and ``load``
both build through here); everything it builds takes explicit arguments.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable

import torch
from torch import nn

from .config import RunConfig, validate
from .errors import ConfigError
from .networks import Projection, build_network
from .problem import Problem
from .registry import catalogue, solvers
from .solvers import Model, Solver, check_form

DTYPES = {"float32": torch.float32, "float64": torch.float64}


def build_problem(config: RunConfig, problems_dirs: Iterable = ()) -> Problem:
    """The problem a config names, from the catalogue (shipped, $PINNLAB_PROBLEMS, dirs)."""
    return catalogue(problems_dirs).problem(config.problem.id, **config.problem.params())


def build_solver(problem: Problem, config: RunConfig, problems_dirs: Iterable = ()) -> Solver:
    """The (immutable) solver a config describes for ``problem`` (from the solver registry:
    built-in, entry points, the catalogue folders); fails at once when the problem lacks the
    form it needs or a setting does not apply to it."""
    registry = solvers(problems_dirs)
    cls = registry[config.method]
    check_form(problem, cls, registry)
    settings = validate(cls.Settings, config.solver, prefix="solver")
    return cls(problem, settings, dtype=DTYPES[config.dtype], hard_bc=config.net.hard_bc)


def build_model(
    problem: Problem,
    config: RunConfig,
    *,
    device: torch.device,
    solver: Solver | None = None,
    trained: bool = False,
    problems_dirs: Iterable = (),
) -> Model:
    """The solver's :class:`~pinnlab.solvers.Model` of the network a config describes for
    ``problem``, initialised from the config's seed, on ``device`` in the config's dtype.

    ``trained=True`` builds it to receive trained weights (a saved solution): the bottleneck
    is not fixed by the source, since the saved weights replace it. (The solver's ``setup``
    still computes its output scaling and starting constant, which the saved buffers then
    replace too.)
    """
    dtype = DTYPES[config.dtype]
    solver = solver or build_solver(problem, config, problems_dirs)
    init = torch.Generator().manual_seed(config.seed)
    domain = solver.input_domain()
    periodic = None
    if config.net.periodic:
        periodic = (*solver.periodic_column(), config.net.periodic)
    if config.net.kind == "deepsets":
        _check_exchangeable(problem, domain.dim)
    net = build_network(
        domain.dim,
        solver.outputs,
        generator=init,
        input_box=domain.bounds() if config.net.normalize_input else None,
        periodic=periodic,
        **config.net.model_dump(
            exclude={"hard_bc", "normalize_input", "periodic", "bottleneck_basis"}
        ),
    )
    if config.net.bottleneck_basis == "source" and not trained:
        _fix_bottleneck(net, solver, config)
    model = solver.setup(net, init)
    model.module.to(device=device, dtype=dtype)
    return model


def _check_exchangeable(problem: Problem, inputs: int) -> None:
    """``net.kind: deepsets`` is invariant under permutations of its inputs: refuse it where
    the solution is not, or where the input carries time beside space."""
    if not problem.exchangeable:
        raise ConfigError(
            f"net.kind=deepsets gives the same value at every permutation of the coordinates, "
            f"and {problem.id} with these parameters is not symmetric under them (for the "
            "Black–Scholes problems: scalar sigma and rho); use net.kind=mlp."
        )
    if inputs != problem.dim:
        raise ConfigError(
            f"net.kind=deepsets permutes all {inputs} inputs, but {problem.id}'s method takes "
            f"time beside its {problem.dim} space coordinates; use net.kind=mlp."
        )


def _fix_bottleneck(net: nn.Module, solver, config: RunConfig) -> None:
    """``net.bottleneck_basis: source``: P fixed to the principal directions of the source's
    gradients (:meth:`pinnlab.networks.Projection.fix_to`, from the PINN's residual of u ≡ 0)."""
    where = "net.bottleneck_basis=source"
    if not config.net.bottleneck:
        raise ConfigError(f"{where} fixes the rows of a bottleneck: set net.bottleneck=r ≥ 1.")
    if config.net.periodic:
        raise ConfigError(
            f"{where}: with net.periodic the bottleneck sees the periodic embedding, not the "
            "coordinates the source's gradients are taken in; set one of them off."
        )
    proj = next(m for m in net.modules() if isinstance(m, Projection))
    try:
        energy = proj.fix_to(solver.source_gradients())
    except ValueError as e:
        raise ConfigError(
            f"{where}: {e} ({solver.problem.id}'s residual of u ≡ 0 does not vary in the interior); "
            "use net.bottleneck_basis=learned."
        ) from None
    if energy < 0.99:
        warnings.warn(
            f"{where}: the {config.net.bottleneck} fixed directions carry only {energy:.1%} of "
            "the source's gradient energy, so the solution is unlikely to be a function of "
            "them alone; raise net.bottleneck or use net.bottleneck_basis=learned.",
            RuntimeWarning,
            stacklevel=2,
        )
