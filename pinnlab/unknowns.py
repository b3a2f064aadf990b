"""Unknown coefficients of an equation, learnt together with its solution (inverse problems).

A strong form declares them (``pl.StrongForm(..., unknowns=[pl.Unknown("kappa", init=1.0,
positive=True)])``) and its residual reads them as ``d.unknown("kappa")``, a tensor that
carries gradients to the parameters that represent it:

- ``Unknown``, a number or a vector θ: θ = p (free), θ = exp(p) (``positive``: a log
  parametrisation, so that Adam's steps are relative and a viscosity of 3e-3 is reached as
  fast as a conductivity of 2), or θ = lo + (hi − lo)·σ(p) (``bounds``), p a trained
  parameter started where θ = ``init``;
- ``UnknownField``, a function κ(x) of the space coordinates: its own small tanh
  network N (inputs mapped from the domain's bounding box to [−1, 1]), κ = init + s·N(x), or
  κ = softplus(softplus⁻¹(init) + s·N(x)) (``positive``; s = ``scale``), with N's output layer started at zero
  so that κ starts at ``init``. ``d.field("kappa")`` gives its derivatives (``.grad``,
  ``.laplacian``) at the residual's points, for equations in divergence form.

``UnknownSet`` is the module that holds them for a run; ``WithUnknowns`` puts it
beside the solution's network, so that training, checkpoints and solution files carry the
unknowns with the weights (``unknowns.<name>`` in the state dict).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from .derivatives.jets import Jet, propagate
from .errors import ParameterError, unknown_name
from .networks.base import Network, has_readout, periodic_columns


@dataclass(frozen=True)
class Unknown:
    """An unknown number or vector of the equation, θ, read by the residual as
    ``d.unknown(name)`` (a 0-d tensor, or (m,) for a vector ``init``).

    ``positive``: θ = exp(p); ``bounds=(lo, hi)``: θ = lo + (hi − lo)·sigmoid(p), ``init``
    strictly inside; otherwise θ = p. ``exact`` is the true value where it is known (a
    synthetic benchmark): the metrics then report ``<name>_error``, |θ − θ*| / |θ*|.
    """

    name: str
    init: float | Sequence[float]
    positive: bool = False
    bounds: tuple[float, float] | None = None
    exact: float | Sequence[float] | None = None

    def __post_init__(self):
        _check_name(self)
        init = torch.as_tensor(self.init, dtype=torch.float64)
        if init.dim() > 1 or init.numel() == 0 or not torch.isfinite(init).all():
            raise ParameterError(
                f"Unknown '{self.name}': init must be a finite number or a non-empty list of "
                f"numbers, got {self.init!r}."
            )
        if self.exact is not None and torch.as_tensor(self.exact).shape != init.shape:
            raise ParameterError(
                f"Unknown '{self.name}': exact has shape {tuple(torch.as_tensor(self.exact).shape)}"
                f", init {tuple(init.shape)}; give one true value per entry."
            )
        if self.bounds is not None:
            lo, hi = self.bounds
            if not lo < hi or not ((init > lo) & (init < hi)).all():
                raise ParameterError(
                    f"Unknown '{self.name}': bounds {self.bounds} need lo < hi and init "
                    f"{self.init!r} strictly between them."
                )
            if self.positive and lo < 0:
                raise ParameterError(
                    f"Unknown '{self.name}': positive=True with bounds {self.bounds} that reach "
                    "below 0; give bounds with lo ≥ 0 alone."
                )
        elif self.positive and not (init > 0).all():
            raise ParameterError(
                f"Unknown '{self.name}': positive=True needs init > 0, got {self.init!r}."
            )

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(torch.as_tensor(self.init).shape)

    def raw_init(self) -> Tensor:
        """The parameter p at which θ = init."""
        init = torch.as_tensor(self.init, dtype=torch.float64)
        if self.bounds is not None:
            lo, hi = self.bounds
            return torch.logit((init - lo) / (hi - lo))
        return torch.log(init) if self.positive else init

    def value(self, raw: Tensor) -> Tensor:
        """θ from the parameter p."""
        if self.bounds is not None:
            lo, hi = self.bounds
            return lo + (hi - lo) * torch.sigmoid(raw)
        return torch.exp(raw) if self.positive else raw


@dataclass(frozen=True)
class UnknownField:
    """An unknown function κ(x) of the space coordinates with ``outputs`` components, read
    by the residual as ``d.unknown(name)`` ((n,), or (n, k)) and ``d.field(name)`` (its
    derivatives). Its own tanh network of ``width`` × ``depth``; κ = init + scale·N(x), or
    κ = softplus(softplus⁻¹(init) + scale·N(x)) with ``positive``: ``scale`` is the size of
    the field's variation where it is known (a source of order 20: 10), so that N works at
    the unit scale its initialisation has. ``exact(x)`` is the true field
    where it is known: the metrics then report ``<name>_error``, its relative L2 error on the
    problem's test points.
    """

    name: str
    outputs: int = 1
    positive: bool = False
    init: float = 1.0
    scale: float = 1.0
    width: int = 32
    depth: int = 2
    exact: Callable[[Tensor], Tensor] | None = None

    def __post_init__(self):
        _check_name(self)
        if self.outputs < 1 or self.width < 1 or self.depth < 1:
            raise ParameterError(
                f"UnknownField '{self.name}': outputs, width and depth must be ≥ 1."
            )
        if not (math.isfinite(self.scale) and self.scale > 0):
            raise ParameterError(
                f"UnknownField '{self.name}': scale must be a number > 0, got {self.scale!r}."
            )
        if self.positive and not self.init > 0:
            raise ParameterError(
                f"UnknownField '{self.name}': positive=True needs init > 0, got {self.init!r}."
            )


def _check_name(unknown) -> None:
    name = unknown.name
    if not isinstance(name, str) or not name.isidentifier():
        raise ParameterError(
            f"{type(unknown).__name__} name {name!r}: a Python identifier such as 'kappa'."
        )


def check_unknowns(unknowns: Sequence) -> tuple:
    """The declarations as a tuple, each an Unknown or UnknownField, with distinct names."""
    unknowns = tuple(unknowns)
    seen = set()
    for u in unknowns:
        if not isinstance(u, Unknown | UnknownField):
            raise ParameterError(
                f"unknowns: each entry is a pl.Unknown or pl.UnknownField, got {type(u).__name__}."
            )
        if u.name in seen:
            raise ParameterError(f"unknowns: the name '{u.name}' is declared twice.")
        seen.add(u.name)
    return unknowns


class FieldNetwork(nn.Module):
    """κ(x) = init + N(x), or softplus(softplus⁻¹(init) + N(x)): an ``UnknownField``'s
    network on the space coordinates (N's output layer zero at the start)."""

    def __init__(self, field: UnknownField, box: tuple[Tensor, Tensor], generator):
        from .networks import build_network

        super().__init__()
        self.field = field
        low, _ = box
        self.net = build_network(
            len(low),
            field.outputs,
            width=field.width,
            depth=field.depth,
            generator=generator,
            input_box=box,
        ).zero_output_()
        offset = math.log(math.expm1(field.init)) if field.positive else field.init
        self.register_buffer("offset", torch.tensor(float(offset)))

    def forward(self, x: Tensor) -> Tensor:
        z = self.offset + self.field.scale * self.net(x)
        return F.softplus(z) if self.field.positive else z

    def forward_jet(self, jet: Jet) -> Jet:
        z = propagate(self.net, jet) * self.field.scale + self.offset
        return propagate(F.softplus, z) if self.field.positive else z


class UnknownSet(nn.Module):
    """The trained representation of a form's unknowns: a parameter p per ``Unknown``
    (``scalars.<name>``), a ``FieldNetwork`` per ``UnknownField`` (``fields.<name>``).
    ``box`` is the space's bounding box (a field network's input map)."""

    def __init__(self, unknowns: Sequence, box: tuple[Tensor, Tensor], generator):
        super().__init__()
        self.declared = {u.name: u for u in check_unknowns(unknowns)}
        self.scalars = nn.ParameterDict(
            {
                u.name: nn.Parameter(u.raw_init().float())
                for u in self.declared.values()
                if isinstance(u, Unknown)
            }
        )
        self.fields = nn.ModuleDict(
            {
                u.name: FieldNetwork(u, box, generator)
                for u in self.declared.values()
                if isinstance(u, UnknownField)
            }
        )

    def declaration(self, name: str) -> Unknown | UnknownField:
        if name not in self.declared:
            raise unknown_name("unknown (the form's unknowns)", name, self.declared)
        return self.declared[name]

    def value(self, name: str) -> Tensor:
        """θ of the Unknown ``name``."""
        u = self.declaration(name)
        if not isinstance(u, Unknown):
            raise ParameterError(
                f"'{name}' is an UnknownField, a function of x: read it at points "
                "(d.unknown(name) in a residual, solution.unknown(name)(x))."
            )
        return u.value(self.scalars[name])

    def values(self) -> dict[str, Tensor]:
        """θ of every scalar or vector unknown, detached."""
        return {n: self.value(n).detach() for n in self.scalars}


class WithUnknowns(Network):
    """The solution's network with the form's unknowns beside it: u(x) = net(x) unchanged;
    ``unknowns`` is the ``UnknownSet`` trained with it. Every capability is the
    network's."""

    def __init__(self, net: nn.Module, unknowns: UnknownSet):
        super().__init__()
        self.net = net
        self.unknowns = unknowns

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)

    def forward_jet(self, jet: Jet) -> Jet:
        return propagate(self.net, jet)

    def has_readout(self) -> bool:
        return has_readout(self.net)

    def readout(self, x: Tensor) -> Tensor:
        return self.net.readout(x)

    def set_readout(self, weight: Tensor, bias: Tensor) -> None:
        self.net.set_readout(weight, bias)

    def periodic_columns(self) -> frozenset[int]:
        return periodic_columns(self.net)

    def zero_output_(self) -> WithUnknowns:
        self.net.zero_output_()
        return self


def unknowns_of(module: nn.Module) -> UnknownSet | None:
    """The ``UnknownSet`` inside ``module`` (at any depth of its wrappers), or None."""
    for m in module.modules():
        if isinstance(m, UnknownSet):
            return m
    return None
