"""Run a study: expand it, skip what the store has, execute the rest, record each result."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from tqdm.auto import tqdm

from ..errors import ConfigError
from .design import StudyConfig, expand
from .executors import make_executor
from .store import Store, read_header
from .target import check_measurable, costs


def run_study(
    study: StudyConfig,
    out: str | os.PathLike,
    *,
    executor: str = "local",
    workers: int | None = None,
    address: str | None = None,
    threads: int | None = None,
    gpus: float | None = None,
    resume: bool = False,
    progress: bool = True,
    problems_dirs: Iterable = (),
) -> Store:
    """Execute every run of ``study`` that ``out`` does not hold finished; return the store.

    A failing run is recorded with its error and the study goes on; runs that failed before
    are tried again. ``resume=True`` insists that ``out`` already holds this study's store.
    ``gpus``: GPUs per run on Ray (default: 1 when a run's device is ``cuda``, else 0).
    """
    out = Path(out)
    if resume and read_header(out) is None:
        raise ConfigError(f"--resume: '{out}' holds no study store to resume.")
    problems_dirs = list(problems_dirs)
    runs = expand(study, problems_dirs)
    store = Store.open(out, study, runs)
    todo = [r for r in runs if not store.done(r.id)]
    if not todo:
        return store
    check_measurable(study, todo, problems_dirs)
    on_cuda = any(r.config.device.startswith("cuda") for r in todo)
    if executor == "ray" and gpus is None and on_cuda:
        gpus = 1.0
    if executor == "ray" and gpus == 0 and on_cuda:
        raise ConfigError(
            "runs on device cuda with --gpus 0: Ray hides the GPUs from tasks that request "
            "none; give each run a GPU share (--gpus 1, or 0.25 for four runs per GPU)."
        )
    pool = make_executor(
        executor,
        workers=workers,
        address=address,
        threads=threads,
        problems_dirs=problems_dirs,
        gpus=gpus,
    )
    failed = 0
    bar = tqdm(
        total=len(runs),
        initial=len(runs) - len(todo),
        desc=study.name,
        unit="run",
        disable=not progress,
        dynamic_ncols=True,
    )
    try:
        finished = 0
        configs = [r.config.model_dump_json() for r in todo]
        for index, result in pool.map_unordered(configs):
            run = todo[index]
            if result["status"] == "done":
                store.write_solution(run.id, result["file"])
                store.record(
                    run,
                    "done",
                    metrics=result["metrics"],
                    environment=result["environment"],
                    costs=None
                    if study.target is None
                    else costs(result["history"], result["environment"], study.target.errors),
                )
            else:
                failed += 1
                store.record(run, "failed", error=result["error"])
            finished += 1
            bar.update()
            bar.set_postfix(
                running=min(pool.workers, len(todo) - finished),
                failed=failed,
                refresh=False,
            )
    finally:
        pool.close()
        bar.close()
    return store
