"""The hal exception tree: one base, one subclass per way the hardware layer can fail.

Why typed errors: callers (discovery, the live executors) must tell "this board has no such device"
(skip it, once, with a log line) from "this model cannot run here" (mark the variant unsupported) from
"the caller passed a bad tensor" (a bug upstream). Every message names the bad value.
"""

from __future__ import annotations


class HalError(Exception):
    """Base of every error raised by hal."""


class RuntimeMissing(HalError, ImportError):
    """Neither ai_edge_litert nor tflite_runtime can be imported."""


class BadDeviceSpec(HalError, ValueError):
    """A device string that hal does not understand (e.g. 'bogus', 'cpu:zero')."""


class DeviceUnavailable(HalError):
    """The device is not on this machine: its native library or hardware is missing."""


class DelegateError(HalError):
    """The device's delegate/accelerator exists but failed to initialise or to take the model's ops."""


class ModelLoadError(HalError):
    """A model file is missing, is not a valid .tflite file, or does not suit the device."""


class InvokeError(HalError):
    """The runtime failed while running a loaded model."""


class BadInput(HalError, ValueError):
    """Inputs to invoke() have the wrong count, shape or dtype."""


class MeterUnavailable(HalError):
    """An energy meter's source (sysfs files, command) is absent or unreadable here."""
