"""Devices: open one by its device string, load models onto it, probe it, close it.

Device strings (the only way callers name hardware)::

    cpu               XNNPACK on the host CPU, threads = os.cpu_count()
    cpu:N             the same with N threads
    gpu               LiteRT CompiledModel with the GPU accelerator (WebGPU/OpenCL), else the classic
                      GPU delegate library through load_delegate
    npu               LiteRT CompiledModel with the NPU accelerator (a vendor dispatch library under
                      ai_edge_litert/vendors/*/dispatch must be installed and loadable)
    edgetpu           load_delegate(libedgetpu) on the first Edge TPU found
    edgetpu:usb[:N]   the N-th USB (or PCIe with 'pci') Edge TPU; option {'device': 'usb:N'}
    emulated:NAME     an emulated accelerator (hal.emulated): real outputs on the host CPU, modelled timing

Each kind has an opener in :func:`open_device`'s table; a kind defined elsewhere adds its own with
:func:`register_kind` (hal.emulated registers 'emulated' when it is imported, which ``import hal`` does), so
this module never imports a kind back. Options after the string go to the kind's opener: every kind takes
``threads``; real kinds ``energy`` (hal.energy.InvokeEnergy: what each run is charged; default a meter) and
the cpu ``shared`` (a hal.host.HostInterpreters pool); an option a kind does not take is a BadDeviceSpec.

Why strict device choices: ``gpu`` and ``npu`` are compiled for that accelerator *alone*, without the
CPU fallback LiteRT offers, because a "gpu" that silently runs on the CPU would make every latency
profile and schedule a lie. A model whose ops the accelerator cannot take is a DelegateError at load;
the caller then marks that variant unsupported on that device.

Threading: a Loaded is used from one thread at a time (hal.loaded); the live service gives each accelerator one
worker thread. ``Interpreter.invoke`` releases the GIL, so workers of different accelerators run in parallel.

Errors are typed (hal.errors): missing library/hardware -> DeviceUnavailable, failing delegate or an
op it cannot take -> DelegateError, bad file -> ModelLoadError, bad inputs -> BadInput. Native crashes
inside a vendor library cannot be caught in-process; everything that reports an error is.
"""

from __future__ import annotations

import base64
import inspect
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hal import runtime
from hal.energy import InvokeEnergy, MeteredEnergy
from hal.errors import BadDeviceSpec, DelegateError, DeviceUnavailable, HalError, ModelLoadError
from hal.host import HostInterpreters
from hal.loaded import CompiledLoaded, InterpreterLoaded, Loaded, check_model_file
from hal.native import (
    EDGETPU_LIBRARY,
    GPU_DELEGATE_LIBRARY,
    captured_native_stderr,
    find_npu_dispatch,
    load_library,
    platform_key,
    salient,
)

if TYPE_CHECKING:  # annotations only (postponed), so no runtime dependency on typing_extensions
    from typing_extensions import Self

VALID_FORMS = "cpu, cpu:N (N threads), gpu, npu, edgetpu, edgetpu:usb[:N], edgetpu:pci[:N], emulated:NAME"
DEFAULT_CANDIDATES: tuple[str, ...] = ("cpu", "gpu", "npu", "edgetpu")
EDGETPU_CUSTOM_OP = b"edgetpu-custom-op"

# A 388-byte float32 ADD model, a + b of shape [1, 1] (written by tests/hal/conftest.py build_add_model):
# compiled once per probe so that an accelerator is proven to work before any real model is loaded.
PROBE_MODEL = base64.b64decode(
    "CAAAAFRGTDOm////FAAAADQAAABEAAAAXAEAAAMAAAAEAAAAHAAAABQAAAAMAAAABAAAALj+//+8/v//wP7//8T+//8MAAAAaGFsLXRl"
    "c3QtYWRkAAAAAAEAAAAUAAAAAAAOABgAFAAQAAwACAAEAA4AAAAUAAAAHAAAAFwAAABgAAAAaAAAAAQAAABtYWluAAAAAAEAAAAUAAAA"
    "AAAOABQAAAAQAAwACwAEAA4AAAAQAAAAAAAACwwAAAAQAAAARP///wEAAAACAAAAAgAAAAAAAAABAAAAAQAAAAIAAAACAAAAAAAAAAEA"
    "AAADAAAAYAAAACwAAAAEAAAAuP///wwAAAADAAAADAAAAAMAAABzdW0AAgAAAAEAAAABAAAA3P///wwAAAACAAAADAAAAAEAAABiAAAA"
    "AgAAAAEAAAABAAAADAAQAAwAAAAIAAQADAAAAAwAAAABAAAADAAAAAEAAABhAAAAAgAAAAEAAAABAAAAAQAAAAgAAAAEAAQABAAAAA=="
)


@dataclass(frozen=True)
class DeviceInfo:
    """A usable device as discover() found it."""

    spec: str  # the string to pass to open_device()
    kind: str  # 'cpu' | 'gpu' | 'npu' | 'edgetpu' | 'emulated'
    backend: str  # how it runs: 'xnnpack', 'litert:gpu', 'delegate:libedgetpu.so.1', ...
    threads: int | None = None
    detail: str = ""


def require_edgetpu_model(path: str | os.PathLike[str]) -> Path:
    """Refuse a model not compiled by edgetpu_compiler: it would run wholly on the CPU behind an 'edgetpu' label."""
    p = check_model_file(path)
    if EDGETPU_CUSTOM_OP not in p.read_bytes():
        raise ModelLoadError(
            f"{p} is not compiled for the Edge TPU (no edgetpu-custom-op); compile it with edgetpu_compiler "
            "and load the *_edgetpu.tflite file"
        )
    return p


# -------------------------------------------------------------------------------------------- devices


class Device:
    """An opened device. load() models onto it; probe() proves it works; close() releases it and its models.

    ``energy`` charges every run of a model loaded here (hal.energy); ``energy_source`` says how.
    """

    kind = "device"

    def __init__(self, spec: str, info: DeviceInfo, energy: InvokeEnergy | None = None):
        self.spec = spec
        self.info = info
        self.energy: InvokeEnergy = energy if energy is not None else MeteredEnergy()
        self._loaded: list[Loaded] = []
        self._closed = False

    @property
    def energy_source(self) -> str:
        return self.energy.source

    def load(self, path: str | os.PathLike[str], *, key: str | None = None) -> Loaded:
        """Load a .tflite file; ModelLoadError names the file, DelegateError says the device refused it.

        ``key`` names the model in the device's cost or energy model (default: the file's stem).
        """
        if self._closed:
            raise HalError(f"{self.spec}: device is closed")
        p = check_model_file(path)
        loaded = self._load(p)
        loaded.key = p.stem if key is None else key
        self._loaded = [m for m in self._loaded if not m.closed]
        self._loaded.append(loaded)
        return loaded

    def probe(self) -> None:
        """Prove that the device (still) works: one timing-only run, ``run(None)``, of the model loaded here that
        costs least. Nothing loaded: nothing to prove. Raises HalError (or the runtime's error) when it fails."""
        loaded = self._cheapest([m for m in self._loaded if not m.closed])
        if loaded is not None:
            loaded.run(None)

    def _cheapest(self, models: Sequence[Loaded]) -> Loaded | None:
        """A real device has no model of its costs: the first model loaded (and still open)."""
        return models[0] if models else None

    def release_hangs(self) -> None:
        """End every invoke blocked in an injected hang (emulated devices); a native invoke cannot be interrupted."""

    def close(self) -> None:
        for loaded in self._loaded:
            loaded.close()
        self._loaded.clear()
        self._closed = True

    def _load(self, path: Path) -> Loaded:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.spec} ({self.info.backend})>"


class CpuDevice(Device):
    """The host CPU through the runtime's default resolver (XNNPACK), with an explicit thread count.

    With ``shared`` (a HostInterpreters pool of the same thread count) its models come from the pool, one
    interpreter per file for every accelerator computing on the host; a pool of another thread count is not
    used, since the device would then not run with the threads it was opened with.
    """

    kind = "cpu"

    def __init__(
        self, spec: str, threads: int, energy: InvokeEnergy | None = None, shared: HostInterpreters | None = None
    ):
        super().__init__(spec, DeviceInfo(spec, "cpu", "xnnpack", threads), energy)
        self.threads = threads
        self.shared = shared if shared is not None and shared.threads == threads else None

    def _load(self, path: Path) -> Loaded:
        if self.shared is not None:
            return self.shared.view(path, self.spec, self.energy)
        try:
            interpreter = runtime.make_interpreter(str(path), num_threads=self.threads)
            return InterpreterLoaded(path, self.spec, interpreter, (), self.threads, self.energy)
        except (ValueError, RuntimeError) as exc:
            raise ModelLoadError(f"cannot load {path} on {self.spec}: {exc}") from exc


class DelegateDevice(Device):
    """A device behind a TFLite external delegate library (Edge TPU, classic GPU delegate).

    The library is loaded and one delegate created at open (the probe); each load() creates its own
    delegate, since a delegate instance must not be shared between interpreters.
    """

    def __init__(
        self,
        spec: str,
        kind: str,
        library: str,
        options: dict[str, str],
        threads: int,
        energy: InvokeEnergy | None = None,
    ):
        info = DeviceInfo(spec, kind, f"delegate:{library}", threads, _describe(options))
        super().__init__(spec, info, energy)
        self.kind = kind
        self.library = library
        self.options = dict(options)
        self.threads = threads
        lib = load_library(library, spec)
        if not all(hasattr(lib, f"tflite_plugin_{verb}_delegate") for verb in ("create", "destroy")):
            raise DelegateError(
                f"{spec}: {library} is not a TFLite external delegate (no tflite_plugin_create_delegate)"
            )
        self._make_delegate()  # the probe: raises DelegateError if the device cannot be opened

    def _make_delegate(self) -> Any:
        try:
            return runtime.select_runtime().module.load_delegate(self.library, self.options or None)
        except (ValueError, RuntimeError, OSError) as exc:
            message = " ".join(str(exc).split())
            raise DelegateError(f"{self.spec}: delegate {self.library} failed: {message}") from exc

    def _load(self, path: Path) -> Loaded:
        if self.kind == "edgetpu":
            require_edgetpu_model(path)
        delegate = self._make_delegate()
        try:
            interpreter = runtime.make_interpreter(str(path), num_threads=self.threads, delegates=[delegate])
            return InterpreterLoaded(path, self.spec, interpreter, [delegate], self.threads, self.energy)
        except (ValueError, RuntimeError) as exc:
            raise DelegateError(f"{self.spec}: {self.library} could not take {path}: {exc}") from exc


class LiteRtAcceleratorDevice(Device):
    """A LiteRT CompiledModel accelerator ('gpu' or 'npu'), compiled for that accelerator alone.

    One LiteRT Environment per device (it owns the registered accelerators); at open the embedded probe
    model is compiled, so a device that opens is known to work.
    """

    def __init__(self, spec: str, kind: str, dispatch_dir: str = "", energy: InvokeEnergy | None = None):
        super().__init__(spec, DeviceInfo(spec, kind, f"litert:{kind}", None, dispatch_dir), energy)
        self.kind = kind
        rt = runtime.select_runtime()
        if not rt.has_compiled_model:
            raise DeviceUnavailable(f"{spec}: {rt.name} {rt.version} has no LiteRT CompiledModel API")
        from ai_edge_litert import compiled_model as cm  # only reached with ai_edge_litert present

        self._cm = cm
        self._accel = cm.HardwareAccelerator.GPU if kind == "gpu" else cm.HardwareAccelerator.NPU
        options = cm.EnvironmentOptions(
            runtime_path=os.path.dirname(os.path.abspath(cm.__file__)), dispatch_library_path=dispatch_dir
        )
        with captured_native_stderr() as native:
            try:
                self._env = cm.Environment.create(options=options)
            except (RuntimeError, ValueError) as exc:
                raise DelegateError(f"{spec}: cannot create LiteRT environment: {exc} {salient(native)}") from exc
        try:
            self._compile(None, PROBE_MODEL, "the probe model").close()
        except DelegateError:
            with captured_native_stderr():  # the environment's teardown logs too
                self._env = None
            raise

    def _compile(self, path: Path | None, content: bytes | None, what: str) -> Any:
        with captured_native_stderr() as native:
            try:
                if path is not None:
                    return self._cm.CompiledModel.from_file(
                        str(path), environment=self._env, hardware_accel=self._accel
                    )
                return self._cm.CompiledModel.from_buffer(content, environment=self._env, hardware_accel=self._accel)
            except (RuntimeError, ValueError) as exc:
                error = exc
        detail = salient(native) or str(error).replace("\n", " ")
        raise DelegateError(f"{self.spec}: LiteRT {self.kind.upper()} accelerator failed on {what}: {detail}")

    def _load(self, path: Path) -> Loaded:
        return CompiledLoaded(path, self.spec, self._compile(path, None, str(path)), self.energy)

    def close(self) -> None:
        super().close()
        self._env = None


def _describe(options: dict[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in options.items())


# ------------------------------------------------------------------------------------------ open/parse


@dataclass(frozen=True)
class ParsedSpec:
    kind: str
    arg: str = ""  # cpu: thread count; edgetpu: 'usb:0'; emulated: NAME


_SPEC = re.compile(
    r"^(?:(?P<cpu>cpu)(?::(?P<threads>\d+))?|(?P<gpu>gpu)|(?P<npu>npu)"
    r"|(?P<tpu>edgetpu)(?::(?P<bus>usb|pci)(?::(?P<idx>\d+))?)?|(?P<emu>emulated):(?P<name>[A-Za-z0-9_.\-]+))$"
)


def parse_spec(spec: str) -> ParsedSpec:
    """Validate a device string; BadDeviceSpec lists the valid forms."""
    m = _SPEC.match(spec.strip()) if isinstance(spec, str) else None
    if not m:
        raise BadDeviceSpec(f"unknown device {spec!r}; valid forms: {VALID_FORMS}")
    if m["cpu"]:
        if m["threads"] is not None and int(m["threads"]) < 1:
            raise BadDeviceSpec(f"device {spec!r}: thread count must be >= 1; valid forms: {VALID_FORMS}")
        return ParsedSpec("cpu", m["threads"] or "")
    if m["tpu"]:
        bus = f"{m['bus']}:{m['idx']}" if m["idx"] is not None else (m["bus"] or "")
        return ParsedSpec("edgetpu", bus)
    if m["emu"]:
        return ParsedSpec("emulated", m["name"])
    return ParsedSpec("gpu" if m["gpu"] else "npu")


def default_threads() -> int:
    return max(1, os.cpu_count() or 1)


# An opener: (device string, its argument as parse_spec gives it, keyword options) -> Device.
Opener = Callable[..., Device]
_OPENERS: dict[str, Opener] = {}


def register_kind(kind: str, opener: Opener) -> None:
    """Put ``opener`` in open_device's table for device strings of ``kind`` (one of parse_spec's kinds)."""
    _OPENERS[kind] = opener


def open_device(spec: str, **options: Any) -> Device:
    """Open a device by its string. Raises BadDeviceSpec, DeviceUnavailable or DelegateError, never crashes.

    ``options`` go to the kind's opener (see the module docstring); ``threads``: CPU threads (for 'cpu' when
    the string has none, and for CPU-side ops of delegates); emulated devices take hal.emulated.EmulatedDevice's
    keyword arguments (cost=..., compute=..., clock=...).
    """
    parsed = parse_spec(spec)
    spec = spec.strip()
    opener = _OPENERS.get(parsed.kind)
    if opener is None:
        raise BadDeviceSpec(f"device {spec!r}: no opener registered for kind {parsed.kind!r} (have {sorted(_OPENERS)})")
    try:
        inspect.signature(opener).bind(spec, parsed.arg, **options)
    except TypeError as exc:
        raise BadDeviceSpec(f"device {spec!r}: {exc}") from None
    return opener(spec, parsed.arg, **options)


def _open_cpu(
    spec: str, arg: str, *, threads: int | None = None, energy: InvokeEnergy | None = None,
    shared: HostInterpreters | None = None,
) -> Device:
    runtime.select_runtime()
    return CpuDevice(spec, int(arg) if arg else threads or default_threads(), energy, shared)


def _open_edgetpu(spec: str, arg: str, *, threads: int | None = None, energy: InvokeEnergy | None = None) -> Device:
    library = EDGETPU_LIBRARY[platform_key()]
    options = {"device": arg} if arg else {}
    return DelegateDevice(spec, "edgetpu", library, options, threads or default_threads(), energy)


def _open_gpu(spec: str, arg: str, *, threads: int | None = None, energy: InvokeEnergy | None = None) -> Device:
    """LiteRT's GPU accelerator first, the classic GPU delegate library second; both reasons if neither works."""
    reasons: list[str] = []
    try:
        return LiteRtAcceleratorDevice(spec, "gpu", energy=energy)
    except HalError as exc:
        reasons.append(str(exc))
    library = GPU_DELEGATE_LIBRARY[platform_key()]
    try:
        return DelegateDevice(spec, "gpu", library, {}, threads or default_threads(), energy)
    except HalError as exc:
        reasons.append(str(exc))
    raise DeviceUnavailable(f"{spec}: no working GPU backend: " + " | ".join(reasons))


def _open_npu(spec: str, arg: str, *, threads: int | None = None, energy: InvokeEnergy | None = None) -> Device:
    return LiteRtAcceleratorDevice(spec, "npu", find_npu_dispatch(), energy)


register_kind("cpu", _open_cpu)
register_kind("edgetpu", _open_edgetpu)
register_kind("gpu", _open_gpu)
register_kind("npu", _open_npu)
