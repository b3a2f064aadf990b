"""Networks: plain ``torch.nn.Module``s mapping points (n, d) to outputs (n, k).

Each module here also implements ``forward_jet`` so that the forward-mode derivative engine
can push value, first and second directional derivatives through it layer by layer.

By role:

- ``activations``: σ, σ', σ'' in closed form (``ACTIVATIONS``) and the ``Activation`` module;
- ``init``: weight initialisations (``INITS``), drawn from an explicit generator;
- ``base``: ``Network``, the capabilities a network declares (``has_readout``,
  ``zero_output_``), asked of the network rather than found by its type;
- ``inputs``: the box-to-[−1, 1] ``InputMap``, ``FourierFeatures``, ``PeriodicEmbedding``,
  ``Projection``;
- ``bodies``: ``MLP``, ``ResidualMLP``, ``DeepSets`` (with ``chebyshev``);
- ``outputs``: ``DirichletTransform`` (hard Dirichlet conditions), ``OutputAffine``;
- ``wrappers``: the stages a config lists under ``net.wrap`` (``WRAPPERS``: ``periodic``,
  ``additive``, ``bottleneck``, ``fourier``), each one pydantic model that builds its stage;
- ``compose``: ``Chain`` and ``Additive``, the modules that compose others;
- ``builder``: ``build_network``, the network a run config describes: wrappers around a body
  (``NETWORKS``: the bodies by name).

The jet algebra of separable maps the bodies use lives with the derivative engine
(``pinnlab.derivatives.jets.coordinatewise_jet``).
"""

from __future__ import annotations

from .activations import ACTIVATIONS, Activation, activation
from .base import Network, has_readout, periodic_columns
from .bodies import MLP, DeepSets, ResidualMLP
from .builder import NETWORKS, build_network
from .chebyshev import chebyshev
from .compose import Additive, Chain
from .init import INITS
from .inputs import FourierFeatures, InputMap, PeriodicEmbedding, Projection
from .outputs import DirichletTransform, OutputAffine
from .wrappers import WRAPPERS, AdditivePart, Bottleneck, Fourier, Periodic, Site, Wrapper

__all__ = [
    "ACTIVATIONS",
    "INITS",
    "MLP",
    "NETWORKS",
    "WRAPPERS",
    "Activation",
    "Additive",
    "AdditivePart",
    "Bottleneck",
    "Chain",
    "DeepSets",
    "DirichletTransform",
    "Fourier",
    "FourierFeatures",
    "InputMap",
    "Network",
    "OutputAffine",
    "Periodic",
    "PeriodicEmbedding",
    "Projection",
    "ResidualMLP",
    "Site",
    "Wrapper",
    "activation",
    "build_network",
    "chebyshev",
    "has_readout",
    "periodic_columns",
]
