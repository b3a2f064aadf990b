"""Solvers, by method name."""

from .base import Solver, check_form
from .deep_ritz import DeepRitz
from .pinn import PINN

SOLVERS: dict[str, type[Solver]] = {"pinn": PINN, "deep-ritz": DeepRitz}

__all__ = ["PINN", "SOLVERS", "DeepRitz", "Solver", "check_form"]
