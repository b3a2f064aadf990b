"""What a new user ran into, each kept fixed: overwriting, checkpoints, points in any shape,
printing, piped logs, a problem shown in full, a forgotten dataclass decorator."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass

import numpy as np
import pytest
import torch

import pinnlab as pl
from pinnlab.cli import main
from pinnlab.training import Trainer

TINY = ["--set", "train.steps=2", "--set", "train.lbfgs_steps=0", "--set", "net.width=8"]
TINY += ["--set", "net.depth=1", "--set", "train.eval_every=1", "--quiet"]


def solve_cli(out, *extra):
    return main(["solve", "poisson-sine", "--dim", "1", *TINY, "--out", str(out), *extra])


def test_an_existing_solution_is_not_overwritten_without_force(tmp_path, capsys):
    out = tmp_path / "a.h5"
    assert solve_cli(out) == 0
    before = out.read_bytes()
    assert solve_cli(out) == 2
    assert "exists: pass --force" in capsys.readouterr().err
    assert out.read_bytes() == before
    assert solve_cli(out, "--force") == 0


def test_a_checkpoint_of_the_run_is_named_instead_of_replaced(tmp_path, capsys):
    out = tmp_path / "b.h5"
    ckpt = tmp_path / "b.h5.ckpt"
    ckpt.write_bytes(b"stand-in")
    assert solve_cli(out) == 2
    err = capsys.readouterr().err
    assert "a checkpoint of a run" in err and "--resume" in err and "--force" in err
    assert ckpt.read_bytes() == b"stand-in"


def test_a_resumed_run_says_from_which_step(tmp_path, capsys, monkeypatch):
    cfg = pl.make_config(
        "poisson-sine",
        params={"dim": 1},
        overrides={
            "train": {"optimizer": "adam", "steps": 4, "checkpoint_every": 2, "eval_every": 2},
            "net": {"width": 8, "depth": 1},
        },
    )
    out = tmp_path / "r.h5"
    original = Trainer.save_checkpoint

    def stop(self, *args, **kwargs):  # killed right after the first checkpoint
        original(self, *args, **kwargs)
        raise RuntimeError("killed")

    monkeypatch.setattr(Trainer, "save_checkpoint", stop)
    with pytest.raises(RuntimeError, match="killed"):
        pl.run(cfg, out=out)
    monkeypatch.setattr(Trainer, "save_checkpoint", original)
    capsys.readouterr()
    pl.run(cfg, out=out, resume=True, progress=True)
    assert "resuming from step 2 of 4" in capsys.readouterr().err


def test_piped_progress_is_one_line_per_evaluation(capsys):
    cfg = pl.make_config(
        "poisson-sine",
        params={"dim": 1},
        overrides={
            "train": {"optimizer": "adam", "steps": 6, "eval_every": 2, "checkpoint_every": 0},
            "net": {"width": 8, "depth": 1},
        },
    )
    pl.run(cfg, progress=True)  # pytest's captured stderr is not a terminal
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.startswith("step ")]
    assert [ln.split()[1] for ln in lines] == ["2/6", "4/6", "6/6"]
    assert "\r" not in err


def tiny_solution(dim: int):
    return pl.solve(
        "poisson-sine",
        dim=dim,
        train={"optimizer": "adam", "steps": 2, "checkpoint_every": 0},
        net={"width": 8, "depth": 1},
    )


@pytest.fixture(scope="module")
def solution1d():
    return tiny_solution(1)


@pytest.fixture(scope="module")
def solution2d():
    return tiny_solution(2)


def test_a_solution_takes_lists_and_numbers(solution1d, solution2d):
    grid = np.array([[0.1], [0.5]])
    np.testing.assert_array_equal(solution1d([[0.1], [0.5]]), solution1d(grid))
    np.testing.assert_array_equal(solution1d([0.1, 0.5]), solution1d(grid))
    assert solution1d(0.5).shape == (1,)
    assert solution2d([0.2, 0.3]).shape == (1,)  # one point of the square
    assert solution2d([[0.2, 0.3], [0.4, 0.5]]).shape == (2,)
    with pytest.raises(pl.ShapeError, match=r"shape \(n, 2\)"):
        solution2d([0.1, 0.2, 0.3])
    with pytest.raises(pl.ShapeError, match="list of rows"):
        solution2d("0.1, 0.2")


def test_eval_prints_without_out_and_reads_text_points(tmp_path, capsys, solution2d):
    path = solution2d.save(tmp_path / "s.h5")
    (tmp_path / "p.csv").write_text("x,y\n0.1,0.2\n0.3,0.4\n0.5,0.6\n")
    assert main(["eval", str(path), str(tmp_path / "p.csv")]) == 0
    printed = np.loadtxt(io.StringIO(capsys.readouterr().out))
    np.testing.assert_allclose(printed, solution2d(np.array([[0.1, 0.2], [0.3, 0.4], [0.5, 0.6]])))
    (tmp_path / "p.txt").write_text("# two points\n0.1 0.2\n0.3 0.4\n")
    assert main(["eval", str(path), str(tmp_path / "p.txt"), "--out", str(tmp_path / "v.npy")]) == 0
    assert np.load(tmp_path / "v.npy").shape == (2,)
    (tmp_path / "bad.csv").write_text("0.1,0.2\n0.3\n")
    assert main(["eval", str(path), str(tmp_path / "bad.csv")]) == 2
    assert "same number of columns" in capsys.readouterr().err
    (tmp_path / "p.pkl").write_bytes(b"\x80\x04junk")
    assert main(["eval", str(path), str(tmp_path / "p.pkl")]) == 2
    assert ".txt/.csv table" in capsys.readouterr().err


def test_problems_shows_one_problem_in_full(capsys):
    assert main(["problems", "poisson-kappa"]) == 0
    text = capsys.readouterr().out
    assert "log parametrisation" in text  # past the first paragraph of the docstring
    assert "recipes: poisson-kappa-pinn, poisson-kappa-d10-pinn" in text
    assert main(["problems", "poisson-kapa"]) == 2
    assert "Did you mean 'poisson-kappa'" in capsys.readouterr().err


def test_the_list_gives_whole_sentences_and_the_recipes(capsys):
    assert main(["problems", "--json"]) == 0
    entries = json.loads(capsys.readouterr().out)
    for e in entries:
        summary = e["summary"]
        assert summary and (summary[-1] in ".)" or "=" in summary), (e["id"], summary)
        assert "\n" not in summary
    burgers = next(e for e in entries if e["id"] == "burgers")
    assert burgers["recipes"] == ["burgers-pinn"]


def test_a_forgotten_dataclass_decorator_is_named():
    class Forgot(pl.Problem):
        id = "test-forgot"
        k: int = 3

    with pytest.raises(pl.ParameterError, match=r"declares k but is not a dataclass"):
        Forgot.parameters()
    with pytest.raises(pl.ParameterError, match="@dataclass"):
        Forgot()

    @dataclass(frozen=True)
    class Kept(pl.Problem):
        id = "test-kept"
        k: int = 3

    assert Kept.parameters() == {"dim": 2, "k": 3}
    assert Kept(k=torch.tensor(2).item()).k == 2


PRODUCT = '''
import math
from dataclasses import dataclass

import torch

import pinnlab as pl


@dataclass(frozen=True)
class Bump(pl.Problem):
    """-u'' = pi^2 sin(pi x) on [0, 1], u = 0 at both ends."""

    id = "test-bump"
    dim: int = 1

    def exact(self, x):
        return torch.sin(math.pi * x[:, 0])

    def strong_form(self):
        return pl.StrongForm(
            domain=pl.Box(1),
            residual=lambda d: -d.laplacian - math.pi**2 * torch.sin(math.pi * d.x[:, 0]),
            conditions={"boundary": pl.Dirichlet(lambda y: torch.zeros_like(y[:, 0]))},
        )
'''


def test_a_problem_from_a_folder_solves_as_an_object_or_by_id(tmp_path):
    (tmp_path / "bump.py").write_text(PRODUCT)
    short = {"train": {"optimizer": "adam", "steps": 2, "checkpoint_every": 0}}
    problem = pl.catalogue([tmp_path]).problem("test-bump")
    assert pl.solve(problem, **short).environment["steps"] == 2
    assert pl.solve("test-bump", problems_dirs=[tmp_path], **short).problem.id == "test-bump"
    with pytest.raises(pl.UnknownNameError, match="unknown problem 'test-bump'"):
        pl.solve("test-bump", **short)


def test_pl_problem_used_as_a_decorator_says_what_to_do():
    class Mine(pl.Problem):
        id = "mine"

    with pytest.raises(TypeError, match=r"not a decorator.*dataclass"):
        pl.problem(Mine)
