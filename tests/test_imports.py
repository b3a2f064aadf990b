"""The package's import graph is a DAG with the layers of docs/architecture.md, and every
module imports on its own in a fresh interpreter (no cycle that import order hides)."""

from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from import_graph import PACKAGE, cycles, graph, module_name

import pinnlab

#: Modules that sit below the rest: none of them may import a module above it.
FOUNDATIONS = ("pinnlab.errors", "pinnlab.files", "pinnlab.config", "pinnlab.version")
#: The top: what reads configs and drives runs. Nothing below imports them.
TOP = ("pinnlab.cli", "pinnlab.run", "pinnlab.studies")


def test_the_import_graph_has_no_cycle():
    assert cycles(graph()) == []


def test_a_cycle_would_be_found():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_the_layers_point_one_way():
    g = graph()
    for module in FOUNDATIONS:
        assert g[module] <= set(FOUNDATIONS) | {"pinnlab.errors"}, module
    below = [m for m in g if not m.startswith(TOP) and m != "pinnlab" and m != "pinnlab.__main__"]
    for module in below:
        bad = {t for t in g[module] if t.startswith(TOP)}
        assert not bad, f"{module} imports {bad}"
    for module in ("pinnlab.domains", "pinnlab.derivatives.jets", "pinnlab.problem"):
        assert not {t for t in g[module] if t.startswith(("pinnlab.solvers", "pinnlab.training"))}


def test_the_version_is_the_distributions():
    tomllib = pytest.importorskip("tomllib")  # Python ≥ 3.11
    meta = tomllib.loads((PACKAGE.parent / "pyproject.toml").read_text())
    assert pinnlab.__version__ == meta["project"]["version"]


@pytest.mark.slow
def test_every_module_imports_alone_in_a_fresh_interpreter():
    names = sorted(module_name(p) for p in PACKAGE.rglob("*.py") if p.name != "__main__.py")

    def load(name: str) -> tuple[str, int, str]:
        out = subprocess.run(
            [sys.executable, "-c", f"import {name}"],
            capture_output=True,
            text=True,
            timeout=300,
            cwd=Path(PACKAGE).parent,
        )
        return name, out.returncode, out.stderr[-2000:]

    with ThreadPoolExecutor(2) as pool:
        failed = [r for r in pool.map(load, names) if r[1] != 0]
    assert not failed, failed
