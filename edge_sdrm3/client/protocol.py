"""The service's wire protocol, version 1 (docs/protocol.md): encode/decode and validation, shared by the
service and its clients.

- Frames in (PULL): ``[header, part_0, ...]``; header ``{"v": 1, "stream", "frame", "t_capture_ms"?, "models"?,
  "tensors": [{"shape", "dtype"}]}``. Part 0 is the camera image (adapted to each model's input) or an exact
  model input. Extension kept compatible with the document: a tensor entry may carry ``"model": name``, making
  that part this model's exact input (the untagged part 0 serves the other models).
- Results out (PUB): ``[topic = model, header, out_0, ...]``; header fields ``RESULT_FIELDS`` + ``tensors``.
- Errors (PUB topic ``errors``): ``[b"errors", {"v": 1, "error": code, "message", "stream"?, "frame"?, "count"}]``.
- Control (REP): request ``{"v": 1, "cmd", ...}``; reply ``{"v": 1, "ok": true, ...}`` or
  ``{"v": 1, "ok": false, "error": code, "message"}``.

Everything that decodes raises ``ProtocolError(code, message)`` with ``code`` in ``ERROR_CODES``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

import msgpack
import numpy as np

PROTOCOL_VERSION = 1
MAX_DIMS = 32  # numpy 1.x's limit (numpy 2 allows 64); also bounds the work of checking a shape's byte size
ERRORS_TOPIC = "errors"
COMMANDS = ("status", "stats", "set-policy", "set-params", "reload-catalog")
STATUSES = ("done", "late", "timed", "dropped", "failed")

#: error codes: on the ``errors`` topic (frames) and in control replies
ERROR_CODES = (
    "bad-msgpack",  # a header (or request) that is not a msgpack map
    "bad-version",  # missing or unsupported protocol version
    "bad-header",  # a required field missing, or of the wrong type
    "unknown-model",  # a model name not in the running workload
    "bad-shape",  # payload size differs from shape x dtype, or a tensor no model input can be made of
    "bad-dtype",  # unsupported dtype, or not the model's input dtype
    "no-input",  # a model the frame would run has no input in it (no camera image, no part tagged for it)
    "too-large",  # the message exceeds [sockets] max_message_bytes
    "parts-mismatch",  # the number of payload parts differs from the header's tensors
    "unknown-command",  # control: no such command
    "bad-argument",  # control: an argument is missing or invalid
    "forbidden",  # control: the command is not allowed to this client ([sockets] control_commands)
    "internal",  # the service failed on a frame or request (a bug: see its log); it goes on
)

DTYPES: dict[str, np.dtype] = {
    name: np.dtype(name).newbyteorder("<")
    for name in ("float32", "float16", "float64", "int8", "uint8", "int16", "int32", "int64", "bool")
}

RESULT_FIELDS = (
    "stream", "frame", "model", "variant", "accelerator", "status", "reason", "release_ms", "start_ms", "end_ms",
    "deadline_ms", "energy_mj", "energy_source",
)  # fmt: skip


class ProtocolError(Exception):
    """A malformed message; ``code`` is one of ``ERROR_CODES``, ``message`` names the bad field."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


@dataclass(frozen=True)
class TensorSpec:
    shape: tuple[int, ...]
    dtype: str
    model: str | None = None  # this part is that model's exact input (extension); None: for any model

    @property
    def nbytes(self) -> int:
        n = DTYPES[self.dtype].itemsize
        for d in self.shape:
            n *= d
        return n


@dataclass(frozen=True)
class FrameHeader:
    stream: str
    frame: int
    tensors: tuple[TensorSpec, ...]
    models: tuple[str, ...] | None = None  # None: every due model without an upstream
    t_capture_ms: float | None = None
    v: int = PROTOCOL_VERSION
    extra: dict[str, Any] = field(default_factory=dict, compare=False)  # unknown keys, ignored (forward compat)


def _buffer(part: Any) -> memoryview:
    """A zero-copy view of a message part: bytes, memoryview, or a zmq.Frame (``.buffer``)."""
    buf = getattr(part, "buffer", part)
    return buf if isinstance(buf, memoryview) else memoryview(buf)


def _unpack_map(data: Any, what: str) -> dict:
    try:
        obj = msgpack.unpackb(_buffer(data), raw=False, strict_map_key=False)
    except Exception as exc:  # msgpack raises several types (ExtraData, FormatError, ValueError...)
        raise ProtocolError("bad-msgpack", f"{what} is not valid msgpack ({type(exc).__name__}: {exc})") from None
    if not isinstance(obj, dict):
        raise ProtocolError("bad-msgpack", f"{what} is a msgpack {type(obj).__name__}, expected a map")
    return obj


def _check_version(obj: dict, what: str) -> None:
    v = obj.get("v")
    if v is None:
        raise ProtocolError("bad-version", f"{what} has no field 'v' (protocol version; this service speaks {PROTOCOL_VERSION})")
    if v != PROTOCOL_VERSION or not _is_int(v):
        raise ProtocolError("bad-version", f"{what}: protocol version {v!r} unsupported (this service speaks {PROTOCOL_VERSION})")


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _is_num(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _tensor_spec(i: int, t: Any) -> TensorSpec:
    if not isinstance(t, dict):
        raise ProtocolError("bad-header", f"field 'tensors[{i}]' is not a map")
    shape = t.get("shape")
    if not isinstance(shape, (list, tuple)) or not all(_is_int(d) and d >= 0 for d in shape):
        raise ProtocolError("bad-header", f"field 'tensors[{i}].shape' must be a list of integers >= 0, got {shape!r}")
    if len(shape) > MAX_DIMS:
        raise ProtocolError("bad-shape", f"field 'tensors[{i}].shape' has {len(shape)} dimensions (at most {MAX_DIMS})")
    dtype = t.get("dtype")
    if not isinstance(dtype, str):
        raise ProtocolError("bad-header", f"field 'tensors[{i}].dtype' must be a string, got {dtype!r}")
    if dtype not in DTYPES:
        raise ProtocolError("bad-dtype", f"field 'tensors[{i}].dtype': {dtype!r} unsupported (one of {', '.join(DTYPES)})")
    model = t.get("model")
    if model is not None and not isinstance(model, str):
        raise ProtocolError("bad-header", f"field 'tensors[{i}].model' must be a string, got {model!r}")
    return TensorSpec(tuple(int(d) for d in shape), dtype, model)


def _array_parts(arrays: Sequence[np.ndarray]) -> list[bytes | memoryview]:
    return [memoryview(a).cast("B") if a.size else b"" for a in arrays]


def _view(spec: TensorSpec, part: Any, where: str) -> np.ndarray:
    buf = _buffer(part)
    if len(buf) != spec.nbytes:
        raise ProtocolError(
            "bad-shape", f"{where}: {len(buf)} bytes, but shape {list(spec.shape)} of {spec.dtype} needs {spec.nbytes}"
        )
    try:
        return np.frombuffer(buf, dtype=DTYPES[spec.dtype]).reshape(spec.shape)
    except ValueError as exc:  # an empty tensor with a dimension numpy cannot index (e.g. [0, 2**63])
        raise ProtocolError("bad-shape", f"{where}: shape {list(spec.shape)} of {spec.dtype} unsupported ({exc})") from None


# ---- frames --------------------------------------------------------------------------------------------


def encode_frame(header: dict, arrays: Iterable[np.ndarray] = ()) -> list[bytes | memoryview]:
    """``[header, part...]`` for a PUSH socket (send with ``copy=False``). ``header`` needs ``stream`` and
    ``frame`` (``t_capture_ms``, ``models`` optional); ``v`` and ``tensors`` are filled in from the arrays (a
    ``tensors`` entry given with only ``{"model": name}`` tags that part as the model's input). Parts are
    zero-copy views of the (C-contiguous) arrays."""
    arrays = [np.asarray(a, order="C") for a in arrays]  # not ascontiguousarray: it makes a 0-d array 1-d
    h = dict(header)
    h["v"] = h.get("v", PROTOCOL_VERSION)
    given = h.get("tensors") or []
    tensors = []
    for i, a in enumerate(arrays):
        if a.dtype.name not in DTYPES or a.dtype.byteorder == ">":
            raise ProtocolError("bad-dtype", f"array {i}: dtype {a.dtype} unsupported (one of {', '.join(DTYPES)}, little-endian)")
        spec: dict[str, Any] = {"shape": list(a.shape), "dtype": a.dtype.name}
        if i < len(given) and isinstance(given[i], dict) and given[i].get("model") is not None:
            spec["model"] = given[i]["model"]
        tensors.append(spec)
    h["tensors"] = tensors
    if h.get("models") is not None:
        h["models"] = list(h["models"])
    return [msgpack.packb(h, use_bin_type=True), *_array_parts(arrays)]


def decode_frame(parts: Sequence[Any], max_bytes: int | None = None) -> tuple[FrameHeader, list[np.ndarray]]:
    """Validate a received frame message; its payloads as read-only arrays viewing the received buffers (no
    copy). Raises ``ProtocolError`` naming what is wrong."""
    if not parts:
        raise ProtocolError("parts-mismatch", "empty message")
    if max_bytes is not None:
        total = sum(len(_buffer(p)) for p in parts)
        if total > max_bytes:
            raise ProtocolError("too-large", f"message of {total} bytes exceeds max_message_bytes = {max_bytes}")
    h = _unpack_map(parts[0], "frame header")
    _check_version(h, "frame header")
    stream = h.get("stream")
    if not isinstance(stream, str) or not stream:
        raise ProtocolError("bad-header", f"field 'stream' must be a non-empty string, got {stream!r}")
    frame = h.get("frame")
    if not _is_int(frame) or frame < 0:
        raise ProtocolError("bad-header", f"field 'frame' must be an integer >= 0, got {frame!r}")
    capture = h.get("t_capture_ms")
    if capture is not None and (not _is_num(capture) or not math.isfinite(capture)):
        raise ProtocolError("bad-header", f"field 't_capture_ms' must be a finite number, got {capture!r}")
    models = h.get("models")
    if models is not None:
        if not isinstance(models, (list, tuple)) or not all(isinstance(m, str) for m in models):
            raise ProtocolError("bad-header", f"field 'models' must be a list of model names, got {models!r}")
        models = tuple(models)
    tensors = h.get("tensors")
    if not isinstance(tensors, (list, tuple)):
        raise ProtocolError("bad-header", f"field 'tensors' must be a list, got {tensors!r}")
    specs = tuple(_tensor_spec(i, t) for i, t in enumerate(tensors))
    payloads = parts[1:]
    if len(payloads) != len(specs):
        raise ProtocolError("parts-mismatch", f"header declares {len(specs)} tensors, message has {len(payloads)} payload parts")
    arrays = [_view(spec, part, f"part {i + 1}") for i, (spec, part) in enumerate(zip(specs, payloads))]
    known = {"v", "stream", "frame", "t_capture_ms", "models", "tensors"}
    extra = {k: v for k, v in h.items() if k not in known}
    header = FrameHeader(stream, int(frame), specs, models, None if capture is None else float(capture), extra=extra)
    return header, arrays


# ---- results and errors --------------------------------------------------------------------------------


def encode_result(header: dict, arrays: Iterable[np.ndarray] = ()) -> list[bytes | memoryview]:
    """``[topic, header, out...]`` for the PUB socket; topic = ``header["model"]``; ``tensors`` filled in."""
    arrays = [np.asarray(a, order="C") for a in arrays]  # not ascontiguousarray: it makes a 0-d array 1-d
    h = dict(header)
    h["v"] = PROTOCOL_VERSION
    h["tensors"] = [{"shape": list(a.shape), "dtype": _dtype_name(a.dtype)} for a in arrays]
    return [str(h["model"]).encode(), msgpack.packb(h, use_bin_type=True, default=_default), *_array_parts(arrays)]


_DTYPE_NAMES: dict[np.dtype, str] = {}


def _dtype_name(dt: np.dtype) -> str:
    """``dt.name``, remembered: numpy makes the name anew on each look-up (6 us of a result's 10 us to encode,
    2-core x86 dev VM), and a service sends the same few dtypes all day."""
    name = _DTYPE_NAMES.get(dt)
    if name is None:
        name = _DTYPE_NAMES[dt] = dt.name
    return name


def encode_error(code: str, message: str, **context: Any) -> list[bytes]:
    """``[b"errors", header]`` with ``error`` = code, ``message``, and context (``stream``, ``frame``, ``count``)."""
    h = {"v": PROTOCOL_VERSION, "error": code, "message": message}
    h.update({k: v for k, v in context.items() if v is not None})
    return [ERRORS_TOPIC.encode(), msgpack.packb(h, use_bin_type=True, default=_default)]


def decode_result(parts: Sequence[Any]) -> tuple[dict, list[np.ndarray]]:
    """A message from the PUB socket (a result or an error) → (header with ``topic`` added, output arrays)."""
    if len(parts) < 2:
        raise ProtocolError("parts-mismatch", f"a result has at least 2 parts (topic, header), got {len(parts)}")
    topic = bytes(_buffer(parts[0])).decode("utf-8", "replace")
    h = _unpack_map(parts[1], "result header")
    _check_version(h, "result header")
    h["topic"] = topic
    tensors = h.get("tensors") or []
    if not isinstance(tensors, list):
        raise ProtocolError("bad-header", f"field 'tensors' must be a list, got {tensors!r}")
    specs = [_tensor_spec(i, t) for i, t in enumerate(tensors)]
    payloads = parts[2:]
    if len(payloads) != len(specs):
        raise ProtocolError("parts-mismatch", f"result declares {len(specs)} tensors, message has {len(payloads)} parts")
    return h, [_view(spec, part, f"output {i}") for i, (spec, part) in enumerate(zip(specs, payloads))]


# ---- control ---------------------------------------------------------------------------------------------


def encode_request(cmd: str, **kw: Any) -> bytes:
    """A control request, e.g. ``encode_request("set-params", params={"alpha": 0.1})``."""
    return msgpack.packb({"v": PROTOCOL_VERSION, "cmd": cmd, **kw}, use_bin_type=True, default=_default)


def decode_request(data: Any) -> tuple[str, dict]:
    """Service side: (command, arguments). Raises ``ProtocolError``."""
    req = _unpack_map(data, "control request")
    _check_version(req, "control request")
    cmd = req.get("cmd")
    if not isinstance(cmd, str):
        raise ProtocolError("bad-header", f"field 'cmd' must be a string, got {cmd!r}")
    if cmd not in COMMANDS:
        raise ProtocolError("unknown-command", f"unknown command {cmd!r} (one of {', '.join(COMMANDS)})")
    return cmd, {k: v for k, v in req.items() if k not in ("v", "cmd")}


def encode_reply(result: dict | None = None, error: ProtocolError | None = None) -> bytes:
    """``{"v": 1, "ok": true, **result}`` or ``{"v": 1, "ok": false, "error": code, "message": ...}``."""
    if error is not None:
        body: dict[str, Any] = {"v": PROTOCOL_VERSION, "ok": False, "error": error.code, "message": error.message}
    else:
        body = {**(result or {}), "v": PROTOCOL_VERSION, "ok": True}
    return msgpack.packb(body, use_bin_type=True, default=_default)


def decode_reply(data: Any) -> dict:
    """A control reply as a dict (``ok`` says which kind). Raises ``ProtocolError`` only when the reply itself
    is malformed; ``reply_result`` raises on an error reply."""
    rep = _unpack_map(data, "control reply")
    _check_version(rep, "control reply")
    if not isinstance(rep.get("ok"), bool):
        raise ProtocolError("bad-header", "control reply has no boolean field 'ok'")
    return rep


def reply_result(reply: dict) -> dict:
    """The fields of an ok reply (without ``v``/``ok``), or its error raised as ``ProtocolError``."""
    if reply.get("ok"):
        return {k: v for k, v in reply.items() if k not in ("v", "ok")}
    raise ProtocolError(str(reply.get("error", "unknown")), str(reply.get("message", "")))


def _default(obj: Any) -> Any:
    """msgpack fallback for numpy scalars/arrays and sets in replies."""
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, (set, frozenset)):
        return sorted(obj)
    raise TypeError(f"cannot encode {type(obj).__name__}")
