"""Bridges to other PINN libraries, for side-by-side comparisons (``benchmarks/``).

Each bridge imports its library lazily, inside its functions: importing ``pinnlab`` or
``pinnlab.interop`` never imports a peer library.
"""

from .deepxde import DeepXDEDerivatives, DeepXDEModel, import_deepxde, to_deepxde

__all__ = ["DeepXDEDerivatives", "DeepXDEModel", "import_deepxde", "to_deepxde"]
