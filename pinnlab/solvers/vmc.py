"""Variational Monte Carlo for ground states (McMillan, Phys. Rev. 138, A442 (1965); with
neural wavefunctions: Carleo & Troyer, Science 355 (2017); Pfau et al., Phys. Rev. Research 2
(2020), whose envelope and local-energy clipping are used here).

The model is log|ψ_θ(x)| = N_θ(x) + e(x): a network N times an envelope e that carries what is
known before solving: on R^d, e = −a|x| − b|x|² with learned a, b ≥ 0 (decay, and the
electron–nucleus cusp ψ ∝ e^{−Z r} of a Coulomb potential); in a box with hard walls,
e = Σᵢ log(4(xᵢ − l)(h − xᵢ)/(h − l)²), so ψ = 0 on the walls exactly.

Training minimises the Rayleigh quotient E[ψ] = E_{x∼|ψ|²}[E_L(x)], E_L = Hψ/ψ, with walkers
from Metropolis–Hastings (``pinnlab.mcmc``) and the gradient

    ∇_θ E = 2 E[(E_L − E) ∇_θ log|ψ|],

E_L clipped to median ± ``clip`` · mean |E_L − median| in the gradient only. Local energies
that are not finite (a walker on a singularity of V) are left out, counted and reported.

With ``natural_gradient`` (the default) the gradient is preconditioned by stochastic
reconfiguration (Sorella, Phys. Rev. Lett. 80, 4558 (1998)): δ = (S + λI)⁻¹ ∇_θ E with
S = Cov_{|ψ|²}(∇_θ log|ψ|), the Fisher information of |ψ|², from per-walker gradients
(torch.func); with more parameters p than walkers n the n × n form
δ = Ōᵀ(ŌŌᵀ + nλI)⁻¹ 2(E_L − Ē) is solved instead. The loss's gradient is then δ itself, so
train with ``train.optimizer: sgd`` (plain steps θ −= lr·δ): Adam would undo the
preconditioning.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
from pydantic import Field
from torch import Tensor, nn
from torch.nn import functional as F

from ..config import Section
from ..derivatives import Derivatives, method_for
from ..domains import Box
from ..mcmc import Metropolis, blocking
from ..metrics import energy_metrics
from ..problem import HamiltonianForm
from .base import Model, NetworkSpec, Solver

#: Seed of the chains that measure a trained wavefunction's energy (metrics are reproducible).
EVAL_SEED = 20241128


class VMCSettings(Section):
    walkers: int = Field(1024, ge=2, description="Metropolis chains (the batch of each step)")
    mcmc_steps: int = Field(10, ge=1, description="Metropolis steps between training steps")
    burn_in: int = Field(500, ge=0, description="Metropolis steps before the first step")
    step_size: float | None = Field(
        None, gt=0, description="initial proposal step (default: 0.5·length, or a tenth of the box)"
    )
    target_acceptance: float = Field(0.5, gt=0, lt=1)
    clip: float = Field(
        5.0,
        ge=0,
        description="clip E_L to median ± clip·mean|E_L − median| in the gradient; 0: off",
    )
    natural_gradient: bool = Field(
        True,
        description="stochastic reconfiguration: precondition by S = Cov(∇_θ log ψ) (train with sgd)",
    )
    damping: float = Field(1e-3, gt=0, description="λ added to the diagonal of S")
    eval_measurements: int = Field(
        256, ge=16, description="energy measurements (each after mcmc_steps) in a metric"
    )
    derivatives: Literal["auto", "reduced", "forward", "reverse"] = Field(
        "auto", description="exact Δ of the network (auto: reduced where it applies, else forward)"
    )


class LogPsi(nn.Module):
    """log|ψ(x)| = N(x) + e(x) (see the module docstring); outputs (n, 1)."""

    def __init__(self, net: nn.Module, form: HamiltonianForm):
        super().__init__()
        self.net = net
        self.box = form.domain
        # The network's output starts at zero: training starts from ψ = envelope.
        net.zero_output_()
        if self.box is None:
            # a, b = softplus(·): started at a = 1/(2·length), b = 1/(4·length²).
            start = torch.tensor([1 / (2 * form.length), 1 / (4 * form.length**2)])
            self.decay = nn.Parameter(torch.log(torch.expm1(start)))

    def rates(self) -> tuple[Tensor, Tensor]:
        """(a, b) of the envelope −a|x| − b|x|² on R^d."""
        a, b = F.softplus(self.decay)
        return a, b

    def envelope_value(self, x: Tensor) -> Tensor:
        """e at x, (n,)."""
        if self.box is not None:
            low, high = self.box.low, self.box.high
            return torch.log(4 * (x - low) * (high - x) / (high - low) ** 2).sum(dim=1)
        a, b = self.rates()
        r = x.norm(dim=1)
        return -a * r - b * r * r

    def envelope(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """e, ∇e and Δe at x, in closed form."""
        e = self.envelope_value(x)
        if self.box is not None:
            left, right = x - self.box.low, self.box.high - x
            return e, 1 / left - 1 / right, -(left.pow(-2) + right.pow(-2)).sum(dim=1)
        a, b = self.rates()
        r = x.norm(dim=1)
        grad = -(a / r + 2 * b)[:, None] * x
        return e, grad, -a * (x.shape[1] - 1) / r - 2 * b * x.shape[1]

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x) + self.envelope_value(x)[:, None]


class VMC(Solver):
    name = "vmc"
    form = "hamiltonian"
    Settings = VMCSettings

    def __init__(self, problem, settings: VMCSettings, *, dtype, hard_bc=False):
        super().__init__(problem, settings, dtype=dtype, hard_bc=hard_bc)
        self.spec: HamiltonianForm = problem.hamiltonian_form()

    @property
    def has_truth(self) -> bool:
        return self.spec.ground_energy is not None

    def network(self) -> NetworkSpec:
        """Inputs scaled from the walls, or from ±4 lengths on R^d."""
        s = self.spec
        box = s.domain if s.domain is not None else Box(s.dim, -4 * s.length, 4 * s.length)
        return NetworkSpec(box)

    def setup(self, net: nn.Module, generator: torch.Generator) -> Model:
        return self.bind(LogPsi(net, self.spec))

    def bind(self, module: nn.Module) -> Model:
        """The model with the exact Δ method for its network resolved (``auto``: reduced
        where the reduction applies, else forward). Its state holds the Metropolis chains
        (``sampler``, made at the first batch) and the count of local energies left out
        because they were not finite (``nonfinite``, over all training steps)."""
        method = method_for(module.net, self.settings.derivatives, self.spec.dim, exact=True)
        return Model(module, method=method, state={"sampler": None, "nonfinite": 0})

    # --- sampling ----------------------------------------------------------------------
    def _start(self, generator: torch.Generator, dtype: torch.dtype) -> Tensor:
        """Walkers drawn from N(0, length²) on R^d, uniformly in a box."""
        s, n = self.spec, self.settings.walkers
        kw = dict(generator=generator, device=generator.device, dtype=dtype)
        if s.domain is not None:
            return s.domain.low + (s.domain.high - s.domain.low) * torch.rand(n, s.dim, **kw)
        return s.length * torch.randn(n, s.dim, **kw)

    def _sampler(self, model: LogPsi, walkers: Tensor) -> Metropolis:
        s, box = self.settings, self.spec.domain
        step = s.step_size or (
            0.5 * self.spec.length if box is None else 0.1 * (box.high - box.low)
        )
        inside = None if box is None else (lambda y: ((y > box.low) & (y < box.high)).all(dim=1))
        return Metropolis(
            lambda y: 2 * model(y)[:, 0],
            walkers,
            step,
            target_acceptance=s.target_acceptance,
            inside=inside,
        )

    def batch(self, model: Model, generator: torch.Generator) -> dict[str, Tensor]:
        """Walkers from |ψ|² of the current model: burn-in first, then ``mcmc_steps``."""
        steps, sampler = self.settings.mcmc_steps, model.state["sampler"]
        if sampler is None:
            sampler = self._sampler(model.module, self._start(generator, self.dtype))
            model.state["sampler"] = sampler
            steps += self.settings.burn_in
        sampler.refresh()  # the density changed with the last training step
        return {"walkers": sampler.run(steps, generator, adapt=True)}

    # --- energies ----------------------------------------------------------------------
    def local_energy(self, model: Model, x: Tensor) -> tuple[Tensor, Tensor]:
        """(E_L, log|ψ|) at x: E_L = −½(Δ log|ψ| + |∇ log|ψ||²) + V."""
        psi = model.module
        d = Derivatives(psi.net, x, method=model.method)
        e, grad_e, lap_e = psi.envelope(x)
        grad = d.grad + grad_e
        lap = d.laplacian + lap_e
        kinetic = -0.5 * (lap + grad.square().sum(dim=1))
        return kinetic + self.spec.potential(x), d.u + e

    def loss(self, model: Model, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        x = batch["walkers"]
        e_local, log_psi = self.local_energy(model, x)
        finite = torch.isfinite(e_local).detach()
        # A device tensor: no sync here.
        model.state["nonfinite"] = model.state["nonfinite"] + (~finite).sum()
        e_local, log_psi = e_local[finite], log_psi[finite]
        energy = e_local.mean().detach()
        clipped = e_local.detach()
        if self.settings.clip:
            median = clipped.median()
            spread = (clipped - median).abs().mean()
            width = self.settings.clip * spread
            clipped = clipped.clamp(median - width, median + width)
        weight = clipped - clipped.mean()
        if self.settings.natural_gradient:
            surrogate = self._natural_gradient_surrogate(model.module, x[finite], weight)
        else:
            surrogate = 2 * (weight * log_psi).mean()
        # The value is the batch's energy; the gradient is the VMC gradient.
        return {"energy": energy + surrogate - surrogate.detach()}

    def _natural_gradient_surrogate(self, model: nn.Module, x: Tensor, weight: Tensor) -> Tensor:
        """Σ_θ δ_θ·θ: a scalar whose gradient is the natural gradient δ = (S + λI)⁻¹ g."""
        from torch.func import functional_call, grad, vmap

        params = {k: p.detach() for k, p in model.named_parameters()}

        def log_psi(p, y):
            return functional_call(model, p, (y[None],))[0, 0]

        per_walker = vmap(grad(log_psi), in_dims=(None, 0))(params, x.detach())
        o = torch.cat([v.reshape(len(x), -1) for v in per_walker.values()], dim=1)
        o = o - o.mean(dim=0)
        n, p = o.shape
        lam = self.settings.damping
        e = 2 * weight.detach()
        if p <= n:
            s = o.T @ o / n + lam * torch.eye(p, dtype=o.dtype, device=o.device)
            delta = torch.linalg.solve(s, o.T @ e / n)
        else:
            k = o @ o.T + n * lam * torch.eye(n, dtype=o.dtype, device=o.device)
            delta = o.T @ torch.linalg.solve(k, e)
        out, start = 0.0, 0
        for param in model.parameters():
            size = param.numel()
            out = out + (delta[start : start + size].reshape(param.shape) * param).sum()
            start += size
        return out

    def diagnostics(self, model: Model, batch: dict[str, Tensor]) -> dict[str, float]:
        sampler = model.state["sampler"]
        if sampler is not None:
            sampler.check("during training")
        return {
            "acceptance": sampler.acceptance if sampler else float("nan"),
            "step_size": sampler.step if sampler else float("nan"),
            "nonfinite_energies": float(model.state["nonfinite"]),
        }

    def metrics(self, module: nn.Module) -> dict[str, float]:
        """The energy of ``model`` with its standard error, from fresh chains (fixed seed):
        ``burn_in`` steps, then ``eval_measurements`` measurements ``mcmc_steps`` apart; the
        error against the exact E₀ where known. Non-finite local energies are counted
        (``energy_nonfinite``) and left out of the mean."""
        s, model = self.settings, self.bind(module)
        param = next(module.parameters())
        generator = torch.Generator(device=param.device).manual_seed(EVAL_SEED)
        sampler = self._sampler(module, self._start(generator, param.dtype))
        sampler.run(s.burn_in, generator, adapt=True)
        series, acceptance, bad, squares = [], [], 0, []
        for _ in range(s.eval_measurements):
            x = sampler.run(s.mcmc_steps, generator, adapt=False)
            acceptance.append(sampler.acceptance)
            with torch.enable_grad():
                e_local, _ = self.local_energy(model, x)
            e_local = e_local.detach()
            finite = torch.isfinite(e_local)
            bad += int((~finite).sum())
            series.append(float(e_local[finite].mean()))
            squares.append(float(e_local[finite].square().mean()))
        sampler.check("while measuring the energy", float(np.mean(acceptance)))
        est = blocking(series)
        return {
            **energy_metrics(est.mean, est.stderr, self.spec.ground_energy),
            "energy_variance": float(np.mean(squares)) - est.mean**2,
            "energy_nonfinite": float(bad),
            "acceptance": float(np.mean(acceptance)),
        }
