"""The deep BSDE method (Han, Jentzen & E, "Solving high-dimensional partial differential
equations using deep learning", PNAS 115 (2018) 8505; E, Han & Jentzen, Commun. Math. Stat. 5
(2017) 349).

For the semilinear problem of a stochastic form, Y_t = u(t, X_t) and Z_t = σᵀ∇u(t, X_t) solve
dY = (r Y − f(t, X, Y, Z)) dt + Zᵀ dW with Y_T = g(X_T). On a time grid t* = t₀ < … < t_N = T
the method treats Y_{t₀} and each Z_{t_k} as unknowns, steps

    Y_{k+1} = Y_k − (f(t_k, X_k, Y_k, Z_k) − r Y_k) h + Z_kᵀ ΔW_k,

along simulated paths of X and minimises the terminal mismatch L = mean |Y_N − g(X_N)|².

- At one point x₀ (the default, as in the paper): Y₀ = u(t*, x₀) and Z₀ are two parameters;
  Z_k (k ≥ 1) is a network of X_k per step (d → w → w → m, batch normalisation, ReLU; the
  paper's w = d + 10), all steps evaluated at once (the paths do not depend on the networks).
  ``pinnlab eval`` at x₀ returns Y₀.
- On a region (``region: true``): Y₀ = N(ξ) is the run's network of the starting point ξ,
  uniform in the domain of interest, and Z₀ a network too: u(t*, ·) is learnt on the region.
"""

from __future__ import annotations

import math

import torch
from pydantic import Field
from torch import Tensor, nn

from ..errors import ConfigError, PinnlabError
from ..networks import OutputAffine
from .base import Model
from .paths import PathSettings, PathSolver


class DeepBSDESettings(PathSettings):
    steps: int = Field(20, ge=1, description="N, time steps from t* to T")
    n_paths: int = Field(256, ge=2, description="paths per training step (the paper: 64)")
    region: bool = Field(False, description="learn u(t*, ·) on the region, not at one point")
    x0: float | list[float] | None = Field(
        None, description="the point x₀ (a number fills every coordinate); default the form's"
    )
    z_width: int | None = Field(None, ge=1, description="width of the Z networks (default d+10)")


class PointValue(nn.Module):
    """u(t*, x₀) as one parameter: a solution known at the single point ``point``."""

    def __init__(self, point: Tensor, value: float):
        super().__init__()
        self.register_buffer("point", point)
        self.value = nn.Parameter(torch.tensor([value], dtype=point.dtype))

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[1:] != self.point.shape or not torch.allclose(
            x, self.point.expand_as(x), rtol=1e-6, atol=1e-6 * float(self.point.abs().max() + 1)
        ):
            raise PinnlabError(
                "this deep-bsde solution was trained at the single point x₀ "
                f"(= {_short(self.point)}) and has a value only there; train with "
                "solver.region=true to learn u on a region."
            )
        return self.value.expand(len(x), 1)


def _short(x: Tensor) -> str:
    values = x.tolist()
    if all(v == values[0] for v in values):
        return f"({values[0]:g}, …, {values[0]:g})" if len(values) > 1 else f"({values[0]:g})"
    return "(" + ", ".join(f"{v:g}" for v in values[:4]) + (", …)" if len(values) > 4 else ")")


class GradientNets(nn.Module):
    """Z_k ≈ σᵀ∇u(t_k, X_k) for K time steps at once: K networks d → w → w → m with batch
    normalisation and ReLU, the output divided by d (Han et al.), their weights stacked so
    that all K are evaluated by three batched matrix products. Normalisation always uses the
    batch's statistics (the networks are only used in training).

    The division by d matters with Adam, which moves every weight by about the learning rate
    whatever the gradient's scale: without it Z would change by O(lr·w) per step, and through
    a nonlinearity such as u − u³ the paths of Y explode within a few dozen steps."""

    def __init__(self, steps: int, dim: int, noise: int, width: int, generator: torch.Generator):
        super().__init__()
        sizes = [(dim, width), (width, width), (width, noise)]
        self.weights = nn.ParameterList(
            nn.Parameter(_glorot(steps, a, b, generator)) for a, b in sizes
        )
        self.dim = dim
        self.bias = nn.Parameter(torch.zeros(steps, 1, noise))
        self.scales = nn.ParameterList(
            nn.Parameter(torch.ones(steps, 1, n)) for n in (dim, width, width)
        )
        self.shifts = nn.ParameterList(
            nn.Parameter(torch.zeros(steps, 1, n)) for n in (dim, width, width)
        )

    def forward(self, x: Tensor) -> Tensor:
        """x: (K, n, d) → (K, n, m)."""
        for i, w in enumerate(self.weights):
            mean, var = x.mean(dim=1, keepdim=True), x.var(dim=1, unbiased=False, keepdim=True)
            x = (x - mean) * torch.rsqrt(var + 1e-6) * self.scales[i] + self.shifts[i]
            x = torch.relu(x) if i > 0 else x
            x = torch.bmm(x, w)
        return (x + self.bias) / self.dim


def _glorot(steps: int, fan_in: int, fan_out: int, generator: torch.Generator) -> Tensor:
    bound = math.sqrt(6.0 / (fan_in + fan_out))
    return (2 * torch.rand(steps, fan_in, fan_out, generator=generator) - 1) * bound


class BSDEModel(nn.Module):
    """The trained model: ``value`` gives u(t*, ·) (its forward); ``z0`` and ``grads`` are the
    Z unknowns of the time steps, kept with it so a saved run reloads whole."""

    def __init__(self, value: nn.Module, z0: nn.Module | nn.Parameter, grads: GradientNets):
        super().__init__()
        self.value = value
        self.z0 = z0
        self.grads = grads
        self.point = getattr(value, "point", None)

    def forward(self, x: Tensor) -> Tensor:
        return self.value(x)


class DeepBSDE(PathSolver):
    name = "deep-bsde"
    Settings = DeepBSDESettings

    def __init__(self, problem, settings: DeepBSDESettings, *, dtype, hard_bc=False):
        super().__init__(problem, settings, dtype=dtype, hard_bc=hard_bc)
        self.x0 = None
        if not settings.region:
            x0 = settings.x0 if settings.x0 is not None else self.sde.x0
            if x0 is None:
                raise ConfigError(
                    f"deep-bsde at one point needs solver.x0: {problem.id} names no x₀ "
                    "(or set solver.region=true)."
                )
            x0 = [float(x0)] * self.sde.dim if isinstance(x0, int | float) else list(x0)
            if len(x0) != self.sde.dim:
                raise ConfigError(
                    f"solver.x0 has {len(x0)} entries; the problem has d = {self.sde.dim}."
                )
            self.x0 = torch.tensor(x0, dtype=torch.float64)

    @property
    def euler_steps(self) -> int:
        return self.settings.steps

    def setup(self, net: nn.Module, generator: torch.Generator) -> Model:
        """Y₀ (the network of the start, or one number at x₀) and the Z networks."""
        d, m = self.sde.dim, self.sde.noise
        width = self.settings.z_width or d + 10
        steps = self.settings.steps
        if self.settings.region:  # Z_0 is a network of the start too
            grads = GradientNets(steps, d, m, width, generator)
            value = OutputAffine(net, *self.pilot())
            z0: nn.Module | nn.Parameter | None = None
        else:
            mean, _ = self.pilot(start=self.x0)
            value = PointValue(self.x0, float(mean))
            grads = GradientNets(steps - 1, d, m, width, generator) if steps > 1 else None
            z0 = nn.Parameter(torch.zeros(m))
        return self.bind(BSDEModel(value, z0, grads))

    def samples(self, batch: dict[str, Tensor]) -> int:
        """Simulated paths."""
        return len(batch["paths"])

    def batch(self, model: Model, generator: torch.Generator) -> dict[str, Tensor]:
        """Paths (n, N+1, d) from the starts and their normalised increments ξ (n, N, m)."""
        s, sde = self.settings, self.sde
        n, h = s.n_paths, self.tau / s.steps
        if self.x0 is not None:
            x = self.x0.to(device=generator.device, dtype=self.dtype).expand(n, -1)
        else:
            x = self.starts(n, generator)
        xi = torch.randn(n, s.steps, sde.noise, generator=generator, device=x.device, dtype=x.dtype)
        path = [x]
        for k in range(s.steps):
            t = s.time + k * h
            path.append(sde.step(t, path[-1], t + h, xi[:, k], self.exact))
        return {"paths": torch.stack(path, dim=1), "noise": xi}

    def loss(self, model: Model, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        s, sde, model = self.settings, self.sde, model.module
        paths, xi = batch["paths"], batch["noise"]
        n, h = len(paths), self.tau / s.steps
        x = paths[:, 0]
        if self.x0 is not None:
            y = model.value.value.expand(n)
            first = model.z0.expand(1, n, -1)
            rest = paths[:, 1:-1].transpose(0, 1)
            z = first if model.grads is None else torch.cat([first, model.grads(rest)])
        else:
            y = model.value(x).reshape(n)
            z = model.grads(paths[:, :-1].transpose(0, 1))
        for k in range(s.steps):
            t, x = s.time + k * h, paths[:, k]
            drift = sde.discount * y
            if sde.nonlinearity is not None:
                drift = drift - sde.nonlinearity(t, x, y, z[k])
            y = y + drift * h + math.sqrt(h) * (z[k] * xi[:, k]).sum(dim=1)
        return {"terminal": (y - sde.terminal(paths[:, -1])).square().mean()}
