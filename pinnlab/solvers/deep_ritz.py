"""The deep Ritz method (E & Yu, "The deep Ritz method", Commun. Math. Stat. 6, 2018).

Minimises the energy of the problem's energy form by Monte Carlo quadrature on fresh samples,
divided by the domain's volume |Ω| (a positive factor that leaves the minimiser unchanged and
keeps the loss finite in any dimension):

    L = mean_i (½ a|∇u|² + ½ c u² − f u)(x_i) − (|Γ|/|Ω|) · mean_j (g u)(y_j)     [Neumann parts]
        + (|Γ|/|Ω|) · mean_j ((a/β)(½ α u² − h u))(y_j)                          [Robin parts]
        + β_D · Σ_c mean_j |u(y_j) − h_c(y_j)|²                                  [Dirichlet parts]

A Robin condition α u + β ∂u/∂n = h makes the flux a ∂u/∂n = (a/β)(h − α u), so its part adds
∫_Γ (a/β)(½ α u² − h u) ds to the energy, whose first variation gives back the condition
(a natural condition, like Neumann's); the energy is bounded below when a α/β ≥ 0, which is
checked on the part before training.

The Dirichlet data enter by the penalty β_D (``penalty``, E & Yu use 500) or exactly with
``net.hard_bc``. For an eigenvalue form (a ground state in a bounded domain) the loss is the
Rayleigh quotient mean(a|∇u|² + c u²) / mean(u²) of the same samples, which needs the zero
data imposed exactly (E & Yu 2018, §3.3). The loss is an energy, not a residual: its minimum is negative and unknown,
and only its decrease means progress. Only first derivatives are needed (one reverse pass).
"""

from __future__ import annotations

import math

import torch
from pydantic import Field
from torch import Tensor, nn

from .. import parts
from ..derivatives import Derivatives
from ..errors import ConfigError
from ..metrics import energy_metrics
from ..problem import Dirichlet, Neumann, Periodic, Robin
from ..residuals import Residuals
from .base import Model
from .collocation import CollocationSolver, PointSettings

#: Points and seed of the fixed sample on which an eigenvalue form's quotient is measured.
EIGEN_POINTS = 65536
EIGEN_SEED = 20261128


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

    #: Dirichlet data by the penalty (or exactly), Neumann and Robin data in the energy; a
    #: Periodic condition only exactly, by the embedding (``net.wrap.periodic``).
    imposes = (Dirichlet, Neumann, Robin, Periodic)

    def __init__(self, problem, settings: DeepRitzSettings, *, dtype, hard_bc=False):
        super().__init__(
            problem, settings, dtype=dtype, spec=problem.energy_form(), hard_bc=hard_bc
        )
        if self.spec.eigenvalue and not hard_bc:
            raise ConfigError(
                f"{problem.id}: the Rayleigh quotient of an eigenvalue form is scale-free, "
                "and a boundary penalty would shrink u to zero; set net.hard_bc=true."
            )
        for name, cond in self.spec.conditions.items():
            if isinstance(cond, Robin):
                self._check_robin(name, cond)

    #: Points on a Robin part at which a α/β ≥ 0 is checked.
    ROBIN_CHECK_POINTS = 1024

    def _check_robin(self, name: str, cond: Robin) -> None:
        """Refuse a Robin condition whose energy is unbounded below (a α/β < 0 somewhere on
        its part, checked at ``ROBIN_CHECK_POINTS`` points) or that is Dirichlet (β = 0)."""
        g = torch.Generator().manual_seed(0)
        y, _ = self.condition_sample(
            cond, self.ROBIN_CHECK_POINTS, generator=g, dtype=torch.float64, sampling="uniform"
        )
        a = torch.as_tensor(_coefficient(self.spec.diffusion, y), dtype=y.dtype)
        alpha = torch.as_tensor(_coefficient(cond.alpha, y), dtype=y.dtype)
        beta = torch.as_tensor(_coefficient(cond.beta, y), dtype=y.dtype)
        if bool((beta == 0).any()):
            raise ConfigError(
                f"{self.problem.id}: Robin condition '{name}' has β = 0 on its part, where it "
                "is a Dirichlet condition: write it as pl.Dirichlet."
            )
        if bool((a * alpha / beta < 0).any()):
            raise ConfigError(
                f"{self.problem.id}: Robin condition '{name}' has a α/β < 0 on its part, where "
                "the energy ∫ (a/β)(½ α u² − h u) ds is unbounded below: deep-ritz cannot "
                "impose it (the pinn method can)."
            )

    def _robin(self, cond: Robin, y: Tensor) -> tuple[Tensor, Tensor]:
        """(a α/β, a h/β) at the points y of a Robin part."""
        a = _coefficient(self.spec.diffusion, y)
        beta = _coefficient(cond.beta, y)
        return a * _coefficient(cond.alpha, y) / beta, a * cond.value(y) / beta

    def weights(self) -> dict[str, float]:
        return {**{k: self.settings.penalty for k in self.dirichlet()}, **self.settings.weights}

    def energy(self, net: nn.Module, batch: dict[str, Tensor]) -> Tensor:
        """The Monte Carlo energy per unit volume."""
        spec, x = self.spec, batch[self.interior]
        d = Derivatives(net, x, method="reverse")
        grad, u = d.grad, d.u  # one reverse pass gives both
        a, c = _coefficient(spec.diffusion, x), _coefficient(spec.reaction, x)
        density = 0.5 * a * grad.square().sum(dim=-1) + 0.5 * c * u.square()
        if spec.eigenvalue:
            return density.mean() / (0.5 * u.square().mean())
        energy = (density - spec.source(x) * u).mean()
        for name, cond in spec.conditions.items():
            if isinstance(cond, Neumann):
                y = batch[name]
                flux = (cond.flux(y) * net(y).reshape(len(y))).mean()
                energy = energy - self._part_scale(cond) * flux
            elif isinstance(cond, Robin):
                y = batch[name]
                u = net(y).reshape(len(y))
                k, kh = self._robin(cond, y)
                energy = energy + self._part_scale(cond) * (0.5 * k * u.square() - kh * u).mean()
        return energy

    def _part_scale(self, cond: Neumann | Robin) -> float:
        """|part| / |Ω|: the mean over the part's points times it is ∫_part g u ds / |Ω|."""
        domain = self.spec.domain
        if cond.on == "boundary":
            return domain.surface_to_volume
        return parts.measure(domain, cond.on) / domain.volume

    def bind(self, module: nn.Module) -> Model:
        model = super().bind(module)
        for name, c in self.spec.conditions.items():
            if isinstance(c, Periodic) and name not in model.imposed:
                self.refuse(
                    name, c, " (a Periodic condition exactly only: set net.wrap.periodic.modes=K)"
                )
        return model

    @property
    def has_truth(self) -> bool:
        return self.spec.exact_eigenvalue is not None

    def metrics(self, module: nn.Module) -> dict[str, float]:
        """For an eigenvalue form: the Rayleigh quotient on ``EIGEN_POINTS`` fixed uniform
        points (``energy``), its standard error by the delta method for a ratio of means, and
        the error against the exact eigenvalue where known."""
        spec = self.spec
        if not spec.eigenvalue:
            return {}
        param = next(module.parameters())
        g = torch.Generator(device=param.device).manual_seed(EIGEN_SEED)
        x = spec.domain.sample_interior(EIGEN_POINTS, generator=g, dtype=param.dtype)
        num, den = [], []
        for chunk in x.split(4096):
            d = Derivatives(module, chunk, method="reverse")
            a, c = _coefficient(spec.diffusion, chunk), _coefficient(spec.reaction, chunk)
            u = d.u.detach()
            num.append((a * d.grad.detach().square().sum(dim=-1) + c * u.square()).double())
            den.append(u.square().double())
        num, den = torch.cat(num), torch.cat(den)
        energy = float(num.mean() / den.mean())
        stderr = float((num - energy * den).std() / den.mean() / math.sqrt(len(x)))
        return energy_metrics(energy, stderr, spec.exact_eigenvalue)

    #: Energy natural gradient steps apply (``train.optimizer: engd``; ``energy_gram``).
    gauss_newton = True

    def check_gauss_newton(self) -> None:
        """ENGD needs a quadratic energy; a Rayleigh quotient is not one."""
        if self.spec.eigenvalue:
            raise ConfigError(
                f"train.optimizer engd: {self.problem.id} is an eigenvalue problem, whose "
                "loss (a Rayleigh quotient) is not a quadratic energy; train it with adam."
            )

    def energy_gram(
        self, model: Model, batch: dict[str, Tensor]
    ) -> dict[str, tuple[Residuals, float]]:
        """The Hessian of the loss in function space, as rows per point (``pinnlab.
        gauss_newton``): the energy's quadratic part ½ mean(a|∇v|² + c v²) and each
        penalty β mean v² have the bilinear forms mean(a|∇v|² + c v²) and 2β mean v², the
        Gram matrix of energy natural gradient descent (Müller & Zeinhofer, ICML 2023). A
        Robin part's ½ (|Γ|/|Ω|) mean(a α/β v²) adds (|Γ|/|Ω|) mean(a α/β v²), keyed
        ``energy.<name>`` (it belongs to the energy term). Keyed by the loss term each
        belongs to, with the factor on that term's weight. The Neumann flux and the source
        are linear in u and add no curvature."""
        spec, net, x = self.spec, model.module, batch[self.interior]

        def rows(x):
            d = Derivatives(net, x, method="forward")
            a, c = _coefficient(spec.diffusion, x), _coefficient(spec.reaction, x)
            root_a = torch.as_tensor(a, dtype=x.dtype).sqrt().reshape(-1, 1)
            columns = [root_a * d.grad.reshape(len(x), -1)]
            if not (isinstance(c, float | int) and c == 0):
                root_c = torch.as_tensor(c, dtype=x.dtype).sqrt().reshape(-1)
                columns.append((root_c * d.u.reshape(len(x))).reshape(-1, 1))
            return torch.cat(columns, dim=1)

        width = spec.domain.dim + int(
            not (isinstance(spec.reaction, float | int) and spec.reaction == 0)
        )
        out = {"energy": (Residuals((x,), rows), float(width))}
        for name, cond in spec.conditions.items():
            if isinstance(cond, Robin) and name in batch:

                def robin(y, cond=cond):
                    k, _ = self._robin(cond, y)
                    root = torch.as_tensor(k, dtype=y.dtype).sqrt()
                    return root * net(y).reshape(len(y))

                out[f"energy.{name}"] = (Residuals((batch[name],), robin), self._part_scale(cond))
        for name, term in self.dirichlet_residuals(net, batch).items():
            out[name] = (term, 2.0)
        return out

    def loss(self, model: Model, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        net = model.module
        terms = {"energy": self.energy(net, batch), **self.dirichlet_terms(net, batch)}
        self.check_weights(terms)
        return terms
