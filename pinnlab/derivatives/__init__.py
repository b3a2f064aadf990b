"""The derivative engine: u, ∇u, ∂ₜu, Δu, tr(B Bᵀ ∇²u) and any partial derivative
(``d.partial(0, 1)``, ``d.jacobian``, ``d.hessian``) of a network at a batch of points.

Residuals read like mathematics (``-d.laplacian - f(d.x)``); the method is a setting:

| method | what it computes |
|---|---|
| ``auto`` | ``reduced`` where the first-layer reduction applies, else ``forward`` up to d = ``AUTO_FORWARD_MAX_DIM``, else ``hutchinson`` (see docs/derivatives.md) |
| ``reduced`` | exact: forward mode after the first-layer reduction (min(d, width) directions) |
| ``forward`` | exact: forward-mode jets along all d axes (Li et al. 2024) |
| ``reverse`` | exact: the reverse-mode reference (one backward pass per axis, like DeepXDE) |
| ``hutchinson`` | stochastic, unbiased: k Rademacher probes (``hutchinson-gauss``: Gaussian) |
| ``sdgd`` | stochastic, unbiased: k random axes rescaled by d/k (Hu et al. 2024) |

Beside ``Derivatives``, ``gradient`` gives any row-wise callable's value and
Jacobian by reverse mode (a closed-form solution, a residual, a network whose gradient is used
as data), and ``partial_derivative`` one ∂u/∂x_a by a forward-mode jet along e_a alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor
from torch.nn import functional as F

from ..errors import ConfigError, ShapeError, unknown_name
from .exact import ForwardMode, JetResult, ReducedMode, ReverseMode, gradient, reducible
from .jets import Jet, propagate
from .partials import MAX_ORDER, Partials
from .stochastic import SDGD, Hutchinson, estimator_variance

__all__ = [
    "AUTO_FORWARD_MAX_DIM",
    "EXACT_METHODS",
    "METHODS",
    "STOCHASTIC_METHODS",
    "Derivatives",
    "Jet",
    "choose_method",
    "get_method",
    "gradient",
    "method_for",
    "partial_derivative",
    "propagate",
]

EXACT_METHODS = {"reduced": ReducedMode, "forward": ForwardMode, "reverse": ReverseMode}
STOCHASTIC_METHODS = {
    "hutchinson": Hutchinson,
    "hutchinson-gauss": lambda probes=16: Hutchinson(probes, gaussian=True),
    "sdgd": SDGD,
}
#: Every method name a setting accepts.
METHODS = ("auto", *EXACT_METHODS, *STOCHASTIC_METHODS)

#: Above this input dimension, ``auto`` leaves exact forward mode (d directions) for a
#: stochastic estimator when the first-layer reduction does not apply. From the benchmark in
#: docs/benchmarks.md: at d = 1,000 a forward-mode step already holds n·d·width numbers per
#: layer (0.5 GB at n = 1024, width 128).
AUTO_FORWARD_MAX_DIM = 1000
#: Up to this many input columns, the first ``d.partial`` request computes the engine's jet
#: along every column, which holds all first partials: at (t, x) one jet serves uₜ, uₓ and uₓₓ
#: (Burgers: 24 ms a step against 39 ms with a jet per request, benchmarks/operators.py).
FULL_JET_MAX_COLUMNS = 8


def get_method(name: str, *, probes: int = 16):
    """The method called ``name`` (``auto`` is resolved per network by ``choose_method``)."""
    if name in EXACT_METHODS:
        return EXACT_METHODS[name]()
    if name in STOCHASTIC_METHODS:
        return STOCHASTIC_METHODS[name](probes)
    if name == "auto":
        raise ConfigError("'auto' depends on the network: resolve it with choose_method().")
    raise unknown_name("derivative method", name, METHODS)


def choose_method(
    name: str, net, in_dim: int, *, probes: int = 16, dtype=None, device=None, exact=False
):
    """Resolve ``name`` for ``net`` on inputs of ``in_dim`` columns: ``auto`` is ``reduced``
    where the first-layer reduction applies, else ``forward`` up to ``AUTO_FORWARD_MAX_DIM``
    columns (at any size with ``exact``), else ``hutchinson``."""
    if name != "auto":
        return get_method(name, probes=probes)
    dtype = dtype or torch.get_default_dtype()
    if reducible(net, in_dim, dtype=dtype, device=device):
        return ReducedMode()
    if exact or in_dim <= AUTO_FORWARD_MAX_DIM:
        return ForwardMode()
    return Hutchinson(probes)


def method_for(module, name: str, in_dim: int, *, probes: int = 16, exact: bool = False):
    """``choose_method`` for ``module`` as it is (its parameters' dtype and device): the
    one place a solver resolves its derivative method."""
    param = next(module.parameters(), None)
    return choose_method(
        name,
        module,
        in_dim,
        probes=probes,
        dtype=param.dtype if param is not None else None,
        device=param.device if param is not None else None,
        exact=exact,
    )


def partial_derivative(net, points: Tensor, column: int) -> tuple[Tensor, Tensor]:
    """u and ∂u/∂x_a at ``points`` (n, D), a = ``column`` (an input column, t included).

    The first-order jet along the one direction e_a by forward mode: J = ∇u·e_a, exact, at the
    cost of one direction instead of D, for every network (plain callables through torch.func;
    the first-layer reduction has nothing to reduce at order 1). Returns u and ∂u/∂x_a, both
    (n, k) for a network with k outputs, with their graphs to the parameters and to x.
    """
    direction = torch.zeros(1, points.shape[1], dtype=points.dtype, device=points.device)
    direction[0, column] = 1.0
    jet = ForwardMode().jet(net, points, direction, None, 1)
    return jet.value, jet.jac()[:, 0]


class Derivatives:
    """Lazy derivatives of ``net`` at ``points``, computed on first use by ``method``.

    ``method`` is a name (see ``METHODS``) or a method object. For a space-time problem
    (``time_dependent=True``) column 0 of the points is t: ``d.t``, ``d.dt``; ``d.x``,
    ``d.grad`` and ``d.laplacian`` are spatial. Scalar outputs give u (n,), grad (n, d),
    laplacian (n,); k outputs give u (n, k), grad (n, k, d), laplacian (n, k).
    Stochastic methods estimate the second-order terms from ``probes`` (drawn by the solver's
    batch) or, if none are given, from fresh ones drawn with ``generator``; first derivatives
    stay exact (one reverse pass).
    """

    def __init__(
        self,
        net,
        points: Tensor,
        *,
        method="auto",
        time_dependent: bool = False,
        probes: Tensor | None = None,
        generator: torch.Generator | None = None,
        normals: Tensor | None = None,
        unknowns: Mapping[str, Any] | None = None,
    ):
        if points.dim() != 2:
            raise ShapeError(f"points must have shape (n, dim), got {tuple(points.shape)}.")
        self.net = net
        self.points = points
        self._t = 1 if time_dependent else 0
        if isinstance(method, str):
            method = choose_method(
                method, net, points.shape[1], dtype=points.dtype, device=points.device
            )
        self.method = method
        self._exact: JetResult | None = None
        self._exact_order = -1
        self._first: JetResult | None = None
        self._partials: Partials | None = None
        self._seeded = False
        self.normals = normals
        self._normal_derivative: Tensor | None = None
        self._fields: dict[str, Derivatives] = {}
        self._given = unknowns
        #: The names of the unknowns read so far (``unknown``, ``field``).
        self.read_unknowns: set[str] = set()
        self.probes = probes
        if method.stochastic and probes is None:
            if generator is None:
                raise ConfigError(
                    f"method '{method.name}' is stochastic: pass probes= (as drawn by the "
                    "solver's batch) or generator= to draw fresh ones."
                )
            self.probes = method.draw(self.dim, generator, points.dtype)

    @property
    def dim(self) -> int:
        """Spatial dimension d."""
        return self.points.shape[1] - self._t

    @property
    def x(self) -> Tensor:
        """Spatial coordinates, (n, d)."""
        return self.points[:, self._t :]

    @property
    def t(self) -> Tensor:
        """Time, (n,)."""
        if not self._t:
            raise ShapeError("d.t is only defined for time-dependent problems.")
        return self.points[:, 0]

    def _jet(self, order: int) -> JetResult:
        """The exact jet along all input axes (weight 0 on t), at least to ``order``."""
        order = max(order, self.method.min_order)
        if self._exact is None or self._exact_order < order:
            weights = None
            if self._t:
                weights = torch.ones_like(self.points[0])
                weights[0] = 0.0
            self._exact = self.method.jet(self.net, self.points, None, weights, order, self._t)
            self._exact_order = order
        return self._exact

    def _first_order(self) -> JetResult:
        if not self.method.stochastic:
            return self._jet(1)
        if self._first is None or self._first.reduced_jac is None:
            self._first = ReverseMode().jet(self.net, self.points, None, None, 1)
        return self._first

    @staticmethod
    def _squeeze(a: Tensor) -> Tensor:
        return a.squeeze(-1) if a.shape[-1] == 1 else a

    @property
    def u(self) -> Tensor:
        if not self.method.stochastic:
            return self._squeeze(self._jet(0).value)
        if self._first is None:
            self._first = JetResult(self.net(self.points), None, None)
        return self._squeeze(self._first.value)

    @property
    def grad(self) -> Tensor:
        """Spatial gradient ∇u."""
        jac = self._first_order().jac(slice(self._t, None))  # (n, d, k)
        return jac[..., 0] if jac.shape[-1] == 1 else jac.transpose(1, 2)

    @property
    def dt(self) -> Tensor:
        """∂u/∂t."""
        _ = self.t
        return self._squeeze(self._first_order().jac(slice(0, 1))[:, 0, :])

    @property
    def laplacian(self) -> Tensor:
        """Spatial Laplacian Δu (an unbiased estimate for a stochastic method)."""
        if self.method.stochastic:
            return self._estimate(self.probes, None)
        return self._squeeze(self._jet(2).lap)

    def trace(self, factor: Tensor) -> Tensor:
        """tr(B Bᵀ ∇²u) = Σ_k b_kᵀ ∇²u b_k over the columns b_k of B.

        ``factor`` is B, of shape (d, m) (constant) or (n, d, m) (point-dependent).
        """
        d = self.dim
        if factor.dim() not in (2, 3) or factor.shape[-2] != d:
            raise ShapeError(
                f"factor B must have shape (d, m) or (n, d, m) with d={d}, got {tuple(factor.shape)}."
            )
        if self.method.stochastic:
            return self._estimate(self.probes, factor)
        v = factor.transpose(-1, -2)  # (m, d) or (n, m, d)
        if self._t:
            v = F.pad(v, (1, 0))  # no component along t
        return self._squeeze(self.method.jet(self.net, self.points, v, None, 2).lap)

    def _estimate_jet(self, probes: Tensor, factor: Tensor | None) -> JetResult:
        dtype = self.points.dtype
        v, w = self.method.directions(probes, dim=self.dim, dtype=dtype, factor=factor)
        if self._t:
            v = F.pad(v, (1, 0))
        jet = ForwardMode().jet(self.net, self.points, v, w, 2)
        if self._first is None:  # u for free; its first derivatives are along the probes only
            self._first = JetResult(jet.value, None, None)
        return jet

    def _estimate(self, probes: Tensor, factor: Tensor | None) -> Tensor:
        return self._squeeze(self._estimate_jet(probes, factor).lap)

    # --- any partial derivative ---------------------------------------------------------
    def _column(self, axis: int | str) -> int:
        """The input column of ``axis``: an integer counts spatial coordinates from 0, "t" is
        time (column 0 of a space-time problem's points)."""
        if axis == "t":
            if not self._t:
                raise ShapeError("axis 't' is only defined for time-dependent problems.")
            return 0
        if isinstance(axis, bool) or not isinstance(axis, int):
            raise ShapeError(f"an axis is a spatial index 0 … {self.dim - 1} or 't', got {axis!r}.")
        if not 0 <= axis < self.dim:
            raise ShapeError(
                f"axis {axis} does not exist: this problem has {self.dim} spatial dimension"
                f"{'s' if self.dim != 1 else ''} (axes 0 … {self.dim - 1}"
                f"{' and t' if self._t else ''})."
            )
        return axis + self._t

    def partial(self, *axes: int | str, output: int | None = None) -> Tensor:
        """∂ᵏu/∂x_{a₁}⋯∂x_{aₖ} along the given axes (k ≤ 4): ``d.partial(0)`` = ∂u/∂x₀,
        ``d.partial(0, 0)`` = ∂²u/∂x₀², ``d.partial("t")`` = ∂u/∂t, ``d.partial(0, 1)``.

        Integers count spatial coordinates from 0 and "t" is time, whatever the column layout.
        Shape (n,) for one output, (n, k) for k; ``output=j`` picks output j, (n,). Exact for
        every method (see ``pinnlab.derivatives.partials``); repeated requests are cached,
        and first derivatives the engine has already computed are reused.
        """
        if not axes:
            raise ShapeError("d.partial needs at least one axis (the value itself is d.u).")
        if len(axes) > MAX_ORDER:
            raise ShapeError(
                f"d.partial{axes}: derivatives up to order {MAX_ORDER} are offered, got order "
                f"{len(axes)}."
            )
        columns = tuple(self._column(a) for a in axes)
        if not self.method.stochastic and self.points.shape[1] <= FULL_JET_MAX_COLUMNS:
            # One jet along every column gives all first partials (and, with one spatial
            # coordinate, ∂²u/∂x² as its Laplacian): cheaper than a jet per request.
            self._jet(2)
        partials = self._partial_cache()
        value = self._diagonal_from_laplacian(partials, columns)
        if value is None:
            value = partials(columns)
        k = value.shape[1]
        if output is None:
            return self._squeeze(value)
        if isinstance(output, bool) or not isinstance(output, int) or not 0 <= output < k:
            raise ShapeError(f"output={output!r}: the network has outputs 0 … {k - 1}.")
        return value[:, output]

    def _diagonal_from_laplacian(self, partials: Partials, columns: tuple[int, ...]):
        """∂²u/∂x_a² of a spatial axis a from the engine's Laplacian where that saves jets: in
        one spatial dimension it *is* the Laplacian; in two, the second diagonal is Δu minus the
        first (Navier–Stokes' uₓₓ and u_yy: two jets instead of three). None otherwise."""
        if (
            self.method.stochastic
            or self.points.shape[1] > FULL_JET_MAX_COLUMNS
            or self.dim > 2
            or len(columns) != 2
            or columns[0] != columns[1]
            or columns[0] < self._t
        ):
            return None
        lap = self._jet(2).lap
        if self.dim == 2:
            other = (2 * self._t + 1 - columns[0],) * 2  # the other spatial column's diagonal
            if other not in partials:
                return None
            lap = lap - partials(other)
        partials.seed(columns, lap)
        return partials(columns)

    def _partial_cache(self) -> Partials:
        if self._partials is None:
            self._partials = Partials(self.net, self.points)
        known = self._exact if self._exact is not None else self._first
        if known is not None and known.reduced_jac is not None and not self._seeded:
            jac = known.jac()  # (n, D, k): the engine's first derivatives, along every column
            for c in range(jac.shape[1]):
                self._partials.seed((c,), jac[:, c])
            self._seeded = True
        return self._partials

    @property
    def normal(self) -> Tensor:
        """The outward unit normals at the points (n, D) over every input column: given at a
        condition's points on a part of the boundary (``pinnlab.parts``)."""
        if self.normals is None:
            raise ShapeError(
                "d.normal is defined at the points of a condition on a part of the boundary; "
                "these points carry no normals."
            )
        return self.normals

    @property
    def normal_derivative(self) -> Tensor:
        """∂u/∂n = ∇u·n, by one forward jet along each point's own normal (one direction,
        whatever the dimension): (n,) or (n, k)."""
        if self._normal_derivative is None:
            jet = ForwardMode().jet(self.net, self.points, self.normal[:, None, :], None, 1)
            self._normal_derivative = self._squeeze(jet.jac()[:, 0])
        return self._normal_derivative

    # --- unknowns of an inverse problem -------------------------------------------------
    def _unknown_set(self, name: str):
        from ..unknowns import unknowns_of

        found = unknowns_of(self.net) if hasattr(self.net, "modules") else None
        if found is None:
            raise ShapeError(
                f"d.unknown('{name}'): the form declares no unknowns; declare it as "
                f"StrongForm(..., unknowns=[pl.Unknown('{name}', init=...)]) (or "
                "pl.UnknownField for a function of x)."
            )
        return found

    def _given_unknown(self, name: str):
        if name not in self._given:
            raise unknown_name("unknown (given to Derivatives)", name, self._given)
        self.read_unknowns.add(name)
        return self._given[name]

    def unknown(self, name: str) -> Tensor:
        """The unknown ``name`` of the form (docs/inverse.md), with its gradient to the
        parameters that represent it: θ (a 0-d tensor, or (m,)) for a ``pinnlab.Unknown``,
        κ at the points' space coordinates ((n,), or (n, k)) for a ``pinnlab.UnknownField``.
        Values given as ``unknowns={name: value or function of x}`` (a check of a truth)
        take the place of a network's."""
        if self._given is not None:
            value = self._given_unknown(name)
            if callable(value):
                return self.field(name).u
            return torch.as_tensor(value, dtype=self.points.dtype, device=self.points.device)
        unknowns = self._unknown_set(name)
        if name in unknowns.fields:
            return self.field(name).u
        value = unknowns.value(name)
        self.read_unknowns.add(name)
        return value

    def field(self, name: str) -> Derivatives:
        """The derivatives of the ``pinnlab.UnknownField`` ``name`` at the points' space
        coordinates (``.u``, ``.grad``, ``.laplacian``, ``.partial``): for an equation in
        divergence form, ∇·(κ∇u) = κ Δu + ∇κ·∇u."""
        if name not in self._fields and self._given is not None:
            fn = self._given_unknown(name)
            if not callable(fn):
                raise ShapeError(f"d.field('{name}'): the value given for '{name}' is a number.")
            self._fields[name] = Derivatives(fn, self.x, method="reverse")
        if name not in self._fields:
            unknowns = self._unknown_set(name)
            if name not in unknowns.fields:
                unknowns.declaration(name)  # an unknown name: the error lists the declared ones
                raise ShapeError(
                    f"d.field('{name}'): '{name}' is a number, not a field; read it with "
                    "d.unknown(name)."
                )
            self._fields[name] = Derivatives(unknowns.fields[name], self.x, method="forward")
            self.read_unknowns.add(name)
        return self._fields[name]

    @property
    def jacobian(self) -> Tensor:
        """∂u_i/∂x_j over every input column (t first for space-time): (n, k, D)."""
        return self._first_order().jac().transpose(1, 2)

    @property
    def hessian(self) -> Tensor:
        """∂²u_i/∂x_j∂x_l over every input column: (n, k, D, D), by forward-over-reverse
        torch.func per point (D + 1 passes; for moderate D)."""
        from torch.func import jacfwd, jacrev, vmap

        def single(y: Tensor) -> Tensor:
            return self.net(y[None]).reshape(-1)

        return vmap(jacfwd(jacrev(single)))(self.points)

    def variance(self, factor: Tensor | None = None) -> Tensor:
        """Per-point variance of the estimate of Δu (or of tr(B Bᵀ ∇²u)); 0 if exact."""
        if not self.method.stochastic:
            return torch.zeros_like(self.u)
        return estimator_variance(
            self.method, self.probes, lambda p: self._estimate(p, factor), self.dim
        )
