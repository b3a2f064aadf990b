"""A pinnlab problem as a DeepXDE model (Lu, Meng, Mao & Karniadakis, SIAM Rev. 63 (2021)).

``to_deepxde`` turns the strong form of a catalogue problem into a compiled
``deepxde.Model`` without restating it: the PDE function handed to DeepXDE calls
``problem.strong_form().residual(d)`` with ``d`` a ``DeepXDEDerivatives`` over DeepXDE's
``(x, y)``, whose derivatives are DeepXDE's own (``deepxde.grad``, reverse mode):

    ∇u_c = jacobian(y, x, i=c),    ∂ₜu_c = jacobian(y, x, i=c, j=t),
    Δu_c = Σ_j hessian(y, x, component=c, i=j, j=j)         (one backward pass per j),
    tr(B Bᵀ ∇²u_c) = Σ_k b_kᵀ H b_k,  row j of H = jacobian(jacobian(y, x, i=c), x, i=j).

Geometry: ``Box`` → ``Interval`` (d = 1) or ``Hypercube``; ``Ball`` → ``Interval`` or
``Hypersphere``; ``SpaceTime`` → ``GeometryXTime``. Each Dirichlet condition becomes one
``DirichletBC`` (``IC`` for ``on="initial"``) per output component, its values from the
condition's own ``value`` function.

Same data, same start. The training points are pinnlab's own first batch (``PINN.batch`` with a
generator seeded by ``seed``: the batch ``pinnlab.run`` draws for that seed on that device),
handed to DeepXDE as anchors; each condition is given exactly its own points (its ``on_boundary``
tests membership, not DeepXDE's tolerance-based ``geometry.on_boundary``). The network is
``deepxde.nn.FNN`` holding pinnlab's initial weights for that seed (``build_network``).

Where DeepXDE differs from pinnlab by design:

* the PDE residual is evaluated on every training point, boundary points included, and its
  loss term averages over the interior *and* the boundary points (pinnlab: interior only);
* time is the last input column (pinnlab: column 0); this module permutes columns;
* a k-output condition is k losses, one per component, summed (pinnlab: one mean over all k).

Global state. Importing deepxde with the pytorch backend calls ``torch.set_default_device("cuda")``
when CUDA is available (``deepxde/backend/pytorch/tensor.py``): every later tensor of the
process, pinnlab's included, would land on the GPU, and every torch call would pass through a
TorchFunctionMode. ``import_deepxde`` restores the default device and dtype after the
import (and keeps DeepXDE's backend banner off stderr); ``DeepXDEModel`` runs DeepXDE's
calls inside a context that sets the default device to the model's device and restores it
afterwards. DeepXDE caches derivatives in module globals keyed by tensor: its ``Model`` clears
them after every loss; code that uses ``DeepXDEDerivatives`` directly calls
``deepxde.grad.clear()`` when done. ``deepxde.nn.FNN`` draws its initial weights from the
global torch generator: that draw happens inside ``torch.random.fork_rng`` and is overwritten.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from ..domains import Ball, Box, Domain, SpaceTime
from ..errors import FormError, PinnlabError, ShapeError, unknown_name
from ..networks import MLP, Activation, OutputAffine, build_network
from ..problem import Dirichlet, Problem
from ..solvers.pinn import PINN, PINNSettings

#: pinnlab activations DeepXDE knows by the same name (others are passed as callables).
_DEEPXDE_ACTIVATIONS = ("tanh", "sin", "gelu", "silu")


# --- import and global state -------------------------------------------------------------------
def _default_device() -> torch.device:
    return torch.empty(0).device


def _set_default_device(device: torch.device) -> None:
    """Set torch's default device; CPU means no device context at all (no TorchFunctionMode)."""
    torch.set_default_device(None if device.type == "cpu" else device)


@contextlib.contextmanager
def default_device(device: torch.device) -> Iterator[None]:
    """Make ``device`` torch's default device inside the block, then restore the previous one."""
    previous = _default_device()
    if previous == device or (previous.type == device.type == "cpu"):
        yield
        return
    _set_default_device(device)
    try:
        yield
    finally:
        _set_default_device(previous)


def import_deepxde():
    """The ``deepxde`` module, on the pytorch backend, leaving torch's defaults as they were.

    Raises ``PinnlabError`` when deepxde is not installed or was already imported with
    another backend.
    """
    if sys.modules.get("deepxde") is None:
        os.environ["DDE_BACKEND"] = "pytorch"
        device, dtype = _default_device(), torch.get_default_dtype()
        try:
            with contextlib.redirect_stderr(io.StringIO()):
                import deepxde  # noqa: F401
        except ImportError as e:
            raise PinnlabError(
                f"the DeepXDE bridge needs deepxde, which could not be imported ({e}): "
                "pip install deepxde (or pip install -e '.[dev]' in a pinnlab checkout)."
            ) from None
        finally:
            _set_default_device(device)
            torch.set_default_dtype(dtype)
    dde = sys.modules["deepxde"]
    if dde.backend.backend_name != "pytorch":
        raise PinnlabError(
            f"deepxde was imported with the '{dde.backend.backend_name}' backend; the DeepXDE "
            "bridge needs 'pytorch': set DDE_BACKEND=pytorch before anything imports deepxde."
        )
    return dde


# --- derivatives -------------------------------------------------------------------------------
class DeepXDEDerivatives:
    """pinnlab's ``pinnlab.Derivatives`` interface over DeepXDE's inputs and outputs.

    ``x`` is DeepXDE's input (n, D) with ``requires_grad``; time, if any, is its *last* column.
    ``y`` is the network output (n, k) computed from ``x``. Derivatives come from
    ``deepxde.grad`` (see the module docstring). Shapes follow pinnlab: scalar outputs give
    u (n,), grad (n, d), laplacian (n,); k outputs give u (n, k), grad (n, k, d), laplacian (n, k).
    """

    def __init__(self, x: Tensor, y: Tensor, *, time_dependent: bool = False):
        if x.dim() != 2 or y.dim() != 2 or len(x) != len(y):
            raise ShapeError(
                f"DeepXDEDerivatives needs x (n, D) and y (n, k), got {tuple(x.shape)} "
                f"and {tuple(y.shape)}."
            )
        self._grad = import_deepxde().grad
        self.inputs, self.outputs = x, y
        self._time = time_dependent
        self._d = x.shape[1] - int(time_dependent)  # space: columns 0 … d−1; time: column d

    @staticmethod
    def _squeeze(a: Tensor) -> Tensor:
        return a.squeeze(-1) if a.shape[-1] == 1 else a

    def _per_component(self, f: Callable[[int], Tensor]) -> Tensor:
        """f(c) of shape (n, 1) or (n, …) for each output c, joined along a component axis."""
        parts = [f(c) for c in range(self.outputs.shape[1])]
        return parts[0] if len(parts) == 1 else torch.stack(parts, dim=1)

    @property
    def points(self) -> Tensor:
        """The points in pinnlab's layout (t in column 0), (n, D)."""
        return torch.roll(self.inputs, 1, dims=1) if self._time else self.inputs

    @property
    def x(self) -> Tensor:
        """Spatial coordinates, (n, d)."""
        return self.inputs[:, : self._d]

    @property
    def t(self) -> Tensor:
        """Time, (n,)."""
        if not self._time:
            raise ShapeError("d.t is only defined for time-dependent problems.")
        return self.inputs[:, self._d]

    @property
    def u(self) -> Tensor:
        return self._squeeze(self.outputs)

    @property
    def grad(self) -> Tensor:
        """Spatial gradient ∇u: row c of DeepXDE's Jacobian, space columns."""
        return self._per_component(lambda c: self._grad.jacobian(self.outputs, self.inputs, i=c))[
            ..., : self._d
        ]

    @property
    def dt(self) -> Tensor:
        """∂u/∂t."""
        _ = self.t
        j = self._d
        dt = self._per_component(lambda c: self._grad.jacobian(self.outputs, self.inputs, i=c, j=j))
        return self._squeeze(dt.squeeze(-1) if dt.dim() == 3 else dt)

    @property
    def laplacian(self) -> Tensor:
        """Spatial Laplacian Δu = Σ_j ∂²u/∂x_j², from DeepXDE's Hessian diagonal."""

        def lap(c: int) -> Tensor:
            return sum(
                self._grad.hessian(self.outputs, self.inputs, component=c, i=j, j=j)
                for j in range(self._d)
            )

        out = self._per_component(lap)
        return self._squeeze(out.squeeze(-1) if out.dim() == 3 else out)

    def trace(self, factor: Tensor) -> Tensor:
        """tr(B Bᵀ ∇²u) = Σ_k b_kᵀ ∇²u b_k over the columns b_k of B, (d, m) or (n, d, m)."""
        d = self._d
        if factor.dim() not in (2, 3) or factor.shape[-2] != d:
            raise ShapeError(
                f"factor B must have shape (d, m) or (n, d, m) with d={d}, got {tuple(factor.shape)}."
            )
        spec = "im,nij,jm->n" if factor.dim() == 2 else "nim,nij,njm->n"
        jac = self._grad.jacobian

        def tr(c: int) -> Tensor:
            g = jac(self.outputs, self.inputs, i=c)
            hessian = torch.stack([jac(g, self.inputs, i=j)[:, :d] for j in range(d)], dim=1)
            return torch.einsum(spec, factor, hessian, factor)

        return self._per_component(tr)


# --- the model ---------------------------------------------------------------------------------
def _geometry(dde, domain: Domain):
    """The DeepXDE geometry of a pinnlab domain."""
    if isinstance(domain, SpaceTime):
        time = dde.geometry.TimeDomain(domain.t0, domain.t1)
        return dde.geometry.GeometryXTime(_geometry(dde, domain.space), time)
    if isinstance(domain, Box):
        if domain.dim == 1:
            return dde.geometry.Interval(domain.low, domain.high)
        return dde.geometry.Hypercube(list(domain.lows), list(domain.highs))
    if isinstance(domain, Ball):
        if domain.dim == 1:
            return dde.geometry.Interval(
                domain.center - domain.radius, domain.center + domain.radius
            )
        return dde.geometry.Hypersphere(list(domain.centers), domain.radius)
    raise unknown_name(
        "domain for the DeepXDE bridge", type(domain).__name__, ("Ball", "Box", "SpaceTime")
    )


def _to_deepxde_layout(points: Tensor, time_dependent: bool) -> Tensor:
    """pinnlab (t, x) → DeepXDE (x, t)."""
    return torch.roll(points, -1, dims=1) if time_dependent else points


def _condition_values(
    value: Callable[[Tensor], Tensor], component: int, time_dependent: bool, device: torch.device
) -> Callable[[np.ndarray], np.ndarray]:
    """DeepXDE's boundary function X (n, D) → (n, 1): component c of pinnlab's ``value``."""

    def values(X: np.ndarray) -> np.ndarray:
        p = torch.as_tensor(X, device=device)
        p = torch.roll(p, 1, dims=1) if time_dependent else p
        with torch.no_grad():
            v = value(p)
        return v.reshape(len(X), -1)[:, component : component + 1].cpu().numpy()

    return values


def _members(points: np.ndarray) -> Callable[[np.ndarray, bool], bool]:
    """DeepXDE ``on_boundary(x, on)`` that selects exactly the rows of ``points``."""
    rows = {row.tobytes() for row in points}
    return lambda x, _on: x.tobytes() in rows


@dataclass
class DeepXDEModel:
    """A compiled ``deepxde.Model`` for a pinnlab problem, with what is needed to train and compare it.

    Call it on points in pinnlab's layout (n, D) — t in column 0 for time-dependent problems —
    to get u: (n,) or (n, k). ``network`` returns the same function as a pinnlab
    ``pinnlab.networks.MLP``, to evaluate with pinnlab's metrics.
    """

    model: Any
    problem: Problem
    device: torch.device
    width: int
    depth: int
    activation: str
    output_affine: tuple[Tensor, Tensor] | None = None

    @property
    def time_dependent(self) -> bool:
        return self.problem.time_dependent

    @property
    def net(self) -> nn.Module:
        """DeepXDE's network, ``deepxde.nn.FNN`` (inputs in DeepXDE's layout)."""
        return self.model.net

    def context(self):
        """The block in which DeepXDE may run: torch's default device is the model's device."""
        return default_device(self.device)

    def train(self, steps: int) -> None:
        """``steps`` Adam steps with DeepXDE's own loop (``Model.train``), silently."""
        with self.context():
            self.model.train(iterations=steps, display_every=max(steps, 1), verbose=0)

    def step(self, n: int = 1) -> None:
        """n Adam steps: the body of DeepXDE's loop (``Model._train_step`` on its fixed points).

        The same work per step as ``train``, without the loss evaluations that
        ``Model.train`` adds at its start and end; meant for timing one step at a time.
        """
        state = self.model.train_state
        with self.context():
            if state.X_train is None:
                state.set_data_train(*self.model.data.train_next_batch())
            for _ in range(n):
                self.model._train_step(state.X_train, state.y_train, state.train_aux_vars)

    def __call__(self, points: Tensor) -> Tensor:
        """u at points (n, D) in pinnlab's layout: (n,) or (n, k), on the points' device."""
        p = next(self.net.parameters())
        x = _to_deepxde_layout(points.to(device=p.device, dtype=p.dtype), self.time_dependent)
        with self.context(), torch.no_grad():
            u = self.net(x)
        return DeepXDEDerivatives._squeeze(u).to(points.device)

    def network(self) -> nn.Module:
        """A pinnlab MLP holding a copy of the network's current weights (pinnlab's layout),
        wrapped in the same ``pinnlab.networks.OutputAffine`` when one was given."""
        form = self.problem.strong_form()
        mlp = MLP(
            form.domain.dim,
            form.outputs,
            self.width,
            self.depth,
            self.activation,
            generator=torch.Generator().manual_seed(0),
        )
        _copy_weights(
            self.net.linears, [*mlp.hidden, mlp.out], roll=1 if self.time_dependent else 0
        )
        net = mlp if self.output_affine is None else OutputAffine(mlp, *self.output_affine)
        return net.to(device=self.device, dtype=next(self.net.parameters()).dtype)


def _copy_weights(source, target, *, roll: int) -> None:
    """Copy Linear layers ``source`` → ``target``, rolling the first layer's input columns."""
    with torch.no_grad():
        for i, (a, b) in enumerate(zip(source, target, strict=True)):
            w = torch.roll(a.weight, roll, dims=1) if i == 0 and roll else a.weight
            b.weight.copy_(w)
            b.bias.copy_(a.bias)


def to_deepxde(
    problem: Problem,
    *,
    n_interior: int = 1024,
    n_boundary: int = 256,
    width: int = 128,
    depth: int = 4,
    activation: str = "tanh",
    lr: float = 1e-3,
    seed: int = 0,
    device: str | torch.device = "cpu",
    points: Mapping[str, Tensor] | None = None,
    output_affine: tuple[Tensor, Tensor] | None = None,
) -> DeepXDEModel:
    """A compiled DeepXDE model (Adam, ``lr``) of ``problem``'s strong form.

    The training points are ``points`` (a pinnlab PINN batch: ``"residual"`` (n, D) and one
    entry per condition name) or, by default, pinnlab's own batch of ``n_interior`` interior
    and ``n_boundary`` points per condition drawn with ``torch.Generator(device)`` seeded by
    ``seed``. The network is ``depth`` hidden layers of ``width`` units, ``activation``, with
    pinnlab's initial weights for ``seed``. ``output_affine`` = (shift, scale) makes the output
    shift + scale · N(x), as pinnlab's PINN does with the mean and standard deviation of the
    Dirichlet data (``PINN.data_scale()``). The model is float32, DeepXDE's default.
    """
    dde = import_deepxde()
    device = torch.device(device)
    if not hasattr(problem, "strong_form"):
        raise FormError(
            f"the DeepXDE bridge needs the strong form (strong_form()), which {problem.id} does "
            f"not offer; it offers {', '.join(problem.forms()) or 'none'}."
        )
    form = problem.strong_form()
    time_dependent = isinstance(form.domain, SpaceTime)
    geometry = _geometry(dde, form.domain)
    for name, c in form.conditions.items():
        if not isinstance(c, Dirichlet):
            raise unknown_name(
                f"condition type (condition '{name}')", type(c).__name__, ["Dirichlet"]
            )

    if points is None:
        settings = PINNSettings(n_interior=n_interior, n_boundary=n_boundary)
        generator = torch.Generator(device).manual_seed(seed)
        points = PINN(problem, settings, dtype=torch.float32).points(generator)
    missing = {"residual", *form.conditions} - set(points)
    if missing:
        raise ShapeError(
            f"points for {problem.id} need the keys 'residual' and {', '.join(map(repr, form.conditions))}; "
            f"missing: {', '.join(sorted(missing))}."
        )

    def layout(p: Tensor) -> np.ndarray:
        return _to_deepxde_layout(p.detach(), time_dependent).cpu().numpy().astype(np.float32)

    def pde(x: Tensor, y: Tensor) -> list[Tensor]:
        r = form.residual(DeepXDEDerivatives(x, y, time_dependent=time_dependent))
        terms = list(r.values()) if isinstance(r, Mapping) else [r]
        return [term.reshape(len(x), -1) for term in terms]

    anchors, conditions = [], []
    for name, c in form.conditions.items():
        where = layout(points[name])
        anchors.append(where)
        kind = dde.icbc.IC if c.on == "initial" else dde.icbc.DirichletBC
        # A condition on one output (output=j) has (n,) values for that component alone.
        components = range(form.outputs) if c.output is None else [c.output]
        for k in components:
            column = k if c.output is None else 0
            values = _condition_values(c.value, column, time_dependent, device)
            conditions.append(kind(geometry, values, _members(where), component=k))
    anchors.append(layout(points["residual"]))
    data_kind = dde.data.TimePDE if time_dependent else dde.data.PDE
    extra = {"num_initial": 0} if time_dependent else {}
    data = data_kind(geometry, pde, conditions, 0, 0, anchors=np.vstack(anchors), **extra)

    init = build_network(
        form.domain.dim,
        form.outputs,
        width=width,
        depth=depth,
        activation=activation,
        generator=torch.Generator().manual_seed(seed),
    )
    layers = [form.domain.dim] + [width] * depth + [form.outputs]
    act = activation if activation in _DEEPXDE_ACTIVATIONS else Activation(activation)
    forked = [device.index or 0] if device.type == "cuda" else []
    with default_device(device), torch.random.fork_rng(devices=forked):
        net = dde.nn.FNN(layers, act, "Glorot normal")
        _copy_weights([*init.hidden, init.out], net.linears, roll=-1 if time_dependent else 0)
        if output_affine is not None:
            shift, scale = (v.to(device) for v in output_affine)
            net.apply_output_transform(lambda x, y: shift + scale * y)
        model = dde.Model(data, net)
        model.compile("adam", lr=lr, verbose=0)
    return DeepXDEModel(model, problem, device, width, depth, activation, output_affine)
