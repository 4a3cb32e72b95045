"""Discovery: which devices can run TFLite models here, each proven by opening it (and, for the CPU, a run).

``discover()`` probes each candidate device string once: the usable ones are returned, the rest go to
``.skipped`` with the error's class and text, and one log line each. 'edgetpu' expands to every attached Edge
TPU through libedgetpu's C API, as pycoral's ``list_edge_tpus`` does. Emulated accelerators come from platform
files, not from probing.
"""

from __future__ import annotations

import ctypes
import dataclasses
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hal import runtime
from hal.devices import DEFAULT_CANDIDATES, PROBE_MODEL, CpuDevice, DeviceInfo, open_device, parse_spec
from hal.errors import DeviceUnavailable, HalError
from hal.loaded import InterpreterLoaded
from hal.native import EDGETPU_LIBRARY, load_library, platform_key

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Skipped:
    """A candidate device that is not usable here, and why (the error's text)."""

    spec: str
    error: str  # exception class name, e.g. 'DeviceUnavailable'
    reason: str


class Discovery(list):  # list[DeviceInfo]
    """discover()'s answer: the usable devices (it *is* the list) plus ``skipped`` with reasons."""

    def __init__(self, found: Sequence[DeviceInfo] = (), skipped: Sequence[Skipped] = ()) -> None:
        super().__init__(found)
        self.skipped: list[Skipped] = list(skipped)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready view for `platforms --detect`."""
        return {
            "devices": [dataclasses.asdict(d) for d in self],
            "skipped": [dataclasses.asdict(s) for s in self.skipped],
        }


def list_edge_tpus(library: str | None = None) -> list[dict[str, str]]:
    """Enumerate attached Edge TPUs through libedgetpu's C API (edgetpu_list_devices), like pycoral."""

    class _EdgeTpuDevice(ctypes.Structure):
        _fields_ = [("type", ctypes.c_int), ("path", ctypes.c_char_p)]

    lib = load_library(library or EDGETPU_LIBRARY[platform_key()], "edgetpu")
    lib.edgetpu_list_devices.argtypes = [ctypes.POINTER(ctypes.c_size_t)]
    lib.edgetpu_list_devices.restype = ctypes.POINTER(_EdgeTpuDevice)
    lib.edgetpu_free_devices.argtypes = [ctypes.POINTER(_EdgeTpuDevice)]
    count = ctypes.c_size_t(0)
    devices = lib.edgetpu_list_devices(ctypes.byref(count))
    try:
        found = []
        seen = {"pci": 0, "usb": 0}
        for i in range(count.value):
            bus = "pci" if devices[i].type == 0 else "usb"
            found.append({"spec": f"edgetpu:{bus}:{seen[bus]}", "path": (devices[i].path or b"").decode()})
            seen[bus] += 1
        return found
    finally:
        if devices:
            lib.edgetpu_free_devices(devices)


def _probe(spec: str) -> DeviceInfo:
    device = open_device(spec)
    try:
        if isinstance(device, CpuDevice):  # prove the runtime really runs a model here
            interpreter = runtime.make_interpreter(None, model_content=PROBE_MODEL, num_threads=1)
            InterpreterLoaded(Path("<probe>"), spec, interpreter, (), 1)._invoke([np.ones((1, 1), np.float32)] * 2)
        return device.info
    finally:
        device.close()


def discover(candidates: Sequence[str] = DEFAULT_CANDIDATES) -> Discovery:
    """Probe each candidate once; usable ones are returned, the rest go to ``.skipped`` with one log line each.

    'edgetpu' expands to every attached Edge TPU (edgetpu:usb:0, edgetpu:pci:0, ...) when libedgetpu
    loads. Emulated accelerators come from platform files, not from probing; pass 'emulated:NAME' only
    with a cost model through open_device.
    """
    for spec in candidates:
        parse_spec(spec)  # a malformed candidate is the caller's bug, not a missing device
    found: list[DeviceInfo] = []
    skipped: list[Skipped] = []

    def skip(spec: str, exc: Exception) -> None:
        skipped.append(Skipped(spec, type(exc).__name__, str(exc)))
        log.info("device %s skipped: %s", spec, exc)

    for spec in candidates:
        specs = [spec]
        if spec == "edgetpu":
            try:
                specs = [d["spec"] for d in list_edge_tpus()]
            except (HalError, AttributeError, OSError) as exc:
                skip(spec, exc if isinstance(exc, HalError) else DeviceUnavailable(f"edgetpu: {exc}"))
                continue
            if not specs:
                skip(spec, DeviceUnavailable("edgetpu: libedgetpu loads but no Edge TPU is attached"))
                continue
        for one in specs:
            try:
                found.append(_probe(one))
            except HalError as exc:
                skip(one, exc)
    return Discovery(found, skipped)
