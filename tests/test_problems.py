"""The catalogue, generically: every problem's truth satisfies its own equation and data."""

from __future__ import annotations

import dataclasses
import re

import pytest
import torch

import pinnlab as pl
from pinnlab import parts
from pinnlab.problem import truth_of
from pinnlab.registry import describe

CATALOGUE = pl.catalogue()
PROBLEM_IDS = list(CATALOGUE)
# Problems whose strong form can be checked against a closed-form solution (every shipped one
# today; problems with only a computed reference are checked against it where they are defined).
EXACT_STRONG_IDS = [
    i for i in PROBLEM_IDS if "strong" in CATALOGUE[i].forms() and CATALOGUE[i].truth == "exact"
]
#: Small dimensions tried for every problem; those a problem does not support are skipped.
DIMS = (1, 2, 3, 4, 6)


def valid_instances(cls) -> list[pl.Problem]:
    problems = []
    for dim in DIMS:
        try:
            problems.append(cls.from_params({"dim": dim}))
        except pl.ParameterError:
            continue
    assert problems, f"{cls.id} accepts none of the dimensions {DIMS}"
    return problems


def as_columns(f):
    """A "network" (n, D) -> (n, k) made of a function that may return (n,)."""

    def net(x):
        u = f(x)
        return u if u.dim() == 2 else u[:, None]

    return net


def named(r) -> dict[str, torch.Tensor]:
    return dict(r) if isinstance(r, dict) else {"residual": r}


def _max(t: torch.Tensor) -> float:
    return float(t.detach().abs().max()) if t.numel() else 0.0


def true_unknowns(form) -> dict | None:
    """The true values of an inverse problem's unknowns (every shipped one states them)."""
    if not form.unknowns:
        return None
    missing = [u.name for u in form.unknowns if u.exact is None]
    assert not missing, f"the shipped unknowns {missing} state no true value"
    return {u.name: u.exact for u in form.unknowns}


def check_residual(problem: pl.Problem, n: int = 64) -> None:
    """Exact solution in the strong-form residual, float64, dense reverse-mode autograd."""
    form = problem.strong_form()
    generator = torch.Generator().manual_seed(1234)
    x = form.domain.sample_interior(n, generator=generator, dtype=torch.float64)
    td = problem.time_dependent

    u = problem.exact(x)
    expected_shape = (n,) if form.outputs == 1 else (n, form.outputs)
    assert u.shape == expected_shape and u.dtype == torch.float64

    truth = true_unknowns(form)
    d = pl.Derivatives(
        as_columns(problem.exact), x, method="reverse", time_dependent=td, unknowns=truth
    )
    residuals = named(form.residual(d))
    assert residuals, f"{problem}: the residual is empty"
    parts = [d.u, d.grad, d.laplacian] + ([d.dt] if td else [])
    scale = max(1.0, *(_max(p) for p in parts))
    for name, r in residuals.items():
        assert r.shape[0] == n, f"{problem}: residual '{name}' has shape {tuple(r.shape)}"
        assert torch.isfinite(r).all()
        # A computed truth states its own accuracy (nls: limited by its data's kink).
        assert _max(r) <= problem.truth_tolerance * scale, (
            f"{problem}: residual '{name}' of the exact solution is {_max(r):.3e} "
            f"(scale {scale:.3e})"
        )

    # The check can fail: a perturbed solution leaves a residual that is far from zero.
    w = torch.linspace(0.3, 1.1, x.shape[1], dtype=torch.float64)

    def perturbed(y):
        return as_columns(problem.exact)(y) + 0.1 * torch.sin(y @ w + 1.0)[:, None]

    dp = pl.Derivatives(perturbed, x, method="reverse", time_dependent=td, unknowns=truth)
    worst = max(_max(r) for r in named(form.residual(dp)).values())
    assert worst > 1e-3, f"{problem}: the residual does not see a perturbation of u"


def condition_residual(problem: pl.Problem, condition, n: int = 64, solution=None):
    """The misfit of ``solution`` (default: the exact one) in ``condition`` at n points of its
    part, float64, by dense reverse-mode derivatives, and the scale it is measured against
    (Periodic conditions: test_nls.py)."""
    form = problem.strong_form()
    u = as_columns(solution or problem.exact)
    y, normal = parts.sample(
        form.domain,
        condition.on,
        n,
        generator=torch.Generator().manual_seed(99),
        dtype=torch.float64,
    )
    d = pl.Derivatives(
        u,
        y,
        method="reverse",
        time_dependent=problem.time_dependent,
        normals=normal,
        unknowns=true_unknowns(form),
    )
    scale = max(1.0, _max(u(y)))  # a misfit is measured against the size of u and ∂u/∂n
    if isinstance(condition, pl.Condition):
        r = condition.residual(d)
        scale = max(scale, _max(d.normal_derivative))
        return torch.cat([v.reshape(n, -1) for v in named(r).values()], dim=1), scale
    out = condition.output
    pick = slice(None) if out is None else slice(out, out + 1)
    value = u(y)[:, pick]
    if isinstance(condition, pl.Dirichlet):
        return value - condition.value(y).reshape(value.shape), scale
    dn = d.normal_derivative.reshape(n, -1)[:, pick]
    scale = max(scale, _max(dn))
    if isinstance(condition, pl.Neumann):
        return dn - condition.flux(y).reshape(dn.shape), scale
    alpha, beta = (
        c(y).reshape(n, -1) if callable(c) else c for c in (condition.alpha, condition.beta)
    )
    return alpha * value + beta * dn - condition.value(y).reshape(dn.shape), scale


def check_conditions(problem: pl.Problem, n: int = 64) -> None:
    """Every condition (Dirichlet, Neumann, Robin, general) holds for the exact solution on its
    part, and a perturbed solution breaks it; a lift agrees with its data."""
    form = problem.strong_form()
    w = torch.linspace(0.3, 1.1, form.domain.dim, dtype=torch.float64)

    def perturbed(y):
        return as_columns(problem.exact)(y) + 0.1 * torch.sin(y @ w + 1.0)[:, None]

    for name, condition in form.conditions.items():
        if isinstance(condition, pl.Periodic):
            continue
        r, scale = condition_residual(problem, condition, n)
        err = _max(r)
        assert err <= problem.truth_tolerance * scale, (
            f"{problem}: condition '{name}' is off by {err:.3e}"
        )
        assert _max(condition_residual(problem, condition, n, perturbed)[0]) > 1e-3, (
            f"{problem}: condition '{name}' does not see a perturbation of u"
        )
        if isinstance(condition, pl.Dirichlet) and condition.lift is not None:
            y, _ = parts.sample(
                form.domain,
                condition.on,
                n,
                generator=torch.Generator().manual_seed(5),
                dtype=torch.float64,
            )
            value = condition.value(y).reshape(len(y), -1)
            lift = condition.lift
            lift = lift(y).reshape(value.shape) if callable(lift) else torch.full_like(value, lift)
            assert _max(lift - value) <= 1e-8 * max(1.0, _max(value)), (
                f"{problem}: lift of '{name}' ≠ data"
            )


def test_the_exact_checks_cover_the_shipped_catalogue():
    assert {"poisson-sine", "poisson-harmonic", "poisson-quadratic", "poisson-ball"} <= set(
        EXACT_STRONG_IDS
    )


@pytest.mark.parametrize("problem_id", EXACT_STRONG_IDS)
def test_exact_solution_satisfies_residual(problem_id):
    for problem in valid_instances(CATALOGUE[problem_id]):
        check_residual(problem)


@pytest.mark.parametrize("problem_id", EXACT_STRONG_IDS)
def test_exact_solution_satisfies_every_condition(problem_id):
    for problem in valid_instances(CATALOGUE[problem_id]):
        check_conditions(problem)


@pytest.mark.parametrize("problem_id", PROBLEM_IDS)
def test_truth_is_what_the_class_defines(problem_id):
    cls = CATALOGUE[problem_id]
    assert cls.truth == truth_of(cls) != "none"
    if cls.truth == "exact":
        assert callable(getattr(cls, "exact", None))
    if cls.truth == "reference":
        assert callable(getattr(cls, "reference", None)) and not hasattr(cls, "exact")
    if cls.truth == "ground state":  # log ψ₀ and its energy
        problem = cls()
        assert problem.hamiltonian_form().ground_energy is not None


def test_truth_cannot_be_declared_beside_the_methods():
    from dataclasses import dataclass

    with pytest.raises(TypeError, match="'truth' is derived"):

        @dataclass(frozen=True)
        class Claims(pl.Problem):
            id = "test-claims"
            truth = "exact"


def test_user_problems_satisfy_their_equations(user_dir):
    """The same checks on user problems: a space-time one and a two-output one."""
    cat = pl.catalogue([user_dir])
    heat = cat.problem("test-heat", dim=3)
    pair = cat.problem("test-pair", dim=2)
    assert heat.time_dependent and not pair.time_dependent
    for problem in (heat, pair):
        check_residual(problem)
        check_conditions(problem)


def test_catalogue_is_not_empty_and_ids_match():
    assert "poisson-sine" in PROBLEM_IDS
    assert PROBLEM_IDS == sorted(PROBLEM_IDS)
    for problem_id in PROBLEM_IDS:
        assert CATALOGUE[problem_id].id == problem_id
    assert len(CATALOGUE) == len(PROBLEM_IDS)


@pytest.mark.parametrize("problem_id", PROBLEM_IDS)
def test_describe(problem_id):
    cls = CATALOGUE[problem_id]
    entry = describe(cls)
    assert entry["id"] == problem_id
    assert entry["summary"], f"{problem_id} has no docstring"
    assert entry["forms"] and set(entry["forms"]) <= set(pl.FORMS)
    assert entry["parameters"]["dim"] == cls.parameters()["dim"]
    assert entry["dimensions"] == cls.dims


@pytest.mark.parametrize("problem_id", PROBLEM_IDS)
def test_parameters_round_trip_and_are_frozen(problem_id):
    cls = CATALOGUE[problem_id]
    problem = cls.from_params({})
    assert problem.params() == cls.parameters()
    assert cls.from_params(problem.params()) == problem
    # The command line passes strings: they are converted by type.
    assert cls.from_params({k: str(v) for k, v in problem.params().items()}) == problem
    assert problem_id in str(problem)
    with pytest.raises(dataclasses.FrozenInstanceError):
        problem.dim = 3  # type: ignore[misc]


@pytest.mark.parametrize("problem_id", PROBLEM_IDS)
def test_dim_zero_is_rejected(problem_id):
    with pytest.raises(pl.ParameterError, match=rf"{problem_id}: dim must be an integer ≥ 1"):
        CATALOGUE[problem_id].from_params({"dim": 0})


@pytest.mark.parametrize("problem_id", PROBLEM_IDS)
def test_unknown_and_mistyped_parameters(problem_id):
    cls = CATALOGUE[problem_id]
    with pytest.raises(
        pl.ParameterError, match=re.escape("has no parameter 'dimm'. Did you mean 'dim'?")
    ):
        cls.from_params({"dimm": 3})
    with pytest.raises(pl.ParameterError, match="parameter 'dim' must be"):
        cls.from_params({"dim": "three"})


def test_poisson_harmonic_needs_an_even_dimension():
    cls = CATALOGUE["poisson-harmonic"]
    assert cls.from_params({"dim": 4}).dim == 4
    with pytest.raises(pl.ParameterError, match=r"dim must be even, got 3.*even d ≥ 2"):
        cls.from_params({"dim": 3})


def test_poisson_ball_coefficients_depend_on_the_seed():
    x = torch.rand(16, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64) / 2
    a = pl.problem("poisson-ball", dim=3, coef_seed=0)
    b = pl.problem("poisson-ball", dim=3, coef_seed=1)
    assert torch.equal(a.exact(x), pl.problem("poisson-ball", dim=3, coef_seed=0).exact(x))
    assert not torch.allclose(a.exact(x), b.exact(x))
    with pytest.raises(pl.ParameterError, match="≥ 2"):
        pl.problem("poisson-ball", dim=1)


def test_problem_by_id():
    p = pl.problem("poisson-sine", dim=3)
    assert p.dim == 3 and p.id == "poisson-sine" and p.forms() == ("strong", "energy")
    with pytest.raises(
        pl.UnknownNameError, match=re.escape("unknown problem 'poisson-sin'. Did you mean")
    ):
        pl.problem("poisson-sin")


def test_poisson_ridge_does_not_concentrate():
    """Unlike Σ sin(π xᵢ/2), the best constant stays far from the ridge solution at any d."""
    from pinnlab.metrics import error_metrics, exact_with_grad, test_points

    for dim in (10, 1000):
        p = pl.problem("poisson-ridge", dim=dim)
        x = test_points(p, n=2000)
        u, g = exact_with_grad(p, x, False)
        assert error_metrics(u, u, g, g)["const_rel_l2"] > 0.7, dim
    sine = pl.problem("poisson-sine", dim=1000)
    x = test_points(sine, n=2000)
    u, g = exact_with_grad(sine, x, False)
    assert error_metrics(u, u, g, g)["const_rel_l2"] < 0.02
    with pytest.raises(pl.ParameterError, match="frequency must be > 0"):
        pl.problem("poisson-ridge", dim=3, frequency=0.0)


def test_exact_gradient_in_chunks_is_the_same(monkeypatch):
    """The truth's values and gradients do not depend on the chunking that bounds memory."""
    import pinnlab.metrics as metrics

    for problem in (pl.problem("poisson-ball", dim=7), pl.problem("nls")):
        x = metrics.test_points(problem, n=50)
        whole = metrics.exact_with_grad(problem, x, problem.time_dependent)
        monkeypatch.setattr(metrics, "GRAPH_NUMBERS", 3 * x.shape[1])  # chunks of 3 points
        chunked = metrics.exact_with_grad(problem, x, problem.time_dependent)
        monkeypatch.undo()
        # nls sums 512 Fourier modes, whose rounding depends on the batch: not bit-identical
        tol = {"rtol": 1e-5, "atol": 1e-8} if problem.time_dependent else {"rtol": 0, "atol": 0}
        for a, b in zip(whole, chunked, strict=True):
            assert a.shape == b.shape
            torch.testing.assert_close(a, b, **tol)
