"""Kronecker-factored ENGD (``pinnlab.kfac``): the factors against the exact Gram matrix where
KFAC is exact, the Kronecker-sum inverse against a dense one, the tape against autograd on
every kind of loss term, and training with ``optimizer: engd-kfac``."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import tiny_config
from test_gauss_newton import CASES, case

import pinnlab as pl
from pinnlab.derivatives import Derivatives
from pinnlab.errors import ConfigError, TrainingError
from pinnlab.gauss_newton import GaussNewton, Residuals, row_jacobian
from pinnlab.kfac import Factor, KroneckerCurvature, LayerCurvature
from pinnlab.networks.bodies import MLP, ResidualMLP
from pinnlab.networks.inputs import InputMap


def dense(curvature: KroneckerCurvature, p: int) -> torch.Tensor:
    """K as a matrix, by polarisation of its quadratic form."""
    eye = torch.eye(p, dtype=torch.float64)
    diag = torch.tensor([curvature.quadratic(e) for e in eye], dtype=torch.float64)
    k = torch.empty(p, p, dtype=torch.float64)
    for i in range(p):
        for j in range(i, p):
            k[i, j] = k[j, i] = (curvature.quadratic(eye[i] + eye[j]) - diag[i] - diag[j]) / 2
    return k


def gram(net, names, terms) -> torch.Tensor:
    jac = torch.cat([w**0.5 * t.vector(row_jacobian(net, names, t)) for t, w in terms.values()])
    return jac.T @ jac


def network(kind: str, box: bool):
    torch.manual_seed(0)
    input_map = InputMap(torch.zeros(2), torch.tensor([1.0, 3.0])) if box else None
    cls = {"mlp": MLP, "resmlp": ResidualMLP}[kind]
    return cls(2, 1, width=4, depth=2, input_map=input_map).double()


@pytest.mark.parametrize("kind", ["mlp", "resmlp"])
@pytest.mark.parametrize("box", [False, True], ids=["plain", "input-map"])
def test_one_sample_of_values_gives_the_exact_gram_matrix(kind, box):
    """At one point and one copy per layer J = g aᵀ per layer, so each block of JᵀJ is
    (g gᵀ) ⊗ (a aᵀ) exactly: the factors, the folded input map and the bias column are right
    when the block diagonal of K is that of JᵀJ."""
    net = network(kind, box)
    names = [k for k, _ in net.named_parameters()]
    x = torch.tensor([[0.3, 2.1]], dtype=torch.float64)
    terms = {"values": (Residuals((x,), lambda x: net(x)[:, 0]), 2.5)}
    curvature = KroneckerCurvature(net, names, ema=0.0, limit=8192)
    curvature.update(terms, {}, gradient=False)
    exact = gram(net, names, terms)
    k = dense(curvature, len(exact))
    at = 0
    for layer in curvature.layers:
        size = sum(dict(net.named_parameters())[n].numel() for n in (layer.weight, layer.bias))
        block = slice(at, at + size)
        torch.testing.assert_close(k[block, block], exact[block, block], rtol=1e-10, atol=1e-14)
        at += size
    assert at == len(exact) and not curvature.other


def test_the_output_layer_block_is_exact_for_values_at_many_points():
    """The output layer's g is the same at every point (u is linear in it), so KFAC's block
    B ⊗ A = c² n ⊗ Σ a aᵀ/n is exact there."""
    net = network("mlp", False)
    names = [k for k, _ in net.named_parameters()]
    x = torch.rand(9, 2, dtype=torch.float64)
    terms = {"values": (Residuals((x,), lambda x: net(x)[:, 0]), 1.0)}
    curvature = KroneckerCurvature(net, names, ema=0.0, limit=8192)
    curvature.update(terms, {}, gradient=False)
    exact = gram(net, names, terms)
    k = dense(curvature, len(exact))
    torch.testing.assert_close(k[-5:, -5:], exact[-5:, -5:], rtol=1e-10, atol=1e-14)


def test_the_inverse_of_a_sum_of_two_kronecker_products_is_exact():
    generator = torch.Generator().manual_seed(0)

    def spd(k, rank=None):
        m = torch.randn(k, rank or k, generator=generator, dtype=torch.float64)
        return m @ m.T

    b1, a1, b2, a2 = spd(3), spd(4), spd(3, 1), spd(4, 2)  # the second pair singular
    layer = LayerCurvature(
        "w",
        None,
        {"x": (Factor(b1), Factor(a1)), "y": (Factor(b2), Factor(a2))},
    )
    x = torch.randn(3, 4, generator=generator, dtype=torch.float64)
    damping = 1e-3
    root = damping**0.5

    def damped(f):
        return f + root * f.diagonal().mean() * torch.eye(len(f), dtype=f.dtype)

    matrix = torch.kron(damped(b1), damped(a1)) + torch.kron(damped(b2), damped(a2))
    expected = torch.linalg.solve(matrix, x.reshape(-1)).reshape(3, 4)
    torch.testing.assert_close(layer.solve(x, damping), expected, rtol=1e-9, atol=1e-12)
    # diagonal factors (past max_matrix) alike
    diag = LayerCurvature(
        "w",
        None,
        {
            "x": (Factor(b1.diagonal()), Factor(a1.diagonal())),
            "y": (Factor(b2.diagonal()), Factor(a2.diagonal())),
        },
    )
    matrix = torch.kron(
        damped(torch.diag_embed(b1.diagonal())), damped(torch.diag_embed(a1.diagonal()))
    ) + torch.kron(damped(torch.diag_embed(b2.diagonal())), damped(torch.diag_embed(a2.diagonal())))
    expected = torch.linalg.solve(matrix, x.reshape(-1)).reshape(3, 4)
    torch.testing.assert_close(diag.solve(x, damping), expected, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("name", sorted(CASES))
def test_every_kind_of_loss_term_is_factored_with_its_gradient(name):
    """The tape carries every layer's whole gradient (the check inside ``update`` passes),
    the gradient is the loss's, and K is positive definite once damped: on Dirichlet,
    Neumann, Robin, general and periodic conditions, systems, causal weights, the mean weight
    and data with an unknown (whose κ lies outside the layers: the exact block)."""
    solver, model, batch = case(name)
    optimizer = GaussNewton(model.module, solver="kfac", kfac_ema=0.0)
    terms = {k: (t, 0.5 + i) for i, (k, t) in enumerate(solver.least_squares(model, batch).items())}
    curvature = optimizer._curvature()
    _, g = curvature.update(terms, {}, gradient=True)
    total = sum(w * t.value() for t, w in terms.values())
    params = [p for p in model.module.parameters() if p.requires_grad]
    grads = torch.autograd.grad(total, params, allow_unused=True)
    expected = torch.cat(
        [
            (d if d is not None else torch.zeros_like(p)).reshape(-1)
            for d, p in zip(grads, params, strict=True)
        ]
    )
    torch.testing.assert_close(g, expected.double(), rtol=1e-10, atol=1e-14)
    assert (name == "data") == bool(curvature.other)
    v = torch.randn(len(g), generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    assert curvature.quadratic(v) > 0
    step = curvature.solve(v, 1e-6)
    assert torch.isfinite(step).all() and float(step @ v) > 0


def test_derivatives_that_bypass_the_jets_are_refused():
    """Reverse mode differentiates through the backward pass, not the recorded maps: its
    Kronecker factors would be wrong, and the step says so."""
    net = network("mlp", False)
    names = [k for k, _ in net.named_parameters()]
    x = torch.rand(5, 2, dtype=torch.float64)

    def laplacian(x):
        return Derivatives(net, x, method="reverse").laplacian.reshape(-1)

    curvature = KroneckerCurvature(net, names, ema=0.0, limit=8192)
    with pytest.raises(TrainingError, match="recorded affine maps"):
        curvature.update({"residual": (Residuals((x,), laplacian), 1.0)}, {}, gradient=True)


def kfac_config(steps=40, **train):
    return tiny_config(
        "poisson-sine",
        dtype="float64",
        net={"width": 16, "depth": 1, "normalize_input": False},
        solver={"n_interior": 300, "n_boundary": 80},
        train={
            "phases": [{"optimizer": "engd-kfac", "steps": steps}],
            "log_every": 1,
            "eval_every": steps,
            **train,
        },
    )


@pytest.mark.parametrize("line_search", ["auto", "grid"])
def test_engd_kfac_lowers_the_loss_at_every_step(line_search):
    solution = pl.run(kfac_config(engd={"line_search": line_search}))
    loss = solution.history["loss"]
    assert all(np.diff(loss) < 0)
    assert loss[-1] < 1e-3 * loss[0]


def test_engd_kfac_is_refused_with_another_solver_and_auto_without_kfac():
    with pytest.raises(ConfigError, match="engd-kfac"):
        pl.run(kfac_config(engd={"solver": "cg"}))
    cfg = tiny_config(
        train={"phases": [{"optimizer": "engd", "steps": 2}], "engd": {"line_search": "auto"}}
    )
    with pytest.raises(ConfigError, match="line_search auto"):
        pl.run(cfg)


def test_engd_kfac_lowers_the_deep_ritz_energy():
    """The natural gradient of an energy with the Gram rows factored (``step_energy``)."""
    from test_gauss_newton import deep_ritz

    solution = pl.run(deep_ritz(phases=[{"optimizer": "engd-kfac", "steps": 100}], log_every=1))
    loss = solution.history["loss"]
    assert all(np.diff(loss) < 0)
    assert solution.metrics["rel_l2"] < 0.05  # 2.3e-2 when written (exact ENGD: 7.8e-3 in 20)


def test_recording_changes_no_derivative_and_keeps_every_copy():
    """Under a tape the jets run unreduced (d = 12 > width 4 would reduce): the same u and Δu,
    and each layer's entry holds its copies — the value, d directions and (past the first
    layer, whose input has no second-order term) the second-order term — with the bias
    column 1 on the value only."""
    from pinnlab.derivatives.jets import recording

    torch.manual_seed(1)
    net = MLP(12, 1, width=4, depth=2).double()
    x = torch.rand(6, 12, dtype=torch.float64)
    plain = Derivatives(net, x, method="reduced").laplacian
    with recording() as tape:
        recorded = Derivatives(net, x, method="reduced").laplacian
    torch.testing.assert_close(recorded, plain, rtol=1e-12, atol=1e-12)
    assert [type(layer).__name__ for layer in tape.entries] == ["Linear"] * 3
    for k, (layer, (entry,)) in enumerate(tape.entries.items()):
        copies = 13 if k == 0 else 14
        assert entry.inputs.shape == (6, copies, layer.in_features + 1)
        value_only = torch.eye(copies, dtype=torch.float64)[0].expand(6, copies)
        assert torch.equal(entry.inputs[:, :, -1], value_only)


def test_a_residual_that_resolves_its_derivative_method_is_factored():
    """``method="auto"`` probes the network under ``no_grad`` inside the recorded forward;
    the probe is not part of the loss and stays off the tape."""
    net = network("mlp", False)
    names = [k for k, _ in net.named_parameters()]
    x = torch.rand(5, 2, dtype=torch.float64)

    def laplacian(x):
        return Derivatives(net, x, method="auto").laplacian.reshape(-1)

    curvature = KroneckerCurvature(net, names, ema=0.0, limit=8192)
    _, g = curvature.update({"residual": (Residuals((x,), laplacian), 1.0)}, {}, gradient=True)
    assert torch.isfinite(g).all() and len(curvature.layers) == 3
