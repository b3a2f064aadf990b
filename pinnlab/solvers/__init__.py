"""Solvers, by method name."""

from .base import Solver, check_form
from .pinn import PINN

SOLVERS: dict[str, type[Solver]] = {"pinn": PINN}

__all__ = ["PINN", "SOLVERS", "Solver", "check_form"]
