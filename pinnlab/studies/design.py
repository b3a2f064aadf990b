"""Study configs and their expansion into runs.

A study is a base run config, a grid of factors (dotted config keys → lists of levels) and a
list of seeds. A design picks which combinations of levels run:

- ``full``: every combination (a full factorial);
- ``fractional``: a regular two-level fraction 2^(k−p) of highest resolution, then minimum
  aberration (Box, Hunter & Hunter, *Statistics for Experimenters*, 2nd ed., ch. 6), for k
  factors of exactly two levels in ``runs`` = 2^(k−p) design points;
- ``one-at-a-time``: the baseline (every factor at its first level) and each other level of
  each factor with the rest at baseline (an ablation, as in Wang et al. 2023, jaxpi).

``cross`` (dotted keys → levels) runs the whole design at every combination of its levels: a
screening fraction at each dimension and problem, so the report can say whether the answer
changes with them.

Factors joined by a comma (``"net.depth,net.width": [[2, 128], [8, 54]]``) move together, for
comparisons at a fixed parameter count. The factor ``arm`` takes the names of ``arms``, named
config fragments (``arms: {generic: {net: {...}}, structured: {recipe: true}}``), for variants
that differ in several keys at once. An arm with ``recipe: true`` starts each of its runs from
the shipped recipe for its problem, method and dimension (``pinnlab.recipes.select``), then
the base, then the point: "the recipe's network at every d" is one arm. Each run's config is normalised (every default filled
in, see ``pinnlab.make_config``) and its id is the hash of that config, so the same run has
the same id in every process and on every machine.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pydantic
import yaml
from pydantic import Field, field_validator

from ..config import RunConfig, Section, dotted, merge, parse_set, read_yaml, validate
from ..errors import ConfigError, PinnlabError
from ..registry import shipped_dir

DESIGNS = ("full", "fractional", "one-at-a-time")
#: Above this many candidate generator sets a fraction is chosen greedily.
_EXHAUSTIVE_LIMIT = 200_000


class TargetSection(Section):
    """Target mode: every run trains until its error reaches the smallest target (or its
    budget: ``train.steps``, ``train.time_budget``), and the cost to reach each target is
    recorded (``pinnlab.studies.target``)."""

    metric: str = Field(description="the error the targets are on (a metric name, or auto)")
    errors: list[float] = Field(min_length=1, description="target errors, each > 0")

    @field_validator("errors")
    @classmethod
    def _positive_distinct(cls, errors: list[float]) -> list[float]:
        if min(errors) <= 0 or len(set(errors)) != len(errors):
            raise ValueError(f"target errors must be distinct and > 0, got {errors}")
        return sorted(errors, reverse=True)


class StudyConfig(Section):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    description: str = ""
    base: dict[str, Any] = Field(description="the run config every run starts from")
    grid: dict[str, list[Any]] = Field(description="dotted key (or keys joined by ',') -> levels")
    design: Literal["full", "fractional", "one-at-a-time"] = "full"
    runs: int | None = Field(None, ge=2, description="design points of a fractional design")
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1)
    response: str = Field("auto", description="the metric the report analyses; auto: the run's")
    arms: dict[str, dict[str, Any]] | None = Field(
        None,
        description="name -> config fragment: the levels of the grid factor 'arm' (recipe: "
        "true starts the arm's runs from the shipped recipe at their d)",
    )
    cross: dict[str, list[Any]] | None = Field(
        None,
        description="dotted key -> levels: the design runs at every combination of these "
        "(e.g. problem.dim, problem.id)",
    )
    target: TargetSection | None = Field(
        None, description="target mode: train to these errors and record the cost of each"
    )

    @field_validator("grid")
    @classmethod
    def _grid_not_empty(cls, grid: dict[str, list[Any]]) -> dict[str, list[Any]]:
        if not grid:
            raise ValueError("the grid is empty: give at least one key with a list of levels")
        for key, levels in grid.items():
            if not levels:
                raise ValueError(f"grid key '{key}' has an empty list of levels")
            names = factor_keys(key)
            if any(not part for name in names for part in name.split(".")):
                raise ValueError(f"grid key '{key}' has an empty part")
            if len(names) > 1:
                for level in levels:
                    if not isinstance(level, list) or len(level) != len(names):
                        raise ValueError(
                            f"grid key '{key}' joins {len(names)} keys, so each level must be a "
                            f"list of {len(names)} values; got {level!r}"
                        )
            if len({json.dumps(v, sort_keys=True) for v in levels}) != len(levels):
                raise ValueError(f"grid key '{key}' repeats a level: {levels}")
        return grid

    @field_validator("seeds")
    @classmethod
    def _distinct_seeds(cls, seeds: list[int]) -> list[int]:
        if len(set(seeds)) != len(seeds) or min(seeds) < 0:
            raise ValueError(f"seeds must be distinct and ≥ 0, got {seeds}")
        return seeds

    @field_validator("cross")
    @classmethod
    def _cross_levels(cls, cross: dict[str, list[Any]] | None) -> dict[str, list[Any]] | None:
        for key, levels in (cross or {}).items():
            if not levels or len({json.dumps(v, sort_keys=True) for v in levels}) != len(levels):
                raise ValueError(f"cross key '{key}' needs distinct levels, got {levels}")
        return cross

    @pydantic.model_validator(mode="after")
    def _arms_in_grid(self) -> StudyConfig:
        both = set(self.cross or {}) & set(self.grid)
        if both:
            raise ValueError(f"{', '.join(sorted(both))} is in both grid and cross: give it once")
        levels = self.grid.get("arm")
        if self.arms is None and levels is not None:
            raise ValueError("the grid factor 'arm' takes the names of 'arms': define them")
        if self.arms is not None:
            if levels is None:
                raise ValueError(f"'arms' ({', '.join(self.arms)}) needs the grid factor 'arm'")
            unknown = [a for a in levels if a not in self.arms]
            if unknown:
                raise ValueError(
                    f"grid factor 'arm' names {unknown}, not among arms: {', '.join(self.arms)}"
                )
        return self

    def key(self) -> str:
        """A hash of everything that defines the study (its runs and how they are analysed)."""
        data = self.model_dump(exclude={"description"})
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def level_label(level: Any) -> Any:
    """A level as tables show it: a scalar as it is, null as 'none', a mapping or list as
    compact YAML (``{features: 32}``: a wrapper's settings, say)."""
    if level is None:
        return "none"
    if isinstance(level, (Mapping, list)):
        return yaml.safe_dump(level, default_flow_style=True, sort_keys=False).strip()
    return level


def factor_label(factor: str, level: Any) -> Any:
    """The label of a factor's level (joined factors: 'a, b')."""
    if len(factor_keys(factor)) > 1:
        return ", ".join(str(level_label(v)) for v in level)
    return level_label(level)


def factor_keys(factor: str) -> list[str]:
    """'net.depth,net.width' -> ['net.depth', 'net.width']."""
    return [k.strip() for k in factor.split(",")]


def study_path(name: str | Path) -> Path:
    """A study config file: a path, or the name of a shipped study (configs/studies/NAME.yaml)."""
    path = Path(name)
    if path.exists() or path.suffix in (".yaml", ".yml"):
        return path
    shipped = shipped_dir("configs") / "studies" / f"{name}.yaml"
    if shipped.exists():
        return shipped
    available = sorted(p.stem for p in (shipped_dir("configs") / "studies").glob("*.yaml"))
    from ..errors import did_you_mean

    raise ConfigError(
        f"no study file '{name}' and no shipped study of that name.{did_you_mean(str(name), available)} "
        f"Shipped studies: {', '.join(available)}."
    )


def read_study(source: str | Path | Mapping[str, Any], sets: Iterable[str] = ()) -> StudyConfig:
    """Read and validate a study config (a file, a shipped study's name, or a mapping).

    ``sets`` are ``KEY=VALUE`` overrides of the study config (``base.train.steps=20``). A
    ``base`` given as a file name is read relative to the study file.
    """
    if isinstance(source, Mapping):
        data, folder = dict(source), Path.cwd()
    else:
        path = study_path(source)
        data, folder = read_yaml(path, extends=False), path.parent
    if isinstance(data.get("base"), str):
        data["base"] = read_yaml(folder / data["base"])
    for assignment in sets:
        data = merge(data, _parse_study_set(assignment))
    study = validate(StudyConfig, data, prefix="")
    if study.design == "fractional" and study.runs is None:
        raise ConfigError("a fractional design needs 'runs': the number of design points (2^m).")
    if study.design != "fractional" and study.runs is not None:
        raise ConfigError(f"'runs' is only for design: fractional (this design is {study.design}).")
    return study


def _parse_study_set(assignment: str) -> dict[str, Any]:
    """Like ``pinnlab.config.parse_set``, but ``grid.<factor>=[...]`` keeps the dotted
    factor name whole (grid keys are dotted config keys)."""
    key, sep, raw = assignment.partition("=")
    if sep and key.strip().startswith("grid."):
        return {"grid": {key.strip().removeprefix("grid."): parse_set(f"value={raw}")["value"]}}
    return parse_set(assignment)


@dataclass(frozen=True)
class StudyRun:
    """One run of a study: its id, its grid point (factor -> level), its seed and config."""

    id: str
    point: dict[str, Any]
    seed: int
    config: RunConfig


def design_points(study: StudyConfig) -> list[dict[str, Any]]:
    """The grid points a study's design selects, each a dict factor -> level, at every
    combination of the ``cross`` levels (those outermost)."""
    points = _grid_points(study)
    if not study.cross:
        return points
    keys = list(study.cross)
    return [
        {**dict(zip(keys, combo, strict=True)), **point}
        for combo in itertools.product(*study.cross.values())
        for point in points
    ]


def _grid_points(study: StudyConfig) -> list[dict[str, Any]]:
    factors = list(study.grid)
    levels = [study.grid[f] for f in factors]
    if study.design == "full":
        return [dict(zip(factors, combo, strict=True)) for combo in itertools.product(*levels)]
    if study.design == "one-at-a-time":
        baseline = {f: lv[0] for f, lv in zip(factors, levels, strict=True)}
        points = [baseline]
        for f, lv in zip(factors, levels, strict=True):
            points += [{**baseline, f: level} for level in lv[1:]]
        return points
    not_two = [f for f, lv in zip(factors, levels, strict=True) if len(lv) != 2]
    if not_two:
        raise ConfigError(
            f"a fractional design needs exactly two levels per factor; {', '.join(not_two)} "
            "have another number (use design: full or one-at-a-time for those)."
        )
    signs = two_level_fraction(len(factors), study.runs)
    return [
        {f: lv[int(s > 0)] for f, lv, s in zip(factors, levels, row, strict=True)} for row in signs
    ]


def two_level_fraction(k: int, runs: int) -> list[list[int]]:
    """A 2^(k−p) design with ``runs`` = 2^(k−p) rows of ±1 signs, one column per factor.

    The first m = log2(runs) factors form a full factorial; each further factor is the product
    of a set of ≥ 2 of them (its generator). The generators are chosen for the highest
    resolution (the length of the shortest word of the defining relation), then the fewest
    words of that length.
    """
    m = round(math.log2(runs)) if runs > 0 else -1
    if runs < 2 or 2**m != runs:
        raise ConfigError(f"a fractional design needs 'runs' a power of two, got {runs}.")
    if k <= m:
        raise ConfigError(
            f"{runs} runs hold a full factorial of {k} two-level factors ({2**k} runs): "
            "use design: full."
        )
    candidates = [
        mask for size in range(m, 1, -1) for mask in _subsets(m, size)
    ]  # bitmasks over the m base factors, at least two of them
    if k - m > len(candidates):
        raise ConfigError(
            f"{runs} runs cannot hold {k} two-level factors (at most {runs - 1}); "
            f"use runs: {2 ** math.ceil(math.log2(k + 1))} or more."
        )
    generators = _best_generators(m, k, candidates)
    rows = []
    for i in range(runs):
        base = [1 if (i >> j) & 1 else -1 for j in range(m)]
        extra = [math.prod(base[j] for j in range(m) if g >> j & 1) for g in generators]
        rows.append(base + extra)
    return rows


def _subsets(m: int, size: int) -> list[int]:
    return [sum(1 << j for j in c) for c in itertools.combinations(range(m), size)]


def _wordlength_pattern(m: int, generators: tuple[int, ...]) -> tuple[int, int]:
    """(resolution, number of words of that length) of the defining relation."""
    words = [g | 1 << (m + i) for i, g in enumerate(generators)]
    lengths = []
    for r in range(1, len(words) + 1):
        for combo in itertools.combinations(words, r):
            w = 0
            for x in combo:
                w ^= x
            lengths.append(w.bit_count())
    shortest = min(lengths)
    return shortest, lengths.count(shortest)


def _best_generators(m: int, k: int, candidates: list[int]) -> tuple[int, ...]:
    n = k - m
    if math.comb(len(candidates), n) > _EXHAUSTIVE_LIMIT:
        return tuple(candidates[:n])  # greedy: the longest generators first
    best, best_score = None, None
    for combo in itertools.combinations(candidates, n):
        resolution, count = _wordlength_pattern(m, combo)
        score = (resolution, -count)
        if best_score is None or score > best_score:
            best, best_score = combo, score
    return best


def resolution(signs: list[list[int]]) -> int:
    """The resolution of a two-level design: the shortest product of columns that is constant
    (±1 on every row); a full factorial has none (returned as k + 1)."""
    k = len(signs[0])
    for size in range(1, k + 1):
        for combo in itertools.combinations(range(k), size):
            products = {math.prod(row[j] for j in combo) for row in signs}
            if len(products) == 1:
                return size
    return k + 1


def two_level_signs(study: StudyConfig) -> list[list[int]]:
    """The design points of a study of two-level factors as ±1 rows (+1: the second level)."""
    return [
        [1 if point[f] == levels[1] else -1 for f, levels in study.grid.items()]
        for point in _grid_points(study)
    ]


def aliases(study: StudyConfig) -> list[list[str]]:
    """Sets of main effects and two-factor interactions that a two-level design cannot tell
    apart (their ±1 columns are equal up to sign); only sets of two or more are listed."""
    factors = list(study.grid)
    if any(len(levels) != 2 for levels in study.grid.values()):
        return []
    signs = [[1 if p[f] == study.grid[f][1] else -1 for f in factors] for p in _grid_points(study)]
    terms = [((i,), f) for i, f in enumerate(factors)]
    terms += [
        ((i, j), f"{a} × {b}") for (i, a), (j, b) in itertools.combinations(enumerate(factors), 2)
    ]
    groups: dict[tuple[int, ...], list[str]] = {}
    for columns, name in terms:
        column = [math.prod(row[c] for c in columns) for row in signs]
        key = tuple(v * column[0] for v in column)
        groups.setdefault(key, []).append(name)
    return [names for names in groups.values() if len(names) > 1]


def nested(point: Mapping[str, Any]) -> dict[str, Any]:
    """{'net.width': 64, 'net.depth,net.width': [2, 128]} -> nested config overrides."""
    out: dict[str, Any] = {}
    for factor, level in point.items():
        keys = factor_keys(factor)
        values = level if len(keys) > 1 else [level]
        for key, value in zip(keys, values, strict=True):
            out = merge(out, dotted(key, value))
    return out


def expand(study: StudyConfig, problems_dirs: Iterable = ()) -> list[StudyRun]:
    """Every run of the study, in design order then seed order, each config validated.

    A grid key that is not a config key fails here, naming the key (with a did-you-mean).
    """
    from ..run import fingerprint, make_config

    runs = []
    seen: dict[str, StudyRun] = {}
    for point in design_points(study):
        for seed in study.seeds:
            data = merge(merge(study.base, _overrides(study, point)), {"seed": seed})
            on_recipe = bool(data.pop("recipe", False))
            if study.target is not None:
                _check_target(study, data, point)
            if on_recipe:
                data = _on_recipe(data)
            if study.target is not None:  # (over a recipe's own metric)
                target = study.target
                train = {"target_error": min(target.errors), "eval_geometric": True}
                data = merge(data, {"metric": target.metric, "train": train})
            try:
                config = make_config(config=data, problems_dirs=problems_dirs)
            except PinnlabError as e:
                where = ", ".join(f"{k}={v!r}" for k, v in point.items())
                raise type(e)(f"study '{study.name}', grid point {where}: {e}") from None
            run = StudyRun(fingerprint(config), dict(point), seed, config)
            if run.id in seen:
                raise ConfigError(
                    f"study '{study.name}': grid points {seen[run.id].point} and {point} give "
                    "the same run config; a grid key has no effect (is it overridden?)."
                )
            seen[run.id] = run
            runs.append(run)
    return runs


def _check_target(study: StudyConfig, data: dict[str, Any], point: Mapping[str, Any]) -> None:
    """Refuse a run config that sets the metric or train.target_error otherwise than the
    study's target (which sets the metric, and train.target_error to the smallest target)."""
    target = study.target
    train = data.get("train") or {}
    where = ", ".join(f"{k}={v!r}" for k, v in point.items())
    if train.get("target_error") is not None:
        raise ConfigError(
            f"study '{study.name}', grid point {where}: target mode sets train.target_error "
            f"(to the smallest of target.errors); leave it out of the runs' config."
        )
    if data.get("metric", "auto") not in ("auto", target.metric):
        raise ConfigError(
            f"study '{study.name}', grid point {where}: the runs' metric is "
            f"{data['metric']!r} but target.metric is {target.metric!r}; give one of them."
        )


def _overrides(study: StudyConfig, point: Mapping[str, Any]) -> dict[str, Any]:
    """A point's config overrides: its dotted keys, and the fragment of its arm."""
    rest = {k: v for k, v in point.items() if k != "arm"}
    out = nested(rest)
    if "arm" in point:
        out = merge(study.arms[point["arm"]], out)
    return out


def _on_recipe(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` over the shipped recipe for its problem, method and dimension (none: as is)."""
    from ..config import layer_phases
    from ..run import recipe

    problem = data.get("problem") or {}
    path = recipe(problem.get("id", ""), data.get("method", "pinn"), problem.get("dim"))
    if path is None:
        return data
    return merge(layer_phases(read_yaml(path), data), data)
