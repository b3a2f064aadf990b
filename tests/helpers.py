"""Shared helpers: tiny run configs and user problem files written by the tests."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pinnlab as pl
from pinnlab.config import layer_phases, merge

#: Everything a run needs to be fast on two shared CPU cores. Passed as ``config=`` so that
#: no shipped recipe is layered underneath.
TINY: dict[str, Any] = {
    "net": {"width": 8, "depth": 2},
    "solver": {"n_interior": 32, "n_boundary": 16},
    "train": {
        "optimizer": "adam",
        "steps": 4,
        "lbfgs_steps": 0,
        "log_every": 1,
        "eval_every": 1000,
        "checkpoint_every": 0,
    },
    "device": "cpu",
}


def tiny_config(
    problem_id: str = "poisson-sine", problems_dirs=(), sets=(), **sections: Any
) -> pl.RunConfig:
    """A validated tiny config; keyword arguments are problem parameters or config sections."""
    names = pl.catalogue(problems_dirs)[problem_id].parameters()
    params = {k: v for k, v in sections.items() if k in names}
    rest = {k: v for k, v in sections.items() if k not in names}
    params.setdefault("dim", 2)
    return pl.make_config(
        problem_id,
        config=merge(layer_phases(TINY, rest), rest),
        params=params,
        sets=sets,
        problems_dirs=problems_dirs,
    )


#: A user problem file: a space-time heat equation and a two-output system with named
#: residuals. Both have exact solutions, so the generic catalogue checks apply to them.
USER_PROBLEMS = textwrap.dedent(
    '''
    """Problems written by a user, outside the catalogue."""

    from dataclasses import dataclass

    import torch

    import pinnlab as pl


    @dataclass(frozen=True)
    class Heat(pl.Problem):
        """∂ₜu = Δu on (0, 1) × (0, 1)^d, u = e^{−t} Σᵢ sin xᵢ."""

        id = "test-heat"
        dim: int = 2

        def exact(self, x):
            return torch.exp(-x[:, 0]) * torch.sin(x[:, 1:]).sum(dim=1)

        def strong_form(self):
            return pl.StrongForm(
                domain=pl.SpaceTime(pl.Box(self.dim)),
                residual=lambda d: d.dt - d.laplacian,
                conditions={
                    "boundary": pl.Dirichlet(self.exact),
                    "initial": pl.Dirichlet(self.exact, on="initial"),
                },
            )


    @dataclass(frozen=True)
    class Pair(pl.Problem):
        """−Δu₁ = −2d, −Δu₂ = Σᵢ sin xᵢ in the unit ball; u = (|x|², Σᵢ sin xᵢ)."""

        id = "test-pair"
        dim: int = 2

        def exact(self, x):
            return torch.stack([(x * x).sum(dim=1), torch.sin(x).sum(dim=1)], dim=1)

        def strong_form(self):
            def residual(d):
                lap = d.laplacian
                return {
                    "first": -lap[:, 0] + 2.0 * self.dim,
                    "second": -lap[:, 1] - torch.sin(d.x).sum(dim=1),
                }

            return pl.StrongForm(
                domain=pl.Ball(self.dim),
                residual=residual,
                conditions={"boundary": pl.Dirichlet(self.exact)},
                outputs=2,
            )
    '''
)

#: A problem that offers only the energy form, so the PINN solver must refuse it.
NOFORM_PROBLEM = textwrap.dedent(
    '''
    from dataclasses import dataclass

    import pinnlab as pl


    @dataclass(frozen=True)
    class EnergyOnly(pl.Problem):
        """A problem that offers the energy form only."""

        id = "test-energy-only"

        def energy_form(self):
            raise NotImplementedError
    '''
)

#: A problem whose data are not finite, so every loss is NaN (for the NaN guard).
NAN_PROBLEM = textwrap.dedent(
    '''
    from dataclasses import dataclass

    import torch

    import pinnlab as pl


    @dataclass(frozen=True)
    class NotFinite(pl.Problem):
        """−Δu = f with f = NaN: no network can fit it (no known truth)."""

        id = "test-nan"

        def strong_form(self):
            return pl.StrongForm(
                domain=pl.Box(self.dim),
                residual=lambda d: -d.laplacian - torch.full_like(d.x[:, 0], float("nan")),
                conditions={"boundary": pl.Dirichlet(lambda x: torch.zeros_like(x[:, 0]))},
            )
    '''
)


def write_problem_file(folder: Path, text: str, name: str = "user_problems.py") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text)
    return folder
