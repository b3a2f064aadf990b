"""Where a study's runs execute: a local process pool, or Ray tasks (local or on a cluster).

Every run goes through ``execute``, a pure function of the run's config: it trains the
run in the worker and returns its solution file as bytes, or the error it failed with. The
driver alone writes the store, so a worker needs no access to the driver's disk.
"""

from __future__ import annotations

import functools
import math
import os
import socket
import tempfile
import threading
import traceback
import warnings
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from multiprocessing import Pipe, get_context
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Protocol

from ..errors import ConfigError
from .target import evaluations

EXECUTORS = ("local", "ray")
#: Seconds to wait for a Ray cluster's address to accept a connection.
CONNECT_TIMEOUT = 10.0


@functools.cache
def _warm_up() -> None:
    """One tiny solve, once per worker process: lazy imports and first-call set-up (about 2 s)
    would otherwise be charged to the wall time of the worker's first run."""
    from ..run import make_config, run

    tiny = {"net": {"width": 4, "depth": 1}, "train": {"steps": 1, "checkpoint_every": 0}}
    with warnings.catch_warnings():  # one step learns nothing, and is not meant to
        warnings.simplefilter("ignore")
        run(make_config("poisson-sine", method="pinn", config={**tiny, "problem": {"dim": 1}}))


def execute(config_json: str, threads: int, problems_dirs: Sequence[str] = ()) -> dict[str, Any]:
    """Train one run; return {"status": "done", "file": bytes, "metrics", "environment"} or
    {"status": "failed", "error": str, "traceback": str}. Never raises for a failing run."""
    import torch

    from ..config import RunConfig
    from ..run import run

    torch.set_num_threads(threads)
    try:
        _warm_up()
        config = RunConfig.model_validate_json(config_json)
        with tempfile.TemporaryDirectory(prefix="pinnlab-run-") as folder:
            path = Path(folder) / "run.h5"
            solution = run(config, out=path, problems_dirs=problems_dirs)
            return {
                "status": "done",
                "file": path.read_bytes(),
                "metrics": solution.metrics,
                "environment": solution.environment,
                "history": evaluations(solution.history),
            }
    except Exception as e:
        return {
            "status": "failed",
            "error": f"{type(e).__name__}: {e}",
            "traceback": traceback.format_exc(),
        }


#: The parent-death pipe of this process: (read end, write end), made on first use. Only this
#: process holds the write end (pipes are close-on-exec, and forked children close it), so a
#: worker reading the other end sees EOF exactly when this process is gone, however it died.
_LIFELINE: tuple[Connection, Connection] | None = None
_LIFELINE_LOCK = threading.Lock()


def _lifeline() -> Connection:
    """The read end of this process's parent-death pipe, for its pool workers to watch."""
    global _LIFELINE
    with _LIFELINE_LOCK:
        if _LIFELINE is None:
            _LIFELINE = Pipe(duplex=False)  # never closed here: it lives as long as we do
        return _LIFELINE[0]


def _drop_lifeline() -> None:
    """In a forked child: its parent's pipe is not its own (holding the write end would keep
    its parent's workers alive); it makes its own when it starts a pool."""
    global _LIFELINE
    if _LIFELINE is not None:
        for end in _LIFELINE:
            end.close()
    _LIFELINE = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_drop_lifeline)


def _exit_with_parent(lifeline: Connection) -> None:
    """Pool initializer: a daemon thread ends this worker (``os._exit``) as soon as its parent
    is gone, even by SIGKILL, instead of leaving it orphaned and holding its memory; with
    every worker gone, multiprocessing's resource tracker sees EOF on its own pipe and ends
    too. Nothing is ever written to the pipe, so the read returns only at EOF."""

    def watch() -> None:
        try:
            while os.read(lifeline.fileno(), 1):
                pass
        except OSError:  # not a sign that the parent is gone: keep the worker
            return
        os._exit(1)

    threading.Thread(target=watch, name="pinnlab-parent-watch", daemon=True).start()


class Executor(Protocol):
    """Runs ``execute`` on many configs; yields (index, result) as runs finish."""

    workers: int

    def map_unordered(self, configs: Sequence[str]) -> Iterator[tuple[int, dict[str, Any]]]: ...

    def close(self) -> None: ...


def _threads(workers: int, threads: int | None) -> int:
    return threads or max(1, (os.cpu_count() or 1) // workers)


class LocalExecutor:
    """A pool of ``workers`` processes (spawned, so CUDA and threads start clean), which end
    when this process ends, however it ends (see ``_exit_with_parent``).

    A worker killed by a signal (most often the out-of-memory killer) breaks the whole pool:
    every run in it fails with it, innocent or not. The runs caught in a break are therefore
    submitted again to a fresh pool; a run caught in a second break is run alone, and only a
    run whose worker dies while it runs alone is recorded as failed.
    """

    def __init__(self, workers: int, threads: int | None = None, problems_dirs: Iterable = ()):
        self.workers = workers
        self.threads = _threads(workers, threads)
        self.problems_dirs = [str(p) for p in problems_dirs]
        self.pool = self._pool(workers)
        self.alone: ProcessPoolExecutor | None = None

    @staticmethod
    def _pool(workers: int) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            max_workers=workers,
            mp_context=get_context("spawn"),
            initializer=_exit_with_parent,
            initargs=(_lifeline(),),
        )

    def _submit(self, pool: ProcessPoolExecutor, config: str):
        return pool.submit(execute, config, self.threads, self.problems_dirs)

    def map_unordered(self, configs: Sequence[str]) -> Iterator[tuple[int, dict[str, Any]]]:
        pending = {self._submit(self.pool, c): i for i, c in enumerate(configs)}
        breaks = dict.fromkeys(range(len(configs)), 0)
        suspects: list[int] = []  # runs caught in two breaks, to run one at a time
        alone: dict = {}  # the one future running alone, if any
        while pending or alone or suspects:
            if not alone and suspects:
                self.alone = self.alone or self._pool(1)
                index = suspects.pop(0)
                alone = {self._submit(self.alone, configs[index]): index}
            done, _ = wait([*pending, *alone], return_when=FIRST_COMPLETED)
            broken = []
            for future in done:
                by_itself = future in alone
                index = (alone if by_itself else pending).pop(future)
                try:
                    result = future.result()
                except BrokenProcessPool as e:
                    if not by_itself:
                        broken.append(index)
                        continue
                    self.alone = None
                    result = {"status": "failed", "error": _killed(e)}
                yield index, result
            if broken:  # the pool is gone, and every run still in it with it
                for future, index in pending.items():
                    if future.done() and future.exception() is None:
                        yield index, future.result()  # finished just before the break
                    else:
                        broken.append(index)
                pending.clear()
                self.pool.shutdown(wait=False, cancel_futures=True)
                self.pool = self._pool(self.workers)
                for index in broken:
                    breaks[index] += 1
                    if breaks[index] >= 2:
                        suspects.append(index)
                    else:
                        pending[self._submit(self.pool, configs[index])] = index

    def close(self) -> None:
        for pool in (self.pool, self.alone):
            if pool is not None:
                pool.shutdown(wait=False, cancel_futures=True)


def _killed(e: BaseException) -> str:
    return (
        f"worker died while this run ran alone ({e!r}): killed by a signal, most often the "
        "kernel's out-of-memory killer; give the run less to hold (points, width, d) or more "
        "memory"
    )


def check_reachable(address: str, timeout: float = CONNECT_TIMEOUT) -> None:
    """Fail with a clear error unless ``host:port`` (optionally ``ray://host:port``) accepts a
    TCP connection within ``timeout`` seconds."""
    target = address.removeprefix("ray://")
    host, sep, port = target.rpartition(":")
    if not sep or not port.isdigit():
        raise ConfigError(f"Ray address '{address}' is not HOST:PORT (e.g. 10.0.0.1:6379).")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            pass
    except OSError as e:
        raise ConfigError(
            f"cannot reach the Ray cluster at '{address}' within {timeout:.0f} s ({e}); "
            "is `ray start --head` running there, and is the port open?"
        ) from None


class RayExecutor:
    """Each run a Ray task of ``threads`` CPUs and ``gpus`` GPUs (a fraction shares one), on a
    Ray instance started here (``address`` None) or on the cluster at ``address`` (``auto``:
    the one this machine belongs to). Ray hides the GPUs from a task that requests none
    (CUDA_VISIBLE_DEVICES is empty there), so runs on ``cuda`` need ``gpus`` > 0."""

    def __init__(
        self,
        workers: int,
        address: str | None = None,
        threads: int | None = None,
        problems_dirs: Iterable = (),
        gpus: float = 0.0,
    ):
        try:
            import ray
        except ImportError:
            raise ConfigError(
                "the ray executor needs Ray: pip install 'pinnlab[ray]' (or pip install ray)."
            ) from None
        if address not in (None, "auto", "local"):
            check_reachable(address)
        self.ray = ray
        self.workers = workers
        self.threads = threads or 1
        self.problems_dirs = [str(p) for p in problems_dirs]
        self.started = not ray.is_initialized()
        if self.started:
            options: dict[str, Any] = {
                "include_dashboard": False,
                "log_to_driver": False,
                "configure_logging": False,
            }
            if address is None:
                options["num_cpus"] = workers * self.threads
            else:
                options["address"] = address
            try:
                ray.init(**options)
            except (ConnectionError, RuntimeError, ValueError) as e:
                where = f"the Ray cluster at '{address}'" if address else "a local Ray instance"
                raise ConfigError(f"cannot start or reach {where}: {e}") from None
        available = ray.cluster_resources().get("GPU", 0.0)
        if gpus > available:
            self.close()
            raise ConfigError(
                f"each run asks for {gpus:g} GPU(s) and the Ray cluster has {available:g}: "
                "start its nodes with `ray start --num-gpus N`, or run on the CPU "
                "(device: cpu, --gpus 0)."
            )
        self.remote = ray.remote(num_cpus=self.threads, num_gpus=gpus, max_retries=0)(execute)

    def map_unordered(self, configs: Sequence[str]) -> Iterator[tuple[int, dict[str, Any]]]:
        ray = self.ray
        pending = {
            self.remote.remote(c, self.threads, self.problems_dirs): i
            for i, c in enumerate(configs)
        }
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                index = pending.pop(ref)
                try:
                    result = ray.get(ref)
                except Exception as e:  # worker crashed, node lost
                    result = {"status": "failed", "error": f"Ray task failed: {e!r}"}
                yield index, result

    def close(self) -> None:
        if self.started:
            self.ray.shutdown()


def make_executor(
    kind: str,
    *,
    workers: int | None = None,
    address: str | None = None,
    threads: int | None = None,
    problems_dirs: Iterable = (),
    gpus: float | None = None,
) -> Executor:
    """The executor ``kind`` ('local' or 'ray') with ``workers`` runs at once and, on Ray,
    ``gpus`` GPUs per run (None: 0; local runs see every GPU of this machine)."""
    if kind not in EXECUTORS:
        from ..errors import unknown_name

        raise unknown_name("executor", kind, EXECUTORS)
    if workers is not None and workers < 1:
        raise ConfigError(f"--workers must be ≥ 1, got {workers}.")
    if gpus is not None and not (math.isfinite(gpus) and gpus >= 0):
        raise ConfigError(f"--gpus must be a number ≥ 0 (GPUs per run), got {gpus}.")
    if kind == "local":
        for flag, value in (("--address", address), ("--gpus", gpus)):
            if value is not None:
                raise ConfigError(f"{flag} is for --executor ray; the local executor has none.")
        workers = workers or os.cpu_count() or 1
        return LocalExecutor(workers, threads, problems_dirs)
    return RayExecutor(workers or os.cpu_count() or 1, address, threads, problems_dirs, gpus or 0.0)
