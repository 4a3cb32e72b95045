"""The host CPU as a shared resource: interpreters shared per model file, and slots for emulated computing.

Memory: every accelerator that computes on the host (the ``cpu`` device and each emulated accelerator) may share
one interpreter per model file through a :class:`HostInterpreters` pool (``open_device('cpu', shared=pool)``,
``open_device('emulated:NAME', ..., shared=pool)``). Emulated accelerators compute on the host CPU, so a private
copy per device only multiplies resident memory: XNNPACK packs the weights and plans a workspace per interpreter,
which for the MediaPipe models is 3-10x the file size (pose_landmark_full, 6 MB of weights, in 4 segments: ~62 MB
resident). Each pooled interpreter has a lock (interpreters are not thread-safe): a ``when-idle`` emulated run
whose interpreter is busy is timed only, like one that finds no free host slot (:class:`HostSlots`); an
``always`` one, and the cpu device, wait for it.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from hal import runtime
from hal.energy import InvokeEnergy
from hal.errors import ModelLoadError
from hal.loaded import InterpreterLoaded, Loaded


class HostSlots:
    """How many emulated inferences may compute on the host at once (shared by a platform's devices)."""

    def __init__(self, slots: int | None = None):
        self.slots = slots if slots is not None else max(1, os.cpu_count() or 1)
        self._sem = threading.BoundedSemaphore(self.slots)

    def try_acquire(self) -> bool:
        return self._sem.acquire(blocking=False)

    def release(self) -> None:
        self._sem.release()


class _PoolEntry:
    __slots__ = ("loaded", "lock", "refs")

    def __init__(self, loaded: InterpreterLoaded):
        self.loaded = loaded
        self.lock = threading.Lock()
        self.refs = 0


class HostInterpreters:
    """One host-CPU interpreter per model file, shared by every accelerator that computes on the host.

    ``view(path, device)`` returns a :class:`SharedLoaded` (a Loaded of its own, for ``device``) backed by the
    pool's interpreter of ``path``, loaded on first request; closing the last view of a file frees its
    interpreter. Thread-safe: loads and closes are serialised per pool, invokes per interpreter.

    ``single``: files (paths) whose interpreter runs on one thread whatever ``threads`` says, because their work
    is too small to share: a second thread's wake-up costs more than it saves (measured on the 2-core x86 dev VM:
    the 4 segments of digits w100 invoked in 131 us with 2 threads, 50 us with 1), and a thread pool that spins
    after each invoke takes a core from the threads that hand the work on.
    """

    def __init__(self, threads: int = 1, single: frozenset[str] | set[str] = frozenset()):
        if threads < 1:
            raise ValueError(f"HostInterpreters needs threads >= 1, got {threads}")
        self.threads = threads
        self.single = frozenset(str(Path(p).resolve()) for p in single)
        self._entries: dict[str, _PoolEntry] = {}
        self._mutex = threading.Lock()
        self.loads = 0  # interpreters created (for tests and status)

    def view(self, path: Path, device: str, energy: InvokeEnergy | None = None) -> SharedLoaded:
        key = str(Path(path).resolve())
        with self._mutex:  # a load under the mutex: two accelerators asking at once load the file once
            entry = self._entries.get(key)
            if entry is None:
                threads = 1 if key in self.single else self.threads
                try:
                    interpreter = runtime.make_interpreter(str(path), num_threads=threads)
                    loaded = InterpreterLoaded(Path(path), "host", interpreter, (), threads)
                except (ValueError, RuntimeError) as exc:
                    raise ModelLoadError(f"cannot load {path} on {device}: {exc}") from exc
                entry = self._entries[key] = _PoolEntry(loaded)
                self.loads += 1
            entry.refs += 1
        return SharedLoaded(self, key, entry, device, energy)

    def _release(self, key: str, entry: _PoolEntry) -> None:
        with self._mutex:
            entry.refs -= 1
            if entry.refs <= 0 and self._entries.get(key) is entry:
                del self._entries[key]
                with entry.lock:  # never free an interpreter another thread is invoking
                    entry.loaded.close()

    def __len__(self) -> int:
        return len(self._entries)


class SharedLoaded(Loaded):
    """A device's handle on a pooled host interpreter: invoke() takes the interpreter's lock (blocking);
    run() times the invoke alone (not the wait for the lock); try_invoke() gives None when it is busy."""

    def __init__(
        self, pool: HostInterpreters, pool_key: str, entry: _PoolEntry, device: str, energy: InvokeEnergy | None
    ):
        inner = entry.loaded
        super().__init__(inner.path, device, inner.inputs, inner.outputs, energy)
        self.threads = inner.threads
        self._pool = pool
        self._pool_key = pool_key
        self._entry = entry

    def _invoke(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        with self._entry.lock:
            return self._entry.loaded._invoke(inputs)

    def _timed(self, inputs: Sequence[np.ndarray]) -> tuple[list[np.ndarray], float, float]:
        with self._entry.lock:
            return self._measure(self._entry.loaded._invoke, inputs)

    def try_invoke(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray] | None:
        if not self._entry.lock.acquire(blocking=False):
            return None
        try:
            return self._entry.loaded._invoke(inputs)
        finally:
            self._entry.lock.release()

    def close(self) -> None:
        if not self._closed:
            super().close()
            self._pool._release(self._pool_key, self._entry)
