"""Physics-informed neural networks (Raissi, Perdikaris & Karniadakis, J. Comput. Phys. 378, 2019).

Minimises the mean squared strong-form residual at interior collocation points plus the mean
squared misfit of each condition at points on its part of the boundary:

    L = w_r · mean |R[u](x_i)|² + Σ_c w_c · mean |u(y_j) − g_c(y_j)|².
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field
from torch import Tensor, nn

from ..config import Section
from ..derivatives import METHODS, Derivatives, choose_method
from ..derivatives.stochastic import estimator_variance
from ..domains import SpaceTime
from ..errors import ConfigError, unknown_name
from ..networks import DirichletTransform, OutputAffine
from .base import Solver


class PINNSettings(Section):
    n_interior: int = Field(1024, ge=1, description="collocation points per batch")
    n_boundary: int = Field(256, ge=1, description="points per condition per batch")
    derivatives: str = Field(
        "auto", description=f"Δu and tr(BBᵀ∇²u) by: {', '.join(METHODS)} (docs/derivatives.md)"
    )
    probes: int = Field(16, ge=1, description="probes or axes per step of a stochastic method")
    sampling: Literal["uniform", "sobol"] = "uniform"
    weights: dict[str, float] = Field(default_factory=dict, description="loss term -> weight")
    normalize_output: bool = Field(
        True, description="u = mean + std · N with the mean and std of the Dirichlet data"
    )


class PINN(Solver):
    name = "pinn"
    form = "strong"
    Settings = PINNSettings

    def __init__(self, problem, settings: PINNSettings, *, dtype):
        super().__init__(problem, settings, dtype=dtype)
        if settings.derivatives not in METHODS:
            raise unknown_name(
                "derivative method (solver.derivatives)", settings.derivatives, METHODS
            )
        self.strong = problem.strong_form()
        self.time_dependent = isinstance(self.strong.domain, SpaceTime)
        self.hard = False
        self.method = None  # resolved for the network in ``wrap``

    def _method(self, net: nn.Module | None = None):
        """The derivative method, resolved once (``auto`` looks at the network)."""
        if self.method is None:
            s, in_dim = self.settings, self.problem.dim + int(self.time_dependent)
            param = next(net.parameters(), None) if net is not None else None
            if net is None and s.derivatives == "auto":
                self.method = choose_method("reduced", None, in_dim)
            else:
                self.method = choose_method(
                    s.derivatives,
                    net,
                    in_dim,
                    probes=s.probes,
                    dtype=param.dtype if param is not None else None,
                    device=param.device if param is not None else None,
                )
        return self.method

    def wrap(self, net: nn.Module, hard_bc: bool) -> nn.Module:
        model = self._wrap(net, hard_bc)
        self.method = None
        self._method(model)
        return model

    def _wrap(self, net: nn.Module, hard_bc: bool) -> nn.Module:
        if not hard_bc:
            if not self.settings.normalize_output:
                return net
            return OutputAffine(net, *self.data_scale())
        conditions = [c for c in self.strong.conditions.values() if c.on == "boundary"]
        if len(conditions) != 1 or conditions[0].lift is None:
            raise ConfigError(
                f"net.hard_bc: {self.problem.id} provides no lift of its boundary data "
                "(an extension that is not the exact solution itself); set net.hard_bc=false."
            )
        self.hard = True
        return DirichletTransform(net, self.strong.domain.distance, conditions[0].lift)

    def data_scale(self) -> tuple[Tensor, Tensor]:
        """Mean and standard deviation per output of the Dirichlet data (0 and 1 if none).

        Drawn from a fixed seed on the CPU: only the data the problem states is used.
        """
        generator = torch.Generator().manual_seed(0)
        values = []
        for c in self.strong.conditions.values():
            y = self._condition_points(c, 4096, generator=generator, dtype=torch.float64)
            values.append(c.value(y).reshape(len(y), -1))
        k = self.strong.outputs
        if not values:
            return torch.zeros(k), torch.ones(k)
        data = torch.cat(values)
        mean, std = data.mean(dim=0), data.std(dim=0)
        std = torch.where(std > 1e-8 * (1 + mean.abs()), std, torch.ones_like(std))
        return mean.float(), std.float()

    def _exact(self, condition) -> bool:
        return self.hard and condition.on == "boundary"

    def weights(self) -> dict[str, float]:
        # The names are checked in ``loss``: a residual may be a dict of named terms, whose
        # names are known only once it has been evaluated.
        return dict(self.settings.weights)

    def _condition_points(self, condition, n: int, **kw) -> Tensor:
        """n points on the part of the domain where ``condition`` holds."""
        domain = self.strong.domain
        if condition.on == "boundary":
            return domain.sample_boundary(n, **kw)
        t = domain.t0 if condition.on == "initial" else domain.t1
        return domain.sample_slice(n, t, **kw)

    def batch(self, generator: torch.Generator) -> dict[str, Tensor]:
        s = self.settings
        kw = dict(generator=generator, dtype=self.dtype, sampling=s.sampling)
        out = {"residual": self.strong.domain.sample_interior(s.n_interior, **kw)}
        method = self._method()
        if method.stochastic:
            out["probes"] = method.draw(self.problem.dim, generator, self.dtype)
        for name, c in self.strong.conditions.items():
            if not self._exact(c):
                out[name] = self._condition_points(c, s.n_boundary, **kw)
        return out

    def _residual(self, net, points: Tensor, probes: Tensor | None):
        d = Derivatives(
            net,
            points,
            method=self._method(net),
            time_dependent=self.time_dependent,
            probes=probes,
        )
        return self.strong.residual(d)

    def diagnostics(self, net: nn.Module, batch: dict[str, Tensor]) -> dict[str, float]:
        """For a stochastic method, the variance of the residual's estimate (mean over up to
        256 batch points): the bias it adds to the mean squared residual."""
        method = self._method(net)
        if not method.stochastic:
            return {}
        x = batch["residual"][:256]

        def residual(probes):
            r = self._residual(net, x, probes)
            return torch.stack(list(r.values()), dim=-1) if isinstance(r, dict) else r

        with torch.no_grad():
            var = estimator_variance(method, batch["probes"], residual, self.problem.dim)
        return {"residual_var": float(var.detach().mean())}

    def loss(self, net: nn.Module, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        r = self._residual(net, batch["residual"], batch.get("probes"))
        terms = (
            {k: v.square().mean() for k, v in r.items()}
            if isinstance(r, dict)
            else {"residual": r.square().mean()}
        )
        for name, c in self.strong.conditions.items():
            if name in batch:
                y = batch[name]
                u = net(y)
                g = c.value(y)
                terms[name] = (u - g.reshape(u.shape)).square().mean()
        unknown = set(self.settings.weights) - set(terms)
        if unknown:
            raise unknown_name("loss term (solver.weights)", sorted(unknown)[0], terms)
        return terms
