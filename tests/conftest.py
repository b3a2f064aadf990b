from __future__ import annotations

import warnings

import pytest
import torch
from helpers import NAN_PROBLEM, NOFORM_PROBLEM, USER_PROBLEMS, tiny_config, write_problem_file

import pinnlab as pl

# Every tensor in these tests is tiny: one thread avoids inter-thread overhead, which dominates
# (by 10x on a loaded two-core machine) at these sizes.
torch.set_num_threads(1)

# torch loads its forward-mode AD decompositions on the first jvp, through torch.jit.script,
# which warns that it is deprecated (torch's own code; torch.func.jvp is what pinnlab's
# fallback and the dense references use). Load them once here, without that warning.
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", "`torch.jit.script` is deprecated", DeprecationWarning)
    from torch._decomp import decompositions_for_jvp  # noqa: F401


@pytest.fixture(autouse=True)
def _no_user_problems_from_environment(monkeypatch):
    """Tests see the shipped catalogue only, unless they set PINNLAB_PROBLEMS themselves."""
    monkeypatch.delenv("PINNLAB_PROBLEMS", raising=False)


@pytest.fixture(autouse=True, scope="session")
def _reference_cache(tmp_path_factory):
    """Computed references go to a folder of the test session, not the user's cache."""
    mp = pytest.MonkeyPatch()
    mp.setenv("PINNLAB_CACHE", str(tmp_path_factory.mktemp("cache")))
    yield
    mp.undo()


@pytest.fixture(scope="session")
def user_dir(tmp_path_factory):
    """A folder holding a user problem file (test-heat, test-pair)."""
    return write_problem_file(tmp_path_factory.mktemp("user_problems"), USER_PROBLEMS)


@pytest.fixture(scope="session")
def noform_dir(tmp_path_factory):
    """A folder holding a problem without the strong form (test-energy-only)."""
    return write_problem_file(tmp_path_factory.mktemp("noform_problems"), NOFORM_PROBLEM)


@pytest.fixture(scope="session")
def nan_dir(tmp_path_factory):
    """A folder holding a problem whose loss is always NaN (test-nan)."""
    return write_problem_file(tmp_path_factory.mktemp("nan_problems"), NAN_PROBLEM)


@pytest.fixture(scope="session")
def solved(tmp_path_factory):
    """A tiny trained poisson-sine solution in d = 2, saved to HDF5: (solution, path)."""
    path = tmp_path_factory.mktemp("solved") / "sine.h5"
    solution = pl.run(tiny_config("poisson-sine", dim=2), out=path)
    return solution, path
