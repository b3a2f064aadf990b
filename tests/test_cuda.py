"""The same library on a CUDA device (skipped where there is none): sampling on the generator's
device, derivatives, training, checkpoints, and solutions moved between devices."""

from __future__ import annotations

import copy
import signal

import numpy as np
import pytest
import torch
from helpers import tiny_config

import pinnlab as pl
from pinnlab.cli import main
from pinnlab.derivatives import EXACT_METHODS, STOCHASTIC_METHODS
from pinnlab.domains import SAMPLINGS
from pinnlab.networks import Fourier, build_network
from pinnlab.training import Interrupted, Trainer

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def cuda_generator(seed=0):
    return torch.Generator(device="cuda").manual_seed(seed)


@pytest.mark.parametrize("sampling", SAMPLINGS)
def test_sampling_on_the_generator_device(sampling):
    for domain in (pl.Box(3), pl.Ball(3), pl.SpaceTime(pl.Box(2))):
        for draw in (domain.sample_interior, domain.sample_boundary):
            x = draw(64, generator=cuda_generator(), dtype=torch.float64, sampling=sampling)
            assert x.device.type == "cuda" and x.shape == (64, domain.dim)
            y = draw(64, generator=cuda_generator(), dtype=torch.float64, sampling=sampling)
            assert torch.equal(x, y)
    s = pl.SpaceTime(pl.Ball(2)).sample_slice(8, 0.0, generator=cuda_generator())
    assert s.device.type == "cuda" and (s[:, 0] == 0).all()


@pytest.mark.parametrize("method", ["auto", *EXACT_METHODS])
@pytest.mark.parametrize("fourier", [0, 3])
@pytest.mark.parametrize("dim", [3, 12])  # 12 > width 8: the first-layer reduction applies
def test_derivatives_on_cuda_match_the_cpu(method, fourier, dim):
    g = torch.Generator().manual_seed(0)
    net = build_network(
        dim + 1,
        2,
        width=8,
        depth=2,
        wrap=[Fourier(features=fourier)] if fourier else [],
        activation="silu",
        generator=g,
    ).double()
    x = torch.rand(6, dim + 1, generator=g, dtype=torch.float64)
    b = torch.randn(6, dim, 10, generator=g, dtype=torch.float64)
    cpu = pl.Derivatives(net, x, method=method, time_dependent=True)
    gpu = pl.Derivatives(copy.deepcopy(net).cuda(), x.cuda(), method=method, time_dependent=True)
    for a, c in (
        (cpu.u, gpu.u),
        (cpu.grad, gpu.grad),
        (cpu.dt, gpu.dt),
        (cpu.laplacian, gpu.laplacian),
        (cpu.trace(b), gpu.trace(b.cuda())),
    ):
        assert c.device.type == "cuda"
        torch.testing.assert_close(c.cpu(), a, rtol=1e-9, atol=1e-10)


def test_train_on_cuda_then_use_the_solution_anywhere(tmp_path):
    out = tmp_path / "gpu.h5"
    solution = pl.run(tiny_config(device="cuda"), out=out)
    assert next(solution.model.parameters()).device.type == "cuda"
    assert solution.environment["device"].startswith("cuda")
    x = np.random.default_rng(0).random((9, 2))
    u = solution(x)
    assert isinstance(u, np.ndarray) and u.shape == (9,)
    assert solution(torch.from_numpy(x)).device.type == "cpu"
    assert solution(torch.from_numpy(x).cuda()).device.type == "cuda"
    assert solution.grad(torch.from_numpy(x).cuda()).shape == (9, 2)
    on_cpu = pl.load(out)
    assert next(on_cpu.model.parameters()).device.type == "cpu"
    np.testing.assert_allclose(on_cpu(x), u, rtol=1e-5, atol=1e-6)
    on_gpu = pl.load(out, device="cuda")
    np.testing.assert_allclose(on_gpu(x), u, rtol=1e-6, atol=1e-7)
    assert on_gpu.evaluate() == pytest.approx(solution.metrics, rel=1e-4)


def test_auto_device_picks_cuda():
    solution = pl.run(tiny_config(device="auto", train={"steps": 1}))
    assert next(solution.model.parameters()).device.type == "cuda"


def test_resume_on_cuda(monkeypatch, tmp_path):
    train = {"steps": 8, "log_every": 3, "resample_every": 2, "schedule": "cosine"}
    cfg = tiny_config(device="cuda", train=train)
    reference = pl.run(cfg)
    original = Trainer._first_order_step

    def adam_step(self, optimizer, batch):
        out = original(self, optimizer, batch)
        if self.step + 1 == 5:
            signal.raise_signal(signal.SIGINT)
        return out

    with monkeypatch.context() as m:
        m.setattr(Trainer, "_first_order_step", adam_step)
        with pytest.raises(Interrupted):
            pl.run(cfg, out=tmp_path / "r.h5")
    resumed = pl.run(cfg, out=tmp_path / "r.h5", resume=True)
    a, b = reference.model.state_dict(), resumed.model.state_dict()
    for key in a:
        torch.testing.assert_close(b[key], a[key], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(resumed.history["loss"], reference.history["loss"], rtol=1e-5)
    assert list(resumed.history["step"]) == list(range(1, 9))


def test_nan_guard_on_cuda(monkeypatch):
    from pinnlab.solvers.pinn import PINN

    original, calls = PINN.loss, {"n": 0}

    def loss(self, net, batch):
        calls["n"] += 1
        terms = original(self, net, batch)
        return {k: v * float("nan") for k, v in terms.items()} if calls["n"] == 2 else terms

    monkeypatch.setattr(PINN, "loss", loss)
    solution = pl.run(tiny_config(device="cuda", train={"steps": 4, "log_every": 1}))
    assert list(solution.history["nan_restart_step"]) == [2]
    assert all(torch.isfinite(p).all() for p in solution.model.parameters())


def test_cli_on_cuda(capsys, tmp_path):
    out = tmp_path / "c.h5"
    argv = ["solve", "poisson-sine", "--device", "cuda", "--set", "train.steps=2"]
    argv += ["--set", "train.lbfgs_steps=0", "--set", "net.width=8", "--out", str(out), "--quiet"]
    assert main(argv) == 0, capsys.readouterr().err
    assert "on cuda" in capsys.readouterr().out


@pytest.mark.parametrize("method", list(STOCHASTIC_METHODS))
def test_stochastic_estimators_draw_and_run_on_cuda(method):
    g = torch.Generator().manual_seed(0)
    net = build_network(13, 1, width=8, depth=2, generator=g).double().cuda()
    x = torch.rand(6, 13, generator=g, dtype=torch.float64).cuda()
    d = pl.Derivatives(net, x, method=method, time_dependent=True, generator=cuda_generator())
    assert d.probes.device.type == "cuda"
    assert d.laplacian.device.type == d.variance().device.type == d.dt.device.type == "cuda"
