"""Error metrics against a problem's truth, on a fixed, seeded test set.

In high dimension many functions are nearly constant on random points (concentration of
measure): Σᵢ sin(π xᵢ/2) on [0, 1]^10000 is matched by a constant to rel_l2 ≈ 5e-3. Two of
the metrics cannot be fooled that way: ``rel_l2_centered`` compares u − mean(u) and
``rel_h1_seminorm`` compares gradients. ``const_rel_l2`` is the error of the best constant,
a reference line for every rel_l2.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor

from .derivatives import gradient
from .problem import ExactSolution, Problem

TEST_POINTS = 10_000
#: Above d = 10,000 the test set shrinks to keep n·d ≤ 10⁸ numbers (0.8 GB in float64), with
#: at least 1,000 points: 1,000 points at d = 100,000.
TEST_NUMBERS = 10**8
TEST_SEED = 20241127
#: Inputs (points × columns) per chunk when the exact gradient is taken by reverse mode.
GRAPH_NUMBERS = 2**22
#: The names ``error_metrics`` returns.
FIELD_METRICS = (
    "rel_l2",
    "rel_l1",
    "max_abs",
    "rel_l2_centered",
    "rel_h1_seminorm",
    "const_rel_l2",
)
#: The names a run's ``metric`` may take ("auto": ``default_metric``).
METRICS = (
    *FIELD_METRICS,
    "rel_error_x0",
    "ref_rel_l2",
    "ref_rel_l1",
    "ref_max_z",
    "ref_stderr_rel",
    "energy_rel_error",
    "auto",
)


def default_metric(available, preferred=()) -> str:
    """What ``metric: auto`` measures: the problem's own first extra metric (``preferred``,
    its ``extra_metric_names``) where it has one, else rel_l2 where the truth is known on a
    region, else the error at x₀, else the error against a reference, else a ground state's
    energy error."""
    for name in (*preferred[:1], "rel_l2", "rel_error_x0", "ref_rel_l2", "energy_rel_error"):
        if name in available:
            return name
    raise KeyError("no error metric is available")


def test_size(columns: int) -> int:
    """How many test points a problem with ``columns`` input columns is measured on."""
    return max(1000, min(TEST_POINTS, TEST_NUMBERS // columns))


def test_points(
    problem: Problem, *, dtype=torch.float64, device="cpu", n=None, at_time=None
) -> Tensor:
    """The fixed test set of ``problem``: n interior points drawn with a fixed seed on the CPU
    (``test_size`` of its input columns unless given). With ``at_time``, points x of the
    stochastic form's region, for solutions x ↦ u(at_time, x)."""
    domain = problem.stochastic_form().region if at_time is not None else problem.domain()
    if n is None:
        n = test_size(domain.dim)
    generator = torch.Generator().manual_seed(TEST_SEED)
    x = domain.sample_interior(n, generator=generator, dtype=torch.float64)
    return x.to(device=device, dtype=dtype)


def chunk_rows(columns: int, most: int | None = None) -> int:
    """Rows per chunk of about ``GRAPH_NUMBERS`` inputs (and at most ``most`` rows)."""
    rows = max(1, GRAPH_NUMBERS // max(columns, 1))
    return rows if most is None else min(rows, most)


def exact_with_grad(problem: Problem, x: Tensor, time_dependent: bool) -> tuple[Tensor, Tensor]:
    """The exact solution and its spatial gradient (the engine's reverse mode on the closed
    form: ``pinnlab.derivatives.gradient``).

    Scalar problems give (n,) and (n, d); problems with k outputs give (n, k) and (n, k, d).
    Evaluated in chunks of about ``GRAPH_NUMBERS`` inputs: the closed form's autograd graph
    holds a few dozen arrays of the chunk's size (at d = 10,000, 12 GB for all 10⁴ points).
    """
    parts = [_exact_with_grad(problem, c, time_dependent) for c in x.split(chunk_rows(x.shape[1]))]
    return torch.cat([u for u, _ in parts]), torch.cat([g for _, g in parts])


def _exact_with_grad(problem: Problem, x: Tensor, time_dependent: bool) -> tuple[Tensor, Tensor]:
    """u*(x) and ∂u*/∂x by the derivative engine's reverse mode (t's column dropped)."""
    u, g = gradient(problem.exact, x)
    g = g[..., 1:] if time_dependent else g
    return u.detach(), g.detach()


def error_metrics(u: Tensor, u_true: Tensor, grad: Tensor, grad_true: Tensor) -> dict[str, float]:
    """rel_l2, rel_l1, max_abs, rel_l2_centered, rel_h1_seminorm and const_rel_l2."""
    u, u_true = u.reshape(u_true.shape).double(), u_true.double()
    grad, grad_true = grad.reshape(grad_true.shape).double(), grad_true.double()
    e = u - u_true
    centred_true = u_true - u_true.mean()
    return {
        "rel_l2": float(e.norm() / u_true.norm()),
        "rel_l1": float(e.abs().sum() / u_true.abs().sum()),
        "max_abs": float(e.abs().max()),
        "rel_l2_centered": float((e - e.mean()).norm() / centred_true.norm()),
        "rel_h1_seminorm": float((grad - grad_true).norm() / grad_true.norm()),
        "const_rel_l2": float(centred_true.norm() / u_true.norm()),
    }


def point_metrics(u: Tensor, u_true: Tensor) -> dict[str, float]:
    """rel_error_x0 = |u(x₀) − u*(x₀)| / |u*(x₀)| for a solution at one point."""
    u, u_true = u.reshape(-1).double().cpu(), u_true.reshape(-1).double().cpu()
    return {"rel_error_x0": float((u - u_true).abs()[0] / u_true.abs()[0])}


def energy_metrics(energy: float, stderr: float, exact: float | None) -> dict[str, float]:
    """An energy estimate with its standard error, and where E₀ is known its relative error and
    its z-score (E − E₀)/SE (vmc's variational energy, deep Ritz's Rayleigh quotient)."""
    out = {"energy": energy, "energy_stderr": stderr}
    if exact is not None:
        out["energy_rel_error"] = abs(energy - exact) / abs(exact)
        if stderr > 0:
            out["energy_z"] = (energy - exact) / stderr
    return out


def reference_metrics(u: Tensor, value: Tensor, stderr: Tensor) -> dict[str, float]:
    """Errors against reference values with standard errors (Monte Carlo references).

    ``ref_rel_l2``, ``ref_rel_l1``: relative errors over the reference points;
    ``ref_max_z``: max |u − ref| / stderr (where stderr > 0): an error below about 3 is within
    the reference's own noise and cannot be resolved further; ``ref_stderr_rel``:
    ‖stderr‖/‖ref‖, the floor below which no error is claimed. At one point the relative
    error is ``rel_error_x0``.
    """
    u, value = u.reshape(-1).double().cpu(), value.reshape(-1).double().cpu()
    stderr = stderr.reshape(-1).double().cpu()
    e = u - value
    if len(value) == 1:
        out = point_metrics(u, value)
    else:
        out = {
            "ref_rel_l2": float(e.norm() / value.norm()),
            "ref_rel_l1": float(e.abs().sum() / value.abs().sum()),
        }
    out["ref_stderr_rel"] = float(stderr.norm() / value.norm())
    if (stderr > 0).any():
        out["ref_max_z"] = float((e.abs() / stderr)[stderr > 0].max())
    return out


def fit_baselines(
    problem: Problem, n: int | None = None, at_time: float | None = None
) -> dict[str, float]:
    """rel_l2 of the best constant and of the best affine function a + b·x (least squares on
    the test set) against the exact solution: what a network must beat before it has learned
    anything that concentration of measure does not give for free. With ``at_time``, of
    x ↦ u(at_time, x) on the region; space-time test points otherwise. Empty without ``exact``."""
    if not isinstance(problem, ExactSolution):
        return {}
    x = test_points(problem, n=n, at_time=at_time)
    inputs = x if at_time is None else torch.cat([torch.full_like(x[:, :1], at_time), x], dim=1)
    u = problem.exact(inputs).reshape(len(x), -1)
    affine = torch.cat([torch.ones_like(x[:, :1]), x], dim=1)
    fit = affine @ torch.linalg.lstsq(affine, u).solution
    return {
        "const_rel_l2": float((u - u.mean(dim=0)).norm() / u.norm()),
        "linear_rel_l2": float((u - fit).norm() / u.norm()),
    }


class Metric:
    """A measure of a trained solution that users add by name: a subclass with a ``name``,
    found by the metric registry (``pinnlab.registry.metrics``: entry points
    ``pinnlab.metrics``, subclasses in the catalogue folders). Every solution of a problem it
    ``applies`` to reports it beside pinnlab's own metrics, and a run's ``metric`` may name it.
    """

    #: The name it is reported under; empty for an abstract metric.
    name: ClassVar[str] = ""

    def applies(self, problem: Problem) -> bool:
        """Whether it can be measured for ``problem`` (by default: where u* is known)."""
        return isinstance(problem, ExactSolution)

    def __call__(self, solution) -> float:
        """Its value for ``solution`` (a ``pinnlab.Solution``: callable on points, with
        ``grad``, ``problem`` and ``config``)."""
        raise NotImplementedError
