"""The shipped recipes: which ``configs/runs`` file serves a problem, a method and a dimension.

A recipe is a run config that reaches a stated accuracy (``configs/runs/<name>.yaml``, the
name ``<problem>-<method>`` or ``<problem>-<variant>-<method>``). Each declares, in a top-level
``recipe:`` mapping, the dimensions it serves:

    recipe:
      dims: [317, 3162]        # inclusive; [31623, null]: no upper end
      description: additive part Σ hᵢ(xᵢ) beside a 3×64 silu MLP

The declaration is the file's own: ``pinnlab.config.read_yaml`` removes it, so a file that
extends a recipe (``base:``) does not inherit it, and a recipe given with ``--config`` is a
plain config. Among the recipes of one problem and method the ranges do not overlap, and each
holds the recipe's own ``problem.dim``. The shipped ranges put the boundary between two recipes
at the geometric mean of the dimensions they were tuned for, and reach half a decade (a factor
√10) beyond the outermost, down to the problem's smallest dimension.

``select`` picks the recipe for a dimension (``selection`` also says among which): the one whose range holds it; else the nearest
one in log d (a recipe tuned nearer the dimension asked for is a better start than the plain
defaults, which fail at high dimension); with no dimension asked, the recipe whose own
``problem.dim`` is the problem's default, else the one with the lowest range. Where no recipe
exists for the problem and method, the defaults apply. ``pinnlab solve`` prints the choice;
``pinnlab.solve`` and ``pinnlab.make_config`` make it silently, and
``pinnlab.recipes.select(problem, method, dim)`` returns which it is (a ``Recipe``, or None).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import Field, model_validator

from .config import Section, overlay, read_yaml, validate
from .errors import ConfigError, unknown_name
from .registry import shipped_dir

#: The top-level key of a recipe's declaration.
KEY = "recipe"


class Declaration(Section):
    """A recipe's ``recipe:`` mapping."""

    dims: tuple[Annotated[int, Field(ge=1)], Annotated[int, Field(ge=1)] | None] = Field(
        description="[low, high]: the dimensions the recipe serves, both inclusive; "
        "high null: no upper end"
    )
    description: str = ""
    select: bool = Field(
        True,
        description="false: a variant (other problem parameters) that --dim never selects; "
        "named with --recipe only",
    )

    @model_validator(mode="after")
    def _ordered(self) -> Declaration:
        if self.dims[1] is not None and self.dims[0] > self.dims[1]:
            raise ValueError(f"dims [low, high] needs low ≤ high, got {list(self.dims)}")
        return self


@dataclass(frozen=True)
class Recipe:
    """One shipped recipe: its file, what it is for and the dimensions it serves."""

    name: str  #: the file's stem, e.g. ``poisson-ridge-d100000-pinn``
    path: Path
    problem: str
    method: str
    dim: int | None  #: its own ``problem.dim`` (None: it leaves the problem's default)
    dims: tuple[int, int | None]  #: the dimensions it serves, both inclusive (None: no end)
    description: str = ""
    #: False for a variant that ``--dim`` never selects (named with ``--recipe`` only).
    select: bool = True

    def serves(self, dim: int) -> bool:
        low, high = self.dims
        return low <= dim and (high is None or dim <= high)

    def distance(self, dim: int) -> float:
        """How far ``dim`` lies outside the range, in log d (0 inside)."""
        low, high = self.dims
        above = 0.0 if high is None else math.log(dim / high)
        return max(math.log(low / dim), above, 0.0)

    @property
    def order(self) -> tuple[float, float]:
        """The range as a sort key (an open upper end last)."""
        low, high = self.dims
        return (low, math.inf if high is None else high)

    @property
    def file(self) -> str:
        """The path shown to users: ``configs/runs/<name>.yaml``."""
        return f"configs/runs/{self.path.name}"

    @property
    def span(self) -> str:
        low, high = self.dims
        if high is None:
            return f"d ≥ {low}"
        return f"d = {low}" if low == high else f"d {low}..{high}"

    @property
    def command(self) -> str:
        """The ``pinnlab solve`` command that selects this recipe (a variant: by name)."""
        if not self.select:
            return f"pinnlab solve --recipe {self.name}"
        method = "" if self.method == "pinn" else f" --method {self.method}"
        dim = "" if self.dim is None else f" --dim {self.dim}"
        return f"pinnlab solve {self.problem}{dim}{method}"

    def summary(self) -> str:
        """``<name> (<file>; serves d lo..hi, tuned at d = n)``."""
        tuned = f", tuned at d = {self.dim}" if self.dim is not None else ""
        return f"{self.name} ({self.file}; serves {self.span}{tuned})"


@dataclass(frozen=True)
class Selection:
    """What ``selection`` chose, and among which recipes."""

    problem: str
    method: str
    dim: int | None  #: the dimension asked for (None: none was)
    recipe: Recipe | None  #: None: no recipe for this problem and method, the defaults apply
    candidates: tuple[Recipe, ...]  #: every recipe of this problem and method
    others: tuple[Recipe, ...] = ()  #: the problem's recipes for other methods

    @property
    def path(self) -> Path | None:
        return self.recipe.path if self.recipe else None

    @property
    def name(self) -> str | None:
        return self.recipe.name if self.recipe else None

    @property
    def nearest(self) -> bool:
        """True when no range holds the dimension asked for and the nearest recipe was taken."""
        return self.recipe is not None and self.dim is not None and not self.recipe.serves(self.dim)

    def message(self) -> str:
        """The line ``pinnlab solve`` prints at the start of a run."""
        if self.recipe is None:
            head = f"recipe: none shipped for {self.problem} with method {self.method}"
            if not self.others:
                return f"{head}, nor with any other; the defaults are used"
            listed = ", ".join(f"{r.name} ({r.method}, {r.span})" for r in self.others)
            return f"{head}; the defaults are used (recipes for other methods: {listed})"
        if self.nearest:
            served = ", ".join(f"{r.name} ({r.span})" for r in self.candidates)
            return (
                f"recipe: {self.recipe.summary()}: no recipe serves d = {self.dim}, so the "
                f"nearest is used (recipes for {self.problem} with {self.method}: {served})"
            )
        return f"recipe: {self.recipe.summary()}"


def declaration(path: str | Path) -> Declaration | None:
    """The ``recipe:`` declaration of the file at ``path`` itself (never a base's), or None."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as e:
        raise ConfigError(f"recipe file '{path}' cannot be read: {e}") from None
    if not isinstance(data, dict) or data.get(KEY) is None:
        return None
    if not isinstance(data[KEY], Mapping):
        raise ConfigError(
            f"recipe file '{path}': '{KEY}' must be a mapping like "
            f"{{dims: [low, high], description: ...}}, got {data[KEY]!r}."
        )
    try:
        return validate(Declaration, data[KEY], prefix=KEY)
    except ConfigError as e:
        raise ConfigError(f"recipe file '{path}': {e}") from None


def _read(path: Path) -> Recipe:
    data = read_yaml(path)
    problem = data.get("problem") or {}
    dim = problem.get("dim")
    declared = declaration(path)
    select = True
    if declared is None:  # an undeclared file serves its own dimension only
        dims = (dim, dim) if isinstance(dim, int) else (1, 1)
        description = ""
    else:
        dims, description, select = declared.dims, declared.description, declared.select
    return Recipe(
        name=path.stem,
        path=path,
        problem=str(problem.get("id")),
        method=str(data.get("method", "pinn")),
        dim=dim if isinstance(dim, int) else None,
        dims=tuple(dims),
        description=description,
        select=select,
    )


@functools.lru_cache(maxsize=4)
def _scan(folder: Path, stamp: tuple) -> tuple[Recipe, ...]:
    return tuple(_read(folder / name) for name, _ in stamp)


def recipes(problem: str | None = None, method: str | None = None) -> tuple[Recipe, ...]:
    """The shipped recipes (of ``problem`` and ``method`` where given), by problem, method and
    range."""
    folder = shipped_dir("configs") / "runs"
    files = sorted(folder.glob("*.yaml")) if folder.is_dir() else []
    stamp = tuple((p.name, p.stat().st_mtime_ns) for p in files)
    found = [
        r
        for r in _scan(folder, stamp)
        if (problem is None or r.problem == problem) and (method is None or r.method == method)
    ]
    return tuple(sorted(found, key=lambda r: (r.problem, r.method, r.order, r.name)))


def find(name: str) -> Recipe:
    """The shipped recipe named ``name`` (a file stem, e.g. ``poisson-ridge-d100000-pinn``)."""
    everything = {r.name: r for r in recipes()}
    name = str(name).removesuffix(".yaml")
    if name not in everything:
        raise unknown_name("recipe", name, everything)
    return everything[name]


def _default_dim(problem: str) -> int | None:
    from .registry import catalogue

    try:
        value = catalogue()[problem].parameters().get("dim")
    except KeyError:
        return None
    return value if isinstance(value, int) else None


def select(problem: str, method: str = "pinn", dim: int | str | None = None) -> Recipe | None:
    """The shipped recipe for ``problem``, ``method`` and dimension ``dim``; None where there is
    none for the problem and method (the defaults apply).

    The recipe whose declared range holds ``dim``; else the nearest in log d. Without ``dim``:
    the recipe whose own ``problem.dim`` is the problem's default, else the one with the lowest
    range. ``selection`` says, beside the choice, whether it was the nearest and among which.
    """
    return selection(problem, method, dim).recipe


def selection(problem: str, method: str = "pinn", dim: int | str | None = None) -> Selection:
    """``select``'s choice with what it was chosen among (``Selection.message`` is the
    line ``pinnlab solve`` prints; ``Selection.nearest`` says no range held ``dim``)."""
    candidates = tuple(r for r in recipes(problem, method) if r.select)
    others = tuple(r for r in recipes(problem) if r.method != method)
    asked = _as_dim(dim)
    chosen = None
    if candidates and asked is not None:
        chosen = min(candidates, key=lambda r: (r.distance(asked), r.order))
    elif candidates:
        default = _default_dim(problem)
        chosen = next(
            (r for r in candidates if r.dim == default or (r.dim is None and default is not None)),
            candidates[0],
        )
    return Selection(problem, method, asked, chosen, candidates, others)


def _as_dim(dim: Any) -> int | None:
    """An integer dimension from a parameter value (``--param dim=10`` gives a string); None
    where it is none (the problem's validation then names what is wrong)."""
    if isinstance(dim, bool):
        return None
    if isinstance(dim, int):
        return dim if dim >= 1 else None
    if isinstance(dim, str):
        try:
            return _as_dim(int(dim))
        except ValueError:
            return None
    return None


def asked_dim(
    params: Mapping[str, Any] | None = None,
    overrides: Mapping[str, Any] | None = None,
    sets: Iterable[str] = (),
) -> int | str | None:
    """The ``problem.dim`` that the layers over the recipe ask for
    (``pinnlab.config.overlay``, as ``pinnlab.make_config`` merges them)."""
    problem = overlay(params, overrides, sets).get("problem")
    return problem.get("dim") if isinstance(problem, Mapping) else None
