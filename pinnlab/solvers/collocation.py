"""What the PINN and deep Ritz solvers share: points in the domain and on each condition's part.

A collocation solver reads a form with a ``domain`` and named ``conditions``; each step it
draws interior points and points on every condition's part of the boundary, and turns
Dirichlet conditions into mean squared misfits (or imposes them exactly with ``net.hard_bc``)
and Periodic conditions into mean squared mismatches between the two ends (or imposes them
exactly with ``net.wrap.periodic``: a Fourier embedding of the periodic coordinate).
"""

from __future__ import annotations

from typing import ClassVar, Literal

import torch
from pydantic import Field
from torch import Tensor, nn

from .. import parts
from ..config import Section
from ..derivatives import partial_derivative
from ..domains import SpaceTime
from ..errors import ConfigError, ShapeError, unknown_name
from ..networks import DirichletTransform, OutputAffine, periodic_columns
from ..problem import Condition, Dirichlet, Neumann, Periodic, Robin
from ..residuals import Residuals, mean_square
from .base import Model, NetworkSpec, Solver, defined_solvers, location_scale

#: The suffix of a batch entry holding the outward normals of a condition's points.
NORMAL = "/normal"
#: Conditions that read the normal at their points.
NORMAL_CONDITIONS = (Neumann, Robin, Condition)


def _shaped(value: Tensor, like: Tensor, name: str, what: str) -> Tensor:
    """``value`` as ``like`` (n, k): (n,) or (n, k) values of a condition, else a clear error."""
    if not isinstance(value, Tensor) or value.numel() != like.numel() or len(value) != len(like):
        got = tuple(value.shape) if isinstance(value, Tensor) else type(value).__name__
        raise ShapeError(
            f"condition '{name}': its {what} at {len(like)} points must have shape "
            f"({len(like)},) or {tuple(like.shape)}, got {got}."
        )
    return value.reshape(like.shape)


class PointSettings(Section):
    n_interior: int = Field(1024, ge=1, description="interior points per batch")
    n_boundary: int = Field(256, ge=1, description="points per condition per batch")
    sampling: Literal["uniform", "sobol"] = "uniform"
    weights: dict[str, float] = Field(default_factory=dict, description="loss term -> weight")
    mean_weight: float = Field(
        1.0,
        gt=0,
        description="weight of the squared batch mean of the residual and of each Dirichlet "
        "misfit beside its batch variance (1: the mean square); 1/d balances errors that sum "
        "d terms (docs/high-dimension.md)",
    )
    normalize_output: bool = Field(
        True,
        description="u = mean + std · N with the mean and std of the Dirichlet data; with "
        "net.hard_bc, u = g + φ(c + N) with c the best constant (PINN)",
    )


class CollocationSolver(Solver):
    """Base of solvers that sample a form's domain and its conditions' parts."""

    #: The key of the interior points in a batch.
    interior = "interior"

    hard_bc = True
    #: The kinds of condition the solver's loss imposes; a form with another is refused.
    imposes: ClassVar[tuple[type, ...]] = (Dirichlet, Periodic)

    def __init__(self, problem, settings: PointSettings, *, dtype, spec, hard_bc=False):
        super().__init__(problem, settings, dtype=dtype, hard_bc=hard_bc)
        self.spec = spec
        self.time_dependent = isinstance(spec.domain, SpaceTime)
        space = spec.domain.space if self.time_dependent else spec.domain
        if space.dim != problem.dim:
            raise ConfigError(
                f"{problem.id}: the domain of its form has {space.dim} space dimension(s), "
                f"the problem's dim is {problem.dim}: give the class the field "
                f"`dim: int = {space.dim}` (or build the domain from self.dim)."
            )
        for name, c in spec.conditions.items():
            if not isinstance(c, self.imposes):
                self.refuse(name, c)
        if hard_bc:
            self._hard_condition()  # fails at once when the data have no lift

    def refuse(self, name: str, condition, how: str = "") -> None:
        """A condition this solver cannot impose is an error, never a term left out."""
        kind = type(condition)
        fit = sorted(
            {
                s.name
                for s in defined_solvers()
                if issubclass(s, CollocationSolver) and issubclass(kind, s.imposes)
            }
        )
        raise ConfigError(
            f"{self.problem.id}: condition '{name}' ({kind.__name__}) is not imposed by method "
            f"'{self.name}', which imposes {', '.join(k.__name__ for k in self.imposes)}"
            f"{how}; methods that impose it: {', '.join(fit) or 'none yet'}."
        )

    def network(self) -> NetworkSpec:
        t = int(self.time_dependent)
        periodic = tuple((c.axis + t, c.low, c.high) for c in self.periodic().values())
        return NetworkSpec(self.spec.domain, outputs=self.spec.outputs, periodic=periodic)

    @property
    def outputs(self) -> int:
        return self.spec.outputs

    def _hard_condition(self) -> Dirichlet:
        """The one Dirichlet condition on the whole boundary that ``net.hard_bc`` imposes."""
        conditions = [
            c for c in self.dirichlet().values() if c.on == "boundary" and c.output is None
        ]
        if not conditions:
            held = ", ".join(f"'{k}' on {c.on}" for k, c in self.spec.conditions.items())
            raise ConfigError(
                f"net.hard_bc imposes one Dirichlet condition on the whole boundary, for every "
                f"output; {self.problem.id} has {held or 'no conditions'}. Set net.hard_bc=false."
            )
        if len(conditions) != 1 or conditions[0].lift is None:
            raise ConfigError(
                f"net.hard_bc: {self.problem.id} provides no lift of its boundary data "
                "(an extension that is not the exact solution itself); set net.hard_bc=false."
            )
        return conditions[0]

    def setup(self, net: nn.Module, generator: torch.Generator) -> Model:
        """u = mean + std · N (``normalize_output``), or u = g + φ·N with the data imposed
        exactly (``net.hard_bc``)."""
        if not self.hard:
            if not self.settings.normalize_output:
                return self.bind(net)
            return self.bind(OutputAffine(net, *self.data_scale()))
        model = DirichletTransform(net, self.spec.domain, self._hard_condition().lift)
        if self.settings.normalize_output:
            with torch.no_grad():
                model.shift = self.transform_shift(model).reshape(-1).to(model.shift)
        return self.bind(model)

    def bind(self, module: nn.Module) -> Model:
        return Model(module, imposed=self.imposed(module))

    def imposed(self, module: nn.Module) -> frozenset[str]:
        """The conditions ``module`` satisfies by construction: the Dirichlet data on the
        boundary under ``net.hard_bc``, a Periodic condition under an exact embedding."""
        periodic = periodic_columns(module)
        return frozenset(
            name
            for name, c in self.spec.conditions.items()
            if (self.hard and isinstance(c, Dirichlet) and c.on == "boundary")
            or (isinstance(c, Periodic) and c.axis + int(self.time_dependent) in periodic)
        )

    def transform_shift(self, model: DirichletTransform) -> Tensor:
        """The constant c that N starts from in u = g + φ(c + N) (``normalize_output``): none
        here; solvers that can measure how well a constant fits override this."""
        return model.shift

    def periodic(self) -> dict[str, Periodic]:
        return {k: c for k, c in self.spec.conditions.items() if isinstance(c, Periodic)}

    def dirichlet(self) -> dict[str, Dirichlet]:
        return {k: c for k, c in self.spec.conditions.items() if isinstance(c, Dirichlet)}

    def data_scale(self) -> tuple[Tensor, Tensor]:
        """Mean and standard deviation per output of the Dirichlet data (0 and 1 where an
        output has none).

        Drawn from a fixed seed on the CPU: only the data the problem states is used.
        """
        generator = torch.Generator().manual_seed(0)
        k = getattr(self.spec, "outputs", 1)
        values, per_output = [], {j: [] for j in range(k)}
        for c in self.dirichlet().values():
            y = self.condition_points(c, 4096, generator=generator, dtype=torch.float64)
            v = c.value(y).reshape(len(y), -1)
            if c.output is None:
                values.append(v)
            else:
                per_output[c.output].append(v[:, 0])
        if not any(per_output.values()):  # every condition holds for all outputs
            if not values:
                return torch.zeros(k), torch.ones(k)
            return location_scale(torch.cat(values))
        columns = [
            torch.cat([*(v[:, j] for v in values), *per_output[j]])
            if values or per_output[j]
            else torch.zeros(0)  # an output without data (a pressure)
            for j in range(k)
        ]
        scale = [
            location_scale(c[:, None]) if len(c) else (torch.zeros(1), torch.ones(1))
            for c in columns
        ]
        return torch.cat([m for m, _ in scale]), torch.cat([s for _, s in scale])

    def weights(self) -> dict[str, float]:
        # The names are checked in ``check_weights``: a residual may be a dict of named terms,
        # whose names are known only once it has been evaluated.
        return dict(self.settings.weights)

    def condition_points(self, condition, n: int, **kw) -> Tensor:
        """n points on the part of the domain where ``condition`` holds."""
        return self.condition_sample(condition, n, **kw)[0]

    def condition_sample(self, condition, n: int, **kw) -> tuple[Tensor, Tensor | None]:
        """n points uniform on the part where ``condition`` holds, and the outward unit
        normals there where the condition reads them (``pinnlab.parts.sample``)."""
        domain = self.spec.domain
        if isinstance(condition, Periodic):  # the periodic coordinate is set in periodic_terms
            return domain.sample_interior(n, **kw), None
        normals = isinstance(condition, NORMAL_CONDITIONS)
        return parts.sample(domain, condition.on, n, **kw, with_normals=normals)

    def points(
        self, generator: torch.Generator, imposed: frozenset[str] = frozenset()
    ) -> dict[str, Tensor]:
        """Interior points and points on the part of every condition not in ``imposed``."""
        s = self.settings
        kw = dict(generator=generator, dtype=self.dtype, sampling=s.sampling)
        out = {self.interior: self.spec.domain.sample_interior(s.n_interior, **kw)}
        for name, c in self.spec.conditions.items():
            if name not in imposed:
                out[name], normal = self.condition_sample(c, s.n_boundary, **kw)
                if isinstance(c, NORMAL_CONDITIONS):
                    if normal is None and isinstance(c, Condition):
                        continue  # a general condition may not read d.normal (which says so)
                    if normal is None:
                        raise ConfigError(
                            f"{self.problem.id}: condition '{name}' ({type(c).__name__}) needs "
                            f"the outward normal, which the part {c.on} of "
                            f"{type(self.spec.domain).__name__} does not have."
                        )
                    out[f"{name}{NORMAL}"] = normal
        return out

    def samples(self, batch: dict[str, Tensor]) -> int:
        """Points drawn (the normals that come with them are not counted)."""
        return sum(len(v) for k, v in batch.items() if not k.endswith(NORMAL))

    def batch(self, model: Model, generator: torch.Generator) -> dict[str, Tensor]:
        return self.points(generator, model.imposed)

    def mean_square(self, e: Tensor) -> Tensor:
        """mean e² = Var_batch e + (mean e)², the second weighted by ``mean_weight``.

        In d dimensions an error that is a sum of d weakly dependent terms, Σᵢ gᵢ(xᵢ) (a
        residual, or a misfit on the boundary), has a batch mean of size d·E g and
        fluctuations of size √d. The weights' gradient then carries the squared mean's
        derivative, d·E ∂g, times the batch's sampling noise: noise √(d/n) times the signal
        of the fluctuating part — u's shape. Adam sizes every step by that noise and the shape
        is learned slowly (poisson-sine at d = 1,000: centred error 0.98 after 250 steps with
        weight 1, 0.14 with 1/d). Weight 1/d balances the two terms; each vanishes only where
        e does, so the exact solution is still the minimiser.
        """
        return mean_square(e, self.settings.mean_weight)

    def dirichlet_residuals(self, net: nn.Module, batch: dict[str, Tensor]) -> dict[str, Residuals]:
        """The Dirichlet misfits u − g of ``dirichlet_terms`` as sums of squares."""
        out = {}
        for name, c in self.dirichlet().items():
            if name in batch:
                y = batch[name]
                k = self.outputs if c.output is None else 1
                g = _shaped(c.value(y), y.new_empty(len(y), k), name, "value")

                def misfit(y, g, output=c.output):
                    u = net(y)
                    return (u if output is None else u[:, output : output + 1]) - g

                out[name] = Residuals((y, g), misfit, mean_weight=self.settings.mean_weight)
        return out

    def periodic_residuals(self, net: nn.Module, batch: dict[str, Tensor]) -> dict[str, Residuals]:
        """The mismatches of ``periodic_terms`` as sums of squares."""
        out = {}
        for name, c in self.periodic().items():
            if name not in batch:
                continue
            column = c.axis + int(self.time_dependent)

            def mismatch(y, column=column, c=c, dx=False):
                ends = y.repeat(2, 1)
                n = len(y)
                ends[:n, column], ends[n:, column] = c.low, c.high
                if dx:
                    ux = partial_derivative(net, ends, column)[1]
                    return ux[:n] - ux[n:]
                u = net(ends)
                return u[:n] - u[n:]

            out[name] = Residuals((batch[name],), mismatch)
            if c.derivatives:
                out[f"{name}_dx"] = Residuals((batch[name],), lambda y, f=mismatch: f(y, dx=True))
        return out

    def dirichlet_terms(self, net: nn.Module, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """Mean squared misfit of each Dirichlet condition sampled in the batch (the values
        of ``dirichlet_residuals``)."""
        return {name: term.value() for name, term in self.dirichlet_residuals(net, batch).items()}

    def periodic_terms(self, net: nn.Module, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """Mean squared mismatch of u (term ``<name>``) and of ∂u/∂x_a (``<name>_dx``) between
        x_a = low and x_a = high, at the batch's points for each Periodic condition."""
        terms = {}
        for name, c in self.periodic().items():
            if name not in batch:
                continue
            column = c.axis + int(self.time_dependent)
            ends = batch[name].repeat(2, 1)
            n = len(batch[name])
            ends[:n, column], ends[n:, column] = c.low, c.high
            # ∂u/∂x_a by the engine: a forward-mode jet along e_a alone, u from the same pass.
            u, ux = partial_derivative(net, ends, column) if c.derivatives else (net(ends), None)
            terms[name] = (u[:n] - u[n:]).square().mean()
            if ux is not None:
                terms[f"{name}_dx"] = (ux[:n] - ux[n:]).square().mean()
        return terms

    def check_weights(self, terms: dict[str, Tensor]) -> None:
        unknown = set(self.settings.weights) - set(terms)
        if unknown:
            raise unknown_name("loss term (solver.weights)", sorted(unknown)[0], terms)
