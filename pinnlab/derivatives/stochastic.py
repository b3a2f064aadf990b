"""Unbiased stochastic estimators of Δu and tr(B Bᵀ ∇²u), at a cost independent of d.

Both draw a few directions per step (shared by all points of the batch, so the first layer
costs k·d·w and not n·k·d·w) and push them through the network in forward mode:

* ``hutchinson`` (Hutchinson, Commun. Stat. Simul. 18, 1989; for PINNs Hu, Shi, Karniadakis &
  Kawaguchi, CMAME 424, 2024): Δu ≈ (1/k) Σ_j z_jᵀ ∇²u z_j with E[z zᵀ] = I. Variance
  (1/k)·2 Σ_{i≠l} H_il² for Rademacher z, (1/k)·2‖H‖_F² for Gaussian z (H = ∇²u): exact for a
  diagonal Hessian with Rademacher probes. For tr(B Bᵀ ∇²u) the probes are B z_j, z_j ∈ R^m.
* ``sdgd`` (random dimension subsets; Hu, Shukla, Karniadakis & Kawaguchi, Neural Networks
  176, 2024): Δu ≈ (d/k) Σ_{i ∈ I} ∂²u/∂x_i², I a uniform k-subset of the d axes. Variance
  (d²/k)(1 − k/d)·s² with s² the variance of the d diagonal entries H_ii: zero when they are
  equal, large when a few dominate. For tr(B Bᵀ ∇²u), k random columns of B, scaled by m/k.
  Forward-mode jets along coordinate directions are exactly the sparse second-order
  Taylor-mode estimator of STDE (Shi, Hu, Lin & Kawaguchi, NeurIPS 2024) for these operators.

The probes are part of a solver's batch (drawn from the run's generator on its device), so a
step is reproducible and an L-BFGS line search sees the same estimator at every evaluation.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..errors import ConfigError, ShapeError


class Hutchinson:
    """Hutchinson's trace estimator with ``probes`` Rademacher (or Gaussian) directions."""

    stochastic = True
    min_order = 2

    def __init__(self, probes: int = 16, *, gaussian: bool = False):
        _check_count("probes", probes)
        self.probes = probes
        self.gaussian = gaussian
        self.name = "hutchinson-gauss" if gaussian else "hutchinson"

    def draw(self, dim: int, generator: torch.Generator, dtype: torch.dtype) -> Tensor:
        """k probe vectors z_j of length ``dim``, on the generator's device: (k, dim)."""
        shape, device = (self.probes, dim), generator.device
        if self.gaussian:
            return torch.randn(shape, generator=generator, dtype=dtype, device=device)
        bits = torch.randint(0, 2, shape, generator=generator, device=device)
        return (2 * bits - 1).to(dtype)

    def directions(
        self, probes: Tensor, *, dim: int, dtype: torch.dtype, factor: Tensor | None = None
    ):
        """Directions (k, d) or (n, k, d) and their weights (k,) for one estimate."""
        k = probes.shape[0]
        weights = torch.full((k,), 1.0 / k, dtype=dtype, device=probes.device)
        if factor is None:
            return probes.to(dtype), weights
        _check_square(factor, probes.shape[1], self.name)
        return (factor @ probes.to(factor.dtype).T).transpose(-1, -2), weights

    def variance_of_mean(self, samples: Tensor, total: int) -> Tensor:
        """Variance of the estimate from its k i.i.d. single-probe estimates (n, k, …): s²/k."""
        return samples.var(dim=1) / samples.shape[1]


class SDGD:
    """Random dimension subsets: ``probes`` of the d axes (or of B's columns), rescaled."""

    name = "sdgd"
    stochastic = True
    min_order = 2

    def __init__(self, probes: int = 16):
        _check_count("probes", probes)
        self.probes = probes

    def draw(self, dim: int, generator: torch.Generator, dtype: torch.dtype) -> Tensor:
        """A uniform random subset of min(k, dim) distinct axes, as indices."""
        k = min(self.probes, dim)
        return torch.randperm(dim, generator=generator, device=generator.device)[:k]

    def directions(
        self, probes: Tensor, *, dim: int, dtype: torch.dtype, factor: Tensor | None = None
    ):
        """The chosen axes (or columns of B) as directions (k, d) / (n, k, d), weights d/k."""
        k = len(probes)
        weights = torch.full((k,), dim / k, dtype=dtype, device=probes.device)
        if factor is not None:
            _check_square(factor, dim, self.name)
            return factor[..., probes].transpose(-1, -2), weights
        v = torch.zeros(k, dim, dtype=dtype, device=probes.device)
        v[torch.arange(k, device=probes.device), probes] = 1.0
        return v, weights

    def variance_of_mean(self, samples: Tensor, total: int) -> Tensor:
        """(s²/k)(1 − k/d) from the k single-axis estimates (n, k, …): k of d without replacement."""
        k = samples.shape[1]
        return samples.var(dim=1) / k * (1 - k / total)


def estimator_variance(method, probes: Tensor, estimate, total: int) -> Tensor:
    """Per-point variance of ``estimate(probes)`` from its single-probe estimates.

    ``estimate`` maps probes to an estimate that is affine in the second-order terms (a
    residual, a Laplacian); each single probe gives an unbiased estimate, their mean is the
    k-probe estimate, and its variance follows from their spread.
    """
    samples = torch.stack([estimate(probes[j : j + 1]) for j in range(len(probes))], dim=1)
    return method.variance_of_mean(samples, total)


def _check_count(name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{name} must be a positive integer, got {value!r}.")


def _check_square(factor: Tensor, dim: int, method: str) -> None:
    if factor.shape[-1] != dim:
        raise ShapeError(
            f"{method}: stochastic estimates of tr(B Bᵀ ∇²u) need a square factor B, of shape "
            f"(d, d) or (n, d, d) with d={dim}; got {tuple(factor.shape)} (any A = B Bᵀ has a "
            "square factor, e.g. its Cholesky factor)."
        )
