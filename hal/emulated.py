"""Emulated accelerators: real outputs from the host CPU, latency and energy from a cost model.

An emulated accelerator stands for hardware we do not have (an XRBench sub-accelerator, an NPU of a
future board). It loads the real model on the host CPU and takes its *time and energy* from a cost
model: a table (:class:`CostTable`, per model key -> latency_ms, energy_mj; e.g. the XRBench tables)
or a speed factor and power relative to the profiled host CPU (:class:`RelativeCost`). Completion is
paced to the modelled latency with an injected clock and sleep (defaults ``time.monotonic`` and
``time.sleep``), so a replay with a fake clock and a live run share this code.

When outputs are computed for real (``compute=``):

* ``'always'``: every run computes on the host. Right for one emulated accelerator, or when outputs
  matter (cascades, accuracy checks). If the host is slower than the model, completion is late and the
  record says so (``extra['overrun_ms']``) instead of pretending.
* ``'never'``: timing only; ``outputs`` is None. Right for large benchmark models and for replay-like
  load tests on a small host.
* ``'when-idle'`` (default): compute only if a host slot is free (a shared :class:`HostSlots`, one slot
  per host core by default, shared by all emulated devices of a platform) *and* the last measured host
  time of this model fits in its modelled latency (or was never measured). Otherwise only time it. A
  2-core host cannot run the real inference of several emulated accelerators within their modelled
  times; this keeps the modelled schedule intact and computes as much as the host allows.

Honesty: every :class:`~hal.devices.RunResult` from here has ``timing='emulated'``, ``computed`` saying
whether outputs are real, ``latency_ms`` = the *modelled* latency, ``host_ms`` = the real host time
beside it (None if not computed), ``wall_ms`` = what the injected clock saw, and ``energy_mj`` =
the modelled energy (emulated accelerators are never metered; see hal.energy).

``invoke()`` is the plain Loaded verb: it always computes real outputs (the caller asked for them),
paced like run(compute='always').

Faults (``EmulatedDevice(..., fault=FaultSpec(...))``, the platform file's ``fault`` key of an emulated
accelerator): a device that fails a fraction of its invokes (``fail_rate``: InvokeError), hangs in some
(``hang_rate``: the invoke blocks ``hang_s`` seconds, or until the device is closed), or vanishes
(``vanish_after_s`` after its first invoke every invoke raises DeviceUnavailable, for ``vanish_for_s`` seconds or
for good). Draws come from ``random.Random(seed)``, so a run is repeatable. It exercises the live service's
failure handling (edge_sdrm3/runtime/service.py) without flaky hardware.

Memory: every accelerator that computes on the host may share one interpreter per model file through a
:class:`HostInterpreters` pool (``EmulatedDevice(..., shared=pool)``; the live service also loads its ``cpu``
accelerator's models from the same pool). Emulated accelerators compute on the host CPU, so a private copy per
emulated device only multiplies resident memory: XNNPACK packs the weights and plans a workspace per
interpreter, which for the MediaPipe models is 3-10x the file size (pose_landmark_full, 6 MB of weights, in 4
segments: ~62 MB resident). Each pooled interpreter has a lock (interpreters are not thread-safe): a
``when-idle`` run whose interpreter is busy is timed only, like one that finds no free host slot; an
``always`` run waits for it.
"""

from __future__ import annotations

import math
import os
import random
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from hal import runtime
from hal.devices import Device, DeviceInfo, InterpreterLoaded, Loaded, RunResult, check_inputs
from hal.errors import BadDeviceSpec, DeviceUnavailable, HalError, InvokeError, ModelLoadError

COMPUTE_POLICIES = ("always", "never", "when-idle")


@dataclass(frozen=True)
class Cost:
    """The modelled cost of one invocation on the emulated accelerator."""

    latency_ms: float
    energy_mj: float


class CostModel(Protocol):
    """Maps a model key (and the host time, when known) to the accelerator's cost."""

    def __call__(self, key: str, host_ms: float | None) -> Cost: ...


class CostTable:
    """Fixed cost per model key, e.g. from an XRBench sub-accelerator's table."""

    def __init__(self, table: Mapping[str, Cost | tuple[float, float]]):
        self._table = {k: v if isinstance(v, Cost) else Cost(float(v[0]), float(v[1])) for k, v in table.items()}

    def __call__(self, key: str, host_ms: float | None) -> Cost:
        try:
            return self._table[key]
        except KeyError:
            raise HalError(f"cost table has no entry for model {key!r}; known: {sorted(self._table)}") from None


@dataclass(frozen=True)
class RelativeCost:
    """An accelerator ``speed`` times faster than the host CPU, drawing ``power_w`` while busy.

    ``host_ms`` holds the profiled host CPU latency per model key (from `edge-sdrm3 profile`), so that
    the modelled latency is stable; without it the host time measured on this run (or the last one) is
    used. Energy = power × modelled latency (W × ms = mJ).
    """

    speed: float
    power_w: float
    host_ms: Mapping[str, float] | None = None

    def __post_init__(self) -> None:
        if self.speed <= 0 or self.power_w < 0:
            raise ValueError(f"RelativeCost needs speed > 0 and power_w >= 0, got {self.speed}, {self.power_w}")

    def __call__(self, key: str, host_ms: float | None) -> Cost:
        reference = (self.host_ms or {}).get(key, host_ms)
        if reference is None:
            raise HalError(f"no host CPU time for model {key!r}: profile it, or run it once with compute")
        latency = reference / self.speed
        return Cost(latency, self.power_w * latency)


@dataclass(frozen=True)
class FaultSpec:
    """Injected faults of an emulated accelerator (see the module docstring); every rate in [0, 1]."""

    fail_rate: float = 0.0  # share of invokes that raise InvokeError
    hang_rate: float = 0.0  # share of invokes that block for hang_s (None: until the device is closed)
    hang_s: float | None = None
    vanish_after_s: float | None = None  # seconds after the first invoke when the device disappears
    vanish_for_s: float | None = None  # how long it stays away (None: for good)
    seed: int = 0

    def __post_init__(self) -> None:
        for k in ("fail_rate", "hang_rate"):
            v = getattr(self, k)
            if not (isinstance(v, (int, float)) and not isinstance(v, bool) and 0.0 <= v <= 1.0):
                raise ValueError(f"fault: field {k!r} must be a number in [0, 1], got {v!r}")
        for k in ("hang_s", "vanish_after_s", "vanish_for_s"):
            v = getattr(self, k)
            if v is not None and not (isinstance(v, (int, float)) and not isinstance(v, bool)
                                      and math.isfinite(v) and v >= 0):
                raise ValueError(f"fault: field {k!r} must be a number >= 0 or null, got {v!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise TypeError(f"fault: field 'seed' must be an integer, got {self.seed!r}")

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> FaultSpec:
        if not isinstance(d, Mapping):
            raise TypeError("fault: expected an object")
        known = {f for f in cls.__dataclass_fields__}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"fault: unknown field {unknown[0]!r} (known: {', '.join(sorted(known))})")
        return cls(**d)


class FaultInjector:
    """Applies a FaultSpec before each invoke of an emulated device (in its worker thread)."""

    def __init__(self, spec: FaultSpec, name: str, clock: Callable[[], float]):
        self.spec = spec
        self.name = name
        self.clock = clock
        self.rng = random.Random(spec.seed)
        self.first: float | None = None
        self.released = threading.Event()  # set when the device closes: a hang ends
        self.injected = {"fail": 0, "hang": 0, "vanished": 0}

    def before_invoke(self) -> None:
        sp = self.spec
        now = self.clock()
        if self.first is None:
            self.first = now
        if sp.vanish_after_s is not None:
            gone = now - self.first - sp.vanish_after_s
            if gone >= 0 and (sp.vanish_for_s is None or gone < sp.vanish_for_s):
                self.injected["vanished"] += 1
                raise DeviceUnavailable(f"emulated:{self.name}: injected fault: the device vanished")
        if sp.fail_rate and self.rng.random() < sp.fail_rate:
            self.injected["fail"] += 1
            raise InvokeError(f"emulated:{self.name}: injected fault: invoke failed")
        if sp.hang_rate and self.rng.random() < sp.hang_rate:
            self.injected["hang"] += 1
            self.released.wait(sp.hang_s)


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
    """

    def __init__(self, threads: int = 1):
        if threads < 1:
            raise ValueError(f"HostInterpreters needs threads >= 1, got {threads}")
        self.threads = threads
        self._entries: dict[str, _PoolEntry] = {}
        self._mutex = threading.Lock()
        self.loads = 0  # interpreters created (for tests and status)

    def view(self, path: Path, device: str) -> SharedLoaded:
        key = str(Path(path).resolve())
        with self._mutex:  # a load under the mutex: two accelerators asking at once load the file once
            entry = self._entries.get(key)
            if entry is None:
                try:
                    interpreter = runtime.make_interpreter(str(path), num_threads=self.threads)
                    loaded = InterpreterLoaded(Path(path), "host", interpreter, (), self.threads)
                except (ValueError, RuntimeError) as exc:
                    raise ModelLoadError(f"cannot load {path} on {device}: {exc}") from exc
                entry = self._entries[key] = _PoolEntry(loaded)
                self.loads += 1
            entry.refs += 1
        return SharedLoaded(self, key, entry, device)

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

    def __init__(self, pool: HostInterpreters, key: str, entry: _PoolEntry, device: str):
        inner = entry.loaded
        super().__init__(inner.path, device, inner.inputs, inner.outputs)
        self.threads = inner.threads
        self._pool = pool
        self._key = key
        self._entry = entry

    def _invoke(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        with self._entry.lock:
            return self._entry.loaded._invoke(inputs)

    def try_invoke(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray] | None:
        if not self._entry.lock.acquire(blocking=False):
            return None
        try:
            return self._entry.loaded._invoke(inputs)
        finally:
            self._entry.lock.release()

    def run(self, inputs: Sequence[np.ndarray]) -> RunResult:
        if self._closed:
            raise InvokeError(f"{self.path} on {self.device}: model is closed")
        check_inputs(self.inputs, inputs, f"{self.path.name} on {self.device}")
        with self._entry.lock:
            t0 = time.perf_counter()
            outputs = self._entry.loaded._invoke(inputs)
            ms = (time.perf_counter() - t0) * 1e3
        return RunResult(outputs, True, "measured", ms, ms, None, ms)

    def close(self) -> None:
        if not self._closed:
            super().close()
            self._pool._release(self._key, self._entry)


class EmulatedDevice(Device):
    """``emulated:NAME``: an accelerator whose timing and energy come from ``cost``."""

    kind = "emulated"

    def __init__(
        self,
        name: str,
        cost: CostModel | None = None,
        *,
        compute: str = "when-idle",
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        host: HostSlots | None = None,
        host_threads: int = 1,
        shared: HostInterpreters | None = None,
        fault: FaultSpec | None = None,
    ):
        spec = f"emulated:{name}"
        if cost is None:
            raise BadDeviceSpec(
                f"{spec} needs a cost model: open_device('{spec}', cost=CostTable(...) or RelativeCost(...))"
            )
        if compute not in COMPUTE_POLICIES:
            raise BadDeviceSpec(f"{spec}: compute must be one of {COMPUTE_POLICIES}, got {compute!r}")
        super().__init__(spec, DeviceInfo(spec, "emulated", "host-cpu+cost-model", host_threads, f"compute={compute}"))
        self.name = name
        self.cost = cost
        self.compute = compute
        self.clock = clock
        self.sleep = sleep
        self.host = host or HostSlots()
        self.host_threads = shared.threads if shared is not None else host_threads
        self.shared = shared  # None: a private interpreter per load()
        self.fault = FaultInjector(fault, name, clock) if fault is not None else None

    def release_hangs(self) -> None:
        """End every injected hang now (and later ones at once): called before the device is closed."""
        if self.fault is not None:
            self.fault.released.set()

    def close(self) -> None:
        self.release_hangs()
        super().close()

    def load(self, path: str | os.PathLike[str], key: str | None = None) -> EmulatedLoaded:
        """Load the real model on the host CPU; ``key`` names it in the cost model (default: file stem)."""
        loaded = super().load(path)
        assert isinstance(loaded, EmulatedLoaded)
        if key is not None:
            loaded.key = key
        return loaded

    def _load(self, path: Path) -> Loaded:
        if self.shared is not None:
            return EmulatedLoaded(self, self.shared.view(path, self.spec), path.stem)
        try:
            interpreter = runtime.make_interpreter(str(path), num_threads=self.host_threads)
            inner = InterpreterLoaded(path, self.spec, interpreter, (), self.host_threads)
        except (ValueError, RuntimeError) as exc:
            raise ModelLoadError(f"cannot load {path} on {self.spec}: {exc}") from exc
        return EmulatedLoaded(self, inner, path.stem)


class EmulatedLoaded(Loaded):
    """A model on an emulated accelerator. Use from one thread, like every Loaded."""

    def __init__(self, device: EmulatedDevice, inner: InterpreterLoaded | SharedLoaded, key: str):
        super().__init__(inner.path, device.spec, inner.inputs, inner.outputs)
        self._dev = device
        self._inner = inner
        self.key = key
        self.last_host_ms: float | None = None  # last real host time of this model (drives 'when-idle')

    def invoke(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        result = self.run(inputs, compute="always")
        assert result.outputs is not None
        return result.outputs

    def run(self, inputs: Sequence[np.ndarray], *, compute: str | None = None) -> RunResult:
        """One paced invocation; outputs computed per the compute policy (see the module docstring)."""
        if self._closed:
            raise HalError(f"{self.path} on {self.device}: model is closed")
        check_inputs(self.inputs, inputs, f"{self.path.name} on {self.device}")
        policy = compute or self._dev.compute
        if policy not in COMPUTE_POLICIES:
            raise BadDeviceSpec(f"compute must be one of {COMPUTE_POLICIES}, got {policy!r}")
        if not self._busy.acquire(blocking=False):
            raise InvokeError(f"{self.path} on {self.device}: concurrent run; a Loaded is used from one thread")
        try:
            if self._dev.fault is not None:
                self._dev.fault.before_invoke()
            return self._run(inputs, policy)
        finally:
            self._busy.release()

    def _should_compute(self, policy: str) -> tuple[bool, bool]:
        """(compute?, holding a host slot?)."""
        if policy == "always":
            return True, False
        if policy == "never":
            return False, False
        if self.last_host_ms is not None:
            try:
                modelled = self._dev.cost(self.key, self.last_host_ms).latency_ms
            except HalError:
                modelled = float("inf")
            if self.last_host_ms > modelled:
                return False, False  # the host could not keep up; time it only
        acquired = self._dev.host.try_acquire()
        return acquired, acquired

    def _run(self, inputs: Sequence[np.ndarray], policy: str) -> RunResult:
        dev = self._dev
        start = dev.clock()
        computed, holding = self._should_compute(policy)
        outputs: list[np.ndarray] | None = None
        host_ms: float | None = None
        if computed:
            inner = self._inner
            try:
                t0 = time.perf_counter()
                if policy == "when-idle" and isinstance(inner, SharedLoaded):
                    outputs = inner.try_invoke(inputs)  # None: another accelerator is using it; time it only
                else:
                    outputs = inner._invoke(inputs)
                if outputs is not None:
                    host_ms = (time.perf_counter() - t0) * 1e3
                    self.last_host_ms = host_ms
                else:
                    computed = False
            finally:
                if holding:
                    dev.host.release()
        cost = dev.cost(self.key, host_ms if computed else self.last_host_ms)
        deadline = start + cost.latency_ms / 1e3
        now = dev.clock()
        if now < deadline:
            dev.sleep(deadline - now)
        end = dev.clock()
        wall_ms = (end - start) * 1e3
        extra: dict[str, Any] = {
            "device": self.device,
            "key": self.key,
            "compute": policy,
            "start_s": start,
            "end_s": end,
            "overrun_ms": max(0.0, wall_ms - cost.latency_ms),
        }
        return RunResult(outputs, computed, "emulated", cost.latency_ms, host_ms, cost.energy_mj, wall_ms, extra)

    def close(self) -> None:
        super().close()
        self._inner.close()
