"""The training loop: reproducibility, checkpoints and resume, NaN guard, stopping, options."""

from __future__ import annotations

import math
import signal

import numpy as np
import pytest
import torch
from helpers import tiny_config

import pinnlab as pl
from pinnlab.run import build_model
from pinnlab.solvers.pinn import PINN
from pinnlab.training import Interrupted, Trainer, _optimizer, fit_readout

CLOCK_KEYS = {"time", "eval_time", "eval_seconds"}  # wall-clock series differ between runs


def assert_same_weights(a: pl.Solution, b: pl.Solution) -> None:
    sa, sb = a.model.state_dict(), b.model.state_dict()
    assert sa.keys() == sb.keys()
    for key in sa:
        assert torch.equal(sa[key], sb[key]), key


def assert_same_history(a: pl.Solution, b: pl.Solution) -> None:
    assert a.history.keys() == b.history.keys()
    for key in a.history.keys() - CLOCK_KEYS:
        assert np.array_equal(a.history[key], b.history[key]), key


def stop_at(monkeypatch, step: int, action) -> None:
    """Run ``action(trainer)`` right after Adam/L-BFGS step number ``step`` (1-based)."""
    for name in ("_first_order_step", "_lbfgs_step"):
        original = getattr(Trainer, name)

        def wrapped(self, optimizer, batch, _original=original):
            out = _original(self, optimizer, batch)
            if self.step + 1 == step:
                action(self)
            return out

        monkeypatch.setattr(Trainer, name, wrapped)


TRAIN = {"steps": 9, "log_every": 2, "resample_every": 2, "schedule": "exponential"}


def test_same_seed_gives_bit_identical_results():
    cfg = tiny_config(train=TRAIN, seed=3)
    a, b = pl.run(cfg), pl.run(cfg)
    assert_same_weights(a, b)
    assert_same_history(a, b)
    assert a.metrics == b.metrics
    other = pl.run(tiny_config(train=TRAIN, seed=4))
    assert not torch.equal(a.model.net.out.weight, other.model.net.out.weight)
    assert not np.array_equal(a.history["loss"], other.history["loss"])


def test_ema_returns_the_moving_average_of_the_iterates_and_leaves_the_path_alone():
    train = {"steps": 1, "resample_every": 1, "eval_every": 1}
    first = pl.run(tiny_config(train=train))
    second = pl.run(tiny_config(train={**train, "steps": 2}))
    averaged = pl.run(tiny_config(train={**train, "steps": 2, "ema": 0.25}))
    w1, w2, wa = (dict(s.model.named_parameters()) for s in (first, second, averaged))
    for name, value in wa.items():  # the first update copies, the second averages
        torch.testing.assert_close(value, 0.25 * w1[name] + 0.75 * w2[name])
    assert np.array_equal(second.history["loss"], averaged.history["loss"])
    assert not np.array_equal(averaged.history["error"], second.history["error"])  # the average


@pytest.mark.parametrize("optimizer,ema", [("adam", 0.0), ("adam+lbfgs", 0.0), ("adam", 0.5)])
def test_resume_after_ctrl_c_continues_bit_for_bit(monkeypatch, tmp_path, optimizer, ema):
    train = {**TRAIN, "optimizer": optimizer, "steps": 5, "lbfgs_steps": 4, "ema": ema}
    cfg = tiny_config(train=train)
    reference = pl.run(cfg)
    assert reference.environment["steps"] == (9 if optimizer == "adam+lbfgs" else 5)

    out = tmp_path / "run.h5"
    with monkeypatch.context() as m:
        # Ctrl-C during step 3 (Adam) or 7 (L-BFGS), between two syncs of the losses (every 2
        # steps): the step finishes, a checkpoint is written.
        stop_at(m, 7 if optimizer == "adam+lbfgs" else 3, lambda _: signal.raise_signal(2))
        with pytest.raises(Interrupted, match="continue with --resume"):
            pl.run(cfg, out=out)
    checkpoint = tmp_path / "run.h5.ckpt"
    assert checkpoint.exists() and not out.exists()

    resumed = pl.run(cfg, out=out, resume=True)
    assert_same_weights(reference, resumed)
    assert_same_history(reference, resumed)
    assert out.exists() and not checkpoint.exists()
    assert_same_weights(reference, pl.load(out))


def test_resume_after_a_crash_from_a_periodic_checkpoint(monkeypatch, tmp_path):
    """Checkpoints every 3 steps, losses synced every 4: a crash in step 8 resumes from 6."""
    train = {**TRAIN, "log_every": 4}
    cfg = tiny_config(train={**train, "checkpoint_every": 3})
    reference = pl.run(tiny_config(train=train))  # checkpoints do not change the result
    out = tmp_path / "run.h5"

    def crash(trainer):
        raise RuntimeError("power cut")

    with monkeypatch.context() as m:
        stop_at(m, 8, crash)
        with pytest.raises(RuntimeError, match="power cut"):
            pl.run(cfg, out=out)
    state = torch.load(f"{out}.ckpt", weights_only=True)
    assert state["step"] == 6
    assert state["history"]["step"] == [1, 2, 3, 4, 5, 6]  # no loss lost between syncs

    resumed = pl.run(cfg, out=out, resume=True)
    assert_same_weights(reference, resumed)
    assert_same_history(reference, resumed)


def test_a_checkpoint_of_another_run_is_refused(monkeypatch, tmp_path):
    out = tmp_path / "run.h5"
    cfg = tiny_config(train={**TRAIN, "checkpoint_every": 2})
    with monkeypatch.context() as m:
        stop_at(m, 4, lambda _: signal.raise_signal(2))
        with pytest.raises(Interrupted):
            pl.run(cfg, out=out)
    # More steps, another seed: another run. A longer time budget: the same run.
    for sets in (["train.steps=20"], ["seed=1"]):
        other = tiny_config(train={**TRAIN, "checkpoint_every": 2}, sets=sets)
        with pytest.raises(pl.TrainingError, match="belongs to a different run config"):
            pl.run(other, out=out, resume=True)
    same = tiny_config(train={**TRAIN, "checkpoint_every": 5}, sets=["train.time_budget=1000"])
    assert pl.run(same, out=out, resume=True).environment["steps"] == 9


def test_resume_needs_a_checkpoint(tmp_path):
    with pytest.raises(pl.PinnlabError, match="no checkpoint at"):
        pl.run(tiny_config(), out=tmp_path / "run.h5", resume=True)
    with pytest.raises(pl.PinnlabError, match="no checkpoint at None"):
        pl.run(tiny_config(), resume=True)
    (tmp_path / "bad.h5.ckpt").write_bytes(b"not a checkpoint")
    with pytest.raises(pl.TrainingError, match="cannot be read"):
        pl.run(tiny_config(), out=tmp_path / "bad.h5", resume=True)


def nan_on_calls(monkeypatch, calls):
    """Make PINN.loss return NaN terms on the given (1-based) calls."""
    original = PINN.loss
    count = {"n": 0}

    def loss(self, net, batch):
        count["n"] += 1
        terms = original(self, net, batch)
        if calls == "all" or count["n"] in calls:
            terms = {k: v * float("nan") for k, v in terms.items()}
        return terms

    monkeypatch.setattr(PINN, "loss", loss)


def test_nan_guard_restores_and_halves_the_learning_rate(monkeypatch):
    nan_on_calls(monkeypatch, {3})
    lr = 1e-2
    solution = pl.run(tiny_config(train={"steps": 6, "log_every": 1, "lr": lr}))
    h = solution.history
    assert list(h["nan_restart_step"]) == [3]
    assert solution.environment["nan_restarts"] == 1
    # Step 3 was undone: its loss is not in the history, every later step runs at lr/2.
    assert list(h["step"]) == [1, 2, 4, 5, 6]
    assert list(h["lr"]) == [lr, lr, lr / 2, lr / 2, lr / 2]
    assert np.isfinite(h["loss"]).all()
    assert all(torch.isfinite(p).all() for p in solution.model.parameters())


def test_nan_guard_gives_up_with_a_clear_message(monkeypatch):
    nan_on_calls(monkeypatch, "all")
    cfg = tiny_config(train={"steps": 10, "log_every": 1, "max_nan_restarts": 2})
    with pytest.raises(
        pl.TrainingError, match=r"NaN or infinite, or diverged .* 3 times .* lower train\.lr"
    ):
        pl.run(cfg)


def test_a_problem_with_non_finite_data_fails_cleanly(nan_dir):
    cfg = tiny_config("test-nan", problems_dirs=[nan_dir], train={"max_nan_restarts": 1})
    with pytest.raises(pl.TrainingError, match=r"NaN or infinite, or diverged .*\), 2 times"):
        pl.run(cfg, problems_dirs=[nan_dir])


def test_target_error_stops_training():
    cfg = tiny_config(train={"steps": 50, "eval_every": 3, "log_every": 5, "target_error": 10.0})
    solution = pl.run(cfg)
    env = solution.environment
    assert env["stop_reason"] == "target_error" and env["steps"] == 3
    assert list(solution.history["eval_step"]) == [3]
    assert solution.history["error"][0] <= 10.0
    assert list(solution.history["step"]) == [1, 2, 3]  # losses up to the stop are kept


def test_unreached_target_error_runs_all_steps():
    cfg = tiny_config(train={"steps": 4, "eval_every": 2, "target_error": 1e-12})
    solution = pl.run(cfg)
    assert solution.environment["stop_reason"] == "steps"
    assert list(solution.history["eval_step"]) == [2, 4]


def test_time_budget_stops_training():
    cfg = tiny_config(train={"steps": 1000, "log_every": 50, "time_budget": 1e-9})
    solution = pl.run(cfg)
    env = solution.environment
    assert env["stop_reason"] == "time_budget" and env["steps"] == 1
    assert list(solution.history["step"]) == [1]
    assert list(solution.history["eval_step"]) == [1]


def test_target_error_needs_a_truth(nan_dir):
    cfg = tiny_config("test-nan", problems_dirs=[nan_dir], train={"target_error": 0.1})
    with pytest.raises(pl.ConfigError, match="target_error needs a known truth"):
        pl.run(cfg, problems_dirs=[nan_dir])


def test_history_records_every_term_and_the_error():
    solution = pl.run(tiny_config(train={"steps": 4, "eval_every": 2, "log_every": 3}))
    h = solution.history
    assert {"step", "loss", "loss.residual", "loss.boundary", "lr", "time"} <= set(h)
    assert list(h["step"]) == [1, 2, 3, 4]
    np.testing.assert_allclose(h["loss"], h["loss.residual"] + h["loss.boundary"], rtol=1e-6)
    assert list(h["eval_step"]) == [2, 4] and len(h["error"]) == 2
    assert h["error"][-1] == pytest.approx(solution.metrics["rel_l2"], rel=1e-12)


@pytest.mark.parametrize("optimizer", ["lbfgs", "adam+lbfgs"])
def test_lbfgs_reduces_the_loss_on_a_fixed_batch(optimizer):
    cfg = tiny_config(train={"optimizer": optimizer, "steps": 3, "lbfgs_steps": 6})
    solution = pl.run(cfg)
    h = solution.history
    n = 3 if optimizer == "lbfgs" else 9
    assert solution.environment["steps"] == n and list(h["step"]) == list(range(1, n + 1))
    lbfgs = h["loss"][-6:] if optimizer == "adam+lbfgs" else h["loss"]
    assert lbfgs[-1] < lbfgs[0]
    assert set(h["lr"][-len(lbfgs) :]) == {1.0}


def test_lbfgs_keeps_stepping_at_a_tiny_loss_scale():
    """torch's absolute tolerances (1e-7 on the gradient, 1e-9 on g·d) would freeze L-BFGS
    on this loss from the first step: its gradient is 2e-10. Ours has none."""
    theta = torch.nn.Parameter(torch.zeros(3, dtype=torch.float64))
    target = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    settings = pl.RunConfig.model_validate({"problem": {"id": "poisson-sine"}}).train
    optimizer = _optimizer("lbfgs", torch.nn.ParameterList([theta]), settings, 1.0)

    def closure():
        optimizer.zero_grad()
        loss = 1e-10 * (theta - target).square().sum()
        loss.backward()
        return loss

    for _ in range(5):
        optimizer.step(closure)
    torch.testing.assert_close(theta.detach(), target)


def test_resume_takes_the_optimizer_settings_from_this_version(monkeypatch, tmp_path):
    """A checkpoint restores the optimizer's state; its settings (here a tolerance that would
    stop L-BFGS at once, as an older checkpoint could carry) are replaced by the current ones."""
    train = {**TRAIN, "optimizer": "lbfgs", "steps": 6, "checkpoint_every": 2}
    cfg = tiny_config(train=train)
    out = tmp_path / "run.h5"
    with monkeypatch.context() as m:
        stop_at(m, 3, lambda _: signal.raise_signal(2))
        with pytest.raises(Interrupted):
            pl.run(cfg, out=out)
    checkpoint = tmp_path / "run.h5.ckpt"
    state = torch.load(checkpoint, weights_only=True)
    for group in state["optimizer"]["param_groups"]:
        group["tolerance_grad"] = 1e3
    torch.save(state, checkpoint)
    loss = pl.run(cfg, out=out, resume=True).history["loss"]
    assert len(loss) == 6 and loss[-1] < loss[3]


@pytest.mark.parametrize("schedule", ["constant", "exponential", "cosine", "step"])
def test_learning_rate_schedules(schedule):
    train = {"steps": 8, "lr": 1e-2, "schedule": schedule, "final_lr": 1e-4, "decay_every": 3}
    lr = pl.run(tiny_config(train=train)).history["lr"]
    assert len(lr) == 8
    if schedule == "constant":
        assert set(lr) == {1e-2}
    elif schedule == "step":
        assert list(lr) == pytest.approx([1e-2] * 2 + [5e-3] * 3 + [2.5e-3] * 3)
    else:  # the rate after the last step is final_lr, and it decreases monotonically
        assert lr[-1] == pytest.approx(1e-4)
        assert (np.diff(lr) < 0).all()


def test_resampling_draws_fresh_points_every_k_steps(monkeypatch):
    calls = {"n": 0}
    original = PINN.batch

    def batch(self, model, generator):
        calls["n"] += 1
        return original(self, model, generator)

    monkeypatch.setattr(PINN, "batch", batch)
    for every, expected in ((0, 1), (1, 6), (2, 3), (4, 2)):
        calls["n"] = 0
        pl.run(tiny_config(train={"steps": 6, "resample_every": every}))
        assert calls["n"] == expected, every


def test_gradient_clipping_limits_the_updates():
    def change(clip):
        cfg = tiny_config(train={"steps": 3, "clip_grad": clip, "lr": 1e-2})
        problem = pl.problem("poisson-sine", dim=2)
        from pinnlab.run import build_model

        start = build_model(problem, cfg, device=torch.device("cpu")).module.state_dict()
        end = pl.run(cfg).model.state_dict()
        return max(float((end[k] - start[k]).abs().max()) for k in start)

    assert change(None) > 1e-3
    assert change(1e-12) < 1e-5  # Adam's eps dominates gradients that small


def test_loss_weights(monkeypatch):
    solution = pl.run(tiny_config(solver={"weights": {"boundary": 0.0}}))
    h = solution.history
    assert np.array_equal(h["loss"], h["loss.residual"])
    assert (h["loss.boundary"] > 0).all()
    doubled = pl.run(tiny_config(train={"steps": 1}, solver={"weights": {"residual": 2.0}}))
    h = doubled.history
    assert h["loss"][0] == pytest.approx(2 * h["loss.residual"][0] + h["loss.boundary"][0])
    with pytest.raises(pl.UnknownNameError, match="Did you mean 'boundary'"):
        pl.run(tiny_config(solver={"weights": {"boundry": 1.0}}))


def test_mean_weight_splits_the_mean_square_into_variance_and_mean():
    """mean r² = Var r + (mean r)²: weight 1 is the plain loss, weight w scales the second."""
    problem = pl.problem("poisson-sine", dim=6)
    config = tiny_config("poisson-sine", dim=6, net={"kind": "deepsets", "width": 8, "depth": 2})
    batch = None
    for w in (1.0, 0.25):
        settings = config.solver | {"mean_weight": w}
        solver = PINN(problem, PINN.Settings.model_validate(settings), dtype=torch.float32)
        model = build_model(problem, config, device=torch.device("cpu"), solver=solver)
        batch = batch or solver.batch(model, torch.Generator().manual_seed(0))
        r = solver._residual(model, batch["residual"], None).detach()
        expected = (r - r.mean()).square().mean() + w * r.mean().square()
        loss = solver.loss(model, batch)
        torch.testing.assert_close(loss["residual"].detach(), expected)
        e = (model.module(batch["boundary"]).squeeze(1) - problem.exact(batch["boundary"])).detach()
        boundary = (e - e.mean()).square().mean() + w * e.mean().square()
        torch.testing.assert_close(loss["boundary"].detach(), boundary)
        if w == 1.0:
            torch.testing.assert_close(loss["residual"].detach(), r.square().mean())
    assert abs(float(r.mean())) > 0.1 * float(r.std())  # the two terms differ here
    with pytest.raises(pl.ConfigError, match="mean_weight"):
        pl.run(tiny_config(solver={"mean_weight": 0.0}))


def test_weights_of_named_residuals(user_dir):
    """A residual given as a dict of named terms: each name is a loss term with a weight."""

    def run(weights):
        cfg = tiny_config("test-pair", problems_dirs=[user_dir], solver={"weights": weights})
        return pl.run(cfg, problems_dirs=[user_dir]).history

    h = run({"first": 3.0, "boundary": 0.5})
    total = 3.0 * h["loss.first"] + h["loss.second"] + 0.5 * h["loss.boundary"]
    np.testing.assert_allclose(h["loss"], total, rtol=1e-6)
    with pytest.raises(pl.UnknownNameError, match="Available: boundary, first, second"):
        run({"residual": 2.0})  # there is no single residual term here


def test_hard_boundary_conditions():
    solution = pl.run(
        tiny_config("poisson-ball", dim=3, net={"width": 8, "depth": 2, "hard_bc": True})
    )
    assert "loss.boundary" not in solution.history
    y = pl.Ball(3).sample_boundary(20, generator=torch.Generator().manual_seed(0))
    assert float(abs(solution(y.numpy())).max()) < 1e-5
    # On a box the lift blends the data of the faces: the data hold there exactly too.
    box = pl.run(tiny_config("poisson-sine", dim=3, net={"width": 8, "depth": 2, "hard_bc": True}))
    y = pl.Box(3).sample_boundary(20, generator=torch.Generator().manual_seed(0))
    exact = pl.problem("poisson-sine", dim=3).exact(y.double()).numpy()
    assert float(abs(box(y.numpy()) - exact).max()) < 1e-5
    with pytest.raises(pl.ConfigError, match="provides no lift"):
        pl.run(tiny_config("bs-geometric-basket", net={"hard_bc": True}))


def test_hard_bc_starts_from_the_least_squares_constant():
    """u = g + φ(c + N) with c minimising the initial mean squared residual (measured here
    by moving c), saved with the weights; a file from before the shift loads with c = 0."""
    from pinnlab.run import build_model, build_solver

    cfg = tiny_config("poisson-ball", dim=30, net={"width": 8, "depth": 2, "hard_bc": True})
    problem = pl.problem("poisson-ball", dim=30)
    solver = build_solver(problem, cfg)
    bound = build_model(problem, cfg, device=torch.device("cpu"), solver=solver)
    model = bound.module
    c = model.shift.clone()
    x = pl.Ball(30).sample_interior(256, generator=torch.Generator().manual_seed(0))

    def mean_square(shift):
        model.shift = shift
        return float(solver.loss(bound, {"residual": x})["residual"].detach())

    best = mean_square(c)
    assert abs(float(c)) > 1.0  # u/φ = Σ cᵢ sin(…), far from N's unit start at this seed
    assert best < mean_square(c + 0.05 * abs(c)) and best < mean_square(c - 0.05 * abs(c))
    assert best < 0.5 * mean_square(torch.zeros(1))
    model.shift = c
    state = {k: v for k, v in model.state_dict().items() if k != "shift"}
    model.load_state_dict(state)
    assert float(model.shift) == 0.0


def test_exact_derivative_methods_train_the_same(monkeypatch):
    runs = [
        pl.run(tiny_config(dim=12, dtype="float64", solver={"derivatives": method}))
        for method in ("reduced", "forward", "reverse")  # the tiny net is narrower than d
    ]
    for other in runs[1:]:
        np.testing.assert_allclose(runs[0].history["loss"], other.history["loss"], rtol=1e-9)
    with pytest.raises(pl.UnknownNameError, match="Did you mean 'reverse'"):
        pl.run(tiny_config(solver={"derivatives": "revrse"}))


@pytest.mark.parametrize("method", ["hutchinson", "sdgd"])
def test_stochastic_derivatives_train_and_report_their_variance(method, tmp_path):
    cfg = tiny_config(
        dim=12,
        solver={"derivatives": method, "probes": 3},
        train={"steps": 6, "eval_every": 3, "checkpoint_every": 2},
    )
    solution = pl.run(cfg)
    h = solution.history
    assert list(h["eval_step"]) == [3, 6] and len(h["residual_var"]) == 2
    assert (h["residual_var"] > 0).all() and np.isfinite(h["loss"]).all()
    again = pl.run(cfg)  # the probes come from the run's generator: reproducible
    np.testing.assert_array_equal(h["loss"], again.history["loss"])
    with pytest.raises(pl.ConfigError, match="probes"):
        pl.run(tiny_config(solver={"derivatives": method, "probes": 0}))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("sampling", ["uniform", "sobol"])
def test_dtypes_and_samplings(dtype, sampling):
    solution = pl.run(tiny_config(dtype=dtype, solver={"sampling": sampling}))
    assert next(solution.model.parameters()).dtype == getattr(torch, dtype)
    assert np.isfinite(solution.history["loss"]).all()
    assert all(math.isfinite(v) for v in solution.metrics.values())


def test_user_problems_train(user_dir):
    """A space-time problem (initial condition on a slice) and a two-output problem."""
    heat = pl.run(tiny_config("test-heat", problems_dirs=[user_dir]), problems_dirs=[user_dir])
    assert {"loss.residual", "loss.boundary", "loss.initial"} <= set(heat.history)
    pair = pl.run(tiny_config("test-pair", problems_dirs=[user_dir]), problems_dirs=[user_dir])
    assert {"loss.first", "loss.second", "loss.boundary"} <= set(pair.history)
    assert pair(np.zeros((3, 2))).shape == (3, 2)


def test_progress_bar(capsys):
    pl.run(tiny_config(train={"steps": 2}), progress=True)
    assert "2/2" in capsys.readouterr().err


def test_solve_api(tmp_path):
    solution = pl.solve(
        "poisson-sine", dim=3, config=tiny_config(), train={"steps": 2}, out=tmp_path / "s.h5"
    )
    assert solution.problem == pl.problem("poisson-sine", dim=3)
    assert solution.environment["steps"] == 2 and (tmp_path / "s.h5").exists()
    again = pl.solve(pl.problem("poisson-ball", dim=2, coef_seed=4), config=tiny_config())
    assert again.problem.coef_seed == 4 and again.problem.dim == 2
    with pytest.raises(pl.ConfigError, match="neither a parameter of poisson-sine"):
        pl.solve("poisson-sine", trian={"steps": 2})


def test_samples_seen_counts_every_batch_drawn():
    cfg = tiny_config(
        train={"steps": 6, "resample_every": 2, "optimizer": "adam+lbfgs", "lbfgs_steps": 2},
        solver={"n_interior": 16, "n_boundary": 4},
        sets=["train.lbfgs_batches=3"],
    )
    solution = pl.run(cfg)
    # Adam: a batch at steps 1, 3, 5; L-BFGS: one draw of 3 batches; 16 + 4 points each.
    assert solution.environment["samples"] == (3 + 3) * (16 + 4)


def test_fit_readout_is_the_least_squares_fit_of_the_output_layer():
    from pinnlab.networks import build_network

    g = torch.Generator().manual_seed(0)
    net = build_network(3, 2, width=8, depth=2, generator=g).double()
    xs = [torch.rand(40, 3, generator=g, dtype=torch.float64) for _ in range(3)]
    phi = torch.cat([net.readout(x) for x in xs]).detach()
    weight, bias = torch.randn(2, 8, generator=g, dtype=torch.float64), torch.tensor([1.0, -2.0])
    noise = 0.1 * torch.randn(120, 2, generator=g, dtype=torch.float64)
    y = phi @ weight.T + bias.double() + noise
    assert fit_readout(net, zip(xs, y.split(40), strict=True)) == 120
    # The normal equations batch by batch give the dense least-squares solution.
    a = np.concatenate([phi.numpy(), np.ones((120, 1))], axis=1)
    coef = np.linalg.lstsq(a, y.numpy(), rcond=None)[0]
    np.testing.assert_allclose(net.out.weight.detach().numpy(), coef[:-1].T, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(net.out.bias.detach().numpy(), coef[-1], rtol=1e-7, atol=1e-9)
    assert not np.allclose(coef[:-1].T, weight.numpy(), atol=1e-3)  # the noise was fitted too
    bad = y[:40].clone()
    bad[3, 1] = float("nan")
    with pytest.raises(pl.TrainingError, match="not finite"):
        fit_readout(net, [(xs[0], bad)])
    with pytest.raises(pl.TrainingError, match="no samples"):
        fit_readout(net, [])


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")  # torch.compile
def test_compiled_steps_follow_the_eager_ones_to_rounding():
    """train.compile runs the same loss: the losses of a few Adam steps agree with eager
    training to float32 rounding (fused operations round differently, so not bit for bit)."""
    train = {"steps": 4, "log_every": 1, "resample_every": 2}
    eager = pl.run(tiny_config(train=train, seed=5))
    compiled = pl.run(tiny_config(train={**train, "compile": True}, seed=5))
    assert compiled.config.train.compile
    np.testing.assert_allclose(compiled.history["loss"], eager.history["loss"], rtol=1e-4)


def test_balanced_weights_equalise_the_gradient_norms():
    from pinnlab.training import balanced_weights

    w = balanced_weights({"a": torch.tensor(1.0), "b": torch.tensor(3.0), "c": torch.tensor(0.0)})
    assert w == {"a": 4.0, "b": 4.0 / 3.0, "c": 1.0}

    from pinnlab.config import TrainSection
    from pinnlab.networks import MLP
    from pinnlab.solvers.pinn import PINN, PINNSettings

    problem = pl.problem("poisson-sine", dim=2)
    solver = PINN(
        problem,
        PINNSettings(n_interior=64, n_boundary=32, weights={"boundary": 10.0}),
        dtype=torch.float32,
    )
    model = solver.bind(MLP(2, 1, width=8, depth=2, generator=torch.Generator().manual_seed(0)))
    settings = TrainSection(steps=1, balance="grad-norm", balance_decay=0.0)
    trainer = Trainer(solver, model, settings, generator=torch.Generator().manual_seed(0))
    terms = solver.loss(model, solver.batch(model, torch.Generator().manual_seed(1)))
    trainer._rebalance(terms)
    params = list(model.module.parameters())

    def norm(k):
        w = trainer.weights.get(k, 1.0) * trainer.balance[k]
        grads = torch.autograd.grad(w * terms[k], params, retain_graph=True, allow_unused=True)
        return float(torch.sqrt(sum(g.square().sum() for g in grads if g is not None)))

    # with β = 0 every weighted term's gradient has the norm Σ_j g_j
    assert norm("residual") == pytest.approx(norm("boundary"), rel=1e-5)
    assert trainer.history["balance_step"] == [0]


def test_a_balanced_run_records_its_weights_and_resumes_bit_for_bit(monkeypatch, tmp_path):
    train = {**TRAIN, "steps": 6, "balance": "grad-norm", "balance_every": 2}
    cfg = tiny_config(train=train)
    reference = pl.run(cfg)
    assert list(reference.history["balance_step"]) == [0, 2, 4]
    assert {"balance.residual", "balance.boundary"} <= set(reference.history)
    assert all(w > 0 for w in reference.history["balance.boundary"])
    out = tmp_path / "run.h5"
    with monkeypatch.context() as m:
        stop_at(m, 3, lambda _: signal.raise_signal(2))
        with pytest.raises(Interrupted):
            pl.run(cfg, out=out)
    resumed = pl.run(cfg, out=out, resume=True)
    assert_same_weights(reference, resumed)
    assert_same_history(reference, resumed)
