"""Black–Scholes equations for options on d correlated assets, and the default-risk model.

Time convention: calendar time t ∈ [0, T], the price u(t, x) is known at maturity,
u(T, x) = g(x), and solves the backward equation

    ∂ₜu + (r − q) x·∇u + ½ Σᵢⱼ ρᵢⱼ σᵢσⱼ xᵢxⱼ ∂ᵢⱼu − r u = 0,   t < T,

the Feynman–Kac representation of u(t, x) = e^{−r(T−t)} E[g(S_T) | S_t = x] for assets that
follow correlated geometric Brownian motions under the risk-neutral measure,
dSᵢ = (r − q) Sᵢ dt + σᵢ Sᵢ dW̃ᵢ (q the dividend yield), d⟨W̃ᵢ, W̃ⱼ⟩ = ρᵢⱼ dt. With W̃ = C W (C Cᵀ = ρ) the diffusion
matrix is σ(x) = diag(σ ⊙ x) C. The law is known: Sᵢ(s) = xᵢ exp((r − q − σᵢ²/2)(s − t) + σᵢ (C(W_s − W_t))ᵢ).
Asset prices are positive: points outside the positive orthant are refused.

Reference: Beck, Becker, Grohs, Jaafari & Jentzen, "Solving the Kolmogorov PDE by means of
deep learning", J. Sci. Comput. 88 (2021), arXiv:1806.00421 (the domain of interest
[90, 110]^d and the Feynman–Kac regression).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import torch
from torch import Tensor

import pinnlab as pl
from pinnlab import montecarlo
from pinnlab.observations import check_synthetic

#: Reference points per Monte Carlo reference, and paths per point (antithetic pairs).
REFERENCE_POINTS = 20
REFERENCE_PATHS = 2**21
REFERENCE_SEED = 20261127


def _check_positive(problem: pl.Problem, x: Tensor) -> None:
    """Asset prices are positive: refuse points outside the positive orthant."""
    if bool((x <= 0).any()):
        row = int((x <= 0).any(dim=1).nonzero()[0])
        raise pl.ParameterError(
            f"{problem.id}: asset prices must be positive; point {row} has a coordinate ≤ 0."
        )


@dataclass(frozen=True)
class _GBM(pl.Problem):
    """d assets in correlated geometric Brownian motion; subclasses define the payoff."""

    dims = "d ≥ 1"
    dim: int = 10
    rate: float = 0.05
    dividend: float = 0.0
    sigma: float | tuple[float, ...] = 0.2
    rho: float | tuple[tuple[float, ...], ...] = 0.5
    maturity: float = 1.0
    strike: float = 100.0
    x_low: float = 90.0
    x_high: float = 110.0

    def check(self):
        self.require(-1.0 <= self.rate <= 1.0, f"rate must lie in [-1, 1], got {self.rate}")
        self.require(
            -1.0 <= self.dividend <= 1.0, f"dividend must lie in [-1, 1], got {self.dividend}"
        )
        self.require(self.maturity > 0, f"maturity must be > 0, got {self.maturity}")
        self.require(self.strike > 0, f"strike must be > 0, got {self.strike}")
        self.require(self.x_low > 0, f"x_low must be > 0 (asset prices), got {self.x_low}")
        self.require(self.x_high > self.x_low, f"x_high must exceed x_low, got {self.x_high}")
        sigma = self.sigma if isinstance(self.sigma, tuple) else (self.sigma,)
        self.require(
            isinstance(self.sigma, float) or len(sigma) == self.dim,
            f"sigma has {len(sigma)} entries, dim is {self.dim}",
        )
        self.require(all(s >= 0 for s in sigma), f"sigma must be ≥ 0, got {self.sigma}")
        _ = self._factor  # validates rho

    @property
    def exchangeable(self) -> bool:
        """The payoffs are symmetric; the dynamics are when σ and ρ are scalars."""
        return isinstance(self.sigma, float) and isinstance(self.rho, float)

    # --- coefficients ------------------------------------------------------------------
    @functools.cached_property
    def _sigma(self) -> Tensor:
        return torch.as_tensor(self.sigma, dtype=torch.float64).expand(self.dim).clone()

    @functools.cached_property
    def _factor(self) -> Tensor:
        """C with C Cᵀ = ρ (eigen-factor, so semi-definite ρ is allowed)."""
        d = self.dim
        if isinstance(self.rho, tuple):
            rho = torch.tensor(self.rho, dtype=torch.float64)
            self.require(rho.shape == (d, d), f"rho must be {d}×{d}, got {tuple(rho.shape)}")
            self.require(bool(torch.allclose(rho, rho.T)), "rho must be symmetric")
            self.require(
                bool(torch.allclose(rho.diagonal(), torch.ones(d, dtype=rho.dtype))),
                "rho must have a unit diagonal",
            )
        else:
            low = -1.0 / (d - 1) if d > 1 else -1.0
            self.require(
                low <= self.rho <= 1.0,
                f"scalar rho must lie in [{low:.4g}, 1] to be a correlation, got {self.rho}",
            )
            rho = torch.full((d, d), float(self.rho), dtype=torch.float64)
            rho.fill_diagonal_(1.0)
        lam, v = torch.linalg.eigh(rho)
        self.require(
            bool(lam.min() > -1e-10),
            f"rho must be positive semi-definite (smallest eigenvalue {float(lam.min()):.3g})",
        )
        return v * lam.clamp_min(0).sqrt()

    def _like(self, t: Tensor, x: Tensor) -> Tensor:
        return t.to(device=x.device, dtype=x.dtype)

    def drift(self, t, x: Tensor) -> Tensor:
        return (self.rate - self.dividend) * x

    def diffusion(self, t, x: Tensor) -> Tensor:
        """σ(x) = diag(σ ⊙ x) C, (n, d, d)."""
        return (self._like(self._sigma, x) * x)[:, :, None] * self._like(self._factor, x)

    def transition(self, t: float, x: Tensor, s: float, xi: Tensor) -> Tensor:
        sigma, h = self._like(self._sigma, x), s - t
        w = xi @ self._like(self._factor, x).T
        growth = self.rate - self.dividend - 0.5 * sigma.square()
        return x * torch.exp(growth * h + sigma * w * math.sqrt(h))

    def mean(self, t: float, x: Tensor, s: float) -> Tensor:
        return x * math.exp((self.rate - self.dividend) * (s - t))

    def check_points(self, x: Tensor) -> None:
        _check_positive(self, x)

    # --- forms -------------------------------------------------------------------------
    def payoff(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    def region(self) -> pl.Box:
        return pl.Box(self.dim, self.x_low, self.x_high)

    def stochastic_form(self) -> pl.StochasticForm:
        return pl.StochasticForm(
            dim=self.dim,
            horizon=self.maturity,
            drift=self.drift,
            diffusion=self.diffusion,
            terminal=self.payoff,
            region=self.region(),
            discount=self.rate,
            x0=(0.5 * (self.x_low + self.x_high),) * self.dim,
            transition=self.transition,
            mean=self.mean,
        )

    def strong_form(self) -> pl.StrongForm:
        """On [0, T] × [x_low, x_high]^d: the payoff at t = T, and, where the price is known,
        the price on the lateral boundary (the truncated domain needs data there)."""
        lateral = {"boundary": pl.Dirichlet(self.exact)} if hasattr(self, "exact") else {}
        domain = pl.SpaceTime(self.region(), 0.0, self.maturity)
        return self.stochastic_form().strong_form(domain, lateral)


@dataclass(frozen=True)
class GeometricBasket(_GBM):
    """A call on the geometric mean of d correlated assets: g(x) = max((Πᵢ xᵢ)^{1/d} − K, 0).

    Exact price: G = (Πᵢ Sᵢ)^{1/d} is a geometric Brownian motion with volatility
    σ_G = √(σᵀρσ)/d and growth rate a = r − q − (1/d)Σᵢ σᵢ²/2 + σ_G²/2, so u is the
    Black–Scholes price of a call on G: u = e^{−rτ} [F N(d₁) − K N(d₂)], F = G e^{aτ}, d₁ = (ln(F/K) + σ_G²τ/2)/(σ_G√τ),
    d₂ = d₁ − σ_G√τ, τ = T − t. A standard test of high-dimensional pricing (e.g. Beck et al.
    2021 use options on d assets over [90, 110]^d; the geometric mean makes the truth exact).
    """

    id = "bs-geometric-basket"

    def payoff(self, x: Tensor) -> Tensor:
        return (torch.log(x).mean(dim=1).exp() - self.strike).clamp_min(0.0)

    def exact(self, tx: Tensor) -> Tensor:
        """u(t, x) for points (n, 1 + d), t in column 0 (t < T; t = T gives the payoff)."""
        t, x = tx[:, 0], tx[:, 1:]
        _check_positive(self, x)
        sigma = self._sigma.to(x)
        rho = self._factor.to(x) @ self._factor.to(x).T
        var = float(sigma @ rho @ sigma) / self.dim**2  # σ_G²
        growth = self.rate - self.dividend - 0.5 * float(sigma.square().mean()) + 0.5 * var
        tau = (self.maturity - t).clamp_min(1e-12)
        g = torch.log(x).mean(dim=1).exp()
        forward = g * torch.exp(growth * tau)
        vol = math.sqrt(max(var, 1e-300)) * tau.sqrt()
        d1 = (torch.log(forward / self.strike) + 0.5 * vol.square()) / vol
        price = forward * torch.special.ndtr(d1) - self.strike * torch.special.ndtr(d1 - vol)
        return torch.exp(-self.rate * tau) * price


@dataclass(frozen=True)
class ImpliedVolatility(GeometricBasket):
    """Inverse problem, the calibration of volatilities: the volatility of d correlated
    assets is unknown and is recovered from option prices at given (t, S) (the finance
    user's inverse problem), with the Black–Scholes equation of the module docstring and the
    payoff at maturity as the only other data.

    - ``per_asset=False``: one σ for every asset, from ``n_data`` prices of the geometric
      basket call (the closed form of bs-geometric-basket). The equation reads
      ½ σ² tr(diag(x) ρ diag(x) ∇²u), so the residual is affine in σ².
    - ``per_asset=True``: σ = (σ₁ … σ_d) (the parameter ``sigma``, a list of d values, is
      the truth), from the prices of the d single-asset calls max(x_k − K, 0) (Black–Scholes
      1973 in closed form), one output each. Geometric basket prices alone could not do it:
      they depend on σ only through σᵀρσ and Σᵢ σᵢ² (bs-geometric-basket's formula).

    Prices at ``n_data`` uniform points of [0, T) × [x_low, x_high]^d (seed ``data_seed``),
    with Gaussian noise of ``noise`` times the standard deviation of the clean prices. σ is
    log-parametrised, starting at 0.5. A test problem written for pinnlab.
    """

    id = "bs-implied-vol"
    extra_metric_names = ("sigma_max_error",)
    dim: int = 5
    per_asset: bool = False
    n_data: int = 1000
    noise: float = 0.0
    data_seed: int = 0

    def check(self):
        super().check()
        check_synthetic(self)
        self.require(
            self.per_asset or isinstance(self.sigma, float),
            "one sigma (a number) unless per_asset=true",
        )
        self.require(
            all(s > 0 for s in (self.sigma if isinstance(self.sigma, tuple) else (self.sigma,))),
            f"sigma must be > 0 (it is recovered in log form), got {self.sigma}",
        )

    @property
    def exchangeable(self) -> bool:
        return False

    def exact(self, tx: Tensor) -> Tensor:
        """The basket price (n,), or with ``per_asset`` the d call prices (n, d)."""
        if not self.per_asset:
            return super().exact(tx)
        t, x = tx[:, :1], tx[:, 1:]
        _check_positive(self, x)
        sigma = self._sigma.to(x)
        tau = (self.maturity - t).clamp_min(1e-12)
        vol = sigma * tau.sqrt()
        carry = self.rate - self.dividend
        d1 = (torch.log(x / self.strike) + (carry + 0.5 * sigma.square()) * tau) / vol
        spot = x * torch.exp(-self.dividend * tau) * torch.special.ndtr(d1)
        return spot - self.strike * torch.exp(-self.rate * tau) * torch.special.ndtr(d1 - vol)

    def payoff(self, x: Tensor) -> Tensor:
        if not self.per_asset:
            return super().payoff(x)
        return (x - self.strike).clamp_min(0.0)

    def observations(self) -> pl.Observations:
        """Prices at ``n_data`` uniform points of [0, 0.99 T] × region (before maturity, where
        they are smooth), with the stated noise."""
        before = pl.SpaceTime(self.region(), 0.0, 0.99 * self.maturity)
        return pl.Observations.sample(
            before, self.exact, self.n_data, noise=self.noise, seed=self.data_seed
        )

    def strong_form(self) -> pl.StrongForm:
        d, carry = self.dim, self.rate - self.dividend

        def residual(dv):
            x = dv.x
            sigma = dv.unknown("sigma")
            factor = self._like(self._factor, x)
            if self.per_asset:  # tr(diag(σx) ρ diag(σx) ∇²u)
                second = dv.trace((sigma * x)[:, :, None] * factor)
            else:
                second = sigma.square() * dv.trace(x[:, :, None] * factor)
            grad = dv.grad if self.per_asset else dv.grad[:, None, :]
            drift = carry * (grad * x[:, None, :]).sum(dim=-1)
            drift = drift if self.per_asset else drift[:, 0]
            return dv.dt + drift + 0.5 * second - self.rate * dv.u

        domain = pl.SpaceTime(self.region(), 0.0, self.maturity)
        init = [0.5] * d if self.per_asset else 0.5
        truth = list(self.sigma) if isinstance(self.sigma, tuple) else self.sigma
        if self.per_asset and not isinstance(truth, list):
            truth = [truth] * d
        return pl.StrongForm(
            domain=domain,
            residual=residual,
            conditions={"final": pl.Dirichlet(lambda y: self.payoff(y[:, 1:]), on="final")},
            outputs=d if self.per_asset else 1,
            unknowns=[pl.Unknown("sigma", init=init, positive=True, exact=truth)],
            observations=[self.observations()],
        )

    def extra_metrics(self, solution) -> dict[str, float]:
        """``sigma_max_error``: the largest relative error of one σᵢ (the truth is ``sigma``;
        no form is built, so no data are drawn, at each evaluation)."""
        true = self._sigma if self.per_asset else torch.tensor(float(self.sigma))
        got = torch.as_tensor(solution.unknown("sigma"), dtype=torch.float64)
        return {"sigma_max_error": float(((got - true).abs() / true).max())}


@dataclass(frozen=True)
class _MonteCarloGBM(_GBM):
    """A GBM basket option without a closed form: a Monte Carlo reference (antithetic
    variates, exact law, ``REFERENCE_PATHS`` paths) at ``REFERENCE_POINTS`` fixed points of
    the domain of interest at t = 0, with standard errors, cached on disk."""

    def reference(self) -> pl.Reference:
        form = self.stochastic_form()
        x = form.region.sample_interior(
            REFERENCE_POINTS,
            generator=torch.Generator().manual_seed(REFERENCE_SEED),
            dtype=torch.float64,
        )

        def compute():
            g = torch.Generator().manual_seed(REFERENCE_SEED + 1)
            value, stderr = montecarlo.price(form, 0.0, x, REFERENCE_PATHS, g)
            return {"value": value.numpy(), "stderr": stderr.numpy()}

        key = {
            "problem": str(self),
            "points": REFERENCE_POINTS,
            "paths": REFERENCE_PATHS,
            "seed": REFERENCE_SEED,
            "version": 1,
        }
        arrays = montecarlo.cached(key, compute)
        return pl.Reference(
            t=0.0,
            x=x,
            value=torch.from_numpy(arrays["value"]),
            stderr=torch.from_numpy(arrays["stderr"]),
            source=f"Monte Carlo, {REFERENCE_PATHS} antithetic paths per point, exact law",
        )


@dataclass(frozen=True)
class BasketCall(_MonteCarloGBM):
    """A call on the arithmetic mean of d correlated assets: g(x) = max((1/d)Σᵢ xᵢ − K, 0).
    No closed form; reference prices by Monte Carlo (see the module docstring)."""

    id = "bs-basket-call"

    def payoff(self, x: Tensor) -> Tensor:
        return (x.mean(dim=1) - self.strike).clamp_min(0.0)


@dataclass(frozen=True)
class MaxCall(_MonteCarloGBM):
    """A call on the maximum of d correlated assets: g(x) = max(maxᵢ xᵢ − K, 0).
    No closed form for d > 2; reference prices by Monte Carlo (see the module docstring).
    (Beck et al. 2021 price such options; Becker, Cheridito & Jentzen 2019 the Bermudan kind.)"""

    id = "bs-max-call"

    def payoff(self, x: Tensor) -> Tensor:
        return (x.max(dim=1).values - self.strike).clamp_min(0.0)


@dataclass(frozen=True)
class DefaultRisk(pl.Problem):
    """Nonlinear Black–Scholes equation with default risk (Han, Jentzen & E, PNAS 115 (2018)
    8505, §"Nonlinear Black–Scholes equation with default risk"; model of Duffie, Schroder &
    Skiadas 1996 and Bender, Schweizer & Zhuo 2017).

        ∂ₜu + μ̄ x·∇u + ½ σ̄² Σᵢ xᵢ² ∂ᵢᵢu − (1 − δ) Q(u) u − R u = 0,  u(T, x) = minᵢ xᵢ,

    d independent assets dXᵢ = μ̄ Xᵢ dt + σ̄ Xᵢ dWᵢ; the value is reduced by the default
    intensity Q(u), piecewise linear: γʰ for u < vʰ, γˡ for u ≥ vˡ, linear in between.
    Published reference u(0, x₀ = (100, …, 100)) = 57.300 at d = 100 (computed by the
    multilevel Picard method; Han et al. report 57.046 by deep BSDE, rel. error 0.46 %).
    The reference applies to the default parameters only.
    """

    id = "bs-default-risk"
    dims = "d ≥ 1 (the reference: d = 100)"
    dim: int = 100
    mu_bar: float = 0.02
    sigma_bar: float = 0.2
    delta: float = 2.0 / 3.0
    R: float = 0.02
    gamma_h: float = 0.2
    gamma_l: float = 0.02
    v_h: float = 50.0
    v_l: float = 70.0
    maturity: float = 1.0
    x0: float = 100.0
    x_low: float = 90.0
    x_high: float = 110.0

    def check(self):
        self.require(self.sigma_bar >= 0, f"sigma_bar must be ≥ 0, got {self.sigma_bar}")
        self.require(-1.0 <= self.R <= 1.0, f"R (the rate) must lie in [-1, 1], got {self.R}")
        self.require(self.maturity > 0, f"maturity must be > 0, got {self.maturity}")
        self.require(self.v_l > self.v_h, f"v_l must exceed v_h, got {self.v_l} ≤ {self.v_h}")
        self.require(self.x0 > 0 and self.x_low > 0, "x0 and x_low must be > 0 (asset prices)")
        self.require(self.x_high > self.x_low, f"x_high must exceed x_low, got {self.x_high}")

    def intensity(self, y: Tensor) -> Tensor:
        """Q(y): γʰ below vʰ, γˡ above vˡ, linear in between."""
        slope = (self.gamma_h - self.gamma_l) / (self.v_h - self.v_l)
        return (self.gamma_h + slope * (y - self.v_h)).clamp(self.gamma_l, self.gamma_h)

    def nonlinearity(self, t, x, y: Tensor, z: Tensor) -> Tensor:
        return -(1.0 - self.delta) * self.intensity(y) * y

    def transition(self, t: float, x: Tensor, s: float, xi: Tensor) -> Tensor:
        h = s - t
        return x * torch.exp(
            (self.mu_bar - 0.5 * self.sigma_bar**2) * h + self.sigma_bar * math.sqrt(h) * xi
        )

    def stochastic_form(self) -> pl.StochasticForm:
        sigma = self.sigma_bar
        return pl.StochasticForm(
            dim=self.dim,
            horizon=self.maturity,
            drift=lambda t, x: self.mu_bar * x,
            diffusion=lambda t, x: torch.diag_embed(sigma * x),
            terminal=lambda x: x.min(dim=1).values,
            region=pl.Box(self.dim, self.x_low, self.x_high),
            discount=self.R,
            nonlinearity=self.nonlinearity,
            x0=(self.x0,) * self.dim,
            transition=self.transition,
            mean=lambda t, x, s: x * math.exp(self.mu_bar * (s - t)),
        )

    def strong_form(self) -> pl.StrongForm:
        """On [0, T] × [x_low, x_high]^d with the terminal condition only (no lateral data is
        known: collocation here is an extrapolation, the stochastic form is the natural one)."""
        form = self.stochastic_form()
        return form.strong_form(pl.SpaceTime(form.region, 0.0, self.maturity))

    def check_points(self, x: Tensor) -> None:
        _check_positive(self, x)

    def reference(self) -> pl.Reference | None:
        """The published value at x₀, for the default parameters only (else None)."""
        if self != DefaultRisk():
            return None
        return pl.Reference(
            t=0.0,
            x=torch.full((1, self.dim), self.x0, dtype=torch.float64),
            value=torch.tensor([57.300], dtype=torch.float64),
            stderr=torch.zeros(1, dtype=torch.float64),
            source="Han, Jentzen & E (2018), multilevel Picard",
        )
