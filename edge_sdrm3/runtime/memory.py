"""Giving the heap's free pages back to the system once the models are loaded.

At startup every variant of every model is checked by loading it once (workload.load_workload), then each
accelerator's worker thread loads the default variants' segments. What the checks free stays in the heap (glibc
keeps freed pages of an arena below its top, and a worker thread's loads are made in that thread's own arena, so
they never reuse the main thread's free pages): 10-30 MB resident with the MediaPipe XR pipeline + digits supernet
on the 2-core x86 dev VM, given back by ``malloc_trim(0)`` (the service's RSS 1 s after READY, as
tools/bench_service.py part (c) reads it: 255 -> 228 MB).

Limiting the arenas (``MALLOC_ARENA_MAX=1`` or ``2``) was measured too: it saves the same 23 MB without the trim
and nothing with it, at READY and after 40 s of the scenario's frames (272 vs 264 MB, within the run-to-run
spread), so the service leaves glibc's default.

glibc only; elsewhere (musl, macOS) nothing is done (False).
"""
from __future__ import annotations

import ctypes
import ctypes.util


def give_back_free() -> bool:
    """Return the heap's free pages to the system (glibc's ``malloc_trim(0)``: every arena, not only the tops of
    their heaps). For after loading, not for a hot path: it walks every arena under its lock."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        return False
    return bool(trim(0))
