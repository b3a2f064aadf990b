"""The one training loop every solver shares.

Phases of Adam, SGD, L-BFGS or damped Gauss–Newton / ENGD steps (``pinnlab.gauss_newton``), in
the order ``train.phases`` gives (``optimizer: adam+lbfgs`` is the shorthand of two); learning-rate
schedules; fresh points every k Adam steps
(L-BFGS and Gauss–Newton keep one batch: their steps assume a fixed objective); gradient clipping;
a NaN/Inf guard that restores the last good state and halves the learning rate; checkpoints
with optimizer, scheduler, generator state and the current batch, so a resumed run continues
bit for bit; stopping at a target error or a time budget; a progress bar; a history of every
loss term and of the error. Loss values are synced to the host every ``log_every`` steps only.
"""

from __future__ import annotations

import copy
import math
import signal
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from .config import TrainSection
from .errors import ConfigError, TrainingError
from .files import atomic_write
from .gauss_newton import GaussNewton, curvature_rows, gauss_newton_solvers
from .quasi_newton import UPDATES, SelfScaledQuasiNewton, check_dense

if TYPE_CHECKING:  # the solvers use fit_readout: no import of them at run time
    from .solvers.base import Model, Solver


def fit_readout(net: nn.Module, pairs: Iterable[tuple[Tensor, Tensor]]) -> int:
    """Replace the output layer of ``net`` (see ``pinnlab.networks.has_readout``) by the
    least-squares fit over all ``pairs`` (x (n, D), y (n,) or (n, o)): the (W, b) minimising
    Σ |W φ(x) + b − y|² for the network's fixed features φ. Returns the number of rows fitted.

    The loss is quadratic in (W, b), so its minimiser over a sample is exact: the normal
    equations, accumulated in float64 over the pairs one batch at a time (memory p² for p
    features, whatever the sample size) and solved by an eigendecomposition that drops
    directions below 1e-12 of the largest (features that are numerically dependent). The
    hybrid of gradient training for the features and least squares for the output layer is
    that of Cyr, Gulian, Patel, Perego & Trask, "Robust training and initialization of deep
    neural networks: an adaptive basis viewpoint", MSML 2020 (PMLR 107), arXiv:1912.04862.
    """
    gram = rhs = 0
    rows = 0
    for x, y in pairs:
        with torch.no_grad():
            phi = net.readout(x).double()
        a = torch.cat([phi, torch.ones_like(phi[:, :1])], dim=1)
        gram = gram + a.T @ a
        rhs = rhs + a.T @ y.double().reshape(len(a), -1)
        rows += len(a)
    if not rows:
        raise TrainingError("fit_readout: no samples to fit.")
    if not (torch.isfinite(gram).all() and torch.isfinite(rhs).all()):
        raise TrainingError("fit_readout: the features or targets are not finite.")
    values, vectors = torch.linalg.eigh(gram)
    keep = values > 1e-12 * values[-1]
    coef = vectors[:, keep] @ ((vectors[:, keep].T @ rhs) / values[keep].unsqueeze(1))
    weight = coef[:-1].T.to(next(net.parameters()).dtype)
    net.set_readout(weight, coef[-1].to(weight.dtype))
    return rows


#: A logged loss this many times above the larger of |first loss| and |best loss| so far is a
#: divergence, handled like a NaN (restore the last good state, halve the learning rate).
#: Training that works stays far below: on poisson-sine with train.lr=1e6 the loss reached
#: 1e16 from a first loss of about 10.
DIVERGENCE = 1e6


class Interrupted(TrainingError):
    """Training was interrupted (Ctrl-C); a checkpoint was saved when a path was given."""


#: Optimizers that train on one fixed batch (their steps assume a fixed objective), without
#: a learning-rate schedule or a moving average of the weights.
FIXED_BATCH = ("lbfgs", "ssbfgs", "ssbroyden", "engd", "engd-kfac")
#: The Gauss–Newton / ENGD optimizers: engd-kfac is engd with train.engd.solver kfac.
GAUSS_NEWTON = ("engd", "engd-kfac")


def evaluation_step(step: int, every: int, geometric: bool) -> bool:
    """Whether ``step`` is evaluated: every ``every`` steps, and with ``geometric`` also at
    the steps ⌊2^(k/2)⌉ (1, 2, 3, 4, 6, 8, 11, 16, …) below ``every``."""
    if step % every == 0:
        return True
    if not geometric or step >= every:
        return False
    k = round(2 * math.log2(step))
    return step == round(2 ** (k / 2))


def _optimizer(kind: str, module: nn.Module, s: TrainSection, lr: float):
    # Frozen weights (a bottleneck fixed by the source) are left out: L-BFGS would otherwise
    # carry their zero gradients in every flat vector and curvature pair.
    params = [p for p in module.parameters() if p.requires_grad]
    if kind in GAUSS_NEWTON:
        return GaussNewton(module, **s.engd.settings(kind))
    if kind in UPDATES:
        return SelfScaledQuasiNewton(params, update=kind)
    if kind == "adam":
        return torch.optim.Adam(params, lr=lr)
    if kind == "sgd":  # plain steps θ −= lr·g: for gradients that are already preconditioned
        return torch.optim.SGD(params, lr=lr)
    # One iteration per step (so checkpoints, NaN checks and Ctrl-C act between iterations);
    # max_eval bounds the line search of that iteration: torch's default (5/4 · max_iter = 1)
    # would leave the strong-Wolfe search no evaluations at all and stall the optimizer.
    # No absolute tolerances: torch's defaults (1e-9 on the directional derivative and the
    # loss change, 1e-7 on the gradient) skip the step once g·d > −1e-9, and with one iteration
    # per step and an unchanged state every later step skips it too. On nls that froze the
    # run for good at loss 8.8e-6 (g·d = −9.8e-10); the steps and the time budget stop it.
    return torch.optim.LBFGS(
        params,
        lr=1.0,
        max_iter=1,
        max_eval=11,
        tolerance_grad=0.0,
        tolerance_change=0.0,
        history_size=s.lbfgs_history,
        line_search_fn="strong_wolfe",
    )


def _average(model: nn.Module, decay: float) -> AveragedModel | None:
    """An exponential moving average of ``model``'s weights (Polyak averaging; torch's
    ``AveragedModel``), or None for decay 0. With a noisy gradient, such as deep Ritz's
    Monte Carlo energy whose per-sample gradients do not vanish at the minimiser, the
    iterates jitter around the minimiser at a scale set by the learning rate; their average
    sits closer to it (Polyak & Juditsky, SIAM J. Control Optim. 30 (1992))."""
    if not decay:
        return None
    return AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)


def _scheduler(optimizer, s: TrainSection, steps: int, lr: float):
    final = s.final_lr if s.final_lr is not None else lr * 1e-2
    if s.schedule == "exponential":
        gamma = (final / lr) ** (1.0 / max(steps, 1))
        return torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma)
    if s.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, max(steps, 1), eta_min=final)
    if s.schedule == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, s.decay_every, s.gamma)
    return None


class Trainer:
    """Trains ``model`` (what ``solver.setup`` returned) on ``solver``'s loss with the settings of a ``train`` config section.

    ``evaluate`` returns the current error (the run's metric) and is called every
    ``eval_every`` steps; ``checkpoint`` is where checkpoints go (None: none are written);
    ``fingerprint`` identifies the run, so a checkpoint of another run is refused.
    """

    def __init__(
        self,
        solver: Solver,
        model: Model,
        settings: TrainSection,
        *,
        generator: torch.Generator,
        evaluate: Callable[[], float] | None = None,
        checkpoint: Path | None = None,
        fingerprint: str = "",
        progress: bool = True,
        log_dir: Path | None = None,
    ):
        self.solver, self.s = solver, settings
        #: The run's model (what the solver's hooks take) and the module trained in it.
        self.model, self.module = model, model.module
        #: the run's dtype, which a phase's own (``train.phases[k].dtype``) replaces while it trains
        self.dtype = next(model.module.parameters()).dtype
        self.generator = generator
        self.evaluate = evaluate
        self.checkpoint = checkpoint
        self.fingerprint = fingerprint
        self.progress = progress
        self._lines, self._total = False, 0  # set by run(): log lines instead of a bar
        #: Where ``train.log: tensorboard`` writes, and its writer while a run is on.
        self.log_dir = log_dir
        self.monitor = None
        self.weights = solver.weights()
        self.history: dict[str, list[float]] = defaultdict(list)
        self.step = 0
        #: Training samples drawn so far (points, or simulated paths: ``Solver.samples``).
        self.samples = 0
        self.elapsed = 0.0
        self.nan_restarts = 0
        #: |first loss| and the best loss so far, the scale a divergence is measured against.
        self._scale: float | None = None
        self._best = float("inf")
        self.stop_reason = "steps"
        self._interrupted = False
        #: The moving average of the weights (``train.ema``), during a first-order phase.
        self.ema: AveragedModel | None = None
        #: The solver's loss under torch.compile (``train.compile``), made at the first step.
        self._compiled = None
        #: The adapted weight λ of each loss term (``train.balance``), None before the first.
        self.balance: dict[str, float] | None = None

    # --- state -----------------------------------------------------------------------
    def _state(self, optimizer, scheduler, batch) -> dict:
        return {
            "fingerprint": self.fingerprint,
            "step": self.step,
            "samples": self.samples,
            "elapsed": self.elapsed,
            "nan_restarts": self.nan_restarts,
            "model": self.module.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict() if scheduler else None,
            "generator": self.generator.get_state(),
            "batch": batch,
            "history": dict(self.history),
            "ema": self.ema.state_dict() if self.ema is not None else None,
            "balance": self.balance,
        }

    def save_checkpoint(self, optimizer, scheduler, batch) -> None:
        if self.checkpoint is not None:
            with atomic_write(self.checkpoint) as tmp:
                torch.save(self._state(optimizer, scheduler, batch), tmp)

    def _load_checkpoint(self) -> dict | None:
        if self.checkpoint is None or not self.checkpoint.exists():
            return None
        try:
            state = torch.load(self.checkpoint, map_location="cpu", weights_only=True)
        except Exception as e:
            raise TrainingError(f"checkpoint '{self.checkpoint}' cannot be read: {e}") from None
        if state.get("fingerprint") != self.fingerprint:
            raise TrainingError(
                f"checkpoint '{self.checkpoint}' belongs to a different run config; "
                "delete it or run without --resume."
            )
        return state

    # --- the loop --------------------------------------------------------------------
    def _loss(self, batch):
        return self._combine(self._solver_loss(self.model, batch))

    def _combine(self, terms: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        """Σ_k w_k λ_k L_k: the configured weights w (``solver.weights``) times the adapted
        ones λ (``train.balance``; 1 without it)."""
        balance = self.balance or {}
        total = sum(self.weights.get(k, 1.0) * balance.get(k, 1.0) * v for k, v in terms.items())
        return total, terms

    def _rebalance(self, terms: dict[str, Tensor]) -> None:
        """The grad-norm update of λ (learning-rate annealing, Wang, Teng & Perdikaris, SIAM J.
        Sci. Comput. 43 (2021) A3055; in the form of jaxpi): with g_k = |∇_θ (w_k L_k)|,
        λ̂_k = Σ_j g_j / g_k and λ ← β λ + (1 − β) λ̂, starting from λ = 1. Each term's
        weighted gradient then has about the same norm. One backward pass per term."""
        params = [p for p in self.module.parameters() if p.requires_grad]
        norms = {}
        for k, v in terms.items():
            grads = torch.autograd.grad(
                self.weights.get(k, 1.0) * v, params, retain_graph=True, allow_unused=True
            )
            norms[k] = torch.sqrt(sum(g.square().sum() for g in grads if g is not None))
        target = balanced_weights(norms)
        beta = self.s.balance_decay
        old = self.balance or {}
        self.balance = {k: beta * old.get(k, 1.0) + (1 - beta) * target[k] for k in terms}
        self.history["balance_step"].append(self.step)
        for k, w in self.balance.items():
            self.history[f"balance.{k}"].append(w)

    def _solver_loss(self, model, batch):
        """The solver's loss terms; with ``train.compile``, through torch.compile (inductor),
        compiled at the first step (a failure there is reported, naming the setting)."""
        if not self.s.compile:
            return self.solver.loss(model, batch)
        if self._compiled is None:
            self._compiled = torch.compile(self.solver.loss)
        from torch._dynamo.exc import TorchDynamoException

        try:
            return self._compiled(model, batch)
        except TorchDynamoException as e:  # tracing or the backend (inductor) failed
            raise TrainingError(
                f"train.compile: torch.compile could not compile the {self.solver.name} loss "
                f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}); train "
                "without it (train.compile: false)."
            ) from e

    def run(self, *, resume: bool = False) -> dict[str, list[float]]:
        """Train; returns the history. Raises ``Interrupted`` on Ctrl-C."""
        from tqdm.auto import tqdm

        s = self.s
        phases = s.phase_list()
        total_steps = sum(phase[1] for phase in phases)
        if any(phase[0] in GAUSS_NEWTON for phase in phases):
            self._check_gauss_newton()
        if "spectrum" in s.diagnostics:
            self._check_gauss_newton(
                "train.diagnostics spectrum measures the Gauss–Newton matrix of"
            )
        if s.diagnostics:
            from .analysis import check_diagnostics

            check_diagnostics(s.diagnostics, self.solver)
        trained = sum(p.numel() for p in self.module.parameters() if p.requires_grad)
        for kind in {phase[0] for phase in phases} & set(UPDATES):
            check_dense(trained, kind)  # before any phase trains
        state = self._load_checkpoint() if resume else None
        device = next(self.module.parameters()).device
        if state is not None:  # the weights in the precision of the phase they were saved in
            self._cast(self._phase_dtype(phases, state["step"]))
            self.module.load_state_dict(state["model"])
            self.step, self.elapsed = state["step"], state["elapsed"]
            self.samples = state.get("samples", 0)
            self.nan_restarts = state["nan_restarts"]
            self.generator.set_state(state["generator"])
            self.balance = state.get("balance")
            self.history = defaultdict(list, {k: list(v) for k, v in state["history"].items()})
        # On a terminal a live bar; piped (a log file, a batch job) one line per evaluation.
        self._lines = self.progress and not sys.stderr.isatty()
        bar = tqdm(
            total=total_steps,
            initial=self.step,
            disable=not self.progress or self._lines,
            dynamic_ncols=True,
        )
        self._total = total_steps
        if state is not None and self.progress:
            print(
                f"resuming from step {self.step} of {total_steps} ({self.checkpoint})",
                file=sys.stderr,
                flush=True,
            )
        start = time.perf_counter() - self.elapsed
        begin = 0
        if s.log == "tensorboard":
            from .monitor import TensorBoard

            self.monitor = TensorBoard(s.log_dir or self.log_dir or "runs/tensorboard")
        previous_handler = self._catch_sigint()
        try:
            for kind, n, phase_lr, _ in phases:
                end = begin + n
                if self.step >= end:
                    begin = end
                    continue
                self._cast(self._phase_dtype(phases, self.step))
                lr = phase_lr * 0.5**self.nan_restarts
                self.stop_reason = "steps"
                optimizer = _optimizer(kind, self.module, s, lr)
                fixed = kind in FIXED_BATCH
                scheduler = None if fixed else _scheduler(optimizer, s, n, lr)
                self.ema = None if fixed else _average(self.module, s.ema)
                batch, fresh = None, True
                if state is not None:
                    # The checkpoint restores the optimizer's state, not its settings (those are
                    # this version's); lr is the schedule's, restored with it.
                    settings = {k: v for k, v in optimizer.defaults.items() if k != "lr"}
                    optimizer.load_state_dict(state["optimizer"])
                    for group in optimizer.param_groups:
                        group.update(settings)
                    if scheduler is not None and state["scheduler"] is not None:
                        scheduler.load_state_dict(state["scheduler"])
                    if self.ema is not None and state.get("ema") is not None:
                        self.ema.load_state_dict(state["ema"])
                    batch = {k: v.to(device) for k, v in state["batch"].items()}
                    state, fresh = None, False
                if batch is None:
                    batch = self._draw(kind)
                stop = self._train_phase(kind, optimizer, scheduler, batch, fresh, end, bar, start)
                if self.ema is not None:  # the phase ends with the averaged weights
                    self.module.load_state_dict(self.ema.module.state_dict())
                    self.ema = None
                if stop:
                    break
                begin = end
        finally:
            self._cast(self.dtype)
            bar.close()
            if self.monitor is not None:
                self.monitor.close()
                self.monitor = None
            if previous_handler is not None:
                signal.signal(signal.SIGINT, previous_handler)
        self.elapsed = time.perf_counter() - start
        return dict(self.history)

    def _phase_dtype(self, phases, step: int) -> torch.dtype:
        """The precision of the phase that step ``step`` falls in (the run's past the last)."""
        end = 0
        for _, n, _, dtype in phases:
            end += n
            if step < end:
                return getattr(torch, dtype) if dtype else self.dtype
        return self.dtype

    def _cast(self, dtype: torch.dtype) -> None:
        """Weights, and the points the solver samples, in ``dtype`` (a phase's precision)."""
        if next(self.module.parameters()).dtype != dtype:
            self.module.to(dtype=dtype)
        self.solver.dtype = dtype

    def _train_phase(self, kind, optimizer, scheduler, batch, fresh, end, bar, start) -> bool:
        """Steps until ``end``; True when training should stop altogether."""
        s = self.s
        good = self._snapshot(optimizer, scheduler)
        pending: list[tuple[int, dict, float]] = []
        while self.step < end:
            resample = (
                kind not in FIXED_BATCH and s.resample_every and self.step % s.resample_every == 0
            )
            if resample and not fresh:
                batch = self._draw(kind)
            fresh = False
            if kind in GAUSS_NEWTON:
                terms = self._gauss_newton_step(optimizer, batch)
                if terms.pop("stalled"):
                    self._stall(end, bar)
            elif kind in ("lbfgs", *UPDATES):
                terms = self._lbfgs_step(optimizer, batch)
            else:
                terms = self._first_order_step(optimizer, batch)
            if scheduler is not None:
                scheduler.step()
            self.step += 1
            pending.append((self.step, terms, optimizer.param_groups[0]["lr"]))
            bar.update(1)
            last = self.step == end
            logging = self.step % s.log_every == 0 or last
            evaluate = evaluation_step(self.step, s.eval_every, s.eval_geometric) or last
            out_of_time = s.time_budget is not None and time.perf_counter() - start >= s.time_budget
            periodic = s.checkpoint_every and self.step % s.checkpoint_every == 0
            # Wherever the run is evaluated, checkpointed or may stop, its history is complete
            # and its state finite (a checkpoint must not hold NaN weights or lose losses).
            if logging or evaluate or out_of_time or periodic or self._interrupted:
                if not self._flush(pending, bar, time.perf_counter() - start):
                    self._restore(good, optimizer, scheduler)
                    batch = self._draw(kind)
                    continue
                if logging:
                    good = self._snapshot(optimizer, scheduler)
            if evaluate and self._eval(bar, start, batch):
                return True
            if out_of_time:
                self.stop_reason = "time_budget"
                self._eval(bar, start, batch)
                return True
            if periodic or self._interrupted:
                self.elapsed = time.perf_counter() - start
                self.save_checkpoint(optimizer, scheduler, batch)
            if self._interrupted:
                where = (
                    f"; checkpoint saved to {self.checkpoint}, continue with --resume"
                    if self.checkpoint
                    else ""
                )
                raise Interrupted(f"interrupted at step {self.step}{where}.")
        return False

    def _catch_sigint(self):
        """First Ctrl-C: finish the current step, checkpoint, stop. Second: stop at once."""
        self._interrupted = False
        if threading.current_thread() is not threading.main_thread():
            return None

        def handler(signum, frame):
            self._interrupted = True
            signal.signal(signal.SIGINT, signal.default_int_handler)

        return signal.signal(signal.SIGINT, handler)

    def _draw(self, kind: str) -> dict:
        """A fresh batch; a fixed-batch phase (``FIXED_BATCH``: L-BFGS, SSBFGS, SSBroyden, ENGD)
        gets ``lbfgs_batches`` of them at once (one larger fixed sample)."""
        count = 1 if kind not in FIXED_BATCH else self.s.lbfgs_batches
        batches = [self.solver.batch(self.model, self.generator) for _ in range(count)]
        self.samples += sum(self.solver.samples(b) for b in batches)
        if count == 1:
            return batches[0]
        return {k: torch.cat([b[k] for b in batches]) for k in batches[0]}

    def _first_order_step(self, optimizer, batch) -> dict:
        optimizer.zero_grad(set_to_none=True)
        terms = self._solver_loss(self.model, batch)
        if self.s.balance == "grad-norm" and self.step % self.s.balance_every == 0:
            self._rebalance(terms)
        total, terms = self._combine(terms)
        total.backward()
        if self.s.clip_grad is not None:
            nn.utils.clip_grad_norm_(self.module.parameters(), self.s.clip_grad)
        optimizer.step()
        if self.ema is not None:
            self.ema.update_parameters(self.module)
        return {"loss": total.detach(), **{k: v.detach() for k, v in terms.items()}}

    def _lbfgs_step(self, optimizer, batch) -> dict:
        """One quasi-Newton iteration (L-BFGS, SSBFGS, SSBroyden); records the loss where it
        starts (not a line-search trial)."""
        record = {}

        def closure():
            optimizer.zero_grad(set_to_none=True)
            total, terms = self._loss(batch)
            total.backward()
            if not record:
                record.update(loss=total.detach(), **{k: v.detach() for k, v in terms.items()})
            return total

        optimizer.step(closure)
        return dict(record)

    def _check_gauss_newton(
        self, what: str = "train.optimizer engd takes Gauss–Newton steps on"
    ) -> None:
        """``engd`` (and the spectrum diagnostic) need a loss that is a sum of squares or a quadratic
        energy (``Solver.least_squares``, ``energy_gram``)."""
        if not getattr(self.solver, "gauss_newton", False):
            from .solvers.base import defined_solvers

            fit = gauss_newton_solvers(defined_solvers())
            raise ConfigError(
                f"{what} a loss that is a sum of squares or a quadratic energy; the loss of "
                f"method '{self.solver.name}' is neither. Methods that take it: "
                f"{', '.join(fit)}."
                + (
                    f" Train {self.solver.name} with adam or lbfgs."
                    if what.startswith("train.optimizer")
                    else ""
                )
            )
        if not what.startswith("train.optimizer"):
            return
        if self.s.balance != "none":
            raise ConfigError(
                "train.balance adapts the weights at first-order steps; a run with an engd "
                "phase weights its terms as configured: set train.balance: none."
            )
        if hasattr(self.solver, "check_gauss_newton"):
            self.solver.check_gauss_newton()

    def _gauss_newton_step(self, optimizer, batch) -> dict:
        """One damped Gauss–Newton step on Σ_k w_k λ_k L_k (a least-squares loss), or one
        energy natural gradient step (an energy, ``energy_gram``); ``stalled`` when the line
        search found no decrease (the weights are then unchanged)."""
        balance = self.balance or {}

        def weight(k: str) -> float:
            return self.weights.get(k, 1.0) * balance.get(k, 1.0)

        rows = curvature_rows(self.solver, self.model, batch, weight)
        if hasattr(self.solver, "energy_gram"):  # an energy: its natural gradient
            return optimizer.step_energy(rows, lambda: self._loss(batch))
        return optimizer.step(rows)

    def _stall(self, end: int, bar) -> None:
        """A Gauss–Newton phase whose line search found no decrease ends here: its remaining
        steps are skipped (recorded in the history as ``stall_step``), the weights kept."""
        self.history["stall_step"].append(self.step + 1)
        if self.progress:
            print(
                f"engd: no step size decreased the loss at step {self.step + 1} (loss at its "
                "floor for this batch and precision); the phase ends here.",
                file=sys.stderr,
                flush=True,
            )
        bar.update(end - self.step - 1)
        self.step = end - 1
        self.stop_reason = "no_decrease"

    def _flush(self, pending, bar, elapsed) -> bool:
        """Move pending losses to the history; False if a loss or a weight is not finite."""
        keys = list(pending[0][1])
        values = torch.stack([torch.stack([t[k] for k in keys]) for _, t, _ in pending])
        weights_finite = torch.stack([p.isfinite().all() for p in self.module.parameters()]).all()
        values, weights_finite = values.cpu(), bool(weights_finite)  # one sync per flush
        steps = [(st, lr) for st, _, lr in pending]
        pending.clear()
        if not (weights_finite and torch.isfinite(values).all()):
            return False
        losses = values[:, 0]
        if self._scale is None:  # the first flush, or the first after a resume
            prior = self.history.get("loss") or [float(losses[0])]
            self._scale, self._best = abs(prior[0]), min(prior)
        if float(losses.max()) > DIVERGENCE * max(self._scale, abs(self._best), 1e-30):
            return False
        self._best = min(self._best, float(losses.min()))
        for i, (st, lr) in enumerate(steps):
            self.history["step"].append(st)
            for j, k in enumerate(keys):
                self.history[k if k == "loss" else f"loss.{k}"].append(float(values[i, j]))
            self.history["lr"].append(lr)
            if self.monitor is not None:
                terms = {
                    k if k == "loss" else f"loss.{k}": float(values[i, j])
                    for j, k in enumerate(keys)
                }
                self.monitor.scalars(st, {**terms, "lr": lr})
        self.history["time"].extend([elapsed] * len(steps))
        bar.set_postfix(loss=f"{float(values[-1, 0]):.3e}", **self._last_error(), refresh=False)
        return True

    def _last_error(self) -> dict:
        return {"err": f"{self.history['error'][-1]:.2e}"} if self.history.get("error") else {}

    def _eval(self, bar, start, batch) -> bool:
        """Record the error and the solver's diagnostics (of the averaged weights, with
        ``train.ema``); True if the target error is met."""
        if self.ema is None:
            return self._eval_model(bar, start, batch)
        current = copy.deepcopy(self.module.state_dict())
        self.module.load_state_dict(self.ema.module.state_dict())
        try:
            return self._eval_model(bar, start, batch)
        finally:
            self.module.load_state_dict(current)

    def _eval_model(self, bar, start, batch) -> bool:
        """Record the evaluation at this step: ``eval_time`` (seconds since training began),
        ``eval_seconds`` (what the evaluation itself took, so that the training time to this
        point is eval_time − Σ eval_seconds) and ``eval_samples`` (samples drawn so far)."""
        began = time.perf_counter()
        diagnostics = self.solver.diagnostics(self.model, batch)
        if self.s.diagnostics:
            from .analysis import diagnostics as measured

            diagnostics.update(measured(self.s.diagnostics, self.solver, self.model, batch))
        if self.evaluate is None and not diagnostics:
            return False
        self.history["eval_step"].append(self.step)
        self.history["eval_samples"].append(self.samples)
        for k, v in diagnostics.items():
            self.history[k].append(v)
        if self.evaluate is not None:
            self.history["error"].append(self.evaluate())
        now = time.perf_counter()
        self.history["eval_time"].append(now - start)
        self.history["eval_seconds"].append(now - began)
        if self.monitor is not None:
            error = {"error": self.history["error"][-1]} if self.evaluate is not None else {}
            self.monitor.scalars(self.step, {**diagnostics, **error})
        if self.evaluate is None:
            return False
        err = self.history["error"][-1]
        loss = f"{self.history['loss'][-1]:.3e}" if self.history.get("loss") else "-"
        bar.set_postfix(loss=loss, **self._last_error())
        if self._lines:
            print(
                f"step {self.step}/{self._total}  loss {loss}  error {err:.3e}  "
                f"{time.perf_counter() - start:.1f} s",
                file=sys.stderr,
                flush=True,
            )
        if self.s.target_error is not None and err <= self.s.target_error:
            self.stop_reason = "target_error"
            return True
        return False

    # --- NaN guard -------------------------------------------------------------------
    def _snapshot(self, optimizer, scheduler) -> dict:
        return copy.deepcopy(
            {
                "model": self.module.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict() if scheduler else None,
                "ema": self.ema.state_dict() if self.ema is not None else None,
            }
        )

    def _restore(self, good, optimizer, scheduler) -> None:
        self.nan_restarts += 1
        if self.nan_restarts > self.s.max_nan_restarts:
            raise TrainingError(
                f"the loss became NaN or infinite, or diverged ({DIVERGENCE:g} times above its "
                f"first or best value), {self.nan_restarts} times (last at step {self.step}), "
                "even after halving the learning rate each time; lower train.lr, "
                "set train.clip_grad, or check the problem's data for non-finite values."
            )
        self.module.load_state_dict(good["model"])
        optimizer.load_state_dict(good["optimizer"])
        if scheduler is not None:
            scheduler.load_state_dict(good["scheduler"])
        if self.ema is not None:
            self.ema.load_state_dict(good["ema"])
        for group in optimizer.param_groups:
            group["lr"] *= 0.5
        if scheduler is not None:
            scheduler.base_lrs = [b * 0.5 for b in scheduler.base_lrs]
        self.history["nan_restart_step"].append(self.step)


def balanced_weights(norms: dict[str, Tensor]) -> dict[str, float]:
    """λ̂_k = Σ_j g_j / g_k from the gradient norms g (a term whose gradient vanishes keeps
    weight 1: nothing to balance)."""
    total = float(sum(norms.values()))
    return {k: total / float(g) if float(g) > 0 else 1.0 for k, g in norms.items()}
