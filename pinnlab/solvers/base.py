"""What every solver is: a declared form, a settings model, and two hooks.

A solver draws a batch of points (``batch``) and turns the network and a batch into a dict of
named loss terms (``loss``); the one training loop in :mod:`pinnlab.training` does the rest.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

import torch
from torch import Tensor, nn

from ..config import Section
from ..domains import Domain
from ..errors import FormError
from ..problem import FORMS, Problem


class Solver(ABC):
    """Base class. Subclasses set ``name``, ``form`` and ``Settings``."""

    name: ClassVar[str]
    form: ClassVar[str]
    Settings: ClassVar[type[Section]]

    def __init__(self, problem: Problem, settings: Section, *, dtype: torch.dtype):
        self.problem = problem
        self.settings = settings
        self.dtype = dtype

    @abstractmethod
    def batch(self, generator: torch.Generator) -> dict[str, Tensor]:
        """Fresh training points, drawn on the generator's device."""

    @abstractmethod
    def loss(self, net: nn.Module, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """Named loss terms (scalars); the training loss is their weighted sum."""

    def samples(self, batch: dict[str, Tensor]) -> int:
        """How many training samples ``batch`` holds (here: the rows of all its point sets)."""
        return sum(len(points) for points in batch.values())

    def weights(self) -> dict[str, float]:
        """Weight of each loss term (1 unless set)."""
        return {}

    def diagnostics(self, net: nn.Module, batch: dict[str, Tensor]) -> dict[str, float]:
        """Numbers recorded in the history at each evaluation (e.g. an estimator's variance)."""
        return {}

    def wrap(self, net: nn.Module, hard_bc: bool, generator: torch.Generator) -> nn.Module:
        """The model trained and saved: ``net`` itself unless the solver transforms it or adds
        modules of its own (initialised from ``generator``)."""
        return net

    def finish(
        self, model: nn.Module, generator: torch.Generator, *, progress: bool = False
    ) -> dict[str, float]:
        """Work after the training loop on the trained ``model`` (e.g. a least-squares fit of
        its output layer); returns what the run records of it (nothing by default)."""
        return {}

    def metrics(self, model: nn.Module) -> dict[str, float]:
        """Metrics only this method can measure for a trained ``model`` (e.g. an energy by
        Monte Carlo); the problem's truth gives the others."""
        return {}

    @property
    def has_truth(self) -> bool:
        """True when :meth:`metrics` measures an error against a known truth."""
        return False

    @abstractmethod
    def input_domain(self) -> Domain:
        """The domain of the network's inputs (columns: t first for space-time solutions)."""

    @property
    def outputs(self) -> int:
        """Number of output channels of the network."""
        return 1

    @classmethod
    def slice_time(cls, settings: Section) -> float | None:
        """For solvers that learn x ↦ u(t*, x) at one time t*: that time; None for space-time."""
        return None


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
