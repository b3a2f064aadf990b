"""Run configurations, validated strictly where they enter (YAML files, ``--set``, kwargs).

Only ``pinnlab.run`` reads a config; everything below it takes explicit arguments.
An unknown key, a wrong type or an out-of-range value raises ``ConfigError`` naming the
dotted key, the value given and what is allowed (with a did-you-mean for names).
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, ClassVar, Literal

import pydantic
import yaml
from pydantic import BaseModel, ConfigDict, Field

from .errors import ConfigError, did_you_mean


class Section(BaseModel):
    """A config section: unknown keys are errors, values are validated on assignment."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ProblemSection(BaseModel):
    """``id`` plus the problem's own parameters (validated by the problem class)."""

    model_config = ConfigDict(extra="allow")
    id: str

    def params(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


#: The flat ``net.*`` keys of pinnlab ≤ 0.x that ``net.wrap`` replaces, in the order their
#: stages were built (from the input inward), with the wrapper and setting each one became.
_FLAT_NET_KEYS = {
    "periodic": ("periodic", "modes"),
    "additive": ("additive", "units"),
    "bottleneck": ("bottleneck", "rank"),
    "bottleneck_basis": ("bottleneck", "basis"),
    "fourier_features": ("fourier", "features"),
    "fourier_scale": ("fourier", "scale"),
}


def translate_net(net: Mapping[str, Any]) -> dict[str, Any]:
    """The ``net`` section with the flat keys of earlier versions (``fourier_features``,
    ``fourier_scale``, ``periodic``, ``additive``, ``bottleneck``, ``bottleneck_basis``)
    rewritten as ``net.wrap`` entries, with a FutureWarning naming the new keys: the one
    place old configs are translated. 0 (the old "off") adds no stage; an explicit
    ``net.wrap`` entry wins over a translated one."""
    old = {k: net[k] for k in _FLAT_NET_KEYS if k in net}
    if not old:
        return dict(net)
    owners = {"bottleneck_basis": "bottleneck", "fourier_scale": "fourier_features"}
    wrap: dict[str, dict[str, Any]] = {}
    for key, (name, setting) in _FLAT_NET_KEYS.items():
        # A setting of a stage that is off (0 or absent) had no effect, except a source basis,
        # which asks for a bottleneck (and is refused without its rank).
        active = old.get(owners.get(key, key)) or (
            key == "bottleneck_basis" and old.get(key) == "source"
        )
        if key in old and active:
            wrap.setdefault(name, {})[setting] = old[key]
    written = ", ".join(f"net.{k}={v!r}" for k, v in old.items())
    new = ", ".join(f"net.wrap.{n}.{k}={v!r}" for n, sub in wrap.items() for k, v in sub.items())
    warnings.warn(
        f"{written}: these net keys are deprecated; write {new or 'nothing (they were off)'} "
        "(docs/networks.md, net.wrap).",
        FutureWarning,
        stacklevel=2,
    )
    explicit = net.get("wrap") or {}
    out = {k: v for k, v in net.items() if k not in _FLAT_NET_KEYS}
    out["wrap"] = merge(wrap, explicit) if isinstance(explicit, Mapping) else explicit
    return out


class NetSection(Section):
    """The network: a body (``kind``, ``width``, ``depth``, ``activation``, ``init``) and the
    ``wrap`` stages before it, from the input inward (``pinnlab.networks.wrappers``)."""

    kind: str = Field("mlp", description="the body (networks registry: mlp, resmlp, deepsets)")
    width: int = Field(64, ge=1)
    depth: int = Field(4, ge=1)
    parameters: int | None = Field(
        None,
        ge=1,
        description="choose the width that gives the network about this many trained weights "
        "at its depth, input dimension and stages (depth against width at a fixed size, at "
        "every d); the chosen width is recorded in net.width",
    )
    activation: str = "tanh"
    init: str = Field("glorot-normal", description="weight initialisation (networks.INITS)")
    wrap: dict[str, dict[str, Any] | None] = Field(
        default_factory=dict,
        description="wrapper name -> its settings, in the order they act from the input "
        "(periodic, additive, bottleneck, fourier, or a registered one); null leaves one out",
    )
    hard_bc: bool = Field(False, description="impose Dirichlet data exactly (needs a lift)")
    normalize_input: bool = Field(
        True, description="map the domain's bounding box to [-1, 1]^D before the first layer"
    )

    @pydantic.model_validator(mode="before")
    @classmethod
    def _translate(cls, data: Any) -> Any:
        return translate_net(data) if isinstance(data, Mapping) else data


#: The optimizers of one training phase (``train.phases``).
PHASE_OPTIMIZERS = ("adam", "sgd", "lbfgs", "ssbfgs", "ssbroyden", "engd", "engd-kfac")


class EngdSection(Section):
    """The damped Gauss–Newton / energy natural gradient step (``pinnlab.gauss_newton``).

    A setting left null takes the default of the solver and line search that use it (and is
    refused where none of the run's Gauss–Newton phases would use it): null survives a dump of
    the config, so a saved or study run resolves it as the original did."""

    damping: float = Field(
        1e-6,
        gt=0,
        le=1,
        description="first Levenberg–Marquardt damping μ, relative to tr(JᵀJ)/p; it adapts",
    )
    line_search: Literal["grid", "backtracking", "auto"] | None = Field(
        None,
        description="grid: the best of η = 1, 1/2, …, 2^-grid; backtracking: the first that "
        "decreases the loss; auto (solver kfac only): step size and momentum from the exact "
        "Gauss–Newton model along the step and the last update (Martens & Grosse 2015); "
        "null: auto with solver kfac, grid otherwise",
    )
    grid: int | None = Field(
        None, ge=0, le=60, description="halvings K of the step-size grid (null: 12)"
    )
    max_matrix: int = Field(
        8192,
        ge=1,
        description="largest Gauss–Newton system formed, min(residual rows, weights); past it "
        "solver auto solves matrix-free by CG and solver cholesky refuses (the exact step's "
        "memory is 8·(size² + rows·weights) bytes); solver kfac keeps a Kronecker factor "
        "larger than this diagonal",
    )
    solver: Literal["auto", "cholesky", "cg", "kfac"] = Field(
        "auto",
        description="cholesky: form JᵀJ (or J Jᵀ) and factorise it; cg: matrix-free "
        "conjugate gradients on J v and Jᵀ u, Jacobi-preconditioned; kfac: Kronecker-factored "
        "curvature per layer (Dangel et al. 2024; what optimizer engd-kfac uses); auto: "
        "cholesky up to max_matrix, cg past it",
    )
    cg_steps: int | None = Field(
        None, ge=1, description="most CG iterations per solve (solver cg or auto; null: 100)"
    )
    cg_tol: float | None = Field(
        None,
        gt=0,
        lt=1,
        description="CG stops when |b − A x| ≤ cg_tol·|b| (solver cg or auto; null: 1e-8)",
    )
    kfac_ema: float | None = Field(
        None,
        ge=0,
        lt=1,
        description="solver kfac: weight of the previous steps' Kronecker factors in their "
        "moving average (0: this step's only; null: 0.95)",
    )

    #: the value a null setting takes (line_search: the solver's); a setting at this value
    #: is not refused where unused, so configs dumped before the nulls still validate
    FALLBACK: ClassVar[dict[str, Any]] = {
        "grid": 12,
        "cg_steps": 100,
        "cg_tol": 1e-8,
        "kfac_ema": 0.95,
        "line_search": "grid",
    }

    def solver_of(self, optimizer: str) -> str:
        """The solver a phase of ``optimizer`` (engd or engd-kfac) uses."""
        return "kfac" if optimizer == "engd-kfac" else self.solver

    def settings(self, optimizer: str) -> dict[str, Any]:
        """The keyword arguments of ``GaussNewton`` for a phase of ``optimizer``, nulls
        resolved."""
        out = {**self.model_dump(), "solver": self.solver_of(optimizer)}
        if out["line_search"] is None:
            out["line_search"] = "auto" if out["solver"] == "kfac" else "grid"
        for key, value in self.FALLBACK.items():
            out[key] = value if out[key] is None else out[key]
        return out

    def check_used(self, optimizers: set[str]) -> None:
        """Refuse a setting that no phase of ``optimizers`` (the run's engd / engd-kfac
        phases) would use, and a solver that optimizer engd-kfac contradicts."""
        given = sorted(
            k
            for k, f in type(self).model_fields.items()
            if getattr(self, k) not in (f.default, self.FALLBACK.get(k, f.default))
        )
        if not given:
            return
        if not optimizers:
            raise ValueError(
                f"train.engd ({', '.join(given)}) sets the Gauss–Newton steps, but no phase "
                "uses optimizer engd or engd-kfac: leave train.engd out"
            )
        if "engd-kfac" in optimizers and self.solver not in ("auto", "kfac"):
            raise ValueError(
                f"optimizer engd-kfac takes Kronecker-factored steps, but train.engd.solver is "
                f"{self.solver}: use optimizer engd with that solver, or leave "
                "train.engd.solver out"
            )
        resolved = [self.settings(kind) for kind in optimizers]
        solvers = {r["solver"] for r in resolved}
        searches = {r["line_search"] for r in resolved}
        needs = {
            "cg_steps": (solvers & {"auto", "cg"}, "solver cg or auto"),
            "cg_tol": (solvers & {"auto", "cg"}, "solver cg or auto"),
            "kfac_ema": (solvers & {"kfac"}, "solver kfac (optimizer engd-kfac)"),
            "grid": (searches & {"grid", "backtracking"}, "line_search grid or backtracking"),
        }
        for key in given:
            if key in needs and not needs[key][0]:
                raise ValueError(
                    f"train.engd.{key} is used only with {needs[key][1]}; this run's "
                    f"Gauss–Newton phases use solver {', '.join(sorted(solvers))} with "
                    f"line_search {', '.join(sorted(searches))}: leave {key} out"
                )


class PhaseSection(Section):
    """One phase of ``train.phases``: an optimizer for a number of steps."""

    optimizer: Literal[PHASE_OPTIMIZERS] = Field(description=", ".join(PHASE_OPTIMIZERS))
    steps: int = Field(ge=0, description="steps (iterations of the second-order methods)")
    lr: float | None = Field(None, gt=0, description="this phase's lr (default: train.lr)")
    dtype: Literal["float32", "float64"] | None = Field(
        None,
        description="this phase's precision (default: the run's dtype): the weights are cast "
        "at its start, and back to the run's dtype when training ends",
    )


#: The keys of the shorthand that ``train.phases`` replaces.
SHORTHAND = ("optimizer", "steps", "lbfgs_steps")


def layer_phases(lower: Mapping[str, Any], upper: Mapping[str, Any]) -> dict[str, Any]:
    """``lower`` without the train keys that ``upper`` replaces: ``train.phases`` in the upper
    layer replaces the shorthand below it (a recipe's ``optimizer: adam+lbfgs``), and the
    shorthand replaces phases below it."""
    train = upper.get("train")
    if not isinstance(train, Mapping) or not isinstance(lower.get("train"), Mapping):
        return dict(lower)
    replaced = (
        SHORTHAND if "phases" in train else ("phases",) if set(SHORTHAND) & set(train) else ()
    )
    return {**lower, "train": {k: v for k, v in lower["train"].items() if k not in replaced}}


class TrainSection(Section):
    optimizer: Literal[(*PHASE_OPTIMIZERS, "adam+lbfgs")] = Field(
        "adam",
        description="sgd: plain steps, for preconditioned gradients (vmc's natural "
        "gradient); ssbfgs, ssbroyden: self-scaled quasi-Newton (dense, ≤ 8192 weights); "
        "engd: damped Gauss–Newton / energy natural gradient (train.engd; docs/training.md); "
        "engd-kfac: engd with Kronecker-factored curvature (train.engd.solver kfac)",
    )
    phases: list[PhaseSection] | None = Field(
        None,
        description="phases in order, each {optimizer, steps, lr}: replaces optimizer, steps "
        "and lbfgs_steps (e.g. [{optimizer: adam, steps: 1000}, {optimizer: engd, steps: 100}])",
    )
    engd: EngdSection = Field(default_factory=EngdSection)
    steps: int = Field(2000, ge=0, description="Adam steps (L-BFGS iterations for 'lbfgs')")
    lbfgs_steps: int = Field(0, ge=0, description="L-BFGS iterations after Adam ('adam+lbfgs')")
    lr: float = Field(1e-3, gt=0)
    schedule: Literal["constant", "exponential", "cosine", "step"] = "constant"
    final_lr: float | None = Field(None, gt=0, description="last lr of exponential/cosine")
    decay_every: int = Field(1000, ge=1, description="'step' schedule period")
    gamma: float = Field(0.5, gt=0, le=1, description="'step' schedule factor")
    resample_every: int = Field(1, ge=0, description="fresh points every k Adam steps; 0 never")
    clip_grad: float | None = Field(None, gt=0, description="max global gradient norm")
    ema: float = Field(
        0.0,
        ge=0,
        lt=1,
        description="decay of an exponential moving average of the weights over the Adam/SGD "
        "steps (0: off); evaluations and the result use the average",
    )
    lbfgs_history: int = Field(50, ge=1)
    lbfgs_batches: int = Field(
        1,
        ge=1,
        description="L-BFGS and ENGD train on this many batches drawn at once (fixed sample)",
    )
    eval_every: int = Field(100, ge=1)
    diagnostics: list[Literal["spectrum", "bands", "features"]] = Field(
        default_factory=list,
        description="recorded at every evaluation (pinnlab.analysis): spectrum, the Gauss–"
        "Newton / NTK spectrum (spectrum.lambda_max, lambda_min, condition, effective_rank, "
        "trace); bands, the relative error per octave of wave number on a grid (d ≤ 2: "
        "spectral bias); features, the principal angles between the network's and the "
        "solution's gradient subspaces (features.angle_max, cos2_mean)",
    )
    eval_geometric: bool = Field(
        False,
        description="also evaluate at steps 1, 2, 3, 4, 6, 8, 11, 16, … (⌊2^(k/2)⌉) below "
        "eval_every: the step an early target is reached to within a factor √2 (target mode)",
    )
    log_every: int = Field(10, ge=1, description="steps between loss syncs and NaN checks")
    checkpoint_every: int = Field(500, ge=0, description="0 disables periodic checkpoints")
    target_error: float | None = Field(None, gt=0, description="stop when the metric ≤ this")
    time_budget: float | None = Field(None, gt=0, description="stop after this many seconds")
    max_nan_restarts: int = Field(5, ge=0)
    balance: Literal["none", "grad-norm"] = Field(
        "none",
        description="grad-norm: adapt each loss term's weight to Σ_j |∇L_j| / |∇L_k| every "
        "balance_every first-order steps (Wang, Teng & Perdikaris 2021; docs/training.md)",
    )
    balance_every: int = Field(100, ge=1, description="first-order steps between re-weightings")
    balance_decay: float = Field(
        0.9, ge=0, lt=1, description="moving-average decay of the adapted weights"
    )
    log: Literal["none", "tensorboard"] = Field(
        "none",
        description="tensorboard: every loss term, the lr, the error and the unknowns in a "
        "TensorBoard log (train.log_dir; docs/training.md)",
    )
    log_dir: str | None = Field(
        None, description="the TensorBoard folder (default: <out>.tb, else runs/tensorboard/<run>)"
    )
    compile: bool = Field(
        False,
        description="run the solver's loss under torch.compile (fused derivative jets; PINN "
        "steps 1.3–2.5× faster on CPU after 10–40 s of compilation; docs/training.md)",
    )

    @pydantic.model_validator(mode="before")
    @classmethod
    def _spectrum_key(cls, data: Any) -> Any:
        """``spectrum: true`` (the first form of the key) is ``diagnostics: [spectrum]``."""
        if isinstance(data, Mapping) and "spectrum" in data:
            data = dict(data)
            if data.pop("spectrum"):
                data["diagnostics"] = [*data.get("diagnostics", []), "spectrum"]
        return data

    @pydantic.model_validator(mode="after")
    def _phases_alone(self) -> TrainSection:
        if len(set(self.diagnostics)) != len(self.diagnostics):
            raise ValueError(f"train.diagnostics repeats a name: {self.diagnostics}")
        clash = set(SHORTHAND) & self.model_fields_set
        if self.phases is not None and clash:
            raise ValueError(
                f"train.phases replaces {', '.join(sorted(clash))}: give one or the other"
            )
        if self.phases is not None and not self.phases:
            raise ValueError("train.phases is empty: give at least one phase")
        self.engd.check_used({kind for kind, *_ in self.phase_list() if kind.startswith("engd")})
        return self

    @pydantic.model_serializer(mode="wrap")
    def _dump(self, handler) -> dict[str, Any]:
        """With ``phases``, the shorthand keys it replaces are left out (a dump validates)."""
        out = handler(self)
        if self.phases is not None:
            for key in SHORTHAND:
                out.pop(key, None)
        return out

    def phase_list(self) -> list[tuple[str, int, float, str | None]]:
        """(optimizer, steps, lr, dtype) of each phase, from ``phases`` or the shorthand
        ``optimizer`` (adam+lbfgs: ``steps`` of Adam, then ``lbfgs_steps`` of L-BFGS); dtype
        None is the run's."""
        if self.phases is not None:
            return [(p.optimizer, p.steps, p.lr or self.lr, p.dtype) for p in self.phases]
        if self.optimizer == "adam+lbfgs":
            return [
                ("adam", self.steps, self.lr, None),
                ("lbfgs", self.lbfgs_steps, self.lr, None),
            ]
        return [(self.optimizer, self.steps, self.lr, None)]


class DataSection(Section):
    file: str | None = Field(
        None,
        description="observations (.npz, .h5 or .csv; layouts in docs/inverse.md) fitted in "
        "place of those the problem declares",
    )
    holdout: float = Field(
        0.0, ge=0, lt=1, description="fraction of the observations held out for validation"
    )
    resample: int = Field(
        0,
        ge=0,
        description="k ≥ 1: fit replicate k of the observations (y + noise_std·ξ, or rows drawn "
        "with replacement where the noise is unknown): an ensemble member (docs/inverse.md)",
    )


class RunConfig(Section):
    problem: ProblemSection
    method: str = "pinn"
    solver: dict[str, Any] = Field(default_factory=dict, description="the solver's own settings")
    net: NetSection = Field(default_factory=NetSection)
    train: TrainSection = Field(default_factory=TrainSection)
    data: DataSection = Field(default_factory=DataSection)
    metric: str = Field("auto", description="the error the run tracks; auto: see metrics.py")
    seed: int = Field(0, ge=0)
    device: str = Field("auto", pattern=r"^(auto|cpu|cuda(:\d+)?)$")
    dtype: Literal["float32", "float64"] = "float32"


def format_validation_error(
    error: pydantic.ValidationError, model: type[BaseModel], prefix: str = ""
) -> str:
    """One message naming each bad key, what was given and what is allowed."""
    lines = []
    for e in error.errors():
        key = ".".join(str(p) for p in ((prefix,) if prefix else ()) + tuple(e["loc"]))
        if e["type"] == "extra_forbidden":
            allowed = _allowed_keys(model, e["loc"][:-1])
            parent = key.rsplit(".", 1)[0] + "." if "." in key else ""
            suggestion = did_you_mean(str(e["loc"][-1]), allowed).replace("'", f"'{parent}", 1)
            lines.append(f"unknown key '{key}'.{suggestion} Allowed here: {', '.join(allowed)}.")
        elif e["type"] == "missing":
            lines.append(f"missing key '{key}'.")
        else:
            lines.append(f"'{key}': {e['msg']}; got {e.get('input')!r}.")
    return "invalid config: " + " ".join(lines)


def _allowed_keys(model: type[BaseModel], loc: Iterable) -> list[str]:
    for part in loc:
        field = model.model_fields.get(str(part))
        annotation = getattr(field, "annotation", None)
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return []
        model = annotation
    return list(model.model_fields)


def validate(model: type[BaseModel], data: Mapping[str, Any], prefix: str = ""):
    """``model.model_validate(data)`` with pinnlab's error message."""
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as e:
        raise ConfigError(format_validation_error(e, model, prefix)) from None


def read_yaml(
    path: str | Path, _seen: tuple[Path, ...] = (), *, extends: bool = True
) -> dict[str, Any]:
    """A YAML mapping from ``path``; with ``extends``, a ``base:`` key names a file it extends
    (a path relative to ``path``).

    A top-level ``recipe:`` mapping (a shipped recipe's declaration of the dimensions it
    serves, read by ``pinnlab.recipes``) is the file's own and no part of the config: it is
    removed here, so neither a file extending it nor ``--config`` sees it."""
    path = Path(path)
    if path.resolve() in _seen:
        chain = " -> ".join(str(p) for p in (*_seen, path.resolve()))
        raise ConfigError(f"config files extend each other in a cycle: {chain}.")
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"config file '{path}' does not exist.") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"config file '{path}' is not valid YAML: {e}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file '{path}' must hold a mapping, got {type(data).__name__}.")
    data.pop("recipe", None)
    base = data.pop("base", None) if extends else None
    if base is not None:
        data = merge(
            layer_phases(read_yaml(path.parent / base, (*_seen, path.resolve())), data), data
        )
    return data


def merge(base: Mapping[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """Recursive dict merge; values of ``update`` win."""
    out = copy.deepcopy(dict(base))
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def dotted(key: str, value: Any) -> dict[str, Any]:
    """'train.steps', 20 -> {'train': {'steps': 20}}: the one reader of dotted keys."""
    out: Any = value
    for part in reversed(key.strip().split(".")):
        if not part:
            raise ConfigError(f"key '{key}' has an empty part.")
        out = {part: out}
    return out


def overlay(
    params: Mapping[str, Any] | None = None,
    overrides: Mapping[str, Any] | None = None,
    sets: Iterable[str] = (),
) -> dict[str, Any]:
    """The layers a caller puts over a base config, merged in order: problem ``params``,
    nested ``overrides``, ``--set`` assignments (later ones win)."""
    data = merge({"problem": dict(params or {})}, overrides or {})
    for assignment in sets:
        data = merge(data, parse_set(assignment))
    return data


def parse_set(assignment: str) -> dict[str, Any]:
    """'train.steps=20' -> {'train': {'steps': 20}} (the value is parsed as YAML)."""
    if "=" not in assignment:
        raise ConfigError(f"--set expects KEY=VALUE (e.g. train.steps=200), got '{assignment}'.")
    key, raw = assignment.split("=", 1)
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError:
        value = raw
    return dotted(key, value)
