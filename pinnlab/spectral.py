"""Periodic 1-d evolution equations u_t = L u + N(t, u), by ETDRK4 on a Fourier grid.

    u_t = L u + N(t, u),   x ∈ [−L, L) periodic,   t ∈ [0, T],   u real,

with L diagonal in Fourier space (∂ₜû_k = L(k) û_k: ε∂ₓ² ↦ −εk², −δ²∂ₓ³ ↦ iδ²k³) and N the
rest, evaluated on the grid (pseudo-spectrally).

**Time stepping.** The exponential time-differencing Runge–Kutta scheme of order 4 (ETDRK4)
of Cox & Matthews, J. Comput. Phys. 176 (2002) 430: the linear part is integrated exactly
(factors e^{hL}, e^{hL/2}), the nonlinear part by a fourth-order quadrature of the
variation-of-constants formula. Its coefficients, h⁻²L⁻³[−4 − hL + e^{hL}(4 − 3hL + h²L²)] and
two more, lose every digit to cancellation for small |hL|; they are evaluated as Kassam &
Trefethen, SIAM J. Sci. Comput. 26 (2005) 1214, propose: as means over a circle of radius 1
around each hL in the complex plane (``CONTOUR_POINTS`` points; the trapezoidal rule
converges geometrically for these entire functions). With the linear part exact, the stiff
diffusion or dispersion sets no stability limit; the step is bounded by the nonlinear part.

**Grid and modes.** n points x_j = −L + 2Lj/n; û = rfft(u)/n, the modes 0 ≤ m ≤ n/2 of
wavenumber k = πm/L. The Nyquist mode (even n) has no unique derivative and is kept at 0.
``dealias`` applies Orszag's 2/3 rule: N̂ (and the data) keep only m ≤ n/3, so the products of
a quadratic nonlinearity alias into no kept mode (a cubic one would need the 1/2 rule). The
modes the rule removes stay exactly 0 and are not stored.

**A known part.** Data with a kink (a jump J of u_x at x = ±L) have Fourier coefficients that
decay like m⁻²: n grid points reproduce them off the grid only to about 2|J|/(π²n) (4e-4
for J = 4, n = 2048). An exact solution g of the *linear* equation g_t = L g that carries the
kink (a ``KnownPart``: ``HeatKink``, the heat flow of a periodic parabola, in closed
form) is then split off: u = g + v, and v_t = L v + N(t, g + v) is solved from the smoother
data u(0) − g(0).

**Evaluation anywhere.** ``PeriodicSolution`` keeps v̂ and ∂ₜv̂ = L v̂ + N̂(t, g + v) (the
equation itself) at equispaced saved times. At (t, x) it takes, for each mode, the cubic
Hermite interpolant in t of the values and derivatives at the two saved times around t, sums
the Fourier series at x (the trigonometric interpolant: spectral in x) and adds g(t, x). As a
torch function (``PeriodicSolution.torch``) it gives every t- and x-derivative of this
interpolant by autograd. At the saved times u_t is the equation's own and continuous; between
them the Hermite error in ∂ₜv̂ is at most √3Δt³/216 max|∂ₜ⁴v̂| (Δt the saving interval).

**Accuracy measured** (``tests/test_spectral.py``; problems/periodic.py states the figures of
its two problems): order 4 by regression slope on a forced stiff heat equation (|hL| up to
10) and on a KdV soliton (dispersion in a complex L, dealiased); on viscous Burgers halving
h makes the change of the solution 15–16 times smaller; the contour coefficients agree with
their φ-function series and closed forms to 1e-13; ``HeatKink`` agrees with the
parabola's Fourier series to 1e-12; the interpolant's x-derivatives (to the third) equal the
spectral derivatives at the saved times to 1e-11 of their size.
"""

from __future__ import annotations

import functools
import math
import typing
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from .errors import AccuracyWarning, ParameterError
from .schrodinger import fingerprint, grid, wavenumbers

#: Points on the circle |z − hL| = 1 over which the ETDRK4 coefficients are averaged. Kassam &
#: Trefethen's codes take 16 on the upper half circle, enough for real L (values at conjugate
#: points are conjugate); the full circle serves complex L (dispersion) as well.
CONTOUR_POINTS = 64
#: ``periodic_reference`` warns (AccuracyWarning) when the top tenth of the kept modes
#: holds more than this fraction of the largest coefficient: too few modes.
RESOLVED = 1e-7
#: Points evaluated at once (each holds a few (n, modes) arrays).
CHUNK = 512
#: ``HeatKink`` adds the images of its kinks at ±3L once σ > L/IMAGES_FROM (before, they
#: change g by less than σφ(2·IMAGES_FROM), 0 in float64).
IMAGES_FROM = 16

#: L(k) for the wavenumbers k ≥ 0 of the modes: (modes,) -> (modes,), real or complex.
Linear = Callable[[np.ndarray], np.ndarray]
#: N̂ at time t from the grid values of u (n,): the spectrum (n//2 + 1,), rfft(·)/n convention.
Nonlinear = Callable[[float, np.ndarray], np.ndarray]


def rwavenumbers(n: int, half_width: float) -> np.ndarray:
    """Wavenumbers k = πm/L ≥ 0 of the rfft modes m = 0 … n//2 on a period 2L: (n//2 + 1,)."""
    return np.abs(wavenumbers(n, half_width)[: n // 2 + 1])


def spectrum(u: np.ndarray) -> np.ndarray:
    """û = rfft(u)/n of grid values u (..., n): (..., n//2 + 1)."""
    return np.fft.rfft(u, axis=-1) / u.shape[-1]


def values(c: np.ndarray, n: int) -> np.ndarray:
    """Grid values (..., n) of a spectrum c (..., ≤ n//2 + 1) (missing top modes are 0)."""
    return np.fft.irfft(c * n, n, axis=-1)


def _mask(n: int, dealias: bool) -> np.ndarray:
    """The modes kept: all but the Nyquist mode of an even n; with ``dealias``, m ≤ n/3."""
    m = np.arange(n // 2 + 1)
    return m <= n // 3 if dealias else (2 * m < n)


def etdrk4_coefficients(hl: np.ndarray, points: int = CONTOUR_POINTS) -> tuple[np.ndarray, ...]:
    """The ETDRK4 coefficients (e^z, e^{z/2}, Q, f₁, f₂, f₃) at z = hL (modes,), h-free:

        Q = (e^{z/2} − 1)/z,             f₁ = (−4 − z + e^z(4 − 3z + z²))/z³,
        f₂ = (2 + z + e^z(z − 2))/z³,     f₃ = (−4 − 3z − z² + e^z(4 − z))/z³

    (the step multiplies the last four by h), each the mean over ``points`` points of the
    circle of radius 1 around z (Kassam & Trefethen 2005: the mean of an analytic function
    over a circle is its value at the centre, computed without cancellation). Real z gives
    real coefficients.
    """
    hl = np.asarray(hl)
    r = np.exp(2j * np.pi * (np.arange(points) + 0.5) / points)
    z = hl[:, None] + r[None, :]
    ez = np.exp(z)
    q = np.mean((np.exp(z / 2) - 1) / z, axis=1)
    f1 = np.mean((-4 - z + ez * (4 - 3 * z + z * z)) / z**3, axis=1)
    f2 = np.mean((2 + z + ez * (z - 2)) / z**3, axis=1)
    f3 = np.mean((-4 - 3 * z - z * z + ez * (4 - z)) / z**3, axis=1)
    out = (np.exp(hl), np.exp(hl / 2), q, f1, f2, f3)
    return tuple(c.real for c in out) if np.isrealobj(hl) else out


class KnownPart(typing.Protocol):
    """An exact solution g of the linear equation g_t = L g, split off the computed part."""

    def values(self, t: float | np.ndarray, x: np.ndarray) -> np.ndarray:
        """g at t and x (broadcast), float64 numpy."""
        ...

    def torch(self, t: Tensor, x: Tensor) -> Tensor:
        """g at tensors t and x of one shape, differentiable in both."""
        ...


@dataclass(frozen=True)
class HeatKink:
    """g = e^{εt∂ₓ²} s: the heat flow of the periodic extension s of a(x² − L²/3), |x| ≤ L,
    a = −J/(4L), whose slope jumps by J = s_x(−L⁺) − s_x(L⁻) at x = ±L (smooth elsewhere).

    On the line s = a(x² − L²/3) + J Σ_{j≥0} [(x − (2j+1)L)₊ + (−(2j+1)L − x)₊], and the heat
    flow (variance σ² = 2εt) takes x² to x² + σ² and a ramp y₊ to R(y) = yΦ(y/σ) + σφ(y/σ)
    (Φ, φ the standard normal distribution and density). For x reduced to [−L, L) the ramps
    at ±L are kept, those at ±3L once σ > L/``IMAGES_FROM``; the farther ones change g by
    less than σφ(4L/σ), below 1e-17 while σ ≤ L/2, the range allowed.
    """

    half_width: float
    jump: float
    diffusion: float

    def _check(self, largest_sigma: float) -> None:
        if largest_sigma > self.half_width / 2:
            raise ParameterError(
                f"HeatKink holds while √(2εt) ≤ L/2 = {self.half_width / 2:g}, "
                f"got {largest_sigma:g}: shorten the horizon or split off no kink."
            )

    def values(self, t: float | np.ndarray, x: np.ndarray) -> np.ndarray:
        """g at t and x (broadcast), float64 numpy; t = 0 gives s itself."""
        from scipy.special import ndtr

        L, J, eps = self.half_width, self.jump, self.diffusion
        t, x = np.broadcast_arrays(np.asarray(t, dtype=float), np.asarray(x, dtype=float))
        x = x - 2 * L * np.floor((x + L) / (2 * L))
        var = 2 * eps * t
        sigma = np.sqrt(var)
        self._check(float(sigma.max(initial=0.0)))
        safe = np.where(sigma > 0, sigma, 1.0)

        def ramp(y):
            z = y / safe
            smooth = y * ndtr(z) + safe * np.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)
            return np.where(sigma > 0, smooth, np.maximum(y, 0.0))

        ramps = ramp(x - L) + ramp(-L - x)
        if sigma.max(initial=0.0) > L / IMAGES_FROM:
            ramps = ramps + ramp(x - 3 * L) + ramp(-3 * L - x)
        return -J / (4 * L) * (x * x + var - L * L / 3) + J * ramps

    def torch(self, t: Tensor, x: Tensor) -> Tensor:
        """g at tensors t and x of one shape, differentiable in both (for t > 0; at t = 0 the
        values of s, with the slope of either side at the kink)."""
        L, J, eps = self.half_width, self.jump, self.diffusion
        x = x - 2 * L * torch.floor((x.detach() + L) / (2 * L))
        var = 2 * eps * t
        positive = var > 0
        sigma = torch.sqrt(torch.where(positive, var, torch.ones_like(var)))
        largest = float((sigma * positive).detach().max()) if sigma.numel() else 0.0
        self._check(largest)

        def ramp(y):
            z = y / sigma
            smooth = y * torch.special.ndtr(z) + sigma * torch.exp(-0.5 * z * z) / math.sqrt(
                2 * math.pi
            )
            return torch.where(positive, smooth, torch.relu(y))

        ramps = ramp(x - L) + ramp(-L - x)
        if largest > L / IMAGES_FROM:
            ramps = ramps + ramp(x - 3 * L) + ramp(-3 * L - x)
        return -J / (4 * L) * (x * x + var - L * L / 3) + J * ramps


def etdrk4(
    v0: np.ndarray,
    half_width: float,
    linear: Linear,
    nonlinear: Nonlinear,
    *,
    horizon: float,
    steps: int,
    save_every: int = 1,
    dealias: bool = False,
    known: KnownPart | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Solve v_t = L v + N(t, g + v) from grid values v0 (n,) at ``grid`` points to
    t = horizon in ``steps`` ETDRK4 steps (g = ``known``, else 0).

    Returns (times (m,), spectra (m, n//2 + 1), rates (m, n//2 + 1)) at every
    ``save_every``-th step, t = 0 first: v̂ and ∂ₜv̂ = L v̂ + N̂ (masked: see the module
    docstring).
    """
    if steps < 1 or save_every < 1 or steps % save_every:
        raise ParameterError(
            f"steps ({steps}) must be a positive multiple of save_every ({save_every})."
        )
    for name, value in (("half_width", half_width), ("horizon", horizon)):
        if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
            raise ParameterError(f"{name} must be a finite number > 0, got {value!r}.")
    v0 = np.asarray(v0, dtype=float)
    n = v0.shape[-1]
    if v0.ndim != 1 or n < 4:
        raise ParameterError(f"initial values must have shape (n,) with n ≥ 4, got {v0.shape}.")
    k = rwavenumbers(n, half_width)
    keep = _mask(n, dealias)
    lin = np.asarray(linear(k))
    if lin.shape != k.shape or not np.all(np.isfinite(lin)):
        raise ParameterError(
            f"linear(k) must give finite values of shape {k.shape}, got shape {lin.shape}."
        )
    h = horizon / steps
    E, E2, Q, f1, f2, f3 = (c * keep for c in etdrk4_coefficients(h * lin))
    Q, f1, f2, f3 = h * Q, h * f1, h * f2, h * f3
    x = grid(n, half_width)

    memo: dict[float, np.ndarray] = {}  # g at the last stage times (each is used twice)

    def nl(t: float, c: np.ndarray) -> np.ndarray:
        u = values(c, n)
        if known is not None:
            if t not in memo:
                if len(memo) > 2:
                    memo.pop(min(memo))
                memo[t] = known.values(t, x)
            u = u + memo[t]
        out = np.asarray(nonlinear(t, u))
        if out.shape != k.shape:
            raise ParameterError(
                f"nonlinear(t, u) must give a spectrum of shape {k.shape}, got {out.shape}."
            )
        return out * keep

    c = spectrum(v0) * keep
    nc = nl(0.0, c)
    spectra, rates = [c], [lin * c + nc]
    for i in range(steps):
        t, mid, end = i * h, (i + 0.5) * h, (i + 1) * h
        nc = nl(t, c) if nc is None else nc
        a = E2 * c + Q * nc
        na = nl(mid, a)
        b = E2 * c + Q * na
        nb = nl(mid, b)
        d = E2 * a + Q * (2 * nb - nc)
        nd = nl(end, d)
        c = E * c + f1 * nc + 2 * f2 * (na + nb) + f3 * nd
        nc = None
        if (i + 1) % save_every == 0:
            nc = nl(end, c)  # the next step's first stage, too
            spectra.append(c)
            rates.append(lin * c + nc)
    times = np.linspace(0.0, horizon, steps // save_every + 1)
    top = int(np.flatnonzero(keep)[-1]) + 1
    return times, np.stack(spectra)[:, :top], np.stack(rates)[:, :top]


def _hermite(s):
    """The cubic Hermite basis (h₀₀, h₁₀, h₀₁, h₁₁) at s ∈ [0, 1] (numpy or torch)."""
    s2 = s * s
    s3 = s2 * s
    return 2 * s3 - 3 * s2 + 1, s3 - 2 * s2 + s, 3 * s2 - 2 * s3, s3 - s2


@dataclass(frozen=True, eq=False)
class PeriodicSolution:
    """A computed solution u = g + v: v̂ (``spectra``, (m, M), the rfft modes 0 … M − 1 of an
    n-point grid, û = rfft(u)/n) and ∂ₜv̂ (``rates``) at equispaced ``times`` (m,), and the
    known part g (``known``, or None). Evaluation: see the module docstring.
    """

    half_width: float
    modes: int
    times: np.ndarray
    spectra: np.ndarray
    rates: np.ndarray
    known: KnownPart | None = None

    @property
    def k(self) -> np.ndarray:
        """Wavenumbers of the stored modes: (M,)."""
        return rwavenumbers(self.modes, self.half_width)[: self.spectra.shape[1]]

    @property
    def weights(self) -> np.ndarray:
        """u = Σ w_m Re(û_m e^{ik_m(x+L)}): w = 1 for m = 0 (and the Nyquist mode), else 2."""
        m = np.arange(self.spectra.shape[1])
        return np.where((m == 0) | (2 * m == self.modes), 1.0, 2.0)

    def grid_values(self) -> np.ndarray:
        """u at the saved times on the n grid points: (m, n)."""
        v = values(self.spectra, self.modes)
        if self.known is None:
            return v
        return v + self.known.values(self.times[:, None], grid(self.modes, self.half_width))

    def _locate(self, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The interval index j (t_j ≤ t ≤ t_{j+1}) and s = (t − t_j)/Δt of each time."""
        t0, t1 = self.times[0], self.times[-1]
        if t.size and (t.min() < t0 - 1e-12 or t.max() > t1 + 1e-12):
            raise ParameterError(
                f"times must lie in [{t0:g}, {t1:g}], got [{t.min():g}, {t.max():g}]."
            )
        spacing = (t1 - t0) / (len(self.times) - 1)
        j = np.clip(np.floor((t - t0) / spacing).astype(int), 0, len(self.times) - 2)
        return j, (t - self.times[j]) / spacing

    def coefficients(self, t: np.ndarray) -> np.ndarray:
        """v̂ at times t (n,), by cubic Hermite interpolation: (n, M) complex."""
        t = np.asarray(t, dtype=float)
        j, s = self._locate(t)
        spacing = self.times[1] - self.times[0]
        h00, h10, h01, h11 = (b[:, None] for b in _hermite(s))
        return (
            h00 * self.spectra[j]
            + h10 * spacing * self.rates[j]
            + h01 * self.spectra[j + 1]
            + h11 * spacing * self.rates[j + 1]
        )

    def on_grid(self, t: np.ndarray, x: np.ndarray) -> np.ndarray:
        """u on the grid t (a,) × x (b,): (a, b)."""
        t, x = np.asarray(t, dtype=float), np.asarray(x, dtype=float)
        phase = np.exp(1j * np.outer(self.k, x + self.half_width)) * self.weights[:, None]
        out = (self.coefficients(t) @ phase).real
        return out if self.known is None else out + self.known.values(t[:, None], x[None, :])

    def __call__(self, t, x) -> np.ndarray:
        """u(t, x) at arrays t and x of one shape (float64 numpy)."""
        t, x = np.broadcast_arrays(np.asarray(t, dtype=float), np.asarray(x, dtype=float))
        out = np.empty(t.shape)
        flat_t, flat_x, flat = t.ravel(), x.ravel(), out.reshape(-1)
        k, w = self.k, self.weights
        for s in range(0, flat_t.size, CHUNK):
            sl = slice(s, s + CHUNK)
            phase = np.exp(1j * (flat_x[sl, None] + self.half_width) * k)
            flat[sl] = (self.coefficients(flat_t[sl]) * phase * w).sum(axis=1).real
        if self.known is not None:
            out = out + self.known.values(t, x)
        return out

    def torch(self, tx: Tensor) -> Tensor:
        """u at points tx (n, 2) = (t, x): (n,), differentiable (every t- and x-derivative of
        the interpolant)."""
        parts = [self._torch_chunk(c) for c in tx.split(CHUNK)]
        return torch.cat(parts) if parts else tx.new_zeros(0)

    @functools.cached_property
    def _table(self) -> np.ndarray:
        """(w Re v̂, w Im v̂) and Δt·(w Re ∂ₜv̂, w Im ∂ₜv̂) at each saved time: (m, 2, 2M)."""
        spacing = self.times[1] - self.times[0]
        w = self.weights
        value = np.concatenate([self.spectra.real * w, self.spectra.imag * w], axis=-1)
        rate = spacing * np.concatenate([self.rates.real * w, self.rates.imag * w], axis=-1)
        return np.ascontiguousarray(np.stack([value, rate], axis=1))

    def _torch_chunk(self, tx: Tensor) -> Tensor:
        t, x = tx[:, 0].double(), tx[:, 1].double()
        j, _ = self._locate(t.detach().cpu().numpy())
        as_t = dict(dtype=torch.float64, device=tx.device)
        # The Hermite data (c_j, Δt ċ_j, c_{j+1}, Δt ċ_{j+1}) of each point: (n, 4, 2M).
        data = torch.as_tensor(np.concatenate([self._table[j], self._table[j + 1]], axis=1), **as_t)
        spacing = float(self.times[1] - self.times[0])
        s = (t - torch.as_tensor(self.times[j], **as_t)) / spacing
        c = torch.bmm(torch.stack(_hermite(s), dim=1)[:, None, :], data)[:, 0]  # (n, 2M)
        theta = (x[:, None] + self.half_width) * torch.as_tensor(self.k, **as_t)
        modes = theta.shape[1]
        out = (c[:, :modes] * torch.cos(theta)).sum(dim=1) - (c[:, modes:] * torch.sin(theta)).sum(
            dim=1
        )
        if self.known is not None:
            out = out + self.known.torch(t, x)
        return out.to(tx.dtype)


def periodic_reference(
    initial: Callable[[np.ndarray], np.ndarray],
    linear: Linear,
    nonlinear: Nonlinear,
    *,
    equation: Mapping,
    half_width: float,
    horizon: float,
    modes: int,
    steps: int,
    save_every: int = 1,
    dealias: bool = False,
    known: KnownPart | None = None,
    cache: bool = True,
) -> PeriodicSolution:
    """Solve u_t = L u + N(t, u) from u(0, x) = initial(x) on [−L, L) periodic (ETDRK4 on
    ``modes`` grid points, ``steps`` steps, every ``save_every``-th saved).

    ``equation`` names the equation and its parameters (``linear`` and ``nonlinear`` are
    functions and cannot key a cache). With ``cache``, the saved spectra are kept on disk
    ($PINNLAB_CACHE, else ~/.cache/pinnlab), keyed by ``equation``, the initial data and every
    setting; a damaged file is recomputed.
    """
    from .montecarlo import cached

    x = grid(modes, half_width)
    u0 = np.asarray(initial(x), dtype=float)
    v0 = u0 if known is None else u0 - known.values(0.0, x)

    def compute() -> dict[str, np.ndarray]:
        times, spectra, rates = etdrk4(
            v0,
            half_width,
            linear,
            nonlinear,
            horizon=horizon,
            steps=steps,
            save_every=save_every,
            dealias=dealias,
            known=known,
        )
        return {"times": times, "spectra": spectra, "rates": rates}

    key = {
        "kind": "etdrk4",
        "version": 1,
        "equation": dict(equation),
        "known": repr(known),
        "initial": fingerprint(u0),
        "half_width": half_width,
        "horizon": horizon,
        "modes": modes,
        "steps": steps,
        "save_every": save_every,
        "dealias": dealias,
        "contour": CONTOUR_POINTS,
    }
    arrays = cached(key, compute) if cache else compute()
    top = int(np.flatnonzero(_mask(modes, dealias))[-1]) + 1
    expected = (steps // save_every + 1, top)
    if any(
        arrays.get(name) is None or arrays[name].shape != expected for name in ("spectra", "rates")
    ):
        arrays = compute()  # a file from elsewhere under this key: do not trust it
    spectra = np.asarray(arrays["spectra"], dtype=complex)
    tail = np.abs(spectra[:, -max(1, top // 10) :]).max() / max(np.abs(spectra).max(), 1e-300)
    if tail > RESOLVED:
        warnings.warn(
            f"the top tenth of the {modes}-point spectrum holds {tail:.1e} of the solution "
            f"(more than {RESOLVED:g}): the reference is under-resolved; give it more modes.",
            AccuracyWarning,
            stacklevel=2,
        )
    return PeriodicSolution(
        half_width=half_width,
        modes=modes,
        times=np.asarray(arrays["times"], dtype=float),
        spectra=spectra,
        rates=np.asarray(arrays["rates"], dtype=complex),
        known=known,
    )
