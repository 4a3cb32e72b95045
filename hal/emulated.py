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

Honesty: every :class:`~hal.loaded.RunResult` from here has ``timing='emulated'``, ``computed`` saying
whether outputs are real, ``latency_ms`` = the *modelled* latency, ``host_ms`` = the real host time
beside it (None if not computed), ``wall_ms`` = what the injected clock saw, and ``energy_mj`` =
the modelled energy, ``energy_source`` 'model:emulated' (emulated accelerators are never metered; see hal.energy).

``run(inputs)`` answers like every device's: ``run(None)`` (no inputs exist) is timed only, like
``compute='never'``. ``run(inputs, compute=...)`` overrides the device's policy for one run. ``invoke()`` is the
plain Loaded verb: it always computes real outputs (the caller asked for them), paced like run(compute='always').

Faults (``EmulatedDevice(..., fault=FaultSpec(...))``, the platform file's ``fault`` key of an emulated
accelerator): a device that fails a fraction of its invokes (``fail_rate``: InvokeError), hangs in some
(``hang_rate``: the invoke blocks ``hang_s`` seconds, or until the device is closed), or vanishes
(``vanish_after_s`` after its first invoke every invoke raises DeviceUnavailable, for ``vanish_for_s`` seconds or
for good). Draws come from ``random.Random(seed)``, so a run is repeatable. It exercises the live service's
failure handling (edge_sdrm3/runtime/service.py) without flaky hardware.

Memory: every accelerator that computes on the host may share one interpreter per model file through a
:class:`~hal.host.HostInterpreters` pool (``EmulatedDevice(..., shared=pool)``; see hal.host).

The kind registers itself in :func:`hal.devices.open_device`'s table when this module is imported (``import hal``
does), so ``open_device('emulated:NAME', cost=...)`` opens an :class:`EmulatedDevice`.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from hal import runtime
from hal.devices import Device, DeviceInfo, register_kind
from hal.errors import BadDeviceSpec, BadInput, DeviceUnavailable, HalError, InvokeError, ModelLoadError
from hal.host import HostInterpreters, HostSlots, SharedLoaded
from hal.loaded import InterpreterLoaded, Loaded, RunResult

# HostSlots and HostInterpreters (hal.host) are named here too: they are this device's constructor arguments.
__all__ = [
    "COMPUTE_POLICIES", "Cost", "CostModel", "CostTable", "EmulatedDevice", "EmulatedLoaded", "FaultInjector",
    "FaultSpec", "HostInterpreters", "HostSlots", "RelativeCost",
]

COMPUTE_POLICIES = ("always", "never", "when-idle")
ENERGY_SOURCE = "model:emulated"


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

    @classmethod
    def open(
        cls,
        spec: str,
        name: str,
        *,
        threads: int | None = None,
        cost: CostModel | None = None,
        compute: str = "when-idle",
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        host: HostSlots | None = None,
        shared: HostInterpreters | None = None,
        fault: FaultSpec | None = None,
    ) -> EmulatedDevice:
        """open_device's opener of 'emulated:NAME': ``threads`` are the host threads of a private interpreter."""
        return cls(
            name, cost, compute=compute, clock=clock, sleep=sleep, host=host, host_threads=threads or 1,
            shared=shared, fault=fault,
        )

    @property
    def energy_source(self) -> str:
        """Every run is charged its cost model's energy (an emulated accelerator is never metered)."""
        return ENERGY_SOURCE

    def release_hangs(self) -> None:
        """End every injected hang now (and later ones at once): called before the device is closed."""
        if self.fault is not None:
            self.fault.released.set()

    def close(self) -> None:
        self.release_hangs()
        super().close()

    def modelled_ms(self, key: str) -> float:
        """The cost model's latency of model ``key`` (inf when it has none)."""
        try:
            return self.cost(key, None).latency_ms
        except HalError:
            return math.inf

    def _cheapest(self, models: Sequence[Loaded]) -> Loaded | None:
        """The loaded model of the least modelled work (the first of equals): a probe should cost little."""
        return min(models, key=lambda m: self.modelled_ms(m.key), default=None)

    def _load(self, path: Path) -> Loaded:
        if self.shared is not None:
            return EmulatedLoaded(self, self.shared.view(path, self.spec))
        try:
            interpreter = runtime.make_interpreter(str(path), num_threads=self.host_threads)
            inner = InterpreterLoaded(path, self.spec, interpreter, (), self.host_threads)
        except (ValueError, RuntimeError) as exc:
            raise ModelLoadError(f"cannot load {path} on {self.spec}: {exc}") from exc
        return EmulatedLoaded(self, inner)


class EmulatedLoaded(Loaded):
    """A model on an emulated accelerator. Use from one thread, like every Loaded."""

    def __init__(self, device: EmulatedDevice, inner: InterpreterLoaded | SharedLoaded):
        super().__init__(inner.path, device.spec, inner.inputs, inner.outputs)
        self._dev = device
        self._inner = inner
        self.last_host_ms: float | None = None  # last real host time of this model (drives 'when-idle')

    def invoke(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        result = self.run(inputs, compute="always")
        assert result.outputs is not None
        return result.outputs

    def run(self, inputs: Sequence[np.ndarray] | None, *, compute: str | None = None) -> RunResult:
        """One paced invocation; outputs computed per the compute policy (see the module docstring)."""
        if compute is not None and compute not in COMPUTE_POLICIES:
            raise BadDeviceSpec(f"compute must be one of {COMPUTE_POLICIES}, got {compute!r}")
        if inputs is None:
            if compute == "always":
                raise BadInput(f"{self.path.name} on {self.device}: compute='always' needs inputs, got None")
            if self._closed:
                raise InvokeError(f"{self.path} on {self.device}: model is closed")
            policy = "never"
        else:
            self._check(inputs)
            policy = compute or self._dev.compute
        with self._exclusive("run"):
            if self._dev.fault is not None:
                self._dev.fault.before_invoke()
            return self._run(inputs, policy)

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

    def _run(self, inputs: Sequence[np.ndarray] | None, policy: str) -> RunResult:
        dev = self._dev
        start = dev.clock()
        computed, holding = self._should_compute(policy)
        outputs: list[np.ndarray] | None = None
        host_ms: float | None = None
        if computed and inputs is not None:
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
        return RunResult(
            outputs=outputs,
            computed=computed,
            timing="emulated",
            latency_ms=cost.latency_ms,
            host_ms=host_ms,
            energy_mj=cost.energy_mj,
            energy_source=ENERGY_SOURCE,
            wall_ms=wall_ms,
            extra=extra,
        )

    def close(self) -> None:
        super().close()
        self._inner.close()


register_kind("emulated", EmulatedDevice.open)
