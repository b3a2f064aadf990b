"""What training sees: the curvature's spectrum and slices of the loss, for any run.

* ``gauss_newton_spectrum`` -- the eigenvalues of the Gauss–Newton matrix G = JᵀJ of a
  solver's loss (J the Jacobian of the weighted residual rows r with |r|² = L; for an energy,
  its Gram rows, the bilinear form in function space). Its nonzero eigenvalues are those of
  the empirical neural tangent kernel K = J Jᵀ of the residuals (Jacot, Gabriel & Hongler,
  NeurIPS 2018; for PINNs Wang, Yu & Perdikaris, J. Comput. Phys. 449 (2022)): the rates at
  which gradient flow removes each eigen-direction of the residual, so their spread (the
  condition number) says how ill-conditioned the problem training solves is. Dense (the
  smaller of JᵀJ and J Jᵀ, ``torch.linalg.eigvalsh``) up to ``dense_limit``, else the largest
  eigenvalues by Lanczos (``scipy.sparse.linalg.eigsh``) on the products Jᵀ(J v).
* ``loss_slice`` -- the loss along one or two random directions through the weights,
  L(θ + α δ + β η), with the directions *filter-normalised* (Li, Xu, Taylor, Studer &
  Goldstein, "Visualizing the loss landscape of neural nets", NeurIPS 2018): each row of a
  weight matrix (the incoming weights of one neuron) of δ has the norm of that row of θ, so
  that slices of networks at different scales compare; one-dimensional parameters (biases)
  get no direction, as in Li et al.

Both take a solver, its model and a batch (``setting`` builds them for a trained
``Solution``) and leave the weights as they found them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from .gauss_newton import Linearisation, curvature_rows
from .residuals import _vmap_failure, row_jacobian

__all__ = [
    "LossSlice",
    "Spectrum",
    "filter_normalised_direction",
    "gauss_newton_spectrum",
    "loss_slice",
    "setting",
]


def setting(solution, seed: int = 0):
    """(solver, model, batch) of a ``Solution`` (trained, or as ``pinnlab.run.build_run``
    builds it): its solver, its module bound to that solver as it is (``Solver.bind``: a
    solution's module is already what was trained), and one batch of training points drawn
    with ``seed``."""
    device = next(solution.model.parameters()).device
    generator = torch.Generator(device=device).manual_seed(seed)
    model = solution.solver.bind(solution.model)
    return solution.solver, model, solution.solver.batch(model, generator)


def _trained(module: nn.Module) -> list[tuple[str, nn.Parameter]]:
    return [(k, p) for k, p in module.named_parameters() if p.requires_grad]


@dataclass(frozen=True)
class Spectrum:
    """Eigenvalues of the Gauss–Newton matrix, largest first (all of them when ``dense``,
    else the largest ``len(eigenvalues)``), of ``size`` weights and ``rows`` residual rows."""

    eigenvalues: np.ndarray
    size: int
    rows: int
    dense: bool
    trace: float

    def condition(self, rtol: float = 1e-12) -> float:
        """λ_max / λ_min over the eigenvalues above ``rtol``·λ_max (the range of G; dense
        only: Lanczos gives the top of the spectrum)."""
        if not self.dense:
            raise ValueError(
                "the condition number needs the whole spectrum: this one holds the largest "
                f"{len(self.eigenvalues)} eigenvalues only (dense_limit)"
            )
        top = float(self.eigenvalues[0])
        kept = self.eigenvalues[self.eigenvalues > rtol * top]
        return top / float(kept[-1]) if top > 0 else float("nan")

    def rank(self, rtol: float = 1e-6) -> int:
        """The eigenvalues above ``rtol``·λ_max: the directions gradient flow moves at least
        ``rtol`` times as fast as the fastest (the numerical rank at that tolerance)."""
        return int((self.eigenvalues > rtol * self.eigenvalues[0]).sum())

    def effective_rank(self) -> float:
        """exp of the entropy of λ / Σ λ (Roy & Vetterli 2007): how many directions carry the
        curvature (dense only)."""
        if not self.dense:
            raise ValueError("the effective rank needs the whole spectrum (dense_limit)")
        lam = np.clip(self.eigenvalues, 0, None)
        p = lam[lam > 0] / lam.sum()
        return float(np.exp(-(p * np.log(p)).sum()))


def gauss_newton_spectrum(
    solver, model, batch: dict[str, Tensor], *, top: int = 20, dense_limit: int = 4096
) -> Spectrum:
    """The spectrum of G = Σ_k w_k J_kᵀ J_k of ``solver``'s loss at ``model``'s weights on
    ``batch`` (the module docstring states it), in float64. Dense when min(rows, weights) ≤
    ``dense_limit``; past it, the largest ``top`` eigenvalues by Lanczos."""
    weights = solver.weights()
    rows = curvature_rows(solver, model, batch, lambda k: weights.get(k, 1.0))
    module = model.module
    names = [k for k, _ in _trained(module)]
    size = sum(p.numel() for _, p in _trained(module))
    count = sum(len(t.vector(t.rows().detach().unsqueeze(2))) for t, _ in rows.values())
    if min(count, size) <= dense_limit:
        try:
            jac = torch.cat(
                [
                    w**0.5 * t.vector(row_jacobian(module, names, t).double())
                    for t, w in rows.values()
                ]
            ).detach()
        except RuntimeError as error:
            raise _vmap_failure(", ".join(rows), error) from error
        gram = jac @ jac.T if count < size else jac.T @ jac
        eigenvalues = torch.linalg.eigvalsh(gram).flip(0).clamp_min(0).cpu().numpy()
        trace = float(jac.square().sum())
        return Spectrum(eigenvalues, size, count, True, trace)
    from scipy.sparse.linalg import LinearOperator, eigsh

    lin = Linearisation(module, names, rows)
    device = lin.r.device

    def apply(v: np.ndarray) -> np.ndarray:
        x = torch.as_tensor(np.ascontiguousarray(v).ravel(), dtype=torch.float64, device=device)
        return lin.jtu(lin.jv(x)).cpu().numpy()

    operator = LinearOperator((size, size), matvec=apply, dtype=np.float64)
    k = min(top, size - 1)
    eigenvalues = np.sort(eigsh(operator, k=k, which="LA", return_eigenvectors=False))[::-1]
    probe = torch.randn(size, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    trace = float(lin.jv(probe.to(device)).square().sum())  # one Hutchinson sample
    return Spectrum(np.clip(eigenvalues, 0, None), size, count, False, trace)


def filter_normalised_direction(module: nn.Module, generator: torch.Generator) -> list[Tensor]:
    """A Gaussian direction in the trained weights, each row of a matrix (a filter: one
    neuron's incoming weights; of a convolution kernel, one output channel) scaled to the
    norm of that row of the weights; one-dimensional weights get zero (Li et al. 2018)."""
    out = []
    for _, p in _trained(module):
        if p.dim() < 2:
            out.append(torch.zeros_like(p))
            continue
        d = torch.randn(p.shape, generator=generator, dtype=p.dtype, device="cpu").to(p.device)
        rows, weights = d.reshape(len(p), -1), p.detach().reshape(len(p), -1)
        scale = weights.norm(dim=1, keepdim=True) / rows.norm(dim=1, keepdim=True).clamp_min(1e-30)
        out.append((rows * scale).reshape(p.shape))
    return out


@dataclass(frozen=True)
class LossSlice:
    """The loss at θ + α δ (+ β η): ``values`` (len α) for one direction, (len α, len β) for
    two; α = β = 0 is the weights themselves."""

    alphas: np.ndarray
    betas: np.ndarray | None
    values: np.ndarray


def loss_slice(
    solver,
    model,
    batch: dict[str, Tensor],
    *,
    alphas: Sequence[float] = tuple(np.linspace(-1, 1, 21)),
    betas: Sequence[float] | None = None,
    seed: int = 0,
) -> LossSlice:
    """The solver's weighted loss Σ_k w_k L_k on ``batch`` along filter-normalised random
    directions (two when ``betas`` is given), drawn with ``seed``; the weights are restored
    after."""
    generator = torch.Generator().manual_seed(seed)
    params = [p for _, p in _trained(model.module)]
    first = filter_normalised_direction(model.module, generator)
    second = filter_normalised_direction(model.module, generator) if betas is not None else None
    weights = solver.weights()
    start = [p.detach().clone() for p in params]

    def loss_at(a: float, b: float) -> float:
        with torch.no_grad():
            for i, p in enumerate(params):
                p.copy_(start[i] + a * first[i] + (b * second[i] if second is not None else 0))
        terms = solver.loss(model, batch)
        return float(sum(weights.get(k, 1.0) * v for k, v in terms.items()).detach())

    try:
        if betas is None:
            values = np.array([loss_at(a, 0.0) for a in alphas])
        else:
            values = np.array([[loss_at(a, b) for b in betas] for a in alphas])
    finally:
        with torch.no_grad():
            for p, p0 in zip(params, start, strict=True):
                p.copy_(p0)
    return LossSlice(
        np.asarray(alphas, float), None if betas is None else np.asarray(betas, float), values
    )


# --- diagnostics recorded during training (train.diagnostics) --------------------------------


def spectrum_diagnostics(solver, model, batch) -> dict[str, float]:
    """The Gauss–Newton / NTK spectrum at this step: λ_max and tr G; dense also λ_min (over
    the range), the condition number and the effective rank."""
    spectrum = gauss_newton_spectrum(solver, model, batch)
    out = {"spectrum.lambda_max": float(spectrum.eigenvalues[0]), "spectrum.trace": spectrum.trace}
    if spectrum.dense:
        kept = spectrum.eigenvalues[spectrum.eigenvalues > 1e-12 * spectrum.eigenvalues[0]]
        out.update(
            {
                "spectrum.lambda_min": float(kept[-1]),
                "spectrum.condition": spectrum.condition(),
                "spectrum.effective_rank": spectrum.effective_rank(),
                "spectrum.rank_1e-6": float(spectrum.rank(1e-6)),
            }
        )
    return out


#: Nodes per axis of the grid the band errors are measured on, by dimension.
BAND_GRID = {1: 1024, 2: 128}


def band_errors(problem, module: nn.Module) -> dict[str, float]:
    """The relative error per octave pair of wave number, ‖ê_j‖ / ‖û_j‖ over the band
    4^j ≤ |m| < 4^(j+1) (m in cycles per side of the box; the band j = 0 holds m = 0 too),
    from the discrete Fourier transform of the error e = u_net − u and of u on a uniform
    grid of cell centres of the problem's box (d ≤ 2); bands where u has under 10⁻⁸ of its
    energy are left out. The spectral bias of a network shows as the high bands' errors
    falling last (Rahaman et al., ICML 2019)."""
    domain = problem.strong_form().domain
    low, high = (b.double() for b in domain.bounds())
    d = len(low)
    n = BAND_GRID[d]
    axes = [
        low[i] + (torch.arange(n, dtype=torch.float64) + 0.5) / n * (high[i] - low[i])
        for i in range(d)
    ]
    x = torch.stack(torch.meshgrid(*axes, indexing="ij"), -1).reshape(-1, d)
    p = next(module.parameters())
    with torch.no_grad():
        u_net = module(x.to(p)).double().reshape(len(x), -1)[:, 0].cpu()
    u = problem.exact(x).double().reshape(len(x), -1)[:, 0]
    shape = (n,) * d
    error_hat = torch.fft.fftn((u_net - u).reshape(shape))
    u_hat = torch.fft.fftn(u.reshape(shape))
    m = torch.fft.fftfreq(n, 1 / n).abs()
    grid = torch.stack(torch.meshgrid(*([m] * d), indexing="ij"), -1)
    radius = grid.square().sum(-1).sqrt()
    total = float(u_hat.abs().square().sum())
    out, j = {}, 0
    while 4**j <= radius.max():
        band = (radius >= (4**j if j else 0)) & (radius < 4 ** (j + 1))
        energy = float(u_hat[band].abs().square().sum())
        if energy > 1e-8 * total:
            ratio = float(error_hat[band].abs().square().sum()) / energy
            out[f"bands.{4**j if j else 0}-{4 ** (j + 1)}"] = math.sqrt(ratio)
        j += 1
    return out


def feature_angles(problem, module: nn.Module, points: Tensor) -> dict[str, float]:
    """What the network has learned to look at: the principal angles between the span of the
    solution's relevant directions V (``problem.relevant_directions()``, K × d: u depends on
    x through Vx only) and the top-K right singular subspace of the network's gradients ∇u_net
    at ``points`` (its active subspace; Constantine, *Active Subspaces*, SIAM 2015), in
    degrees: ``features.angle_max`` and the mean squared cosine ``features.cos2_mean`` (1:
    the network varies along the solution's directions only)."""
    v = problem.relevant_directions().double()
    k = len(v)
    x = points.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        u = module(x).reshape(len(x), -1)[:, 0]
        (g,) = torch.autograd.grad(u.sum(), x)
    _, _, vh = torch.linalg.svd(g.double().cpu(), full_matrices=False)
    q_net = vh[:k].T
    q_true, _ = torch.linalg.qr(v.T)
    cosines = torch.linalg.svdvals(q_net.T @ q_true).clamp(0, 1)
    return {
        "features.angle_max": float(torch.rad2deg(torch.arccos(cosines.min()))),
        "features.cos2_mean": float(cosines.square().mean()),
    }


def check_diagnostics(names: Sequence[str], solver) -> None:
    """Refuse a diagnostic the run's problem cannot give, before training."""
    from .errors import ConfigError

    problem = solver.problem
    if "bands" in names:
        exact = getattr(problem, "exact", None)
        try:
            domain = problem.strong_form().domain
            low, _ = domain.bounds()
        except (AttributeError, NotImplementedError):
            domain, low = None, ()
        if not callable(exact) or problem.time_dependent or len(low) not in BAND_GRID:
            raise ConfigError(
                f"train.diagnostics bands measures the error per frequency band on a grid of a "
                f"stationary problem with an exact solution in d ≤ 2; {problem.id} (d = "
                f"{problem.dim}) is not one (e.g. poisson-multiscale, poisson-sine at d = 1, 2)."
            )
    if "features" in names and not callable(getattr(problem, "relevant_directions", None)):
        raise ConfigError(
            f"train.diagnostics features compares the network's gradient subspace with the "
            f"directions the solution depends on; {problem.id} states none "
            "(relevant_directions(); poisson-ridge does)."
        )


def diagnostics(names: Sequence[str], solver, model, batch: dict[str, Tensor]) -> dict[str, float]:
    """The diagnostics ``names`` (``train.diagnostics``) at the current weights."""
    out = {}
    if "spectrum" in names:
        out.update(spectrum_diagnostics(solver, model, batch))
    if "bands" in names:
        out.update(band_errors(solver.problem, model.module))
    if "features" in names:
        points = next(iter(batch.values()))[:1024]
        out.update(feature_angles(solver.problem, model.module, points))
    return out
