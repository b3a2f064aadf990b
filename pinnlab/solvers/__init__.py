"""Solvers, by method name."""

from .base import Model, NetworkSpec, Solver, check_form
from .deep_bsde import DeepBSDE
from .deep_ritz import DeepRitz
from .feynman_kac import FeynmanKac
from .pinn import PINN
from .vmc import VMC

SOLVERS: dict[str, type[Solver]] = {
    "pinn": PINN,
    "deep-ritz": DeepRitz,
    "feynman-kac": FeynmanKac,
    "deep-bsde": DeepBSDE,
    "vmc": VMC,
}

__all__ = [
    "PINN",
    "SOLVERS",
    "VMC",
    "DeepBSDE",
    "DeepRitz",
    "FeynmanKac",
    "Model",
    "NetworkSpec",
    "Solver",
    "check_form",
]
