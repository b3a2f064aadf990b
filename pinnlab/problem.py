"""Problems and the forms they offer.

A problem is an immutable definition: a frozen dataclass whose fields are its parameters
(``dim``, coefficients, seeds). It holds no sampled data. It offers *forms*, one method each,
and a solver states the form it needs:

| form | method | what it returns |
|---|---|---|
| strong | ``strong_form()`` | ``StrongForm``: residual(s) + conditions (PINN) |
| energy | ``energy_form()`` | ``EnergyForm``: an energy whose minimiser solves it |
| stochastic | ``stochastic_form()`` | drift, diffusion, terminal value, nonlinearity |
| hamiltonian | ``hamiltonian_form()`` | a potential V for H = −½Δ + V |

A problem also offers its truth where one exists: ``exact(x)`` (closed form) or a reference.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import pydantic
import torch
from torch import Tensor

from .domains import Domain, Named, Part, SpaceTime, part_of
from .errors import FormError, ParameterError, did_you_mean

#: form name -> the method a problem defines to offer it.
FORMS: Mapping[str, str] = {
    "strong": "strong_form",
    "energy": "energy_form",
    "stochastic": "stochastic_form",
    "hamiltonian": "hamiltonian_form",
}


def _part(condition, on) -> None:
    """Store ``on`` as a ``pinnlab.domains.Part`` (a name is turned into one)."""
    object.__setattr__(condition, "on", part_of(on))


def _output(condition) -> None:
    out = condition.output
    if out is not None and (isinstance(out, bool) or not isinstance(out, int) or out < 0):
        raise ParameterError(f"{type(condition).__name__}(output={out!r}): an output index ≥ 0.")


class _OnPart:
    """A condition on a part (``on``), for every output or one (``output``)."""

    def __post_init__(self):
        _part(self, self.on)
        _output(self)


@dataclass(frozen=True)
class Dirichlet(_OnPart):
    """u = value(x) on a part of the domain.

    ``on`` is a part (``pinnlab.parts``): "boundary" (the spatial boundary; lateral for
    space-time domains), "initial" (t = t0), "final" (t = t1), a face ``Box.face(axis,
    side)``, ``pl.where(predicate)`` or a union ``a | b``. ``value`` maps points (n, dim) to
    (n,) or (n, k); with ``output=j`` the condition holds for output j alone, value (n,).
    ``lift`` is an extension of the data into the domain, known without solving the problem,
    for hard-constraint transforms u = lift + φ·N (a function, or a constant such as 0.0 for
    zero data); leave it None when the only extension at hand is the exact solution itself (a
    transform would then start at the answer).
    """

    value: Callable[[Tensor], Tensor]
    on: Part | str = "boundary"
    lift: Callable[[Tensor], Tensor] | float | None = None
    output: int | None = None


@dataclass(frozen=True)
class Neumann(_OnPart):
    """∂u/∂n = flux(x) on a part of the boundary, n the outward unit normal.

    In a strong form (the PINN) it is a residual ∇u·n − flux; in an energy form it is the
    natural condition a ∂u/∂n = flux, which adds −∫ flux·u ds to the energy. ``output=j``:
    for output j alone."""

    flux: Callable[[Tensor], Tensor]
    on: Part | str = "boundary"
    output: int | None = None


@dataclass(frozen=True)
class Robin(_OnPart):
    """α u + β ∂u/∂n = value(x) on a part of the boundary (α, β numbers or functions of x)."""

    alpha: float | Callable[[Tensor], Tensor]
    beta: float | Callable[[Tensor], Tensor]
    value: Callable[[Tensor], Tensor]
    on: Part | str = "boundary"
    output: int | None = None


@dataclass(frozen=True)
class Condition:
    """A general condition residual(d) = 0 on a part: ``d`` is the same derivatives object a
    strong form's residual gets, at the part's points, with ``d.normal`` (the outward unit
    normals over the input columns) and ``d.normal_derivative`` (∇u·n). An initial velocity
    is ``pl.Condition(lambda d: d.partial("t") - v(d.x), on="initial")``. The residual may be
    (n,), (n, m) or a dict of named ones."""

    residual: Callable[[Any], Tensor | Mapping[str, Tensor]]
    on: Part | str = "boundary"

    def __post_init__(self):
        _part(self, self.on)


@dataclass(frozen=True)
class Periodic:
    """u is periodic in one spatial coordinate x_a with period high − low: u and its first
    ``derivatives`` derivatives in x_a agree at x_a = low and x_a = high, for every t and every
    other coordinate (``derivatives`` = 1: the value and ∂u/∂x_a, what a second-order equation
    needs).

    ``axis`` counts spatial coordinates from 0 (time is not one). A collocation solver imposes
    it softly (mean squared mismatch at points drawn on the two ends), or exactly with
    ``net.wrap.periodic.modes`` = K ≥ 1: the network then sees x_a only through cos(2πk(x_a − low)/P),
    sin(2πk(x_a − low)/P), k = 1 … K (P = high − low), and the soft terms are dropped.
    """

    low: float
    high: float
    axis: int = 0
    derivatives: int = 1
    on: Part | str = "boundary"

    def __post_init__(self):
        if part_of(self.on) != Named("boundary"):
            raise ParameterError(
                f"Periodic(on={self.on!r}): a periodic condition relates the two ends of "
                "its axis; it takes no other part."
            )
        _part(self, self.on)
        if not self.high > self.low:
            raise ParameterError(
                f"Periodic needs high > low, got low={self.low}, high={self.high}."
            )
        if self.axis < 0 or self.derivatives not in (0, 1):
            raise ParameterError(
                f"Periodic(axis={self.axis}, derivatives={self.derivatives}): axis must be ≥ 0 "
                "and derivatives 0 (value only) or 1 (value and first derivative)."
            )


#: Every condition kind a form may hold.
CONDITIONS = (Dirichlet, Neumann, Robin, Periodic, Condition)

#: Batch keys the solvers use themselves; a condition may not be named so.
RESERVED = ("residual", "probes", "interior")


def _check_conditions(conditions: Mapping[str, Any], domain) -> None:
    from .parts import check

    for name, c in conditions.items():
        if name in RESERVED or "/" in name:
            raise ParameterError(
                f"condition name '{name}' is reserved (solvers use it for their own batch "
                "entries) or holds a '/'; choose another name."
            )
        if not isinstance(c, CONDITIONS):
            raise ParameterError(
                f"condition '{name}' is a {type(c).__name__}; a condition is one of "
                f"{', '.join(k.__name__ for k in CONDITIONS)}."
            )
        check(domain, c.on, name)
        space = domain.space.dim if isinstance(domain, SpaceTime) else domain.dim
        if isinstance(c, Periodic) and c.axis >= space:
            raise ParameterError(
                f"condition '{name}': Periodic axis {c.axis} does not exist; the space has "
                f"{space} coordinate(s) (axes 0 … {space - 1})."
            )


@dataclass(frozen=True)
class StrongForm:
    """Residual form: find u with residual(u) = 0 in the domain and every condition on its part.

    ``residual`` takes a ``pinnlab.Derivatives`` and returns the residual at its points,
    (n,) or (n, k), or a dict of named residuals. ``outputs`` is the number of output channels.

    An inverse problem (docs/inverse.md) declares ``unknowns`` (``pinnlab.Unknown``,
    ``pinnlab.UnknownField``), which the residual reads as ``d.unknown(name)``, and the
    ``observations`` (``pinnlab.Observations``) that determine them; data given to a run
    (``--data``, ``solve(..., data=...)``) take the place of the declared observations.
    """

    domain: Domain
    residual: Callable[[Any], Tensor | Mapping[str, Tensor]]
    conditions: Mapping[str, Any] = field(default_factory=dict)
    outputs: int = 1
    unknowns: Sequence[Any] = ()
    observations: Sequence[Any] = ()

    def __post_init__(self):
        from .observations import Observations
        from .unknowns import check_unknowns

        _check_conditions(self.conditions, self.domain)
        object.__setattr__(self, "unknowns", check_unknowns(self.unknowns))
        observations = (
            (self.observations,)
            if isinstance(self.observations, Observations)
            else tuple(self.observations)
        )
        for o in observations:
            if not isinstance(o, Observations):
                raise ParameterError(
                    f"observations: each entry is a pl.Observations, got {type(o).__name__}."
                )
        object.__setattr__(self, "observations", observations)


@dataclass(frozen=True)
class EnergyForm:
    """Variational form: u minimises E[u] = ∫_Ω (½ a|∇u|² + ½ c u² − f u) dx − ∫_Γ_N g u ds
    + ∫_Γ_R (a/β)(½ α u² − r u) ds among functions with the Dirichlet data, the weak form of
    −∇·(a∇u) + c u = f in Ω, u = h on the Dirichlet part, a ∂u/∂n = g on the Neumann part and
    α u + β ∂u/∂n = r on the Robin part (both natural conditions).

    ``source`` is f; ``diffusion`` a and ``reaction`` c are numbers or functions of x;
    ``conditions`` maps names to ``Dirichlet``, ``Neumann`` or ``Robin`` conditions.

    With ``eigenvalue=True`` it is the form of the lowest eigenvalue instead: λ₀ of
    −∇·(a∇u) + c u = λ u with zero Dirichlet data is the minimum of the Rayleigh quotient
    R[u] = ∫ (a|∇u|² + c u²) dx / ∫ u² dx, attained at the ground state (f is unused; for
    H = −½Δ + V, a = ½ and c = V). ``exact_eigenvalue`` is λ₀ where it is known.
    """

    domain: Domain
    source: Callable[[Tensor], Tensor]
    diffusion: float | Callable[[Tensor], Tensor] = 1.0
    reaction: float | Callable[[Tensor], Tensor] = 0.0
    conditions: Mapping[str, Any] = field(default_factory=dict)
    outputs: int = 1
    eigenvalue: bool = False
    exact_eigenvalue: float | None = None

    def __post_init__(self):
        from .domains import SpaceTime

        if isinstance(self.domain, SpaceTime):
            raise ParameterError("an energy form is stationary: its domain cannot be SpaceTime.")
        _check_conditions(self.conditions, self.domain)


@dataclass(frozen=True)
class StochasticForm:
    """A semilinear parabolic PDE in backward time and its probabilistic representation.

        ∂ₜu + μ(t, x)·∇u + ½ tr(σσᵀ(t, x) ∇²u) − r u + f(t, x, u, σᵀ∇u) = 0  on [0, T) × R^d,
        u(T, x) = g(x).

    With dX = μ dt + σ dW, the process Y_t = u(t, X_t), Z_t = σᵀ∇u(t, X_t) solves the backward
    SDE dY = (r Y − f) dt + Zᵀ dW, Y_T = g(X_T) (nonlinear Feynman–Kac; Pardoux & Peng 1990).
    For f = 0 this is the Feynman–Kac formula u(t, x) = e^{−r(T−t)} E[g(X_T) | X_t = x].

    - ``drift(t, x)`` → μ, (n, d); ``diffusion(t, x)`` → σ, (d, m) constant or (n, d, m);
      t is a float (time stepping) or an (n,) tensor (the strong form's points).
    - ``terminal(x)`` → g, (n,); ``discount`` r; ``nonlinearity(t, x, y, z)`` → f, (n,), or None.
    - ``region``: the domain of interest of the starting points (where a solution is measured);
      ``x0``: the published evaluation point, if any.
    - ``transition(t, x, s, xi)`` → X_s given X_t = x exactly, where xi = (W_s − W_t)/√(s − t) is
      a standard normal (n, m): known laws are sampled without time stepping. ``mean(t, x, s)``
      → E[X_s | X_t = x] where known (a control variate). Both None when unknown.
    """

    dim: int
    horizon: float
    drift: Callable[[float, Tensor], Tensor]
    diffusion: Callable[[float, Tensor], Tensor]
    terminal: Callable[[Tensor], Tensor]
    region: Domain
    discount: float = 0.0
    nonlinearity: Callable[[float, Tensor, Tensor, Tensor], Tensor] | None = None
    noise_dim: int | None = None
    x0: tuple[float, ...] | None = None
    transition: Callable[[float, Tensor, float, Tensor], Tensor] | None = None
    mean: Callable[[float, Tensor, float], Tensor] | None = None

    def __post_init__(self):
        if self.region.dim != self.dim:
            raise ParameterError(
                f"StochasticForm: region has dimension {self.region.dim}, dim is {self.dim}."
            )
        if self.x0 is not None and len(self.x0) != self.dim:
            raise ParameterError(
                f"StochasticForm: x0 has {len(self.x0)} entries, dim is {self.dim}."
            )

    @property
    def noise(self) -> int:
        """m, the dimension of the Brownian motion."""
        return self.noise_dim or self.dim

    @property
    def linear(self) -> bool:
        """True when the PDE is linear (f = 0): Feynman–Kac regression applies."""
        return self.nonlinearity is None

    def sigma_dw(self, t: float, x: Tensor, dw: Tensor) -> Tensor:
        """σ(t, x) dw for increments dw of shape (n, m)."""
        sigma = self.diffusion(t, x)
        return dw @ sigma.T if sigma.dim() == 2 else torch.einsum("ndm,nm->nd", sigma, dw)

    def step(self, t: float, x: Tensor, s: float, xi: Tensor, exact: bool) -> Tensor:
        """X_s from X_t = x, xi = (W_s − W_t)/√(s − t): the exact law, or one Euler step."""
        if exact:
            return self.transition(t, x, s, xi)
        h = s - t
        return x + self.drift(t, x) * h + self.sigma_dw(t, x, xi * math.sqrt(h))

    def strong_form(self, domain: Domain, conditions: Mapping[str, Any] = ()) -> StrongForm:
        """The PDE on ``domain`` = [0, T] × space for collocation (PINN): the terminal condition
        on the final slice plus ``conditions`` (e.g. lateral data on a truncated space)."""
        from .domains import SpaceTime

        if not isinstance(domain, SpaceTime) or domain.space.dim != self.dim:
            raise ParameterError(f"the strong form needs a SpaceTime domain over R^{self.dim}.")

        def residual(d):
            t, x, u, grad = d.t, d.x, d.u, d.grad
            sigma = self.diffusion(t, x)
            r = d.dt + (self.drift(t, x) * grad).sum(dim=-1) + 0.5 * d.trace(sigma)
            r = r - self.discount * u
            if self.nonlinearity is not None:
                r = r + self.nonlinearity(t, x, u, _sigma_t_grad(sigma, grad))
            return r

        final = {"final": Dirichlet(lambda y: self.terminal(y[:, 1:]), on="final")}
        return StrongForm(
            domain=domain, residual=residual, conditions={**final, **dict(conditions)}
        )


@dataclass(frozen=True)
class HamiltonianForm:
    """A Hamiltonian H = −½Δ + V on R^d (``domain`` None) or on a box with hard walls
    (``domain`` a ``pinnlab.domains.Box``: ψ = 0 on its boundary); its ground state ψ₀
    minimises the Rayleigh quotient E[ψ] = ⟨ψ|H|ψ⟩ / ⟨ψ|ψ⟩ = E_{|ψ|²}[E_L], with the local
    energy E_L = Hψ/ψ = −½(Δ log|ψ| + |∇ log|ψ||²) + V (atomic units: ħ = m = 1, hartree).

    ``potential(x)`` → V, (n,), may be infinite at a singularity (e.g. a nucleus);
    ``ground_energy`` E₀ where it is known exactly; ``length`` the size of the ground state
    (walkers start from N(0, length²) on R^d).
    """

    dim: int
    potential: Callable[[Tensor], Tensor]
    domain: Domain | None = None
    ground_energy: float | None = None
    length: float = 1.0

    def __post_init__(self):
        from .domains import Box

        if self.domain is not None and not (isinstance(self.domain, Box) and self.domain.cube):
            raise ParameterError(
                "HamiltonianForm: hard walls are supported on a Box with one interval for every "
                f"axis, got {self.domain}."
            )
        if self.domain is not None and self.domain.dim != self.dim:
            raise ParameterError(
                f"HamiltonianForm: domain has dimension {self.domain.dim}, dim is {self.dim}."
            )
        if not self.length > 0:
            raise ParameterError(f"HamiltonianForm: length must be > 0, got {self.length}.")


def _sigma_t_grad(sigma: Tensor, grad: Tensor) -> Tensor:
    """σᵀ∇u for σ of shape (d, m) or (n, d, m) and ∇u of shape (n, d)."""
    return grad @ sigma if sigma.dim() == 2 else torch.einsum("ndm,nd->nm", sigma, grad)


@dataclass(frozen=True)
class Reference:
    """Reference values of a problem without a closed form: u(t, x_i) ≈ value_i ± stderr_i.

    ``stderr`` is the standard error of a Monte Carlo estimate (0 for a deterministic solve or
    a published figure without one); ``source`` says where the numbers come from.
    """

    t: float
    x: Tensor
    value: Tensor
    stderr: Tensor
    source: str


# --- the truth a problem may offer: one protocol each --------------------------------------
@typing.runtime_checkable
class ExactSolution(typing.Protocol):
    """A closed-form solution: ``exact(x)`` at points (n, D) (t in column 0 for space-time
    problems), (n,) or (n, k), differentiable by autograd (the H¹ metric uses its gradient)."""

    def exact(self, x: Tensor) -> Tensor: ...


@typing.runtime_checkable
class ReferenceSolution(typing.Protocol):
    """Reference values computed without a closed form (Monte Carlo, a fine classical solve),
    cited in the docstring: ``reference()`` returns a ``Reference`` (or None where the
    parameters have none)."""

    def reference(self) -> Reference | None: ...


@typing.runtime_checkable
class GroundState(typing.Protocol):
    """A known ground state: ``ground_state(x)`` = log|ψ₀(x)| at points (n, d); its energy is
    the Hamiltonian form's ``ground_energy``."""

    def ground_state(self, x: Tensor) -> Tensor: ...


def truth_of(cls: type) -> str:
    """What a problem class offers as its truth, from the methods it defines: "exact",
    "reference", "ground state" or "none"."""
    for protocol, name in (
        (ExactSolution, "exact"),
        (ReferenceSolution, "reference"),
        (GroundState, "ground state"),
    ):
        if issubclass(cls, protocol):
            return name
    return "none"


@dataclass(frozen=True)
class Problem:
    """Base class of every catalogue problem.

    Subclasses are frozen dataclasses with a class attribute ``id`` and the fields that are
    their parameters; ``check()`` validates parameters (raise through ``require``). A problem
    offers forms (``strong_form()``, …: ``FORMS``) and, where it knows one, its truth by
    defining a method of ``ExactSolution``, ``ReferenceSolution`` or
    ``GroundState``; ``truth`` is derived from which it defines.
    """

    id: ClassVar[str] = ""
    #: Human description of the supported dimensions, e.g. "d ≥ 1".
    dims: ClassVar[str] = "d ≥ 1"
    #: "exact", "reference", "ground state" or "none": derived (``truth_of``), never set.
    truth: ClassVar[str] = "none"
    #: Names of the metrics ``extra_metrics`` returns; the first is what a run's
    #: ``metric: auto`` tracks (before the generic choice).
    extra_metric_names: ClassVar[tuple[str, ...]] = ()
    #: How far (relative to the solution's scale) the truth may miss its own equation in
    #: float64: 1e-8 for a closed form; more for a truth computed numerically.
    truth_tolerance: ClassVar[float] = 1e-8

    dim: int = 2

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "truth" in vars(cls):
            raise TypeError(
                f"{cls.__name__}: 'truth' is derived from the methods a problem defines "
                "(exact, reference, ground_state); do not set it."
            )
        cls.truth = truth_of(cls)

    def extra_metrics(self, solution) -> dict[str, float]:
        """Metrics only this problem can measure of a ``solution`` (named in
        ``extra_metric_names``); none by default."""
        return {}

    def check_points(self, x: Tensor) -> None:
        """Raise a ParameterError when points x (n, d) of space lie where the solution is not
        defined (e.g. negative asset prices); any point by default."""

    def __post_init__(self):
        type(self).check_declaration()
        self.require(
            isinstance(self.dim, int) and self.dim >= 1,
            f"dim must be an integer ≥ 1, got {self.dim!r}",
        )
        self.check()

    def check(self) -> None:
        """Validate parameters beyond dim ≥ 1; override in subclasses."""

    def require(self, condition: bool, message: str) -> None:
        """Raise a ParameterError naming this problem when ``condition`` is false."""
        if not condition:
            raise ParameterError(f"{self.id}: {message} (supported dimensions: {self.dims}).")

    # --- introspection ---------------------------------------------------------------
    @classmethod
    def check_declaration(cls) -> None:
        """Refuse a subclass whose annotated parameters are not dataclass fields: one
        defined without ``@dataclass(frozen=True)``, whose new fields would otherwise be
        left out of its parameters without a word."""
        fields = {f.name for f in dataclasses.fields(cls)}
        for klass in cls.__mro__:
            if klass is Problem or not issubclass(klass, Problem):
                continue
            annotated = inspect.get_annotations(klass)
            missing = [
                name
                for name, hint in annotated.items()
                if name not in fields and "ClassVar" not in str(hint)
            ]
            if missing:
                raise ParameterError(
                    f"{klass.__name__} (id '{getattr(klass, 'id', '')}') declares "
                    f"{', '.join(missing)} but is not a dataclass: put @dataclass(frozen=True) "
                    "on the class, so that its fields become its parameters."
                )

    @classmethod
    def forms(cls) -> tuple[str, ...]:
        """Names of the forms this problem offers."""
        return tuple(name for name, method in FORMS.items() if hasattr(cls, method))

    @classmethod
    def parameters(cls) -> dict[str, Any]:
        """Parameter name -> default value."""
        cls.check_declaration()
        return {f.name: f.default for f in dataclasses.fields(cls) if f.init}

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> Problem:
        """Build from (possibly string-valued) parameters, validating names and types."""
        fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
        hints = typing.get_type_hints(cls)
        values = {}
        for name, value in params.items():
            if name not in fields:
                raise ParameterError(
                    f"{cls.id} has no parameter '{name}'.{did_you_mean(name, fields)} "
                    f"Parameters: {', '.join(f'{k}={v!r}' for k, v in cls.parameters().items())}."
                )
            try:
                values[name] = pydantic.TypeAdapter(hints[name]).validate_python(value)
            except pydantic.ValidationError as e:
                raise ParameterError(
                    f"{cls.id}: parameter '{name}' must be {hints[name]}, got {value!r} "
                    f"({e.errors()[0]['msg']})."
                ) from None
        return cls(**values)

    def params(self) -> dict[str, Any]:
        """This problem's parameter values."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.init}

    @property
    def exchangeable(self) -> bool:
        """True when the solution (and the domain of interest) is unchanged by any permutation
        of the space coordinates; a permutation-invariant network (``net.kind: deepsets``)
        needs it. Subclasses whose parameters keep the symmetry say so."""
        return False

    def domain(self) -> Domain:
        """Where the solution is sought and measured: the strong or energy form's domain (t
        in column 0 for a SpaceTime domain), else the stochastic form's region of starting
        points, else the Hamiltonian form's box. A problem whose solution lives elsewhere
        overrides this."""
        for form in ("strong_form", "energy_form"):
            if hasattr(self, form):
                return getattr(self, form)().domain
        if hasattr(self, "stochastic_form"):
            return self.stochastic_form().region
        if hasattr(self, "hamiltonian_form") and self.hamiltonian_form().domain is not None:
            return self.hamiltonian_form().domain
        raise FormError(
            f"{self.id} offers no form with a bounded domain ({', '.join(self.forms()) or 'no forms'})."
        )

    @property
    def time_dependent(self) -> bool:
        """True when points carry time in column 0 (the strong form's domain is SpaceTime)."""
        from .domains import SpaceTime

        return hasattr(self, "strong_form") and isinstance(self.strong_form().domain, SpaceTime)

    def __str__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params().items())
        return f"{self.id}({args})"
