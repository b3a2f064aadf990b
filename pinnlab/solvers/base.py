"""What every solver is: a declared form, a settings model, ``network``, ``setup`` and two hooks.

A solver is immutable: it is built from (problem, settings) and never changes after. For one
run, ``setup(net, generator)`` returns a ``Model``: the module trained and saved (the
network, wrapped where the method transforms it), the derivative method resolved for it, and
whatever state the run carries between steps. Then the two hooks take the model explicitly:
``batch(model, generator)`` draws training points and ``loss(model, batch)`` turns them into a
dict of named loss terms; the one training loop in ``pinnlab.training`` does the rest.
``network()`` says what the network maps (a ``NetworkSpec``), for the network's builder.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import KW_ONLY, dataclass, field
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from ..config import Section
from ..domains import Domain
from ..errors import ConfigError, FormError
from ..problem import FORMS, Problem


@dataclass
class Model:
    """One run's model: what ``Solver.setup`` returns and the hooks take.

    ``module`` is what is trained and saved; ``method`` the derivative method resolved for it
    (None where the solver takes no second derivatives); ``imposed`` the names of the
    conditions the module satisfies by construction (a hard Dirichlet transform, an exact
    periodic embedding), which are not sampled; ``state`` what a run carries from step to
    step beside the weights (the Metropolis chains of vmc).
    """

    module: nn.Module
    method: Any = None
    imposed: frozenset[str] = frozenset()
    state: dict[str, Any] = field(default_factory=dict)

    def parameters(self):
        return self.module.parameters()


@dataclass(frozen=True)
class NetworkSpec:
    """The network a solver trains: inputs from ``domain`` (its columns: t first for a
    space-time solution) to ``outputs`` channels; ``at_time``, for a solver that learns
    x ↦ u(t*, x) at one time t* (Feynman–Kac, deep BSDE), that time (None: space-time or
    stationary); ``periodic``, the (column, low, high) of each
    Periodic condition the solver takes from the problem (an exact embedding may impose one:
    ``net.wrap.periodic``); ``source_gradients``, where the solver has a strong-form residual,
    the gradients of the equation's data in the inputs (``net.wrap.bottleneck.basis: source``).
    """

    domain: Domain
    _: KW_ONLY
    outputs: int = 1
    at_time: float | None = None
    periodic: tuple[tuple[int, float, float], ...] = ()
    source_gradients: Callable[[], Tensor] | None = None


class Solver(ABC):
    """Base class. Subclasses set ``name``, ``form`` and ``Settings``; a solver that can
    impose Dirichlet data exactly (``net.hard_bc``) sets ``hard_bc`` True."""

    name: ClassVar[str]
    form: ClassVar[str]
    Settings: ClassVar[type[Section]]
    #: Whether the solver imposes Dirichlet data exactly when asked (``net.hard_bc``).
    hard_bc: ClassVar[bool] = False

    def __init__(
        self, problem: Problem, settings: Section, *, dtype: torch.dtype, hard_bc: bool = False
    ):
        if hard_bc and not type(self).hard_bc:
            fit = sorted({s.name for s in defined_solvers() if s.hard_bc})
            raise ConfigError(
                f"net.hard_bc: method '{self.name}' imposes no Dirichlet data exactly; set "
                f"net.hard_bc=false (methods that do: {', '.join(fit)})."
            )
        self.problem = problem
        self.settings = settings
        self.dtype = dtype
        #: Whether the Dirichlet data are imposed exactly (a hard-constraint transform).
        self.hard = hard_bc

    def setup(self, net: nn.Module, generator: torch.Generator) -> Model:
        """The run's ``Model`` for the network ``net``: by default ``net`` itself, as
        ``bind`` makes it; solvers that transform the network or add modules of their
        own (initialised from ``generator``) override this."""
        return self.bind(net)

    def bind(self, module: nn.Module) -> Model:
        """The ``Model`` of a module that is already what is trained (as ``setup``
        built it, or loaded with trained weights): the derivative method resolved for it."""
        return Model(module)

    @abstractmethod
    def batch(self, model: Model, generator: torch.Generator) -> dict[str, Tensor]:
        """Fresh training points, drawn on the generator's device."""

    @abstractmethod
    def loss(self, model: Model, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """Named loss terms (scalars); the training loss is their weighted sum."""

    def samples(self, batch: dict[str, Tensor]) -> int:
        """How many training samples ``batch`` holds (here: the rows of all its point sets)."""
        return sum(len(points) for points in batch.values())

    def weights(self) -> dict[str, float]:
        """Weight of each loss term (1 unless set)."""
        return {}

    def diagnostics(self, model: Model, batch: dict[str, Tensor]) -> dict[str, float]:
        """Numbers recorded in the history at each evaluation (e.g. an estimator's variance)."""
        return {}

    def finish(
        self, model: Model, generator: torch.Generator, *, progress: bool = False
    ) -> dict[str, float]:
        """Work after the training loop on the trained ``model`` (e.g. a least-squares fit of
        its output layer); returns what the run records of it (nothing by default)."""
        return {}

    def metrics(self, module: nn.Module) -> dict[str, float]:
        """Metrics only this method can measure for a trained ``module`` (e.g. an energy by
        Monte Carlo); the problem's truth gives the others."""
        return {}

    @property
    def has_truth(self) -> bool:
        """True when ``metrics`` measures an error against a known truth."""
        return False

    @abstractmethod
    def network(self) -> NetworkSpec:
        """What the solver's network maps, and what its wrappers may use."""


def location_scale(values: Tensor) -> tuple[Tensor, Tensor]:
    """Mean and standard deviation of each column of ``values`` (n, k), in float32: the
    scale of a solution known before training (an output affine map starts from it). A spread
    below 1e-8 · (1 + |mean|) (constant data) is taken as 1."""
    mean, std = values.mean(dim=0), values.std(dim=0)
    std = torch.where(std > 1e-8 * (1 + mean.abs()), std, torch.ones_like(std))
    return mean.float(), std.float()


def defined_solvers() -> list[type[Solver]]:
    """Every solver class defined so far (pinnlab's and those a registry has loaded), for
    messages that name the methods that would fit."""
    out, todo = [], [Solver]
    while todo:
        cls = todo.pop()
        todo.extend(cls.__subclasses__())
        if getattr(cls, "name", "") and not getattr(cls, "__abstractmethods__", None):
            out.append(cls)
    return out


def check_form(problem: Problem, solver: type[Solver], solvers: dict[str, type[Solver]]) -> None:
    """Fail at once when ``problem`` lacks the form ``solver`` needs."""
    if solver.form in problem.forms():
        return
    fit = sorted(name for name, s in solvers.items() if s.form in problem.forms())
    raise FormError(
        f"method '{solver.name}' needs the {solver.form} form ({FORMS[solver.form]}()), "
        f"which {problem.id} does not offer; it offers {', '.join(problem.forms()) or 'none'}. "
        f"Methods that fit: {', '.join(fit) or 'none yet'}."
    )
