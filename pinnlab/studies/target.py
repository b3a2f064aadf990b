"""Target mode: the cost of reaching an error, and runs that never reach it.

A study with a ``target`` (``{metric, errors}``) trains every run until its error on
``metric`` is at most the smallest target, or its budget runs out. The cost of each target
is read off the run's history at the first evaluation whose error reaches it: the steps, the
samples drawn and the training time to then (the evaluations' own time left out). A run that
never reaches a target is *censored* there: its cost is only known to exceed what it spent,
so it is kept with that lower bound and marked (``reached`` false), and the fits treat it so
(``stats.censored_power_law``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from ..errors import ConfigError
from .design import StudyConfig, StudyRun

#: The costs of a target in a run's record and the DataFrame's columns "cost.<target>.<name>".
COSTS = ("reached", "steps", "samples", "wall_time")
#: The history the costs are read from (what a worker sends back beside the file).
EVALUATIONS = ("eval_step", "eval_samples", "eval_time", "eval_seconds", "error")
#: The columns of ``long_table`` for each of ``COSTS``.
LONG = {
    "reached": "reached",
    "steps": "steps_to_target",
    "samples": "samples_to_target",
    "wall_time": "time_to_target",
}


def evaluations(history: Mapping[str, Any]) -> dict[str, list[float]]:
    """The part of a run's history that its costs are read from (``EVALUATIONS``)."""
    return {k: [float(v) for v in history[k]] for k in EVALUATIONS if k in history}


def costs(
    history: Mapping[str, Any], environment: Mapping[str, Any], errors: Iterable[float]
) -> dict[str, dict[str, Any]]:
    """{target: {reached, steps, samples, wall_time}} of one run (targets as ``'%g'``)."""
    error = np.asarray(history.get("error", ()), dtype=float)
    steps = np.asarray(history.get("eval_step", ()), dtype=float)
    samples = np.asarray(history.get("eval_samples", ()), dtype=float)
    at = np.asarray(history.get("eval_time", ()), dtype=float)
    spent = np.cumsum(np.asarray(history.get("eval_seconds", np.zeros(len(at))), dtype=float))
    train_time = at - spent if len(spent) == len(at) else at
    total_time = float(environment.get("wall_time", np.nan)) - (
        float(spent[-1]) if len(spent) else 0.0
    )
    out = {}
    for target in errors:
        hit = np.flatnonzero(error <= target) if len(error) else np.array([], int)
        if len(hit):
            i = int(hit[0])
            cost = {
                "reached": True,
                "steps": int(steps[i]),
                # (a history from before eval_samples was recorded has no sample count)
                "samples": int(samples[i]) if len(samples) == len(error) else None,
                "wall_time": float(train_time[i]),
            }
        else:
            cost = {
                "reached": False,
                "steps": int(environment.get("steps", 0)),
                "samples": int(environment.get("samples", 0)),
                "wall_time": total_time,
            }
        out[f"{target:g}"] = cost
    return out


def check_measurable(study: StudyConfig, runs: list[StudyRun], problems_dirs=()) -> None:
    """Refuse, before any run, a target metric that a run's problem cannot measure: one
    untrained solution per problem and method (at its smallest dimension) is evaluated once."""
    import torch

    from ..run import build_run

    if study.target is None:
        return
    first: dict[tuple[str, str], StudyRun] = {}
    for run in runs:
        key = (run.config.problem.id, run.config.method)
        dim = run.config.problem.params().get("dim", 0)
        if key not in first or dim < first[key].config.problem.params().get("dim", 0):
            first[key] = run
    for (problem_id, method), run in first.items():
        config = run.config.model_copy(update={"device": "cpu"})
        *_, solution = build_run(config, torch.device("cpu"), problems_dirs)
        if not solution.measures_error():
            raise ConfigError(
                f"study '{study.name}': target mode needs a known error, but {problem_id} "
                f"has no truth for method {method}."
            )
        if study.target.metric == "auto":
            continue
        names = solution.evaluate()
        if study.target.metric not in names:
            raise ConfigError(
                f"study '{study.name}': target.metric '{study.target.metric}' is not measured "
                f"for {problem_id} with method {method}; it measures "
                f"{', '.join(sorted(names))}."
            )


def long_table(df):
    """One row per (run, target) of a target-mode study's DataFrame (``store.load``): the
    run's columns, ``target``, and the costs (``LONG``: reached, steps_to_target,
    samples_to_target, time_to_target)."""
    import pandas as pd

    targets = df.attrs["study"]["target"]["errors"]
    cost_columns = [f"cost.{t:g}.{c}" for t in targets for c in COSTS]
    rest = df.drop(columns=[c for c in cost_columns if c in df.columns])
    parts = []
    for t in targets:
        part = rest.copy()
        part["target"] = t
        for c in COSTS:
            part[LONG[c]] = df[f"cost.{t:g}.{c}"] if f"cost.{t:g}.{c}" in df else np.nan
        parts.append(part)
    out = pd.concat(parts, ignore_index=True)
    out.attrs = dict(df.attrs)
    return out
