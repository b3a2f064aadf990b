"""Wrappers: the stages a config puts between a network's input and its body (``net.wrap``).

A wrapper is a pydantic model (its fields are its settings, validated where configs enter)
with one method, ``Wrapper.build``, that builds its stage around the rest of the network.
The config lists them by name in the order they act, from the input inward:

    net:
      wrap:
        periodic: {modes: 2}          # exact periodicity in the problem's Periodic column
        additive: {units: 16}         # + Σᵢ hᵢ(xᵢ)
        bottleneck: {rank: 8}         # u = N(P x)
        fourier: {features: 32, scale: 1.0}

A new wrapper is one subclass with a ``name``; the wrapper registry
(``pinnlab.registry.wrappers``) finds it (pinnlab's, entry points ``pinnlab.wrappers``,
subclasses in the catalogue folders). ``None`` in place of a wrapper's settings leaves it out
(``--set net.wrap.fourier=null``, or a study level).
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import Tensor, nn

from ..errors import ConfigError
from .compose import Additive, Chain
from .inputs import FourierFeatures, InputMap, PeriodicEmbedding, Projection


@dataclass(frozen=True)
class Site:
    """Where a stage is built: what it may use beyond its own settings.

    ``generator`` draws every initial weight; ``input_map`` maps the problem's bounding box to
    [−1, 1]^D (folded into the first affine map that sees raw inputs; None past it); ``raw``:
    the stage sees the problem's own input columns (not an embedding of them); ``outer``: the
    names of the wrappers applied before this one; ``periodic``: the (column, low, high) of
    each Periodic condition of the problem (what ``Periodic`` embeds); ``source_gradients``:
    the gradients of the equation's data in the inputs, (m, D), where the solver has them
    (``Bottleneck`` with ``basis: source``); ``trained``: built to receive trained weights
    (a saved solution), so nothing is fitted to data; ``activation``: the body's, for the
    stages' own units.
    """

    generator: torch.Generator
    input_map: InputMap | None = None
    raw: bool = True
    outer: tuple[str, ...] = ()
    periodic: tuple[tuple[int, float, float], ...] = ()
    source_gradients: Callable[[], Tensor] | None = None
    trained: bool = False
    activation: str | type = "tanh"

    def inner(self, name: str, *, raw: bool = False) -> Site:
        """The site of the stages inside wrapper ``name`` (the input map is used up unless
        they see the same raw input)."""
        return dataclasses.replace(
            self,
            input_map=self.input_map if raw else None,
            raw=raw and self.raw,
            outer=(*self.outer, name),
        )


#: Builds the rest of the network: (input columns, site) -> module.
Inner = Callable[[int, Site], nn.Module]


class Wrapper(BaseModel):
    """A stage between the input and the body; its fields are its settings."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    #: The key under ``net.wrap``; empty for an abstract wrapper.
    name: ClassVar[str] = ""

    def build(self, in_dim: int, out_dim: int, inner: Inner, site: Site) -> nn.Module:
        """The stage around ``inner(columns, site)`` for inputs of ``in_dim`` columns."""
        raise NotImplementedError

    def key(self) -> str:
        """Its config key, for messages."""
        return f"net.wrap.{self.name}"

    @classmethod
    def example(cls) -> Wrapper:
        """A small instance, for the conformance tests that build every registered wrapper:
        each required setting 2 (a wrapper whose settings that does not fit overrides this)."""
        return cls.model_validate({k: 2 for k, f in cls.model_fields.items() if f.is_required()})


class Fourier(Wrapper):
    """Random Fourier features γ(x) = [cos 2πBx, sin 2πBx], B ~ N(0, σ²) (m × D), before the
    rest (``pinnlab.networks.FourierFeatures``; Tancik et al. 2020)."""

    name = "fourier"
    features: int = Field(ge=1, description="m, the number of frequencies")
    scale: float = Field(1.0, gt=0, description="σ, the frequencies' standard deviation")

    def build(self, in_dim, out_dim, inner, site):
        ff = FourierFeatures(
            in_dim, self.features, self.scale, generator=site.generator, input_map=site.input_map
        )
        return Chain(ff, inner(ff.out_dim, site.inner(self.name)))


class Periodic(Wrapper):
    """Exact periodicity in the column of the problem's one Periodic condition: x_a replaced by
    cos kω(x_a − low), sin kω(x_a − low), k = 1 … K (``pinnlab.networks.PeriodicEmbedding``).
    The condition is then imposed, not penalised. It must act first: a stage before it would
    see x_a itself."""

    name = "periodic"
    modes: int = Field(ge=1, description="K, the harmonics of the embedding")

    def build(self, in_dim, out_dim, inner, site):
        if site.outer:
            raise ConfigError(
                f"{self.key()} must come first in net.wrap (it follows {', '.join(site.outer)}, "
                "which would see the periodic coordinate itself)."
            )
        if len(site.periodic) != 1:
            raise ConfigError(
                f"{self.key()}: the embedding makes one Periodic condition hold, and the "
                f"problem with this method has {len(site.periodic)}; remove {self.key()}."
            )
        column, low, high = site.periodic[0]
        embed = PeriodicEmbedding(in_dim, column, low, high, self.modes, input_map=site.input_map)
        return Chain(embed, inner(embed.out_dim, site.inner(self.name)))


class AdditivePart(Wrapper):
    """u = N(x) + Σᵢ hᵢ(xᵢ), one K-unit network per input coordinate beside the rest
    (``pinnlab.networks.Additive``). N sees the same input."""

    name = "additive"
    units: int = Field(ge=1, description="K, the hidden units of each hᵢ")

    def build(self, in_dim, out_dim, inner, site):
        net = inner(in_dim, site.inner(self.name, raw=True))
        return Additive(
            net,
            in_dim,
            out_dim,
            self.units,
            site.activation,
            generator=site.generator,
            input_map=site.input_map,
        )


class Bottleneck(Wrapper):
    """u = N(P x), P of rank r (``pinnlab.networks.Projection``): rows ``learned`` from
    small random ones, or fixed to the ``source``'s principal gradient directions (the
    PINN's residual of u ≡ 0; ``pinnlab.networks.Projection.fix_to``)."""

    name = "bottleneck"
    rank: int = Field(ge=1, description="r, the coordinates N sees")
    basis: Literal["learned", "source"] = "learned"

    def build(self, in_dim, out_dim, inner, site):
        proj = Projection(in_dim, self.rank, generator=site.generator, input_map=site.input_map)
        if self.basis == "source" and not site.trained:
            self._fix(proj, site)
        return Chain(proj, inner(self.rank, site.inner(self.name)))

    def _fix(self, proj: Projection, site: Site) -> None:
        where = f"{self.key()}.basis=source"
        if not site.raw:
            raise ConfigError(
                f"{where}: after {', '.join(site.outer)} the bottleneck sees an embedding, not "
                "the coordinates the source's gradients are taken in; put it first or use "
                "basis=learned."
            )
        if site.source_gradients is None:
            raise ConfigError(
                f"{where}: this method has no strong-form residual to take the source from; "
                "use method pinn, or basis=learned."
            )
        try:
            energy = proj.fix_to(site.source_gradients())
        except ValueError as e:
            raise ConfigError(
                f"{where}: {e} (the residual of u ≡ 0 does not vary in the interior); use "
                "basis=learned."
            ) from None
        if energy < 0.99:
            warnings.warn(
                f"{where}: the {self.rank} fixed directions carry only {energy:.1%} of the "
                "source's gradient energy, so the solution is unlikely to be a function of them "
                f"alone; raise {self.key()}.rank or use basis=learned.",
                RuntimeWarning,
                stacklevel=2,
            )


#: pinnlab's wrappers by name (the registry adds users').
WRAPPERS: dict[str, type[Wrapper]] = {
    w.name: w for w in (Periodic, AdditivePart, Bottleneck, Fourier)
}
