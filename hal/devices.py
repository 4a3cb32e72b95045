"""Devices: discover what can run TFLite models here, open one by its device string, load, invoke, close.

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

Why strict device choices: ``gpu`` and ``npu`` are compiled for that accelerator *alone*, without the
CPU fallback LiteRT offers, because a "gpu" that silently runs on the CPU would make every latency
profile and schedule a lie. A model whose ops the accelerator cannot take is a DelegateError at load;
the caller then marks that variant unsupported on that device.

Threading: a :class:`Loaded` is used from one thread at a time (TFLite interpreters are not
thread-safe); the live service gives each accelerator one worker thread. ``Interpreter.invoke``
releases the GIL, so workers of different accelerators run in parallel. A second concurrent call on
the same Loaded raises InvokeError instead of corrupting the interpreter.

Errors are typed (hal.errors): missing library/hardware -> DeviceUnavailable, failing delegate or an
op it cannot take -> DelegateError, bad file -> ModelLoadError, bad inputs -> BadInput. Native crashes
inside a vendor library cannot be caught in-process; everything that reports an error is.
"""

from __future__ import annotations

import base64
import contextlib
import ctypes
import dataclasses
import glob
import logging
import os
import re
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from hal import runtime
from hal.errors import (
    BadDeviceSpec,
    BadInput,
    DelegateError,
    DeviceUnavailable,
    HalError,
    InvokeError,
    ModelLoadError,
)

if TYPE_CHECKING:  # annotations only (postponed), so no runtime dependency on typing_extensions
    from typing_extensions import Self

log = logging.getLogger(__name__)

VALID_FORMS = "cpu, cpu:N (N threads), gpu, npu, edgetpu, edgetpu:usb[:N], edgetpu:pci[:N], emulated:NAME"
DEFAULT_CANDIDATES: tuple[str, ...] = ("cpu", "gpu", "npu", "edgetpu")

# Native library of each delegate, per platform (as pycoral's edgetpu.py does for libedgetpu).
EDGETPU_LIBRARY = {"linux": "libedgetpu.so.1", "darwin": "libedgetpu.1.dylib", "win32": "edgetpu.dll"}
GPU_DELEGATE_LIBRARY = {
    "linux": "libtensorflowlite_gpu_delegate.so",
    "darwin": "libtensorflowlite_gpu_delegate.dylib",
    "win32": "tensorflowlite_gpu_delegate.dll",
}
EDGETPU_CUSTOM_OP = b"edgetpu-custom-op"

# A 388-byte float32 ADD model, a + b of shape [1, 1] (written by tests/hal/conftest.py build_add_model):
# compiled once per probe so that an accelerator is proven to work before any real model is loaded.
_PROBE_MODEL = base64.b64decode(
    "CAAAAFRGTDOm////FAAAADQAAABEAAAAXAEAAAMAAAAEAAAAHAAAABQAAAAMAAAABAAAALj+//+8/v//wP7//8T+//8MAAAAaGFsLXRl"
    "c3QtYWRkAAAAAAEAAAAUAAAAAAAOABgAFAAQAAwACAAEAA4AAAAUAAAAHAAAAFwAAABgAAAAaAAAAAQAAABtYWluAAAAAAEAAAAUAAAA"
    "AAAOABQAAAAQAAwACwAEAA4AAAAQAAAAAAAACwwAAAAQAAAARP///wEAAAACAAAAAgAAAAAAAAABAAAAAQAAAAIAAAACAAAAAAAAAAEA"
    "AAADAAAAYAAAACwAAAAEAAAAuP///wwAAAADAAAADAAAAAMAAABzdW0AAgAAAAEAAAABAAAA3P///wwAAAACAAAADAAAAAEAAABiAAAA"
    "AgAAAAEAAAABAAAADAAQAAwAAAAIAAQADAAAAAwAAAABAAAADAAAAAEAAABhAAAAAgAAAAEAAAABAAAAAQAAAAgAAAAEAAQABAAAAA=="
)


def _platform_key() -> str:
    return "darwin" if sys.platform == "darwin" else "win32" if sys.platform.startswith("win") else "linux"


# --------------------------------------------------------------------------------------------- values


@dataclass(frozen=True)
class TensorSpec:
    """One model input or output as the runtime reports it."""

    name: str
    index: int
    shape: tuple[int, ...]
    dtype: np.dtype
    quantization: tuple[float, int] = (0.0, 0)  # (scale, zero_point); (0, 0) = not quantized


@dataclass(frozen=True)
class DeviceInfo:
    """A usable device as discover() found it."""

    spec: str  # the string to pass to open_device()
    kind: str  # 'cpu' | 'gpu' | 'npu' | 'edgetpu' | 'emulated'
    backend: str  # how it runs: 'xnnpack', 'litert:gpu', 'delegate:libedgetpu.so.1', ...
    threads: int | None = None
    detail: str = ""


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


@dataclass(frozen=True)
class RunResult:
    """One invocation as it happened. ``timing`` is 'measured' on real devices, 'emulated' otherwise.

    ``latency_ms`` is the device's latency (measured, or the modelled one for emulated devices);
    ``host_ms`` the real host time spent computing outputs (None when they were not computed).
    """

    outputs: list[np.ndarray] | None
    computed: bool
    timing: str
    latency_ms: float
    host_ms: float | None
    energy_mj: float | None = None
    wall_ms: float | None = None  # start to completion on the caller's clock (pacing included)
    extra: dict[str, Any] = field(default_factory=dict)


# ------------------------------------------------------------------------------------------- helpers


def _details_to_specs(details: Sequence[dict[str, Any]]) -> tuple[TensorSpec, ...]:
    specs = []
    for d in details:
        q = d.get("quantization") or (0.0, 0)
        specs.append(
            TensorSpec(
                name=str(d["name"]),
                index=int(d["index"]),
                shape=tuple(int(x) for x in d["shape"]),
                dtype=np.dtype(d["dtype"]),
                quantization=(float(q[0]), int(q[1])),
            )
        )
    return tuple(specs)


def check_inputs(specs: Sequence[TensorSpec], inputs: Sequence[np.ndarray], where: str) -> None:
    """Raise BadInput naming expected vs got when count, shape or dtype differ (no silent casts)."""
    if len(inputs) != len(specs):
        raise BadInput(f"{where}: expected {len(specs)} input(s) {[s.name for s in specs]}, got {len(inputs)}")
    for i, (spec, x) in enumerate(zip(specs, inputs)):
        if not isinstance(x, np.ndarray):
            raise BadInput(f"{where}: input {i} '{spec.name}' must be a numpy array, got {type(x).__name__}")
        if x.dtype != spec.dtype:
            raise BadInput(f"{where}: input {i} '{spec.name}' expected dtype {spec.dtype}, got {x.dtype}")
        if tuple(x.shape) != spec.shape:
            raise BadInput(f"{where}: input {i} '{spec.name}' expected shape {list(spec.shape)}, got {list(x.shape)}")


def check_model_file(path: str | os.PathLike[str]) -> Path:
    """Cheap real checks before handing a file to native code: it exists and carries the TFL3 identifier."""
    p = Path(path)
    try:
        with p.open("rb") as f:
            head = f.read(8)
    except OSError as exc:
        raise ModelLoadError(f"cannot read model file {p}: {exc.strerror or exc}") from exc
    if len(head) < 8 or head[4:8] != b"TFL3":
        raise ModelLoadError(f"{p} is not a TFLite model (no 'TFL3' flatbuffer identifier)")
    return p


def require_edgetpu_model(path: str | os.PathLike[str]) -> Path:
    """Refuse a model not compiled by edgetpu_compiler: it would run wholly on the CPU behind an 'edgetpu' label."""
    p = check_model_file(path)
    if EDGETPU_CUSTOM_OP not in p.read_bytes():
        raise ModelLoadError(
            f"{p} is not compiled for the Edge TPU (no edgetpu-custom-op); compile it with edgetpu_compiler "
            "and load the *_edgetpu.tflite file"
        )
    return p


@contextlib.contextmanager
def _captured_native_stderr() -> Iterator[list[str]]:
    """Capture what native code writes to fd 2 (LiteRT reports e.g. 'No adapters found' only there).

    Process-wide while active, so used only around short probes/compiles. The full text is logged at
    DEBUG; callers put its error lines into the exception they raise.
    """
    lines: list[str] = []
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):
        yield lines
        return
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield lines
        finally:
            with contextlib.suppress(Exception):
                sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            text = tmp.read().decode("utf-8", "replace")
            if text:
                log.debug("native stderr during probe:\n%s", text)
            lines.extend(text.splitlines())


def _salient(lines: Sequence[str], limit: int = 3) -> str:
    """The few native log lines that say what went wrong (compiler-plugin noise left out)."""
    keep: list[str] = []
    for line in lines:
        if "CompilerPlugin" in line or not re.search(r"ERROR|Failed to|No adapters|not accelerated", line):
            continue
        text = re.sub(r"^.*?\] ", "", line.strip().lstrip("└ ")).strip()
        if text and text not in keep:
            keep.append(text)
    return "; ".join(keep[-limit:])


def _load_library(library: str, what: str) -> ctypes.CDLL:
    """dlopen a native library, turning absence into DeviceUnavailable that names it.

    Done before load_delegate so that a missing library is reported cleanly (the runtime's Delegate
    otherwise leaves a half-built object whose finaliser prints a traceback).
    """
    try:
        return ctypes.CDLL(library)
    except OSError as exc:
        raise DeviceUnavailable(f"{what}: cannot load {library}: {exc}") from exc


# --------------------------------------------------------------------------------------------- loaded


class Loaded:
    """A model loaded on a device: its tensors, invoke(), run(), close(). Use from one thread."""

    def __init__(self, path: Path, device: str, inputs: tuple[TensorSpec, ...], outputs: tuple[TensorSpec, ...]):
        self.path = path
        self.device = device
        self.inputs = inputs
        self.outputs = outputs
        self._busy = threading.Lock()
        self._closed = False

    def invoke(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Run the model once; outputs are fresh arrays in the model's output order."""
        if self._closed:
            raise InvokeError(f"{self.path} on {self.device}: model is closed")
        check_inputs(self.inputs, inputs, f"{self.path.name} on {self.device}")
        if not self._busy.acquire(blocking=False):
            raise InvokeError(f"{self.path} on {self.device}: concurrent invoke; a Loaded is used from one thread")
        try:
            return self._invoke(inputs)
        finally:
            self._busy.release()

    def run(self, inputs: Sequence[np.ndarray]) -> RunResult:
        """invoke() with a record of how long it took (the executors' call)."""
        t0 = time.perf_counter()
        outputs = self.invoke(inputs)
        ms = (time.perf_counter() - t0) * 1e3
        return RunResult(outputs, True, "measured", ms, ms, None, ms)

    def close(self) -> None:
        self._closed = True

    def _invoke(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Loaded {self.path.name} on {self.device}>"


class InterpreterLoaded(Loaded):
    """A model in a TFLite Interpreter (CPU/XNNPACK, or with a delegate such as libedgetpu)."""

    def __init__(self, path: Path, device: str, interpreter: Any, delegates: Sequence[Any], threads: int):
        interpreter.allocate_tensors()
        super().__init__(
            path,
            device,
            _details_to_specs(interpreter.get_input_details()),
            _details_to_specs(interpreter.get_output_details()),
        )
        self.threads = threads
        self._interpreter = interpreter
        self._delegates = list(delegates)  # kept alive as long as the interpreter

    def _invoke(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        it = self._interpreter
        try:
            for spec, x in zip(self.inputs, inputs):
                it.set_tensor(spec.index, x)
            it.invoke()  # releases the GIL
            return [it.get_tensor(spec.index) for spec in self.outputs]
        except (ValueError, RuntimeError) as exc:
            raise InvokeError(f"{self.path.name} on {self.device}: {exc}") from exc

    def close(self) -> None:
        super().close()
        self._interpreter = None
        self._delegates.clear()


class CompiledLoaded(Loaded):
    """A model in a LiteRT CompiledModel (GPU or NPU accelerator), signature 0, buffers made once."""

    def __init__(self, path: Path, device: str, model: Any):
        sig = next(iter(model.get_signature_list()))
        ins = model.get_input_tensor_details(sig)
        outs = model.get_output_tensor_details(sig)
        super().__init__(path, device, _details_to_specs(list(ins.values())), _details_to_specs(list(outs.values())))
        self._model = model
        self._in_buffers = model.create_input_buffers(0)
        self._out_buffers = model.create_output_buffers(0)

    def _invoke(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        try:
            for buf, x in zip(self._in_buffers, inputs):
                buf.write(np.ascontiguousarray(x))
            self._model.run_by_index(0, self._in_buffers, self._out_buffers)
            return [
                buf.read(int(np.prod(spec.shape)), spec.dtype).reshape(spec.shape)
                for buf, spec in zip(self._out_buffers, self.outputs)
            ]
        except (ValueError, RuntimeError) as exc:
            raise InvokeError(f"{self.path.name} on {self.device}: {exc}") from exc

    def close(self) -> None:
        super().close()
        if self._model is not None:
            self._model.close()
        self._model = None


# -------------------------------------------------------------------------------------------- devices


class Device:
    """An opened device. load() models onto it; close() releases it and everything loaded on it."""

    kind = "device"

    def __init__(self, spec: str, info: DeviceInfo):
        self.spec = spec
        self.info = info
        self._loaded: list[Loaded] = []
        self._closed = False

    def load(self, path: str | os.PathLike[str]) -> Loaded:
        """Load a .tflite file; ModelLoadError names the file, DelegateError says the device refused it."""
        if self._closed:
            raise HalError(f"{self.spec}: device is closed")
        loaded = self._load(check_model_file(path))
        self._loaded.append(loaded)
        return loaded

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
    """The host CPU through the runtime's default resolver (XNNPACK), with an explicit thread count."""

    kind = "cpu"

    def __init__(self, spec: str, threads: int):
        super().__init__(spec, DeviceInfo(spec, "cpu", "xnnpack", threads))
        self.threads = threads

    def _load(self, path: Path) -> Loaded:
        try:
            interpreter = runtime.make_interpreter(str(path), num_threads=self.threads)
            return InterpreterLoaded(path, self.spec, interpreter, (), self.threads)
        except (ValueError, RuntimeError) as exc:
            raise ModelLoadError(f"cannot load {path} on {self.spec}: {exc}") from exc


class DelegateDevice(Device):
    """A device behind a TFLite external delegate library (Edge TPU, classic GPU delegate).

    The library is loaded and one delegate created at open (the probe); each load() creates its own
    delegate, since a delegate instance must not be shared between interpreters.
    """

    def __init__(self, spec: str, kind: str, library: str, options: dict[str, str], threads: int):
        super().__init__(spec, DeviceInfo(spec, kind, f"delegate:{library}", threads, _describe(options)))
        self.kind = kind
        self.library = library
        self.options = dict(options)
        self.threads = threads
        lib = _load_library(library, spec)
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
            return InterpreterLoaded(path, self.spec, interpreter, [delegate], self.threads)
        except (ValueError, RuntimeError) as exc:
            raise DelegateError(f"{self.spec}: {self.library} could not take {path}: {exc}") from exc


class LiteRtAcceleratorDevice(Device):
    """A LiteRT CompiledModel accelerator ('gpu' or 'npu'), compiled for that accelerator alone.

    One LiteRT Environment per device (it owns the registered accelerators); at open the embedded probe
    model is compiled, so a device that opens is known to work.
    """

    def __init__(self, spec: str, kind: str, dispatch_dir: str = ""):
        super().__init__(spec, DeviceInfo(spec, kind, f"litert:{kind}", None, dispatch_dir))
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
        with _captured_native_stderr() as native:
            try:
                self._env = cm.Environment.create(options=options)
            except (RuntimeError, ValueError) as exc:
                raise DelegateError(f"{spec}: cannot create LiteRT environment: {exc} {_salient(native)}") from exc
        try:
            self._compile(None, _PROBE_MODEL, "the probe model").close()
        except DelegateError:
            with _captured_native_stderr():  # the environment's teardown logs too
                self._env = None
            raise

    def _compile(self, path: Path | None, content: bytes | None, what: str) -> Any:
        with _captured_native_stderr() as native:
            try:
                if path is not None:
                    return self._cm.CompiledModel.from_file(
                        str(path), environment=self._env, hardware_accel=self._accel
                    )
                return self._cm.CompiledModel.from_buffer(content, environment=self._env, hardware_accel=self._accel)
            except (RuntimeError, ValueError) as exc:
                error = exc
        detail = _salient(native) or str(error).replace("\n", " ")
        raise DelegateError(f"{self.spec}: LiteRT {self.kind.upper()} accelerator failed on {what}: {detail}")

    def _load(self, path: Path) -> Loaded:
        return CompiledLoaded(path, self.spec, self._compile(path, None, str(path)))

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


def open_device(spec: str, *, threads: int | None = None, **emulated: Any) -> Device:
    """Open a device by its string. Raises BadDeviceSpec, DeviceUnavailable or DelegateError, never crashes.

    ``threads``: CPU threads (for 'cpu' when the string has none, and for CPU-side ops of delegates).
    ``emulated``: keyword arguments for hal.emulated.EmulatedDevice (cost=..., compute=..., clock=...).
    """
    parsed = parse_spec(spec)
    spec = spec.strip()
    n = threads or default_threads()
    if parsed.kind == "cpu":
        runtime.select_runtime()
        return CpuDevice(spec, int(parsed.arg) if parsed.arg else n)
    if parsed.kind == "edgetpu":
        library = EDGETPU_LIBRARY[_platform_key()]
        return DelegateDevice(spec, "edgetpu", library, {"device": parsed.arg} if parsed.arg else {}, n)
    if parsed.kind == "gpu":
        return _open_gpu(spec, n)
    if parsed.kind == "npu":
        return LiteRtAcceleratorDevice(spec, "npu", find_npu_dispatch())
    from hal.emulated import EmulatedDevice  # emulated builds on this module

    return EmulatedDevice(parsed.arg, **emulated)


def _open_gpu(spec: str, threads: int) -> Device:
    """LiteRT's GPU accelerator first, the classic GPU delegate library second; both reasons if neither works."""
    reasons: list[str] = []
    try:
        return LiteRtAcceleratorDevice(spec, "gpu")
    except HalError as exc:
        reasons.append(str(exc))
    library = GPU_DELEGATE_LIBRARY[_platform_key()]
    try:
        return DelegateDevice(spec, "gpu", library, {}, threads)
    except HalError as exc:
        reasons.append(str(exc))
    raise DeviceUnavailable(f"{spec}: no working GPU backend: " + " | ".join(reasons))


def find_npu_dispatch() -> str:
    """The first LiteRT vendor dispatch directory whose library (and its dependencies) loads here."""
    rt = runtime.select_runtime()
    if rt.name != "ai_edge_litert":
        raise DeviceUnavailable(f"npu: needs ai_edge_litert's vendor dispatch, runtime is {rt.name}")
    base = os.path.join(os.path.dirname(os.path.abspath(str(rt.module.__file__))), "vendors")
    pattern = "LiteRtDispatch*.dll" if _platform_key() == "win32" else "libLiteRtDispatch_*.so"
    libraries = sorted(glob.glob(os.path.join(base, "*", "dispatch", pattern)))
    if not libraries:
        raise DeviceUnavailable(f"npu: no LiteRT vendor dispatch library installed under {base}/*/dispatch")
    failures = []
    for lib in libraries:
        try:
            _load_library(lib, "npu")
            return os.path.dirname(lib)
        except DeviceUnavailable as exc:
            failures.append(str(exc).removeprefix("npu: "))
    raise DeviceUnavailable("npu: no vendor dispatch library loads: " + "; ".join(failures))


# --------------------------------------------------------------------------------------------- discover


def list_edge_tpus(library: str | None = None) -> list[dict[str, str]]:
    """Enumerate attached Edge TPUs through libedgetpu's C API (edgetpu_list_devices), like pycoral."""

    class _EdgeTpuDevice(ctypes.Structure):
        _fields_ = [("type", ctypes.c_int), ("path", ctypes.c_char_p)]

    lib = _load_library(library or EDGETPU_LIBRARY[_platform_key()], "edgetpu")
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
            interpreter = runtime.make_interpreter(None, model_content=_PROBE_MODEL, num_threads=1)
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
