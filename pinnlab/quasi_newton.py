"""Self-scaled quasi-Newton methods: SSBFGS and SSBroyden with a dense inverse Hessian.

With s = x_{k+1} − x_k, y = g_{k+1} − g_k, ρ = 1/yᵀs and the inverse-Hessian estimate H,
the self-scaling quantities are (B = H⁻¹, so B s = −α g_k for the step s = −α H g_k)

    b = sᵀB s / yᵀs = −α ρ sᵀg_k,    h = ρ yᵀH y,    a = b h − 1.

**SSBFGS** (Al-Baali's self-scaling, ``ssbfgs``): H̃ = H/τ with τ = min(1, 1/b), then the BFGS
update of H̃,

    H⁺ = H̃ − ρ (H̃ y sᵀ + s yᵀ H̃) + ρ (1 + ρ yᵀH̃y) s sᵀ.

**SSBroyden** (``ssbroyden``): the self-scaled Broyden family member

    H⁺ = (1/τ) [H − H y yᵀH / yᵀHy + φ (yᵀHy) v vᵀ] + ρ s sᵀ,    v = ρ s − H y / yᵀHy,

with φ = (1 − θ)/(1 + a θ), θ = max(θ⁻, min(θ⁺, (1 − b)/b)), θ⁻ = (ρ⁻ − 1)/a, θ⁺ = 1/ρ⁻,
ρ⁻ = min(1, h (1 − √(|a|/(1 + a)))), and τ = min(ρ̂ σ̃, σ) for θ ≤ 0, τ = ρ̂ min(σ̃, 1/θ)
for θ > 0, where ρ̂ = min(1, 1/b), σ = 1 + θ a, σ̃ = |σ|^{1/(1−n)} (n weights).

Both follow Urbán, Stefanou & Pons, "Unveiling the optimization process of physics informed
neural networks: how accurate and competitive can PINNs be?", J. Comput. Phys. 523 (2025)
113656, and Kiyani, Shukla, Urbán, Darbon & Karniadakis, CMAME 446 (2025) 118308 (their
equations as implemented in their public code), with Al-Baali, "Numerical experience with a
class of self-scaling quasi-Newton algorithms", J. Optim. Theory Appl. 96 (1998). The step
length comes from a strong-Wolfe line search (c₁ = 1e-4, c₂ = 0.9, cubic interpolation:
``torch.optim.lbfgs``'s, Nocedal & Wright Alg. 3.5–3.6). Safeguards added here: the update is
skipped when yᵀs ≤ 0 or a quantity is not finite, and H restarts from the identity when the
direction is not one of descent.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from .errors import TrainingError

#: The largest number of weights a dense p × p inverse Hessian is kept for (8·p² bytes:
#: 512 MiB at this size); larger networks train with lbfgs.
DENSE_MAX = 8192

UPDATES = ("ssbfgs", "ssbroyden")


def check_dense(n: int, update: str) -> None:
    """Refuse a dense inverse Hessian for more than ``DENSE_MAX`` weights."""
    if n > DENSE_MAX:
        raise TrainingError(
            f"train.optimizer {update}: a dense inverse Hessian of {n} × {n} weights "
            f"({8 * n * n / 2**30:.1f} GiB) is above the {DENSE_MAX} weights it is kept "
            "for; train this network with lbfgs (limited memory)."
        )


class SelfScaledQuasiNewton(torch.optim.Optimizer):
    """One quasi-Newton iteration per ``step(closure)``; ``closure`` returns the loss with its
    gradient in the parameters' ``.grad``. The inverse Hessian is float64 whatever the
    parameters' dtype; it is optimizer state (saved in checkpoints)."""

    def __init__(self, params, *, update: str = "ssbfgs", max_evaluations: int = 25):
        if update not in UPDATES:
            raise ValueError(f"update must be one of {UPDATES}, got {update!r}")
        super().__init__(params, dict(lr=1.0, update=update, max_evaluations=max_evaluations))
        check_dense(sum(p.numel() for p in self.params), update)

    @property
    def params(self) -> list[Tensor]:
        return self.param_groups[0]["params"]

    def _flat_grad(self) -> Tensor:
        return torch.cat(
            [
                (p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1)
                for p in self.params
            ]
        ).double()

    def _flat(self) -> Tensor:
        return torch.cat([p.detach().reshape(-1) for p in self.params]).double()

    def _set(self, x: Tensor) -> None:
        with torch.no_grad():
            offset = 0
            for p in self.params:
                k = p.numel()
                p.copy_(x[offset : offset + k].reshape(p.shape).to(p.dtype))
                offset += k

    @torch.no_grad()
    def step(self, closure):  # type: ignore[override]
        from torch.optim.lbfgs import _strong_wolfe

        group = self.param_groups[0]
        state = self.state[self.params[0]]
        evaluate = torch.enable_grad()(closure)
        loss = float(evaluate())
        g = self._flat_grad()
        x = self._flat()
        n = len(x)
        first = "inverse_hessian" not in state
        H = state.get("inverse_hessian")
        if H is None:
            H = torch.eye(n, dtype=torch.float64, device=x.device)
        d = -(H @ g)
        gtd = float(g @ d)
        if not gtd < 0:  # not a descent direction: restart from the gradient
            H = torch.eye(n, dtype=torch.float64, device=x.device)
            d, gtd = -g, -float(g @ g)
        if gtd == 0:
            return loss
        t = min(1.0, 1.0 / float(g.abs().sum())) if first else 1.0

        def objective(x0, t, d):
            self._set(x0 + t * d)
            value = float(evaluate())
            return value, self._flat_grad()

        new_loss, g_new, t, _ = _strong_wolfe(
            objective,
            x,
            t,
            d,
            loss,
            g,
            torch.as_tensor(gtd, dtype=torch.float64),
            tolerance_change=0.0,
            max_ls=group["max_evaluations"],
        )
        if not math.isfinite(new_loss):
            self._set(x)
            raise TrainingError(f"train.optimizer {group['update']}: the loss is not finite.")
        self._set(x + t * d)
        state["inverse_hessian"] = self._update(H, t * d, g_new - g, g, t, group["update"])
        group["lr"] = float(t)
        return loss

    @staticmethod
    def _update(H: Tensor, s: Tensor, y: Tensor, g: Tensor, alpha: float, kind: str) -> Tensor:
        """H⁺ of the module docstring; H unchanged when yᵀs ≤ 0 or a quantity is not finite."""
        ys = float(y @ s)
        if not ys > 0:
            return H
        rho = 1.0 / ys
        Hy = H @ y
        yHy = float(y @ Hy)
        b = -alpha * rho * float(s @ g)
        h = rho * yHy
        a = b * h - 1.0
        if not (b > 0 and yHy > 0 and math.isfinite(a)):
            return H
        if kind == "ssbfgs":
            tau = min(1.0, 1.0 / b)
            Ht, Hty = H / tau, Hy / tau
            new = (
                Ht
                - rho * (torch.outer(Hty, s) + torch.outer(s, Hty))
                + rho * (1.0 + rho * float(y @ Hty)) * torch.outer(s, s)
            )
        else:
            n = len(s)
            v = rho * s - Hy / yHy
            theta = 0.0
            if abs(a) > 1e-12:
                rho_minus = min(1.0, h * (1.0 - math.sqrt(abs(a) / (1.0 + a))))
                theta_minus = (rho_minus - 1.0) / a
                theta_plus = 1.0 / rho_minus if rho_minus > 0 else math.inf
                theta = max(theta_minus, min(theta_plus, (1.0 - b) / b))
            phi = (1.0 - theta) / (1.0 + a * theta)
            rho_hat = min(1.0, 1.0 / b)
            sigma = 1.0 + theta * a
            sigma_tilde = abs(sigma) ** (1.0 / (1.0 - n)) if n > 1 else 1.0
            if theta <= 0:
                tau = min(rho_hat * sigma_tilde, sigma)
            else:
                tau = rho_hat * min(sigma_tilde, 1.0 / theta)
            if not (tau > 0 and math.isfinite(phi)):
                return H
            new = (H - torch.outer(Hy, Hy) / yHy + phi * yHy * torch.outer(v, v)) / tau
            new = new + rho * torch.outer(s, s)
        return new if bool(torch.isfinite(new).all()) else H
