"""Loaded models: a model on a device, with its tensors and the two verbs ``invoke(inputs)`` and ``run(inputs)``.

``run(inputs) -> RunResult`` is the one call that every device kind answers the same way (real CPU/GPU/NPU/Edge
TPU and emulated alike): outputs, how long it took (``timing`` says whether measured or modelled), and the
energy charged to it, always filled. ``run(None)`` asks for time and energy alone, for a model whose inputs do
not exist (an earlier stage was timed only): a real device then invokes on zero inputs, so that its time and
energy are real, and an emulated one times it from its cost model; either way the result carries no outputs.

Threading: a :class:`Loaded` is used from one thread at a time (TFLite interpreters are not thread-safe); a
second concurrent call raises InvokeError instead of corrupting the interpreter.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from hal.energy import InvokeEnergy, MeteredEnergy
from hal.errors import BadInput, InvokeError, ModelLoadError

if TYPE_CHECKING:  # annotations only (postponed), so no runtime dependency on typing_extensions
    from typing_extensions import Self


@dataclass(frozen=True)
class TensorSpec:
    """One model input or output as the runtime reports it."""

    name: str
    index: int
    shape: tuple[int, ...]
    dtype: np.dtype
    quantization: tuple[float, int] = (0.0, 0)  # (scale, zero_point); (0, 0) = not quantized


@dataclass(frozen=True)
class RunResult:
    """One invocation as it happened, from any device. ``timing`` is 'measured' on real devices, 'emulated' otherwise.

    ``computed``: ``outputs`` are the model's answer to the caller's inputs (False: timed only, outputs None).
    ``latency_ms`` is the device's latency (measured, or the modelled one for emulated devices); ``host_ms`` the
    real host time of the invoke (None when nothing was invoked); ``energy_mj`` what the invocation was charged,
    ``energy_source`` how (a meter, an estimate, a cost model); ``wall_ms`` start to completion on the caller's
    clock (pacing included).
    """

    outputs: list[np.ndarray] | None
    computed: bool
    timing: str
    latency_ms: float
    host_ms: float | None
    energy_mj: float
    energy_source: str
    wall_ms: float
    extra: dict[str, Any] = field(default_factory=dict)


def details_to_specs(details: Sequence[dict[str, Any]]) -> tuple[TensorSpec, ...]:
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


MADV_DONTNEED = 4  # linux/mman.h
_loaded_files: set[str] = set()  # files of CPU interpreters whose pages are not released yet
_loaded_files_lock = threading.Lock()


def release_file_pages(paths: Iterable[str | os.PathLike[str]]) -> int:
    """Drop this process's resident pages of its mappings of the files ``paths``; the number of mappings released.

    A TFLite Interpreter made from a path maps the file; XNNPACK reads the weights once to pack them into its own
    memory, and the file's pages then stay resident, unused (MediaPipe XR + digits: 20 MB of 230). Released with
    ``madvise(MADV_DONTNEED)``: the mapping is private and read-only, so a page read again is read back from the
    file (the kernel's page cache keeps it while memory allows), never lost; the ops XNNPACK does not pack bring
    theirs back on the first invoke (3 MB of the 20). One read of ``/proc/self/maps`` for all the files (1.3 ms on
    the 2-core dev VM: for a batch at start-up, not for each load on a job's path). Linux only; elsewhere 0."""
    targets = {os.fsdecode(os.path.abspath(p)) for p in paths}
    if not targets:
        return 0
    try:
        with open("/proc/self/maps") as f:
            ranges = [parts[0] for parts in (line.split(None, 5) for line in f)
                      if len(parts) == 6 and parts[5].rstrip("\n") in targets]
    except OSError:
        return 0
    if not ranges:
        return 0
    import ctypes

    madvise = ctypes.CDLL(None, use_errno=True).madvise
    madvise.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)
    done = 0
    for r in ranges:
        lo, hi = (int(x, 16) for x in r.split("-"))
        done += madvise(lo, hi - lo, MADV_DONTNEED) == 0
    return done


def release_loaded_files() -> int:
    """:func:`release_file_pages` of every file loaded in a CPU interpreter (no delegate) since the last call: their
    weights are packed, so their pages are not needed. For after a batch of loads (the service: before READY)."""
    with _loaded_files_lock:
        paths = list(_loaded_files)
        _loaded_files.clear()
    return release_file_pages(paths)


class _Exclusive:
    """``with loaded._exclusive(verb)``: the Loaded's lock, or InvokeError when another thread holds it. A class,
    not a generator-based context manager: it is on every invoke's path (measured 0.7 us per use against 1.8)."""

    __slots__ = ("_loaded", "_verb")

    def __init__(self, loaded: Loaded, verb: str) -> None:
        self._loaded = loaded
        self._verb = verb

    def __enter__(self) -> None:
        lo = self._loaded
        if not lo._busy.acquire(blocking=False):
            raise InvokeError(f"{lo.path} on {lo.device}: concurrent {self._verb}; a Loaded is used from one thread")

    def __exit__(self, *exc: object) -> None:
        self._loaded._busy.release()


class Loaded:
    """A model loaded on a device: its tensors, invoke(), run(), close(). Use from one thread.

    ``key`` names the model in its device's cost or energy model (``Device.load(path, key=...)``, default the file
    stem); ``energy`` charges each run on a real device (hal.energy.InvokeEnergy; default: a meter).
    """

    def __init__(
        self,
        path: Path,
        device: str,
        inputs: tuple[TensorSpec, ...],
        outputs: tuple[TensorSpec, ...],
        energy: InvokeEnergy | None = None,
    ):
        self.path = path
        self.device = device
        self.inputs = inputs
        self.outputs = outputs
        self.key = path.stem
        self.energy: InvokeEnergy = energy if energy is not None else MeteredEnergy()
        self._busy = threading.Lock()
        self._closed = False
        self._zeros: list[np.ndarray] | None = None

    @property
    def closed(self) -> bool:
        return self._closed

    def invoke(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Run the model once; outputs are fresh arrays in the model's output order."""
        self._check(inputs)
        with self._exclusive("invoke"):
            return self._invoke(inputs)

    def run(self, inputs: Sequence[np.ndarray] | None) -> RunResult:
        """One invocation with its record: time measured around the invoke, energy charged by ``self.energy``.

        ``None``: no inputs exist (see the module docstring); the device runs on zeros and returns no outputs.
        """
        if inputs is not None:
            self._check(inputs)
        elif self._closed:
            raise InvokeError(f"{self.path} on {self.device}: model is closed")
        with self._exclusive("run"):
            outputs, ms, mj = self._timed(self.zeros() if inputs is None else inputs)
        computed = inputs is not None
        return RunResult(
            outputs=outputs if computed else None,
            computed=computed,
            timing="measured",
            latency_ms=ms,
            host_ms=ms,
            energy_mj=mj,
            energy_source=self.energy.source,
            wall_ms=ms,
            extra={"device": self.device, "key": self.key},
        )

    def zeros(self) -> list[np.ndarray]:
        """Zero arrays of the model's inputs, made once (what ``run(None)`` feeds a real device)."""
        if self._zeros is None:
            self._zeros = [np.zeros(spec.shape, spec.dtype) for spec in self.inputs]
        return self._zeros

    def close(self) -> None:
        self._closed = True
        self._zeros = None

    def _check(self, inputs: Sequence[np.ndarray]) -> None:
        if self._closed:
            raise InvokeError(f"{self.path} on {self.device}: model is closed")
        specs = self.inputs
        if len(inputs) == len(specs):  # the common case checked without building the message of an error
            for spec, x in zip(specs, inputs):
                if not (isinstance(x, np.ndarray) and x.dtype == spec.dtype and x.shape == spec.shape):
                    break
            else:
                return
        check_inputs(specs, inputs, f"{self.path.name} on {self.device}")

    def _exclusive(self, verb: str) -> _Exclusive:
        return _Exclusive(self, verb)

    def _timed(self, inputs: Sequence[np.ndarray]) -> tuple[list[np.ndarray], float, float]:
        return self._measure(self._invoke, inputs)

    def _measure(
        self, invoke: Callable[[Sequence[np.ndarray]], list[np.ndarray]], inputs: Sequence[np.ndarray]
    ) -> tuple[list[np.ndarray], float, float]:
        """(outputs, milliseconds, millijoules) of one call of ``invoke``: the time of the invoke alone."""
        begun = self.energy.begin()
        t0 = time.perf_counter()
        outputs = invoke(inputs)
        ms = (time.perf_counter() - t0) * 1e3
        return outputs, ms, self.energy.charge(begun, self.key, ms)

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

    def __init__(
        self,
        path: Path,
        device: str,
        interpreter: Any,
        delegates: Sequence[Any],
        threads: int,
        energy: InvokeEnergy | None = None,
    ):
        interpreter.allocate_tensors()
        super().__init__(
            path,
            device,
            details_to_specs(interpreter.get_input_details()),
            details_to_specs(interpreter.get_output_details()),
            energy,
        )
        self.threads = threads
        self._interpreter = interpreter
        self._delegates = list(delegates)  # kept alive as long as the interpreter
        if not delegates:  # XNNPACK has packed the weights: the file's pages can go (release_loaded_files)
            with _loaded_files_lock:
                _loaded_files.add(str(path))

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

    def __init__(self, path: Path, device: str, model: Any, energy: InvokeEnergy | None = None):
        sig = next(iter(model.get_signature_list()))
        ins = model.get_input_tensor_details(sig)
        outs = model.get_output_tensor_details(sig)
        super().__init__(
            path, device, details_to_specs(list(ins.values())), details_to_specs(list(outs.values())), energy
        )
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
