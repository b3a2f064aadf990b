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
- ``compose``: ``Chain``, ``Additive`` and ``build_network``, the network a run config
  describes (``NETWORKS``: the bodies by name).

The jet algebra of separable maps the bodies use lives with the derivative engine
(:func:`pinnlab.derivatives.jets.coordinatewise_jet`).
"""

from __future__ import annotations

from .activations import ACTIVATIONS, Activation
from .base import Network, has_readout, periodic_columns
from .bodies import MLP, DeepSets, ResidualMLP
from .chebyshev import chebyshev
from .compose import NETWORKS, Additive, Chain, build_network
from .init import INITS
from .inputs import FourierFeatures, InputMap, PeriodicEmbedding, Projection
from .outputs import DirichletTransform, OutputAffine

__all__ = [
    "ACTIVATIONS",
    "INITS",
    "MLP",
    "NETWORKS",
    "Activation",
    "Additive",
    "Chain",
    "DeepSets",
    "DirichletTransform",
    "FourierFeatures",
    "InputMap",
    "Network",
    "OutputAffine",
    "PeriodicEmbedding",
    "Projection",
    "ResidualMLP",
    "build_network",
    "chebyshev",
    "has_readout",
    "periodic_columns",
]
