"""Hardware layer: TFLite runtime, delegates, emulated accelerators, energy meters. Knows nothing of jobs.

The verbs (pycoral-style, device strings such as 'cpu:2', 'gpu', 'edgetpu:usb:0', 'emulated:npu0')::

    runtime_info() -> dict                      which TFLite runtime (hal.runtime)
    discover() -> Discovery                     usable devices; .skipped has the reasons (hal.devices)
    open_device(spec, **opts) -> Device         Device.load(path) -> Loaded; Loaded.invoke(inputs) / .run(inputs)
    best_meter(root='/') -> EnergyMeter         read_joules(), source (hal.energy)
    detect() -> dict                            all of the above for `edge-sdrm3 platforms --detect`

Emulated accelerators and their cost models are in hal.emulated; errors in hal.errors.
"""

from __future__ import annotations

import os
from typing import Any

from hal.devices import DeviceInfo, Discovery, discover, open_device
from hal.energy import EnergyMeter, best_meter
from hal.errors import HalError, RuntimeMissing
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
    "best_meter",
    "detect",
    "discover",
    "open_device",
    "runtime_info",
]
