"""The documentation stays true: the generated catalogue, the example problem, links, snippets."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import pinnlab as pl
from pinnlab.cli import main

DOCS = Path(__file__).resolve().parent.parent / "docs"
EXAMPLES = DOCS / "examples"
#: Pages other authors own; links to them are allowed before they exist.
OWNED_ELSEWHERE = {"results.md"}


def _generator_module():
    spec = importlib.util.spec_from_file_location("gen_catalogue", DOCS / "gen_catalogue.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_catalogue_page_is_up_to_date():
    expected = _generator_module().render()
    actual = (DOCS / "catalogue.md").read_text()
    assert actual == expected, "docs/catalogue.md is out of date: run python docs/gen_catalogue.py"


def test_catalogue_page_lists_every_problem_with_its_docstring():
    text = (DOCS / "catalogue.md").read_text()
    for problem_id, cls in pl.catalogue().items():
        assert f"## {problem_id}\n" in text
        assert cls.__doc__.strip().splitlines()[0] in text


def test_example_problem_solves_its_own_equation():
    """The generic catalogue checks, on the quick start's example problem file."""
    cat = pl.catalogue([EXAMPLES])
    assert "poisson-product" in cat
    for dim, k in [(1, 1), (2, 3), (3, 2)]:
        problem = cat.problem("poisson-product", dim=dim, k=k)
        form = problem.strong_form()
        g = torch.Generator().manual_seed(0)
        x = form.domain.sample_interior(64, generator=g, dtype=torch.float64)
        d = pl.Derivatives(lambda y, p=problem: p.exact(y)[:, None], x, method="reverse")
        scale = max(1.0, d.laplacian.detach().abs().max().item())
        assert form.residual(d).detach().abs().max().item() <= 1e-8 * scale
        y = form.domain.sample_boundary(64, generator=g, dtype=torch.float64)
        condition = form.conditions["boundary"]
        torch.testing.assert_close(condition.value(y), problem.exact(y), rtol=0, atol=1e-12)
        torch.testing.assert_close(condition.lift(y), condition.value(y))
    with pytest.raises(pl.ParameterError, match="k must be ≥ 1"):
        cat.problem("poisson-product", k=0)


def test_quickstart_shows_the_example_file_verbatim():
    page = (DOCS / "quickstart.md").read_text()
    assert f"```python\n{(EXAMPLES / 'product.py').read_text()}```" in page


def test_example_problem_runs_from_the_command_line(tmp_path, capsys):
    out = tmp_path / "product.h5"
    args = ["--problems", str(EXAMPLES), "solve", "poisson-product", "--param", "k=2"]
    sets = ["train.steps=2", "net.hard_bc=true", "net.width=8", "solver.n_interior=32"]
    args += [f"--set={s}" for s in sets] + ["--device", "cpu", "--quiet", "--out", str(out)]
    assert main(args) == 0
    assert main(["--problems", str(EXAMPLES), "info", str(out)]) == 0
    assert "poisson-product(dim=2, k=2) solved with pinn" in capsys.readouterr().out


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
    return {_slug(h) for h in re.findall(r"^#+ (.+)$", text, flags=re.M)}


@pytest.mark.parametrize("page", sorted(DOCS.glob("*.md")), ids=lambda p: p.name)
def test_relative_links_resolve(page):
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
    # Links to pages, files and anchors; a formula such as R[u](x) is not a link.
    for target in re.findall(r"\]\((#[\w-]+|[\w./-]+\.(?:md|py|yaml)(?:#[\w-]+)?)\)", text):
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        if file.name in OWNED_ELSEWHERE and not file.exists():
            continue
        assert file.exists(), f"{page.name}: link to missing {target}"
        if anchor and file.suffix == ".md":
            assert anchor in _anchors(file), f"{page.name}: no heading for #{anchor} in {file.name}"


PAGES_WITH_CODE = [
    "quickstart.md",
    "problems.md",
    "derivatives.md",
    "solvers.md",
    "solutions.md",
    "inverse.md",
    "plots.md",
    "training.md",
]


@pytest.mark.slow
@pytest.mark.parametrize("page", PAGES_WITH_CODE)
def test_python_snippets_run(page, tmp_path):
    """Each ```python block of a page runs, in order, as its own script in one folder."""
    blocks = re.findall(r"```python\n(.*?)```", (DOCS / page).read_text(), flags=re.S)
    assert blocks
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("PINNLAB_PROBLEMS", None)
    for i, block in enumerate(blocks):
        script = tmp_path / f"block{i}.py"
        script.write_text(block)
        result = subprocess.run(
            [sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True
        )
        assert result.returncode == 0, f"{page}, block {i}:\n{block}\n{result.stderr}"


def _console_blocks(page: str) -> list[tuple[str, list[str]]]:
    """(command, the output lines shown under it) for each ``$ pinnlab`` line of the
    ```console blocks of a page; a command continued with a backslash is joined."""
    out = []
    for block in re.findall(r"```console\n(.*?)```", (DOCS / page).read_text(), flags=re.S):
        for chunk in re.split(r"^\$ ", block, flags=re.M)[1:]:
            chunk = re.sub(r"\\\n\s*", " ", chunk.rstrip("\n"))
            command, *lines = chunk.split("\n")
            out.append((command, lines))
    return out


#: Numbers a run prints that depend on the machine, not the code: its wall time.
_TIMING = re.compile(r"in \d+(\.\d+)? s")
_NUMBER = re.compile(r"-?\d+\.\d+(?:e[-+]?\d+)?")


def _same_line(got: str, want: str) -> bool:
    """The same text, and the same numbers to 4 significant digits (wall times aside)."""
    got, want = _TIMING.sub("in T s", got), _TIMING.sub("in T s", want)
    if _NUMBER.sub("N", got) != _NUMBER.sub("N", want):
        return False
    pairs = zip(_NUMBER.findall(got), _NUMBER.findall(want), strict=True)
    return all(float(a) == pytest.approx(float(b), rel=5e-4) for a, b in pairs)


def _shows(printed: list[str], shown: list[str]) -> bool:
    """Whether ``printed`` is what ``shown`` shows: line by line, a shown "..." standing for
    any number of lines."""
    if not shown:
        return not printed
    if shown[0] == "...":
        return any(_shows(printed[i:], shown[1:]) for i in range(len(printed) + 1))
    return bool(printed) and _same_line(printed[0], shown[0]) and _shows(printed[1:], shown[1:])


@pytest.mark.slow
def test_quickstart_console_shows_what_the_commands_print(tmp_path, capsys, monkeypatch):
    """Every ``$ pinnlab ...`` of the quick start runs, and prints the lines shown under it
    (where some are shown)."""
    import shlex

    blocks = _console_blocks("quickstart.md")
    assert len(blocks) >= 3
    (tmp_path / "docs").symlink_to(DOCS)  # the page's paths are relative to the checkout
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    for command, shown in blocks:
        argv = shlex.split(command)
        assert argv[0] == "pinnlab"
        capsys.readouterr()
        assert main(argv[1:]) == 0, command
        printed = capsys.readouterr().out.rstrip("\n").split("\n")
        assert not shown or _shows(printed, shown), f"{command} printed:\n" + "\n".join(printed)
