"""Chebyshev polynomials and their derivatives, pooled over coordinates (for DeepSets)."""

from __future__ import annotations

import torch
from torch import Tensor


def chebyshev(t: Tensor, degree: int, order: int = 0) -> tuple[Tensor, ...]:
    """Σᵢ T_k(tᵢ) over the last axis of t (…, d) for k = 1 … K (K = ``degree``): (…, K);
    with ``order`` ≥ 1 also T'_k(tᵢ), and with 2 also T''_k(tᵢ), as (…, K, d) tensors.

    By the three-term recurrences T_{k+1} = 2t T_k − T_{k−1}, T'_{k+1} = 2T_k + 2t T'_k −
    T'_{k−1}, T''_{k+1} = 4T'_k + 2t T''_k − T''_{k−1}; each k is written to a contiguous
    slice, so nothing is stacked or copied afterwards.
    """
    two_t = 2 * t
    sums = t.new_empty((*t.shape[:-1], degree))
    derivs = [t.new_empty((*t.shape[:-1], degree, t.shape[-1])) for _ in range(order)]
    one, zero = torch.ones_like(t), torch.zeros_like(t)  # never written in place
    prev, cur = [one, zero, zero][: order + 1], [t, one, zero][: order + 1]
    for k in range(degree):
        sums[..., k] = cur[0].sum(dim=-1)
        for j in range(order):
            derivs[j][..., k, :] = cur[j + 1]
        if k == degree - 1:
            break
        new = [two_t * cur[0] - prev[0]]
        if order >= 1:
            new.append((two_t * cur[1]).add_(cur[0], alpha=2).sub_(prev[1]))
        if order >= 2:
            new.append((two_t * cur[2]).add_(cur[1], alpha=4).sub_(prev[2]))
        prev, cur = cur, new
    return (sums, *derivs)
