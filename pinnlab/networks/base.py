"""What a pinnlab network declares it offers, asked of the network instead of sniffed by type."""

from __future__ import annotations

from typing import ClassVar

from torch import Tensor, nn


class Network(nn.Module):
    """A pinnlab network (n, D) → (n, k) and the capabilities it declares.

    Each network answers for itself; a wrapper (``pinnlab.networks.Chain``,
    ``pinnlab.networks.OutputAffine``, ``pinnlab.networks.DirichletTransform``,
    ``pinnlab.networks.Additive``) answers from what it wraps. By default a network
    offers neither capability:

    - ``has_readout()``: whether u = W φ(x) + b for features φ = ``readout(x)`` (n, p) it
      exposes, with (W, b) replaced by ``set_readout(W, b)`` — what a least-squares fit of the
      output layer (``pinnlab.training.fit_readout``) needs;
    - ``zero_output_()``: set the output layer (and any other output coefficients) to zero,
      so that the network's output is u ≡ 0 — a wrapper's output is then what it makes of 0.

    A body that a config can name (``net.kind``) has a ``name`` and takes
    ``(in_dim, out_dim, width, depth, activation, *, generator, input_map, init)``; the
    network registry (``pinnlab.registry.networks``) finds it. ``wrappable = False`` where
    no ``net.wrap`` stage may precede it; ``invariant = True`` where its output is the same at
    every permutation of its inputs (then only exchangeable problems may use it).
    """

    #: The body's name in configs (``net.kind``); empty for a network that is not a body.
    name: ClassVar[str] = ""
    #: Whether ``net.wrap`` stages (embeddings, projections) may come before this body.
    wrappable: ClassVar[bool] = True
    #: Whether the output is invariant under permutations of the input coordinates.
    invariant: ClassVar[bool] = False

    def has_readout(self) -> bool:
        """Whether ``readout`` and ``set_readout`` apply (see the class docstring)."""
        return False

    def readout(self, x: Tensor) -> Tensor:
        """The features φ(x) (n, p) the output is an affine function of."""
        raise TypeError(f"{type(self).__name__} has no readout: its output is not W φ(x) + b.")

    def set_readout(self, weight: Tensor, bias: Tensor) -> None:
        """Replace the output layer: u = weight · readout(x) + bias."""
        raise TypeError(f"{type(self).__name__} has no readout: its output is not W φ(x) + b.")

    def periodic_columns(self) -> frozenset[int]:
        """The input columns in which the network is exactly periodic by construction (an
        embedding: ``pinnlab.networks.PeriodicEmbedding``); none by default."""
        return frozenset()

    def zero_output_(self) -> Network:
        """Set the output layer to zero in place (u ≡ 0); returns the network."""
        raise TypeError(
            f"{type(self).__name__} has no output layer to set to zero: it is an input map or "
            "embedding, not the last part of a network."
        )


def periodic_columns(net: nn.Module) -> frozenset[int]:
    """The input columns ``net`` declares itself exactly periodic in
    (``Network.periodic_columns``); none for a module that does not declare it."""
    declared = getattr(net, "periodic_columns", None)
    return frozenset(declared()) if callable(declared) else frozenset()


def has_readout(net: nn.Module) -> bool:
    """Whether ``net`` ends in a linear map of features it exposes: u = W φ(x) + b with
    φ = ``net.readout(x)`` and (W, b) replaced by ``net.set_readout(W, b)`` — what a
    least-squares fit of the output layer (``pinnlab.training.fit_readout``) needs.
    Asks the network (``Network.has_readout``; wrappers such as a ``Chain`` or
    ``OutputAffine`` have one when what they wrap has); False for a module that does not
    declare it."""
    declared = getattr(net, "has_readout", None)
    return bool(declared()) if callable(declared) else False
