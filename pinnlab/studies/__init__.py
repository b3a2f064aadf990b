"""Studies: many runs over a grid of configs and seeds, stored, then analysed and reported.

    study = read_study("configs/studies/dimension-poisson.yaml", sets=["base.train.steps=20"])
    run_study(study, "studies/dimension-poisson")        # local process pool; or executor="ray"
    df = load("studies/dimension-poisson")               # pandas DataFrame, one row per run
    write_report("studies/dimension-poisson")            # report.md and figures

Each piece has its module: ``design`` (configs, designs, expansion), ``store`` (files),
``executors`` (process pool, Ray), ``runner``, ``stats``, ``grid`` (the finite-difference
baseline), ``report``.
"""

from .design import StudyConfig, StudyRun, expand, read_study
from .runner import run_study
from .store import Store, StoreError, load

__all__ = [
    "Store",
    "StoreError",
    "StudyConfig",
    "StudyRun",
    "expand",
    "load",
    "read_study",
    "run_study",
]
