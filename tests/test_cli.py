"""The command line, end to end: problems, solve, eval, info, and every error as one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from helpers import TINY, USER_PROBLEMS, write_problem_file

import pinnlab as pl
from pinnlab.cli import main


@pytest.fixture(scope="module")
def tiny_yaml(tmp_path_factory):
    path = tmp_path_factory.mktemp("configs") / "tiny.yaml"
    path.write_text(yaml.safe_dump(TINY))
    return path


@pytest.fixture(scope="module")
def solution_file(tiny_yaml, tmp_path_factory):
    """A solution written by `pinnlab solve` (quiet, tiny)."""
    out = tmp_path_factory.mktemp("cli") / "sine.h5"
    argv = ["solve", "poisson-sine", "--dim", "2", "--config", str(tiny_yaml)]
    assert main([*argv, "--seed", "3", "--out", str(out), "--quiet"]) == 0
    return out


def run_ok(capsys, argv) -> str:
    code = main(argv)
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return captured.out


def error_line(capsys, argv) -> str:
    """Run a failing command: exactly one line on stderr, starting with 'error:'."""
    code = main(argv)
    err = capsys.readouterr().err
    assert code != 0
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ")
    return lines[0]


# --- problems --------------------------------------------------------------------------------


def test_problems(capsys):
    out = run_ok(capsys, ["problems"])
    for problem_id in pl.catalogue():
        assert f"{problem_id}\n" in out
    assert "parameters: dim=2" in out and "forms: strong" in out and "truth: exact" in out


def test_problems_json(capsys):
    entries = json.loads(run_ok(capsys, ["problems", "--json"]))
    assert [e["id"] for e in entries] == list(pl.catalogue())
    sine = next(e for e in entries if e["id"] == "poisson-sine")
    assert sine["parameters"] == {"dim": 2} and sine["forms"] == ["strong", "energy"]
    assert sine["truth"] == "exact" and sine["summary"].startswith("−Δu")


# --- solve, eval, info -----------------------------------------------------------------------


def test_solve_writes_a_solution(capsys, tiny_yaml, tmp_path):
    out = tmp_path / "s.h5"
    argv = ["solve", "poisson-ball", "--dim", "3", "--param", "coef_seed=2"]
    argv += ["--config", str(tiny_yaml), "--set", "train.steps=3", "--seed", "5"]
    text = run_ok(capsys, [*argv, "--device", "cpu", "--out", str(out), "--quiet"])
    assert f"-> {out}" in text and "done: 3 steps" in text and "rel_l2 =" in text
    solution = pl.load(out)
    assert solution.problem == pl.problem("poisson-ball", dim=3, coef_seed=2)
    assert solution.config.seed == 5 and solution.config.train.steps == 3
    assert solution.config.device == "cpu" and solution.config.net.width == TINY["net"]["width"]


def test_solve_default_output_path(capsys, tiny_yaml, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run_ok(capsys, ["solve", "poisson-sine", "--dim", "2", "--config", str(tiny_yaml), "--quiet"])
    assert (tmp_path / "runs" / "poisson-sine-d2-pinn.h5").exists()


def test_solve_shows_progress_unless_quiet(capsys, tiny_yaml, tmp_path):
    argv = ["solve", "poisson-sine", "--config", str(tiny_yaml), "--out", str(tmp_path / "p.h5")]
    assert main(argv) == 0
    assert "4/4" in capsys.readouterr().err


def test_eval_values_and_gradients(capsys, solution_file, tmp_path):
    points = np.random.default_rng(0).random((17, 2))
    np.save(tmp_path / "points.npy", points)
    out = tmp_path / "values.npy"
    text = run_ok(
        capsys, ["eval", str(solution_file), str(tmp_path / "points.npy"), "--out", str(out)]
    )
    assert "shape (17,)" in text
    assert np.array_equal(np.load(out), pl.load(solution_file)(points))
    grad = tmp_path / "sub" / "grad.npy"
    argv = ["eval", str(solution_file), str(tmp_path / "points.npy"), "--out", str(grad), "--grad"]
    assert "gradients of shape (17, 2)" in run_ok(capsys, argv)
    np.testing.assert_array_equal(np.load(grad), pl.load(solution_file).grad(points))


def test_info(capsys, solution_file):
    text = run_ok(capsys, ["info", str(solution_file)])
    assert text.startswith("poisson-sine(dim=2) solved with pinn")
    assert "4 steps" in text and "metrics:" in text and "rel_h1_seminorm" in text
    assert '"seed": 3' in text


def test_info_json(capsys, solution_file):
    info = json.loads(run_ok(capsys, ["info", str(solution_file), "--json"]))
    solution = pl.load(solution_file)
    assert info["problem"] == {"id": "poisson-sine", "dim": 2}
    assert info["config"]["seed"] == 3 and info["config"]["train"]["steps"] == 4
    assert info["metrics"] == solution.metrics
    assert info["environment"]["stop_reason"] == "steps"
    assert info["history"]["loss"] == 4


# --- user problems ---------------------------------------------------------------------------


def test_user_problems_with_the_problems_option(capsys, user_dir, tiny_yaml, tmp_path):
    out = run_ok(capsys, ["--problems", str(user_dir), "problems"])
    assert "test-heat\n" in out and "poisson-sine\n" in out
    h5 = tmp_path / "heat.h5"
    argv = ["--problems", str(user_dir), "solve", "test-heat", "--config", str(tiny_yaml)]
    run_ok(capsys, [*argv, "--out", str(h5), "--quiet"])
    np.save(tmp_path / "p.npy", np.full((3, 3), 0.5))
    argv = ["--problems", str(user_dir), "eval", str(h5), str(tmp_path / "p.npy")]
    run_ok(capsys, [*argv, "--out", str(tmp_path / "v.npy")])
    assert np.load(tmp_path / "v.npy").shape == (3,)
    # Without the folder, the solution's problem cannot be found.
    assert "unknown problem 'test-heat'" in error_line(capsys, ["info", str(h5)])
    # After the command, as a user types it, the option works too.
    assert "test-heat" in run_ok(capsys, ["info", str(h5), "--problems", str(user_dir)])


def test_user_problems_from_the_environment(capsys, user_dir, tiny_yaml, tmp_path, monkeypatch):
    monkeypatch.setenv("PINNLAB_PROBLEMS", str(user_dir))
    assert "test-pair\n" in run_ok(capsys, ["problems"])
    h5 = tmp_path / "pair.h5"
    argv = ["solve", "test-pair", "--config", str(tiny_yaml), "--out", str(h5), "--quiet"]
    run_ok(capsys, argv)
    assert json.loads(run_ok(capsys, ["info", str(h5), "--json"]))["problem"]["id"] == "test-pair"


def test_duplicate_problem_ids(capsys, user_dir, tmp_path):
    copy = write_problem_file(tmp_path / "copy", USER_PROBLEMS, name="copy.py")
    line = error_line(capsys, ["--problems", str(user_dir), "--problems", str(copy), "problems"])
    assert "is defined twice" in line


# --- errors: one line each -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["poisson-sin"], "unknown problem 'poisson-sin'. Did you mean 'poisson-sine'?"),
        (["poisson-sine", "--method", "pnn"], "unknown method 'pnn'. Did you mean 'pinn'?"),
        (["poisson-ball", "--param", "coef_sed=1"], "Did you mean 'coef_seed'?"),
        (["poisson-ball", "--param", "coef_seed=abc"], "parameter 'coef_seed' must be"),
        (["poisson-ball", "--param", "coef_seed"], "--param expects NAME=VALUE"),
        (["poisson-harmonic", "--dim", "3"], "dim must be even, got 3"),
        (["poisson-sine", "--dim", "0"], "dim must be an integer ≥ 1, got 0"),
        (["poisson-sine", "--set", "train.stepz=2"], "Did you mean 'train.steps'?"),
        (
            ["poisson-sine", "--set", "train.steps=abc"],
            "'train.steps': Input should be a valid integer",
        ),
        (["poisson-sine", "--set", "train.lr=-1"], "'train.lr': Input should be greater than 0"),
        (["poisson-sine", "--set", "train.steps"], "--set expects KEY=VALUE"),
        (["poisson-sine", "--config", "/nonexistent/run.yaml"], "does not exist"),
        (["poisson-sine", "--set", "net.activation=tahn"], "Did you mean 'tanh'?"),
        (["poisson-sine", "--resume"], "no checkpoint at"),
    ],
)
def test_solve_errors(capsys, tmp_path, args, message):
    line = error_line(capsys, ["solve", *args, "--out", str(tmp_path / "x.h5"), "--quiet"])
    assert message in line


def test_solve_error_a_method_whose_form_the_problem_lacks(capsys, noform_dir):
    line = error_line(capsys, ["--problems", str(noform_dir), "solve", "test-energy-only"])
    assert "method 'pinn' needs the strong form" in line and "it offers energy" in line


def test_solve_error_when_training_fails(capsys, nan_dir, tiny_yaml, tmp_path):
    argv = ["--problems", str(nan_dir), "solve", "test-nan", "--config", str(tiny_yaml)]
    argv += ["--set", "train.max_nan_restarts=2", "--out", str(tmp_path / "n.h5"), "--quiet"]
    line = error_line(capsys, argv)
    assert "the loss became NaN or infinite" in line
    assert not (tmp_path / "n.h5").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
def test_solve_error_cuda_without_cuda(capsys, tmp_path):
    argv = ["solve", "poisson-sine", "--device", "cuda", "--out", str(tmp_path / "c.h5")]
    assert "CUDA is not available here; use --device cpu" in error_line(capsys, argv)


def test_eval_errors(capsys, solution_file, tmp_path):
    def eval_error(points) -> str:
        return error_line(
            capsys, ["eval", str(solution_file), str(points), "--out", str(tmp_path / "o.npy")]
        )

    np.save(tmp_path / "wide.npy", np.zeros((4, 3)))
    assert "must have shape (n, 2)" in eval_error(tmp_path / "wide.npy")
    np.save(tmp_path / "flat.npy", np.zeros(4))
    assert "must be a 2-d array (n, 2)" in eval_error(tmp_path / "flat.npy")
    np.save(tmp_path / "cube.npy", np.zeros((2, 2, 2)))
    assert "got shape (2, 2, 2)" in eval_error(tmp_path / "cube.npy")
    assert "points file" in eval_error(tmp_path / "missing.npy")
    assert "does not exist" in eval_error(tmp_path / "missing.npy")
    (tmp_path / "text.npy").write_text("1 2\n3 4\n")
    assert "cannot read points" in eval_error(tmp_path / "text.npy")
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    assert "cannot read points" in eval_error(tmp_path / "objects.npy")
    assert not (tmp_path / "o.npy").exists()


@pytest.fixture
def bad_solution_files(solution_file, tmp_path):
    noise = tmp_path / "noise.h5"
    noise.write_bytes(np.random.default_rng(1).bytes(2048))
    truncated = tmp_path / "truncated.h5"
    truncated.write_bytes(solution_file.read_bytes()[: solution_file.stat().st_size // 2])
    return {
        "missing": (tmp_path / "missing.h5", "does not exist"),
        "corrupt": (noise, "not a readable HDF5 file"),
        "truncated": (truncated, "not a readable HDF5 file (corrupt or truncated?)"),
    }


@pytest.mark.parametrize("kind", ["missing", "corrupt", "truncated"])
def test_bad_solution_files(capsys, bad_solution_files, tmp_path, kind):
    path, message = bad_solution_files[kind]
    assert message in error_line(capsys, ["info", str(path)])
    assert message in error_line(capsys, ["info", str(path), "--json"])
    np.save(tmp_path / "p.npy", np.zeros((2, 2)))
    argv = ["eval", str(path), str(tmp_path / "p.npy"), "--out", str(tmp_path / "o.npy")]
    assert message in error_line(capsys, argv)


def test_missing_problems_folder(capsys, tmp_path):
    line = error_line(capsys, ["--problems", str(tmp_path / "nowhere"), "problems"])
    assert "does not exist or is not a folder" in line


def test_debug_reraises(tmp_path):
    with pytest.raises(pl.UnknownNameError, match="Did you mean 'poisson-sine'"):
        main(["--debug", "solve", "poisson-sin"])
    with pytest.raises(pl.SolutionFileError):
        main(["--debug", "info", str(tmp_path / "missing.h5")])


def test_usage_errors_exit_with_status_2(capsys):
    with pytest.raises(SystemExit) as info:
        main(["eval", "solution.h5"])
    assert info.value.code == 2
    assert "the following arguments are required: points" in capsys.readouterr().err


# --- the installed console script ------------------------------------------------------------


def test_console_script(tmp_path):
    script = Path(sys.executable).parent / "pinnlab"
    assert script.exists()
    env = {k: v for k, v in os.environ.items() if k != "PINNLAB_PROBLEMS"}
    ok = subprocess.run(
        [str(script), "problems", "--json"], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert ok.returncode == 0, ok.stderr
    assert [e["id"] for e in json.loads(ok.stdout)] == list(pl.catalogue())
    bad = subprocess.run(
        [sys.executable, "-m", "pinnlab", "info", "missing.h5"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == ["error: solution file 'missing.h5' does not exist."]
