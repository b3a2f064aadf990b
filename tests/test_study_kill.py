"""`kill -9` of `pinnlab study` takes its pool workers (and multiprocessing's resource tracker)
with it: none is left behind, re-parented to init, holding its memory (issue 19)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(
    not Path("/proc/self/stat").exists(), reason="finds the workers through /proc"
)

#: A study driver: the local executor as `pinnlab study` makes it, with 2 workers and 4 runs,
#: each run a stand-in that marks its worker busy and then holds it (as a long training run
#: would) until the worker is killed. A stand-in, so that the test depends on the executor
#: alone and a run lasts as long as the test needs, however fast or slow training is.
DRIVER = """
import os, sys, time
from pathlib import Path

from pinnlab.studies import executors


def hold(config, threads, problems_dirs=()):
    (Path(os.environ["PINNLAB_TEST_BUSY"]) / str(os.getpid())).touch()
    time.sleep(600)
    return {"status": "failed", "error": "not killed"}


if __name__ == "__main__":
    executors.execute = hold  # what the pool runs (spawned workers find it in __mp_main__)
    pool = executors.make_executor("local", workers=2, threads=1)
    try:
        for _ in pool.map_unordered(["{}"] * 4):
            pass
    finally:
        pool.close()
"""


def _stat(pid: int) -> tuple[str, int, int] | None:
    """(state, ppid, start time) of process ``pid``, or None when there is none."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()
    return fields[0], int(fields[1]), int(fields[19])


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _children(parent: int) -> dict[int, int]:
    """{pid: start time} of the live children of ``parent``."""
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            stat = _stat(int(entry.name))
            if stat and stat[1] == parent and stat[0] not in "ZX":
                found[int(entry.name)] = stat[2]
    return found


def _alive(pid: int, start: int) -> bool:
    """Whether the process ``pid`` that started at ``start`` still runs (a zombie has ended;
    a pid used again by another process is not ours)."""
    stat = _stat(pid)
    return stat is not None and stat[2] == start and stat[0] not in "ZX"


def test_kill_minus_nine_of_a_study_takes_its_workers_with_it(tmp_path):
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER)
    busy = tmp_path / "busy"
    busy.mkdir()
    log = tmp_path / "driver.log"
    children: dict[int, int] = {}
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, str(driver)],
            start_new_session=True,
            stdout=output,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PINNLAB_TEST_BUSY": str(busy)},
        )
    try:
        # Two workers busy with a run each, and the resource tracker.
        deadline = time.monotonic() + 120  # generous on a loaded machine; ends early
        while time.monotonic() < deadline and process.poll() is None:
            children = _children(process.pid)
            working = {int(f.name) for f in busy.iterdir()} & set(children)
            trackers = [p for p in children if "resource_tracker" in _cmdline(p)]
            if len(working) == 2 and len(trackers) == 1:
                break
            time.sleep(0.05)
        else:
            pytest.fail(
                f"no two busy workers and a resource tracker under the driver (exit code "
                f"{process.poll()}; children {children}): {log.read_text()[-2000:]}"
            )
        children = _children(process.pid)  # every child, whatever it is
        assert len(children) == 3, {p: _cmdline(p) for p in children}
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
        deadline, left = time.monotonic() + 30, children
        while time.monotonic() < deadline:
            left = {p: _cmdline(p) for p, start in children.items() if _alive(p, start)}
            if not left:
                break
            time.sleep(0.05)
        assert not left, f"still running after the driver was killed: {left}"
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)  # the workers share the driver's group
        for pid, start in children.items():
            if _alive(pid, start):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
