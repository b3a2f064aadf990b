"""pinnlab: solve partial differential equations with neural networks, and study why that works.

Public API (everything a catalogue problem file or a user script needs):

    import pinnlab as pl
    p = pl.problem("poisson-sine", dim=10)
    sol = pl.solve(p, method="pinn", train={"steps": 2000})
    sol.metrics; sol.save("run.h5"); pl.load("run.h5")(points)
"""

from . import schrodinger
from .config import RunConfig
from .derivatives import Derivatives, Jet
from .domains import CSG, Ball, Box, Domain, Part, Slit, SpaceTime, where
from .errors import (
    AccuracyWarning,
    ConfigError,
    FormError,
    IdentifiabilityWarning,
    ParameterError,
    PinnlabError,
    ShapeError,
    SolutionFileError,
    TrainingError,
    UnknownNameError,
)
from .observations import Observations
from .problem import (
    FORMS,
    Condition,
    Dirichlet,
    EnergyForm,
    HamiltonianForm,
    Neumann,
    Periodic,
    Problem,
    Reference,
    Robin,
    StochasticForm,
    StrongForm,
)
from .registry import Catalogue, catalogue, problem
from .run import make_config, run, solve
from .shapes import Polygon
from .solution import Solution, load
from .solvers import Model, NetworkSpec, Solver
from .unknowns import Unknown, UnknownField
from .version import __version__

__all__ = [
    "CSG",
    "FORMS",
    "AccuracyWarning",
    "Ball",
    "Box",
    "Catalogue",
    "Condition",
    "ConfigError",
    "Derivatives",
    "Dirichlet",
    "Domain",
    "EnergyForm",
    "FormError",
    "HamiltonianForm",
    "IdentifiabilityWarning",
    "Jet",
    "Model",
    "NetworkSpec",
    "Neumann",
    "Observations",
    "ParameterError",
    "Part",
    "Periodic",
    "PinnlabError",
    "Polygon",
    "Problem",
    "Reference",
    "Robin",
    "RunConfig",
    "ShapeError",
    "Slit",
    "Solution",
    "SolutionFileError",
    "Solver",
    "SpaceTime",
    "StochasticForm",
    "StrongForm",
    "TrainingError",
    "Unknown",
    "UnknownField",
    "UnknownNameError",
    "__version__",
    "catalogue",
    "load",
    "make_config",
    "problem",
    "run",
    "schrodinger",
    "solve",
    "where",
]
