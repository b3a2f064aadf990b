"""Measured values of a solution: the data of an inverse problem (docs/inverse.md).

``Observations`` holds points (n, D) — t in column 0 for a time-dependent problem, then
the space coordinates — and the values measured there: of u ((n,) or (n, k)), of one output
(``output``), or of a derived quantity ``of(d)`` of the derivatives object at the points (a
flux ``lambda d: d.partial(0)``). A collocation solver adds the misfit

    L_data = weight · mean |q(x_i) − y_i|²,   q = u, u_j or of(d),

as one loss term named ``name`` ("data" by default).

Files (``read``) hold the same two arrays:

- ``.npz`` and ``.h5``: arrays ``points`` (n, D) and ``values`` (n,) or (n, k); optionally a
  scalar ``noise_std``;
- ``.csv`` and ``.txt`` (comma-, semicolon- or white-space-separated; a first line that is not
  numbers is a header): one row per point, D input columns, then the value column(s).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from .errors import ParameterError, ShapeError


@dataclass(frozen=True)
class Observations:
    """Values y_i measured at points x_i (see the module docstring): ``values`` of u, of output
    ``output``, or of ``of(d)``; ``noise_std`` the standard deviation of their noise where it is
    known (an ensemble resamples it: docs/inverse.md); ``weight`` the loss term's weight.
    Arrays, lists and tensors are accepted and kept as float64 tensors."""

    points: Any
    values: Any
    noise_std: float | None = None
    output: int | None = None
    weight: float = 1.0
    of: Callable[[Any], Tensor] | None = None
    name: str = "data"
    source: str = field(default="", compare=False)

    def __post_init__(self):
        where = self.source or "Observations"
        x = _tensor(self.points, where, "points")
        y = _tensor(self.values, where, "values")
        if x.dim() == 1:
            x = x[:, None]
        if x.dim() != 2 or len(x) == 0:
            raise ShapeError(f"{where}: points must have shape (n, D), got {tuple(x.shape)}.")
        if y.dim() not in (1, 2) or len(y) != len(x):
            raise ShapeError(
                f"{where}: values must have one row per point, (n,) or (n, k) with n = {len(x)}; "
                f"got {tuple(y.shape)}."
            )
        _finite(x, where, "points")
        _finite(y, where, "values")
        if self.output is not None and self.of is not None:
            raise ParameterError(f"{where}: give output= or of=, not both.")
        if self.output is not None and (isinstance(self.output, bool) or self.output < 0):
            raise ParameterError(f"{where}: output must be an index ≥ 0, got {self.output!r}.")
        if self.noise_std is not None and not (
            math.isfinite(self.noise_std) and self.noise_std >= 0
        ):
            raise ParameterError(f"{where}: noise_std must be ≥ 0, got {self.noise_std!r}.")
        if not (math.isfinite(self.weight) and self.weight > 0):
            raise ParameterError(f"{where}: weight must be > 0, got {self.weight!r}.")
        if not isinstance(self.name, str) or not self.name or "/" in self.name:
            raise ParameterError(f"{where}: name must be a non-empty string without '/'.")
        object.__setattr__(self, "points", x)
        object.__setattr__(self, "values", y)

    def __len__(self) -> int:
        return len(self.points)

    @classmethod
    def synthetic(
        cls,
        points: Tensor,
        truth: Callable[[Tensor], Tensor],
        *,
        noise: float = 0.0,
        seed: int = 0,
        **kw,
    ) -> Observations:
        """Synthetic data from a known solution: y = truth(x) + noise · std(truth) · ξ with
        ξ standard normal drawn from ``seed`` (the relative noise level of Raissi,
        Perdikaris & Karniadakis 2019: ``noise=0.01`` is "1 % noise"); ``noise_std`` is set
        to the noise's standard deviation. ``kw`` go to the constructor."""
        x = torch.as_tensor(points, dtype=torch.float64)
        with torch.no_grad():
            clean = truth(x).double()
        std = noise * float(clean.std()) if noise else 0.0
        xi = torch.randn(
            clean.shape, generator=torch.Generator().manual_seed(seed), dtype=clean.dtype
        )
        return cls(x, clean + std * xi, noise_std=std if noise else None, **kw)

    @classmethod
    def sample(
        cls,
        domain,
        truth: Callable[[Tensor], Tensor],
        n: int,
        *,
        noise: float = 0.0,
        seed: int = 0,
        **kw,
    ) -> Observations:
        """``synthetic`` data at ``n`` uniform points of ``domain`` drawn from ``seed``
        (the noise from ``seed + 1``): what a synthetic inverse problem measures."""
        g = torch.Generator().manual_seed(seed)
        x = domain.sample_interior(n, generator=g, dtype=torch.float64)
        return cls.synthetic(x, truth, noise=noise, seed=seed + 1, **kw)

    def subset(self, rows: Tensor) -> Observations:
        """The observations at ``rows`` (indices)."""
        return dataclasses.replace(self, points=self.points[rows], values=self.values[rows])

    def split(self, holdout: float) -> tuple[Observations, Observations | None]:
        """(training rows, held-out rows): a fraction ``holdout`` held out, chosen by a fixed
        seed (0) so that every run of the same data holds out the same rows."""
        if holdout == 0:
            return self, None
        n = len(self)
        held = round(holdout * n)
        if held < 1 or held >= n:
            raise ParameterError(
                f"{self.source or self.name}: holding out {holdout} of {n} observations leaves "
                f"{held} held out and {n - held} to train on; both must be ≥ 1."
            )
        order = torch.randperm(n, generator=torch.Generator().manual_seed(0))
        return self.subset(order[held:]), self.subset(order[:held])

    def resampled(self, generator: torch.Generator) -> Observations:
        """A replicate of the data for an ensemble member: y + noise_std·ξ (fresh Gaussian
        noise) where the noise is known, else the rows drawn with replacement (a bootstrap)."""
        if self.noise_std:
            noise = torch.randn(self.values.shape, generator=generator, dtype=torch.float64)
            return dataclasses.replace(self, values=self.values + self.noise_std * noise)
        rows = torch.randint(len(self), (len(self),), generator=generator)
        return self.subset(rows)


def _tensor(a, where: str, what: str) -> Tensor:
    try:
        t = torch.as_tensor(np.asarray(a, dtype=np.float64))
    except (TypeError, ValueError) as e:
        raise ShapeError(f"{where}: {what} must be numbers: {e}") from None
    return t


def _finite(a: Tensor, where: str, what: str) -> None:
    bad = ~torch.isfinite(a)
    if bad.any():
        row, *col = (int(i) for i in bad.nonzero()[0])
        column = f", column {col[0]}" if col else ""
        raise ShapeError(
            f"{where}: {what} hold {int(bad.sum())} non-finite value(s); the first is at row "
            f"{row}{column} (rows and columns counted from 0)."
        )


def read(path: str | Path, in_dim: int, **kw) -> Observations:
    """Observations from a file (layouts in the module docstring); ``in_dim`` is D, the
    problem's input columns (t first for a time-dependent problem); ``kw`` go to
    ``Observations`` (``output``, ``weight``, ``noise_std`` unless the file has one)."""
    path = Path(path)
    if not path.exists():
        raise ParameterError(f"data file '{path}' does not exist.")
    suffix = path.suffix.lower()
    if suffix == ".npz":
        arrays = _npz(path)
    elif suffix in (".h5", ".hdf5"):
        arrays = _h5(path)
    elif suffix in (".csv", ".txt", ".dat"):
        arrays = _table(path, in_dim)
    else:
        raise ParameterError(
            f"data file '{path}': unknown format '{suffix}'; use .npz, .h5 or .csv/.txt "
            "(layouts in docs/inverse.md)."
        )
    points, values = arrays["points"], arrays["values"]
    if points.ndim != 2 or points.shape[1] != in_dim:
        raise ShapeError(
            f"data file '{path}': points must have shape (n, {in_dim}) for this problem "
            f"(t first for a time-dependent one), got {points.shape}."
        )
    if "noise_std" in arrays and "noise_std" not in kw:
        kw["noise_std"] = float(arrays["noise_std"])
    return Observations(points, values, source=f"data file '{path}'", **kw)


def _npz(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
    except (OSError, ValueError) as e:
        raise ParameterError(f"data file '{path}' is not a readable .npz file: {e}") from None
    return _require(arrays, path)


def _h5(path: Path) -> dict[str, np.ndarray]:
    import h5py

    try:
        with h5py.File(path, "r") as f:
            arrays = {k: np.array(f[k]) for k in f if isinstance(f[k], h5py.Dataset)}
    except OSError as e:
        raise ParameterError(f"data file '{path}' is not a readable HDF5 file: {e}") from None
    return _require(arrays, path)


def _require(arrays: dict[str, np.ndarray], path: Path) -> dict[str, np.ndarray]:
    missing = [k for k in ("points", "values") if k not in arrays]
    if missing:
        raise ParameterError(
            f"data file '{path}' lacks the array(s) {', '.join(missing)}; it holds "
            f"{', '.join(arrays) or 'none'} (layouts in docs/inverse.md)."
        )
    return arrays


def read_table(path: str | Path) -> np.ndarray:
    """The numbers of a text table (n, m): comma-, semicolon- or white-space-separated, blank
    and '#' lines skipped, a first line that is not numbers taken as a header; every row the
    same length. The one reader of observation files and of ``pinnlab eval``'s points."""
    path = Path(path)
    lines = [
        ln for ln in path.read_text().splitlines() if ln.strip() and not ln.lstrip().startswith("#")
    ]
    if not lines:
        raise ParameterError(f"'{path}' holds no rows.")
    sep = next((s for s in (",", ";") if s in lines[0]), None)
    start = 0 if _numbers(lines[0].split(sep)) else 1  # a header line
    table = []
    for i, line in enumerate(lines[start:], start=start + 1):
        try:
            table.append([float(v) for v in line.split(sep)])
        except ValueError:
            raise ShapeError(f"'{path}', line {i}: not a row of numbers: {line!r}.") from None
        if len(table[-1]) != len(table[0]):
            raise ShapeError(
                f"'{path}', line {i}: {len(table[-1])} columns, the first row has "
                f"{len(table[0])}; every row needs the same number of columns."
            )
    if not table:
        raise ParameterError(f"'{path}' holds a header but no rows.")
    return np.asarray(table)


def _table(path: Path, in_dim: int) -> dict[str, np.ndarray]:
    a = read_table(path)
    if a.shape[1] <= in_dim:
        raise ShapeError(
            f"data file '{path}': {a.shape[1]} columns; this problem needs {in_dim} input "
            "column(s) (t first for a time-dependent one), then the value column(s)."
        )
    values = a[:, in_dim:]
    return {"points": a[:, :in_dim], "values": values[:, 0] if values.shape[1] == 1 else values}


def _numbers(row: list[str]) -> bool:
    try:
        [float(v) for v in row]
    except ValueError:
        return False
    return True


def check_observations(
    observations, domain, outputs: int, holdout: float, taken, problem: str
) -> tuple[tuple[Observations, ...], tuple[Observations, ...]]:
    """The observations a solver fits, checked against its form (input columns, points in the
    ``domain``, output index, names distinct and not ``taken`` by a condition), and split into
    (fitted, held out) by ``Observations.split``."""
    fitted, held, names = [], [], set()
    for o in observations:
        where = o.source or f"observations '{o.name}'"
        if o.points.shape[1] != domain.dim:
            raise ShapeError(
                f"{problem}: {where} have points with {o.points.shape[1]} column(s); the "
                f"problem's points have {domain.dim} (t first for a time-dependent one)."
            )
        try:
            inside = domain.contains(o.points)
        except ParameterError:  # a domain that cannot tell (no contains())
            inside = None
        if inside is not None and not inside.all():
            outside = (~inside).nonzero()[:, 0]
            first = o.points[outside[0]].tolist()
            raise ParameterError(
                f"{problem}: {where}: {len(outside)} of {len(o)} points lie outside the domain "
                f"{domain}; the first is row {int(outside[0])}, at {first}."
            )
        if o.output is not None and o.output >= outputs:
            raise ParameterError(
                f"{problem}: {where}: output={o.output}, the solution has outputs 0 … {outputs - 1}."
            )
        if o.name in names or o.name in taken:
            raise ParameterError(
                f"{problem}: observations named '{o.name}' twice, or like a condition; give "
                "each set of observations its own name=."
            )
        names.add(o.name)
        train, test = o.split(holdout)
        fitted.append(train)
        if test is not None:
            held.append(test)
    return tuple(fitted), tuple(held)


def check_synthetic(problem) -> None:
    """The parameters ``n_data`` (≥ 1) and ``noise`` (≥ 0) of a synthetic inverse problem,
    checked through ``problem.require``."""
    problem.require(problem.n_data >= 1, f"n_data must be ≥ 1, got {problem.n_data}")
    problem.require(problem.noise >= 0, f"noise must be ≥ 0, got {problem.noise}")
