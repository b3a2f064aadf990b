"""The deep Ritz method (E & Yu, "The deep Ritz method", Commun. Math. Stat. 6, 2018).

Minimises the energy of the problem's energy form by Monte Carlo quadrature on fresh samples,
divided by the domain's volume |Ω| (a positive factor that leaves the minimiser unchanged and
keeps the loss finite in any dimension):

    L = mean_i (½ a|∇u|² + ½ c u² − f u)(x_i) − (|∂Ω|/|Ω|) · mean_j (g u)(y_j)   [Neumann parts]
        + β · Σ_c mean_j |u(y_j) − h_c(y_j)|²                                    [Dirichlet parts]

The Dirichlet data enter by the penalty β (``penalty``, E & Yu use 500) or exactly with
``net.hard_bc``. The loss is an energy, not a residual: its minimum is negative and unknown,
and only its decrease means progress. Only first derivatives are needed (one reverse pass).
"""

from __future__ import annotations

from pydantic import Field
from torch import Tensor, nn

from ..derivatives import Derivatives
from ..problem import Neumann
from .collocation import CollocationSolver, PointSettings


class DeepRitzSettings(PointSettings):
    penalty: float = Field(
        500.0, ge=0, description="β, the weight of each Dirichlet misfit term (E & Yu: 500)"
    )


def _coefficient(value, x: Tensor) -> Tensor | float:
    return value(x) if callable(value) else value


class DeepRitz(CollocationSolver):
    name = "deep-ritz"
    form = "energy"
    Settings = DeepRitzSettings

    def __init__(self, problem, settings: DeepRitzSettings, *, dtype):
        super().__init__(problem, settings, dtype=dtype, spec=problem.energy_form())

    def weights(self) -> dict[str, float]:
        return {**{k: self.settings.penalty for k in self.dirichlet()}, **self.settings.weights}

    def energy(self, net: nn.Module, batch: dict[str, Tensor]) -> Tensor:
        """The Monte Carlo energy per unit volume."""
        spec, x = self.spec, batch[self.interior]
        d = Derivatives(net, x, method="reverse")
        grad, u = d.grad, d.u  # one reverse pass gives both
        a, c = _coefficient(spec.diffusion, x), _coefficient(spec.reaction, x)
        density = 0.5 * a * grad.square().sum(dim=-1) + 0.5 * c * u.square() - spec.source(x) * u
        energy = density.mean()
        for name, cond in spec.conditions.items():
            if isinstance(cond, Neumann):
                y = batch[name]
                flux = (cond.flux(y) * net(y).reshape(len(y))).mean()
                energy = energy - spec.domain.surface_to_volume * flux
        return energy

    def loss(self, net: nn.Module, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        terms = {"energy": self.energy(net, batch), **self.dirichlet_terms(net, batch)}
        self.check_weights(terms)
        return terms
