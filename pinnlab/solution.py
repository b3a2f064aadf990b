"""A trained solution: evaluate, differentiate, measure, save to and load from HDF5.

File layout (format ``pinnlab-solution``, version 1; no pickled objects anywhere):

    /                attrs: format, format_version, pinnlab_version
    /                attrs: config, environment, metrics  (JSON strings)
    /weights/<name>  one dataset per entry of the model's state_dict
    /history/<key>   one dataset per training history series
    /                attrs: unknowns (JSON: the identified numbers of an inverse problem)
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from .build import build_model, build_solver
from .config import RunConfig
from .derivatives import Derivatives
from .errors import IdentifiabilityWarning, ShapeError, SolutionFileError, UnknownNameError
from .files import atomic_write
from .metrics import (
    Metric,
    chunk_rows,
    error_metrics,
    exact_with_grad,
    point_metrics,
    reference_metrics,
    test_points,
)
from .problem import ExactSolution, Problem, Reference, ReferenceSolution
from .solvers import Solver
from .unknowns import unknowns_of

FORMAT = "pinnlab-solution"
FORMAT_VERSION = 1
#: Rows per evaluation chunk at most; chunks also hold at most ``metrics.GRAPH_NUMBERS``
#: inputs (rows × columns): at d = 10,000 a chunk is 419 rows, whose activations and autograd
#: graph stay well under 1 GB.
CHUNK = 65_536


def _rows(columns: int) -> int:
    return chunk_rows(columns, CHUNK)


class Solution:
    """A trained network for ``problem``, with the config and history that made it.

    Call it on points (n, dim) — numpy in, numpy out; torch in, torch out (differentiable);
    floating outputs have the dtype of the input (the network computes in its own dtype).
    For time-dependent problems column 0 is t. Large inputs are evaluated in chunks.
    """

    def __init__(
        self,
        problem: Problem,
        model: nn.Module,
        config: RunConfig,
        *,
        solver: Solver | None = None,
        history: Mapping[str, Any] | None = None,
        environment: Mapping[str, Any] | None = None,
        metrics: Mapping[str, float] | None = None,
        added_metrics: Sequence[type[Metric]] = (),
    ):
        self.problem = problem
        self.model = model
        self.config = config
        self.history = {k: np.asarray(v) for k, v in (history or {}).items()}
        self.environment = dict(environment or {})
        self._metrics = dict(metrics) if metrics else None
        #: The metrics users registered (``pinnlab.registry.metrics``), measured beside
        #: pinnlab's own where they apply.
        self.added_metrics = tuple(added_metrics)
        self._truth_cache = None
        self._reference = None
        #: The (immutable) solver that trained it, for what only its method can measure.
        self.solver = solver if solver is not None else build_solver(problem, config)
        #: For solutions of x alone at a time t* (Feynman–Kac, deep BSDE): t*; else None.
        self.at_time = self.solver.network().at_time
        self.time_dependent = problem.time_dependent and self.at_time is None
        self.in_dim = problem.dim + int(self.time_dependent)
        #: For a solution known at one point only (deep BSDE at x₀): that point; else None.
        self.point = getattr(model, "point", None)

    @property
    def _param(self) -> Tensor:
        return next(self.model.parameters())

    def _check(self, x) -> None:
        shape = tuple(x.shape)
        if len(shape) != 2 or shape[1] != self.in_dim:
            if self.time_dependent:
                layout = f"t in column 0, then {self.problem.dim} space coordinates"
            elif self.at_time is not None:
                layout = f"{self.problem.dim} space coordinates; this is u(t={self.at_time:g}, x)"
            else:
                layout = f"{self.problem.dim} coordinates per row"
            raise ShapeError(
                f"points for {self.problem} must have shape (n, {self.in_dim}) ({layout}); got {shape}."
            )

    def _points(self, x):
        """Points as an array (n, D): a tensor or array as it is; a list of rows, one row (a
        list of D numbers) or, for one input column, a number or a list of numbers, as an
        array; anything else a clear error."""
        if isinstance(x, Tensor | np.ndarray):
            return x
        try:
            a = np.asarray(x, dtype=np.float64)
        except (TypeError, ValueError):
            raise ShapeError(
                f"points must be an array, a tensor or a list of rows of {self.in_dim} numbers; "
                f"got {type(x).__name__}."
            ) from None
        if a.ndim == 0 or (a.ndim == 1 and self.in_dim == 1):
            return a.reshape(-1, 1)
        if a.ndim == 1 and len(a) == self.in_dim:  # one point
            return a[None]
        return a

    def _apply(self, fn, x):
        """Run ``fn`` on chunks of x; numpy in -> numpy out, torch in -> torch out (a list
        or a number in -> numpy out)."""
        x = self._points(x)
        self._check(x)
        space = x[:, int(self.time_dependent) :]  # e.g. asset prices must be positive
        self.problem.check_points(space if isinstance(x, Tensor) else torch.from_numpy(space))
        p = self._param
        if isinstance(x, Tensor):
            parts = [fn(c.to(device=p.device, dtype=p.dtype)) for c in x.split(_rows(x.shape[1]))]
            out = torch.cat(parts)
            return out.to(device=x.device, dtype=x.dtype if x.is_floating_point() else out.dtype)
        x = np.asarray(x)
        with torch.no_grad():
            parts = [
                fn(torch.from_numpy(c).to(device=p.device, dtype=p.dtype)).cpu().numpy()
                for c in np.array_split(x, max(1, -(-len(x) // _rows(x.shape[1]))))
            ]
        out = np.concatenate(parts)
        return out.astype(x.dtype, copy=False) if np.issubdtype(x.dtype, np.floating) else out

    def __call__(self, x):
        """u at the points: (n,) for scalar problems, (n, k) for k outputs."""
        return self._apply(lambda c: Derivatives._squeeze(self.model(c)), x)

    def grad(self, x):
        """The spatial gradient ∇u at the points: (n, d), or (n, k, d) for k outputs."""
        return self._apply(self._grad, x)

    def _grad(self, x: Tensor) -> Tensor:
        return Derivatives(self.model, x, method="reverse", time_dependent=self.time_dependent).grad

    # --- unknowns of an inverse problem -------------------------------------------------
    @property
    def unknowns(self) -> dict[str, Any]:
        """The identified unknowns (docs/inverse.md): a float for a number, an array for a
        vector, and for a field a callable like ``unknown`` returns; {} for a forward
        problem."""
        found = unknowns_of(self.model)
        if found is None:
            return {}
        return {name: self.unknown(name) for name in found.declared}

    def unknown(self, name: str):
        """The unknown ``name``: its value (a float, or an array for a vector), or for an
        ``pinnlab.UnknownField`` a callable κ(x) on space points (n, d) — numpy in, numpy
        out; torch in, torch out — evaluated like the solution."""
        found = unknowns_of(self.model)
        if found is None:
            raise UnknownNameError(
                f"unknown '{name}': {self.problem.id} is a forward problem with no unknowns."
            )
        found.declaration(name)  # an unknown name: the error lists the declared ones
        if name in found.fields:
            return FieldValues(found.fields[name], self.problem, name)
        value = found.value(name).detach().double().cpu().numpy()
        return float(value) if value.ndim == 0 else value

    @property
    def metrics(self) -> dict[str, float]:
        """Errors against the problem's truth on its fixed test set of 10⁴ points."""
        if self._metrics is None:
            self._metrics = self.evaluate()
        return dict(self._metrics)

    def evaluate(self) -> dict[str, float]:
        """Compute the metrics (see ``pinnlab.metrics``) and any the problem adds.

        Against ``exact``: the error metrics on the test set (at x₀ only for a solution known
        at one point). Against a ``reference()``: the ``ref_*`` metrics. A problem adds its own
        by defining ``extra_metrics(solution) -> dict[str, float]``; a registered
        ``pinnlab.metrics.Metric`` adds its value where it applies.
        """
        out = self._builtin_metrics()
        for cls in self.added_metrics:
            metric = cls()
            if metric.applies(self.problem):
                with torch.no_grad():  # solution.grad still differentiates
                    out[cls.name] = float(metric(self))
        return out

    def _builtin_metrics(self) -> dict[str, float]:
        out = self.problem.extra_metrics(self)
        out.update(self.solver.metrics(self.model))
        ref = self.reference()
        if ref is not None:
            out.update(self._reference_metrics(ref))
        if not isinstance(self.problem, ExactSolution):
            return out
        if self.point is not None:
            x = self.point[None].double()
            inputs = self._inputs(x)
            u_true, _ = exact_with_grad(self.problem, inputs, self.problem.time_dependent)
            return {**out, **point_metrics(self._values(x), u_true)}
        p = self._param
        x, u_true, g_true = self._truth(p.dtype, p.device)
        with self._evaluating():  # no graph kept: each chunk's is freed before the next
            g = torch.cat([self._grad(c) for c in x.split(_rows(x.shape[1]))])
        return {**error_metrics(self._values(x), u_true, g, g_true), **out}

    def reference(self) -> Reference | None:
        """The problem's reference values (``problem.reference()``), computed once; None if
        it has none."""
        if not isinstance(self.problem, ReferenceSolution):
            return None
        if self._reference is None:
            self._reference = (self.problem.reference(),)
        return self._reference[0]

    @contextlib.contextmanager
    def _evaluating(self):
        """The model in evaluation mode without autograd; its mode is restored after."""
        was_training = self.model.training
        self.model.eval()
        try:
            with torch.no_grad():
                yield
        finally:
            self.model.train(was_training)

    def _values(self, x: Tensor) -> Tensor:
        """u at points x (in the model's dtype and device) in evaluation mode."""
        p = self._param
        with self._evaluating():
            return torch.cat([self.model(c.to(p)) for c in x.split(_rows(x.shape[1]))])

    def _inputs(self, x: Tensor) -> Tensor:
        """Space points x → the problem's input columns ((t*, x) for a solution at t*)."""
        if self.at_time is None:
            return x
        return torch.cat([torch.full_like(x[:, :1], self.at_time), x], dim=1)

    def measures_error(self) -> bool:
        """Whether ``evaluate`` measures an error: the method's own (an energy against a
        known E₀), against the exact solution, or against a reference at points where this
        solution is defined (a deep BSDE solution at x₀ is not, on a reference cloud)."""
        if self.solver.has_truth or isinstance(self.problem, ExactSolution):
            return True
        ref = self.reference()
        return ref is not None and self._reference_inputs(ref) is not None

    def _reference_inputs(self, ref: Reference) -> Tensor | None:
        """The reference's points as this solution's inputs; None where it is not defined
        there (another time, or other points than its one point)."""
        x = ref.x
        if self.time_dependent:
            x = torch.cat([torch.full_like(x[:, :1], ref.t), x], dim=1)
        elif self.at_time is not None and abs(ref.t - self.at_time) > 1e-12:
            return None
        if self.point is not None and not torch.allclose(x.double(), self.point[None].double()):
            return None
        return x

    def _reference_metrics(self, ref: Reference) -> dict[str, float]:
        """The ref_* metrics at the reference's points, where this solution is defined; a
        reference of k columns is compared with the first k outputs (a velocity without its
        pressure)."""
        x = self._reference_inputs(ref)
        if x is None:
            return {}
        u = self._values(x.to(self._param))
        if ref.value.dim() == 2 and u.dim() == 2 and ref.value.shape[1] < u.shape[1]:
            u = u[:, : ref.value.shape[1]]
        return reference_metrics(u, ref.value, ref.stderr)

    def _truth(self, dtype, device) -> tuple[Tensor, Tensor, Tensor]:
        """The test set and the exact values and gradients there, computed once."""
        key = (dtype, device)
        if self._truth_cache is None or self._truth_cache[0] != key:
            x = test_points(self.problem, dtype=dtype, device=device, at_time=self.at_time)
            u, g = exact_with_grad(
                self.problem, self._inputs(x.double()), self.problem.time_dependent
            )
            self._truth_cache = (key, (x, u.to(device), g.to(device)))
        return self._truth_cache[1]

    # --- storage -----------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> Path:
        """Write the solution to ``path`` atomically (temporary file, then rename)."""
        import h5py

        from .version import __version__

        path = Path(path)
        with atomic_write(path) as tmp, h5py.File(tmp, "w") as f:
            f.attrs["format"] = FORMAT
            f.attrs["format_version"] = FORMAT_VERSION
            f.attrs["pinnlab_version"] = __version__
            f.attrs["config"] = self.config.model_dump_json()
            f.attrs["environment"] = json.dumps(self.environment)
            f.attrs["metrics"] = json.dumps(self.metrics)
            f.attrs["unknowns"] = json.dumps(
                {k: _jsonable(v) for k, v in self.unknowns.items() if not callable(v)}
            )
            weights = f.create_group("weights")
            for name, tensor in self.model.state_dict().items():
                weights.create_dataset(name, data=tensor.detach().cpu().numpy())
            history = f.create_group("history")
            for key, values in self.history.items():
                history.create_dataset(key, data=np.asarray(values))
        return path

    def plot(self, what: str = "solution", *, out=None, slice=None, at=None, points=None):
        """A matplotlib Figure (Agg, no window) of the solution, its error, its residual, the
        training history or the unknowns (docs/plots.md; ``pinnlab.plot.plot``): what is
        one of ``pinnlab.plot.KINDS``; ``slice`` the two input columns of a heat map ("0,1");
        ``at`` the time(s) of a space-time problem ("t=0.5"); ``points`` grid points per axis.
        With ``out`` the figure is also written there (PNG unless the suffix says otherwise)."""
        from .plot import plot

        return plot(self, what, out=out, slice=slice, at=at, points=points)

    def __repr__(self) -> str:
        return f"Solution({self.problem}, method={self.config.method!r})"


def _jsonable(value):
    return value.tolist() if isinstance(value, np.ndarray) else value


class FieldValues:
    """An unknown field κ(x) of a solution, on points of space (n, d): numpy in, numpy out;
    torch in, torch out; (n,) for one component, (n, k) for k."""

    def __init__(self, net: nn.Module, problem: Problem, name: str):
        self.net, self.problem, self.name = net, problem, name

    def __call__(self, x):
        shape = tuple(x.shape) if hasattr(x, "shape") else None
        if shape is None or len(shape) != 2 or shape[1] != self.problem.dim:
            raise ShapeError(
                f"points for the field '{self.name}' of {self.problem} must have shape "
                f"(n, {self.problem.dim}) (space coordinates, no t); got {shape}."
            )
        p = next(self.net.parameters())
        if isinstance(x, Tensor):
            out = Derivatives._squeeze(self.net(x.to(p)))
            return out.to(device=x.device, dtype=x.dtype)
        with torch.no_grad():
            out = self.net(torch.from_numpy(np.asarray(x)).to(p)).cpu().numpy()
        return Derivatives._squeeze(torch.from_numpy(out)).numpy().astype(x.dtype, copy=False)

    def __repr__(self) -> str:
        return f"<field {self.name}(x) of {self.problem}>"


@dataclass(frozen=True)
class SavedSolution:
    """What a solution file holds: its config (normalised as this version reads it), its
    environment and metrics, and (unless read without arrays) its weights and history."""

    config: RunConfig
    environment: dict[str, Any]
    metrics: dict[str, float]
    weights: dict[str, Tensor] | None = None
    history: dict[str, np.ndarray] | None = None
    #: The identified numbers and vectors of an inverse problem ({} for a forward one).
    unknowns: dict[str, Any] = dataclasses.field(default_factory=dict)


def read(path: str | os.PathLike, *, arrays: bool = True) -> SavedSolution:
    """The one reader of the file layout: a ``SavedSolution`` from ``path``, or a
    ``SolutionFileError`` that says what is wrong with the file."""
    import h5py

    path = Path(path)
    if not path.exists():
        raise SolutionFileError(f"solution file '{path}' does not exist.")
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise SolutionFileError(
            f"'{path}' is not a readable HDF5 file (corrupt or truncated?): {e}"
        ) from None
    with f:
        try:
            if f.attrs.get("format") != FORMAT:
                raise SolutionFileError(f"'{path}' is an HDF5 file but not a pinnlab solution.")
            version = int(f.attrs["format_version"])
            if version > FORMAT_VERSION:
                raise SolutionFileError(
                    f"'{path}' has format version {version}; this pinnlab reads up to "
                    f"{FORMAT_VERSION}. Upgrade pinnlab."
                )
            raw = json.loads(f.attrs["config"])
            # Files written before net.normalize_input existed had no input map.
            raw.get("net", {}).setdefault("normalize_input", False)
            with warnings.catch_warnings():  # a file's old net keys are translated quietly
                warnings.simplefilter("ignore", FutureWarning)
                config = RunConfig.model_validate(raw)
            saved = SavedSolution(
                config,
                json.loads(f.attrs["environment"]),
                json.loads(f.attrs["metrics"]),
                unknowns=json.loads(f.attrs.get("unknowns", "{}")),
            )
            if not arrays:
                return saved
            weights = {k: torch.from_numpy(np.array(v)) for k, v in f["weights"].items()}
            history = {k: np.array(v) for k, v in f["history"].items()}
        except SolutionFileError:
            raise
        except (KeyError, OSError, RuntimeError, ValueError, TypeError) as e:  # h5py raises all
            raise SolutionFileError(f"'{path}' is damaged or incomplete: {e}") from None
    return dataclasses.replace(saved, weights=weights, history=history)


def load(path: str | os.PathLike, *, device: str = "cpu", problems_dirs=()) -> Solution:
    """Load a solution saved by ``Solution.save`` (never unpickles anything)."""
    from .registry import catalogue, metrics

    saved = read(path)
    config, state = saved.config, saved.weights
    environment, saved_metrics, history = saved.environment, saved.metrics, saved.history
    problems = catalogue(problems_dirs)
    if config.problem.id not in problems:
        raise UnknownNameError(
            f"unknown problem '{config.problem.id}': '{path}' holds a solution of it, and the "
            "catalogue has no such problem; pass the folder of its file or its class, "
            "pinnlab.load(path, problems_dirs=[MyProblem]) (command line: --problems DIR)."
        )
    problem = problems.problem(config.problem.id, **config.problem.params())
    with warnings.catch_warnings():  # what training would be told; the file is trained
        warnings.simplefilter("ignore", IdentifiabilityWarning)
        solver = build_solver(problem, config, problems_dirs)
        model = build_model(
            problem,
            config,
            device=torch.device(device),
            solver=solver,
            trained=True,
            problems_dirs=problems_dirs,
        ).module
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        raise SolutionFileError(f"'{path}': weights do not match its config: {e}") from None
    return Solution(
        problem,
        model,
        config,
        solver=solver,
        history=history,
        environment=environment,
        metrics=saved_metrics,
        added_metrics=tuple(metrics(problems_dirs).values()),
    )
