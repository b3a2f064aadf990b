"""Gauss–Newton / ENGD steps (pinnlab.gauss_newton) and training phases (train.phases)."""

from __future__ import annotations

import signal
from dataclasses import dataclass

import numpy as np
import pytest
import torch
from helpers import tiny_config
from test_training import assert_same_history, assert_same_weights

import pinnlab as pl
from pinnlab.build import build_model, build_problem, build_solver
from pinnlab.errors import ConfigError, TrainingError
from pinnlab.gauss_newton import (
    GaussNewton,
    Linearisation,
    Residuals,
    conjugate_gradients,
    row_jacobian,
)
from pinnlab.quasi_newton import DENSE_MAX, SelfScaledQuasiNewton
from pinnlab.training import Interrupted, Trainer

CPU = torch.device("cpu")


def linear_fit(damping: float = 1e-14):
    """A linear model y = W x + b on 50 points: its Gauss–Newton step is the least-squares
    solution."""
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(50, 3, generator=generator, dtype=torch.float64)
    y = torch.randn(50, 2, generator=generator, dtype=torch.float64)
    module = torch.nn.Linear(3, 2).double()
    term = Residuals((x, y), lambda x, y: module(x) - y)
    return module, term, GaussNewton(module, damping=damping), x, y


def test_one_step_solves_a_linear_least_squares_problem():
    module, term, optimizer, x, y = linear_fit()
    record = optimizer.step({"fit": (term, 1.0)})
    assert not record["stalled"] and optimizer.param_groups[0]["lr"] == 1.0
    assert optimizer.cg_iterations == 0
    weight, bias = least_squares_solution(x, y)
    np.testing.assert_allclose(module.weight.detach().numpy(), weight, atol=1e-10)
    np.testing.assert_allclose(module.bias.detach().numpy(), bias, atol=1e-10)


def test_the_woodbury_form_gives_the_gram_step():
    """Fewer residual rows than weights: the N × N system gives the same δ as the p × p one."""
    _, term, optimizer, _, _ = linear_fit()
    r, jac, _ = optimizer.jacobian({"fit": (term, 1.0)})
    few = slice(0, 3)  # 6 rows, 8 weights
    small = optimizer.direction(r[few], jac[few], 1e-3)
    scale = float(jac[few].square().sum()) / jac.shape[1]
    gram = jac[few].T @ jac[few] + 1e-3 * scale * torch.eye(jac.shape[1], dtype=jac.dtype)
    expected = -torch.linalg.solve(gram, jac[few].T @ r[few])
    torch.testing.assert_close(small, expected, rtol=1e-10, atol=1e-12)


def test_a_loss_at_zero_stalls_and_keeps_the_weights():
    module, term, optimizer, x, _ = linear_fit()
    exact = Residuals((x, module(x).detach()), term.fn)
    before = [p.detach().clone() for p in module.parameters()]
    assert optimizer.step({"fit": (exact, 1.0)})["stalled"]
    for p, q in zip(module.parameters(), before, strict=True):
        assert torch.equal(p, q)


def least_squares_solution(x, y):
    a = np.hstack([x.numpy(), np.ones((len(x), 1))])
    solution = np.linalg.lstsq(a, y.numpy(), rcond=None)[0]
    return solution[:3].T, solution[3]


def test_a_cholesky_system_above_max_matrix_is_refused_naming_the_setting():
    module, term, _, _, _ = linear_fit()
    optimizer = GaussNewton(module, max_matrix=4, solver="cholesky")
    with pytest.raises(
        TrainingError, match=r"8 × 8 .*train.engd.max_matrix = 4.*engd-kfac.*solver: cg"
    ):
        optimizer.step({"fit": (term, 1.0)})


@pytest.mark.parametrize("settings", [{"max_matrix": 4}, {"solver": "cg"}])
def test_past_max_matrix_or_with_cg_the_step_is_matrix_free(settings):
    """Conjugate gradients on J v and Jᵀ u: 8 weights, so at most 8 iterations in exact
    arithmetic, reach the least-squares solution like the Cholesky step."""
    module, term, _, x, y = linear_fit()
    optimizer = GaussNewton(module, damping=1e-14, cg_steps=40, cg_tol=1e-13, **settings)
    assert not optimizer.step({"fit": (term, 1.0)})["stalled"]
    assert 0 < optimizer.cg_iterations <= 12
    weight, bias = least_squares_solution(x, y)
    np.testing.assert_allclose(module.weight.detach().numpy(), weight, atol=1e-9)
    np.testing.assert_allclose(module.bias.detach().numpy(), bias, atol=1e-9)


def test_conjugate_gradients_solve_a_preconditioned_system():
    generator = torch.Generator().manual_seed(3)
    a = torch.randn(30, 30, generator=generator, dtype=torch.float64)
    scales = torch.logspace(0, 4, 30, dtype=torch.float64)
    matrix = scales[:, None] * (a @ a.T + 30 * torch.eye(30, dtype=torch.float64)) * scales
    b = torch.randn(30, generator=generator, dtype=torch.float64)
    x, steps = conjugate_gradients(lambda v: matrix @ v, b, matrix.diagonal(), 200, 1e-12)
    torch.testing.assert_close(x, torch.linalg.solve(matrix, b), rtol=1e-9, atol=0)
    _, plain = conjugate_gradients(
        lambda v: matrix @ v, b, torch.ones(30, dtype=torch.float64), 200, 1e-12
    )
    assert steps < plain  # the Jacobi preconditioner removes the scales
    # truncated: each iteration lowers the quadratic ½ xᵀAx − bᵀx (the A-norm of the error)
    exact = torch.linalg.solve(matrix, b)
    errors = []
    for k in (1, 2, 3):
        x, steps = conjugate_gradients(lambda v: matrix @ v, b, matrix.diagonal(), k, 1e-12)
        errors.append(float((x - exact) @ matrix @ (x - exact)))
        assert steps == k
    assert errors[0] > errors[1] > errors[2]


@dataclass(frozen=True)
class RobinSquare(pl.Problem):
    """−Δu = f on the unit square, u = g on three faces, u + (1 + x₁) ∂u/∂n = h on x₀ = 1."""

    id = "test-robin-square"
    dim: int = 2

    def strong_form(self):
        box = pl.Box(self.dim)
        return pl.StrongForm(
            domain=box,
            residual=lambda d: -d.laplacian - torch.sin(d.x).sum(dim=1),
            conditions={
                "dirichlet": pl.Dirichlet(
                    lambda x: x[:, 0] ** 2, on=box.face(0, "low") | box.face(1, "low")
                ),
                "robin": pl.Robin(
                    1.0, lambda x: 1 + x[:, 1], lambda x: x[:, 1], on=box.face(0, "high")
                ),
            },
        )


#: Problems and settings that between them cover every kind of loss term: Dirichlet, Neumann,
#: Robin, general conditions, periodic ends with their derivative, named residuals of a
#: system, observations with an unknown, causal weights and the mean weight.
CASES = {
    "dirichlet": ("poisson-sine", {}),
    "neumann": ("poisson-flux", {}),
    "robin": (RobinSquare(), {}),
    "condition": ("wave-1d", {}),
    "periodic-system": ("nls", {}),
    "causal": ("allen-cahn-1d", {"causal": {"chunks": 4}}),
    "mean-weight": ("poisson-sine", {"mean_weight": 0.25}),
    "data": ("poisson-kappa", {}),
}


def case(name: str):
    problem, solver = CASES[name]
    config = {
        "net": {"width": 6, "depth": 2},
        "solver": {"n_interior": 24, "n_boundary": 8, **solver},
        "dtype": "float64",
        "device": "cpu",
    }
    if isinstance(problem, str):
        one = problem in ("wave-1d", "nls", "allen-cahn-1d")
        cfg = tiny_config(problem, **config, **({"dim": 1} if one else {}))
        problem = build_problem(cfg)
    else:
        cfg = pl.RunConfig.model_validate({"problem": {"id": problem.id}, **config})
    solver = build_solver(problem, cfg)
    model = build_model(problem, cfg, device=CPU, solver=solver)
    return solver, model, solver.batch(model, torch.Generator().manual_seed(1))


@pytest.mark.parametrize("name", sorted(CASES))
def test_least_squares_terms_are_the_loss_terms(name):
    solver, model, batch = case(name)
    loss = solver.loss(model, batch)
    terms = solver.least_squares(model, batch)
    assert terms.keys() == loss.keys()
    for key, term in terms.items():
        e = term.rows()
        torch.testing.assert_close(term.value(e), loss[key], rtol=1e-12, atol=1e-15)
        # |r|² is the term, r linear in e
        torch.testing.assert_close(
            term.vector(e.unsqueeze(2)).square().sum(), loss[key], rtol=1e-12, atol=1e-15
        )


@pytest.mark.parametrize("name", sorted(CASES))
def test_row_jacobians_are_the_gradients_of_each_row(name):
    """vmap(jacrev) over the points against autograd of single residuals of the batch."""
    solver, model, batch = case(name)
    names = [k for k, p in model.module.named_parameters() if p.requires_grad]
    params = [dict(model.module.named_parameters())[k] for k in names]
    for key, term in solver.least_squares(model, batch).items():
        jac = row_jacobian(model.module, names, term)
        e = term.rows()
        for i, j in [(0, 0), (len(e) - 1, e.shape[1] - 1)]:
            grads = torch.autograd.grad(e[i, j], params, retain_graph=True, allow_unused=True)
            flat = torch.cat(
                [
                    (g if g is not None else torch.zeros_like(p)).reshape(-1)
                    for g, p in zip(grads, params, strict=True)
                ]
            )
            torch.testing.assert_close(jac[i, j], flat, rtol=1e-10, atol=1e-12, msg=key)


@pytest.mark.parametrize("name", sorted(CASES))
def test_matrix_free_products_and_diagonal_match_the_jacobian(name):
    """J v, Jᵀ u and diag(JᵀJ) (accumulated 5 points at a time) of every kind of loss term,
    weighted, against the Jacobian that the exact step forms."""
    solver, model, batch = case(name)
    optimizer = GaussNewton(model.module)
    terms = solver.least_squares(model, batch)
    weighted = {k: (t, 0.5 + i) for i, (k, t) in enumerate(terms.items())}
    r, jac, _ = optimizer.jacobian(weighted)
    linear = Linearisation(model.module, optimizer.names, weighted)
    generator = torch.Generator().manual_seed(2)
    v = torch.randn(jac.shape[1], generator=generator, dtype=torch.float64)
    u = torch.randn(jac.shape[0], generator=generator, dtype=torch.float64)
    torch.testing.assert_close(linear.r, r, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(linear.jv(v), jac @ v, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(linear.jtu(u), jac.T @ u, rtol=1e-10, atol=1e-12)
    diagonal = sum(
        w * t.gram_diagonal(model.module, optimizer.names, 5) for t, w in weighted.values()
    )
    torch.testing.assert_close(diagonal, jac.square().sum(0), rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("name", ["dirichlet", "periodic-system", "mean-weight"])
def test_matrix_free_and_exact_curvature_give_the_same_step(name):
    """(JᵀJ + μ I)⁻¹ Jᵀ r by CG, run to convergence, against the Cholesky step, to 1e-10."""
    solver, model, batch = case(name)
    optimizer = GaussNewton(model.module, cg_steps=2000, cg_tol=1e-15)
    terms = {k: (t, 1.0) for k, t in solver.least_squares(model, batch).items()}
    r, jac, _ = optimizer.jacobian(terms)
    linear = Linearisation(model.module, optimizer.names, terms)
    diagonal = optimizer._diagonal(terms)
    exact = optimizer.direction(r, jac, 1e-3)
    free = optimizer._cg(-linear.jtu(linear.r), linear, diagonal, 1e-3)
    torch.testing.assert_close(free, exact, rtol=1e-10, atol=1e-10 * float(exact.abs().max()))


def engd_config(problem="poisson-sine", **train):
    phases = [{"optimizer": "adam", "steps": 3}, {"optimizer": "engd", "steps": 4}]
    return tiny_config(
        problem,
        dtype="float64",
        train={"phases": phases, "log_every": 2, "eval_every": 2, **train},
    )


def test_engd_phases_lower_the_loss_and_record_the_step_size():
    solution = pl.run(engd_config())
    h = solution.history
    assert list(h["step"]) == list(range(1, 8))
    gauss_newton = h["loss"][3:]  # the loss where each engd step starts
    assert all(np.diff(gauss_newton) < 0)  # the line search accepts decreases only
    assert gauss_newton[-1] < 0.25 * gauss_newton[0]
    assert all(0 < lr <= 1 for lr in h["lr"][3:])


def test_engd_reaches_1e_5_on_poisson_sine_in_float64():
    cfg = tiny_config(
        "poisson-sine",
        dtype="float64",
        net={"width": 32, "depth": 1, "normalize_input": False},
        solver={"n_interior": 1000, "n_boundary": 200},
        train={"phases": [{"optimizer": "engd", "steps": 60}], "eval_every": 60},
    )
    assert pl.run(cfg).metrics["rel_l2"] < 1e-5


def test_float64_engd_runs_are_bit_identical():
    a, b = pl.run(engd_config()), pl.run(engd_config())
    assert_same_weights(a, b)
    assert_same_history(a, b)


MIXED = [{"optimizer": "adam", "steps": 3, "dtype": "float32"}, {"optimizer": "engd", "steps": 4}]


@pytest.mark.parametrize(
    "method",
    [
        "pinn",
        "deep-ritz",
        "ssbfgs",
        "ssbroyden",
        "mixed",
        "mixed-adam",
        "kfac",
        "kfac-deep-ritz",
        "feynman-kac",
        "kfac-feynman-kac",
    ],
)
def test_resume_inside_a_second_order_phase_is_bit_identical(monkeypatch, tmp_path, method):
    """Also with a float32 Adam phase before a float64 ENGD one, resumed in either."""
    two = [{"optimizer": "adam", "steps": 3}, {"optimizer": "engd", "steps": 4}]
    if method == "pinn":
        cfg = engd_config()
    elif method.startswith("mixed"):
        cfg = engd_config(phases=MIXED)
    elif method == "deep-ritz":
        cfg = deep_ritz(phases=two, log_every=2)
    elif method.endswith("feynman-kac"):
        two[1]["optimizer"] = "engd-kfac" if method.startswith("kfac") else "engd"
        train = {"phases": two, "log_every": 2, "lbfgs_batches": 2, "checkpoint_every": 0}
        cfg = pl.make_config(
            "bs-geometric-basket",
            method="feynman-kac",
            config={
                "net": {"width": 8, "depth": 1},
                "solver": {"n_samples": 64, "paths": 2},
                "train": train,
                "dtype": "float64",
                "device": "cpu",
            },
            params={"dim": 2},
        )
    elif method.startswith("kfac"):  # the factors' averages and the last update are saved
        two[1]["optimizer"] = "engd-kfac"
        cfg = engd_config(phases=two) if method == "kfac" else deep_ritz(phases=two, log_every=2)
    else:
        two[1]["optimizer"] = method
        cfg = tiny_config(dtype="float64", train={"phases": two, "log_every": 2})
    reference = pl.run(cfg)
    step = {"ssbfgs": "_lbfgs_step", "ssbroyden": "_lbfgs_step"}.get(method, "_gauss_newton_step")
    step = "_first_order_step" if method == "mixed-adam" else step
    at = 2 if method == "mixed-adam" else 5
    original = getattr(Trainer, step)

    def interrupt(self, optimizer, batch):
        out = original(self, optimizer, batch)
        if self.step + 1 == at:  # the second step of the phase
            signal.raise_signal(signal.SIGINT)
        return out

    out = tmp_path / "run.h5"
    with monkeypatch.context() as m:
        m.setattr(Trainer, step, interrupt)
        with pytest.raises(Interrupted):
            pl.run(cfg, out=out)
    resumed = pl.run(cfg, out=out, resume=True)
    assert_same_weights(reference, resumed)
    assert_same_history(reference, resumed)


def test_engd_identifies_an_unknown_from_data():
    cfg = tiny_config(
        "poisson-kappa",
        dtype="float64",
        net={"width": 16, "depth": 2},
        solver={"n_interior": 200, "n_boundary": 50},
        train={"phases": [{"optimizer": "engd", "steps": 30}], "eval_every": 30},
    )
    solution = pl.run(cfg)
    assert solution.history["loss"][-1] < 1e-6 * solution.history["loss"][0]
    assert solution.metrics["kappa_error"] < 1e-4


def test_engd_is_refused_by_a_solver_whose_loss_is_no_sum_of_squares():
    cfg = pl.make_config(
        "harmonic-oscillator",
        method="vmc",
        config={"solver": {"walkers": 16}, "train": {"optimizer": "engd", "steps": 2}},
    )
    with pytest.raises(
        ConfigError, match=r"method 'vmc'.*Methods that take it: deep-ritz, feynman-kac, pinn"
    ):
        pl.run(cfg)


def test_engd_with_balanced_weights_is_refused():
    cfg = engd_config(balance="grad-norm")
    with pytest.raises(ConfigError, match=r"train\.balance"):
        pl.run(cfg)


@pytest.mark.parametrize(
    "train,match",
    [
        ({"phases": [{"optimizer": "adam", "steps": 2}], "steps": 3}, "replaces steps"),
        ({"phases": []}, "at least one phase"),
        ({"phases": [{"optimizer": "newton", "steps": 2}]}, "newton"),
        ({"phases": [{"optimizer": "adam"}]}, "steps"),
        ({"engd": {"damping": 0}}, "damping"),
        ({"engd": {"grid": -1}}, "grid"),
        ({"engd": {"line_search": "exact"}}, "line_search"),
        ({"engd": {"solver": "lu"}}, "solver"),
        ({"engd": {"cg_steps": 0}}, "cg_steps"),
        ({"engd": {"cg_tol": 1}}, "cg_tol"),
        ({"phases": [{"optimizer": "adam", "steps": 2, "dtype": "float16"}]}, "dtype"),
    ],
)
def test_bad_phases_and_engd_settings_are_refused(train, match):
    with pytest.raises(ConfigError, match=match):
        tiny_config(train=train)


ENGD = [{"optimizer": "engd", "steps": 2}]
KFAC = [{"optimizer": "engd-kfac", "steps": 2}]


@pytest.mark.parametrize(
    "train,match",
    [
        ({"engd": {"damping": 1e-3}}, "no phase uses optimizer engd"),
        ({"phases": ENGD, "engd": {"kfac_ema": 0.5}}, "kfac_ema is used only with solver kfac"),
        ({"phases": ENGD, "engd": {"solver": "cholesky", "cg_steps": 9}}, "cg_steps"),
        ({"phases": KFAC, "engd": {"cg_tol": 1e-3}}, "cg_tol is used only with solver cg"),
        ({"phases": KFAC, "engd": {"grid": 3}}, "grid is used only with line_search grid"),
    ],
)
def test_engd_settings_that_no_phase_uses_are_refused(train, match):
    with pytest.raises(ConfigError, match=match):
        tiny_config(train=train)


def test_engd_settings_used_by_one_of_several_phases_are_accepted():
    phases = [*ENGD, {"optimizer": "engd-kfac", "steps": 1}]
    cfg = tiny_config(train={"phases": phases, "engd": {"kfac_ema": 0.5, "cg_steps": 9}})
    assert cfg.train.engd.kfac_ema == 0.5
    cfg = tiny_config(train={"phases": KFAC, "engd": {"line_search": "grid", "grid": 3}})
    assert cfg.train.engd.grid == 3


def test_a_dumped_engd_config_resolves_its_settings_as_the_original():
    """A study or a saved run validates the config's dump: the solver-dependent defaults
    (line_search auto with kfac) must survive it."""
    cfg = tiny_config(train={"phases": KFAC})
    again = pl.RunConfig.model_validate_json(cfg.model_dump_json())
    for c in (cfg, again):
        assert c.train.engd.settings("engd-kfac")["line_search"] == "auto"
        assert c.train.engd.settings("engd")["line_search"] == "grid"


def test_a_config_dumped_before_the_null_defaults_still_validates():
    """Files and study stores written before the solver-dependent defaults became null hold
    every engd key at its old default, in runs without a Gauss–Newton phase too."""
    old = {"line_search": "grid", "grid": 12, "cg_steps": 100, "cg_tol": 1e-8, "kfac_ema": 0.95}
    cfg = tiny_config(train={"engd": old})
    assert cfg.train.engd.settings("engd")["cg_steps"] == 100


def test_a_float32_phase_trains_in_float32_and_the_run_ends_in_its_dtype():
    """Adam in float32 inside a float64 run is the float32 run's Adam, bit for bit (same
    initial weights, points drawn in float32); the weights are float64 again at the end, and
    the next phase trains them in float64."""
    adam = {"optimizer": "adam", "steps": 4}
    mixed = pl.run(tiny_config(dtype="float64", train={"phases": [{**adam, "dtype": "float32"}]}))
    single = pl.run(tiny_config(dtype="float32", train={"phases": [adam]}))
    reference = single.model.state_dict()
    for key, a in mixed.model.state_dict().items():
        assert a.dtype == torch.float64 and reference[key].dtype == torch.float32
        assert torch.equal(a, reference[key].double()), key
    both = pl.run(engd_config(phases=MIXED))
    assert next(both.model.parameters()).dtype == torch.float64
    assert len(both.history["loss"]) == 7 and both.history["lr"][-1] <= 1.0


def test_phases_take_their_own_learning_rate():
    phases = [{"optimizer": "adam", "steps": 2, "lr": 0.01}, {"optimizer": "adam", "steps": 2}]
    solution = pl.run(tiny_config(train={"phases": phases, "lr": 0.002}))
    np.testing.assert_allclose(solution.history["lr"], [0.01, 0.01, 0.002, 0.002])


def deep_ritz(problem="poisson-harmonic", problems_dirs=(), **train):
    return tiny_config(
        problem,
        problems_dirs=problems_dirs,
        method="deep-ritz",
        dtype="float64",
        net={"width": 8, "depth": 1},
        solver={"n_interior": 256, "n_boundary": 64, "sampling": "sobol"},
        train={"phases": [{"optimizer": "engd", "steps": 1}], **train},
    )


@pytest.mark.parametrize("robin", [False, True], ids=["dirichlet", "robin"])
def test_natural_gradient_minimises_a_quadratic_energy_in_one_step(robin):
    """With the hidden layer frozen, the deep Ritz loss is quadratic in the output layer's
    weights and its Gram matrix is the exact Hessian: one step reaches the minimiser of the
    sampled energy (its gradient vanishes) — also with Robin parts in the energy."""
    from test_deep_ritz import RobinSquare

    where = {"problem": RobinSquare.id, "problems_dirs": [RobinSquare]} if robin else {}
    cfg = deep_ritz(**where, engd={"damping": 1e-14})
    problem = build_problem(cfg, where.get("problems_dirs", ()))
    solver = build_solver(problem, cfg)
    model = build_model(problem, cfg, device=CPU, solver=solver)
    for name, p in model.module.named_parameters():
        p.requires_grad_("out" in name)
    trainer = Trainer(
        solver, model, cfg.train, generator=torch.Generator().manual_seed(0), progress=False
    )
    batch = solver.batch(model, torch.Generator().manual_seed(0))
    trainer._draw = lambda kind: batch

    def gradient():
        total, _ = trainer._loss(batch)
        trained = [p for p in model.module.parameters() if p.requires_grad]
        return torch.cat([g.reshape(-1) for g in torch.autograd.grad(total, trained)])

    before = gradient().norm()
    trainer.run()
    assert trainer.history["lr"] == [1.0]
    assert gradient().norm() < 1e-9 * before


def test_matrix_free_natural_gradient_matches_the_exact_step():
    """One deep Ritz step by CG (enough iterations) moves the weights as the Cholesky one."""
    weights = {}
    for solver in ("cholesky", "cg"):
        tolerances = {"cg_steps": 400, "cg_tol": 1e-14} if solver == "cg" else {}
        cfg = deep_ritz(engd={"solver": solver, **tolerances})
        solution = pl.run(cfg)
        weights[solver] = solution.model.state_dict()
    for key, value in weights["cholesky"].items():
        torch.testing.assert_close(weights["cg"][key], value, rtol=1e-6, atol=1e-8, msg=key)


def test_engd_lowers_the_deep_ritz_energy():
    solution = pl.run(deep_ritz(phases=[{"optimizer": "engd", "steps": 20}], log_every=1))
    loss = solution.history["loss"]
    assert all(np.diff(loss) < 0) and loss[-1] < loss[0]
    assert solution.metrics["rel_l2"] < 0.02  # 7.8e-3 when written


def test_engd_refuses_an_eigenvalue_problem():
    cfg = tiny_config(
        "infinite-well",
        method="deep-ritz",
        net={"hard_bc": True},
        train={"phases": [{"optimizer": "engd", "steps": 1}]},
    )
    with pytest.raises(ConfigError, match="Rayleigh quotient"):
        pl.run(cfg)


@pytest.mark.parametrize("update", ["ssbfgs", "ssbroyden"])
def test_self_scaled_quasi_newton_minimises_the_rosenbrock_function(update):
    x = torch.nn.Parameter(torch.tensor([-1.2, 1.0, -0.5, 0.8], dtype=torch.float64))
    optimizer = SelfScaledQuasiNewton([x], update=update)

    def closure():
        optimizer.zero_grad()
        loss = (100 * (x[1:] - x[:-1] ** 2).square() + (1 - x[:-1]).square()).sum()
        loss.backward()
        return loss

    for _ in range(200):
        optimizer.step(closure)
    torch.testing.assert_close(x.detach(), torch.ones(4, dtype=torch.float64), atol=1e-8, rtol=0)


@pytest.mark.parametrize("update", ["ssbfgs", "ssbroyden"])
def test_self_scaled_quasi_newton_trains_a_small_pinn_past_lbfgs(update):
    def final(optimizer):
        phases = [{"optimizer": "adam", "steps": 20}, {"optimizer": optimizer, "steps": 60}]
        cfg = tiny_config(dtype="float64", net={"width": 16, "depth": 1}, train={"phases": phases})
        return pl.run(cfg).history["loss"][-1]

    assert final(update) < final("lbfgs")


def test_a_dense_inverse_hessian_too_large_is_refused():
    big = torch.nn.Parameter(torch.zeros(DENSE_MAX + 1))
    with pytest.raises(TrainingError, match="train this network with lbfgs"):
        SelfScaledQuasiNewton([big])
