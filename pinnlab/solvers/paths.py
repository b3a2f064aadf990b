"""What the Feynman–Kac and deep BSDE solvers share: simulated paths of the stochastic form.

Both learn x ↦ u(t*, x) at one time t* (``time``, default 0) from paths of dX = μ dt + σ dW
started at t*: by the form's exact transition where the law is known (``sampler: exact``),
else by Euler–Maruyama. Noise is drawn on the generator's device, fresh at every step.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from pydantic import Field
from torch import Tensor

from .. import montecarlo
from ..config import Section
from ..errors import ConfigError
from .base import NetworkSpec, Solver, location_scale


class PathSettings(Section):
    time: float = Field(0.0, ge=0, description="t*: the solution learnt is x ↦ u(t*, x)")
    sampler: Literal["exact", "euler"] = Field(
        "exact", description="the form's exact transition, or Euler–Maruyama steps"
    )
    sampling: Literal["uniform", "sobol"] = "uniform"


class PathSolver(Solver):
    """Base of solvers trained on paths of the stochastic form from t* to T."""

    form = "stochastic"

    def __init__(self, problem, settings: PathSettings, *, dtype, hard_bc=False):
        super().__init__(problem, settings, dtype=dtype, hard_bc=hard_bc)
        self.sde = problem.stochastic_form()
        if not settings.time < self.sde.horizon:
            raise ConfigError(
                f"solver.time must lie in [0, T) with T = {self.sde.horizon}, got {settings.time}."
            )
        if settings.sampler == "exact" and self.sde.transition is None:
            raise ConfigError(
                f"solver.sampler: {problem.id} has no exact sampler (its law is not known in "
                "closed form); set solver.sampler=euler."
            )
        self.exact = settings.sampler == "exact"

    def network(self) -> NetworkSpec:
        """x ↦ u(t*, x) on the SDE's region, t* = ``solver.time``."""
        return NetworkSpec(self.sde.region, at_time=self.settings.time)

    @property
    def euler_steps(self) -> int:
        """Euler–Maruyama steps from t* to T (sampler: euler)."""
        raise NotImplementedError

    @property
    def tau(self) -> float:
        """T − t*."""
        return self.sde.horizon - self.settings.time

    def starts(self, n: int, generator: torch.Generator) -> Tensor:
        """n starting points in the domain of interest."""
        return self.sde.region.sample_interior(
            n, generator=generator, dtype=self.dtype, sampling=self.settings.sampling
        )

    def pilot(self, n: int = 4096, start: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Mean and standard deviation of the discounted terminal values from ``start`` (else
        from uniform starts in the region); fixed seed, CPU, float64: the scale of the
        solution, known before training."""
        generator = torch.Generator().manual_seed(0)
        if start is None:
            x = self.sde.region.sample_interior(n, generator=generator, dtype=torch.float64)
        else:
            x = start.to(torch.float64).expand(n, -1)
        xt = montecarlo.terminal(
            self.sde, self.settings.time, x, generator, exact=self.exact, steps=self.euler_steps
        )
        y = montecarlo.discounted_payoff(self.sde, self.settings.time, xt)
        mean, std = location_scale(y.reshape(-1, 1))
        return mean.reshape(()), std.reshape(())

    def discount(self) -> float:
        return math.exp(-self.sde.discount * self.tau)
