"""How many malloc arenas the service's threads share (glibc).

At startup every variant of every model is checked by loading it once (workload.load_workload, in the main
thread), then each accelerator's worker thread loads the default variants' segments. glibc gives each thread that
allocates an arena of its own (up to 8 per core), so what the checks freed in the main thread's arena is never
reused by the workers' loads: 10-30 MB resident with the MediaPipe XR pipeline + digits supernet on the 2-core x86
dev VM. With two arenas the threads share them and reuse it: 255 -> 228 MB (the service's RSS 1 s after READY, as
tools/bench_service.py part (c) reads it).

``malloc_trim(0)`` after the loads gives the same 23 MB back, but then the first job of a variant loaded on first
use (when the supernet selector moves a model to it) ran 2-3x longer (7-21 ms against 3-10 ms for digits on the dev
VM, where 16.7 ms is its deadline at 60 frames/s): its loads found no free memory left in the heap and took fresh
pages. Limiting the arenas keeps that memory for reuse instead.

glibc only, and only when the ``MALLOC_ARENA_MAX`` environment variable is not set (then glibc took it already);
elsewhere (musl, macOS) nothing is done (False).
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os

ARENAS = 2
M_ARENA_MAX = -8  # malloc.h


def limit_arenas(n: int = ARENAS) -> bool:
    """At most ``n`` malloc arenas for this process's threads; call it before any thread is started."""
    if os.environ.get("MALLOC_ARENA_MAX"):
        return False
    try:
        mallopt = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(M_ARENA_MAX, n))
