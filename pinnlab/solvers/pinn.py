"""Physics-informed neural networks (Raissi, Perdikaris & Karniadakis, J. Comput. Phys. 378, 2019).

Minimises the mean squared strong-form residual at interior collocation points plus the mean
squared misfit of each condition at points on its part of the boundary:

    L = w_r · mean |R[u](x_i)|² + Σ_c w_c · mean |u(y_j) − g_c(y_j)|²

(Dirichlet conditions), plus for a Periodic condition in x_a the mismatches
mean |u(y|x_a=low) − u(y|x_a=high)|² and the same for ∂u/∂x_a.

With ``solver.causal`` (time-dependent problems) the residual term respects causality (Wang,
Sankaran & Perdikaris, "Respecting causality for training physics-informed neural
networks", Comput. Methods Appl. Mech. Engrg. 421, 2024; arXiv:2203.07404): [t0, t1] is cut
into M equal chunks with mean squared residuals L_1 … L_M, and

    L_r = (1/M) Σ_i w_i L_i,   w_i = exp(−ε Σ_{k<i} L_k)   (w_i held constant in the gradient),

so a later time's residual counts only once the earlier ones are small.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Sequence

import torch
from pydantic import Field
from torch import Tensor, nn

from ..config import Section
from ..derivatives import METHODS, Derivatives, gradient, method_for
from ..derivatives.stochastic import estimator_variance
from ..errors import ConfigError, IdentifiabilityWarning, ShapeError, unknown_name
from ..metrics import test_points
from ..networks import build_network
from ..observations import Observations, check_observations
from ..problem import RESERVED, Condition, Dirichlet, Neumann, Periodic, Robin
from ..residuals import Residuals
from ..unknowns import Unknown, UnknownSet, WithUnknowns, unknowns_of
from .base import Model, NetworkSpec
from .collocation import NORMAL, NORMAL_CONDITIONS, CollocationSolver, PointSettings, _shaped


class CausalSettings(Section):
    chunks: int = Field(32, ge=2, description="equal time chunks M of [t0, t1]")
    epsilon: float = Field(1.0, gt=0, description="causality ε: chunk i weighs exp(−ε Σ_{k<i} L_k)")


class PINNSettings(PointSettings):
    derivatives: str = Field(
        "auto", description=f"Δu and tr(BBᵀ∇²u) by: {', '.join(METHODS)} (docs/derivatives.md)"
    )
    probes: int = Field(16, ge=1, description="probes or axes per step of a stochastic method")
    causal: CausalSettings | None = Field(
        None,
        description="causal weighting of the residual over time chunks (time-dependent "
        "problems; Wang, Sankaran & Perdikaris 2024): {chunks: 32, epsilon: 1.0}",
    )
    test_residual: int = Field(
        0,
        ge=0,
        description="fresh interior points (the same at every evaluation) where the metric "
        "test_residual_rms, the residual's root mean square, is measured: the PDE misfit "
        "away from the training points (0: not measured)",
    )


class PINN(CollocationSolver):
    name = "pinn"
    form = "strong"
    Settings = PINNSettings
    interior = "residual"
    #: Every condition kind, on any part: Dirichlet and Periodic as misfits (or exactly),
    #: Neumann, Robin and general conditions as residuals at the part's points.
    imposes = (Dirichlet, Periodic, Neumann, Robin, Condition)

    #: Fits observations (an inverse problem's data, docs/inverse.md).
    takes_data = True

    def __init__(
        self,
        problem,
        settings: PINNSettings,
        *,
        dtype,
        hard_bc=False,
        data: Sequence[Observations] | None = None,
        holdout: float = 0.0,
        resample: int = 0,
    ):
        super().__init__(
            problem, settings, dtype=dtype, spec=problem.strong_form(), hard_bc=hard_bc
        )
        observations = self.spec.observations if data is None else tuple(data)
        if resample:  # replicate k of each set of observations, from its own seed
            observations = tuple(
                o.resampled(torch.Generator().manual_seed(1_000 * resample + j))
                for j, o in enumerate(observations)
            )
        taken = (*self.spec.conditions, *RESERVED)
        #: The observations fitted (``data``) and those held out for validation.
        self.observations, self.held_out = check_observations(
            observations, self.spec.domain, self.outputs, holdout, taken, problem.id
        )
        if self.spec.unknowns and not self.observations:
            warnings.warn(
                f"{problem.id} declares unknowns ({', '.join(u.name for u in self.spec.unknowns)})"
                " but no observations: the equation and its conditions alone rarely determine "
                "them (docs/inverse.md, identifiability).",
                IdentifiabilityWarning,
                stacklevel=3,
            )
        if settings.derivatives not in METHODS:
            raise unknown_name(
                "derivative method (solver.derivatives)", settings.derivatives, METHODS
            )
        self.strong = self.spec
        if settings.causal is not None:
            if not self.time_dependent:
                raise ConfigError(
                    f"solver.causal weights the residual over time; {problem.id} is not "
                    "time-dependent."
                )
            if settings.mean_weight != 1.0:
                raise ConfigError(
                    "solver.causal and solver.mean_weight ≠ 1 cannot be combined: the causal "
                    "weights act on each time chunk's mean square; use one of them."
                )

    def network(self) -> NetworkSpec:
        """The collocation network, with the source's gradients for a bottleneck's basis."""
        return dataclasses.replace(super().network(), source_gradients=self.source_gradients)

    def setup(self, net: nn.Module, generator: torch.Generator) -> Model:
        """The collocation model (``CollocationSolver.setup``); with unknowns, the
        network carries them beside it (``pinnlab.unknowns.WithUnknowns``, field
        networks initialised from ``generator`` after the body)."""
        if not self.spec.unknowns:
            return super().setup(net, generator)
        space = self.spec.domain.space if self.time_dependent else self.spec.domain
        unknowns = UnknownSet(self.spec.unknowns, space.bounds(), generator)
        model = super().setup(WithUnknowns(net, unknowns), generator)
        self._warn_unread(model)
        return model

    def _warn_unread(self, model: Model) -> None:
        """Warn of a declared unknown that neither the residual nor a general condition reads
        (evaluated at 8 start-up points): the data cannot say anything about it."""
        x = self._startup_points(next(model.module.parameters()).dtype)[:8]
        d = Derivatives(model.module, x, method="forward", time_dependent=self.time_dependent)
        self.strong.residual(d)
        read = set(d.read_unknowns)
        generator = torch.Generator().manual_seed(0)
        for c in self.spec.conditions.values():
            if isinstance(c, Condition):
                y, normals = self.condition_sample(c, 8, generator=generator, dtype=x.dtype)
                dc = Derivatives(
                    model.module,
                    y,
                    method="forward",
                    time_dependent=self.time_dependent,
                    normals=normals,
                )
                c.residual(dc)
                read |= dc.read_unknowns
        unread = [u.name for u in self.spec.unknowns if u.name not in read]
        if unread:
            warnings.warn(
                f"{self.problem.id}: the unknown(s) {', '.join(unread)} are declared but read "
                "by neither the residual nor a condition (d.unknown(name)); training cannot "
                "determine them.",
                IdentifiabilityWarning,
                stacklevel=4,
            )

    def weights(self) -> dict[str, float]:
        """Each data term's weight (``Observations.weight``) unless ``solver.weights`` sets it."""
        return {**{o.name: o.weight for o in self.observations}, **super().weights()}

    def _observed(self, model: Model, obs: Observations, x: Tensor) -> Tensor:
        """The quantity ``obs`` measures at x: u, u_j (``output``) or ``of(d)``; (n, m)."""
        if obs.of is not None:
            method = model.method if not model.method.stochastic else "forward"
            d = Derivatives(model.module, x, method=method, time_dependent=self.time_dependent)
            q = obs.of(d)
            return _rows(q, len(x), f"{obs.name} (Observations.of)").reshape(len(x), -1)
        u = model.module(x)
        return u if obs.output is None else u[:, obs.output : obs.output + 1]

    def _device_data(self, model: Model, device) -> list[tuple[Observations, Tensor, Tensor]]:
        """(observations, points, values) on ``device`` in the run's dtype, for the fitted and
        the held-out data, copied once per run (kept in the model's state)."""
        key = ("observations", str(device))
        if key not in model.state:
            model.state[key] = [
                (o, o.points.to(device, self.dtype), o.values.to(device, self.dtype))
                for o in (*self.observations, *self.held_out)
            ]
        return model.state[key]

    def data_terms(self, model: Model, *, held_out: bool = False) -> dict[str, Tensor]:
        """Mean squared misfit of each set of observations (of the held-out ones)."""
        device = next(model.module.parameters()).device
        rows = self._device_data(model, device)
        n = len(self.observations)
        terms = {}
        for obs, x, y in rows[n:] if held_out else rows[:n]:
            q = self._observed(model, obs, x)
            terms[obs.name] = (q - _shaped(y, q, obs.name, "values")).square().mean()
        return terms

    def unknown_values(self, module: nn.Module) -> dict[str, Tensor]:
        """The current value of every number or vector unknown (detached)."""
        found = unknowns_of(module)
        return {} if found is None else found.values()

    def metrics(self, module: nn.Module) -> dict[str, float]:
        """``<name>_error`` of each unknown whose true value the form states: |θ − θ*|/|θ*|
        for a number or vector (Euclidean norms), the relative L2 error on the problem's
        test points for a field."""
        found = unknowns_of(module)
        out = {}
        if self.settings.test_residual:
            out["test_residual_rms"] = self.test_residual_rms(module)
        for u in self.spec.unknowns if found is not None else ():
            if u.exact is None:
                continue
            if isinstance(u, Unknown):
                true = torch.as_tensor(u.exact, dtype=torch.float64)
                error = (found.value(u.name).detach().double().cpu() - true).norm() / true.norm()
            else:
                net = found.fields[u.name]
                p = next(net.parameters())
                x = test_points(self.problem, dtype=torch.float64)[:, int(self.time_dependent) :]
                with torch.no_grad():
                    got = net(x.to(p)).double().cpu().reshape(len(x), -1)
                true = u.exact(x).reshape(len(x), -1)
                error = (got - true).norm() / true.norm()
            out[f"{u.name}_error"] = float(error)
        return out

    def test_residual_rms(self, module: nn.Module) -> float:
        """√(mean |r|²) of the residual at ``test_residual`` uniform interior points drawn
        with a fixed seed (the same points at every evaluation, never trained on)."""
        model = self.bind(module)
        device = next(module.parameters()).device
        generator = torch.Generator(device=device).manual_seed(2**31 - 1)
        x = self.spec.domain.sample_interior(
            self.settings.test_residual, generator=generator, dtype=self.dtype
        )
        probes = None
        if model.method.stochastic:
            probes = model.method.draw(self.problem.dim, generator, self.dtype)
        with torch.enable_grad():  # (a reverse-mode method differentiates the network)
            r = self._residual(model, x, probes)
        rows = (
            torch.cat([v.reshape(len(x), -1) for v in r.values()], 1) if isinstance(r, dict) else r
        )
        return float(rows.detach().double().square().mean().sqrt())

    @property
    def has_truth(self) -> bool:
        return any(u.exact is not None for u in self.spec.unknowns)

    def bind(self, module: nn.Module) -> Model:
        """The model with its derivative method resolved (``auto`` looks at the module)."""
        s, in_dim = self.settings, self.problem.dim + int(self.time_dependent)
        method = method_for(module, s.derivatives, in_dim, probes=s.probes)
        return Model(module, method=method, imposed=self.imposed(module))

    def transform_shift(self, model) -> Tensor:
        """The least-squares c: argmin_c mean |R[g + φ(c + N)]|² at the 256 start-up points,
        with N as initialised.

        R is affine in c for a linear equation, R[g + φ(c + N)] = R₀ + Σ_j c_j (R_j − R₀) with
        R_j the residual at c = e_j, so k + 1 evaluations (k outputs) fix it; for a nonlinear
        one this is the secant through 0 and each e_j. On poisson-ball at d = 10,000, u/φ ≈ 0.84 Σ cᵢ (≈ 10²):
        N then learns the variation around c instead of climbing to c.
        """
        x = self._startup_points(model.shift.dtype)
        k = self.outputs
        method = method_for(
            model, self.settings.derivatives, x.shape[1], probes=self.settings.probes
        )

        def residual(shift: Tensor) -> Tensor:
            model.shift = shift
            return self._residual_columns(model, x, method).detach().reshape(-1).double()

        r0 = residual(torch.zeros(k))
        a = torch.stack([residual(torch.eye(k)[j]) - r0 for j in range(k)], dim=1)
        c = torch.linalg.lstsq(a, -r0[:, None]).solution[:, 0]
        return torch.where(torch.isfinite(c), c, torch.zeros_like(c)).float()

    def source_gradients(self) -> Tensor:
        """The gradients in the inputs of the residual of u ≡ 0 at the 256 start-up points,
        (256·k, D) for k residual components, float64: the data the equation carries in its
        interior (−∇f for −Δu = f). The residual of u ≡ 0 is evaluated through an all-zero
        network, so the derivative engine sees a network as usual and contributes nothing.
        """
        x = self._startup_points(torch.float64)
        zero = build_network(
            x.shape[1], self.outputs, width=1, depth=1, generator=torch.Generator()
        ).double()
        for p in zero.parameters():
            p.detach().zero_()
        # ∇ₓ of the residual (a function of x through f and through the network's jets) by
        # the engine's reverse mode: (n, k, D), one backward pass per component.
        _, g = gradient(lambda y: self._residual_columns(zero, y), x)
        return g.transpose(0, 1).reshape(-1, x.shape[1]).detach()

    def _startup_points(self, dtype: torch.dtype) -> Tensor:
        """The 256 fixed interior points of the evaluations made before training."""
        return self.spec.domain.sample_interior(
            256, generator=torch.Generator().manual_seed(0), dtype=dtype
        )

    def _residual_columns(self, net, x: Tensor, method="auto") -> Tensor:
        """The strong residual of ``net`` at x as (n, k) columns (named residuals side by
        side), with seeded probes for a stochastic method."""
        d = Derivatives(
            net,
            x,
            method=method,
            time_dependent=self.time_dependent,
            generator=torch.Generator().manual_seed(1),
        )
        r = self.strong.residual(d)
        if isinstance(r, dict):
            return torch.cat([v.reshape(len(x), -1) for v in r.values()], 1)
        return r.reshape(len(x), -1)

    def batch(self, model: Model, generator: torch.Generator) -> dict[str, Tensor]:
        out = super().batch(model, generator)
        if model.method.stochastic:
            out["probes"] = model.method.draw(self.problem.dim, generator, self.dtype)
        return out

    def _residual(self, model: Model, points: Tensor, probes: Tensor | None):
        d = Derivatives(
            model.module,
            points,
            method=model.method,
            time_dependent=self.time_dependent,
            probes=probes,
        )
        return self.strong.residual(d)

    def diagnostics(self, model: Model, batch: dict[str, Tensor]) -> dict[str, float]:
        """With ``causal``, the smallest chunk weight w_M (near 1: the residual is small up to
        the final time). For a stochastic method, the variance of the residual's estimate
        (mean over up to 256 batch points): the bias it adds to the mean squared residual."""
        out = {}
        for name, value in self.unknown_values(model.module).items():
            flat = value.reshape(-1)
            if value.dim() == 0:
                out[f"unknown.{name}"] = float(flat[0])
            else:
                out.update({f"unknown.{name}.{i}": float(v) for i, v in enumerate(flat)})
        if self.held_out:
            with torch.no_grad():
                held = self.data_terms(model, held_out=True)
            out.update({f"holdout.{k}": float(v) for k, v in held.items()})
        if self.settings.causal is not None:
            r = self._residual(model, batch["residual"], batch.get("probes"))
            weights = self.causal_terms(r, batch["residual"])[1]
            out["causal_weight_min"] = float(weights.min())
        if not model.method.stochastic:
            return out
        x = batch["residual"][:256]

        def residual(probes):
            r = self._residual(model, x, probes)
            return torch.stack(list(r.values()), dim=-1) if isinstance(r, dict) else r

        with torch.no_grad():
            var = estimator_variance(model.method, batch["probes"], residual, self.problem.dim)
        return {**out, "residual_var": float(var.detach().mean())}

    def causal_terms(
        self, r: Tensor | dict[str, Tensor], points: Tensor
    ) -> tuple[dict[str, Tensor], Tensor]:
        """The causally weighted residual terms (1/M) Σ_i w_i L_i, one per named residual,
        and the weights w (M,). L_i is the mean square over the points of time chunk i (all
        columns; an empty chunk counts 0), w_i = exp(−ε Σ_{k<i} L_k) with L the sum over the
        named residuals, detached from the graph."""
        causal = self.settings.causal
        m = causal.chunks
        named = r.items() if isinstance(r, dict) else [("residual", r)]
        chunk, count = self._chunks(points)
        losses = {}
        for key, value in named:
            square = value.reshape(len(points), -1).square().mean(dim=1)
            losses[key] = square.new_zeros(m).index_add(0, chunk, square) / count
        total = sum(losses.values()).detach()
        weights = torch.exp(-causal.epsilon * (torch.cumsum(total, 0) - total))
        return {k: (weights * v).mean() for k, v in losses.items()}, weights

    def _chunks(self, points: Tensor) -> tuple[Tensor, Tensor]:
        """The time chunk of each point (n,) and the number of points in each chunk (M,;
        at least 1) for ``causal``."""
        m, domain = self.settings.causal.chunks, self.spec.domain
        s = (points[:, 0].detach() - domain.t0) / (domain.t1 - domain.t0)
        chunk = (s * m).long().clamp_(0, m - 1)
        return chunk, torch.bincount(chunk, minlength=m).clamp_min(1).to(points.dtype)

    def boundary_terms(self, model: Model, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """Mean squared residual of each Neumann (∂u/∂n − flux), Robin (α u + β ∂u/∂n − g)
        and general condition at its points, with the normals drawn with them."""
        terms = {}
        method = model.method if not model.method.stochastic else "forward"
        for name, c in self.spec.conditions.items():
            if not isinstance(c, NORMAL_CONDITIONS) or name not in batch:
                continue
            y = batch[name]
            d = Derivatives(
                model.module,
                y,
                method=method,
                time_dependent=self.time_dependent,
                normals=batch.get(f"{name}{NORMAL}"),
            )
            if isinstance(c, Condition):
                r = c.residual(d)
                named = r.items() if isinstance(r, dict) else [(None, r)]
                for key, value in named:
                    label = name if key is None else f"{name}.{key}"
                    terms[label] = self.mean_square(_rows(value, len(y), label))
                continue
            dn = d.normal_derivative.reshape(len(y), -1)
            u = None if isinstance(c, Neumann) else model.module(y)
            if c.output is not None:
                dn = dn[:, c.output : c.output + 1]
                u = None if u is None else u[:, c.output : c.output + 1]
            if isinstance(c, Neumann):
                e = dn - _shaped(c.flux(y), dn, name, "flux")
            else:
                alpha, beta = (_coefficient(a, y, dn) for a in (c.alpha, c.beta))
                e = alpha * u + beta * dn - _shaped(c.value(y), dn, name, "value")
            terms[name] = self.mean_square(e)
        return terms

    #: The loss is a sum of squares (``least_squares``): Gauss–Newton / ENGD steps apply.
    gauss_newton = True

    def least_squares(self, model: Model, batch: dict[str, Tensor]) -> dict[str, Residuals]:
        """The terms of ``loss`` as sums of squares of per-point residuals
        (``pinnlab.gauss_newton``): the same values, each with the function of one point
        that its Jacobian is taken of. Causal weights are those of the current weights, held
        fixed (as in ``loss``, where they carry no gradient)."""
        points, probes = batch["residual"], batch.get("probes")
        r = self._residual(model, points, probes)
        names = list(r) if isinstance(r, dict) else [None]
        row_weights = None
        if self.settings.causal is not None:
            m = self.settings.causal.chunks
            chunk, count = self._chunks(points)
            weights = self.causal_terms(r, points)[1]
            row_weights = (weights / (m * count))[chunk].detach()
        mean_weight = self.settings.mean_weight
        out = {}
        for key in names:

            def residual(x, key=key):
                value = self._residual(model, x, probes)
                return _rows(value if key is None else value[key], len(x), key or "residual")

            out[key or "residual"] = Residuals(
                (points,), residual, row_weights=row_weights, mean_weight=mean_weight
            )
        out.update(self.dirichlet_residuals(model.module, batch))
        out.update(self.periodic_residuals(model.module, batch))
        out.update(self.boundary_residuals(model, batch))
        for obs, x, y in self._device_data(model, next(model.module.parameters()).device)[
            : len(self.observations)
        ]:

            def misfit(x, y, obs=obs):
                q = self._observed(model, obs, x)
                return q - y.reshape(q.shape)

            out[obs.name] = Residuals((x, y), misfit)
        self.check_weights(out)
        return out

    def boundary_residuals(self, model: Model, batch: dict[str, Tensor]) -> dict[str, Residuals]:
        """The residuals of ``boundary_terms`` as sums of squares."""
        out = {}
        method = model.method if not model.method.stochastic else "forward"
        mean_weight = self.settings.mean_weight
        for name, c in self.spec.conditions.items():
            if not isinstance(c, NORMAL_CONDITIONS) or name not in batch:
                continue
            y, normals = batch[name], batch.get(f"{name}{NORMAL}")
            inputs = (y,) if normals is None else (y, normals)

            def derivatives(y, normals=None):
                return Derivatives(
                    model.module,
                    y,
                    method=method,
                    time_dependent=self.time_dependent,
                    normals=normals,
                )

            if isinstance(c, Condition):
                r = c.residual(derivatives(*inputs))
                for key in r if isinstance(r, dict) else [None]:
                    label = name if key is None else f"{name}.{key}"

                    def general(*rows, key=key, c=c, label=label):
                        value = c.residual(derivatives(*rows))
                        return _rows(value if key is None else value[key], len(rows[0]), label)

                    out[label] = Residuals(inputs, general, mean_weight=mean_weight)
                continue
            k = self.outputs if c.output is None else 1
            like = y.new_empty(len(y), k)
            if isinstance(c, Neumann):
                data = (_shaped(c.flux(y), like, name, "flux"),)
            else:
                data = (
                    *(_coefficient(a, y, like) * torch.ones_like(like) for a in (c.alpha, c.beta)),
                    _shaped(c.value(y), like, name, "value"),
                )

            def condition(y, normals, *data, c=c):
                dn = derivatives(y, normals).normal_derivative.reshape(len(y), -1)
                if c.output is not None:
                    dn = dn[:, c.output : c.output + 1]
                if isinstance(c, Neumann):
                    return dn - data[0]
                u = model.module(y)
                u = u if c.output is None else u[:, c.output : c.output + 1]
                alpha, beta, g = data
                return alpha * u + beta * dn - g

            out[name] = Residuals((y, normals, *data), condition, mean_weight=mean_weight)
        return out

    def loss(self, model: Model, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        r = self._residual(model, batch["residual"], batch.get("probes"))
        n = len(batch["residual"])
        for key, value in r.items() if isinstance(r, dict) else [("residual", r)]:
            _rows(value, n, key)
        if self.settings.causal is not None:
            terms = self.causal_terms(r, batch["residual"])[0]
        elif isinstance(r, dict):
            terms = {k: self.mean_square(v) for k, v in r.items()}
        else:
            terms = {"residual": self.mean_square(r)}
        terms.update(self.dirichlet_terms(model.module, batch))
        terms.update(self.periodic_terms(model.module, batch))
        terms.update(self.boundary_terms(model, batch))
        terms.update(self.data_terms(model))
        self.check_weights(terms)
        return terms


def _rows(value, n: int, name: str) -> Tensor:
    """A residual ``name`` must give one row per point: (n,) or (n, m)."""
    if not isinstance(value, Tensor) or value.dim() not in (1, 2) or len(value) != n:
        got = tuple(value.shape) if isinstance(value, Tensor) else type(value).__name__
        raise ShapeError(
            f"residual '{name}' must have shape ({n},) or ({n}, m) at {n} points, got {got}."
        )
    return value


def _coefficient(a, y: Tensor, like: Tensor) -> Tensor | float:
    """A Robin coefficient: a number, or a function of the points reshaped as (n, 1)."""
    if callable(a):
        return a(y).reshape(len(y), -1)
    return a
