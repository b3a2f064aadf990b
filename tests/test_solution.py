"""Solutions: evaluation (numpy and torch), gradients, chunking, metrics, HDF5 round trip."""

from __future__ import annotations

import json
import random
import shutil

import h5py
import numpy as np
import pytest
import torch
from helpers import tiny_config
from torch import nn

import pinnlab as pl
import pinnlab.metrics as metrics_module
import pinnlab.solution as solution_module
from pinnlab.metrics import FIELD_METRICS, error_metrics
from pinnlab.run import build_model

METRIC_KEYS = {"rel_l2", "rel_l1", "max_abs", "rel_l2_centered", "rel_h1_seminorm"}


def untrained(problem_id="poisson-sine", problems_dirs=(), **sections) -> pl.Solution:
    """A solution with freshly initialised weights (no training needed to test storage)."""
    cfg = tiny_config(problem_id, problems_dirs=problems_dirs, **sections)
    problem = pl.catalogue(problems_dirs).problem(cfg.problem.id, **cfg.problem.params())
    model = build_model(problem, cfg, device=torch.device("cpu")).module
    return pl.Solution(problem, model, cfg, history={"loss": [1.0, 0.5]}, environment={"x": 1})


def rand(n, d, seed=0):
    return np.random.default_rng(seed).random((n, d))


def test_save_load_gives_identical_outputs(solved, tmp_path):
    solution, path = solved
    loaded = pl.load(path)
    assert isinstance(loaded, pl.Solution)
    assert repr(loaded) == "Solution(poisson-sine(dim=2), method='pinn')"
    x = rand(50, 2)
    u = loaded(x)
    assert isinstance(u, np.ndarray) and u.shape == (50,)
    assert np.array_equal(u, solution(x))
    assert np.array_equal(loaded.grad(x), solution.grad(x))
    assert loaded.grad(x).shape == (50, 2)

    original, restored = solution.model.state_dict(), loaded.model.state_dict()
    assert original.keys() == restored.keys()
    assert all(torch.equal(original[k], restored[k]) for k in original)
    assert loaded.config == solution.config
    assert loaded.environment == solution.environment
    assert loaded.environment["stop_reason"] == "steps" and loaded.environment["steps"] == 4
    assert loaded.history.keys() == solution.history.keys()
    for key, values in solution.history.items():
        assert np.array_equal(loaded.history[key], values), key
    assert loaded.metrics == solution.metrics
    assert loaded.evaluate() == pytest.approx(solution.metrics, rel=1e-12)
    # Saving the loaded solution again round-trips as well.
    again = pl.load(loaded.save(tmp_path / "again.h5"))
    assert np.array_equal(again(x), u)


def test_torch_in_torch_out_and_differentiable(solved):
    _, path = solved
    loaded = pl.load(path)
    x = torch.from_numpy(rand(20, 2)).float().requires_grad_(True)
    u = loaded(x)
    assert isinstance(u, torch.Tensor) and u.shape == (20,) and u.requires_grad
    (g,) = torch.autograd.grad(u.sum(), x)
    torch.testing.assert_close(g, loaded.grad(x.detach()), rtol=1e-5, atol=1e-6)
    # torch and numpy agree.
    np.testing.assert_allclose(u.detach().numpy(), loaded(x.detach().numpy()), rtol=1e-6)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_chunked_evaluation_equals_unchunked(monkeypatch, dtype):
    solution = untrained(dtype=dtype)
    x = rand(23, 2)
    xt = torch.from_numpy(x)
    whole = (solution(x), solution.grad(x), solution(xt), solution.grad(xt))
    monkeypatch.setattr(solution_module, "CHUNK", 4)
    monkeypatch.setattr(metrics_module, "GRAPH_NUMBERS", 6)  # 3 rows of 2 columns
    chunked = (solution(x), solution.grad(x), solution(xt), solution.grad(xt))
    rtol = 1e-6 if dtype == "float32" else 1e-12
    for a, b in zip(whole, chunked, strict=True):
        assert a.shape == b.shape and type(a) is type(b)
        if isinstance(a, torch.Tensor):
            a, b = a.detach().numpy(), b.detach().numpy()
        np.testing.assert_allclose(b, a, rtol=rtol, atol=rtol)


def test_wrong_point_shapes_are_refused(solved, user_dir):
    solution, _ = solved
    for bad in (rand(5, 3), rand(5, 1), np.zeros(5), np.zeros((2, 2, 2))):
        with pytest.raises(pl.ShapeError, match=r"must have shape \(n, 2\)"):
            solution(bad)
        with pytest.raises(pl.ShapeError):
            solution.grad(torch.from_numpy(np.atleast_1d(bad)))
    heat = untrained("test-heat", problems_dirs=[user_dir], dim=2)
    with pytest.raises(pl.ShapeError, match="t in column 0"):
        heat(rand(5, 2))


def test_time_dependent_and_multi_output_solutions(user_dir):
    heat = untrained("test-heat", problems_dirs=[user_dir], dim=2)
    assert heat.in_dim == 3 and heat.time_dependent
    x = rand(7, 3)
    assert heat(x).shape == (7,)
    assert heat.grad(x).shape == (7, 2)  # spatial gradient only
    pair = untrained("test-pair", problems_dirs=[user_dir], dim=3)
    y = rand(7, 3) / 2
    assert pair(y).shape == (7, 2)
    assert pair.grad(y).shape == (7, 2, 3)
    for solution in (heat, pair):
        assert set(solution.metrics) >= METRIC_KEYS


class ExactModel(nn.Module):
    """The exact solution as a model (a dummy parameter carries dtype and device)."""

    def __init__(self, problem):
        super().__init__()
        self.problem = problem
        self.dummy = nn.Parameter(torch.zeros((), dtype=torch.float64))

    def forward(self, x):
        u = self.problem.exact(x) + self.dummy
        return u if u.dim() == 2 else u[:, None]


@pytest.mark.parametrize(
    ("problem_id", "dim"),
    [("poisson-sine", 3), ("poisson-quadratic", 4), ("test-heat", 2), ("test-pair", 2)],
)
def test_metrics_of_the_exact_solution_vanish(problem_id, dim, user_dir):
    cfg = tiny_config(problem_id, problems_dirs=[user_dir], dim=dim, dtype="float64")
    problem = pl.catalogue([user_dir]).problem(problem_id, dim=dim)
    metrics = pl.Solution(problem, ExactModel(problem), cfg).metrics
    assert set(metrics) == METRIC_KEYS | {"const_rel_l2"}
    for key in METRIC_KEYS:
        assert metrics[key] < 1e-10, (key, metrics[key])
    assert 0 < metrics["const_rel_l2"] <= 1


def test_error_metrics_values():
    u_true = torch.tensor([1.0, 2.0, 3.0, 4.0], dtype=torch.float64)
    g_true = torch.ones(4, 2, dtype=torch.float64)
    m = error_metrics(2 * u_true, u_true, 3 * g_true, g_true)
    assert tuple(m) == FIELD_METRICS
    assert m["rel_l2"] == pytest.approx(1.0)
    assert m["rel_l1"] == pytest.approx(1.0)
    assert m["max_abs"] == pytest.approx(4.0)
    assert m["rel_l2_centered"] == pytest.approx(1.0)
    assert m["rel_h1_seminorm"] == pytest.approx(2.0)
    # A constant shift is invisible to the centred metric and to the gradient.
    m = error_metrics(u_true + 5, u_true, g_true, g_true)
    assert m["rel_l2_centered"] == pytest.approx(0.0, abs=1e-15)
    assert m["rel_h1_seminorm"] == 0.0
    assert m["rel_l2"] == pytest.approx(10 / float(u_true.norm()))
    # The best constant (the mean) scores const_rel_l2.
    best = torch.full_like(u_true, float(u_true.mean()))
    m2 = error_metrics(best, u_true, g_true, g_true)
    assert m2["rel_l2"] == pytest.approx(m2["const_rel_l2"])


# --- files that are not good solutions -------------------------------------------------------


def test_missing_file(tmp_path):
    with pytest.raises(pl.SolutionFileError, match="does not exist"):
        pl.load(tmp_path / "nope.h5")


def test_random_bytes(tmp_path):
    path = tmp_path / "noise.h5"
    path.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(pl.SolutionFileError, match="not a readable HDF5 file"):
        pl.load(path)


@pytest.mark.parametrize("keep", [0.0, 0.01, 0.25, 0.5, 0.9, 0.999])
def test_truncated_file(solved, tmp_path, keep):
    _, path = solved
    data = path.read_bytes()
    bad = tmp_path / "truncated.h5"
    bad.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(pl.SolutionFileError):
        pl.load(bad)


def test_damaged_file_raises_only_solution_file_errors(solved, tmp_path):
    """Overwrite blocks of a real file with random bytes: either the file still loads (the
    damage hit data) or SolutionFileError says so; never another exception."""
    _, path = solved
    data = path.read_bytes()
    rng = random.Random(0)
    bad = tmp_path / "damaged.h5"
    outcomes = set()
    for start in range(0, len(data) - 64, max(64, len(data) // 300)):
        damaged = bytearray(data)
        damaged[start : start + 64] = rng.randbytes(64)
        bad.write_bytes(bytes(damaged))
        try:
            pl.load(bad)
            outcomes.add("loaded")
        except pl.SolutionFileError:
            outcomes.add("refused")
    assert "refused" in outcomes


def test_not_a_pinnlab_file(tmp_path):
    path = tmp_path / "other.h5"
    with h5py.File(path, "w") as f:
        f["x"] = np.arange(3)
    with pytest.raises(pl.SolutionFileError, match="not a pinnlab solution"):
        pl.load(path)


def _edited_copy(src, dst, edit):
    shutil.copy(src, dst)
    with h5py.File(dst, "r+") as f:
        edit(f)
    return dst


def test_newer_format_version(solved, tmp_path):
    _, path = solved

    def edit(f):
        f.attrs["format_version"] = solution_module.FORMAT_VERSION + 1

    with pytest.raises(pl.SolutionFileError, match="Upgrade pinnlab"):
        pl.load(_edited_copy(path, tmp_path / "v2.h5", edit))


def test_missing_weights_and_bad_config(solved, tmp_path):
    _, path = solved

    def drop_weight(f):
        del f["weights"][next(iter(f["weights"]))]

    with pytest.raises(pl.SolutionFileError, match="weights do not match its config"):
        pl.load(_edited_copy(path, tmp_path / "w.h5", drop_weight))

    def bad_config(f):
        f.attrs["config"] = "{not json"

    with pytest.raises(pl.SolutionFileError, match="damaged or incomplete"):
        pl.load(_edited_copy(path, tmp_path / "c.h5", bad_config))

    def no_history(f):
        del f["history"]

    with pytest.raises(pl.SolutionFileError, match="damaged or incomplete"):
        pl.load(_edited_copy(path, tmp_path / "h.h5", no_history))


def test_file_holds_no_pickles(solved):
    """Config, environment and metrics are JSON; weights and history are plain arrays."""
    _, path = solved
    with h5py.File(path, "r") as f:
        assert f.attrs["format"] == "pinnlab-solution"
        for key in ("config", "environment", "metrics"):
            json.loads(f.attrs[key])
        for group in ("weights", "history"):
            for dataset in f[group].values():
                assert dataset.dtype.kind in "fiu", dataset.name


def test_save_is_atomic_and_leaves_no_temporary_files(tmp_path):
    solution = untrained()
    path = solution.save(tmp_path / "sub" / "run.h5")
    assert path.exists()
    assert [p.name for p in path.parent.iterdir()] == ["run.h5"]
    # A failed save leaves the old file as it was and no temporary file behind.
    before = path.read_bytes()
    solution.history = {"bad": np.array([object()])}
    with pytest.raises(TypeError):
        solution.save(path)
    assert path.read_bytes() == before
    assert [p.name for p in path.parent.iterdir()] == ["run.h5"]


def test_a_problem_can_add_its_own_metrics(tmp_path):
    """``extra_metrics(solution)`` on the problem adds entries to Solution.metrics."""
    import dataclasses

    problem = pl.problem("poisson-sine", dim=2)
    solution = pl.solve(problem, train={"steps": 2, "lbfgs_steps": 0}, net={"width": 8, "depth": 1})

    @dataclasses.dataclass(frozen=True)
    class WithMetric(type(problem)):
        def extra_metrics(self, sol):
            return {"value_at_centre": float(sol(np.full((1, 2), 0.5))[0])}

    solution.problem = WithMetric(dim=2)
    metrics = solution.evaluate()
    assert "rel_l2" in metrics
    assert metrics["value_at_centre"] == pytest.approx(float(solution(np.full((1, 2), 0.5))[0]))


def test_files_from_before_the_input_map_still_load(tmp_path):
    """Solutions saved before net.normalize_input existed had no input map."""
    solution = untrained(net={"width": 8, "depth": 2, "normalize_input": False})
    path = solution.save(tmp_path / "old.h5")

    def forget(f):
        config = json.loads(f.attrs["config"])
        del config["net"]["normalize_input"]
        f.attrs["config"] = json.dumps(config)

    old = pl.load(_edited_copy(path, tmp_path / "older.h5", forget))
    x = rand(5, 2)
    np.testing.assert_array_equal(old(x), solution(x))
    assert not old.config.net.normalize_input


def test_test_set_shrinks_in_very_high_dimension():
    from pinnlab.metrics import test_points, test_size

    assert test_size(2) == test_size(10_000) == 10_000
    assert test_size(100_000) == 1_000 and test_size(10**7) == 1_000
    assert test_points(pl.problem("poisson-sine", dim=20_000)).shape == (5_000, 20_000)
