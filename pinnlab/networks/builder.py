"""The network a run config describes: the ``net.wrap`` stages around a body."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

from ..errors import ConfigError, unknown_name
from .activations import Activation
from .base import Network
from .bodies import MLP, DeepSets, ResidualMLP
from .inputs import InputMap
from .wrappers import Site, Wrapper

#: pinnlab's bodies by name (``net.kind``; the registry adds users').
NETWORKS: dict[str, type[Network]] = {cls.name: cls for cls in (MLP, ResidualMLP, DeepSets)}


def build_network(
    in_dim: int,
    out_dim: int,
    *,
    kind: str | type[Network] = "mlp",
    width: int = 64,
    depth: int = 4,
    activation: str | type[Activation] = "tanh",
    init: str = "glorot-normal",
    generator: torch.Generator,
    input_box: tuple[Tensor, Tensor] | None = None,
    wrap: Sequence[Wrapper] = (),
    periodic: Sequence[tuple[int, float, float]] = (),
    source_gradients: Callable[[], Tensor] | None = None,
    trained: bool = False,
) -> nn.Module:
    """The network a run config describes: the ``wrap`` stages in order from the input, then a
    body (``kind``: a name of ``NETWORKS`` or a ``Network`` class taking
    ``(in_dim, out_dim, width, depth, activation, *, generator, input_map, init)``).

    Weights are initialised (``init``: one of INITS; zero biases) from ``generator`` only, in
    the order the stages are built. With ``input_box`` = (low, high), inputs are first mapped
    from that box to [−1, 1]^D (``InputMap``, folded into the first affine map that sees
    them). ``periodic`` (the problem's Periodic conditions as (column, low, high)),
    ``source_gradients`` and ``trained`` are what the stages may need
    (``pinnlab.networks.wrappers.Site``).
    """
    body = kind if isinstance(kind, type) else NETWORKS.get(kind)
    if body is None:
        raise unknown_name("network", kind, NETWORKS)
    stages = list(wrap)
    if stages and not body.wrappable:
        named = ", ".join(w.key() for w in stages)
        raise ConfigError(
            f"net.kind={body.name} applies one function to every input coordinate itself; it "
            f"does not combine with {named} (which mix or embed the coordinates first)."
        )

    def rest(i: int, columns: int, site: Site) -> nn.Module:
        if i == len(stages):
            return body(
                columns,
                out_dim,
                width,
                depth,
                activation,
                generator=generator,
                input_map=site.input_map,
                init=init,
            )
        return stages[i].build(columns, out_dim, lambda c, s: rest(i + 1, c, s), site)

    site = Site(
        generator,
        InputMap.of(input_box),
        periodic=tuple(periodic),
        source_gradients=source_gradients,
        trained=trained,
        activation=activation,
    )
    return rest(0, in_dim, site)
