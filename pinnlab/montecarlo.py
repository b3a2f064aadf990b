"""Monte Carlo for the stochastic form: paths of dX = μ dt + σ dW and Feynman–Kac prices.

For a linear problem (f = 0), u(t, x) = e^{−r(T−t)} E[g(X_T) | X_t = x] (Feynman–Kac). Paths
use the form's exact transition where the law is known, else Euler–Maruyama with ``steps``
steps. Noise is drawn from an explicit generator on its device; antithetic pairs (ξ, −ξ) halve
the variance of payoffs that are nearly linear in the noise.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import os
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from .errors import FormError, ParameterError
from .files import atomic_write
from .problem import StochasticForm

CACHE_VAR = "PINNLAB_CACHE"


def terminal(
    form: StochasticForm,
    t: float,
    x: Tensor,
    generator: torch.Generator,
    *,
    exact: bool = True,
    steps: int = 1,
    antithetic: bool = False,
) -> Tensor:
    """X_T from X_t = x for each row of x, shape (n, d); with ``antithetic`` the rows of x are
    used twice, with noise ξ and −ξ: shape (2n, d), the first n with ξ."""
    if exact and form.transition is None:
        raise FormError(
            "this problem's stochastic form has no exact sampler (transition); "
            "use Euler–Maruyama (solver.sampler: euler)."
        )
    if steps < 1:
        raise ParameterError(f"steps must be ≥ 1, got {steps}.")
    times = [
        t + (form.horizon - t) * k / (1 if exact else steps)
        for k in range(2 if exact else steps + 1)
    ]
    xs = torch.cat([x, x]) if antithetic else x
    for a, b in itertools.pairwise(times):
        xi = torch.randn(len(x), form.noise, generator=generator, device=x.device, dtype=x.dtype)
        xi = torch.cat([xi, -xi]) if antithetic else xi
        xs = form.step(a, xs, b, xi, exact)
    return xs


def discounted_payoff(form: StochasticForm, t: float, x_terminal: Tensor) -> Tensor:
    """e^{−r(T−t)} g(X_T)."""
    return math.exp(-form.discount * (form.horizon - t)) * form.terminal(x_terminal)


def price(
    form: StochasticForm,
    t: float,
    x: Tensor,
    paths: int,
    generator: torch.Generator,
    *,
    exact: bool = True,
    steps: int = 1,
    chunk: int = 2**16,
) -> tuple[Tensor, Tensor]:
    """The Feynman–Kac value at each row of x with its standard error, from ``paths`` paths per
    point in antithetic pairs: (mean (n,), stderr (n,)), float64."""
    if not form.linear:
        raise FormError("Feynman–Kac prices need a linear problem (no nonlinearity f).")
    pairs = max(1, paths // 2)
    means, stderrs = [], []
    for point in x:
        total = total_sq = 0.0
        done = 0
        while done < pairs:
            m = min(chunk, pairs - done)
            xt = terminal(
                form, t, point.expand(m, -1), generator, exact=exact, steps=steps, antithetic=True
            )
            y = discounted_payoff(form, t, xt).double()
            y = 0.5 * (y[:m] + y[m:])  # one sample per antithetic pair
            total += float(y.sum())
            total_sq += float(y.square().sum())
            done += m
        mean = total / pairs
        var = max(total_sq / pairs - mean**2, 0.0) * pairs / max(pairs - 1, 1)
        means.append(mean)
        stderrs.append(math.sqrt(var / pairs))
    return torch.tensor(means, dtype=torch.float64), torch.tensor(stderrs, dtype=torch.float64)


def cache_dir() -> Path:
    """Where computed references are kept: $PINNLAB_CACHE, else ~/.cache/pinnlab."""
    return Path(os.environ.get(CACHE_VAR) or Path.home() / ".cache" / "pinnlab")


def cached(key: Mapping, compute: Callable[[], Mapping[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """``compute()`` once per ``key`` (a JSON-serialisable mapping): arrays kept on disk.

    The file is written atomically; an unreadable file is recomputed.
    """
    blob = json.dumps(key, sort_keys=True, default=str)
    path = cache_dir() / "references" / (hashlib.sha256(blob.encode()).hexdigest()[:24] + ".npz")
    if path.exists():
        try:
            with open(path, "rb") as fh, np.load(fh) as f:  # closed even when np.load fails
                return {k: f[k] for k in f.files}
        except (OSError, ValueError, EOFError, zipfile.BadZipFile):
            pass  # damaged (e.g. truncated): recompute
    arrays = {k: np.asarray(v) for k, v in compute().items()}
    with atomic_write(path, suffix=".npz") as tmp:
        np.savez(tmp, **arrays)
    return arrays
