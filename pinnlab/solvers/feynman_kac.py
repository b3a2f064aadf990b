"""Feynman–Kac regression (Beck, Becker, Grohs, Jaafari & Jentzen, J. Sci. Comput. 88 (2021),
arXiv:1806.00421; analysed by Berner, Grohs & Jentzen, SIAM J. Math. Data Sci. 2 (2020)).

For a linear problem, u(t*, x) = E[Y | X_{t*} = x] with Y = e^{−r(T−t*)} g(X_T): the
conditional expectation is the minimiser of E|N(ξ) − Y|² over functions N of the start ξ. So
a network learns u(t*, ·) on the whole domain of interest by least squares on pairs
(ξ, Y), ξ uniform in the region, X_T simulated from ξ, fresh pairs every step:

    L = mean_i |N(ξ_i) − Ỹ_i|²,

where Ỹ has the same conditional mean as Y and a smaller variance:

- several paths per start (``paths``) and antithetic pairs (``antithetic``): Ỹ is the mean of
  Y over the paths and their mirrors (ξ, −W);
- a control variate (``control_variate``, where the form knows E[X_T | ξ]):
  Ỹ = Y − e^{−r(T−t*)} ∇N(ξ)·(X_T − E[X_T | ξ]). Its conditional mean is zero for any
  coefficient that depends on ξ only; ∇N (detached) approximates the best one, the delta,
  by the martingale representation of Y. The loss keeps a floor (the variance of Ỹ): the
  loss is not the error.

Stochastic gradients leave the weights with noise of the size of the learning rate, and
Adam rescales every step by the noisy gradient: the error stalls above the Monte Carlo
error that the samples drawn would allow. With ``refit`` = B, training ends with the exact
least-squares fit of the network's output layer to B fresh batches (the loss is quadratic
in it; ``pinnlab.training.fit_readout``): linear regression Monte Carlo on the features
the network has learnt, whose estimation error falls as σ √(p / (B n)) for p features and
σ the noise of Ỹ.
"""

from __future__ import annotations

import torch
from pydantic import Field
from torch import Tensor, nn
from tqdm.auto import trange

from .. import montecarlo
from ..derivatives import gradient
from ..errors import ConfigError, FormError
from ..networks import OutputAffine, has_readout
from ..residuals import Residuals
from ..training import fit_readout
from .base import Model
from .paths import PathSettings, PathSolver


class FeynmanKacSettings(PathSettings):
    n_samples: int = Field(8192, ge=1, description="starting points (regression pairs) per step")
    euler_steps: int = Field(50, ge=1, description="Euler–Maruyama steps (sampler: euler)")
    paths: int = Field(1, ge=1, description="paths (antithetic pairs) per starting point")
    antithetic: bool = Field(True, description="pair each path with its mirror (ξ, −W)")
    control_variate: bool = Field(
        True, description="subtract ∇N·(X_T − E[X_T]) (where the form knows E[X_T])"
    )
    refit: int = Field(
        0,
        ge=0,
        description="fresh batches for a final least-squares fit of the output layer (0: none)",
    )


class FeynmanKac(PathSolver):
    name = "feynman-kac"
    Settings = FeynmanKacSettings

    def __init__(self, problem, settings: FeynmanKacSettings, *, dtype, hard_bc=False):
        super().__init__(problem, settings, dtype=dtype, hard_bc=hard_bc)
        if not self.sde.linear:
            raise FormError(
                f"method 'feynman-kac' needs a linear problem; {problem.id} has a nonlinearity "
                "f(t, x, u, σᵀ∇u). Use method 'deep-bsde'."
            )
        self.control = settings.control_variate and self.sde.mean is not None

    @property
    def euler_steps(self) -> int:
        return self.settings.euler_steps

    def setup(self, net: nn.Module, generator: torch.Generator) -> Model:
        """u = mean + std · N with the pilot's mean and spread of the discounted payoffs."""
        if self.settings.refit and not has_readout(net):
            raise ConfigError(
                "solver.refit fits the network's linear output layer; this network has none "
                "that it exposes (net.kind mlp, resmlp or deepsets without net.wrap.additive have "
                "one). Set solver.refit=0."
            )
        return self.bind(OutputAffine(net, *self.pilot()))

    def samples(self, batch: dict[str, Tensor]) -> int:
        """Simulated paths: ``paths`` (antithetic pairs count twice) per start."""
        return len(batch["x"]) * self.settings.paths * (2 if self.settings.antithetic else 1)

    def batch(self, model: Model, generator: torch.Generator) -> dict[str, Tensor]:
        """Starts x, the mean discounted payoff Y over their paths, and (with the control
        variate) the mean of e^{−r(T−t*)}(X_T − E[X_T | x]) over the same paths."""
        s, sde = self.settings, self.sde
        x = self.starts(s.n_samples, generator)
        n, copies = len(x), s.paths * (2 if s.antithetic else 1)
        xt = montecarlo.terminal(
            sde,
            s.time,
            x.repeat(s.paths, 1),
            generator,
            exact=self.exact,
            steps=self.euler_steps,
            antithetic=s.antithetic,
        )
        y = montecarlo.discounted_payoff(sde, s.time, xt)
        out = {"x": x, "target": y.reshape(copies, n).mean(dim=0)}
        if self.control:
            shift = xt.reshape(copies, n, -1).mean(dim=0) - sde.mean(s.time, x, sde.horizon)
            out["shift"] = self.discount() * shift
        return out

    def _fit(self, net: nn.Module, batch: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        """N at the starts, and the regression target Ỹ (with the control variate, ∇N
        detached)."""
        x, y = batch["x"], batch["target"]
        if not self.control:
            return net(x).reshape(len(x)), y
        with torch.enable_grad():  # N keeps its graph for the loss; ∇N (reverse mode) has none
            u, grad = gradient(net, x)
        y = y - (batch["shift"] * grad.reshape(len(x), -1).detach()).sum(dim=1)
        return u.reshape(len(x)), y

    def loss(self, model: Model, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        u, y = self._fit(model.module, batch)
        return {"regression": (u - y).square().mean()}

    #: The loss is a sum of squares (``least_squares``): Gauss–Newton / ENGD steps apply.
    gauss_newton = True

    def least_squares(self, model: Model, batch: dict[str, Tensor]) -> dict[str, Residuals]:
        """The regression residuals N(ξ_i) − Ỹ_i of ``loss``, with Ỹ (and its control
        variate's ∇N) fixed where the step starts: a Gauss–Newton step fits the network to
        the batch's targets (nonlinear least squares on one fixed sample, as large as
        ``train.lbfgs_batches`` batches)."""
        net = model.module
        _, y = self._fit(net, batch)
        return {
            "regression": Residuals(
                (batch["x"], y.detach()), lambda x, y: net(x).reshape(len(x)) - y
            )
        }

    def finish(
        self, model: Model, generator: torch.Generator, *, progress: bool = False
    ) -> dict[str, float]:
        """With ``refit``: the least-squares fit of the output layer to fresh batches (the
        control variate's coefficient is the trained network's ∇N, fixed for all of them)."""
        if not self.settings.refit:
            return {}

        def pairs():
            for _ in trange(self.settings.refit, desc="refit", disable=not progress):
                batch = self.batch(model, generator)
                y = self._fit(net, batch)[1].detach() if self.control else batch["target"]
                yield batch["x"], y

        net = model.module
        return {"refit_starts": fit_readout(net, pairs())}
