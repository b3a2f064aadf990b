"""The wheel: built from the checkout, installed in a fresh venv outside it, used from there."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest
from helpers import USER_PROBLEMS, write_problem_file

REPO = Path(__file__).resolve().parents[1]
TINY_SETS = [
    "--set", "train.steps=3",
    "--set", "train.lbfgs_steps=0",
    "--set", "train.optimizer=adam",
    "--set", "net.width=8",
    "--set", "net.depth=2",
    "--set", "solver.n_interior=32",
    "--set", "solver.n_boundary=16",
]  # fmt: skip

pytestmark = pytest.mark.slow


def run(cmd, cwd, env=None, check=True) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )
    if check:
        assert result.returncode == 0, f"{cmd}:\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    dist = tmp_path_factory.mktemp("dist")
    run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", dist], cwd=REPO)
    (path,) = dist.glob("pinnlab-*.whl")
    return path


@pytest.fixture(scope="module")
def venv(wheel, tmp_path_factory):
    """A fresh venv with the wheel installed (no deps); the dependencies come from this venv's
    site-packages through a .pth file. Returns (bin folder, environment for subprocesses)."""
    root = tmp_path_factory.mktemp("venv")
    venv = root / "venv"
    run([sys.executable, "-m", "venv", venv], cwd=root)
    python = venv / "bin" / "python"
    run([python, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", wheel], cwd=root)
    site = run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], cwd=root
    ).stdout.strip()
    Path(site, "pinnlab_test_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PYTHONPATH", "PINNLAB_PROBLEMS", "VIRTUAL_ENV", "PYTHONHOME")
    }
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return venv, env


def test_wheel_ships_the_catalogue_and_the_recipes(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "pinnlab/__init__.py" in names and "pinnlab/cli.py" in names
    for path in (REPO / "problems").glob("*.py"):
        assert f"pinnlab/_shipped/problems/{path.name}" in names
    for path in (REPO / "configs").rglob("*.yaml"):
        assert f"pinnlab/_shipped/configs/{path.relative_to(REPO / 'configs')}" in names
    assert not any(name.startswith(("tests/", "problems/", "configs/")) for name in names)
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    assert "pinnlab = pinnlab.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()


def test_installed_package_is_the_wheel_not_the_checkout(venv, tmp_path):
    root, env = venv
    code = (
        "import json, sys, pinnlab\n"
        "from pinnlab.registry import shipped_dir\n"
        "print(json.dumps([pinnlab.__file__, str(shipped_dir('problems')), sys.path]))"
    )
    file, problems, path = json.loads(
        run([root / "bin" / "python", "-c", code], tmp_path, env).stdout
    )
    assert Path(file).is_relative_to(root)
    assert Path(problems).is_relative_to(root) and Path(problems).name == "problems"
    assert str(REPO) not in path


def test_problems_and_solve_from_the_installed_script(venv, tmp_path):
    root, env = venv
    pinnlab = root / "bin" / "pinnlab"
    listing = run([pinnlab, "problems"], tmp_path, env).stdout
    assert "poisson-sine\n" in listing
    out = tmp_path / "sine.h5"
    cmd = [pinnlab, "solve", "poisson-sine", "--dim", "2", *TINY_SETS, "--out", out, "--quiet"]
    assert "done: 3 steps" in run(cmd, tmp_path, env).stdout
    info = json.loads(run([pinnlab, "info", out, "--json"], tmp_path, env).stdout)
    assert info["problem"] == {"id": "poisson-sine", "dim": 2}
    assert info["environment"]["steps"] == 3


def test_user_problems_with_the_installed_script(venv, tmp_path):
    root, env = venv
    pinnlab = root / "bin" / "pinnlab"
    folder = write_problem_file(tmp_path / "mine", USER_PROBLEMS)
    listing = run([pinnlab, "problems"], tmp_path, {**env, "PINNLAB_PROBLEMS": str(folder)})
    assert "test-heat\n" in listing.stdout and "poisson-sine\n" in listing.stdout
    out = tmp_path / "heat.h5"
    cmd = [pinnlab, "--problems", folder, "solve", "test-heat", *TINY_SETS, "--out", out, "--quiet"]
    assert "done: 3 steps" in run(cmd, tmp_path, env).stdout
    missing = run([pinnlab, "info", out], tmp_path, env, check=False)
    assert missing.returncode == 2
    assert missing.stderr.startswith("error: unknown problem 'test-heat'")


def test_a_shipped_study_from_the_installed_script(venv, tmp_path):
    root, env = venv
    pinnlab = root / "bin" / "pinnlab"
    out = tmp_path / "study"
    sets = ["base.train.steps=2", "grid.problem.dim=[1]", "seeds=[0]"]
    cmd = [pinnlab, "study", "dimension-black-scholes", "--out", out, "--workers", "1", "--quiet"]
    result = run([*cmd, *[f"--set={s}" for s in sets]], tmp_path, env)
    assert "done: 1 runs finished, 0 failed" in result.stdout
    assert "wrote" in run([pinnlab, "report", out], tmp_path, env).stdout
    assert "No finite-difference baseline" in (out / "report.md").read_text()
