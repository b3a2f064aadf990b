"""Error bars on an inverse problem's unknowns: an ensemble of runs (docs/inverse.md).

Member 0 is the run as configured. Member k ≥ 1 trains with seed ``seed + k`` on replicate
k of the observations (``data.resample = k``): y + noise_std·ξ with fresh Gaussian noise
where the noise is known (a parametric bootstrap: for an estimator θ̂ = θ + A ε that is
nearly linear in the noise ε, θ̂* − θ̂ = A ξ has the sampling spread of θ̂), else the rows
drawn with replacement (a bootstrap). The spread of the members' estimates therefore holds
the noise's share of the error and the training's (initialisation, sampled points); it holds
no bias common to all members (a network too small, a budget too short, a wrong model).

Each member is a pure function of its config, so the members run through the study
executors (``pinnlab.studies.executors``: a local process pool, or Ray).
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from ..config import RunConfig
from ..errors import ConfigError, TrainingError


@dataclass(frozen=True)
class Estimate:
    """One scalar unknown over the ensemble: member 0's ``value``, the members' ``std``
    (ddof 1, member 0 included), the 95 % interval value ± t₀.₉₇₅,ₘ₋₁ · std (θ̂ − θ over
    the spread estimated from m members follows Student's t with m − 1 degrees of freedom),
    the members' values, and the truth where it is known."""

    name: str
    value: float
    std: float
    low: float
    high: float
    members: tuple[float, ...]
    exact: float | None = None

    @property
    def covers(self) -> bool | None:
        """Whether the interval holds the true value (None where it is unknown)."""
        return None if self.exact is None else self.low <= self.exact <= self.high

    def as_dict(self) -> dict[str, Any]:
        return {
            "value": self.value,
            "std": self.std,
            "interval": [self.low, self.high],
            "members": list(self.members),
            "exact": self.exact,
            "covers": self.covers,
        }


def member_configs(config: RunConfig, members: int) -> list[RunConfig]:
    """The configs of an ensemble of ``members`` runs of ``config`` (module docstring)."""
    if members < 2:
        raise ConfigError(f"an ensemble needs at least 2 members, got {members}.")
    return [
        config.model_copy(
            update={
                "seed": config.seed + k,
                "data": config.data.model_copy(update={"resample": k}),
            }
        )
        for k in range(members)
    ]


def _scalars(file: bytes) -> dict[str, float]:
    """The scalar (and vector, entry by entry) unknowns a solution file holds."""
    import h5py

    with h5py.File(io.BytesIO(file), "r") as f:
        unknowns = json.loads(f.attrs.get("unknowns", "{}"))
    out = {}
    for name, value in unknowns.items():
        if isinstance(value, list):
            out.update({f"{name}.{i}": float(v) for i, v in enumerate(value)})
        else:
            out[name] = float(value)
    return out


def ensemble(
    config: RunConfig,
    members: int,
    *,
    out_dir: str | os.PathLike | None = None,
    executor: str = "local",
    workers: int | None = None,
    threads: int | None = None,
    address: str | None = None,
    problems_dirs: Iterable = (),
) -> dict[str, Estimate]:
    """Train the ensemble of ``config`` (module docstring) and return an ``Estimate``
    per scalar unknown (an entry ``name.i`` per entry of a vector). With ``out_dir``, every
    member's solution is written there as ``member-<k>.h5``, and ``summary.json`` beside."""
    from ..registry import catalogue
    from .executors import make_executor

    configs = member_configs(config, members)
    problems_dirs = [str(p) for p in problems_dirs]
    problem = catalogue(problems_dirs).problem(config.problem.id, **config.problem.params())
    declared = problem.strong_form().unknowns if "strong" in problem.forms() else ()
    if not declared:
        raise ConfigError(
            f"--ensemble gives error bars on the unknowns of an inverse problem; {problem.id} "
            "declares none."
        )
    folder = Path(out_dir) if out_dir is not None else None
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
    pool = make_executor(
        executor, workers=workers, address=address, threads=threads, problems_dirs=problems_dirs
    )
    values: dict[int, dict[str, float]] = {}
    try:
        for k, result in pool.map_unordered([c.model_dump_json() for c in configs]):
            if result["status"] != "done":
                raise TrainingError(f"ensemble member {k} failed: {result['error']}")
            values[k] = _scalars(result["file"])
            if folder is not None:
                (folder / f"member-{k}.h5").write_bytes(result["file"])
    finally:
        pool.close()
    truth = {}
    for u in declared:
        if getattr(u, "exact", None) is not None and not callable(u.exact):
            exact = np.atleast_1d(np.asarray(u.exact, dtype=float))
            if np.ndim(u.exact) == 0:
                truth[u.name] = float(exact[0])
            else:
                truth.update({f"{u.name}.{i}": float(v) for i, v in enumerate(exact)})
    m = len(values)
    factor = float(stats.t.ppf(0.975, m - 1))
    out = {}
    for name in values[0]:
        series = np.array([values[k][name] for k in sorted(values)])
        std = float(series.std(ddof=1))
        value = float(series[0])
        out[name] = Estimate(
            name,
            value,
            std,
            value - factor * std,
            value + factor * std,
            tuple(float(v) for v in series),
            truth.get(name),
        )
    if folder is not None:
        summary = {name: e.as_dict() for name, e in out.items()}
        (folder / "summary.json").write_text(json.dumps(summary, indent=2))
    return out
