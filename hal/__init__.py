"""Hardware layer: TFLite runtime, delegates, emulated accelerators, energy meters. Knows nothing of jobs.

The verbs (pycoral-style, device strings such as 'cpu:2', 'gpu', 'edgetpu:usb:0', 'emulated:npu0')::

    runtime_info() -> dict                      which TFLite runtime (hal.runtime)
    discover() -> Discovery                     usable devices; .skipped has the reasons (hal.discovery)
    open_device(spec, **opts) -> Device         Device.load(path, key=...) -> Loaded; Device.probe() (hal.devices)
    Loaded.run(inputs) -> RunResult             one call for every kind, energy always filled; .invoke(inputs)
    best_meter(root='/') -> EnergyMeter         read_joules(), source (hal.energy)
    detect() -> dict                            all of the above for `edge-sdrm3 platforms --detect`

Modules by concern: hal.loaded (a model on a device, RunResult), hal.devices (the real kinds and open_device's
table of openers), hal.emulated (emulated accelerators, their cost models and faults; the kind registers itself
in that table when imported, here), hal.host (the host interpreter pool), hal.discovery, hal.native (native
libraries), hal.energy, hal.runtime; errors in hal.errors.
"""

from __future__ import annotations

import os
from typing import Any

from hal import emulated  # noqa: F401  (registers the emulated device kind in open_device's table)
from hal.devices import DeviceInfo, open_device
from hal.discovery import Discovery, discover
from hal.energy import EnergyMeter, best_meter
from hal.errors import HalError, RuntimeMissing
from hal.loaded import RunResult
from hal.runtime import runtime_info


def detect(root: str | os.PathLike[str] = "/", *, watts_per_core: float = 1.0) -> dict[str, Any]:
    """Everything `edge-sdrm3 platforms --detect` prints: runtime, devices (and why others were skipped), meter.

    JSON-ready. Without a TFLite runtime it still answers, with the reason under ``runtime.error``.
    """
    try:
        info: dict[str, Any] = runtime_info()
        found = discover()
    except RuntimeMissing as exc:
        info, found = {"runtime": None, "error": str(exc)}, Discovery()
    skipped_meters: list[tuple[str, str]] = []
    meter = best_meter(root, watts_per_core=watts_per_core, skipped=skipped_meters)
    return {
        "runtime": info,
        **found.as_dict(),
        "energy_meter": {"source": meter.source, "skipped": [{"source": s, "reason": r} for s, r in skipped_meters]},
    }


__all__ = [
    "DeviceInfo",
    "Discovery",
    "EnergyMeter",
    "HalError",
    "RunResult",
    "best_meter",
    "detect",
    "discover",
    "open_device",
    "runtime_info",
]
