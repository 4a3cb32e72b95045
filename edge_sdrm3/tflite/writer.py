"""A small .tflite writer: build a single-subgraph graph op by op, then write the flatbuffer.

It uses the object API of ``ai_edge_litert.schema_py_generated`` (``ModelT``, ``SubGraphT``, ``TensorT``...)
and ``flatbuffers.Builder``; no TensorFlow. Layout is NHWC; convolution weights are ``[out, h, w, in]``,
depthwise weights ``[1, h, w, channels]``, fully-connected weights ``[out, in]`` (TFLite's own conventions).

    g = GraphBuilder()
    x = g.input("image", (1, 8, 8, 1))
    y = g.conv2d(x, w, b, activation="relu")          # w, b: numpy arrays (float32 constants)
    y = g.softmax(g.fully_connected(g.reshape(y, (1, -1)), w2, b2))
    g.outputs(y)
    g.write("model.tflite")

Quantized graphs: pass ``Quant`` parameters to ``input``/``const`` and ``out_quant`` to each op; the output
dtype follows the first input's dtype. ``serialize_model`` (also used by ``split``) writes any ``ModelT``,
moving constant buffers after the flatbuffer when the model would exceed the flatbuffer 2 GB limit.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import flatbuffers
import numpy as np

from . import ModelToolError, schema

fb = schema()

FILE_IDENTIFIER = b"TFL3"
SCHEMA_VERSION = 3
# A flatbuffer addresses at most 2 GiB; above this share of it, constant data goes after the flatbuffer.
LARGE_MODEL_BYTES = 1_800_000_000
_BUFFER_ALIGN = 16

DTYPES: dict[np.dtype, int] = {
    np.dtype(np.float32): fb.TensorType.FLOAT32,
    np.dtype(np.float16): fb.TensorType.FLOAT16,
    np.dtype(np.int32): fb.TensorType.INT32,
    np.dtype(np.uint8): fb.TensorType.UINT8,
    np.dtype(np.int64): fb.TensorType.INT64,
    np.dtype(np.bool_): fb.TensorType.BOOL,
    np.dtype(np.int16): fb.TensorType.INT16,
    np.dtype(np.int8): fb.TensorType.INT8,
    np.dtype(np.float64): fb.TensorType.FLOAT64,
}
NUMPY_DTYPES: dict[int, np.dtype] = {v: k for k, v in DTYPES.items()}

ACTIVATIONS = {
    None: fb.ActivationFunctionType.NONE,
    "none": fb.ActivationFunctionType.NONE,
    "relu": fb.ActivationFunctionType.RELU,
    "relu6": fb.ActivationFunctionType.RELU6,
    "relu_n1_to_1": fb.ActivationFunctionType.RELU_N1_TO_1,
    "tanh": fb.ActivationFunctionType.TANH,
}
PADDINGS = {"SAME": fb.Padding.SAME, "VALID": fb.Padding.VALID}

OP_NAMES: dict[int, str] = {v: k for k, v in vars(fb.BuiltinOperator).items() if not k.startswith("_")}


def op_name(code: int) -> str:
    return OP_NAMES.get(code, f"BUILTIN_{code}")


@dataclass(frozen=True)
class Quant:
    """Affine quantization: ``real = scale * (q - zero_point)``; per-channel along ``axis`` when several scales."""

    scale: tuple[float, ...]
    zero_point: tuple[int, ...]
    axis: int = 0

    @classmethod
    def per_tensor(cls, scale: float, zero_point: int = 0) -> Quant:
        return cls((float(scale),), (int(zero_point),))

    def to_fb(self) -> fb.QuantizationParametersT:
        q = fb.QuantizationParametersT()
        q.scale = [float(s) for s in self.scale]
        q.zeroPoint = [int(z) for z in self.zero_point]
        q.quantizedDimension = int(self.axis)
        return q


def _out_size(size: int, k: int, stride: int, padding: str, dilation: int = 1) -> int:
    eff = (k - 1) * dilation + 1
    if padding == "SAME":
        return math.ceil(size / stride)
    if padding == "VALID":
        return math.ceil((size - eff + 1) / stride)
    raise ModelToolError(f"padding {padding!r}: expected 'SAME' or 'VALID'")


class GraphBuilder:
    """One subgraph under construction. Methods that add an op return the index of its output tensor."""

    def __init__(self, name: str = "main", description: str = "edge-sdrm3 writer") -> None:
        self.name = name
        self.description = description
        self.tensors: list[fb.TensorT] = []
        self.shapes: list[tuple[int, ...]] = []
        self.dtypes: list[np.dtype] = []
        self.quants: list[Quant | None] = []
        self.buffers: list[fb.BufferT] = [fb.BufferT()]  # buffer 0: the empty buffer, by convention
        self.operators: list[fb.OperatorT] = []
        self.opcodes: list[fb.OperatorCodeT] = []
        self._opcode_index: dict[tuple[int, str | None], int] = {}
        self._inputs: list[int] = []
        self._outputs: list[int] = []
        self._names: set[str] = set()

    # ---- tensors -------------------------------------------------------------------------------------
    def _unique(self, name: str | None, stem: str) -> str:
        base = name or f"{stem}_{len(self.tensors)}"
        out, i = base, 1
        while out in self._names:
            out, i = f"{base}_{i}", i + 1
        self._names.add(out)
        return out

    def tensor(self, name: str | None, shape: Sequence[int], dtype=np.float32, quant: Quant | None = None,
               buffer: int = 0) -> int:
        """A tensor without data (an activation). Returns its index."""
        dt = np.dtype(dtype)
        if dt not in DTYPES:
            raise ModelToolError(f"tensor {name!r}: dtype {dt} is not supported by the writer")
        t = fb.TensorT()
        t.shape = [int(d) for d in shape]
        t.type = DTYPES[dt]
        t.buffer = buffer
        t.name = self._unique(name, "t")
        if quant is not None:
            t.quantization = quant.to_fb()
        self.tensors.append(t)
        self.shapes.append(tuple(int(d) for d in shape))
        self.dtypes.append(dt)
        self.quants.append(quant)
        return len(self.tensors) - 1

    def input(self, name: str, shape: Sequence[int], dtype=np.float32, quant: Quant | None = None) -> int:
        i = self.tensor(name, shape, dtype, quant)
        self._inputs.append(i)
        return i

    def const(self, name: str | None, array: np.ndarray, quant: Quant | None = None) -> int:
        """A constant tensor holding ``array`` (copied, little-endian, C order)."""
        arr = np.ascontiguousarray(array)
        if arr.dtype.byteorder == ">":
            arr = arr.astype(arr.dtype.newbyteorder("<"))
        buf = fb.BufferT()
        buf.data = np.frombuffer(arr.tobytes(), dtype=np.uint8)
        self.buffers.append(buf)
        return self.tensor(name or None, arr.shape, arr.dtype, quant, buffer=len(self.buffers) - 1)

    def _as_tensor(self, x: int | np.ndarray | None, stem: str) -> int:
        if x is None:
            return -1
        if isinstance(x, (int, np.integer)):
            return int(x)
        return self.const(self._unique(None, stem), np.asarray(x, dtype=np.float32))

    def outputs(self, *tensors: int) -> None:
        self._outputs = [int(t) for t in tensors]

    # ---- ops -----------------------------------------------------------------------------------------
    def _opcode(self, builtin: int, custom: str | None = None) -> int:
        key = (builtin, custom)
        if key not in self._opcode_index:
            oc = fb.OperatorCodeT()
            oc.builtinCode = builtin
            oc.deprecatedBuiltinCode = min(builtin, fb.BuiltinOperator.PLACEHOLDER_FOR_GREATER_OP_CODES)
            oc.customCode = custom
            oc.version = 1
            self.opcodes.append(oc)
            self._opcode_index[key] = len(self.opcodes) - 1
        return self._opcode_index[key]

    def op(self, builtin: int, inputs: Sequence[int], outputs: Sequence[int], options=None,
           options_type: int = 0) -> None:
        """Append any builtin op (``fb.BuiltinOperator.X``) with its options object and options type."""
        o = fb.OperatorT()
        o.opcodeIndex = self._opcode(builtin)
        o.inputs = [int(i) for i in inputs]
        o.outputs = [int(i) for i in outputs]
        o.builtinOptionsType = options_type
        o.builtinOptions = options
        self.operators.append(o)

    def _out(self, name: str | None, shape: Sequence[int], like: int, quant: Quant | None) -> int:
        q = quant if quant is not None else (self.quants[like] if self.dtypes[like] != np.float32 else None)
        return self.tensor(name, shape, self.dtypes[like], q)

    def conv2d(self, x: int, weights, bias=None, stride: int | tuple[int, int] = 1, padding: str = "SAME",
               activation: str | None = None, dilation: int = 1, name: str | None = None,
               out_quant: Quant | None = None) -> int:
        w = self._as_tensor(weights, "conv_w")
        b = self._as_tensor(bias, "conv_b")
        sh, sw = (stride, stride) if isinstance(stride, int) else stride
        n, h, wd, _ = self.shapes[x]
        k, kh, kw, _ = self.shapes[w]
        shape = (n, _out_size(h, kh, sh, padding, dilation), _out_size(wd, kw, sw, padding, dilation), k)
        y = self._out(name, shape, x, out_quant)
        opt = fb.Conv2DOptionsT()
        opt.padding, opt.strideH, opt.strideW = PADDINGS[padding], sh, sw
        opt.dilationHFactor = opt.dilationWFactor = dilation
        opt.fusedActivationFunction = ACTIVATIONS[activation]
        self.op(fb.BuiltinOperator.CONV_2D, [x, w, b], [y], opt, fb.BuiltinOptions.Conv2DOptions)
        return y

    def depthwise_conv2d(self, x: int, weights, bias=None, stride: int | tuple[int, int] = 1,
                         padding: str = "SAME", activation: str | None = None, name: str | None = None,
                         out_quant: Quant | None = None) -> int:
        w = self._as_tensor(weights, "dw_w")
        b = self._as_tensor(bias, "dw_b")
        sh, sw = (stride, stride) if isinstance(stride, int) else stride
        n, h, wd, c = self.shapes[x]
        _, kh, kw, k = self.shapes[w]
        shape = (n, _out_size(h, kh, sh, padding), _out_size(wd, kw, sw, padding), k)
        y = self._out(name, shape, x, out_quant)
        opt = fb.DepthwiseConv2DOptionsT()
        opt.padding, opt.strideH, opt.strideW = PADDINGS[padding], sh, sw
        opt.depthMultiplier = k // c
        opt.dilationHFactor = opt.dilationWFactor = 1
        opt.fusedActivationFunction = ACTIVATIONS[activation]
        self.op(fb.BuiltinOperator.DEPTHWISE_CONV_2D, [x, w, b], [y], opt, fb.BuiltinOptions.DepthwiseConv2DOptions)
        return y

    def fully_connected(self, x: int, weights, bias=None, activation: str | None = None, name: str | None = None,
                        out_quant: Quant | None = None) -> int:
        w = self._as_tensor(weights, "fc_w")
        b = self._as_tensor(bias, "fc_b")
        units = self.shapes[w][0]
        batch = int(np.prod(self.shapes[x])) // self.shapes[w][1]
        y = self._out(name, (batch, units), x, out_quant)
        opt = fb.FullyConnectedOptionsT()
        opt.fusedActivationFunction = ACTIVATIONS[activation]
        self.op(fb.BuiltinOperator.FULLY_CONNECTED, [x, w, b], [y], opt, fb.BuiltinOptions.FullyConnectedOptions)
        return y

    def add(self, a: int, b: int, activation: str | None = None, name: str | None = None,
            out_quant: Quant | None = None) -> int:
        shape = np.broadcast_shapes(self.shapes[a], self.shapes[b])
        y = self._out(name, shape, a, out_quant)
        opt = fb.AddOptionsT()
        opt.fusedActivationFunction = ACTIVATIONS[activation]
        self.op(fb.BuiltinOperator.ADD, [a, b], [y], opt, fb.BuiltinOptions.AddOptions)
        return y

    def relu(self, x: int, name: str | None = None) -> int:
        y = self._out(name, self.shapes[x], x, self.quants[x])
        self.op(fb.BuiltinOperator.RELU, [x], [y])
        return y

    def _pool(self, builtin: int, x: int, size: int, stride: int | None, padding: str, activation: str | None,
              name: str | None, out_quant: Quant | None) -> int:
        stride = size if stride is None else stride
        n, h, w, c = self.shapes[x]
        shape = (n, _out_size(h, size, stride, padding), _out_size(w, size, stride, padding), c)
        y = self._out(name, shape, x, out_quant if out_quant is not None else self.quants[x])
        opt = fb.Pool2DOptionsT()
        opt.padding, opt.strideH, opt.strideW = PADDINGS[padding], stride, stride
        opt.filterHeight = opt.filterWidth = size
        opt.fusedActivationFunction = ACTIVATIONS[activation]
        self.op(builtin, [x], [y], opt, fb.BuiltinOptions.Pool2DOptions)
        return y

    def max_pool2d(self, x: int, size: int = 2, stride: int | None = None, padding: str = "VALID",
                   activation: str | None = None, name: str | None = None, out_quant: Quant | None = None) -> int:
        return self._pool(fb.BuiltinOperator.MAX_POOL_2D, x, size, stride, padding, activation, name, out_quant)

    def average_pool2d(self, x: int, size: int = 2, stride: int | None = None, padding: str = "VALID",
                       activation: str | None = None, name: str | None = None,
                       out_quant: Quant | None = None) -> int:
        return self._pool(fb.BuiltinOperator.AVERAGE_POOL_2D, x, size, stride, padding, activation, name, out_quant)

    def mean(self, x: int, axes: Sequence[int], keepdims: bool = False, name: str | None = None,
             out_quant: Quant | None = None) -> int:
        rank = len(self.shapes[x])
        ax = sorted(a % rank for a in axes)
        shape = [1 if i in ax else d for i, d in enumerate(self.shapes[x])] if keepdims else \
            [d for i, d in enumerate(self.shapes[x]) if i not in ax]
        a = self.const(None, np.asarray(ax, dtype=np.int32))
        y = self._out(name, shape, x, out_quant)
        opt = fb.ReducerOptionsT()
        opt.keepDims = keepdims
        self.op(fb.BuiltinOperator.MEAN, [x, a], [y], opt, fb.BuiltinOptions.ReducerOptions)
        return y

    def softmax(self, x: int, beta: float = 1.0, name: str | None = None, out_quant: Quant | None = None) -> int:
        if out_quant is None and self.dtypes[x] == np.int8:
            out_quant = Quant.per_tensor(1.0 / 256.0, -128)  # the only int8 softmax output TFLite accepts
        y = self._out(name, self.shapes[x], x, out_quant)
        opt = fb.SoftmaxOptionsT()
        opt.beta = beta
        self.op(fb.BuiltinOperator.SOFTMAX, [x], [y], opt, fb.BuiltinOptions.SoftmaxOptions)
        return y

    def reshape(self, x: int, shape: Sequence[int], name: str | None = None) -> int:
        total = int(np.prod(self.shapes[x]))
        shp = list(shape)
        if -1 in shp:
            known = int(np.prod([d for d in shp if d != -1]))
            shp[shp.index(-1)] = total // known
        if int(np.prod(shp)) != total:
            raise ModelToolError(f"reshape {self.shapes[x]} -> {tuple(shape)}: element counts differ")
        s = self.const(None, np.asarray(shp, dtype=np.int32))
        y = self._out(name, shp, x, self.quants[x])
        opt = fb.ReshapeOptionsT()
        opt.newShape = shp
        self.op(fb.BuiltinOperator.RESHAPE, [x, s], [y], opt, fb.BuiltinOptions.ReshapeOptions)
        return y

    def pad(self, x: int, paddings: Sequence[tuple[int, int]], name: str | None = None) -> int:
        p = self.const(None, np.asarray(paddings, dtype=np.int32))
        shape = [d + lo + hi for d, (lo, hi) in zip(self.shapes[x], paddings)]
        y = self._out(name, shape, x, self.quants[x])
        self.op(fb.BuiltinOperator.PAD, [x, p], [y], fb.PadOptionsT(), fb.BuiltinOptions.PadOptions)
        return y

    def slice(self, x: int, begin: Sequence[int], size: Sequence[int], name: str | None = None) -> int:
        b = self.const(None, np.asarray(begin, dtype=np.int32))
        s = self.const(None, np.asarray(size, dtype=np.int32))
        y = self._out(name, size, x, self.quants[x])
        self.op(fb.BuiltinOperator.SLICE, [x, b, s], [y], fb.SliceOptionsT(), fb.BuiltinOptions.SliceOptions)
        return y

    # ---- output --------------------------------------------------------------------------------------
    def model(self) -> fb.ModelT:
        if not self._inputs or not self._outputs:
            raise ModelToolError(f"graph {self.name!r}: set at least one input and one output before writing")
        sg = fb.SubGraphT()
        sg.tensors, sg.operators, sg.name = self.tensors, self.operators, self.name
        sg.inputs, sg.outputs = list(self._inputs), list(self._outputs)
        m = fb.ModelT()
        m.version = SCHEMA_VERSION
        m.description = self.description
        m.operatorCodes = self.opcodes
        m.subgraphs = [sg]
        m.buffers = self.buffers
        return m

    def to_bytes(self) -> bytes:
        return serialize_model(self.model())

    def write(self, path: str | Path) -> Path:
        return write_model(self.model(), path)


def _buffer_nbytes(b: fb.BufferT) -> int:
    return 0 if b.data is None else len(b.data)


def serialize_model(model: fb.ModelT, large_threshold: int = LARGE_MODEL_BYTES) -> bytes:
    """The .tflite bytes of ``model`` (file identifier TFL3). Above ``large_threshold`` bytes of constants,
    buffers are stored after the flatbuffer and addressed by offset/size (as the TFLite converter does)."""
    total = sum(_buffer_nbytes(b) for b in model.buffers or [])
    if total <= large_threshold:
        builder = flatbuffers.Builder(1024 + total)
        builder.Finish(model.Pack(builder), file_identifier=FILE_IDENTIFIER)
        return bytes(builder.Output())
    datas = [b.data for b in model.buffers]
    try:
        for b, d in zip(model.buffers, datas):
            if d is not None and len(d):
                b.data, b.offset, b.size = None, 1, len(d)  # placeholders: same flatbuffer size as the real ones
        builder = flatbuffers.Builder(1024)
        builder.Finish(model.Pack(builder), file_identifier=FILE_IDENTIFIER)
        head_len = len(builder.Output())
        pos, blobs = _align(head_len), []
        for b, d in zip(model.buffers, datas):
            if d is not None and len(d):
                b.offset = pos
                blobs.append((pos, d))
                pos = _align(pos + len(d))
        builder = flatbuffers.Builder(1024)
        builder.Finish(model.Pack(builder), file_identifier=FILE_IDENTIFIER)
        head = bytes(builder.Output())
        if len(head) != head_len:
            raise ModelToolError("large model: flatbuffer size changed when buffer offsets were filled in")
        out = bytearray(pos)
        out[:head_len] = head
        for off, d in blobs:
            out[off:off + len(d)] = np.asarray(d, dtype=np.uint8).tobytes()
        return bytes(out)
    finally:
        for b, d in zip(model.buffers, datas):
            if d is not None and len(d):
                b.data, b.offset, b.size = d, 0, 0


def _align(n: int) -> int:
    return (n + _BUFFER_ALIGN - 1) // _BUFFER_ALIGN * _BUFFER_ALIGN


def write_model(model: fb.ModelT, path: str | Path, large_threshold: int = LARGE_MODEL_BYTES) -> Path:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(p.name + ".tmp")
    tmp.write_bytes(serialize_model(model, large_threshold))
    tmp.replace(p)
    return p


def read_model(path: str | Path) -> fb.ModelT:
    """A .tflite file as a ``ModelT`` (buffers stored by offset are resolved)."""
    from ai_edge_litert.tools import flatbuffer_utils

    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as e:
        raise ModelToolError(f"{p}: cannot read ({e.strerror or e})") from None
    if len(data) < 8 or data[4:8] != FILE_IDENTIFIER:
        raise ModelToolError(f"{p}: not a TFLite flatbuffer (no {FILE_IDENTIFIER.decode()} identifier)")
    try:
        return flatbuffer_utils.read_model_from_bytearray(bytearray(data))
    except Exception as e:  # noqa: BLE001 - a corrupt flatbuffer raises anything from struct.error to IndexError
        raise ModelToolError(f"{p}: cannot parse the TFLite flatbuffer ({type(e).__name__}: {e})") from None
