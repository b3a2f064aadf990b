"""Keep freed memory for reuse on glibc systems.

Forward-mode jets allocate (n, m, width) temporaries of tens of MB at every layer. glibc serves
allocations that large with fresh mmap pages and returns them on free, so every training step
pays one page fault per 4 KiB again: measured on a 2-core CPU, a 52 MB elementwise product took
22 ms with fresh pages and 4 ms with reused ones. ``reuse_freed_memory`` makes glibc serve
large blocks from the heap and keep freed memory (mallopt M_MMAP_MAX = 0, M_TRIM_THRESHOLD).
It changes process-wide allocator behaviour, so pinnlab calls it only when it is asked to run
(``pinnlab.run``, the command line, the benchmarks), never on import.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os

_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4


@functools.cache
def reuse_freed_memory() -> bool:
    """Ask glibc to reuse freed memory; True if it agreed. PINNLAB_MALLOC=default skips it."""
    if os.environ.get("PINNLAB_MALLOC") == "default":
        return False
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc
        return False
    return bool(mallopt(_M_MMAP_MAX, 0)) and bool(mallopt(_M_TRIM_THRESHOLD, 2**31 - 1))


class PeakMemory:
    """The peak memory of one run, in bytes: on CUDA the most the caching allocator held
    (``torch.cuda.max_memory_allocated``, reset at the start); on a CPU the process's peak
    resident set (Linux ``VmHWM``, reset at the start through ``/proc/self/clear_refs``; where
    that cannot be reset, the process's peak since it began). On a CPU this includes what
    the process held before the run (the interpreter, torch, freed memory it kept), so
    compare runs of one kind of worker, not with a device's capacity."""

    def __init__(self, device):
        import torch

        self.device = torch.device(device)
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        else:
            try:
                with open("/proc/self/clear_refs", "w") as f:
                    f.write("5")
            except OSError:
                pass

    def bytes(self) -> int:
        import torch

        if self.device.type == "cuda":
            return int(torch.cuda.max_memory_allocated(self.device))
        try:
            with open("/proc/self/status") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        return int(line.split()[1]) * 1024
        except OSError:
            pass
        import resource

        return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024
