"""Pictures of a solution: u, its error, its residual, the training history, the unknowns.

``pinnlab plot RUN.h5 --what KIND`` and ``solution.plot(KIND)`` (docs/plots.md) draw on
matplotlib's Agg canvas (no window, no global backend setting) and return the Figure; with
``out`` it is also written there (atomically, in the format the suffix names).

Which picture depends on how many input columns vary: one (a 1-d problem, or a space-time
problem in one space dimension at fixed times) gives lines; two give a heat map on an N × N
grid, the other columns fixed at the centre of the domain's bounding box. ``slice`` names the
two input columns (t, column 0 of a space-time problem, goes on the horizontal axis); ``at``
fixes t. Grid points outside a domain that is not a box are masked (``domain.contains``).
"""

from __future__ import annotations

import math
import os
import textwrap
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from .derivatives import Derivatives
from .domains import SpaceTime
from .errors import ConfigError, FormError, PinnlabError, ShapeError, did_you_mean
from .files import atomic_write
from .metrics import chunk_rows, default_metric
from .problem import ExactSolution

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from .solution import Solution

#: What ``plot`` draws (``--what``).
KINDS = ("solution", "error", "residual", "history", "unknowns")
#: Grid points per axis of a heat map, and points of a line, unless ``points`` says otherwise.
MAP_POINTS = 200
LINE_POINTS = 1000
#: Resolution of written files (dots per inch).
DPI = 100
#: Residual components drawn one panel each; more are drawn as their root sum of squares.
MOST_PANELS = 6
_SUBSCRIPTS = str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉")

#: A panel draws itself on (figure, axes).
Panel = Callable[["Figure", "Axes"], None]


def default_out(run: str | os.PathLike, what: str) -> Path:
    """Where ``pinnlab plot RUN.h5 --what KIND`` writes: RUN-KIND.png beside the run."""
    run = Path(run)
    return run.with_name(f"{run.stem}-{what}.png")


def plot(
    solution: Solution,
    what: str = "solution",
    *,
    out: str | os.PathLike | None = None,
    slice: str | Sequence[int] | None = None,
    at: str | float | Sequence[float] | None = None,
    points: int | None = None,
    dpi: int = DPI,
) -> Figure:
    """A matplotlib Figure of ``solution`` (see the module docstring and docs/plots.md).

    ``what``: "solution" (u, beside the exact solution where the problem knows it), "error"
    (u − u*), "residual" (the strong-form residual), "history" (losses and error over the
    steps) or "unknowns" (an inverse problem's unknowns). ``slice``: the two input columns of
    a heat map ("0,1" or (0, 1); default the first two). ``at``: t of a space-time problem
    ("t=0.5", 0.5, or several: "t=0.25,0.5,0.75"). ``points``: grid points per axis (default
    200 for a heat map, 1000 for a line). ``out``: also write the figure there.
    """
    if what not in KINDS:
        raise ConfigError(
            f"unknown plot '{what}'.{did_you_mean(what, KINDS)} Available: {', '.join(KINDS)}."
        )
    if points is not None and (isinstance(points, bool) or not isinstance(points, int)):
        raise ConfigError(f"points must be an integer ≥ 2, got {points!r}.")
    if points is not None and points < 2:
        raise ConfigError(f"points must be ≥ 2 (grid points per axis), got {points}.")
    if what == "history":
        for name, value in (("slice", slice), ("at", at), ("points", points)):
            if value is not None:
                raise ConfigError(f"--{name} does not apply to the history plot; drop it.")
        panels, columns, note = [_history_panel(solution)], 1, "training history"
    elif what == "unknowns":
        if at is not None:
            raise ConfigError("--at does not apply to the unknowns plot (fields are of x alone).")
        panels, columns, note = _unknowns_panels(solution, slice, points)
    else:
        panels, columns, note = _field_panels(solution, what, slice, at, points)
    fig = _figure(solution, panels, columns, note)
    if out is not None:
        save(fig, out, dpi=dpi)
    return fig


def save(fig: Figure, out: str | os.PathLike, *, dpi: int = DPI) -> Path:
    """Write ``fig`` to ``out`` atomically, in the format its suffix names (png by default)."""
    out = Path(out)
    fmt = out.suffix.lstrip(".").lower() or "png"
    supported = fig.canvas.get_supported_filetypes()
    if fmt not in supported:
        raise ConfigError(
            f"cannot write '{out}': matplotlib writes {', '.join(sorted(supported))}; "
            "give --out a suffix such as .png."
        )
    with atomic_write(out, suffix=f".{fmt}") as tmp:
        fig.savefig(tmp, format=fmt, dpi=dpi)
    return out


# --- the view: which input columns vary, the others fixed ---------------------------------
@dataclass(frozen=True)
class _View:
    """A line (one varying column) or a heat map (two, the first horizontal) through ``base``."""

    columns: tuple[int, ...]
    base: np.ndarray  # (D,) the fixed coordinates
    low: np.ndarray
    high: np.ndarray
    n: int
    labels: tuple[str, ...]
    title: str = ""  # e.g. "t = 0.5" for one of several snapshots

    @property
    def is_map(self) -> bool:
        return len(self.columns) == 2

    def axis(self, i: int) -> np.ndarray:
        j = self.columns[i]
        return np.linspace(self.low[j], self.high[j], self.n)

    def points(self) -> np.ndarray:
        """The view's points (m, D), float64: a line's n, or a map's n × n (row-major in y)."""
        if self.is_map:
            xx, yy = np.meshgrid(self.axis(0), self.axis(1))
            coords = [xx.ravel(), yy.ravel()]
        else:
            coords = [self.axis(0)]
        x = np.tile(self.base, (len(coords[0]), 1))
        for j, c in zip(self.columns, coords, strict=True):
            x[:, j] = c
        return x

    @property
    def shape(self) -> tuple[int, ...]:
        return (self.n, self.n) if self.is_map else (self.n,)

    @property
    def extent(self) -> tuple[float, float, float, float]:
        a, b = self.columns
        return (self.low[a], self.high[a], self.low[b], self.high[b])


def _domain(solution: Solution):
    """The domain of the solution's inputs: the stochastic form's region for a solution of x
    alone at one time, else the problem's domain (t in column 0 for a space-time one)."""
    if solution.at_time is not None:
        return solution.problem.stochastic_form().region
    return solution.problem.domain()


def _bounds(domain, columns: int, what: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        low, high = domain.bounds()
    except NotImplementedError:
        raise ConfigError(
            f"{type(domain).__name__} has no bounding box: cannot lay a grid over it for {what}."
        ) from None
    low, high = low.double().numpy(), high.double().numpy()
    if low.shape != (columns,) or not (np.isfinite(low).all() and np.isfinite(high).all()):
        raise ConfigError(
            f"cannot plot {what}: the domain's bounding box ({low.tolist()}, {high.tolist()}) "
            f"is not a finite box over {columns} input column(s)."
        )
    return low, high


def _inside(domain, x: np.ndarray) -> np.ndarray:
    """Which points lie in the (closed) domain; all, for a domain that cannot say."""
    try:
        inside = domain.contains(torch.from_numpy(x))
    except (PinnlabError, NotImplementedError):
        return np.ones(len(x), dtype=bool)
    return np.asarray(inside.detach().cpu().numpy(), dtype=bool).reshape(len(x))


def _labels(columns: int, time_dependent: bool) -> tuple[str, ...]:
    """The name of each input column: t, x₀, x₁, … (t first for a space-time problem)."""
    offset = int(time_dependent)
    return tuple(
        "t" if time_dependent and j == 0 else f"x{str(j - offset).translate(_SUBSCRIPTS)}"
        for j in range(columns)
    )


def _parse_slice(slice, solution: Solution, columns: int, free: Sequence[int]) -> tuple[int, ...]:
    """The two input columns a heat map shows, checked; None: the first two free ones."""
    layout = f"{columns} input column(s), 0 … {columns - 1}" + (
        "; column 0 is t" if solution.time_dependent else ""
    )
    if slice is None:
        return tuple(free[:2])
    if isinstance(slice, str):
        try:
            chosen = tuple(int(p) for p in slice.replace(" ", "").split(","))
        except ValueError:
            raise ShapeError(
                f"--slice expects two input columns as A,B (e.g. 0,1), got '{slice}'."
            ) from None
    else:
        try:
            chosen = tuple(int(p) for p in slice)
        except (TypeError, ValueError):
            raise ShapeError(
                f"slice expects two input columns, e.g. (0, 1), got {slice!r}."
            ) from None
    if len(free) < 2:
        raise ShapeError(
            f"--slice {slice}: {solution.problem} is drawn as a line over its one free column "
            f"({layout}); there is no slice to choose."
        )
    if len(chosen) != 2 or chosen[0] == chosen[1]:
        raise ShapeError(
            f"--slice expects two different input columns (e.g. 0,1), got {slice!r}; "
            f"{solution.problem} has {layout}."
        )
    bad = [c for c in chosen if not 0 <= c < columns]
    if bad:
        raise ShapeError(
            f"--slice {chosen[0]},{chosen[1]}: column {bad[0]} is out of range; "
            f"{solution.problem} has {layout}."
        )
    fixed = [c for c in chosen if c not in free]
    if fixed:
        raise ShapeError(
            f"--slice {chosen[0]},{chosen[1]}: column {fixed[0]} is t, which --at fixes; "
            f"choose two space columns (1 … {columns - 1})."
        )
    if solution.time_dependent and chosen[1] == 0:  # t on the horizontal axis
        chosen = (0, chosen[0])
    return chosen


def _parse_times(at, solution: Solution, low: np.ndarray, high: np.ndarray) -> list[float]:
    """The times ``at`` names, checked against the problem's interval [t0, t1]."""
    if isinstance(at, str):
        text = at.strip()
        text = text[text.index("=") + 1 :] if "=" in text else text
        try:
            times = [float(v) for v in text.split(",")]
        except ValueError:
            raise ConfigError(
                f"--at expects t=VALUE (e.g. t=0.5, or t=0.25,0.5,0.75), got '{at}'."
            ) from None
    elif isinstance(at, int | float):
        times = [float(at)]
    else:
        try:
            times = [float(v) for v in at]
        except (TypeError, ValueError):
            raise ConfigError(f"at expects a time or a list of times, got {at!r}.") from None
    if not solution.time_dependent:
        why = (
            f"this solution is u(t={solution.at_time:g}, x), of x alone"
            if solution.at_time is not None
            else "its points have no t column"
        )
        raise ConfigError(f"--at t=...: {solution.problem} is not time-dependent ({why}).")
    t0, t1 = float(low[0]), float(high[0])
    for t in times:
        slack = 1e-12 * max(1.0, abs(t0), abs(t1))
        if not (math.isfinite(t) and t0 - slack <= t <= t1 + slack):
            raise ConfigError(
                f"--at t={t:g} lies outside [{t0:g}, {t1:g}], the time interval of "
                f"{solution.problem}."
            )
    if not times:
        raise ConfigError("--at expects at least one time, e.g. t=0.5.")
    return [min(max(t, t0), t1) for t in times]


def _views(solution: Solution, slice, at, points) -> list[_View]:
    """One view, or one per time of ``at``."""
    columns = solution.in_dim
    low, high = _bounds(_domain(solution), columns, "this solution")
    centre = (low + high) / 2
    labels = _labels(columns, solution.time_dependent)
    times = None if at is None else _parse_times(at, solution, low, high)
    free = list(range(columns)) if times is None else list(range(1, columns))
    chosen = _parse_slice(slice, solution, columns, free)
    n = points or (MAP_POINTS if len(chosen) == 2 else LINE_POINTS)
    if times is None:
        return [_View(chosen, centre, low, high, n, labels)]
    views = []
    for t in times:
        base = centre.copy()
        base[0] = t
        views.append(_View(chosen, base, low, high, n, labels, title=f"t = {t:g}"))
    return views


def _fixed_note(view: _View, times: bool) -> str:
    """What the view holds fixed, e.g. "x₂ … x₉₉ = 0.5 (the centre)"."""
    fixed = [j for j in range(len(view.base)) if j not in view.columns and not (times and j == 0)]
    if not fixed:
        return ""
    values = view.base[fixed]
    if len(fixed) <= 3:
        return ", ".join(f"{view.labels[j]} = {v:.3g}" for j, v in zip(fixed, values, strict=True))
    contiguous = fixed[-1] - fixed[0] == len(fixed) - 1
    which = f"{view.labels[fixed[0]]} … {view.labels[fixed[-1]]}" if contiguous else "the others"
    if np.allclose(values, values[0]):
        return f"{which} = {values[0]:.3g} (the centre)"
    return f"{which} at the centre of the domain"


# --- values on a view ----------------------------------------------------------------------
def _columns_of(values, n: int) -> np.ndarray:
    """Values (n,) or (n, k) as float64 columns (n, k)."""
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu().numpy()
    return np.asarray(values, dtype=np.float64).reshape(n, -1)


def _exact(solution: Solution, x: np.ndarray) -> np.ndarray:
    """u* at the solution's inputs x (m, D) as columns (m, k)."""
    problem = solution.problem
    t = torch.from_numpy(x)
    if solution.at_time is not None:  # the problem's inputs: (t*, x)
        t = torch.cat([torch.full_like(t[:, :1], solution.at_time), t], dim=1)
    with torch.no_grad():
        parts = [problem.exact(c) for c in t.split(chunk_rows(t.shape[1], 65_536))]
    return _columns_of(torch.cat(parts), len(x))


def _residual(solution: Solution, x: np.ndarray) -> dict[str, np.ndarray]:
    """The strong-form residual at x (m, D): name → (m,), one entry per component."""
    solver, method = solution.solver, solution.config.method
    if not hasattr(solver, "strong"):
        raise FormError(
            f"{method} has no strong-form residual to plot ({solution.problem} solved with "
            f"{method}); --what residual needs a collocation method with a strong form "
            "(pinn). Plot the solution, its error or the history instead."
        )
    p = next(solution.model.parameters())
    # Exact derivatives: reverse mode where it is cheap, else what `auto` picks.
    how = "reverse" if solution.in_dim <= 10 else "auto"
    generator = torch.Generator(device=p.device).manual_seed(0)
    parts: list[dict[str, np.ndarray]] = []
    for chunk in torch.from_numpy(x).split(chunk_rows(x.shape[1], 4096)):
        c = chunk.to(device=p.device, dtype=p.dtype)
        with torch.enable_grad():
            d = Derivatives(
                solution.model,
                c,
                method=how,
                time_dependent=solution.time_dependent,
                generator=generator,
            )
            r = solver.strong.residual(d)
        parts.append(_components(r, len(c)))
    out = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    if len(out) > MOST_PANELS:
        return {"‖residual‖": np.sqrt(sum(v**2 for v in out.values()))}
    return out


def _components(r, n: int) -> dict[str, np.ndarray]:
    """A residual (a tensor (n,) or (n, k), or a dict of them) as name → (n,)."""
    items = r.items() if isinstance(r, Mapping) else [("residual", r)]
    out = {}
    for name, value in items:
        value = torch.as_tensor(value)
        cols = _columns_of(value.expand(n) if value.dim() == 0 else value, n)
        if cols.shape[1] == 1:
            out[name] = cols[:, 0]
        else:
            out.update({f"{name}[{i}]": cols[:, i] for i in range(cols.shape[1])})
    return out


def _on_view(view: _View, inside: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Values at the inside points, NaN elsewhere, in the view's shape."""
    full = np.full(len(inside), np.nan)
    full[inside] = values
    return full.reshape(view.shape)


def _component_label(name: str, i: int, k: int) -> str:
    return name if k == 1 else f"{name}[{i}]"


def _field_panels(solution: Solution, what: str, slice, at, points):
    """Panels of u (and u*), of u − u*, or of the residual, on each view."""
    problem, method = solution.problem, solution.config.method
    truth = isinstance(problem, ExactSolution)
    if what == "error" and not truth:
        raise ConfigError(
            f"--what error: {problem} has no exact solution (its truth: {problem.truth}); "
            "plot the solution, the residual or the history instead."
        )
    if solution.point is not None and what != "residual":
        raise ConfigError(
            f"this {method} solution of {problem} is known at one point only (x₀); there is "
            "no field to draw. Plot its history instead (--what history)."
        )
    views = _views(solution, slice, at, points)
    domain = _domain(solution)
    panels: list[Panel] = []
    for view in views:
        x = view.points()
        inside = _inside(domain, x)
        if not inside.any():
            raise ShapeError(
                f"the slice through {_fixed_note(view, at is not None) or 'the centre'} misses "
                f"the domain of {problem}; choose other columns with --slice."
            )
        xin = x[inside]
        if what == "residual":
            for name, r in _residual(solution, xin).items():
                values = _on_view(view, inside, r)
                title = _join(
                    view.title if len(views) > 1 else "", "" if name == "residual" else name
                )
                panels.append(_panel(view, values, name, title=title, diverging=True))
            continue
        u = _columns_of(solution(xin), len(xin))
        exact = _exact(solution, xin) if truth else None
        k = u.shape[1]
        for i in range(k):
            ui = _on_view(view, inside, u[:, i])
            known = exact is not None and i < exact.shape[1]  # a truth of the first outputs
            ei = _on_view(view, inside, exact[:, i]) if known else None
            name = _component_label("u", i, k)
            title = view.title if len(views) > 1 else ""
            if what == "error":
                if ei is None:
                    continue
                label = f"{name} − {name}*"
                panels.append(_panel(view, ui - ei, label, title=title, diverging=True))
            elif not view.is_map:
                curves = [(ui, f"{name} ({method})", {})]
                if ei is not None:
                    curves.append((ei, f"{name}* (exact)", {"ls": "--", "color": "k"}))
                panels.append(_line(view, curves, name, title=title))
            else:
                limits = _limits(ui, ei)
                panels.append(
                    _panel(view, ui, name, title=_join(title, f"{name} ({method})"), limits=limits)
                )
                if ei is not None:
                    title = _join(title, f"{name}* (exact)")
                    panels.append(_panel(view, ei, f"{name}*", title=title, limits=limits))
    pairs = what == "solution" and truth and views[0].is_map
    columns = 2 if pairs else min(len(panels), 3)
    note = {
        "solution": "u" + (" and the exact solution u* (dashed)" if truth else ""),
        "error": "error u − u*",
        "residual": "strong-form residual",
    }[what]
    if pairs:
        note = "u and the exact solution u*"
    if at is not None:
        note = _join(note, "t = " + ", ".join(v.title.removeprefix("t = ") for v in views))
    return panels, columns, _join(note, _fixed_note(views[0], at is not None))


def _join(*parts: str) -> str:
    return " · ".join(p for p in parts if p)


def _limits(*arrays) -> tuple[float, float]:
    values = np.concatenate([a.ravel() for a in arrays if a is not None])
    values = values[np.isfinite(values)]
    if not len(values):
        return (0.0, 1.0)
    lo, hi = float(values.min()), float(values.max())
    return (lo, hi) if hi > lo else (lo - 0.5, hi + 0.5)


# --- panels --------------------------------------------------------------------------------
def _line(view: _View, curves, ylabel: str, *, title: str = "", zero: bool = False) -> Panel:
    x = view.axis(0)

    def draw(fig, ax):
        for y, label, style in curves:
            ax.plot(x, y, label=label, **{"lw": 1.6, **style})
        if zero:
            ax.axhline(0.0, color="0.6", lw=0.8)
        ax.set_xlabel(view.labels[view.columns[0]])
        ax.set_ylabel(ylabel)
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
        if len(curves) > 1:
            ax.legend(fontsize=8)

    return draw


def _panel(
    view: _View,
    values: np.ndarray,
    label: str,
    *,
    title: str = "",
    diverging: bool = False,
    limits: tuple[float, float] | None = None,
) -> Panel:
    """A heat map of ``values`` on a map view, or a line on a line view. ``diverging``
    (signed quantities: an error, a residual): a diverging scale centred at 0 where the values
    change sign; one of a sign gets the sequential scale over its range, which shows its
    variation (a residual that is positive everywhere)."""
    if not view.is_map:
        return _line(view, [(values, label, {})], label, title=title, zero=diverging)
    finite = values[np.isfinite(values)]
    if diverging and len(finite) and finite.min() < 0 < finite.max():
        top = float(np.abs(finite).max())
        limits = (-top, top)
    else:
        diverging = False
    limits = limits or _limits(values)

    def draw(fig, ax):
        a, b = view.columns
        width, height = view.high[a] - view.low[a], view.high[b] - view.low[b]
        time_axis = "t" in (view.labels[a], view.labels[b])
        equal = not time_axis and 1 / 3 <= width / height <= 3
        image = ax.imshow(
            np.ma.masked_invalid(values),
            origin="lower",
            extent=view.extent,
            aspect="equal" if equal else "auto",
            cmap="RdBu_r" if diverging else "viridis",
            vmin=limits[0],
            vmax=limits[1],
            interpolation="nearest",
        )
        bar = fig.colorbar(image, ax=ax)
        bar.set_label(label)
        ax.set_xlabel(view.labels[a])
        ax.set_ylabel(view.labels[b])
        ax.set_title(title, fontsize=10)

    return draw


def _tracked(solution: Solution) -> str:
    """The name of the metric the history's "error" is."""
    metric = solution.config.metric
    if metric != "auto":
        return metric
    try:
        return default_metric(solution.metrics, solution.problem.extra_metric_names)
    except KeyError:
        return "error"


def _history_panel(solution: Solution) -> Panel:
    h = solution.history
    steps = h.get("step")
    if steps is None or len(steps) == 0:
        raise ConfigError(f"{solution!r} has no training history to plot.")
    keys = [k for k in ("loss", *sorted(k for k in h if k.startswith("loss."))) if k in h]
    keys = [k for k in keys if len(h[k]) == len(steps)]
    evals = h.get("eval_step")
    error = h.get("error")
    has_error = evals is not None and error is not None and len(error) == len(evals) > 0
    name = _tracked(solution)

    def draw(fig, ax):
        colours = iter(f"C{i}" for i in (0, 1, 2, 4, 5, 6, 7, 8, 9) * 3)  # C3: the error
        for k in keys:
            if k == "loss":
                ax.plot(steps, h[k], label=k, lw=2.0, color="k")
            else:
                ax.plot(steps, h[k], label=k, lw=1.2, color=next(colours, None))
        finite = np.concatenate([h[k][np.isfinite(h[k])] for k in keys]) if keys else []
        ax.set_yscale("log" if len(finite) and finite.min() > 0 else "symlog")
        ax.set_xlabel("steps")
        ax.set_ylabel("loss")
        ax.grid(alpha=0.3, which="both")
        handles, labels = ax.get_legend_handles_labels()
        if has_error:
            twin = ax.twinx()
            style = {"marker": "o", "ms": 3} if len(evals) <= 50 else {}
            twin.plot(evals, error, color="C3", lw=1.6, label=f"error ({name})", **style)
            positive = error[np.isfinite(error)]
            twin.set_yscale("log" if len(positive) and positive.min() > 0 else "linear")
            twin.set_ylabel(f"error ({name})", color="C3")
            twin.tick_params(axis="y", colors="C3")
            more = twin.get_legend_handles_labels()
            handles, labels = handles + more[0], labels + more[1]
        ax.legend(
            handles,
            labels,
            fontsize=8,
            loc="upper center",
            bbox_to_anchor=(0.5, -0.14),
            ncol=min(3, len(labels)),
            frameon=False,
        )
        ax.set_title(
            "loss terms" + (" and error" if has_error else "") + " over training", fontsize=10
        )

    return draw


def _declared(problem) -> dict[str, Any]:
    """The unknowns the problem's strong form declares, by name (for their true values)."""
    if not hasattr(problem, "strong_form"):
        return {}
    return {u.name: u for u in problem.strong_form().unknowns}


def _unknowns_panels(solution: Solution, slice, points):
    problem = solution.problem
    unknowns = solution.unknowns
    if not unknowns:
        raise ConfigError(
            f"--what unknowns: {problem} is a forward problem; it has no unknowns to plot "
            "(that is for inverse problems, docs/inverse.md). Plot the solution or the "
            "history instead."
        )
    if not any(callable(v) for v in unknowns.values()):
        for option, value in (("slice", slice), ("points", points)):
            if value is not None:
                raise ConfigError(
                    f"--{option} applies to unknown fields; the unknowns of {problem} are numbers."
                )
    declared = _declared(problem)
    panels: list[Panel] = []
    for name, value in unknowns.items():
        if callable(value):
            panels += _unknown_field_panels(
                solution, name, value, declared.get(name), slice, points
            )
        else:
            panels.append(_unknown_history_panel(solution, name, value, declared.get(name)))
    return panels, min(len(panels), 3), "unknowns: learnt and true values"


def _unknown_history_panel(solution: Solution, name: str, value, declaration) -> Panel:
    h = solution.history
    value = np.atleast_1d(np.asarray(value, dtype=float))
    if f"unknown.{name}" in h:
        series = [h[f"unknown.{name}"]]
    else:
        series = [h[f"unknown.{name}.{i}"] for i in range(len(value)) if f"unknown.{name}.{i}" in h]
    evals = h.get("eval_step")
    if evals is None or any(len(s) != len(evals) for s in series):
        series = []
    exact = None
    if declaration is not None and getattr(declaration, "exact", None) is not None:
        exact = np.atleast_1d(np.asarray(declaration.exact, dtype=float))
    error = solution.metrics.get(f"{name}_error")
    last = solution.environment.get("steps") or (h["step"][-1] if len(h.get("step", [])) else 0)

    def draw(fig, ax):
        for i, v in enumerate(value):
            label = name if len(value) == 1 else f"{name}[{i}]"
            if series:
                ax.plot(evals, series[i], color=f"C{i}", lw=1.6, label=f"{label} (learnt)")
            else:
                ax.plot([last], [v], "o", color=f"C{i}", label=f"{label} (learnt)")
            if exact is not None:
                ax.axhline(exact[i], color=f"C{i}", ls="--", lw=1.2, label=f"{label} (exact)")
        ax.set_xlabel("steps")
        ax.set_ylabel(name)
        shown = ", ".join(f"{v:.4g}" for v in value)
        title = f"{name} = {shown}"
        if exact is not None:
            title += f" (exact {', '.join(f'{v:.4g}' for v in exact)})"
        if error is not None:
            title += f", error {error:.2g}"
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)

    return draw


def _unknown_field_panels(solution: Solution, name, field, declaration, slice, points):
    """κ(x) over the space domain: a line (beside κ*) in 1-d, heat maps in more."""
    problem = solution.problem
    domain = _domain(solution)
    space = domain.space if isinstance(domain, SpaceTime) else domain
    d = problem.dim
    low, high = _bounds(space, d, f"the field {name}")
    if slice is not None and solution.time_dependent:  # input columns → space columns
        chosen = _parse_slice(slice, solution, solution.in_dim, list(range(1, solution.in_dim)))
        slice = [c - 1 for c in chosen]
    view_columns = (0,) if d == 1 else _space_slice(slice, problem, d)
    n = points or (MAP_POINTS if len(view_columns) == 2 else LINE_POINTS)
    view = _View(view_columns, (low + high) / 2, low, high, n, _labels(d, False))
    x = view.points()
    inside = _inside(space, x)
    xin = x[inside]
    values = _columns_of(field(xin), len(xin))
    exact = None
    if declaration is not None and getattr(declaration, "exact", None) is not None:
        with torch.no_grad():
            exact = _columns_of(declaration.exact(torch.from_numpy(xin)), len(xin))
    error = solution.metrics.get(f"{name}_error")
    panels = []
    k = values.shape[1]
    for i in range(k):
        label = _component_label(name, i, k)
        vi = _on_view(view, inside, values[:, i])
        ei = None if exact is None else _on_view(view, inside, exact[:, i])
        title = _join(f"{label} (learnt)", f"error {error:.2g}" if error is not None else "")
        if not view.is_map:
            curves = [(vi, f"{label} (learnt)", {})]
            if ei is not None:
                curves.append((ei, f"{label}* (exact)", {"ls": "--", "color": "k"}))
            panels.append(_line(view, curves, label, title=title))
            continue
        limits = _limits(vi, ei)
        panels.append(_panel(view, vi, label, title=title, limits=limits))
        if ei is not None:
            panels.append(_panel(view, ei, f"{label}*", title=f"{label}* (exact)", limits=limits))
    return panels


def _space_slice(slice, problem, d: int) -> tuple[int, int]:
    if slice is None:
        return (0, 1)
    try:
        chosen = tuple(int(c) for c in (slice.split(",") if isinstance(slice, str) else slice))
    except (TypeError, ValueError):
        chosen = ()
    if len(chosen) != 2 or chosen[0] == chosen[1] or not all(0 <= c < d for c in chosen):
        raise ShapeError(
            f"--slice {slice}: the fields of {problem} have {d} space columns (0 … {d - 1}); "
            "give two different ones, e.g. 0,1."
        )
    return chosen


# --- the figure ----------------------------------------------------------------------------
def _headline(solution: Solution) -> str:
    """The method and the error: rel_l2 where measured, else the tracked metric."""
    metrics = solution.metrics
    parts = [solution.config.method]
    if solution.at_time is not None:
        parts[0] += f", u(t = {solution.at_time:g}, x)"
    name = "rel_l2" if "rel_l2" in metrics else _tracked(solution)
    if name in metrics and metrics[name] is not None and math.isfinite(metrics[name]):
        parts.append(f"{name} = {metrics[name]:.3g}")
    return " · ".join(parts)


def _figure(solution: Solution, panels: list[Panel], columns: int, note: str) -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    columns = max(1, min(columns, len(panels)))
    rows = -(-len(panels) // columns)
    size = (max(5.2, 4.6 * columns), 3.6 * rows + 0.8)
    fig = Figure(figsize=size, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, columns, squeeze=False)
    for panel, ax in zip(panels, axes.ravel(), strict=False):
        panel(fig, ax)
    for ax in axes.ravel()[len(panels) :]:
        ax.set_visible(False)
    chars = int(size[0] * 11)
    head = textwrap.fill(str(solution.problem), chars)
    fig.suptitle(f"{head}\n{textwrap.fill(_join(_headline(solution), note), chars)}", fontsize=10)
    return fig
