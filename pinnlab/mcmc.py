"""Markov chain Monte Carlo for variational Monte Carlo: sampling |ψ|², and honest error bars.

- ``Metropolis``: random-walk Metropolis–Hastings (Metropolis et al. 1953; Hastings 1970)
  with Gaussian proposals x' = x + s ξ, many independent chains advanced together on the
  walkers' device; s adapts towards a target acceptance rate (a Robbins–Monro step on log s)
  during burn-in and training, and is frozen while measuring.
- ``blocking``: the standard error of the mean of a correlated series by the automated
  blocking method (Flyvbjerg & Petersen, J. Chem. Phys. 91, 461 (1989); Jonsson, Phys. Rev. E
  98, 043304 (2018)).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

#: Below this acceptance rate (after burn-in) a warning says the chains are stuck.
COLLAPSED_ACCEPTANCE = 0.05


class Metropolis:
    """Chains sampling the density ∝ exp(log_prob(x)) by random-walk Metropolis–Hastings.

    ``walkers`` (n, d) are the chains' current states; ``inside(x)`` (optional) says which
    proposals lie in the support (others are rejected without evaluating ``log_prob``).
    """

    def __init__(
        self,
        log_prob: Callable[[Tensor], Tensor],
        walkers: Tensor,
        step: float,
        *,
        target_acceptance: float = 0.5,
        inside: Callable[[Tensor], Tensor] | None = None,
    ):
        self.log_prob = log_prob
        self.walkers = walkers
        # Tensors on the walkers' device: adapting the step and counting acceptances need
        # no host synchronisation inside the chains' loop.
        self._step = torch.as_tensor(float(step), dtype=walkers.dtype, device=walkers.device)
        self.target = target_acceptance
        self.inside = inside
        self._current = None
        self._accepted, self._steps = None, 0

    @property
    def step(self) -> float:
        """The current proposal step s."""
        return float(self._step)

    @property
    def acceptance(self) -> float:
        """Acceptance rate of the last call to ``run`` (NaN before any)."""
        return float(self._accepted) / self._steps if self._steps else float("nan")

    def refresh(self) -> None:
        """Forget the cached log-densities (call after the density changed, e.g. a training step)."""
        self._current = None

    @torch.no_grad()
    def run(self, steps: int, generator: torch.Generator, *, adapt: bool) -> Tensor:
        """Advance every chain ``steps`` times; returns the walkers (n, d)."""
        x = self.walkers
        if self._current is None:
            self._current = self.log_prob(x)
        logp = self._current
        accepted = torch.zeros((), device=x.device)
        for _ in range(steps):
            noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
            proposal = x + self._step * noise
            logp_new = torch.full_like(logp, -math.inf)
            ok = self.inside(proposal) if self.inside is not None else None
            if ok is None:
                logp_new = self.log_prob(proposal)
            elif ok.any():
                logp_new[ok] = self.log_prob(proposal[ok])
            u = torch.rand(logp.shape, generator=generator, device=x.device, dtype=x.dtype)
            accept = (torch.log(u) < logp_new - logp) & torch.isfinite(logp_new)
            x = torch.where(accept[:, None], proposal, x)
            logp = torch.where(accept, logp_new, logp)
            rate = accept.to(x.dtype).mean()
            accepted = accepted + rate
            if adapt:
                self._step = self._step * torch.exp(0.5 * (rate - self.target))
        self.walkers, self._current = x, logp
        if steps:
            self._accepted, self._steps = accepted, steps
        return x

    def check(self, where: str, acceptance: float | None = None) -> None:
        """Warn when the acceptance (default: the last run's) collapsed."""
        acceptance = self.acceptance if acceptance is None else acceptance
        if acceptance < COLLAPSED_ACCEPTANCE:
            warnings.warn(
                f"Metropolis acceptance collapsed to {acceptance:.3f} {where} (proposal "
                f"step {self.step:.3g}): the chains barely move, so energies and gradients "
                "come from stale, correlated samples. Lower train.lr (the wavefunction may "
                "have become very sharp), raise solver.burn_in, or set solver.step_size.",
                RuntimeWarning,
                stacklevel=3,
            )


@dataclass(frozen=True)
class Estimate:
    """A Monte Carlo mean with its standard error (``blocks``: the blocking level used)."""

    mean: float
    stderr: float
    level: int


def blocking(series) -> Estimate:
    """Mean and standard error of a correlated, stationary series (Jonsson's automated
    Flyvbjerg–Petersen blocking). The series is cut to its last 2^k values; at each level,
    neighbours are averaged in pairs; the level chosen is the first at which the remaining
    lag-one autocorrelations are consistent with zero (a χ² test at 99%)."""
    from scipy.stats import chi2

    x = np.asarray(series, dtype=np.float64).ravel()
    if len(x) < 4:
        raise ValueError(f"blocking needs at least 4 values, got {len(x)}.")
    d = int(math.log2(len(x)))
    x = x[len(x) - 2**d :]
    mean = float(x.mean())
    var, gamma = np.zeros(d), np.zeros(d)
    for level in range(d):
        n = len(x)
        var[level] = x.var()
        gamma[level] = ((x[:-1] - mean) * (x[1:] - mean)).sum() / n
        x = 0.5 * (x[0::2] + x[1::2])
    sizes = 2.0 ** np.arange(d, 0, -1)  # values at each level
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(var > 0, sizes * (gamma / var) ** 2, 0.0)
    m = np.cumsum(terms[::-1])[::-1]
    quantiles = chi2.ppf(0.99, np.arange(d, 0, -1))
    level = next((k for k in range(d) if m[k] < quantiles[k]), d - 1)
    return Estimate(mean, float(math.sqrt(var[level] / sizes[level])), level)
